#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""`cacmail thunderbird check|fix|undo` on a profile made by the real Thunderbird (Debian 12's
153 ESR), with the contractor's and the reservist's cards in two readers (the virtual cards
behind a private pcscd: tests/harness/with-pcscd; the card module registered with `cacmail nss
register --client thunderbird`). Identities with empty, stale (expired, an old card's, another
persona's, a signing-only encryption cert, PIV Auth as signing cert, a recovered key, a dbKey
without a name, a malformed dbKey) and already-right settings. After the fix, Thunderbird itself
(Marionette, chrome context) resolves every dbKey to the card's certificate and reads the names;
while it runs, fix, undo and login refuse (exit 5); undo restores prefs.js byte for byte, and
after Thunderbird rewrote prefs.js, pref by pref. Also: a damaged backup index stops everything
and is kept; a malformed prefs.js is refused with its line number; Snap and Flatpak profiles
are found and carry the pcscd note; `nss --client` picks the databases."""
import importlib.util
import json
import os
import shutil
import subprocess
import sys

from cmtest import BUILD, CACMAIL, SOURCE, Tap, make_pki, need, schema_errors, skip, tmpdir

HARNESS = os.path.join(SOURCE, "tests", "harness", "with-pcscd")
spec = importlib.util.spec_from_file_location(
    "tbcommon", os.path.join(os.path.dirname(os.path.abspath(__file__)),
                             "test-thunderbird-common.py"))
tb = importlib.util.module_from_spec(spec)
spec.loader.exec_module(tb)

for tool in ("thunderbird", "certutil", "pcscd"):
    need(tool)

if "--inside" not in sys.argv:
    # Everything runs in one private pcscd with both persona cards, so Thunderbird and cacmail
    # see the same readers.
    with tmpdir() as tmp:
        pki, _ = make_pki(tmp)
        env = dict(os.environ, CACMAIL_BUILD_ROOT=BUILD)
        p = subprocess.run([HARNESS, "--card", os.path.join(pki, "cards", "contractor"),
                            "--card", os.path.join(pki, "cards", "reservist"), "--",
                            sys.executable, os.path.abspath(__file__), "--inside", pki, tmp],
                           env=env, timeout=280)
        sys.exit(p.returncode)

pki, tmp = sys.argv[2], sys.argv[3]
t = Tap()
home = os.path.join(tmp, "home")
os.makedirs(home)
env = tb.tb_env(home)
CTR = "john.q.doe.ctr@mail.mil"
RES = "john.q.doe.mil@mail.mil"
CN = "DOE.JOHN.QUINCY.1234567890"


def cm(*args, check=None):
    p = subprocess.run([CACMAIL, *args], capture_output=True, text=True, env=env, timeout=120)
    if check is not None and p.returncode != check:
        raise AssertionError(f"cacmail {' '.join(args)}: exit {p.returncode}: {p.stderr}")
    return p


def card(name, f):
    return os.path.join(pki, "cards", name, f)


def prev(f):
    return os.path.join(pki, "previous", f)


SIG, ENC, AUTH, RETIRED = "4 - Dig_Sig.crt", "5 - Key_Mgmt.crt", "3 - PIV_Auth.crt", \
    "13 - Retired_Key_Mgmt_1.crt"

# ---- a profile made by Thunderbird; the card module; a loose old cert; a recovered key ----
prof = tb.create_profile(home)
p = cm("nss", "register", "--client", "thunderbird", check=0)
t.ok("p11-kit-proxy" in p.stdout or "opensc" in p.stdout,
     "nss register --client thunderbird registers the card module in the profile", p.stdout)
t.ok(not os.path.exists(os.path.join(home, ".pki")),
     "--client thunderbird creates no ~/.pki/nssdb", os.listdir(home))
subprocess.run(["certutil", "-A", "-d", f"sql:{prof}", "-n", "old contractor signing", "-t",
                ",,", "-i", prev("contractor-signing-old.crt")], check=True, capture_output=True)
pw = os.path.join(tmp, "escrow-pass")
with open(pw, "w") as f:
    f.write("escrow-pass\n")
os.chmod(pw, 0o600)  # cacmail refuses a password file others may read
cm("import-p12", "--nssdb", prof, "--password-file", pw,
   os.path.join(pki, "escrow", "reservist-encryption-old-3des.p12"), check=0)
recovered = prev("reservist-encryption-old.crt")


def high_serial_cert():
    """A loose certificate whose serial has its top bit set (128 bits), so that its DER serial
    is 17 bytes starting with a 00 byte, which a dbKey must keep."""
    import datetime
    from cryptography import x509 as X
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    key = ec.generate_private_key(ec.SECP256R1())
    name = X.Name([X.NameAttribute(X.oid.NameOID.COMMON_NAME, "High Serial Test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (X.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number((1 << 127) | 0x1234)
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(X.SubjectAlternativeName([X.RFC822Name(CTR)]), critical=False)
            .sign(key, hashes.SHA256()))
    path = os.path.join(tmp, "high-serial.crt")
    with open(path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    return path


HIGH = high_serial_cert()
subprocess.run(["certutil", "-A", "-d", f"sql:{prof}", "-n", "high serial", "-t", ",,", "-i",
                HIGH], check=True, capture_output=True)
raw = __import__("base64").b64decode(tb.dbkey(HIGH))
t.ok(int.from_bytes(raw[8:12], "big") == 17 and raw[16] == 0,
     "the test certificate's dbKey carries a 17-byte serial starting with 00")

# ---- identities ----
TRICKY_NAME = 'J\u00f6hn "Q." D\u0153 \\ back'
right = lambda c: (CN, tb.dbkey(card(c, SIG)), CN, tb.dbkey(card(c, ENC)))  # noqa: E731
ids = {
    "id1": (CTR, None, None, None, None),                                  # empty
    "id2": (RES, *right("reservist")),                                     # already right
    "id3": (CTR, CN, tb.dbkey(prev("contractor-signing-old.crt")),         # expired
            CN, tb.dbkey(card("contractor", RETIRED))),
    "id4": (CTR, CN, tb.dbkey(prev("reservist-signing-old.crt")),          # an old card's
            CN, tb.dbkey(card("contractor", SIG))),                        # signing-only
    "id5": (RES, *right("contractor")),                                    # another persona's
    "id6": (CTR, CN, tb.dbkey(card("contractor", AUTH)),                   # PIV Auth to sign
            CN, tb.dbkey(card("contractor", ENC))),
    "id7": (RES, CN, tb.dbkey(card("reservist", SIG)), CN, tb.dbkey(recovered)),  # recovered
    "id8": (CTR, "", tb.dbkey(card("contractor", SIG)), CN, tb.dbkey(card("contractor", ENC))),
    "id9": (CTR, CN, "not a dbkey!", CN, tb.dbkey(card("contractor", ENC))),
    "id10": (CTR, "High Serial Test", tb.dbkey(HIGH), CN, tb.dbkey(card("contractor", ENC))),
}
lines = [tb.user_pref("mail.accountmanager.accounts", "account1,account2"),
         tb.user_pref("mail.account.account1.identities", "id1,id3,id4,id6,id8,id9,id10"),
         tb.user_pref("mail.account.account2.identities", "id2,id5,id7")]
for i, (addr, sn, sk, en, ek) in ids.items():
    lines.append(tb.user_pref(f"mail.identity.{i}.useremail", addr))
    lines.append(tb.user_pref(f"mail.identity.{i}.fullName",
                              TRICKY_NAME if i == "id7" else f"John Doe {i}"))
    for key, v in (("signing_cert_name", sn), ("signing_cert_dbkey", sk),
                   ("encryption_cert_name", en), ("encryption_cert_dbkey", ek)):
        if v is not None:
            lines.append(tb.user_pref(f"mail.identity.{i}.{key}", v))
lines.append(tb.user_pref("mail.identity.id1.sign_mail", True))
lines.append(tb.user_pref("mail.identity.id1.encryptionpolicy", 2))
prefs_js = os.path.join(prof, "prefs.js")
with open(prefs_js, "a") as f:
    f.write("".join(lines))
with open(prefs_js, "rb") as f:
    before = f.read()

# ---- check ----
p = cm("thunderbird", "check", "--json")
doc = json.loads(p.stdout) if p.returncode == 0 else {}
t.eq(p.returncode, 0, "check --json runs on the default profile (profiles.ini)")
t.eq(schema_errors(doc), [], "check --json follows docs/cacmail.schema.json")
t.eq((doc.get("profile"), doc.get("running")), (os.path.realpath(prof), False),
     "the document names the profile and says Thunderbird is not running")
got = {i["id"]: i for i in doc.get("identities", [])}
t.eq(sorted(got), sorted(ids), "every identity of the accounts is checked")
expect = {
    "id1": {"signing-not-set", "encryption-not-set"},
    "id2": set(),
    "id3": {"signing-cert-expired", "encryption-cert-expired", "signing-newer-cert"},
    "id4": {"signing-dbkey-not-found", "encryption-cert-signing-only"},
    "id5": {"signing-cert-email-mismatch", "signing-cert-other-persona",
            "encryption-cert-email-mismatch", "encryption-cert-other-persona"},
    "id6": {"signing-cert-is-piv-auth"},
    "id7": {"encryption-cert-recovered", "encryption-cert-expired"},
    "id8": {"signing-name-not-set"},
    "id9": {"signing-dbkey-malformed"},
    "id10": {"signing-cert-not-on-inserted-card"},
}
for i, want in expect.items():
    g = got.get(i, {"state": None, "reasons": [], "messages": []})
    t.eq(g["state"], "stale" if want else "ok", f"{i}: state")
    t.ok(want <= set(g["reasons"]), f"{i}: reasons include {sorted(want)}", g["reasons"])
    t.eq(len(g["messages"]), len(g["reasons"]), f"{i}: one message per reason")
sha = lambda c, f: tb.sha256(card(c, f))  # noqa: E731
want_prop = {
    "id1": ("contractor", "contractor"), "id2": ("reservist", "reservist"),
    "id5": ("reservist", "reservist"), "id7": ("reservist", "reservist"),
}
for i, (s, e) in want_prop.items():
    prop = got.get(i, {}).get("proposed", {})
    t.eq(((prop.get("signing") or {}).get("sha256"), (prop.get("encryption") or {}).get("sha256")),
         (sha(s, SIG), sha(e, ENC)), f"{i}: proposes the {s} card's signing and encryption certs")
t.eq(got.get("id1", {}).get("proposed", {}).get("signing"),
     {"name": CN, "dbkey": tb.dbkey(card("contractor", SIG)), "sha256": sha("contractor", SIG)},
     "a proposal carries Thunderbird's name and the dbKey (leading 00 of a serial kept)")
t.eq(got.get("id3", {}).get("current", {}).get("signing"),
     {"name": CN, "dbkey": tb.dbkey(prev("contractor-signing-old.crt")),
      "sha256": tb.sha256(prev("contractor-signing-old.crt"))},
     "current settings resolve the dbKey to the certificate Thunderbird would use")
t.eq((got.get("id10", {}).get("current", {}).get("signing") or {}).get("sha256"),
     tb.sha256(HIGH), "a dbKey whose serial starts with 00 resolves to its certificate")
t.eq(got.get("id1", {}).get("current"), {"signing": None, "encryption": None},
     "an identity with nothing set has null current settings")
t.eq(got.get("id7", {}).get("name"), TRICKY_NAME, "a name with escapes and UTF-8 reads right")
p = cm("thunderbird", "check")
t.ok(p.returncode == 0 and "id4): STALE" in p.stdout and "proposed signing" in p.stdout,
     "check prints the identities, their state and the proposals", p.stdout[-2000:])

# ---- fix ----
p = cm("thunderbird", "fix")
t.ok(p.returncode == 0 and "Fixed 9 identities" in p.stdout, "fix writes the nine stale ones",
     p.stdout + p.stderr)
with open(prefs_js, "rb") as f:
    after = f.read()
changed = {f"mail.identity.{i}.{k}" for i in ids if i != "id2"
           for k in ("signing_cert_name", "signing_cert_dbkey", "encryption_cert_name",
                     "encryption_cert_dbkey")}
keep_old = [ln for ln in before.splitlines(keepends=True)
            if not any(f'"{n}"' in ln.decode() for n in changed)]
keep_new = [ln for ln in after.splitlines(keepends=True)
            if not any(f'"{n}"' in ln.decode() for n in changed)]
t.eq(keep_new, keep_old, "every line fix does not change is kept byte for byte")
t.ok(tb.user_pref("mail.identity.id1.sign_mail", True).encode() in after
     and tb.user_pref("mail.identity.id1.encryptionpolicy", 2).encode() in after,
     "sign_mail and encryptionpolicy are kept")
mode = oct(os.stat(prefs_js).st_mode & 0o777)
p = cm("thunderbird", "check", "--json", "--no-card")
doc = json.loads(p.stdout)
t.eq({i["id"]: i["state"] for i in doc["identities"]}, {i: "ok" for i in ids},
     "after the fix every identity is ok")
backups = os.path.join(home, ".local", "share", "cacmail", "thunderbird-backups")
st = os.stat(backups)
t.ok(oct(st.st_mode & 0o777) == "0o700"
     and all(oct(os.stat(os.path.join(backups, f)).st_mode & 0o777) == "0o600"
             for f in os.listdir(backups)),
     "the backups are 0600 files in a 0700 folder", (oct(st.st_mode), os.listdir(backups)))
p = cm("thunderbird", "fix", "--no-card")
t.ok(p.returncode == 0 and "Fixed 0 identities" in p.stdout, "a second fix writes nothing",
     p.stdout)

# ---- undo: byte for byte ----
p = cm("thunderbird", "undo")
with open(prefs_js, "rb") as f:
    t.ok(p.returncode == 0 and f.read() == before, "undo restores prefs.js byte for byte",
         p.stdout + p.stderr)
p = cm("thunderbird", "undo")
t.ok(p.returncode == 3 and "left to undo" in p.stderr, "nothing more to undo: exit 3, said so",
     (p.returncode, p.stderr))
cm("thunderbird", "fix", "--identity", "id1", check=0)
doc = json.loads(cm("thunderbird", "check", "--json", check=0).stdout)
t.eq({i["id"]: i["state"] for i in doc["identities"] if i["state"] == "ok"},
     {"id1": "ok", "id2": "ok"}, "fix --identity id1 fixes that identity only")
cm("thunderbird", "undo", check=0)
cm("thunderbird", "fix", check=0)

# ---- Thunderbird itself resolves every dbKey; while it runs nothing is written ----
RESOLVE = """
const { MailServices } = ChromeUtils.importESModule("resource:///modules/MailServices.sys.mjs");
const db = Cc["@mozilla.org/security/x509certdb;1"].getService(Ci.nsIX509CertDB);
const out = {};
for (const id of arguments[0]) {
  const i = MailServices.accounts.getIdentity(id);
  const one = (what) => {
    const key = i.getCharAttribute(what + "_cert_dbkey");
    const c = key ? db.findCertByDBKey(key) : null;
    return { name: i.getUnicharAttribute(what + "_cert_name"),
             sha256: c ? c.sha256Fingerprint.replace(/:/g, "").toLowerCase() : null,
             token: c ? c.tokenName : null, display: c ? c.displayName : null };
  };
  out[id] = { fullName: i.fullName, signing: one("signing"), encryption: one("encryption"),
              sign_mail: i.getBoolAttribute("sign_mail"),
              policy: i.getIntAttribute("encryptionpolicy") };
}
return out;
"""
tbird = tb.Thunderbird(home, prof)
try:
    seen = tbird.m.js(RESOLVE, sorted(ids))
    want = {i: (sha(s, SIG), sha(e, ENC)) for i, (s, e) in {
        "id1": ("contractor", "contractor"), "id2": ("reservist", "reservist"),
        "id3": ("contractor", "contractor"), "id4": ("contractor", "contractor"),
        "id5": ("reservist", "reservist"), "id6": ("contractor", "contractor"),
        "id7": ("reservist", "reservist"), "id8": ("contractor", "contractor"),
        "id9": ("contractor", "contractor"), "id10": ("contractor", "contractor")}.items()}
    t.eq({i: (v["signing"]["sha256"], v["encryption"]["sha256"]) for i, v in seen.items()}, want,
         "Thunderbird resolves each identity's dbKeys to the right card's certificates")
    t.ok(all(v[w]["token"] == CN and v[w]["display"] == v[w]["name"] == CN
             for v in seen.values() for w in ("signing", "encryption")),
         "... on the card's token, with the names Thunderbird shows for them",
         json.dumps(seen, indent=1)[:3000])
    found = tbird.m.js("""const c = Cc["@mozilla.org/security/x509certdb;1"]
        .getService(Ci.nsIX509CertDB).findCertByDBKey(arguments[0]);
        return c ? c.sha256Fingerprint.replace(/:/g, "").toLowerCase() : null;""", tb.dbkey(HIGH))
    t.eq(found, tb.sha256(HIGH),
         "Thunderbird resolves the dbKey with the serial's leading 00, as cacmail computes it")
    t.eq((seen["id7"]["fullName"], seen["id1"]["sign_mail"], seen["id1"]["policy"]),
         (TRICKY_NAME, True, 2), "Thunderbird reads the rest of prefs.js as it was")
    p = cm("thunderbird", "check", "--json", "--no-card")
    t.ok(p.returncode == 0 and json.loads(p.stdout)["running"] is True,
         "check works while Thunderbird runs and says it runs", p.stderr)
    for verb in ("fix", "undo", "login"):
        p = cm("thunderbird", verb, "--no-card") if verb == "fix" else cm("thunderbird", verb)
        t.ok(p.returncode == 5 and "add-on" in p.stderr and "close Thunderbird" in p.stderr,
             f"{verb} while Thunderbird runs: exit 5, pointing to closing it or the add-on",
             (p.returncode, p.stderr))
finally:
    tbird.quit()
with open(prefs_js, "rb") as f:
    rewritten = f.read()
t.ok(rewritten != after, "Thunderbird rewrote prefs.js when it quit (as it always does)")

# ---- undo after Thunderbird rewrote prefs.js: pref by pref ----
p = cm("thunderbird", "undo")
t.eq(p.returncode, 0, "undo after Thunderbird rewrote prefs.js")
doc = json.loads(cm("thunderbird", "check", "--json", "--no-card", check=0).stdout)
cur = {i["id"]: i["current"] for i in doc["identities"]}
t.eq((cur["id1"], cur["id5"]["signing"]["sha256"], cur["id9"]["signing"]["dbkey"]),
     ({"signing": None, "encryption": None}, sha("contractor", SIG), "not a dbkey!"),
     "... each setting cacmail changed is back (absent ones removed again)")

# ---- a damaged backup index stops everything and is kept ----
index = os.path.join(backups, "index.json")
with open(index, "rb") as f:
    good = f.read()
with open(index, "wb") as f:
    f.write(good[: len(good) // 2])
with open(prefs_js, "rb") as f:
    now = f.read()
p = cm("thunderbird", "fix", "--no-card")
with open(prefs_js, "rb") as f:
    t.ok(p.returncode == 3 and "damaged" in p.stderr and f.read() == now,
         "a damaged backup index: fix refuses (exit 3) and writes nothing", (p.returncode, p.stderr))
with open(index, "rb") as f:
    t.eq(f.read(), good[: len(good) // 2], "... and the damaged index is kept as it was")
with open(index, "wb") as f:
    f.write(good)

# ---- an altered backup copy stops undo, which then changes nothing ----
cm("thunderbird", "fix", "--no-card", check=0)
with open(prefs_js, "rb") as f:
    fixed = f.read()
copies = sorted((f for f in os.listdir(backups) if f.endswith("-prefs.js")),
                key=lambda f: int(f.split("-")[0]))
last_copy = os.path.join(backups, copies[-1])
with open(last_copy, "rb") as f:
    copy = f.read()
with open(last_copy, "wb") as f:
    f.write(copy.replace(b"user_pref", b"user_prof", 1))
p = cm("thunderbird", "undo")
with open(prefs_js, "rb") as f:
    t.ok(p.returncode == 3 and "altered" in p.stderr and f.read() == fixed,
         "an altered backup copy: undo refuses (exit 3) and changes nothing",
         (p.returncode, p.stderr))
with open(last_copy, "wb") as f:
    f.write(copy)
p = cm("thunderbird", "undo")
with open(prefs_js, "rb") as f:
    t.ok(p.returncode == 0 and f.read() == now, "with the copy repaired, undo works again",
         p.stderr)

# ---- a malformed prefs.js is refused with its line ----
with open(prefs_js, "ab") as f:
    f.write(b'user_pref("mail.identity.id1.fullName", "unterminated);\n')
lineno = now.count(b"\n") + 1
p = cm("thunderbird", "check", "--no-card")
t.ok(p.returncode == 3 and f"prefs.js line {lineno}:" in p.stderr,
     "a malformed prefs.js is refused, naming the line", (p.returncode, p.stderr))
with open(prefs_js, "wb") as f:
    f.write(now)

# ---- running: a live process holding .parentlock (a Flatpak's lock names a PID of its own
# namespace), or a lock symlink naming a live PID; a dead PID is a stale lock ----
holder = subprocess.Popen([sys.executable, "-c", f"""
import fcntl, sys, time
f = open({os.path.join(prof, ".parentlock")!r}, "a")
fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
print("locked", flush=True)
time.sleep(60)
"""], stdout=subprocess.PIPE, text=True)
holder.stdout.readline()
p = cm("thunderbird", "check", "--json", "--no-card")
t.ok(p.returncode == 0 and json.loads(p.stdout)["running"] is True,
     "a process holding the fcntl lock on .parentlock counts as a running Thunderbird", p.stderr)
p = cm("thunderbird", "fix", "--no-card")
t.eq(p.returncode, 5, "... so fix refuses")
holder.kill()
holder.wait()
if os.path.lexists(os.path.join(prof, "lock")):
    os.unlink(os.path.join(prof, "lock"))
os.symlink("127.0.0.1:+999999", os.path.join(prof, "lock"))
p = cm("thunderbird", "check", "--json", "--no-card")
t.ok(p.returncode == 0 and json.loads(p.stdout)["running"] is False,
     "a lock symlink naming a dead PID is a stale lock: not running", p.stderr)
os.unlink(os.path.join(prof, "lock"))

# ---- where profiles are: Snap and Flatpak, with the note; nss --client ----
home2 = os.path.join(tmp, "home2")
for rel, kind in (("snap/thunderbird/common/.thunderbird", "Snap"),
                  (".var/app/org.mozilla.Thunderbird/.thunderbird", "Flatpak")):
    root = os.path.join(home2, rel)
    os.makedirs(os.path.join(root, "p"))
    with open(os.path.join(root, "profiles.ini"), "w") as f:
        f.write("[Install4F96D1932A9F858E]\nDefault=p\n\n[Profile0]\nName=p\nIsRelative=1\n"
                "Path=p\nDefault=1\n")
env2 = tb.tb_env(home2)
p = subprocess.run([CACMAIL, "nss", "list", "--client", "thunderbird", "--json"],
                   capture_output=True, text=True, env=env2)
dbs = json.loads(p.stdout)["databases"] if p.returncode == 0 else []
t.eq([d["dir"] for d in dbs],
     [os.path.join(home2, "snap/thunderbird/common/.thunderbird/p"),
      os.path.join(home2, ".var/app/org.mozilla.Thunderbird/.thunderbird/p")],
     "the Snap and Flatpak profiles are found (nss list --client thunderbird)")
t.ok(len(dbs) == 2 and "snap connect" in " ".join(dbs[0]["warnings"])
     and "--socket=pcsc" in " ".join(dbs[1]["warnings"]),
     "each says a sandboxed Thunderbird may not reach pcscd, and what to do",
     [d["warnings"] for d in dbs])
p = subprocess.run([CACMAIL, "nss", "list", "--client", "evolution", "--json"],
                   capture_output=True, text=True, env=env2)
t.eq([d["client"] for d in json.loads(p.stdout)["databases"]], ["evolution"],
     "nss list --client evolution lists Evolution's database only")
p = subprocess.run([CACMAIL, "thunderbird", "check", "--no-card"], capture_output=True,
                   text=True, env=env2)
t.ok("may not see the card" in p.stderr and "snap/thunderbird" in p.stderr,
     "thunderbird check on a Snap profile carries the note", (p.stdout, p.stderr))
p = subprocess.run([CACMAIL, "nss", "list", "--client", "mutt"], capture_output=True, text=True,
                   env=env2)
t.eq(p.returncode, 2, "nss --client with an unknown client is a usage error")

t.done()
