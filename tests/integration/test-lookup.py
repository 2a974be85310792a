#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""cacmail lookup against a real slapd (tests/harness/with-slapd): a colleague's published
certificates found, checked and imported into a real NSS database (certutil -L shows it and
certutil -V accepts it for email recipients, as Evolution and Thunderbird would); the refusals
(expired, signing-only, another address, untrusted chain: reported, not imported); not found
-> exit 3; the JSON shape; --client evolution / thunderbird; the Thunderbird directory prefs
(ldaps only, refused while Thunderbird runs, undone by thunderbird undo) and the Evolution
address book made through a private evolution-source-registry (tests/harness/with-eds) and
read back through it."""
import base64
import hashlib
import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

spec = importlib.util.spec_from_file_location(
    "ldaplib", os.path.join(os.path.dirname(os.path.abspath(__file__)), "test-ldap-lib.py"))
L = importlib.util.module_from_spec(spec)
spec.loader.exec_module(L)
from cmtest import CACMAIL, SOURCE, Tap, make_pki, schema_errors, skip  # noqa: E402

WITH_EDS = os.path.join(SOURCE, "tests", "harness", "with-eds")
JANE = "jane.roe@mail.mil"
# Evolution's own LDAP backend through evolution-data-server's client library (gi), run inside
# with-eds: the contacts of the address book cacmail made, with their certificates (vCard KEY)
EBOOK = """
import json, sys
try:
    import gi
    gi.require_version("EBook", "1.2")
    gi.require_version("EDataServer", "1.2")
    gi.require_version("EBookContacts", "1.2")
    from gi.repository import EBook, EBookContacts, EDataServer
except (ImportError, ValueError):
    sys.exit(77)
src = EDataServer.SourceRegistry.new_sync(None).ref_source("cacmail-directory")
client = EBook.BookClient.connect_sync(src, 30, None)
_, contacts = client.get_contacts_sync('(is "email" "%s")' % sys.argv[1], None)
out = []
for c in contacts:
    text = c.to_string(getattr(EBookContacts.VCardFormat, "30"))
    text = text.replace("\\r\\n ", "").replace("\\n ", "")
    keys = [l.split(":", 1)[1].strip() for l in text.splitlines() if l.upper().startswith("KEY")]
    out.append({"email": c.get_property("email-1"), "keys": keys})
print(json.dumps(out))
"""
CERT_KEYS = {"sha256", "role", "chain", "valid_now", "address_match", "imported", "problems"}
PROBLEM_KEYS = {"code", "severity", "message", "hint", "certs"}


WITH_AD = os.path.join(SOURCE, "tests", "harness", "with-samba-ad")


def phase(proc, t, what):
    """Wait for one inner phase (a Popen); its TAP test points join ours (renumbered). Returns
    its exit code."""
    out, _ = proc.communicate()
    for line in out.splitlines():
        m = re.match(r"^(not ok|ok) \d+ - (.*)$", line)
        if m:
            t.ok(m.group(1) == "ok", m.group(2))
        elif line.startswith("#"):
            print(line)
    if proc.returncode not in (0, 1, 77):
        t.ok(False, f"{what}: the phase ran to its end", f"exit {proc.returncode}")
    return proc.returncode


def reexec():
    """Outside: a PKI, then this script --inside PKI under with-slapd (no card needed), then
    --inside-ad PKI under with-samba-ad; their test points are printed as one TAP stream."""
    if len(sys.argv) > 2 and sys.argv[1] in ("--inside", "--inside-ad"):
        return sys.argv[1], sys.argv[2]
    for tool in ("slapd", "ldapmodify", "certutil", "openssl"):
        if shutil.which(tool) is None and not os.path.exists(f"/usr/sbin/{tool}"):
            skip(f"{tool} is not installed (scripts/test installs it)")
    t = Tap()
    with tempfile.TemporaryDirectory(prefix="cacmail-lookup-") as tmp:
        pki, _ = make_pki(tmp)
        env = dict(os.environ, TMPDIR=tmp)
        me = [sys.executable, os.path.abspath(__file__)]
        # both at once: the DC's provisioning (CPU) overlaps the slapd part (mostly waiting)
        ad = subprocess.Popen([WITH_AD, "--pki", pki, "--", *me, "--inside-ad", pki],
                              stdout=subprocess.PIPE, text=True, env=env)
        slapd = subprocess.Popen([L.WITH_SLAPD, "--pki", pki, "--kerberos", "--", *me,
                                  "--inside", pki], stdout=subprocess.PIPE, text=True, env=env)
        if phase(slapd, t, "slapd") == 77:
            ad.kill()
            skip("with-slapd cannot run here (slapd missing)")
        if phase(ad, t, "AD") == 77:
            t.ok(os.environ.get("CI") != "true", "with-samba-ad runs (CI installs Samba)")
            print("# SKIP the Active Directory part: with-samba-ad cannot run here")
    t.done()


where, pki = reexec()
t = Tap()
tmp = tempfile.mkdtemp(prefix="lookup-")
E = os.environ.get
enc = L.card_cert(pki, "contractor", "5 - Key_Mgmt.crt")
sign = L.card_cert(pki, "contractor", "4 - Dig_Sig.crt")
old_enc = L.der(os.path.join(pki, "previous", "contractor-encryption-old.crt"))


def sha(der):
    return hashlib.sha256(der).hexdigest()


def self_signed(email):
    """A certificate for @email that chains to nothing trusted."""
    d = os.path.join(tmp, "self")
    os.makedirs(d, exist_ok=True)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", os.path.join(d, "k.pem"),
                    "-out", os.path.join(d, "c.pem"), "-days", "365", "-subj", "/CN=Mallory",
                    "-addext", f"subjectAltName=email:{email}",
                    "-addext", "keyUsage=critical,keyAgreement",
                    "-addext", "extendedKeyUsage=emailProtection"],
                   check=True, capture_output=True)
    return L.der(os.path.join(d, "c.pem"))


def nssdb(name, trust_root=True):
    return L.make_nssdb(tmp, pki, name=name, trust_root=trust_root, opensc=False)


def lookup(*args, env_extra=None, bind=True):
    """cacmail lookup as the second user (someone), over StartTLS."""
    base = ["lookup", "--uri", E("CACMAIL_LDAP_URI"), "--base", E("CACMAIL_LDAP_BASE"),
            "--ca-file", E("CACMAIL_LDAP_CA")]
    if bind:
        base += ["--bind-dn", users["someone"]["dn"],
                 "--password-file", users["someone"]["password_file"]]
    env = dict(os.environ, XDG_CONFIG_HOME=os.path.join(tmp, "config"), HOME=tmp,
               LSAN_OPTIONS=L.LSAN)
    env.update(env_extra or {})
    return subprocess.run([CACMAIL, *base, *args], capture_output=True, text=True, env=env)


def certutil_list(db):
    p = subprocess.run(["certutil", "-L", "-d", f"sql:{db}"], capture_output=True, text=True)
    return p.stdout


def certs_in(db):
    """Every certificate in @db (DER): certutil -L -a of each nickname."""
    names = [l[:60].strip() for l in certutil_list(db).splitlines()[4:] if l.strip()]
    out = []
    for n in names:
        p = subprocess.run(["certutil", "-L", "-d", f"sql:{db}", "-n", n, "-a"],
                           capture_output=True, text=True)
        out += [base64.b64decode("".join(b.split())) for b in re.findall(
            r"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----", p.stdout, re.S)]
    return out


def certutil_has(db, der):
    return der in certs_in(db)


def ad_phase():
    """Active Directory (Samba AD DC): a colleague's certs published (userCertificate, no
    ;binary), looked up by a second user with a simple bind (UPN over LDAPS, NetBIOS name over
    StartTLS) and with a Kerberos ticket (GSSAPI over ldap://, sign and seal), referrals from the
    domain root ignored; anonymous refused; what Thunderbird's own query
    (usercertificate;binary) finds there."""
    users = {u["uid"]: u for u in json.load(open(E("CACMAIL_AD_USERS")))}
    aenv = dict(os.environ, LDAPTLS_CACERT=E("CACMAIL_AD_CA"))
    ldif = f"dn: {users['contractor']['dn']}\nchangetype: modify\nreplace: userCertificate\n"
    ldif += "".join(f"userCertificate:: {L.b64(c)}\n" for c in (enc, sign, old_enc))
    p = subprocess.run(["ldapmodify", "-x", "-H", E("CACMAIL_AD_LDAPS_URI"), "-D",
                        E("CACMAIL_AD_ADMIN"), "-y", E("CACMAIL_AD_ADMIN_PASSWORD_FILE")],
                       input=ldif, capture_output=True, text=True, env=aenv)
    t.eq(p.returncode, 0, "AD: the colleague's certificates published (userCertificate)")
    someone = users["someone"]
    db = nssdb("ad-db")
    env = dict(os.environ, XDG_CONFIG_HOME=os.path.join(tmp, "config"), HOME=tmp,
               LSAN_OPTIONS=L.LSAN)

    def ad_lookup(uri, *args, target=None, env_extra=None):
        return subprocess.run([CACMAIL, "lookup", "--uri", uri, "--base", E("CACMAIL_AD_BASE"),
                               "--ca-file", E("CACMAIL_AD_CA"), "--nssdb", target or db, *args],
                              capture_output=True, text=True, env=dict(env, **(env_extra or {})),
                              stdin=subprocess.DEVNULL)

    p = ad_lookup(E("CACMAIL_AD_LDAPS_URI"), "--bind-dn", someone["upn"], "--password-file",
                  someone["password_file"], "--json", L.CTR)
    doc = json.loads(p.stdout) if p.stdout.startswith("{") else {"lookups": [{"certs": []}]}
    certs = {c["sha256"]: c for c in doc["lookups"][0]["certs"]}
    t.ok(p.returncode == 0 and list(certs) == [sha(enc), sha(sign), sha(old_enc)],
         "AD: a second user (UPN, LDAPS) finds the three certificates; the referrals from the "
         "domain root are ignored", p.stdout + p.stderr)
    t.ok(certs.get(sha(enc), {}).get("imported") and not certs.get(sha(sign), {}).get("imported")
         and not certs.get(sha(old_enc), {}).get("imported"),
         "AD: only the current encryption cert is imported", certs)
    v = subprocess.run(["certutil", "-V", "-d", f"sql:{db}", "-n", "DOE.JOHN.QUINCY.1234567890",
                        "-u", "R"], capture_output=True, text=True)
    t.ok(certutil_has(db, enc) and v.returncode == 0,
         "AD: certutil shows it and accepts it for an email recipient", v.stdout + v.stderr)
    p = ad_lookup(E("CACMAIL_AD_URI"), "--bind-dn", someone["netbios"], "--password-file",
                  someone["password_file"], L.CTR, "nobody@mail.mil")
    t.ok(p.returncode == 3 and "imported email-encryption" in p.stdout
         and "nobody@mail.mil: not found" in p.stdout,
         "AD over StartTLS, bound as DOMAIN\\user: found, and an unknown address: exit 3",
         p.stdout + p.stderr)
    p = ad_lookup(E("CACMAIL_AD_URI"), L.CTR)
    L.one_line_error(t, p, 1, "needs a bind", "AD: an anonymous lookup (AD refuses it)")
    # GSSAPI: the second user's ticket (kinit, the password from its file on stdin), then no
    # password for cacmail (no file, no terminal): ldap:// with sign and seal, as republish
    cc = "FILE:" + os.path.join(tmp, "cc-ad-someone")
    with open(someone["password_file"]) as pw:
        k = subprocess.run(["kinit", someone["principal"]], stdin=pw, capture_output=True,
                           text=True, env=dict(env, KRB5CCNAME=cc))
    t.ok(k.returncode == 0, "AD: kinit someone@REALM with the password on stdin", k.stderr)
    gdb = nssdb("ad-gssapi")
    p = ad_lookup(E("CACMAIL_AD_URI"), "--bind", "gssapi", "--json", L.CTR, target=gdb,
                  env_extra={"KRB5CCNAME": cc, "ASAN_OPTIONS": ":".join(o for o in (
                      E("ASAN_OPTIONS"), "fast_unwind_on_malloc=0:malloc_context_size=24")
                      if o)})
    doc = json.loads(p.stdout) if p.stdout.startswith("{") else {"lookups": [{"certs": []}]}
    got = {c["sha256"]: c.get("imported") for c in doc["lookups"][0]["certs"]}
    t.ok(p.returncode == 0 and got == {sha(enc): True, sha(sign): False, sha(old_enc): False}
         and certutil_has(gdb, enc),
         "AD: lookup --bind gssapi with the ticket (ldap://, sign and seal, no password) "
         "imports the colleague's encryption cert", p.stdout + p.stderr)
    # Thunderbird asks for exactly this attribute and reads back only this name
    p = subprocess.run(["ldapsearch", "-LLL", "-o", "ldif-wrap=no", "-x", "-H",
                        E("CACMAIL_AD_LDAPS_URI"), "-D", someone["upn"], "-y",
                        someone["password_file"], "-b", E("CACMAIL_AD_BASE"),
                        f"(mail={L.CTR})", "usercertificate;binary"],
                       capture_output=True, text=True, env=aenv)
    t.ok(p.returncode == 0 and "CN=contractor" in p.stdout
         and "usercertificate" not in p.stdout.lower(),
         "AD (Samba 4.17): Thunderbird's query for usercertificate;binary returns the entry "
         "without certificates: Thunderbird finds nothing there itself (docs/ldap.md)",
         p.stdout + p.stderr)


if where == "--inside-ad":
    ad_phase()
    t.done()
users = L.users()

# the colleague (contractor) published encryption, signing and an expired encryption cert; the
# reservist's entry holds the contractor's cert (another address); someone's a self-signed one
L.set_entry(users["contractor"]["dn"], [enc, sign, old_enc])
L.set_entry(users["reservist"]["dn"], [enc])
untrusted = self_signed(JANE)
L.set_entry(users["someone"]["dn"], [untrusted])

# ---- a colleague found and imported --------------------------------------------------------
db = nssdb("db1")
p = lookup("--nssdb", db, "--json", L.CTR)
t.eq(p.returncode, 0, "lookup of a published colleague: exit 0")
doc = json.loads(p.stdout) if p.returncode == 0 else {"lookups": []}
t.eq(list(doc.keys()), ["lookups"], "JSON: one member, lookups")
t.ok(not schema_errors(doc), "JSON: matches docs/cacmail.schema.json (lookup)", schema_errors(doc))
lk = doc["lookups"][0] if doc["lookups"] else {"certs": []}
t.eq(set(lk.keys()), {"address", "certs"}, "JSON: each lookup has address and certs")
t.eq(lk.get("address"), L.CTR, "JSON: the address asked for")
t.eq([c["sha256"] for c in lk["certs"]], [sha(enc), sha(sign), sha(old_enc)],
     "JSON: the three published certificates, in the server's order")
t.ok(all(set(c.keys()) == CERT_KEYS for c in lk["certs"]),
     "JSON: each cert has exactly sha256, role, chain, valid_now, address_match, imported, "
     "problems", lk["certs"])
t.ok(all(set(x.keys()) == PROBLEM_KEYS for c in lk["certs"] for x in c["problems"]),
     "JSON: problems in pick's shape (code, severity, message, hint, certs)")
by = {c["sha256"]: c for c in lk["certs"]}
e, s, o = by.get(sha(enc), {}), by.get(sha(sign), {}), by.get(sha(old_enc), {})
t.ok(e.get("role") == "email-encryption" and e.get("chain") == "ok" and e.get("valid_now")
     and e.get("address_match") and e.get("imported") and e.get("problems") == [],
     "the encryption cert: chain ok, valid, address matches, imported, no problem", e)
t.ok(s.get("role") == "email-signing" and not s.get("imported")
     and [x["code"] for x in s.get("problems", [])] == ["recipient-not-encryption"],
     "the signing cert: not imported (recipient-not-encryption)", s)
t.ok(o.get("valid_now") is False and not o.get("imported")
     and [x["code"] for x in o.get("problems", [])] == ["recipient-expired"]
     and o["problems"][0]["certs"] == [sha(old_enc)],
     "the expired encryption cert: valid_now false, not imported (recipient-expired)", o)
t.ok(certutil_has(db, enc), "certutil -L: the encryption cert is in the NSS database")
t.ok(not certutil_has(db, sign) and not certutil_has(db, old_enc),
     "certutil -L: neither the signing nor the expired cert is")
listing = certutil_list(db)
m = re.search(r"^(DOE\.JOHN\.QUINCY\.1234567890)\s+(\S*)\s*$", listing, re.M)
t.ok(m is not None and m.group(2) == ",,",
     "the imported cert has no trust flags (certutil -L: ',,')", listing)
v = subprocess.run(["certutil", "-V", "-d", f"sql:{db}", "-n", "DOE.JOHN.QUINCY.1234567890",
                    "-u", "R"], capture_output=True, text=True)
t.ok(v.returncode == 0 and "valid" in v.stdout,
     "NSS accepts it for an email recipient (certutil -V -u R), as the mail clients will",
     v.stdout + v.stderr)

# what the mail clients do with it: NSS finds the recipient's cert by address and encrypts to
# it (cmsutil -E -r ADDR, as Evolution's and Thunderbird's S/MIME code look recipients up); the
# colleague's key (its PKCS#12, in a database of its own) decrypts
msg = os.path.join(tmp, "msg.txt")
with open(msg, "w") as f:
    f.write("for your eyes only\n")
env_out = os.path.join(tmp, "msg.p7m")
cu = subprocess.run(["cmsutil", "-E", "-r", L.CTR, "-d", f"sql:{db}", "-i", msg, "-o", env_out],
                    capture_output=True, text=True)
t.ok(cu.returncode == 0, "NSS encrypts to the address with the imported cert (cmsutil -E -r ADDR)",
     cu.stdout + cu.stderr)
keydb = L.make_nssdb(tmp, pki, name="colleague", opensc=False,
                     p12s=[os.path.join(pki, "cards", "contractor", "5 - Key_Mgmt.p12")])
cu = subprocess.run(["cmsutil", "-D", "-d", f"sql:{keydb}", "-i", env_out],
                    capture_output=True, text=True)
t.ok(cu.returncode == 0 and cu.stdout == "for your eyes only\n",
     "the colleague's encryption key decrypts it", cu.stdout + cu.stderr)

# again: already there, nothing added twice
n_before = len(certutil_list(db).splitlines())
p = lookup("--nssdb", db, "--json", L.CTR)
again = json.loads(p.stdout)["lookups"][0]["certs"] if p.returncode == 0 else []
t.ok(p.returncode == 0 and [c["imported"] for c in again] == [True, False, False],
     "a second lookup: the cert is reported imported (it is there)", p.stdout + p.stderr)
t.eq(len(certutil_list(db).splitlines()), n_before, "a second lookup adds nothing")

# ---- text output and the refusals ----------------------------------------------------------
p = lookup("--nssdb", db, L.MIL)
t.eq(p.returncode, 5, "only another person's cert under the address: exit 5")
t.ok("does not carry that address" in p.stdout and "skipped" in p.stdout,
     "text: says the certificate does not carry the address", p.stdout)
p = lookup("--nssdb", db, "--json", L.MIL)
c0 = json.loads(p.stdout)["lookups"][0]["certs"][0] if p.stdout.startswith("{") else {}
t.ok(c0.get("address_match") is False and c0.get("imported") is False
     and [x["code"] for x in c0.get("problems", [])] == ["recipient-address-mismatch"],
     "JSON: address_match false, not imported (recipient-address-mismatch)", c0)

db2 = nssdb("db2")
p = lookup("--nssdb", db2, "--json", JANE)
c0 = json.loads(p.stdout)["lookups"][0]["certs"][0] if p.stdout.startswith("{") else {}
t.eq(p.returncode, 5, "an untrusted cert only: exit 5")
t.ok(c0.get("chain") in ("untrusted-root", "no-issuer") and c0.get("imported") is False
     and "chain-untrusted" in [x["code"] for x in c0.get("problems", [])],
     "JSON: untrusted chain reported (chain-untrusted), not imported", c0)
t.ok(not certutil_has(db2, untrusted), "the untrusted cert is not in the database")

db3 = nssdb("db3", trust_root=False)
p = lookup("--nssdb", db3, "--json", L.CTR)
c0 = json.loads(p.stdout)["lookups"][0]["certs"][0] if p.stdout.startswith("{") else {}
t.ok(p.returncode == 5 and c0.get("chain") == "untrusted-root" and not c0.get("imported")
     and not certutil_has(db3, enc),
     "a database that does not trust the root: the good cert is refused too (chain)", c0)
p = lookup("--nssdb", db3, "--json", "--ca", os.path.join(pki, "ca", "root.crt"), L.CTR)
c0 = json.loads(p.stdout)["lookups"][0]["certs"][0] if p.stdout.startswith("{") else {}
t.ok(p.returncode == 0 and c0.get("chain") == "ok" and c0.get("imported")
     and certutil_has(db3, enc),
     "... and imported when --ca names the root", p.stdout + p.stderr)

# ---- all or nothing: a write to cert9.db that fails (tests/fault/cacmail-failwrite.c: ENOSPC
# on the 1st, 2nd, ... write in turn) leaves the cert and the intermediate it came with both
# in the database (exit 0) or neither (exit 5, recipient-import-failed) -------------------------
shim = os.environ.get("CACMAIL_FAILWRITE")
t.ok(shim and os.path.exists(shim), "the fault injector is built (CACMAIL_FAILWRITE)", shim)
ca64 = os.path.join(pki, "ca", "email-ca-64.crt")
fired, problems = 0, []
for n in range(40):
    fdb = os.path.join(tmp, f"fault-{n}")
    os.makedirs(fdb)
    subprocess.run(["certutil", "-N", "-d", f"sql:{fdb}", "--empty-password"], check=True)
    subprocess.run(["certutil", "-A", "-d", f"sql:{fdb}", "-n", "root", "-t", "C,C,C", "-i",
                    os.path.join(pki, "ca", "root.crt")], check=True)
    mark = os.path.join(tmp, f"fault-{n}.fired")
    p = lookup("--nssdb", fdb, "--ca", ca64, "--json", L.CTR, env_extra={
        "LD_PRELOAD": shim or "", "CACMAIL_FAULT_FILE": os.path.realpath(
            os.path.join(fdb, "cert9.db")), "CACMAIL_FAULT_AFTER": str(n),
        "CACMAIL_FAULT_MARK": mark,
        "ASAN_OPTIONS": os.environ.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0"})
    have = certs_in(fdb)
    both, none = enc in have and L.der(ca64) in have, enc not in have and L.der(ca64) not in have
    if not os.path.exists(mark):
        if p.returncode != 0 or not both:
            problems.append(f"write {n} (not reached): exit {p.returncode} {p.stderr}")
        break
    fired += 1
    codes = [x["code"] for c in (json.loads(p.stdout)["lookups"][0]["certs"]
                                 if p.stdout.startswith("{") else []) for x in c["problems"]]
    if not ((p.returncode == 0 and both) or (p.returncode == 5 and none
                                              and "recipient-import-failed" in codes)):
        problems.append(f"write {n}: exit {p.returncode}, cert {enc in have}, "
                        f"CA {L.der(ca64) in have}: {p.stderr.strip()}")
t.ok(fired > 0 and not problems,
     f"a failed write at each of {fired} points: the cert and its CA both stored or neither",
     "\n".join(problems))

# ---- not found, several addresses, anonymous ----------------------------------------------
p = lookup("--nssdb", db, "--json", "nobody@mail.mil")
t.eq(p.returncode, 3, "nobody under the address: exit 3")
t.eq(json.loads(p.stdout) if p.stdout.startswith("{") else None,
     {"lookups": [{"address": "nobody@mail.mil", "certs": []}]},
     "JSON: the address with no certs")
p = lookup("--nssdb", db, "--json", L.CTR, "nobody@mail.mil")
doc = json.loads(p.stdout) if p.stdout.startswith("{") else {"lookups": []}
t.ok(p.returncode == 3 and [x["address"] for x in doc["lookups"]] == [L.CTR, "nobody@mail.mil"],
     "two addresses, one not found: both reported in order, exit 3", p.stdout)
p = lookup("--nssdb", nssdb("db4"), "--json", L.CTR, bind=False)
t.ok(p.returncode == 0 and json.loads(p.stdout)["lookups"][0]["certs"][0]["imported"],
     "an anonymous lookup (a read-only directory such as DoD 411) imports too", p.stderr)

# ---- GSSAPI with the second user's Kerberos ticket (no password given to cacmail) --------------
k = subprocess.run(["kinit", f"someone@{E('CACMAIL_KRB5_REALM')}"],
                   stdin=open(users["someone"]["krb5_password_file"]), capture_output=True,
                   text=True)
p = lookup("--nssdb", nssdb("db-gssapi"), "--bind", "gssapi", "--json", L.CTR, bind=False)
t.ok(k.returncode == 0 and p.returncode == 0
     and json.loads(p.stdout)["lookups"][0]["certs"][0]["imported"],
     "a GSSAPI lookup with a Kerberos ticket (StartTLS, no password) imports too",
     k.stderr + p.stdout + p.stderr)

# ---- the server: TLS verified, wrong password, deadline ------------------------------------
p = subprocess.run([CACMAIL, "lookup", "--uri", E("CACMAIL_LDAP_URI"), "--base",
                    E("CACMAIL_LDAP_BASE"), "--nssdb", db, L.CTR], capture_output=True,
                   text=True, env=dict(os.environ, HOME=tmp,
                                       XDG_CONFIG_HOME=os.path.join(tmp, "config")))
L.one_line_error(t, p, 4, "could not be verified", "server cert not verifiable (no --ca-file)")
p = lookup("--nssdb", os.path.join(tmp, "no-such-db"), L.CTR)
L.one_line_error(t, p, 4, "no-such-db", "a target database that does not exist (exit 4, not 3)")
bad_pw = L.write_secret(os.path.join(tmp, "bad.pw"), "wrong\n")
p = lookup("--nssdb", db, "--bind-dn", users["someone"]["dn"], "--password-file", bad_pw, L.CTR)
L.one_line_error(t, p, 1, "refused the password", "wrong password")

# the password typed on the terminal (no echo), and Ctrl-C at that prompt
tty_args = ["lookup", "--uri", E("CACMAIL_LDAP_URI"), "--base", E("CACMAIL_LDAP_BASE"),
            "--ca-file", E("CACMAIL_LDAP_CA"), "--bind-dn", users["someone"]["dn"],
            "--nssdb", db, L.CTR]
tty_env = dict(os.environ, HOME=tmp, XDG_CONFIG_HOME=os.path.join(tmp, "config"),
               LSAN_OPTIONS=L.LSAN)
pw = open(users["someone"]["password_file"]).read().splitlines()[0]
proc, master = L.start_on_tty(tty_args, env=tty_env)
L.answer_prompt(proc, master, "LDAP password for", pw + "\n")
out, err = proc.communicate(timeout=60)
os.close(master)
t.ok(proc.returncode == 0 and "imported email-encryption" in out,
     "the LDAP password asked on the terminal", out + err)
proc, master = L.start_on_tty(tty_args, env=tty_env)
L.answer_prompt(proc, master, "LDAP password for", "",
                before=lambda: os.killpg(proc.pid, signal.SIGINT))
try:
    out, err = proc.communicate(timeout=10)
except subprocess.TimeoutExpired:
    proc.kill()
    out, err = proc.communicate()
os.close(master)
t.ok(proc.returncode == 130 and "cancelled" in err,
     "Ctrl-C at the password prompt ends the lookup (exit 130)", f"{proc.returncode} {err}")

stalled = L.Stalled()
start = time.monotonic()
p = lookup("--nssdb", db, "--uri", stalled.uri(), "--timeout", "1", L.CTR)
took = time.monotonic() - start
L.one_line_error(t, p, 4, "timed out", "a server that never answers (--timeout 1)")
t.ok(took < 5, f"... given up after its deadline ({took:.1f} s)")

# ---- --client: the mail clients' own databases ---------------------------------------------
home = os.path.join(tmp, "home")
evo_db = os.path.join(home, ".pki", "nssdb")
os.makedirs(evo_db)
subprocess.run(["certutil", "-N", "-d", f"sql:{evo_db}", "--empty-password"], check=True)
subprocess.run(["certutil", "-A", "-d", f"sql:{evo_db}", "-n", "root", "-t", "C,C,C", "-i",
                os.path.join(pki, "ca", "root.crt")], check=True)
prof = os.path.join(home, ".thunderbird", "p1")
os.makedirs(prof)
with open(os.path.join(home, ".thunderbird", "profiles.ini"), "w") as f:
    f.write("[Profile0]\nName=p1\nIsRelative=1\nPath=p1\nDefault=1\n")
subprocess.run(["certutil", "-N", "-d", f"sql:{prof}", "--empty-password"], check=True)
cas = [os.path.join(pki, "ca", c + ".crt") for c in ("root", "email-ca-64")]
henv = {"HOME": home, "XDG_CONFIG_HOME": os.path.join(home, ".config"),
        "XDG_DATA_HOME": os.path.join(home, ".local", "share")}
p = lookup("--client", "evolution", "--ca", cas[1], L.CTR, env_extra=henv)
t.ok(p.returncode == 0 and certutil_has(evo_db, enc),
     "--client evolution: imported into ~/.pki/nssdb (the intermediate from --ca)",
     p.stdout + p.stderr)
t.ok(certutil_has(evo_db, L.der(cas[1])),
     "... with the intermediate CA its chain needs (no trust), so NSS can verify it")
p = lookup("--client", "thunderbird", "--ca", cas[0], "--ca", cas[1], L.CTR, env_extra=henv)
t.ok(p.returncode == 0 and certutil_has(prof, enc) and f"sql:{prof}" in p.stdout,
     "--client thunderbird: imported into the default profile's database", p.stdout + p.stderr)
t.ok(not certutil_has(prof, L.der(cas[0])),
     "the root from --ca is not put into the database (trusting it is cacmail nss trust's)")

# ---- what Thunderbird's own fetch gets here: it asks for usercertificate;binary and reads
# back only an attribute of that name (certFetchingStatus.js); OpenLDAP answers with it ------
p = subprocess.run(["ldapsearch", "-LLL", "-o", "ldif-wrap=no", "-x", "-ZZ", "-H",
                    E("CACMAIL_LDAP_URI"), "-D", users["someone"]["dn"], "-y",
                    users["someone"]["password_file"], "-b", E("CACMAIL_LDAP_BASE"),
                    f"(mail={L.CTR})", "usercertificate;binary"],
                   capture_output=True, text=True, env=L.ldap_env())
t.ok(p.returncode == 0 and f"userCertificate;binary:: {L.b64(enc)}" in p.stdout,
     "OpenLDAP answers Thunderbird's query with userCertificate;binary (found there)",
     p.stdout + p.stderr)

# ---- usage --------------------------------------------------------------------------------
p = subprocess.run([CACMAIL, "lookup", "--help"], capture_output=True, text=True)
t.ok(p.returncode == 0 and p.stdout.startswith("Usage:") and "  lookup [OPTION" in p.stdout,
     "cacmail lookup --help runs cacmail-lookup under the command's name", p.stdout[:200])
for args, what in ((["--nssdb", db], "no address"),
                   (["--client", "outlook", L.CTR], "an unknown client"),
                   (["--nssdb", db, "--client", "evolution", L.CTR], "--nssdb with --client")):
    p = subprocess.run([CACMAIL, "lookup", *args], capture_output=True, text=True)
    t.ok(p.returncode == 2 and p.stderr.startswith("cacmail: usage error:"),
         f"{what}: usage error (exit 2)", (p.returncode, p.stderr))

# ---- Thunderbird's directory prefs ---------------------------------------------------------
ldaps = E("CACMAIL_LDAPS_URI")
prefs_js = os.path.join(prof, "prefs.js")
with open(prefs_js, "w") as f:
    f.write('user_pref("mail.identity.id1.useremail", "jane.roe@mail.mil");\n')
cfg = ["lookup", "--uri", ldaps, "--base", E("CACMAIL_LDAP_BASE"), "--bind-dn",
       users["someone"]["dn"]]
env = dict(os.environ, LSAN_OPTIONS=L.LSAN, **henv)
p = subprocess.run([CACMAIL, *cfg, "--configure", "thunderbird", "--profile", prof, "--json"],
                   capture_output=True, text=True, env=env)
t.eq(p.returncode, 0, "--configure thunderbird: exit 0")
text = open(prefs_js).read()
want = {
    "ldap_2.servers.cacmail.uri": f"{ldaps}/{E('CACMAIL_LDAP_BASE')}??sub?(objectclass=*)",
    "ldap_2.servers.cacmail.auth.dn": users["someone"]["dn"],
    "ldap_2.autoComplete.directoryServer": "ldap_2.servers.cacmail",
}
for k, v in want.items():
    t.ok(f'user_pref("{k}", "{v}");' in text, f"prefs.js: {k} = {v}", text)
t.ok('user_pref("ldap_2.autoComplete.useDirectory", true);' in text,
     "prefs.js: ldap_2.autoComplete.useDirectory = true")
t.ok('user_pref("mail.identity.id1.useremail", "jane.roe@mail.mil");' in text,
     "prefs.js: the other prefs stay")
p = subprocess.run([CACMAIL, *cfg, "--configure", "thunderbird", "--profile", prof],
                   capture_output=True, text=True, env=env)
t.ok(p.returncode == 0 and "set already" in p.stdout, "a second --configure changes nothing",
     p.stdout + p.stderr)
p = subprocess.run([CACMAIL, "lookup", "--uri", E("CACMAIL_LDAP_URI"), "--base", "dc=x",
                    "--configure", "thunderbird", "--profile", prof],
                   capture_output=True, text=True, env=env)
t.ok(p.returncode != 0 and "ldaps://" in p.stderr and "StartTLS" in p.stderr,
     "an ldap:// URI is refused for Thunderbird (no StartTLS there: clear text)", p.stderr)
os.symlink(f"127.0.0.1:+{os.getpid()}", os.path.join(prof, "lock"))
with open(prefs_js, "rb") as f:
    before = f.read()
p = subprocess.run([CACMAIL, "lookup", "--uri", ldaps, "--base", "dc=other", "--configure",
                    "thunderbird", "--profile", prof], capture_output=True, text=True, env=env)
t.ok(p.returncode == 5 and open(prefs_js, "rb").read() == before,
     "refused while Thunderbird runs (exit 5), prefs.js untouched", p.stderr)
os.unlink(os.path.join(prof, "lock"))
p = subprocess.run([CACMAIL, "thunderbird", "undo", "--profile", prof], capture_output=True,
                   text=True, env=env)
t.ok(p.returncode == 0 and "ldap_2" not in open(prefs_js).read(),
     "cacmail thunderbird undo removes the directory prefs", p.stdout + p.stderr)

# ---- Evolution's address book through its registry -----------------------------------------
if not os.path.exists("/usr/libexec/evolution-source-registry"):
    t.ok(os.environ.get("CI") != "true", "evolution-source-registry present (CI)")
else:
    ehome = os.path.join(tmp, "ehome")
    os.makedirs(ehome)
    # bound as someone (read back twice), then anonymous, and Evolution's own LDAP backend
    # (evolution-addressbook-factory, D-Bus activated) asked for the colleague's contact; the
    # test's LSAN_OPTIONS (EDS suppressions): nothing here runs libldap in cacmail
    script = ("set -e; c=$1; shift; \"$c\" \"$@\" --json > \"$CACMAIL_EDS_HOME/first.json\"; "
              "\"$c\" \"$@\" --json > \"$CACMAIL_EDS_HOME/second.json\"; "
              "\"$c\" lookup --uri \"$URI\" --base \"$BASE\" --configure evolution >/dev/null; "
              "/usr/bin/python3 -c \"$EBOOK\" \"$ADDR\" > \"$CACMAIL_EDS_HOME/ebook.json\" || "
              "echo $? > \"$CACMAIL_EDS_HOME/ebook.rc\"")
    p = subprocess.run([WITH_EDS, "--home", ehome, "--", "bash", "-c", script, "x", CACMAIL,
                        "lookup", "--uri", ldaps, "--base", E("CACMAIL_LDAP_BASE"),
                        "--bind-dn", users["someone"]["dn"], "--configure", "evolution"],
                       capture_output=True, text=True,
                       env=dict(os.environ, URI=ldaps,
                                BASE=E("CACMAIL_LDAP_BASE"), ADDR=L.CTR, EBOOK=EBOOK,
                                LDAPTLS_CACERT=E("CACMAIL_LDAP_CA")))
    t.eq(p.returncode, 0, "--configure evolution (private registry): exit 0")
    rd = lambda n: json.load(open(os.path.join(ehome, n))) if os.path.getsize(
        os.path.join(ehome, n)) else {}
    first = rd("first.json") if p.returncode == 0 else {}
    second = rd("second.json") if p.returncode == 0 else {}
    port = int(ldaps.rsplit(":", 1)[1].strip("/"))
    t.ok(first.get("created") is True and first.get("backend") == "ldap"
         and first.get("host") == "127.0.0.1" and first.get("port") == port
         and first.get("security") == "ldaps" and first.get("root_dn") == E("CACMAIL_LDAP_BASE")
         and first.get("scope") == "subtree" and first.get("auth") == "binddn"
         and first.get("user") == users["someone"]["dn"] and first.get("autocomplete"),
         "read back through the registry: an LDAP address book for the directory", first)
    t.ok(second.get("created") is False and second.get("uid") == first.get("uid"),
         "a second run updates the same address book", second)
    src = os.path.join(ehome, ".config", "evolution", "sources", "cacmail-directory.source")
    text = open(src).read() if os.path.exists(src) else ""
    t.ok("[LDAP Backend]" in text and "Parent=ldap-stub" in text,
         "the registry wrote cacmail-directory.source (parent ldap-stub, [LDAP Backend])", text)
    ebook_rc = os.path.join(ehome, "ebook.rc")
    if os.path.exists(ebook_rc) and open(ebook_rc).read().strip() == "77":
        t.ok(os.environ.get("CI") != "true", "python3-gi and gir1.2-ebook-1.2 present (CI)")
    else:
        got = rd("ebook.json") if os.path.exists(os.path.join(ehome, "ebook.json")) else []
        t.ok(len(got) == 1 and got[0]["email"] == L.CTR and L.b64(enc) in got[0]["keys"],
             "Evolution's LDAP backend finds the colleague in that address book, with the "
             "encryption certificate", got)

t.done()
