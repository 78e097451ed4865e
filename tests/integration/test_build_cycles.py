"""No two source files call each other's functions in a cycle (issue 11): read from the object
files of the build (nm: what each defines, what each needs), every strongly connected group of
files must be a single file. The one documented exception is csmcpd.c <-> sup_ctl.c, the
supervisor and its control front end (supervisor/sup.h)."""
import glob
import os
import subprocess
import unittest

import lib

TARGETS = [os.path.join("worker", "csmcp-worker.p"), os.path.join("supervisor", "csmcpd.p"),
           os.path.join("supervisor", "csmcpctl.p")]
ALLOWED = {frozenset(("csmcpd.c", "sup_ctl.c"))}


def file_graph(objdir):
    """{source file: set of source files whose symbols it uses}, from the objects in objdir."""
    nm = lib.need_tool("nm", "binutils")
    defs, needs = {}, {}
    for o in glob.glob(os.path.join(objdir, "*.o")):
        name = os.path.basename(o)[:-2]  # "worker_tools_sqltool.c" style names, ".c" kept
        out = subprocess.run([nm, o], capture_output=True, text=True, check=True).stdout
        d, u = set(), set()
        for line in out.splitlines():
            f = line.split()
            if len(f) == 3 and f[1] in "TDBRC":
                d.add(f[2])
            elif len(f) == 2 and f[0] == "U":
                u.add(f[1])
        defs[name], needs[name] = d, u
    owner = {s: f for f, ds in defs.items() for s in ds}
    return {f: {owner[s] for s in needs[f] if s in owner and owner[s] != f} for f in defs}


def cycles(graph):
    """Strongly connected groups of more than one file (Tarjan), after dropping ALLOWED pairs."""
    g = {f: {t for t in ts if frozenset((f, t)) not in ALLOWED} for f, ts in graph.items()}
    index, low, stack, on, out, n = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = n[0]
        n[0] += 1
        stack.append(v)
        on.add(v)
        for w in g[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in g:
        if v not in index:
            visit(v)
    return out


class BuildCycles(unittest.TestCase):
    def test_no_call_cycles_between_files(self):
        for t in TARGETS:
            objdir = os.path.join(lib.BUILD, t)
            with self.subTest(target=t):
                graph = file_graph(objdir)
                self.assertGreaterEqual(len(graph), 3, "no objects under %s: build first" % objdir)
                found = cycles(graph)
                detail = ["%s -> %s" % (a, sorted(graph[a] & set(c))) for c in found for a in c]
                self.assertEqual(found, [], "files calling each other in a cycle:\n" +
                                 "\n".join(detail))

    def test_the_check_sees_a_cycle(self):
        self.assertEqual(cycles({"a.c": {"b.c"}, "b.c": {"c.c"}, "c.c": {"a.c"}, "d.c": set()}),
                         [["a.c", "b.c", "c.c"]])
        self.assertEqual(cycles({"csmcpd.c": {"sup_ctl.c"}, "sup_ctl.c": {"csmcpd.c"}}), [])


if __name__ == "__main__":
    unittest.main()
