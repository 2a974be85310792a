#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""`cacmail setup` on a sandbox HOME with Evolution's NSS database and a Thunderbird profile's
(made with certutil), the generated DoD-like bundle (tests/pki/make-pki: two roots, the
intermediates, one cross-certificate), the virtual card (tests/harness/with-pcscd), the test
slapd (with-slapd) and a real evolution-source-registry (with-eds): a wrong fingerprint and a
bundle with an end-entity cert are refused with nothing changed; every step's before and after
(modules, trust flags read back with certutil -L, S/MIME settings); the cross-cert and the other
root skipped; the directory settings not written when the connection test fails, written with a
backup when it passes; a second run finds every step already done and exits 0."""
import base64
import configparser
import glob
import hashlib
import json
import os
import pty
import re
import select
import subprocess
import sys
import time

from cmtest import CACMAIL, GSA, SOURCE, Tap, make_pki, need, sandbox_home, skip, tmpdir

HARNESS = os.path.join(SOURCE, "tests", "harness")
OPENSC = "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so"
CTR = "john.q.doe.ctr@mail.mil"
SMIME = "Secure MIME (S/MIME)"
GSA_ROOT = "65:C8:1E:10:E7:26:14:3F:72:19:2D:96:A7:2B:DA:6F:F7:30:D5:34:03:D0:40:F0:CD:8C:10:85:80:0E:7B:E1"


def gsa_rollover(t, tmp):
    """GSA's test CAs as a bundle (a bridge cross-certificate, another root, an expired CA and
    two key-rollover certs: self-issued, each signed by the other generation's key) into a
    Thunderbird profile's database: only the root is trusted, the rollover certs too get none."""
    cas = sorted(glob.glob(os.path.join(GSA, "ca", "*.crt")))
    if not cas:
        t.ok(os.environ.get("CI") != "true", "GSA's CAs # SKIP not there (../shared/testdata)")
        return
    home = os.path.join(tmp, "gsa-home")
    prof = os.path.join(home, ".thunderbird", "p")
    evo = os.path.join(home, ".pki", "nssdb")  # Evolution's, with no mail identity
    for db in (prof, evo):
        os.makedirs(db)
        subprocess.run(["certutil", "-N", "-d", f"sql:{db}", "--empty-password"], check=True)
    with open(os.path.join(home, ".thunderbird", "profiles.ini"), "w") as f:
        f.write("[Profile0]\nName=p\nIsRelative=1\nPath=p\nDefault=1\n")
    bundle = os.path.join(tmp, "gsa.pem")
    with open(bundle, "w") as f:
        for c in cas:
            f.write(open(c).read())
    empty_path = os.path.join(tmp, "empty-path")  # no `evolution` found: no database made for it
    os.makedirs(empty_path)
    env = dict(os.environ, HOME=home, XDG_CONFIG_HOME=os.path.join(home, ".config"),
               XDG_DATA_HOME=os.path.join(home, ".local", "share"), PATH=empty_path)
    env.pop("CACMAIL_STATE_DIR", None)
    env.pop("DBUS_SESSION_BUS_ADDRESS", None)  # no registry: not needed without identities
    p = subprocess.run([CACMAIL, "setup", "--bundle", bundle, "--root-sha256", GSA_ROOT, "--yes"],
                       capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL,
                       timeout=120)
    out = subprocess.run(["certutil", "-L", "-d", f"sql:{prof}"], capture_output=True,
                         text=True).stdout
    flags = sorted(line.split()[-1] for line in out.splitlines()[4:] if line.strip())
    t.ok(re.search(r"^\[3/6\].*\n(.*\n)*?  => done$", p.stdout, re.M)
         and flags == [",,"] * 7 + ["C,C,"],
         "GSA's CAs: the root trusted C,C,, the 7 CAs on its path (2 key-rollover certs among "
         "them) without trust, the 4 others not stored", p.stdout + out)
    t.ok(steps_said(p.stdout)[4] == "already done" and "Evolution: no mail identity" in p.stdout,
         "Evolution without a mail identity: nothing to fix, its registry not needed",
         p.stdout + p.stderr)
    return t


def outside():
    for tool in ("certutil", "modutil", "pcscd", "unshare", "openssl", "dbus-run-session"):
        need(tool)
    if not os.path.exists("/usr/sbin/slapd"):
        skip("slapd is not installed (scripts/test installs it)")
    if not glob.glob("/usr/lib/pcsc/drivers/serial/libifdvpcd.so*") or not os.path.exists(OPENSC):
        skip("vsmartcard-vpcd or opensc-pkcs11 is not installed (scripts/test installs them)")
    if not os.path.exists("/usr/libexec/evolution-source-registry"):
        skip("evolution-data-server is not installed (scripts/test installs it)")
    if subprocess.run([CACMAIL, "evolution", "--help"], capture_output=True).returncode != 0:
        skip("cacmail was built without evolution-data-server-dev")
    if os.geteuid() != 0:
        skip("the pcscd harness needs root for its mount namespace")
    with tmpdir() as tmp:
        pki, _ = make_pki(tmp)
        home = sandbox_home(tmp, CTR)
        cmd = [os.path.join(HARNESS, "with-pcscd"), "--card", os.path.join(pki, "cards",
                                                                          "contractor"), "--",
               os.path.join(HARNESS, "with-slapd"), "--pki", pki, "--",
               os.path.join(HARNESS, "with-eds"), "--home", home, "--",
               sys.executable, os.path.abspath(__file__), "--inside", pki, tmp]
        nomods = os.path.join(tmp, "no-p11kit-modules")
        os.makedirs(nomods)
        env = dict(os.environ, TMPDIR=tmp, CACMAIL_P11KIT_MODULE_DIRS=nomods)
        env.pop("CACMAIL_STATE_DIR", None)
        rc = subprocess.run(cmd, env=env).returncode
        if rc == 77:
            skip("a harness cannot run here (needs root, namespaces, slapd, EDS)")
        sys.exit(rc)


if len(sys.argv) < 4 or sys.argv[1] != "--inside":
    outside()

# ---- inside the harnesses: HOME and XDG_* are the sandbox's (with-eds) ----------------------
PKI, TMP = sys.argv[2], sys.argv[3]
HOME = os.environ["HOME"]
EVO = os.path.join(HOME, ".pki", "nssdb")
PROF = os.path.join(HOME, ".thunderbird", "abcd1234.default")
CONF = os.path.join(os.environ["XDG_CONFIG_HOME"], "cacmail", "cacmail.conf")
with open(os.path.join(PKI, "manifest.json")) as f:
    M = json.load(f)
B = M["bundle"]
BUNDLE = os.path.join(PKI, B["path"])
URI, BASE = os.environ["CACMAIL_LDAP_URI"], os.environ["CACMAIL_LDAP_BASE"]
t = Tap()


def setup(*args):
    return subprocess.run([CACMAIL, "setup", *args], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=240)


def trust_flags(db):
    """{nickname: flags} from certutil -L."""
    out = subprocess.run(["certutil", "-L", "-d", f"sql:{db}"], capture_output=True, text=True,
                         check=True).stdout
    rows = {}
    for line in out.splitlines()[4:]:
        m = re.match(r"^(.*\S)\s+(\S*,\S*,\S*)\s*$", line)
        if m:
            rows[m.group(1)] = m.group(2)
    return rows


def sha_of(db, nick):
    pem = subprocess.run(["certutil", "-L", "-d", f"sql:{db}", "-n", nick, "-a"],
                         capture_output=True, text=True).stdout
    ders = re.findall(r"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----", pem, re.S)
    return [hashlib.sha256(base64.b64decode("".join(d.split()))).hexdigest() for d in ders]


def modules(db):
    out = subprocess.run(["modutil", "-dbdir", f"sql:{db}", "-list"], capture_output=True,
                         text=True).stdout
    return [line.split(":", 1)[1].strip() for line in out.splitlines() if "library name:" in line]


def snapshot():
    """Hashes of every file setup may change."""
    files = [os.path.join(db, f) for db in (EVO, PROF) for f in ("cert9.db", "key4.db",
                                                                 "pkcs11.txt")]
    files += [os.path.join(PROF, "prefs.js"), CONF,
              os.path.join(HOME, ".config", "evolution", "sources", "ctr.source"),
              os.path.join(os.environ["XDG_DATA_HOME"], "cacmail", "ca-bundle.pem")]
    out = {}
    for f in files:
        out[f] = hashlib.sha256(open(f, "rb").read()).hexdigest() if os.path.exists(f) else None
    return out


def evo_smime():
    cp = configparser.ConfigParser(interpolation=None)
    cp.optionxform = str
    cp.read(os.path.join(HOME, ".config", "evolution", "sources", "ctr.source"))
    return dict(cp[SMIME])


def tb_pref(name):
    with open(os.path.join(PROF, "prefs.js")) as f:
        m = re.search(r'user_pref\("' + re.escape(name) + r'", "([^"]*)"\);', f.read())
    return m.group(1) if m else None


def cacmail_errors(p):
    return [line for line in p.stderr.splitlines() if line.startswith("cacmail:")]


def steps_said(out):
    """The status line of each step, in order: already done, done, offered or NOT DONE."""
    said = []
    for block in re.split(r"^\[\d/6\] ", out, flags=re.M)[1:]:
        m = re.search(r"^  => (already done|done|offered)$", block, re.M)
        said.append(m.group(1) if m else ("NOT DONE" if "  NOT DONE: " in block else "?"))
    return said


gsa_rollover(t, TMP)
ALL = ["--bundle", BUNDLE, "--root-sha256", B["root_sha256"], "--uri", URI, "--base", BASE,
       "--bind", "simple", "--email", CTR, "--yes"]
before = snapshot()
t.eq(modules(EVO) + modules(PROF), [], "before: no card module in either database")
t.eq(trust_flags(EVO), {}, "before: Evolution's database holds no CA")

# ---- refusals: nothing changed --------------------------------------------------------------
p = setup("--bundle", BUNDLE, "--root-sha256", B["other_roots"][0][:60] + "0000", "--uri", URI,
          "--base", BASE, "--yes")
t.eq(p.returncode, 5, "a fingerprint no cert of the bundle has: refused (exit 5)")
t.ok(len(cacmail_errors(p)) == 1 and "fingerprint" in p.stderr and "Test DoD Root CA 3" in p.stderr,
     "... in one line naming the fingerprint and listing the bundle's roots", p.stderr)
t.eq(snapshot(), before, "... and nothing changed (databases, prefs, config, CA bundle)")
t.ok(p.stdout == "", "... before any step ran", p.stdout)

p = setup("--bundle", BUNDLE, "--root-sha256", B["cross"][0]["sha256"], "--yes")
t.eq(p.returncode, 5, "the cross-certificate's fingerprint: refused, it is not a root")
t.eq(snapshot(), before, "... nothing changed")

mixed = os.path.join(TMP, "with-end-entity.pem")
with open(mixed, "w") as f:
    for rel in ("ca/root.crt", "ca/email-ca.crt", "cards/contractor/4 - Dig_Sig.crt"):
        f.write(open(os.path.join(PKI, rel)).read())
p = setup("--bundle", mixed, "--root-sha256", B["root_sha256"], "--yes")
t.eq(p.returncode, 5, "a bundle holding an end-entity cert: refused (exit 5)")
t.ok(len(cacmail_errors(p)) == 1 and "is not a CA certificate" in p.stderr
     and "DOE.JOHN.QUINCY" in p.stderr, "... naming that cert, in one line", p.stderr)
t.eq(snapshot(), before, "... nothing changed")

p = setup("--bundle", BUNDLE, "--root-sha256", "not-hex", "--yes")
t.eq(p.returncode, 3, "a malformed fingerprint: bad input (exit 3)")
t.eq(snapshot(), before, "... nothing changed")

# ---- first run: the connection test fails (the server's CA is not given) ---------------------
p = setup(*ALL)
said = steps_said(p.stdout)
t.eq(said, ["already done", "done", "done", "NOT DONE", "done", "offered"],
     "first run: card module, chain and S/MIME done; directory not (TLS not verified)")
t.eq(p.returncode, 4, "... exit 4 (the server's certificate could not be verified)")
t.ok("could not be verified" in p.stdout and "nothing was written" in p.stdout,
     "... the connection test's failure says so and that nothing was written", p.stdout)
t.ok(not os.path.exists(CONF), "... cacmail.conf not written when the connection test fails")
for db, who in ((EVO, "Evolution"), (PROF, "Thunderbird")):
    t.eq(modules(db), [OPENSC], f"step 2 after: {who}'s database has the card module (OpenSC)")
    flags = trust_flags(db)
    t.eq(flags.get("Test DoD Root CA 3"), "C,C,", f"step 3 after: {who}: the root is trusted C,C,")
    t.eq(sorted(v for k, v in flags.items() if k != "Test DoD Root CA 3"), [",,"] * 4,
         f"step 3 after: {who}: the four intermediates have no trust")
    t.eq(sha_of(db, "Test DoD Root CA 3"), [B["root_sha256"]],
         f"step 3 after: {who}: the cross-certificate (same subject) was not stored")
    t.ok("Test DoD Root CA 6" not in flags, f"step 3 after: {who}: the other root was not stored")
t.ok(re.search(r"skipped +Test DoD Root CA 3: cross-certificate", p.stdout)
     and re.search(r"skipped +Test DoD Root CA 6: another root", p.stdout),
     "step 3 lists the cross-certificate and the other root as skipped, with reasons", p.stdout)
bundle_pem = os.path.join(os.environ["XDG_DATA_HOME"], "cacmail", "ca-bundle.pem")
t.eq(open(bundle_pem).read().count("BEGIN CERTIFICATE"), 5,
     "step 3 after: the CA bundle for LDAP holds the root and the four intermediates")
sm = evo_smime()
t.ok(sm["SigningCertificate"].endswith(":Certificate for Digital Signature")
     and sm["EncryptionCertificate"].endswith(":Certificate for Key Management"),
     "step 5 after: Evolution's identity names the card's signing and encryption certs", sm)
t.ok(tb_pref("mail.identity.id1.signing_cert_name") and tb_pref("mail.identity.id1.signing_cert_dbkey")
     and tb_pref("mail.identity.id1.encryption_cert_dbkey"),
     "step 5 after: the Thunderbird identity names the card's certs (name and dbKey)",
     open(os.path.join(PROF, "prefs.js")).read())
t.ok("cacmail republish" in p.stdout, "step 6 prints the republish command", p.stdout)

# ---- second run: the server's CA given; an existing config file is kept and backed up ------
os.makedirs(os.path.dirname(CONF), exist_ok=True)
old_conf = "# my settings\n[ldap]\ntimeout=20\n"
with open(CONF, "w") as f:
    f.write(old_conf)
mid = snapshot()
p = setup(*ALL, "--ca-file", os.environ["CACMAIL_LDAP_CA"])
t.eq(steps_said(p.stdout), ["already done", "already done", "already done", "done",
                            "already done", "offered"],
     "second run: only the directory settings are done now")
t.ok(p.returncode == 0, "... exit 0", p.stdout + p.stderr)
t.ok("connection test passed" in p.stdout and "server certificate verified" in p.stdout,
     "... after a connection test with the server certificate verified", p.stdout)
kf = configparser.ConfigParser(interpolation=None)
kf.read(CONF)
t.eq({k: kf["ldap"].get(k) for k in ("uri", "base", "bind", "email", "ca-file", "timeout")},
     {"uri": URI, "base": BASE, "bind": "simple", "email": CTR,
      "ca-file": os.environ["CACMAIL_LDAP_CA"], "timeout": "20"},
     "cacmail.conf holds uri, base, bind, email and ca-file, and keeps the other key")
t.ok("# my settings" in open(CONF).read(), "... and the comment")
t.eq(open(CONF + ".bak").read(), old_conf, "... the old file is kept as cacmail.conf.bak")
t.eq(oct(os.stat(CONF).st_mode & 0o777), "0o600", "... mode 0600")
after2 = snapshot()
t.eq({k: v for k, v in after2.items() if k != CONF}, {k: v for k, v in mid.items() if k != CONF},
     "... nothing else changed")

# ---- third run: every step already done ------------------------------------------------------
p = setup(*ALL, "--ca-file", os.environ["CACMAIL_LDAP_CA"])
t.eq(steps_said(p.stdout), ["already done"] * 5 + ["offered"],
     "rerun: every step already done (republish offered)")
t.ok(p.returncode == 0, "rerun: exit 0", p.stdout + p.stderr)
t.eq(snapshot(), after2, "rerun: nothing changed")
t.ok("will " not in p.stdout, "rerun: no step plans a change", p.stdout)

p = setup("--yes")
t.ok(p.returncode == 0 and steps_said(p.stdout) == ["already done"] * 5 + ["offered"]
     and "1 trusted root CA installed" in p.stdout,
     "rerun without options: the chain and the saved directory settings count as done",
     p.stdout + p.stderr)

conf3 = os.path.join(TMP, "wrong-base.conf")
p = setup("--config", conf3, "--uri", URI, "--base", "ou=nowhere," + BASE, "--ca-file",
          os.environ["CACMAIL_LDAP_CA"], "--yes")
t.ok(p.returncode == 2 and "ou=nowhere," + BASE + " does not exist" in p.stdout
     and not os.path.exists(conf3),
     "a base the server does not have: the connection test fails (exit 2), nothing written",
     p.stdout + p.stderr)

conf4 = os.path.join(TMP, "insecure.conf")
with open(conf4, "w") as f:
    f.write("[ldap]\ninsecure=true\n")
p = setup("--config", conf4, "--uri", URI, "--base", BASE, "--yes")
t.ok(p.returncode == 2 and "insecure is set" in p.stdout
     and open(conf4).read() == "[ldap]\ninsecure=true\n",
     "insecure=true in the config: the connection test refuses to skip verification, nothing "
     "written", p.stdout + p.stderr)

# ---- the bundle as PEM PKCS7: read the same way ----------------------------------------------
pem_p7 = os.path.join(TMP, "bundle.p7b.pem")
subprocess.run(["openssl", "pkcs7", "-inform", "der", "-in", BUNDLE, "-out", pem_p7], check=True)
p = setup("--bundle", pem_p7, "--root-sha256", B["root_sha256"].upper(), "--yes")
t.ok(p.returncode == 0 and steps_said(p.stdout)[2] == "already done"
     and "skipped      Test DoD Root CA 3: cross-certificate" in p.stdout,
     "a PEM PKCS7 bundle (upper-case fingerprint): the same analysis, chain already installed",
     p.stdout + p.stderr)

# ---- on a terminal: the fingerprint and each change are asked ----------------------------------
def on_terminal(args, answers):
    """Run setup on a pseudo-terminal; each (prompt, answer) is typed when the prompt shows.
    Returns (exit status, everything it printed)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([CACMAIL, "setup", *args], stdin=slave, stdout=slave, stderr=slave,
                            close_fds=True)
    os.close(slave)
    out, pending, end = b"", list(answers), time.time() + 120
    while time.time() < end:
        if pending and pending[0][0].encode() in out:
            os.write(master, pending.pop(0)[1].encode() + b"\n")
            out += b"<typed>"
        r, _, _ = select.select([master], [], [], 0.2)
        if r:
            try:
                data = os.read(master, 4096)
            except OSError:
                data = b""
            if not data:
                break
            out += data
        elif proc.poll() is not None:
            break
    proc.wait(timeout=30)
    os.close(master)
    return proc.returncode, out.decode(errors="replace")


conf2 = os.path.join(TMP, "terminal.conf")
tty_args = ["--bundle", BUNDLE, "--config", conf2, "--uri", URI, "--base", BASE, "--ca-file",
            os.environ["CACMAIL_LDAP_CA"]]
rc, out = on_terminal(tty_args, [("fingerprint of the DoD root you trust: ", B["root_sha256"]),
                                 ("Save these directory settings? [y/N]", "n")])
t.ok("SHA-256 " + B["root_sha256"] in out and "already done" in out,
     "terminal: the bundle's roots are shown with their fingerprints, the typed one is used", out)
t.ok(rc == 1 and not os.path.exists(conf2),
     "terminal: answering no to saving the directory settings writes nothing (exit 1)", out)
rc, out = on_terminal(tty_args, [("fingerprint of the DoD root you trust: ", B["root_sha256"]),
                                 ("Save these directory settings? [y/N]", "y")])
t.ok(rc == 0 and os.path.exists(conf2) and "cacmail republish --config " + conf2 in out,
     "terminal: answering yes saves them; republish is offered with its command (exit 0)", out)

# ---- a client that runs: its module change is refused, nothing written ----------------------
p = subprocess.run([CACMAIL, "nss", "unregister", "--nssdb", EVO], capture_output=True, text=True)
t.ok(p.returncode == 0 and modules(EVO) == [], "(the card module removed from Evolution's "
     "database again)", p.stdout + p.stderr)
fake = os.path.join(TMP, "evolution")
with open("/bin/sleep", "rb") as src, open(fake, "wb") as dst:
    dst.write(src.read())
os.chmod(fake, 0o755)
proc = subprocess.Popen([fake, "60"])
try:
    pkcs11 = open(os.path.join(EVO, "pkcs11.txt"), "rb").read()
    p = setup(*ALL, "--ca-file", os.environ["CACMAIL_LDAP_CA"])
    said = steps_said(p.stdout)
    t.ok(said[1] == "NOT DONE" and p.returncode == 5 and "Evolution" in p.stdout
         and "close" in p.stdout, "Evolution running: the module step is refused (exit 5), "
         "saying to close it", p.stdout + p.stderr)
    t.eq(open(os.path.join(EVO, "pkcs11.txt"), "rb").read(), pkcs11,
         "... Evolution's module list is unchanged")
    t.eq(said[2:4], ["already done"] * 2, "... the chain and directory steps still report "
         "their state")
finally:
    proc.kill()
    proc.wait()
t.done()
