#!/usr/bin/env python3
"""Runs every tests/integration/test_*.py (or the modules named on the command line) and
prints the closing line "N passed, N failed". Exit 1 on any failure or error, and when no test
ran at all."""
import os
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


class Result(unittest.TextTestResult):
    def startTest(self, test):
        self._t0 = time.monotonic()
        super().startTest(test)

    def addSuccess(self, test):
        super().addSuccess(test)
        self.stream.write("    (%.1fs)\n" % (time.monotonic() - self._t0))


def main():
    loader = unittest.TestLoader()
    names = [a for a in sys.argv[1:] if not a.startswith("-")]
    if names:
        suite = unittest.TestSuite(loader.loadTestsFromName(n.replace(".py", "")) for n in names)
    else:
        suite = loader.discover(HERE, pattern="test_*.py", top_level_dir=HERE)
    runner = unittest.TextTestRunner(verbosity=2, resultclass=Result, stream=sys.stdout)
    res = runner.run(suite)
    failed = len(res.failures) + len(res.errors) + len(res.unexpectedSuccesses)
    skipped = len(res.skipped)
    passed = max(0, res.testsRun - failed - skipped)
    # A skipped test is a failure here: CI must provide every dependency.
    failed += skipped
    print("integration: %d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed or res.testsRun == 0 else 0)


if __name__ == "__main__":
    main()
