"""Helpers for the security integration tests (owner: sec). Stdlib only, plus the psql and
openssl command-line tools (Debian packages postgresql-client and openssl)."""
import base64
import glob
import json
import os
import secrets
import shutil
import subprocess
import tempfile
import time
import urllib.parse

import lib

ROOT = lib.ROOT
# The security and audit range only (0100-0139); 0140-0159 are the analytics migrations of
# issue 21, which need the domain schema.
MIGRATIONS = sorted(glob.glob(os.path.join(ROOT, "db", "migrations", "01[0-3][0-9]_*.sql")))
AUDIT_FUNCTIONS = sorted(glob.glob(os.path.join(ROOT, "db", "functions", "audit", "*.sql")))


# tool, psql, with_db, ctl and wait are lib.py's (one implementation); the names stay here for
# the security tests that use them.
tool = lib.need_tool
with_db = lib.with_db
ctl = lib.ctl_db


def psql(url, sql, check=True):
    """lib.psql; check=False: the CompletedProcess (lib.psql_run)."""
    return lib.psql(url, sql) if check else lib.psql_run(url, sql)


def apply_security_schema(url):
    """The 0100-0139 migrations, then db/functions/audit (as csmcpctl migrate applies them)."""
    for m in MIGRATIONS:
        with open(m) as f:
            psql(url, f.read())
    for m in AUDIT_FUNCTIONS:
        with open(m) as f:
            psql(url, "SET check_function_bodies = off;\n" + f.read())


class ScratchDb:
    """A throw-away database holding only the security migrations (0100-0139) and the audit
    functions (db/functions/audit), so tests that tamper with the audit chain never disturb
    the shared test database."""

    def __init__(self):
        self.base = lib.database_url()
        self.name = "csmcp_sec_%s" % secrets.token_hex(4)
        psql(with_db(self.base, "postgres"), 'CREATE DATABASE "%s";' % self.name)
        self.url = with_db(self.base, self.name)
        apply_security_schema(self.url)

    def sql(self, text, check=True):
        return psql(self.url, text, check)

    def drop(self):
        psql(with_db(self.base, "postgres"),
             'DROP DATABASE IF EXISTS "%s" WITH (FORCE);' % self.name, check=False)


def strong_key():
    return base64.b64encode(secrets.token_bytes(48)).decode()


def b64u(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Pki:
    """Self-signed certificates and an RSA signing key made with the openssl CLI."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="csmcp-sec-pki-")
        self.openssl = tool("openssl")

    def path(self, name):
        return os.path.join(self.dir, name)

    def cert(self, name="server", cn="127.0.0.1"):
        key, crt = self.path(name + ".key"), self.path(name + ".crt")
        subprocess.run([self.openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", crt,
                        "-days", "2", "-subj", "/CN=" + cn,
                        "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                       check=True, capture_output=True, timeout=60)
        os.chmod(key, 0o600)
        return crt, key

    def rsa_jwk(self, kid="k1"):
        """Returns (private key path, JWK dict) for RS256."""
        key = self.path(kid + ".pem")
        subprocess.run([self.openssl, "genpkey", "-algorithm", "RSA", "-pkeyopt",
                        "rsa_keygen_bits:2048", "-out", key], check=True, capture_output=True,
                       timeout=60)
        out = subprocess.run([self.openssl, "rsa", "-in", key, "-noout", "-modulus"],
                             check=True, capture_output=True, text=True).stdout
        n = bytes.fromhex(out.strip().split("=", 1)[1])
        return key, {"kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig", "n": b64u(n),
                     "e": "AQAB"}

    def jwt(self, key, claims, kid="k1", alg="RS256"):
        h = b64u(json.dumps({"alg": alg, "typ": "JWT", "kid": kid}).encode())
        c = b64u(json.dumps(claims).encode())
        signing = ("%s.%s" % (h, c)).encode()
        sig = subprocess.run([self.openssl, "dgst", "-sha256", "-sign", key], input=signing,
                             check=True, capture_output=True).stdout
        return "%s.%s.%s" % (h, c, b64u(sig))

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def create_key(conf_path, scopes="read", name="it", env=None):
    """csmcpctl key create on the shared test database; returns the token."""
    e = lib.clean_env()
    e.update(env or {})
    r = subprocess.run([lib.CSMCPCTL, "-c", conf_path, "key", "create", "--name", name,
                        "--scopes", scopes], env=e, capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise AssertionError("key create failed: %s" % r.stderr)
    return r.stdout.strip()


def wait(pred, timeout, what):
    return lib.wait_for(pred, timeout, what=what)


def now():
    return int(time.time())
