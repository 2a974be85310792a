#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""cacmail republish against Active Directory (a Samba AD DC from tests/harness/with-samba-ad)
with the virtual cards: the server kind is told by the root DSE; publish (simple bind by UPN over
StartTLS) and republish (DOMAIN\\user over LDAPS) write userCertificate without ;binary,
encryption cert first, and userSMIMECertificate on the user's own object, read back by a second
user; refusals (anonymous, another user's object, address mismatch, expired, untrusted) write
nothing; a value someone adds during a first publish ends up behind ours; GSSAPI with a
password-obtained ticket over ldap:// signs and seals (and Samba refuses GSSAPI inside TLS, also
with maxssf=0); --domain finds the DC by the DC's own DNS SRV records, and ends at its deadline when DNS does not answer."""
import importlib.util
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time

spec = importlib.util.spec_from_file_location(
    "adlib", os.path.join(os.path.dirname(os.path.abspath(__file__)), "test-ad-lib.py"))
A = importlib.util.module_from_spec(spec)
spec.loader.exec_module(A)
L = A.L
from cmtest import Tap  # noqa: E402

pki = A.reexec(os.path.abspath(__file__), ["contractor"])
E = os.environ
t = Tap()
tmp = tempfile.mkdtemp(prefix="ad-publish-")
c = A.Ctx(pki, tmp)
DN = c.dn("contractor")
enc = L.card_cert(pki, "contractor", "5 - Key_Mgmt.crt")
sign = L.card_cert(pki, "contractor", "4 - Dig_Sig.crt")
old = [L.der(os.path.join(pki, "previous", "contractor-signing-old.crt")),
       L.der(os.path.join(pki, "previous", "contractor-encryption-old.crt"))]
OLD_BLOB = b"\x30\x03\x02\x01\x07"


def unchanged(what, before, dn=DN):
    t.eq(A.read_entry(dn), before, f"{what}: the entry is unchanged")


# ---- the server kind, from the root DSE ----------------------------------------------------
p = c.run("--dry-run", "--json")
j = json.loads(p.stdout) if p.returncode == 0 else {}
t.ok(j.get("server") == "active-directory" and "no ;binary" in j.get("rules", ""),
     "dry run: the root DSE says Active Directory, and which rules apply", p.stdout + p.stderr)
t.eq(j.get("dn"), DN, "dry run: the entry found after the bind (UPN), under the domain's "
     "defaultNamingContext (no --base)")
p = c.run("--dry-run")
t.ok(p.returncode == 0 and "server: Active Directory" in p.stdout,
     "dry run, text: says the server is Active Directory", p.stdout + p.stderr)

# ---- publish: simple bind by UPN over StartTLS ---------------------------------------------
p = c.run()
t.eq(p.returncode, 0, "publish (UPN, StartTLS): exit 0")
t.ok("verified: the server holds exactly what was written, in this order" in p.stdout,
     "publish: read back and verified, in order", p.stdout + p.stderr)
e = A.read_entry(DN)
t.eq(e["certs"], [enc, sign], "publish, read by a second user: userCertificate = encryption, "
     "signing cert")
t.eq(len(e["smime"]), 1, "publish, read by a second user: one userSMIMECertificate value")
if e["smime"]:
    v = L.openssl_verify(pki, e["smime"][0], tmp)
    t.ok(v.returncode == 0, "publish: openssl cms -verify accepts the blob", v.stderr)

# ---- republish over LDAPS as DOMAIN\user: old values go, new ones in order -----------------
A.set_entry(DN, old, OLD_BLOB)
p = c.run("--json", uri=E["CACMAIL_AD_LDAPS_URI"], bind_as="netbios")
j = json.loads(p.stdout) if p.returncode == 0 else {}
t.ok(j.get("written") and j.get("verified") and j.get("old_values") == 2 and j.get("tls"),
     "republish (DOMAIN\\user, LDAPS): written, verified, two old values", p.stdout + p.stderr)
e = A.read_entry(DN)
t.eq(e["certs"], [enc, sign], "republish, read by a second user: only the new certs, "
     "encryption first")
t.ok(len(e["smime"]) == 1 and e["smime"][0] != OLD_BLOB,
     "republish: the old userSMIMECertificate was replaced")

# ---- refusals: nothing written -------------------------------------------------------------
A.set_entry(DN, old, OLD_BLOB)
before = A.read_entry(DN)
p = c.run(bind_as=None)
L.one_line_error(t, p, 2, "refuses anonymous searches", "no bind DN (AD)")
p = c.run(uid="someone")
L.one_line_error(t, p, 5, "writes only your own entry", "someone else binds for the "
                 "contractor's address")
t.ok("CN=someone" in p.stderr, "another user's object: the message names who you are bound as",
     p.stderr)
unchanged("another user's object", before)
p = c.run("--entry-dn", c.dn("reservist"), uid="reservist")
L.one_line_error(t, p, 5, "not " + A.CTR, "address mismatch")
p = c.run("--at", "2029-01-01")
L.one_line_error(t, p, 5, "expired", "expired certificates")
untrusted = L.make_nssdb(tmp, pki, name="untrusted", trust_root=False)
p = c.run(nssdb=untrusted)
t.eq(p.returncode, 5, "untrusted root: exit 5")
unchanged("refusals", before)

# ---- a value added by someone else during a first publish ends up behind ours ---------------
A.set_entry(DN, [], None)
foreign = old[1]


def concurrent_add():
    A.add_cert(DN, foreign)


proc, tty = L.start_on_tty(c.args(pin_file=False) + ["--json"], env=c.env())
L.answer_prompt(proc, tty, "PIN of the card", L.PIN + "\n", before=concurrent_add)
out, err = proc.communicate(timeout=120)
os.close(tty)
j = json.loads(out) if proc.returncode == 0 else {}
t.ok(proc.returncode == 0 and j.get("foreign_values") == 1 and j.get("moved_foreign") is True,
     "concurrent add during a first publish: exit 0, one foreign value moved", out + err)
t.eq(A.read_entry(DN)["certs"], [enc, sign, foreign],
     "concurrent add: read by a second user, ours first, the added value behind")

# ---- GSSAPI with a password-obtained ticket --------------------------------------------------
# ASan build: whole allocation stacks, so that ldap/lsan-libldap.supp can tell Cyrus SASL's
# GSSAPI plugin leak (one credential per bind with maxssf=0, see there) by its module
ASAN = ":".join(o for o in (E.get("ASAN_OPTIONS"),
                            "fast_unwind_on_malloc=0:malloc_context_size=24") if o)


def gss(ccache):
    return {"KRB5CCNAME": ccache, "ASAN_OPTIONS": ASAN}


CC = "FILE:" + os.path.join(tmp, "cc-contractor")
CC_OTHER = "FILE:" + os.path.join(tmp, "cc-someone")
k = c.kinit("contractor", CC)
t.ok(k.returncode == 0, "kinit contractor@AD.CACMAIL.TEST with the password on stdin",
     k.stdout + k.stderr)
A.set_entry(DN, old, OLD_BLOB)
p = c.run("--bind", "gssapi", "--json", bind_as=None, env_extra=gss(CC))
j = json.loads(p.stdout) if p.returncode == 0 else {}
t.ok(p.returncode == 0 and j.get("tls") is False and j.get("insecure") is False
     and j.get("verified") and "WARNING" not in p.stderr,
     "GSSAPI over ldap://: published with sign and seal (no TLS, not insecure), no warning",
     p.stdout + p.stderr)
t.eq(A.read_entry(DN)["certs"], [enc, sign], "GSSAPI republish: the new certs, in order")
p = c.run("--bind", "gssapi", uri=E["CACMAIL_AD_LDAPS_URI"], bind_as=None,
          env_extra=gss(CC))
L.one_line_error(t, p, 1, "use its ldap:// URI", "GSSAPI over LDAPS (Samba refuses it)")
k = c.kinit("someone", CC_OTHER)
before = A.read_entry(DN)
p = c.run("--bind", "gssapi", bind_as=None, env_extra=gss(CC_OTHER))
L.one_line_error(t, p, 5, "writes only your own entry", "someone else's ticket (GSSAPI)")
unchanged("someone else's ticket", before)
# what Samba accepts: GSSAPI only with sign and seal on ldap://, never inside TLS
w = [subprocess.run(["ldapwhoami", "-Y", "GSSAPI", "-N", *o, "-H", u], capture_output=True,
                    text=True, env=A.ldap_env(KRB5CCNAME=CC))
     for o, u in ((["-O", "maxssf=0"], E["CACMAIL_AD_LDAPS_URI"]),
                  (["-O", "maxssf=0", "-ZZ"], E["CACMAIL_AD_URI"]),
                  ([], E["CACMAIL_AD_LDAPS_URI"]))]
t.ok("Sign or Seal are required" in w[0].stderr and "Sign or Seal are required" in w[1].stderr
     and "not allowed if TLS is used" in w[2].stderr,
     "control: Samba refuses GSSAPI over LDAPS and StartTLS with maxssf=0 (sign or seal "
     "required) and a SASL layer inside TLS", "".join(x.stderr for x in w))

# ---- --domain: the servers from DNS SRV _ldap._tcp.DOMAIN (the DC's own DNS) ----------------
A.set_entry(DN, old, OLD_BLOB)
args = [a for a in c.args() if a not in ("--uri", E["CACMAIL_AD_URI"])]
p = c.run("--domain", E["CACMAIL_AD_DOMAIN"], "--json", base=args)
j = json.loads(p.stdout) if p.returncode == 0 else {}
t.eq(j.get("uri"), f"ldap://{E['CACMAIL_AD_HOST']}:389",
     "--domain: the URI from the SRV record (no --uri, no --base)")
t.ok(j.get("verified") and A.read_entry(DN)["certs"] == [enc, sign],
     "--domain: published and verified", p.stdout + p.stderr)
p = c.run("--domain", "nowhere.invalid", base=args)
L.one_line_error(t, p, 4, "no LDAP server found for the domain nowhere.invalid",
                 "--domain without SRV records")
# a DNS server that takes the question and never answers (the resolver itself would wait 90 s):
# the SRV lookup ends at the deadline
mute = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
mute.bind(("127.0.0.3", 53))
conf = os.path.join(tmp, "resolv-mute.conf")
with open(conf, "w") as f:
    f.write("nameserver 127.0.0.3\noptions timeout:30 attempts:3\n")
t0 = time.monotonic()
p = subprocess.run(["unshare", "--mount", "sh", "-c",
                    'mount --bind "$0" /etc/resolv.conf && exec "$@"', conf, A.CACMAIL,
                    *args, "--domain", "example.test", "--timeout", "2"],
                   capture_output=True, text=True, env=c.env(), stdin=subprocess.DEVNULL)
took = time.monotonic() - t0
L.one_line_error(t, p, 4, "timed out (no answer within 2 s)", "--domain, DNS never answers")
t.ok(took < 10, f"--domain, DNS never answers: ends at the deadline ({took:.1f} s)")
mute.close()
p = c.run("--domain", E["CACMAIL_AD_DOMAIN"], "--bind-dn", "contractor", base=[
    a for a in args if a not in ("--bind-dn", c.users["contractor"]["upn"])] + ["--dry-run"])
t.eq(p.returncode, 0, "--domain + a bare --bind-dn user name: bound as NAME@REALM")

shutil.rmtree(tmp, ignore_errors=True)
t.done()
