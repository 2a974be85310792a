#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""`cacmail nss` on real NSS databases made by certutil in temp dirs: card module registration
(p11-kit proxy or OpenSC, never twice, persisted in pkcs11.txt as modutil sees it), the client
databases found from a temp $HOME (Evolution, Thunderbird profiles.ini rules), refusal while a
client runs, trust anchors (PEM, DER, PKCS#7) with the CA bundle, and a SoftHSM2 token's certs
named "token:label" with Thunderbird's dbKey."""
import base64
import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import time

from cmtest import CACMAIL, GSA, SOURCE, Tap, make_pki, need, schema_errors, skip, tmpdir

for tool in ("certutil", "modutil", "openssl", "softhsm2-util", "pkcs11-tool"):
    need(tool)
OPENSC = "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so"
PROXY = "/usr/lib/x86_64-linux-gnu/p11-kit-proxy.so"
SOFTHSM = "/usr/lib/softhsm/libsofthsm2.so"
for lib in (OPENSC, PROXY, SOFTHSM):
    if not os.path.exists(lib):
        skip(f"{lib} is missing (scripts/test installs opensc-pkcs11, p11-kit-modules, softhsm2)")

t = Tap()


def env_for(tmp, **extra):
    e = dict(os.environ)
    e.update(HOME=os.path.join(tmp, "home"), XDG_DATA_HOME=os.path.join(tmp, "data"),
             XDG_CONFIG_HOME=os.path.join(tmp, "config"))
    e.pop("CACMAIL_STATE_DIR", None)
    e.update(extra)
    os.makedirs(e["HOME"], exist_ok=True)
    return e


def cm(env, *args):
    return subprocess.run([CACMAIL, *args], capture_output=True, text=True, env=env, timeout=60)


def newdb(path):
    os.makedirs(path)
    subprocess.run(["certutil", "-N", "--empty-password", "-d", f"sql:{path}"], check=True,
                   capture_output=True)
    return path


def modules(path):
    out = subprocess.run(["modutil", "-dbdir", f"sql:{path}", "-list"], capture_output=True,
                         text=True, env=dict(os.environ, NSS_DEFAULT_DB_TYPE="sql")).stdout
    return [l.split(":", 1)[1].strip() for l in out.splitlines() if "library name:" in l]


def one_line(p):
    return p.stderr.count("\n") == 1


with tmpdir() as tmp:
    env = env_for(tmp)
    pki, m = make_pki(tmp)

    # --- registration ---
    db = newdb(os.path.join(tmp, "db"))
    p = cm(env, "nss", "register", "--nssdb", db)
    t.eq(p.returncode, 0, "register: exit 0")
    t.ok("added" in p.stdout and "p11-kit-proxy" in p.stdout,
         "register: prefers the p11-kit proxy (p11-kit has OpenSC configured)", p.stdout)
    t.eq(modules(db), [PROXY], "register: modutil -list shows the proxy (persisted in pkcs11.txt)")
    p = cm(env, "nss", "register", "--nssdb", db)
    t.ok(p.returncode == 0 and "unchanged" in p.stdout, "register twice: unchanged", p.stdout)
    p = cm(env, "nss", "register", "--module", "opensc", "--nssdb", db)
    t.ok(p.returncode == 0 and "unchanged" in p.stdout,
         "register OpenSC while the proxy (with OpenSC) is there: detected, unchanged", p.stdout)
    t.eq(modules(db), [PROXY], "no duplicate entry, no second path to the card")
    p = cm(env, "nss", "list", "--nssdb", db)
    t.ok(p.returncode == 0 and "p11-kit proxy" in p.stdout, "list shows the proxy", p.stdout)
    p = cm(env, "nss", "unregister", "--nssdb", db)
    t.ok(p.returncode == 0 and "removed" in p.stdout, "unregister: removed", p.stdout)
    t.eq(modules(db), [], "unregister: modutil -list shows no module")
    p = cm(env, "nss", "unregister", "--nssdb", db)
    t.ok(p.returncode == 0 and "unchanged" in p.stdout, "unregister twice: unchanged")

    # p11-kit without OpenSC configured (empty module dir): OpenSC itself
    noconf = os.path.join(tmp, "p11kit-empty")
    os.makedirs(noconf)
    env_nokit = env_for(tmp, CACMAIL_P11KIT_MODULE_DIRS=noconf)
    p = cm(env_nokit, "nss", "register", "--nssdb", db)
    t.ok(p.returncode == 0 and "OpenSC" in p.stdout, "without p11-kit OpenSC: registers OpenSC",
         p.stdout + p.stderr)
    t.eq(modules(db), [OPENSC], "modutil sees OpenSC")
    p = cm(env, "nss", "register", "--module", "p11-kit", "--nssdb", db)
    t.ok(p.returncode == 0 and "unchanged" in p.stdout and modules(db) == [OPENSC],
         "OpenSC registered: the proxy is not added on top", p.stdout)
    # both registered by someone else (modutil): list warns that the card shows twice
    subprocess.run(["modutil", "-dbdir", f"sql:{db}", "-add", "p11-kit-proxy", "-libfile", PROXY,
                    "-force"], check=True, capture_output=True)
    p = cm(env, "nss", "list", "--nssdb", db)
    t.ok("shows twice" in p.stdout, "OpenSC + proxy: list warns the card shows twice", p.stdout)
    p = cm(env, "nss", "unregister", "--nssdb", db)
    t.ok(p.stdout.count("removed") == 2 and modules(db) == [], "unregister removes both entries",
         p.stdout)
    # OpenSC added by hand (modutil, no friendly flag): list says the PIN will be asked just to
    # list the card's certs; register rewrites the entry in place, once
    subprocess.run(["modutil", "-dbdir", f"sql:{db}", "-add", "OpenSC", "-libfile", OPENSC,
                    "-force"], check=True, capture_output=True)
    d = json.loads(cm(env, "nss", "list", "--nssdb", db, "--json").stdout)["databases"][0]
    t.ok([m_["friendly"] for m_ in d["modules"]] == [False]
         and any("ask for the PIN just to list" in w for w in d["warnings"]),
         "OpenSC added by hand: not friendly, list warns with the fix", d)
    p = cm(env_nokit, "nss", "register", "--nssdb", db)
    d = json.loads(cm(env, "nss", "list", "--nssdb", db, "--json").stdout)["databases"][0]
    t.ok(p.returncode == 0 and "updated" in p.stdout and modules(db) == [OPENSC]
         and [m_["friendly"] for m_ in d["modules"]] == [True] and d["warnings"] == [],
         "register upgrades it in place: one entry, friendly, no warning", (p.stdout, d))
    p = cm(env_nokit, "nss", "register", "--nssdb", db)
    t.ok(p.returncode == 0 and "unchanged" in p.stdout, "register again: unchanged", p.stdout)
    cm(env, "nss", "unregister", "--nssdb", db)
    p = cm(env_for(tmp, CACMAIL_OPENSC_MODULE=os.path.join(tmp, "none.so"),
                   CACMAIL_P11KIT_MODULE_DIRS=noconf), "nss", "register", "--nssdb", db)
    t.ok(p.returncode == 4 and one_line(p) and "opensc" in p.stderr.lower(),
         "no card module installed: exit 4, one line with the fix", p.stderr)
    p = cm(env, "nss", "register", "--nssdb", os.path.join(tmp, "nowhere"))
    t.ok(p.returncode == 3 and one_line(p) and "does not exist" in p.stderr
         and "cacmail nss register --nssdb" in p.stderr and "certutil" not in p.stderr,
         "missing folder: exit 3, one line whose fix is cacmail's own command", p.stderr)
    p = cm(env, "nss", "frobnicate")
    t.eq(p.returncode, 2, "unknown subcommand: usage error")

    # --- the clients' databases, from a temp $HOME ---
    home = env["HOME"]
    evo = newdb(os.path.join(home, ".pki", "nssdb"))
    tb = os.path.join(home, ".thunderbird")
    for prof in ("abcd.default", "wxyz.work"):
        newdb(os.path.join(tb, prof))
    absprof = newdb(os.path.join(tmp, "elsewhere", "efgh.abs"))
    with open(os.path.join(tb, "profiles.ini"), "w") as f:
        f.write("[Profile0]\nName=default\nIsRelative=1\nPath=abcd.default\nDefault=1\n\n"
                "[Profile1]\nName=work\nIsRelative=1\nPath=wxyz.work\n\n"
                f"[Profile2]\nName=abs\nIsRelative=0\nPath={absprof}\n\n"
                "[Install4F96D1932A9F858E]\nDefault=wxyz.work\nLocked=1\n\n"
                "[General]\nStartWithLastProfile=1\nVersion=2\n")
    p = cm(env, "nss", "list")
    out = p.stdout
    t.ok(p.returncode == 0 and f"Evolution: sql:{evo}" in out, "list: Evolution's database", out)
    t.ok("Thunderbird profile work (default)" in out,
         "list: the Install section's Default wins over Default=1", out)
    t.ok(f"Thunderbird profile abs: sql:{absprof}" in out, "list: absolute profile path", out)
    t.ok(out.index("Evolution") < out.index("profile work") < out.index("profile default"),
         "list: Evolution first, then the profile Thunderbird really uses", out)
    p = cm(env, "nss", "register")
    t.ok(p.returncode == 0 and p.stdout.count("added") == 4,
         "register without --nssdb: every client database", p.stdout + p.stderr)
    t.ok(all(modules(d) == [PROXY] for d in (evo, absprof, os.path.join(tb, "abcd.default"))),
         "each database got the proxy once")

    # a running Thunderbird (lock -> live PID) refuses module changes, a stale lock does not
    sleeper = subprocess.Popen(["sleep", "60"])
    lock = os.path.join(tb, "wxyz.work", "lock")
    os.symlink(f"127.0.0.1:+{sleeper.pid}", lock)
    before = open(os.path.join(tb, "wxyz.work", "pkcs11.txt")).read()
    p = cm(env, "nss", "unregister")
    t.ok(p.returncode == 5 and one_line(p) and "Thunderbird is running" in p.stderr
         and "close Thunderbird" in p.stderr, "running Thunderbird: exit 5, says why and what to do",
         p.stderr)
    t.eq(modules(evo), [PROXY], "refusal changes no database (checked before any change)")
    t.eq(open(os.path.join(tb, "wxyz.work", "pkcs11.txt")).read(), before,
         "the running client's pkcs11.txt is untouched")
    p = cm(env, "nss", "list")
    t.ok(f"running (PID {sleeper.pid}" in p.stdout, "list says the client runs", p.stdout)
    p = cm(env, "nss", "list", "--json")
    doc = json.loads(p.stdout)
    t.eq(schema_errors(doc), [], "nss list --json: matches the schema")
    dbs = doc["databases"]
    t.ok([(d["client"], d["profile"], d["default"]) for d in dbs]
         == [("evolution", None, True), ("thunderbird", "work", True),
             ("thunderbird", "default", False), ("thunderbird", "abs", False)],
         "nss list --json: Evolution, then the profile Thunderbird uses, then the others",
         [(d["client"], d["profile"], d["default"]) for d in dbs])
    t.ok([d["client_pid"] for d in dbs] == [None, sleeper.pid, None, None]
         and dbs[1]["dir"] == os.path.realpath(os.path.join(tb, "wxyz.work")),
         "nss list --json: the running Thunderbird's PID on its profile only", dbs)
    t.ok(all(d["modules"][0]["kind"] == "p11-kit-proxy" for d in dbs if d["exists"]),
         "nss list --json: the registered p11-kit proxy in each database",
         [d.get("modules") for d in dbs])
    p = cm(env, "nss", "register", "--json")
    t.ok(p.returncode == 2 and "--json is for nss list only" in p.stderr,
         "--json with another nss subcommand: usage error", p.stderr)
    sleeper.kill()
    sleeper.wait()
    p = cm(env, "nss", "list")
    t.ok("stale lock" in p.stdout, "a lock with a dead PID is stale", p.stdout)
    p = cm(env, "nss", "unregister", "--nssdb", os.path.join(tb, "wxyz.work"))
    t.ok(p.returncode == 0 and modules(os.path.join(tb, "wxyz.work")) == [],
         "stale lock: the change goes through")
    # a running Evolution: a process named "evolution" of this user
    fake = os.path.join(tmp, "bin", "evolution")
    os.makedirs(os.path.dirname(fake))
    shutil.copy("/bin/sleep", fake)
    evop = subprocess.Popen([fake, "60"], env=env)
    p = cm(env, "nss", "unregister", "--nssdb", evo)
    t.ok(p.returncode == 5 and "Evolution is running" in p.stderr, "running Evolution: refused",
         p.stderr)
    ca = os.path.join(pki, "ca", "root.crt")
    p = cm(env, "nss", "trust", "--nssdb", evo, ca)
    t.ok(p.returncode == 0, "trust is safe while Evolution runs (certs, not modules)", p.stderr)
    evop.kill()
    evop.wait()
    # an Evolution that holds a read lock on cert9.db (SQLite turns writers away meanwhile):
    # trust waits for it, and only when it keeps it says to close Evolution (exit 5)
    holder = os.path.join(tmp, "bin2", "evolution")
    os.makedirs(os.path.dirname(holder))
    os.symlink(os.path.realpath(sys.executable), holder)
    hold = ("import sqlite3, sys, time\n"
            "c = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
            "c.execute('BEGIN'); c.execute('SELECT count(*) FROM nssPublic').fetchall()\n"
            "print('locked', flush=True); time.sleep(float(sys.argv[2]))\n")

    def evolution_holding(seconds):
        proc = subprocess.Popen([holder, "-c", hold, os.path.join(evo, "cert9.db"), str(seconds)],
                                env=env, stdout=subprocess.PIPE, text=True)
        proc.stdout.readline()
        return proc

    eca = os.path.join(pki, "ca", "email-ca.crt")
    evop = evolution_holding(1)
    started = time.monotonic()
    p = cm(env, "nss", "trust", "--client", "evolution", eca)
    waited = time.monotonic() - started
    evop.wait()
    lst = subprocess.run(["certutil", "-L", "-d", f"sql:{evo}"], capture_output=True,
                         text=True).stdout
    t.ok(p.returncode == 0 and "Test DOD EMAIL CA-62" in lst and waited > 0.5,
         "trust while Evolution holds a read lock for 1 s: waits, then writes (exit 0)",
         (waited, p.stdout + p.stderr))
    evop = evolution_holding(30)
    # NSS's own failed opens leak (tests/lsan-nss.supp says where)
    lsan = env_for(tmp, ASAN_OPTIONS=os.environ.get("ASAN_OPTIONS", "") +
                   ":fast_unwind_on_malloc=0",
                   LSAN_OPTIONS="print_suppressions=0:suppressions="
                   + os.path.join(SOURCE, "tests", "lsan-nss.supp"))
    p = cm(lsan, "nss", "trust", "--client", "evolution", os.path.join(pki, "ca", "id-ca.crt"))
    evop.kill()
    evop.wait()
    t.ok(p.returncode == 5 and one_line(p) and f"Evolution (PID {evop.pid})" in p.stderr
         and "close Evolution, then run cacmail nss trust again" in p.stderr,
         "trust while Evolution keeps the lock: exit 5, one line naming Evolution and the fix",
         (p.returncode, p.stdout, p.stderr))

    # --- trust anchors ---
    db2 = newdb(os.path.join(tmp, "db2"))
    p7 = os.path.join(tmp, "bundle.p7b")
    subprocess.run(["openssl", "crl2pkcs7", "-nocrl", "-certfile", ca, "-certfile",
                    os.path.join(pki, "ca", "id-ca.crt"), "-certfile",
                    os.path.join(pki, "ca", "email-ca.crt"), "-outform", "DER", "-out", p7],
                   check=True)
    p = cm(env, "nss", "trust", "--nssdb", db2, p7)
    t.ok(p.returncode == 0 and "3 CA certificates (1 roots" in p.stdout, "trust a DER PKCS#7",
         p.stdout + p.stderr)
    lst = subprocess.run(["certutil", "-L", "-d", f"sql:{db2}"], capture_output=True,
                         text=True).stdout
    trust = {l[:60].strip(): l[60:].strip() for l in lst.splitlines()[4:] if l.strip()}
    t.eq(trust.get("Test DoD Root CA 3"), "C,C,", "root trusted C,C, (TLS and email CA)")
    t.eq(trust.get("Test DOD EMAIL CA-62"), ",,", "intermediate stored without trust")
    bundle = os.path.join(env["XDG_DATA_HOME"], "cacmail", "ca-bundle.pem")
    t.ok(os.path.exists(bundle) and open(bundle).read().count("BEGIN CERTIFICATE") == 3,
         "PEM bundle for LDAP written with the 3 CAs")
    v = subprocess.run(["openssl", "verify", "-CAfile", bundle, "-untrusted", bundle,
                        os.path.join(pki, "cards", "contractor", "4 - Dig_Sig.crt")],
                       capture_output=True, text=True)
    t.ok(v.returncode == 0, "the bundle verifies a card cert with openssl (as GnuTLS would)",
         v.stdout + v.stderr)
    p = cm(env, "nss", "trust", "--nssdb", db2, ca, os.path.join(pki, "ca", "email-ca.crt"))
    t.ok(p.returncode == 0 and ", 0 new" in p.stdout, "trust again: nothing new", p.stdout)
    t.eq(open(bundle).read().count("BEGIN CERTIFICATE"), 3, "bundle keeps one copy of each")
    pem7 = os.path.join(tmp, "bundle.p7c")
    subprocess.run(["openssl", "pkcs7", "-inform", "DER", "-in", p7, "-out", pem7], check=True)
    der = os.path.join(tmp, "root.der")
    subprocess.run(["openssl", "x509", "-in", ca, "-outform", "DER", "-out", der], check=True)
    db3 = newdb(os.path.join(tmp, "db3"))
    p = cm(env, "nss", "trust", "--nssdb", db3, pem7, der)
    t.ok(p.returncode == 0 and "3 CA certificates" in p.stdout, "trust PEM PKCS#7 + DER root",
         p.stdout + p.stderr)
    leaf = os.path.join(pki, "cards", "contractor", "4 - Dig_Sig.crt")
    p = cm(env, "nss", "trust", "--nssdb", db3, leaf)
    t.ok(p.returncode == 3 and one_line(p) and "no CA certificate" in p.stderr,
         "a leaf cert is refused: exit 3, one line", p.stderr)

    # --- GSA's CAs: two key-rollover certs are self-issued but signed by the other generation's
    # key (not roots): nss trust stores them without trust; only self-signed roots get C,C, ---
    gsa = sorted(glob.glob(os.path.join(GSA, "ca", "*.crt")))
    if not gsa:
        t.ok(os.environ.get("CI") != "true", "GSA rollover certs # SKIP ../shared/testdata missing")
    else:
        dbg = newdb(os.path.join(tmp, "db-gsa"))
        p = cm(env, "nss", "trust", "--nssdb", dbg, *gsa)
        lst = subprocess.run(["certutil", "-L", "-d", f"sql:{dbg}"], capture_output=True,
                             text=True).stdout
        # GSA's two key-rollover certs (third-party ground truth, as in unit-bundle)
        rollover = {"a4d77270ad649af119661c1254eb8ff6a67c63264c0592e1f5d693f05f49d83d",
                    "48055802ea1a1a53dd9a383d7497cfa4b9c7e68f497639274f72d6b33ea4d837"}
        selfiss, found = set(), set()  # by fingerprint: two files hold the same root
        for c in gsa:
            o = subprocess.run(["openssl", "x509", "-in", c, "-noout", "-subject", "-issuer",
                                "-fingerprint", "-sha256", "-nameopt", "RFC2253"],
                               capture_output=True, text=True).stdout.splitlines()
            sub, iss, fp = (l.split("=", 1)[1] for l in o[:3])
            fp = fp.replace(":", "").lower()
            if sub == iss:
                selfiss.add(fp)
            if fp in rollover and sub == iss:
                found.add(fp)
        trusted = [l[:60].strip() for l in lst.splitlines()[4:] if l.strip().endswith("C,C,")]
        t.ok(p.returncode == 0 and found == rollover and len(trusted) == len(selfiss) - 2
             and all("Root CA" in n for n in trusted),
             f"GSA's CAs: of {len(selfiss)} self-issued CAs only the {len(selfiss) - 2} self-signed "
             "roots"
             " are trusted C,C,; the 2 key-rollover certs (signed by the other key) get no trust",
             p.stdout + p.stderr + lst)

    # --- built-in root CAs (nssckbi, as Firefox and Thunderbird register it) are no card ---
    db5 = newdb(os.path.join(tmp, "db5"))
    subprocess.run(["modutil", "-dbdir", f"sql:{db5}", "-add", "Builtin Roots", "-libfile",
                    "/usr/lib/x86_64-linux-gnu/libnssckbi.so", "-force"], check=True,
                   capture_output=True, env=env)
    p = cm(env, "nss", "list", "--json", "--nssdb", db5)
    d5 = json.loads(p.stdout)["databases"][0] if p.returncode == 0 else {}
    t.ok(p.returncode == 0 and d5.get("card_certs") == []
         and any(m_["library"].endswith("libnssckbi.so") for m_ in d5.get("modules", [])),
         "nss list: the built-in root CAs of a registered nssckbi are not card certificates",
         p.stdout[:2000] + p.stderr)

    # --- a SoftHSM2 token through the database: "token:label" and the dbKey ---
    conf = os.path.join(tmp, "softhsm2.conf")
    os.makedirs(os.path.join(tmp, "tokens"))
    with open(conf, "w") as f:
        f.write(f"directories.tokendir = {tmp}/tokens\nobjectstore.backend = file\n")
    henv = env_for(tmp, SOFTHSM2_CONF=conf)
    subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", "cacmail-hsm",
                    "--pin", "1234", "--so-pin", "5678"], check=True, capture_output=True,
                   env=henv)
    sig = os.path.join(tmp, "sig.der")
    subprocess.run(["openssl", "x509", "-in", leaf, "-outform", "DER", "-out", sig], check=True)
    subprocess.run(["pkcs11-tool", "--module", SOFTHSM, "--login", "--pin", "1234",
                    "--write-object", sig, "--type", "cert", "--id", "02", "--label",
                    "Certificate for Digital Signature"], check=True, capture_output=True,
                   env=henv)
    db4 = newdb(os.path.join(tmp, "db4"))
    subprocess.run(["modutil", "-dbdir", f"sql:{db4}", "-add", "SoftHSM", "-libfile",
                    SOFTHSM, "-force"], check=True, capture_output=True, env=henv)
    p = cm(henv, "nss", "list", "--nssdb", db4)
    t.ok("cacmail-hsm:Certificate for Digital Signature" in p.stdout,
         "SoftHSM token cert listed as token:label", p.stdout + p.stderr)
    # dbKey: 4+4 zero bytes, serial length, issuer length, serial, issuer (facts section 6)
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding
    c = x509.load_pem_x509_certificate(open(leaf, "rb").read())
    serial = c.serial_number.to_bytes((c.serial_number.bit_length() + 8) // 8, "big")
    raw = c.tbs_certificate_bytes  # find the DER serial as encoded (keeps a leading 00)
    issuer = c.issuer.public_bytes()
    want = base64.b64encode(b"\0" * 8 + len(serial).to_bytes(4, "big") +
                            len(issuer).to_bytes(4, "big") + serial + issuer).decode()
    t.ok(f"dbKey {want}" in p.stdout, "dbKey computed as Thunderbird does", p.stdout)
    t.ok("email-signing" in p.stdout, "token cert classified (email-signing)")

t.done()
