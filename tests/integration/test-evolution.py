#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""`cacmail evolution check|fix|undo` against a real evolution-source-registry on a private
D-Bus (tests/harness/with-eds) and a real NSS database made with certutil/pk12util: empty,
stale (missing nickname, wrong address, signing-only encryption cert, PIV Auth as signing
cert, expired) and already-right identities, two personas; fix writes only what is stale,
through the registry; undo restores the exact previous values."""
import configparser
import glob
import json
import os
import subprocess

from cmtest import CACMAIL, GSA_CARDS, SOURCE, Tap, make_pki, need, skip, tmpdir

HARNESS = os.path.join(SOURCE, "tests", "harness", "with-eds")
for tool in ("certutil", "pk12util", "dbus-run-session"):
    need(tool)
if not os.path.exists("/usr/libexec/evolution-source-registry"):
    skip("evolution-data-server is not installed (scripts/test installs it)")
if subprocess.run([CACMAIL, "evolution", "--help"], capture_output=True).returncode != 0:
    skip("cacmail was built without evolution-data-server-dev")

t = Tap()
SECTION = "Secure MIME (S/MIME)"


def nicknames(db):
    out = subprocess.run(["certutil", "-L", "-d", f"sql:{db}"], capture_output=True, text=True,
                         check=True).stdout
    return {line[:60].strip() for line in out.splitlines()[4:] if line.strip()}


def import_p12(db, path):
    before = nicknames(db)
    subprocess.run(["pk12util", "-i", path, "-d", f"sql:{db}", "-W", ""], check=True,
                   capture_output=True)
    new = nicknames(db) - before
    return new.pop() if new else None


def write_source(home, uid, address, signing="", encryption="", algorithm=""):
    cp = configparser.ConfigParser(interpolation=None)
    cp.optionxform = str
    cp["Data Source"] = {"DisplayName": uid, "Enabled": "true", "Parent": ""}
    cp["Mail Identity"] = {"Address": address, "Name": "John Doe"}
    cp[SECTION] = {"SigningCertificate": signing, "EncryptionCertificate": encryption,
                   "SignByDefault": "true", "EncryptByDefault": "false",
                   "EncryptToSelf": "true", "SigningAlgorithm": algorithm}
    with open(os.path.join(home, ".config", "evolution", "sources", f"{uid}.source"), "w") as f:
        cp.write(f, space_around_delimiters=False)


def smime(home, uid):
    cp = configparser.ConfigParser(interpolation=None)
    cp.optionxform = str
    cp.read(os.path.join(home, ".config", "evolution", "sources", f"{uid}.source"))
    return dict(cp[SECTION]) if cp.has_section(SECTION) else {}


def one_error(p):
    """cacmail said one line (the private D-Bus daemon may add its own)."""
    return len([line for line in p.stderr.splitlines() if line.startswith("cacmail:")]) == 1


def eds(home, *args):
    p = subprocess.run([HARNESS, "--home", home, "--", CACMAIL, "evolution", *args],
                       capture_output=True, text=True, timeout=120)
    return p


def check(home, *extra):
    p = eds(home, "check", "--json", "--no-card", *extra)
    if p.returncode != 0:
        raise AssertionError(p.stderr)
    return {i["uid"]: i for i in json.loads(p.stdout)["identities"]}


with tmpdir() as tmp:
    pki, m = make_pki(tmp)
    home = os.path.join(tmp, "home")
    db = os.path.join(home, ".pki", "nssdb")
    os.makedirs(db)
    os.makedirs(os.path.join(home, ".config", "evolution", "sources"))
    subprocess.run(["certutil", "-N", "-d", f"sql:{db}", "--empty-password"], check=True)
    ctr = import_p12(db, os.path.join(pki, "cards", "contractor", "4 - Dig_Sig.p12"))
    import_p12(db, os.path.join(pki, "cards", "contractor", "5 - Key_Mgmt.p12"))
    res = import_p12(db, os.path.join(pki, "cards", "reservist", "4 - Dig_Sig.p12"))
    import_p12(db, os.path.join(pki, "cards", "reservist", "5 - Key_Mgmt.p12"))
    g01 = os.path.join(GSA_CARDS, "01_Golden_PIV")
    gsa_sig = import_p12(db, glob.glob(os.path.join(g01, "4 - ICAM_PIV_Dig_Sig*.p12"))[0])
    gsa_enc = import_p12(db, glob.glob(os.path.join(g01, "5 - ICAM_PIV_Key_Mgmt*.p12"))[0])
    gsa_auth = import_p12(db, os.path.join(g01, "3 - ICAM_PIV_Auth_SP_800-73-4.p12"))
    # A recovered escrow key (decrypt-only): no setting may name it.
    empty = os.path.join(tmp, "empty-password")
    open(empty, "w").close()
    os.chmod(empty, 0o600)  # cacmail refuses a password file others may read
    before_rec = nicknames(db)
    p = subprocess.run([CACMAIL, "import-p12", "--nssdb", db, "--password-file", empty,
                        glob.glob(os.path.join(GSA_CARDS, "02_Golden_PIV-I",
                                               "5 - ICAM_PIV_Key_Mgmt*.p12"))[0]],
                       capture_output=True, text=True,
                       env=dict(os.environ, HOME=home,
                                XDG_DATA_HOME=os.path.join(home, ".local", "share")))
    recovered = (nicknames(db) - before_rec or {None}).pop()
    t.ok(p.returncode == 0 and recovered, "a recovered key is imported with cacmail import-p12",
         p.stderr)
    t.ok(all((ctr, res, gsa_sig, gsa_enc, gsa_auth)) and ctr != res,
         "test NSS database: distinct nicknames per subject", (ctr, res, gsa_sig, gsa_enc))

    ctr_mail = "john.q.doe.ctr@mail.mil"
    res_mail = "john.q.doe.mil@mail.mil"
    gsa_mail = "icam.test.cards@gsa.gov"
    write_source(home, "a-empty", ctr_mail)
    write_source(home, "b-right", res_mail, res, res, "sha256")
    write_source(home, "c-missing", ctr_mail, "Gone:Certificate for Digital Signature", ctr)
    write_source(home, "d-wrong-email", res_mail, ctr, ctr, "sha256")
    write_source(home, "e-signing-only", gsa_mail, gsa_sig, gsa_sig, "sha256")
    write_source(home, "f-piv-auth", gsa_mail, gsa_auth, gsa_enc, "sha256")
    write_source(home, "g-recovered", gsa_mail, gsa_sig, recovered, "sha256")
    before = {u: smime(home, u) for u in ("a-empty", "b-right", "c-missing", "d-wrong-email",
                                          "e-signing-only", "f-piv-auth", "g-recovered")}
    right_bytes = open(os.path.join(home, ".config", "evolution", "sources",
                                    "b-right.source"), "rb").read()

    ids = check(home)
    t.eq(sorted(ids), sorted(before), "check lists every identity")
    expect = {
        "a-empty": {"signing-not-set", "encryption-not-set"},
        "b-right": set(),
        "c-missing": {"signing-nickname-not-found"},
        "d-wrong-email": {"signing-cert-email-mismatch", "encryption-cert-email-mismatch"},
        "e-signing-only": {"encryption-cert-signing-only"},
        "f-piv-auth": {"signing-cert-is-piv-auth"},
        "g-recovered": {"encryption-cert-recovered"},
    }
    for uid, want in expect.items():
        got = ids[uid]
        t.eq(got["state"], "stale" if want else "ok", f"{uid}: state")
        t.ok(want <= set(got["reasons"]), f"{uid}: reasons include {sorted(want)}",
             got["reasons"])
        t.eq(len(got["messages"]), len(got["reasons"]), f"{uid}: one message per reason")
    t.eq((ids["a-empty"]["proposed"]["signing"], ids["a-empty"]["proposed"]["encryption"]),
         (ctr, ctr), "contractor: proposes the contractor's nickname for both")
    t.eq(ids["d-wrong-email"]["proposed"]["signing"], res,
         "reservist identity: proposes the reservist's nickname")
    t.eq(ids["e-signing-only"]["proposed"]["encryption"], gsa_enc,
         "signing-only encryption setting: proposes the Key Management cert")
    t.eq(ids["f-piv-auth"]["proposed"]["signing"], gsa_sig,
         "PIV Auth as signing cert: proposes the Digital Signature cert")
    t.eq(ids["g-recovered"]["proposed"]["encryption"], gsa_enc,
         "a recovered key is never proposed; the current Key Management cert is")
    t.eq(ids["b-right"]["current"], {"signing": res, "encryption": res,
                                     "signing_algorithm": "sha256", "sign_by_default": True,
                                     "encrypt_by_default": False, "encrypt_to_self": True},
         "current settings are reported as Evolution has them")

    p = eds(home, "fix", "--no-card")
    t.ok(p.returncode == 0 and "Fixed 6 identities" in p.stdout, "fix writes the six stale ones",
         p.stdout + p.stderr)
    after = {u: smime(home, u) for u in before}
    t.eq((after["a-empty"]["SigningCertificate"], after["a-empty"]["EncryptionCertificate"],
          after["a-empty"]["SigningAlgorithm"]), (ctr, ctr, "sha256"),
         "a-empty: both set, SigningAlgorithm sha256 when it was empty")
    t.eq((after["a-empty"]["SignByDefault"], after["a-empty"]["EncryptToSelf"]),
         ("true", "true"), "a-empty: SignByDefault and EncryptToSelf kept")
    t.eq(after["e-signing-only"]["EncryptionCertificate"], gsa_enc,
         "e-signing-only: encryption cert replaced")
    t.eq(after["f-piv-auth"]["SigningCertificate"], gsa_sig, "f-piv-auth: signing cert replaced")
    t.eq(open(os.path.join(home, ".config", "evolution", "sources", "b-right.source"),
              "rb").read(), right_bytes, "the identity that was right is not written at all")
    ids = check(home)
    t.eq({u: i["state"] for u, i in ids.items()}, {u: "ok" for u in before},
         "after the fix every identity is ok")
    backups = os.path.join(home, ".local", "share", "cacmail", "evolution-backups.json")
    t.ok(os.path.exists(backups), "the previous values were backed up")

    # Expiry: the same settings are stale at a time when the certs have expired.
    ids = check(home, "--at", "2029-01-01")
    t.ok("signing-cert-expired" in ids["a-empty"]["reasons"], "expired certs make settings stale",
         ids["a-empty"]["reasons"])

    # A second fix has nothing to do.
    p = eds(home, "fix", "--no-card")
    t.ok(p.returncode == 0 and "Fixed 0 identities" in p.stdout, "a second fix writes nothing",
         p.stdout + p.stderr)

    p = eds(home, "undo")
    t.ok(p.returncode == 0 and "6 identities" in p.stdout, "undo restores the six", p.stderr)
    t.eq({u: smime(home, u) for u in before}, before, "undo restores the exact previous values")
    p = eds(home, "undo")
    t.ok(p.returncode == 3 and "no earlier fix" in p.stderr, "nothing more to undo: clear error",
         (p.returncode, p.stderr))

    # --- the undo history and the record of recovered keys are never lost or read as empty ---
    share = os.path.join(home, ".local", "share", "cacmail")
    record = os.path.join(share, "recovered-keys.json")
    t.eq(oct(os.stat(backups).st_mode & 0o777), "0o600", "the backups file is private (0600)")
    good_record = open(record, "rb").read()
    with open(record, "wb") as f:
        f.write(good_record[: len(good_record) // 2])
    for verb in ("check", "fix"):
        p = eds(home, verb, "--no-card")
        t.ok(p.returncode == 3 and one_error(p) and record in p.stderr
             and "move it aside" in p.stderr,
             f"a damaged record of recovered keys: {verb} stops (exit 3), one line naming it and "
             "the repair", (p.returncode, p.stderr))
    t.eq({u: smime(home, u) for u in before}, before, "... and nothing was changed")
    with open(record, "wb") as f:
        f.write(good_record)

    def spoil_backups(content, mode=0o600):
        with open(backups, "w") as f:
            f.write(content)
        os.chmod(backups, mode)
        return open(backups, "rb").read()

    entry = {"uid": "a-empty", "signing": ctr, "encryption": ctr, "signing_algorithm": "sha256"}
    valid = json.dumps({"entries": [{"time": "2026-01-01T00:00:00Z", "identities": [entry]}]})
    for what, content, mode, code, says in (
            ("a truncated backups file", valid[: len(valid) // 2], 0o600, 3, "move it aside"),
            ("a backups file without its entries list", json.dumps({"entry": []}), 0o600, 3,
             "move it aside"),
            ("a backups file others may change (0666)", valid, 0o666, 5, "chmod 600")):
        kept = spoil_backups(content, mode)
        for verb in ("fix", "undo"):
            p = eds(home, verb, "--no-card") if verb == "fix" else eds(home, verb)
            t.ok(p.returncode == code and one_error(p) and backups in p.stderr
                 and says in p.stderr,
                 f"{what}: {verb} refuses (exit {code}), one line naming it and '{says}'",
                 (p.returncode, p.stderr))
        t.ok(open(backups, "rb").read() == kept
             and {u: smime(home, u) for u in before} == before,
             f"{what}: the file is not overwritten and no setting changed")
    for what, bad in (("a setting that is a number", dict(entry, signing=5)),
                      ("no uid", {k: v for k, v in entry.items() if k != "uid"}),
                      ("a setting left out", {k: v for k, v in entry.items()
                                              if k != "encryption"}),
                      ("an identity that no longer exists", dict(entry, uid="z-gone"))):
        kept = spoil_backups(json.dumps({"entries": [{"time": "2026-01-01T00:00:00Z",
                                                      "identities": [entry, bad]}]}))
        p = eds(home, "undo")
        t.ok(p.returncode == 3 and one_error(p) and "nothing was changed" in p.stderr,
             f"a backup entry with {what}: undo refuses (exit 3), one line", (p.returncode,
                                                                              p.stderr))
        t.ok(open(backups, "rb").read() == kept
             and {u: smime(home, u) for u in before} == before,
             f"a backup entry with {what}: no setting changed, the entry kept")
    os.unlink(backups)

    p = eds(home, "check", "--identity", "nope", "--no-card")
    t.ok(p.returncode == 3 and "nope" in p.stderr, "unknown identity: exit 3, named", p.stderr)
    p = subprocess.run([CACMAIL, "evolution", "check"], capture_output=True, text=True,
                       env=dict(os.environ, DBUS_SESSION_BUS_ADDRESS="unix:path=/nonexistent"))
    t.ok(p.returncode == 4 and "registry" in p.stderr, "no registry: exit 4 with a hint",
         (p.returncode, p.stderr))

t.done()
