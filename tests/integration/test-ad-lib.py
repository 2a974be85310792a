#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Helpers of the test-ad-*.py tests (imported with importlib; not a test itself).

Each test re-executes itself inside tests/harness/with-pcscd (virtual cards of a generated PKI)
and tests/harness/with-samba-ad (a throwaway Samba AD DC), then drives the real CLI. The
test-ldap-lib.py helpers (NSS database, secrets, terminal) are shared."""
import importlib.util
import json
import os
import subprocess
import sys
import tempfile

from cmtest import CACMAIL, SOURCE, make_pki, skip

spec = importlib.util.spec_from_file_location(
    "ldaplib", os.path.join(os.path.dirname(os.path.abspath(__file__)), "test-ldap-lib.py"))
L = importlib.util.module_from_spec(spec)
spec.loader.exec_module(L)

WITH_SAMBA_AD = os.path.join(SOURCE, "tests", "harness", "with-samba-ad")
CTR = L.CTR
MIL = L.MIL
E = os.environ.get


def reexec(script, cards):
    """Outside: make a PKI, then run SCRIPT --inside PKI under with-pcscd and with-samba-ad."""
    if len(sys.argv) > 2 and sys.argv[1] == "--inside":
        return sys.argv[2]
    L.need_tools("kinit", "samba-tool")
    with tempfile.TemporaryDirectory(prefix="cacmail-ad-") as tmp:
        pki, _ = make_pki(tmp)
        cmd = [L.WITH_PCSCD]
        for c in cards:
            cmd += ["--card", os.path.join(pki, "cards", c)]
        cmd += ["--", WITH_SAMBA_AD, "--pki", pki, "--", sys.executable, script, "--inside",
                pki]
        rc = subprocess.run(cmd, env=dict(os.environ, TMPDIR=tmp)).returncode
        if rc == 77:
            skip("with-pcscd or with-samba-ad cannot run here (needs root, namespaces, samba)")
        sys.exit(rc)


def users():
    with open(E("CACMAIL_AD_USERS")) as f:
        return {u["uid"]: u for u in json.load(f)}


def ldap_env(**extra):
    return dict(os.environ, LDAPTLS_CACERT=E("CACMAIL_AD_CA"), LDAPTLS_REQCERT="demand", **extra)


def read_entry(dn, uid="someone"):
    """The entry's mail and certificate attributes as another user reads them (a GAL lookup)
    over LDAPS, values in the server's order."""
    u = users()[uid]
    p = subprocess.run(["ldapsearch", "-x", "-H", E("CACMAIL_AD_LDAPS_URI"), "-D", u["upn"],
                        "-y", u["password_file"], "-b", dn, "-s", "base", "-LLL", "-o",
                        "ldif-wrap=no", "(objectClass=*)", "mail", "userCertificate",
                        "userSMIMECertificate"], capture_output=True, text=True,
                       env=ldap_env())
    if p.returncode != 0:
        raise AssertionError(f"ldapsearch {dn} as {uid}: {p.stderr}")
    e = L.parse_ldif(p.stdout)
    return {"certs": e.get("usercertificate", []) + e.get("usercertificate;binary", []),
            "smime": e.get("usersmimecertificate", []),
            "mail": [m.decode() for m in e.get("mail", [])]}


def admin_modify(ldif):
    p = subprocess.run(["ldapmodify", "-x", "-H", E("CACMAIL_AD_LDAPS_URI"), "-D",
                        E("CACMAIL_AD_ADMIN"), "-y", E("CACMAIL_AD_ADMIN_PASSWORD_FILE")],
                       input=ldif, capture_output=True, text=True, env=ldap_env())
    if p.returncode != 0:
        raise AssertionError(f"ldapmodify: {p.stderr}\n{ldif}")


def set_entry(dn, certs, smime=None):
    """Replace the entry's certificate attributes (as the Administrator); empty lists clear."""
    ldif = f"dn: {dn}\nchangetype: modify\nreplace: userCertificate\n"
    ldif += "".join(f"userCertificate:: {L.b64(c)}\n" for c in certs)
    ldif += "-\nreplace: userSMIMECertificate\n"
    if smime is not None:
        ldif += f"userSMIMECertificate:: {L.b64(smime)}\n"
    admin_modify(ldif + "-\n")


def add_cert(dn, cert):
    admin_modify(f"dn: {dn}\nchangetype: modify\nadd: userCertificate\n"
                 f"userCertificate:: {L.b64(cert)}\n-\n")


class Ctx:
    """Paths and the base command line of one test run (inside the harnesses)."""

    def __init__(self, pki, tmp):
        self.pki = pki
        self.tmp = tmp
        self.users = users()
        self.nssdb = L.make_nssdb(tmp, pki)
        self.pin_file = L.write_secret(os.path.join(tmp, "pin"), L.PIN + "\n")

    def dn(self, uid):
        return self.users[uid]["dn"]

    def args(self, uid="contractor", email=CTR, uri=None, bind_as="upn", pin_file=None,
             nssdb=None):
        """A simple bind as UID by its UPN (bind_as "netbios": DOMAIN\\uid; None: no bind-dn,
        no password); PIN_FILE False: no --pin-file (cacmail asks on its terminal)."""
        u = self.users[uid]
        a = ["republish", "--uri", uri or E("CACMAIL_AD_URI"), "--ca-file", E("CACMAIL_AD_CA"),
             "--email", email, "--nssdb", nssdb or self.nssdb]
        if bind_as:
            a += ["--bind-dn", u[bind_as], "--password-file", u["password_file"]]
        return a + ([] if pin_file is False else ["--pin-file", pin_file or self.pin_file])

    def env(self, **extra):
        return dict(os.environ, XDG_CONFIG_HOME=os.path.join(self.tmp, "config"),
                    HOME=self.tmp, LSAN_OPTIONS=L.LSAN, **extra)

    def run(self, *extra, base=None, env_extra=None, **kw):
        args = base if base is not None else self.args(**kw)
        return subprocess.run([CACMAIL, *args, *extra], capture_output=True, text=True,
                              env=self.env(**(env_extra or {})), stdin=subprocess.DEVNULL)

    def kinit(self, uid, ccache):
        with open(self.users[uid]["password_file"]) as pw:
            return subprocess.run(["kinit", self.users[uid]["principal"]], stdin=pw,
                                  capture_output=True, text=True,
                                  env=dict(os.environ, KRB5CCNAME=ccache))

