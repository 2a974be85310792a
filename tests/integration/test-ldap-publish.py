#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""cacmail republish with the virtual card (OpenSC through NSS) and a real slapd: publish,
republish after renewal, unpublish, the concurrent-change guard, the blob checked by openssl,
cmsutil and gpgsm/dirmngr, one MOD per republish."""
import importlib.util
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time

spec = importlib.util.spec_from_file_location(
    "ldaplib", os.path.join(os.path.dirname(os.path.abspath(__file__)), "test-ldap-lib.py"))
L = importlib.util.module_from_spec(spec)
spec.loader.exec_module(L)
from cmtest import Tap  # noqa: E402

pki = L.reexec(os.path.abspath(__file__), ["contractor"])
t = Tap()
tmp = tempfile.mkdtemp(prefix="ldap-publish-")
c = L.Ctx(pki, tmp)
DN = c.dn("contractor")
enc = L.card_cert(pki, "contractor", "5 - Key_Mgmt.crt")
sign = L.card_cert(pki, "contractor", "4 - Dig_Sig.crt")
old_enc = L.der(os.path.join(pki, "previous", "contractor-encryption-old.crt"))
old_sign = L.der(os.path.join(pki, "previous", "contractor-signing-old.crt"))

# ---- dry run on an empty entry: nothing written ----------------------------------------------
n0 = L.mod_count()
p = c.run("--dry-run")
t.eq(p.returncode, 0, "dry run: exit 0")
t.ok("dry run: nothing written" in p.stdout and "email-encryption" in p.stdout,
     "dry run: prints the planned new values", p.stdout)
t.eq(L.mod_count(), n0, "dry run: no MOD operation")
t.eq(L.read_entry(DN)["certs"], [], "dry run: entry unchanged")

# ---- first publish ---------------------------------------------------------------------------
n0 = L.mod_count()
p = c.run()
t.eq(p.returncode, 0, "publish: exit 0")
for step in ("find entry", "read card", "sign", "write", "verify"):
    t.ok(f"] {step} ... done" in p.stdout, f"publish: progress shows '{step}'", p.stdout)
e = L.read_entry(DN)
t.eq(e["certs"], [enc, sign], "publish: userCertificate = encryption cert, then signing cert")
t.eq(len(e["smime"]), 1, "publish: one userSMIMECertificate value")
t.eq(L.mod_count() - n0, 1, "publish: exactly one MOD operation")
blob = e["smime"][0]
t.eq(blob[:2], b"\x30\x82", "blob is DER (definite length)")
v = L.openssl_verify(pki, blob, tmp)
t.ok(v.returncode == 0, "openssl cms -verify accepts the blob", v.stderr)
with open(os.path.join(tmp, "blob.der"), "wb") as f:
    f.write(blob)
cu = subprocess.run(["cmsutil", "-D", "-i", os.path.join(tmp, "blob.der"), "-d",
                     f"sql:{c.nssdb}", "-c", "/dev/null"], capture_output=True, text=True)
t.ok(cu.returncode == 0, "cmsutil -D accepts the blob", cu.stdout + cu.stderr)
bad = bytearray(blob)
bad[-10] ^= 0x01  # inside the signature
with open(os.path.join(tmp, "bad.der"), "wb") as f:
    f.write(bad)
cu = subprocess.run(["cmsutil", "-D", "-i", os.path.join(tmp, "bad.der"), "-d",
                     f"sql:{c.nssdb}", "-c", "/dev/null"], capture_output=True, text=True)
t.ok(cu.returncode != 0, "cmsutil -D rejects a blob with a flipped signature bit (control)")
pr = subprocess.run(["openssl", "cms", "-cmsout", "-print", "-inform", "der", "-in",
                     os.path.join(tmp, "blob.der")], capture_output=True, text=True)
for oid, what in (("1.2.840.113549.1.9.16.2.11", "id-aa-encrypKeyPref"),
                  ("1.3.6.1.4.1.311.16.4", "Microsoft encryption key preference"),
                  ("S/MIME Capabilities", "SMIMECapabilities")):
    t.ok(oid in pr.stdout, f"blob carries {what}", pr.stdout[-2000:])
t.ok("eContent: <ABSENT>" in pr.stdout, "blob content is absent", pr.stdout[:1500])
# the card did the signature: VERIFY and GENERAL AUTHENTICATE went to the card
with open(os.path.join(os.environ["CACMAIL_VCARD_LOG_DIR"], "card0.log")) as f:
    log = f.read()
t.ok("C 002000800831323334" in log, "the PIN went to the card")
t.ok("C 0087079C" in log or "C 1087079C" in log, "the card signed with key 9C")
t.ok("C 0087079D" in log or "C 1087079D" in log, "the card decrypted with key 9D (key proof)")

# ---- JSON ------------------------------------------------------------------------------------
p = c.run("--json")
j = json.loads(p.stdout) if p.returncode == 0 else {}
t.ok(p.returncode == 0 and j.get("written") and j.get("verified") and j.get("guard") == "assertion",
     "republish --json: written, verified, guarded by the assertion control", p.stdout + p.stderr)
t.eq([x["role"] for x in j.get("new", [])], ["email-encryption", "email-signing"],
     "JSON new values: encryption first")
t.ok(all(k in j.get("ms", {}) for k in ("find_entry", "read_card", "sign", "write", "verify")),
     "JSON has the step times")

# ---- republish after renewal: the previous card's certs are replaced -------------------------
L.set_entry(DN, [old_sign, old_enc], b"\x30\x03\x02\x01\x00")
p = c.run("--dry-run")
t.ok(p.returncode == 0 and "EXPIRED" in p.stdout and "2025-08-31" in p.stdout,
     "dry run lists the old values with their expiry", p.stdout)
n0 = L.mod_count()
p = c.run()
e = L.read_entry(DN)
t.eq(p.returncode, 0, "renewal: exit 0")
t.eq(e["certs"], [enc, sign], "renewal: old values gone, new ones in order")
t.ok(len(e["smime"]) == 1 and e["smime"][0] != b"\x30\x03\x02\x01\x00",
     "renewal: userSMIMECertificate replaced")
t.eq(L.mod_count() - n0, 1, "renewal: exactly one MOD operation")

# ---- concurrent change: the entry changes after cacmail read it ------------------------------
TTY_ENV = dict(os.environ, HOME=tmp, XDG_CONFIG_HOME=tmp)
L.set_entry(DN, [old_enc], None)
proc, tty = L.start_on_tty(c.args(pin_file=False), env=TTY_ENV)
# once cacmail asks for the PIN it has read the entry: someone else changes it now
L.answer_prompt(proc, tty, "PIN of the card", L.PIN + "\n",
                before=lambda: L.set_entry(DN, [old_sign], None))
out, err = proc.communicate(timeout=60)
os.close(tty)
t.eq(proc.returncode, 6, "concurrent change: exit 6")
t.ok("changed on the server" in err and "nothing was written" in err and err.count("\n") == 1,
     "concurrent change: one line telling the user", err)
t.eq(L.read_entry(DN)["certs"], [old_sign], "concurrent change: the other writer's value stays")

# without the assertion control (servers that lack it): the exact-value delete is the guard
L.set_entry(DN, [old_enc], None)
proc, tty = L.start_on_tty(c.args(pin_file=False) + ["--guard", "values"], env=TTY_ENV)
L.answer_prompt(proc, tty, "PIN of the card", L.PIN + "\n",
                before=lambda: L.set_entry(DN, [old_sign], None))
out, err = proc.communicate(timeout=60)
os.close(tty)
t.ok(proc.returncode == 6 and "No such attribute" in err
     and L.read_entry(DN)["certs"] == [old_sign],
     "concurrent change, value guard: error 16, nothing written", err)

# ---- wrong PIN, wrong password ---------------------------------------------------------------
bad_pin = L.write_secret(os.path.join(tmp, "bad-pin"), "654321\n")
n0 = L.mod_count()
p = c.run(pin_file=bad_pin)
L.one_line_error(t, p, 1, "refused the PIN", "wrong PIN")
t.eq(L.mod_count(), n0, "wrong PIN: nothing written")
# the second wrong PIN in a row leaves one try (the card's counter, through OpenSC's flags)
p = c.run(pin_file=bad_pin)
L.one_line_error(t, p, 1, "one more wrong PIN locks it", "second wrong PIN")
t.ok("63C" not in p.stderr, "second wrong PIN: words, not a status code", p.stderr)
t.eq(L.mod_count(), n0, "second wrong PIN: nothing written")
bad_pw = L.write_secret(os.path.join(tmp, "bad-pw"), "not-the-password\n")
args = c.args()
args[args.index("--password-file") + 1] = bad_pw
p = c.run(base=args)
L.one_line_error(t, p, 1, "refused the password", "wrong password")
t.ok(p.returncode == 1 and "not-the-password" not in p.stderr + p.stdout,
     "wrong password: the password is not echoed")

# ---- unpublish -------------------------------------------------------------------------------
p = c.run()
someone = L.card_cert(pki, "contractor", "3 - PIV_Auth.crt")  # a cert without the address
e = L.read_entry(DN)
L.set_entry(DN, e["certs"] + [someone], e["smime"][0])
n0 = L.mod_count()
p = c.run("--unpublish")
e = L.read_entry(DN)
t.eq(p.returncode, 0, "unpublish: exit 0")
t.eq(e["certs"], [someone], "unpublish: our values removed, a value without the address kept")
t.eq(e["smime"], [], "unpublish: userSMIMECertificate removed")
t.eq(L.mod_count() - n0, 1, "unpublish: one MOD operation")
p = c.run("--unpublish")
t.ok(p.returncode == 0 and "Nothing to remove" in p.stdout and L.mod_count() - n0 == 1,
     "unpublish again: nothing to do, nothing written", p.stdout)

# ---- a real client finds the result: gpgsm --list-external-keys through dirmngr -------------
p = c.run()
if shutil.which("gpgsm") and shutil.which("dirmngr"):
    gh = os.path.join(tmp, "gnupg")
    os.makedirs(gh, mode=0o700)
    uri = os.environ["CACMAIL_LDAP_URI"]
    hostport = uri.split("//", 1)[1]
    host, port = hostport.split(":")
    with open(os.path.join(gh, "dirmngr.conf"), "w") as f:
        f.write(f"ldapserver {host}:{port}:::{os.environ['CACMAIL_LDAP_BASE']}:starttls\n"
                f"ldaptimeout 10\n")
    env = dict(os.environ, GNUPGHOME=gh, LDAPTLS_CACERT=os.environ["CACMAIL_LDAP_CA"])
    g = subprocess.run(["gpgsm", "--batch", "--with-colons", "--list-external-keys", L.CTR],
                       capture_output=True, text=True, env=env, timeout=60)
    subprocess.run(["gpgconf", "--kill", "all"], env=env, capture_output=True)
    import hashlib
    fpr = hashlib.sha1(enc).hexdigest().upper()
    t.ok(fpr in g.stdout, "gpgsm --list-external-keys (dirmngr, StartTLS) returns the "
         "encryption cert", g.stdout + g.stderr)
else:
    t.ok(False, "gpgsm and dirmngr are installed (scripts/test installs them)")

shutil.rmtree(tmp, ignore_errors=True)
t.done()
