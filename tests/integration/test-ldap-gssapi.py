#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""cacmail republish --bind gssapi against a real MIT KDC and slapd (tests/harness/with-slapd
--kerberos) with the virtual card: the user's Kerberos ticket (kinit with a password) binds as
the user's entry over StartTLS and LDAPS (no SASL layer inside TLS) and over plain LDAP without
any option (a SASL layer of 56 bits or more; a server that offers none is refused); exactly one
MOD; someone else's ticket and no ticket are refused with
one line and nothing written. Last, the card login: PKINIT with the card's PIV Authentication
key (kinit, PIN on stdin), then republish with that ticket."""
import glob
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

spec = importlib.util.spec_from_file_location(
    "ldaplib", os.path.join(os.path.dirname(os.path.abspath(__file__)), "test-ldap-lib.py"))
L = importlib.util.module_from_spec(spec)
spec.loader.exec_module(L)
from cmtest import Tap, skip  # noqa: E402

if not (len(sys.argv) > 2 and sys.argv[1] == "--inside"):
    for tool in ("kinit", "kdestroy", "klist"):
        if shutil.which(tool) is None:
            skip(f"{tool} is not installed (Debian: krb5-user; scripts/test installs it)")
    for tool in ("krb5kdc", "kdb5_util", "kadmin.local"):
        if not os.path.exists(f"/usr/sbin/{tool}"):
            skip(f"/usr/sbin/{tool} is not installed (Debian: krb5-kdc, krb5-admin-server)")
    if not glob.glob("/usr/lib/*/sasl2/libgssapiv2.so*"):
        skip("Cyrus SASL's GSSAPI module is not installed (Debian: libsasl2-modules-gssapi-mit)")
    if not glob.glob("/usr/lib/*/krb5/plugins/preauth/pkinit.so"):
        skip("MIT's PKINIT plugin is not installed (Debian: krb5-pkinit)")
pki = L.reexec(os.path.abspath(__file__), ["contractor"], slapd_opts=["--kerberos"])

E = os.environ
t = Tap()
tmp = tempfile.mkdtemp(prefix="ldap-gssapi-")
c = L.Ctx(pki, tmp)
DN = c.dn("contractor")
enc = L.card_cert(pki, "contractor", "5 - Key_Mgmt.crt")
sign = L.card_cert(pki, "contractor", "4 - Dig_Sig.crt")
CC = "FILE:" + os.path.join(tmp, "ccache")          # the user's ticket cache
CC_OTHER = "FILE:" + os.path.join(tmp, "ccache-someone")
CC_CARD = "FILE:" + os.path.join(tmp, "ccache-pkinit")   # from the card login
CARD_LOG = os.path.join(E["CACMAIL_VCARD_LOG_DIR"], "card0.log")
PLAIN_LOG = os.path.join(E["CACMAIL_SLAPD_DIR"], "plain.log")
NOLAYER_LOG = os.path.join(E["CACMAIL_SLAPD_DIR"], "nolayer.log")


def kinit(uid, ccache):
    u = c.users[uid]
    with open(u["krb5_password_file"]) as pw:
        return subprocess.run(["kinit", u["principal"]], stdin=pw, capture_output=True,
                              text=True, env=dict(E, KRB5CCNAME=ccache))


def gss_args(uri):
    """The usual command line, but GSSAPI: no password file, no bind DN."""
    u = c.users["contractor"]
    args = [a for a in c.args() if a not in ("--password-file", u["password_file"])]
    args[args.index("--uri") + 1] = uri
    return args + ["--bind", "gssapi"]


# ASan build: whole allocation stacks, so that ldap/lsan-libldap.supp can tell Cyrus SASL's
# GSSAPI plugin leak (see there) by its module; the fast unwinder stops inside libkrb5
# (the plugin is 13 frames above the allocation; a context of 24 keeps the slow unwinder cheap)
ASAN = ":".join(o for o in (E.get("ASAN_OPTIONS"),
                            "fast_unwind_on_malloc=0:malloc_context_size=24") if o)


def run(uri, *extra, ccache=CC):
    # no terminal: a password prompt would fail instead of hanging
    return c.run(*extra, base=gss_args(uri), stdin=subprocess.DEVNULL,
                 env_extra={"KRB5CCNAME": ccache, "ASAN_OPTIONS": ASAN})


def log_tail(path, offset):
    with open(path, errors="replace") as f:
        f.seek(offset)
        return f.read()


def mods(text):
    return re.findall(r"conn=(\d+) op=\d+ MOD dn=\"([^\"]*)\"", text)


def conn_lines(text, conn):
    return [l for l in text.splitlines() if f" conn={conn} " in l]


def bind_of(text, conn):
    """(dn, mech, bind_ssf) of the connection's successful SASL bind, or None."""
    for l in conn_lines(text, conn):
        m = re.search(r'BIND dn="([^"]*)" mech=(\S+) bind_ssf=(\d+)', l)
        if m:
            return m.group(1), m.group(2), int(m.group(3))
    return None


def read_plain(dn):
    """The entry on the plain (non-TLS) instance, read as the admin."""
    p = subprocess.run(["ldapsearch", "-x", "-H", E["CACMAIL_LDAP_PLAIN_URI"], "-D",
                        E["CACMAIL_LDAP_ADMIN_DN"], "-y", E["CACMAIL_LDAP_ADMIN_PASSWORD_FILE"],
                        "-b", dn, "-s", "base", "-LLL", "-o", "ldif-wrap=no", "(objectClass=*)",
                        "userCertificate;binary", "userSMIMECertificate"],
                       capture_output=True, text=True)
    e = L.parse_ldif(p.stdout)
    return e.get("usercertificate;binary", []), e.get("usersmimecertificate", [])


# ---- a ticket (the KDC log then shows who asked for which service) ---------------------------
k = kinit("contractor", CC)
t.ok(k.returncode == 0, "kinit contractor@CACMAIL.TEST with the password (stdin)",
     k.stdout + k.stderr)

# ---- republish over StartTLS with the ticket -------------------------------------------------
off = os.path.getsize(E["CACMAIL_SLAPD_LOG"])
koff = os.path.getsize(E["CACMAIL_KRB5_KDC_LOG"])
p = run(E["CACMAIL_LDAP_URI"])
t.eq(p.returncode, 0, "StartTLS + GSSAPI: exit 0")
for step in ("find entry", "read card", "sign", "write", "verify"):
    t.ok(f"] {step} ... done" in p.stdout, f"StartTLS + GSSAPI: progress shows '{step}'",
         p.stdout + p.stderr)
e = L.read_entry(DN)
t.eq(e["certs"], [enc, sign], "StartTLS + GSSAPI: userCertificate = encryption, signing cert")
t.eq(len(e["smime"]), 1, "StartTLS + GSSAPI: one userSMIMECertificate value")
if e["smime"]:
    v = L.openssl_verify(pki, e["smime"][0], tmp)
    t.ok(v.returncode == 0, "StartTLS + GSSAPI: openssl cms -verify accepts the blob", v.stderr)
log = log_tail(E["CACMAIL_SLAPD_LOG"], off)
m = mods(log)
t.eq([dn for _, dn in m], [DN], "StartTLS + GSSAPI: exactly one MOD, on the user's entry")
if m:
    conn = m[0][0]
    t.eq(bind_of(log, conn), (DN, "GSSAPI", 0),
         "the MOD's connection bound with GSSAPI as the entry, no SASL layer inside TLS "
         "(maxssf=0)")
    t.ok(any("TLS established" in l for l in conn_lines(log, conn))
         and any("STARTTLS" in l for l in conn_lines(log, conn)),
         "the MOD's connection ran StartTLS", "\n".join(conn_lines(log, conn)))
    t.ok(any(re.search(r"op=\d+ RESULT tag=103 err=0", l) for l in conn_lines(log, conn)),
         "slapd applied the MOD (self-write ACL, err=0)", "\n".join(conn_lines(log, conn)))
kl = log_tail(E["CACMAIL_KRB5_KDC_LOG"], koff)
t.ok("ISSUE" in kl and "contractor@CACMAIL.TEST for ldap/127.0.0.1@CACMAIL.TEST" in kl,
     "the KDC issued contractor a ticket for ldap/127.0.0.1 (no canonicalisation)", kl)

# controls: ldapwhoami agrees; the ACL lets only self write, also for GSSAPI identities
w = subprocess.run(["ldapwhoami", "-Q", "-Y", "GSSAPI", "-N", "-O", "maxssf=0", "-ZZ", "-H",
                    E["CACMAIL_LDAP_URI"]], capture_output=True, text=True,
                   env=dict(L.ldap_env(), KRB5CCNAME=CC))
t.eq(w.stdout.strip(), f"dn:{DN}", "control: ldapwhoami -Y GSSAPI maps the ticket to the entry")
k2 = kinit("someone", CC_OTHER)
mod = subprocess.run(["ldapmodify", "-Q", "-Y", "GSSAPI", "-N", "-O", "maxssf=0", "-ZZ", "-H",
                      E["CACMAIL_LDAP_URI"]],
                     input=f"dn: {DN}\nchangetype: modify\nreplace: userSMIMECertificate\n"
                     "userSMIMECertificate:: MAMCAQA=\n-\n", capture_output=True, text=True,
                     env=dict(L.ldap_env(), KRB5CCNAME=CC_OTHER))
t.ok(k2.returncode == 0 and mod.returncode == 50,
     "control: someone's ticket cannot write the contractor's certs (insufficient access)",
     k2.stderr + mod.stdout + mod.stderr)

# ---- JSON, and LDAPS ---------------------------------------------------------------------------
n0 = L.mod_count()
p = run(E["CACMAIL_LDAP_URI"], "--json")
j = json.loads(p.stdout) if p.returncode == 0 else {}
t.ok(j.get("tls") is True and j.get("written") and j.get("verified") and j.get("dn") == DN,
     "StartTLS + GSSAPI --json: tls, written, verified, the entry's DN", p.stdout + p.stderr)
t.eq(L.mod_count() - n0, 1, "republish --json: one MOD")
off = os.path.getsize(E["CACMAIL_SLAPD_LOG"])
p = run(E["CACMAIL_LDAPS_URI"])
log = log_tail(E["CACMAIL_SLAPD_LOG"], off)
m = mods(log)
t.ok(p.returncode == 0 and len(m) == 1 and bind_of(log, m[0][0]) == (DN, "GSSAPI", 0),
     "LDAPS + GSSAPI: published, one MOD, bound as the entry", p.stdout + p.stderr + log)

# ---- someone else's ticket: refused before writing ----------------------------------------------
n0 = L.mod_count()
p = run(E["CACMAIL_LDAP_URI"], ccache=CC_OTHER)
L.one_line_error(t, p, 5, "writes only your own entry", "someone else's ticket")
t.ok("uid=someone" in p.stderr, "someone else's ticket: the message names who you are bound as",
     p.stderr)
t.eq(L.mod_count(), n0, "someone else's ticket: nothing written")

# ---- no ticket ---------------------------------------------------------------------------------
d = subprocess.run(["kdestroy"], capture_output=True, text=True, env=dict(E, KRB5CCNAME=CC))
kl = subprocess.run(["klist", "-s"], env=dict(E, KRB5CCNAME=CC))
t.ok(d.returncode == 0 and kl.returncode != 0, "kdestroy: no ticket left", d.stderr)
n0 = L.mod_count()
before = L.read_entry(DN)
p = run(E["CACMAIL_LDAP_URI"])
L.one_line_error(t, p, 1, "get a Kerberos ticket first", "no ticket")
t.ok(p.returncode == 1 and "No Kerberos credentials available" in p.stderr,
     "no ticket: the message carries GSSAPI's reason", p.stderr)
t.ok(L.mod_count() == n0 and L.read_entry(DN) == before, "no ticket: nothing written")

# ---- plain LDAP: GSSAPI with its own security layer needs neither --insecure nor
# --allow-plain-ldap ---------------------------------------------------------------------------
k = kinit("contractor", CC)
off = os.path.getsize(PLAIN_LOG)
p = run(E["CACMAIL_LDAP_PLAIN_URI"], "--json")
log = log_tail(PLAIN_LOG, off)
m = mods(log)
j = json.loads(p.stdout) if p.returncode == 0 else {}
t.ok(k.returncode == 0 and p.returncode == 0 and "WARNING" not in p.stderr
     and j.get("tls") is False and j.get("insecure") is False,
     "plain LDAP + GSSAPI, no option: exit 0, no warning, JSON tls false and insecure false",
     p.stdout + p.stderr)
t.eq([dn for _, dn in m], [DN], "plain LDAP + GSSAPI: exactly one MOD, on the user's entry")
b = bind_of(log, m[0][0]) if m else None
t.ok(b is not None and b[:2] == (DN, "GSSAPI") and b[2] >= 56,
     "plain LDAP + GSSAPI: bound as the entry with a SASL security layer (bind_ssf >= 56)",
     f"{b}\n{log}")
t.eq(read_plain(DN)[0], [enc, sign], "plain LDAP + GSSAPI: the entry holds the new certs")
# a server without TLS that offers no SASL layer (sasl-secprops maxssf=0): refused, no MOD
off = os.path.getsize(NOLAYER_LOG)
p = run(E["CACMAIL_LDAP_NOLAYER_URI"])
L.one_line_error(t, p, 1, "SASL security layer", "plain LDAP + GSSAPI without a SASL layer")
t.eq(mods(log_tail(NOLAYER_LOG, off)), [], "plain LDAP + GSSAPI without a SASL layer: no MOD")

# ---- card login: PKINIT with the PIV Authentication key, then GSSAPI -------------------------
t.eq(E.get("CACMAIL_KRB5_PKINIT"), "1", "harness: the KDC takes PKINIT logins")
coff = os.path.getsize(CARD_LOG)
koff = os.path.getsize(E["CACMAIL_KRB5_KDC_LOG"])
ident = f"X509_user_identity=PKCS11:module_name={L.OPENSC}:certid=01"  # PIV Auth, key 9A
k = subprocess.run(["kinit", "-X", ident, c.users["contractor"]["principal"]],
                   input=L.PIN + "\n", capture_output=True, text=True,
                   env=dict(E, KRB5CCNAME=CC_CARD), timeout=60)
kl = subprocess.run(["klist"], capture_output=True, text=True, env=dict(E, KRB5CCNAME=CC_CARD))
t.ok(k.returncode == 0 and "Default principal: contractor@CACMAIL.TEST" in kl.stdout,
     "PKINIT: kinit with the card's PIV Authentication cert (PIN on stdin) logs in as "
     "contractor", k.stdout + k.stderr + kl.stdout)
with open(CARD_LOG) as f:
    f.seek(coff)
    apdus = f.read()
t.ok("C 002000800831323334" in apdus
     and ("C 0087079A" in apdus or "C 1087079A" in apdus),
     "PKINIT: the PIN went to the card and the card signed with key 9A", apdus[-2000:])
kdclog = log_tail(E["CACMAIL_KRB5_KDC_LOG"], koff)
t.ok("PKINIT" in kdclog and "ISSUE" in kdclog
     and "contractor@CACMAIL.TEST for krbtgt/CACMAIL.TEST@CACMAIL.TEST" in kdclog,
     "PKINIT: the KDC issued the ticket after PKINIT", kdclog)
off = os.path.getsize(E["CACMAIL_SLAPD_LOG"])
p = run(E["CACMAIL_LDAP_URI"], ccache=CC_CARD)
log = log_tail(E["CACMAIL_SLAPD_LOG"], off)
m = mods(log)
t.ok(p.returncode == 0 and len(m) == 1 and bind_of(log, m[0][0]) == (DN, "GSSAPI", 0)
     and L.read_entry(DN)["certs"] == [enc, sign],
     "card login, then republish --bind gssapi over StartTLS: one MOD, bound as the entry",
     p.stdout + p.stderr + log)

shutil.rmtree(tmp, ignore_errors=True)
t.done()
