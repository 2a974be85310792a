#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""`cacmail import-p12`: recovered keys from the generated escrow files (3DES, RC2-40, AES) and
GSA's card files (empty password, 3DES) into NSS databases made by certutil. All-or-nothing:
wrong password, truncated file, not a PKCS#12, no key, and a read-only database leave the
database byte-for-byte unchanged; importing twice adds nothing; the recovered cert's nickname
says it is decrypt-only and cacmail records it; --list is most recent Not After first."""
import glob
import hashlib
import json
import os
import shutil
import subprocess
import time
import datetime as dt

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

import pfxcraft
from cmtest import CACMAIL, GSA_CARDS, Tap, make_pki, need, schema_errors, tmpdir

for tool in ("certutil", "openssl", "setpriv"):
    need(tool)

t = Tap()
NOW = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def env_for(tmp):
    e = dict(os.environ)
    e.update(HOME=os.path.join(tmp, "home"), XDG_DATA_HOME=os.path.join(tmp, "data"),
             XDG_CONFIG_HOME=os.path.join(tmp, "config"),
             XDG_RUNTIME_DIR=os.path.join(tmp, "run"), TMPDIR=os.path.join(tmp, "tmpdir"))
    e.pop("CACMAIL_STATE_DIR", None)
    for d in ("HOME", "XDG_RUNTIME_DIR", "TMPDIR"):
        os.makedirs(e[d], mode=0o700, exist_ok=True)
    return e


def cm(env, *args, stdin=None, timeout=60):
    return subprocess.run([CACMAIL, *args], capture_output=True, text=True, env=env, timeout=timeout,
                          input=stdin)


def cm_bounded(env, *args):
    """cm() that reports a hang (over 30 s) as exit code None instead of raising."""
    try:
        return cm(env, *args, timeout=30)
    except subprocess.TimeoutExpired as e:
        return subprocess.CompletedProcess(e.cmd, None, "", "(hung for 30 s)")


def newdb(path):
    os.makedirs(path)
    subprocess.run(["certutil", "-N", "--empty-password", "-d", f"sql:{path}"], check=True,
                   capture_output=True)
    return path


def snapshot(path):
    return {f: hashlib.sha256(open(os.path.join(path, f), "rb").read()).hexdigest()
            for f in sorted(os.listdir(path))}


def keys(path):
    out = subprocess.run(["certutil", "-K", "-d", f"sql:{path}"], capture_output=True,
                         text=True).stdout
    return [l for l in out.splitlines() if l.startswith("<")]


def nicknames(path):
    out = subprocess.run(["certutil", "-L", "-d", f"sql:{path}"], capture_output=True,
                         text=True).stdout
    return [l[:60].strip() for l in out.splitlines()[4:] if l.strip()]


def one_line(p):
    return p.stderr.count("\n") == 1 and p.stdout == ""


with tmpdir() as tmp:
    env = env_for(tmp)
    pki, m = make_pki(tmp)
    pw = os.path.join(tmp, "pw")
    with open(pw, "w") as f:
        f.write(m["escrow_password"] + "\n")
    os.chmod(pw, 0o600)  # password files must be private
    esc = os.path.join(pki, "escrow")
    old_enc = {c["file"]: c for c in m["certs"]}
    old = {p: old_enc[f"previous/{p}-encryption-old.crt"] for p in ("contractor", "reservist")}

    # --- each cipher of the escrow files, into its own database ---
    for cipher in ("3des", "rc2", "aes"):
        db = newdb(os.path.join(tmp, f"db-{cipher}"))
        f = os.path.join(esc, f"contractor-encryption-old-{cipher}.p12")
        p = cm(env, "import-p12", "--nssdb", db, "--password-file", pw, f)
        t.ok(p.returncode == 0 and p.stdout.startswith("imported:"), f"{cipher}: imported",
             p.stdout + p.stderr)
        t.eq(len(keys(db)), 1, f"{cipher}: one private key in key4.db")
        t.ok(any(n.startswith("Recovered key, expired 2025-08-31") for n in nicknames(db)),
             f"{cipher}: nickname says recovered and expired", nicknames(db))
        before = snapshot(db)
        p = cm(env, "import-p12", "--nssdb", db, "--password-file", pw, f)
        t.ok(p.returncode == 0 and "unchanged, already there" in p.stdout,
             f"{cipher}: importing twice adds nothing", p.stdout + p.stderr)
        t.eq(len(keys(db)), 1, f"{cipher}: still one key")

    # --- the other legacy PKCS#12 PBEs old escrow files use (openssl -legacy re-exports) ---
    pem = os.path.join(tmp, "contractor-old.pem")
    subprocess.run(["openssl", "pkcs12", "-in", os.path.join(
        esc, "contractor-encryption-old-aes.p12"), "-nodes", "-passin",
        f"pass:{m['escrow_password']}", "-out", pem], check=True, capture_output=True)
    for keypbe, certpbe in (("PBE-SHA1-RC2-128", "PBE-SHA1-RC2-128"),
                            ("PBE-SHA1-RC2-40", "PBE-SHA1-RC2-40"),
                            ("PBE-SHA1-RC4-128", "PBE-SHA1-RC2-128")):
        legacy = os.path.join(tmp, f"legacy-{keypbe}.p12")
        subprocess.run(["openssl", "pkcs12", "-export", "-legacy", "-in", pem, "-keypbe", keypbe,
                        "-certpbe", certpbe, "-passout", f"pass:{m['escrow_password']}",
                        "-out", legacy], check=True, capture_output=True)
        db = newdb(os.path.join(tmp, f"db-{keypbe}"))
        p = cm(env, "import-p12", "--nssdb", db, "--password-file", pw, legacy)
        t.ok(p.returncode == 0 and len(keys(db)) == 1,
             f"key {keypbe}, certificates {certpbe}: imported with its key", p.stdout + p.stderr)
    # 2-key triple DES: NSS cannot decrypt it (pk12util fails too): said plainly, nothing kept
    legacy = os.path.join(tmp, "legacy-2des.p12")
    subprocess.run(["openssl", "pkcs12", "-export", "-legacy", "-in", pem, "-keypbe",
                    "PBE-SHA1-2DES", "-certpbe", "PBE-SHA1-3DES", "-passout",
                    f"pass:{m['escrow_password']}", "-out", legacy], check=True,
                   capture_output=True)
    db = newdb(os.path.join(tmp, "db-2des"))
    before = snapshot(db)
    p = cm(env, "import-p12", "--nssdb", db, "--password-file", pw, legacy)
    t.ok(p.returncode == 3 and one_line(p) and "2-key triple DES" in p.stderr
         and snapshot(db) == before,
         "key in 2-key triple DES: exit 3, one line saying so, database unchanged", p.stderr)

    # --- the state file marks it decrypt-only ---
    state = json.load(open(os.path.join(env["XDG_DATA_HOME"], "cacmail", "recovered-keys.json")))
    shas = {k["sha256"] for k in state["keys"]}
    t.eq(shas, {old["contractor"]["sha256"]}, "state file records the recovered cert's sha256")
    t.eq(oct(os.stat(os.path.join(env["XDG_DATA_HOME"], "cacmail",
                                  "recovered-keys.json")).st_mode & 0o777), "0o600",
         "state file is private (0600)")

    # --- --list: most recent Not After first, two subjects get distinct nicknames ---
    db = os.path.join(tmp, "db-aes")
    p = cm(env, "import-p12", "--nssdb", db, "--password-file", pw,
           os.path.join(esc, "reservist-encryption-old-rc2.p12"))
    t.eq(p.returncode, 0, "second persona's recovered key imported")
    t.eq(len(set(nicknames(db))), 2, "two subjects, two distinct nicknames")
    gsa46 = os.path.join(GSA_CARDS, "46_Golden_FIPS_201-2_PIV")
    gsa_km = glob.glob(os.path.join(gsa46, "5 - *.p12"))[0]
    empty = os.path.join(tmp, "empty-pw")
    open(empty, "w").close()
    os.chmod(empty, 0o600)
    p = cm(env, "import-p12", "--nssdb", db, "--password-file", empty, gsa_km)
    t.ok(p.returncode == 0 and "imported" in p.stdout,
         "GSA card PKCS#12 (empty password, 3DES) imported", p.stdout + p.stderr)
    p = cm(env, "import-p12", "--nssdb", db, "--list")
    lines = [l for l in p.stdout.splitlines() if "not after" in l]
    dates = [l.split("not after ")[1][:10] for l in lines]
    t.ok(p.returncode == 0 and len(dates) == 3 and dates == sorted(dates, reverse=True),
         "--list: 3 keys, most recent Not After first", p.stdout)
    p = cm(env, "nss", "list", "--nssdb", db, "--json")
    doc = json.loads(p.stdout)
    rec = doc["databases"][0]["recovered_keys"]
    t.eq(schema_errors(doc), [], "nss list --json with recovered keys: matches the schema")
    t.ok([r["not_after"][:10] for r in rec] == dates and all(r["present"] for r in rec)
         and [r["expired"] for r in rec] == [r["not_after"] < NOW for r in rec]
         and old["contractor"]["sha256"] in {r["sha256"] for r in rec},
         "nss list --json: the recovered keys, most recent first, present, expired flagged",
         rec)
    # a recovered key deleted behind cacmail's back (certutil -F: key and cert) is reported
    gone = next(r for r in rec if r["sha256"] == old["contractor"]["sha256"])
    subprocess.run(["certutil", "-F", "-d", f"sql:{db}", "-n", gone["nickname"]], check=True,
                   capture_output=True)
    rec = json.loads(cm(env, "nss", "list", "--nssdb", db, "--json").stdout)[
        "databases"][0]["recovered_keys"]
    t.ok([r["present"] for r in rec if r["sha256"] == gone["sha256"]] == [False]
         and sum(r["present"] for r in rec) == 2,
         "a recovered key deleted from the database: present false, the others still true", rec)
    p = cm(env, "import-p12", "--nssdb", db, "--list")
    t.ok("MISSING from the database" in p.stdout, "--list says which key is missing", p.stdout)

    # --- failures leave the database byte-for-byte unchanged ---
    db = newdb(os.path.join(tmp, "db-fail"))
    f = os.path.join(esc, "reservist-encryption-old-aes.p12")
    data = open(f, "rb").read()

    def write(name, content):
        path = os.path.join(tmp, name)
        with open(path, "wb") as fh:
            fh.write(content)
        os.chmod(path, 0o600)
        return path

    nokey = os.path.join(tmp, "certonly.p12")
    subprocess.run(["openssl", "pkcs12", "-export", "-nokeys", "-in",
                    os.path.join(pki, "previous", "reservist-encryption-old.crt"), "-passout",
                    f"pass:{m['escrow_password']}", "-out", nokey], check=True)
    # a key with a certificate that is not its own (the reservist's key, the contractor's cert)
    keyonly = os.path.join(tmp, "key.pem")
    subprocess.run(["openssl", "pkcs12", "-in", f, "-nocerts", "-nodes", "-passin",
                    f"pass:{m['escrow_password']}", "-out", keyonly], check=True,
                   capture_output=True)
    keynocert = os.path.join(tmp, "keynocert.p12")
    subprocess.run(["openssl", "pkcs12", "-export", "-nocerts", "-inkey", keyonly, "-passout",
                    f"pass:{m['escrow_password']}", "-out", keynocert], check=True)
    # keys filed with a certificate that is not their own under one localKeyID (openssl will
    # not write that, so pfxcraft does): the reservist's key with the contractor's cert, in a
    # shrouded and in a plain keyBag; an EC key with another EC key's cert
    epw = m["escrow_password"]

    def load(name):
        with open(os.path.join(esc, name), "rb") as fh:
            return pkcs12.load_key_and_certificates(fh.read(), epw.encode())

    res_key, _, _ = load("reservist-encryption-old-aes.p12")
    _, con_cert, _ = load("contractor-encryption-old-aes.p12")
    con_der = con_cert.public_bytes(serialization.Encoding.DER)

    def ec_cert(key, cn):
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
        return (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(dt.datetime(2020, 1, 1))
                .not_valid_after(dt.datetime(2030, 1, 1))
                .add_extension(x509.KeyUsage(False, False, False, False, True, False, False,
                                             False, False), critical=True)
                .sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER))

    ec_a, ec_b = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ec_a_der = ec_cert(ec_a, "EC key agreement A")
    mism_rsa = write("mismatch-rsa.p12", pfxcraft.build(res_key, [con_der], epw))
    mism_rsa_plain = write("mismatch-rsa-keybag.p12",
                           pfxcraft.build(res_key, [con_der], epw, shrouded=False))
    mism_ec = write("mismatch-ec.p12", pfxcraft.build(ec_b, [ec_a_der], epw))
    wrongpw = write("wrong-pw", b"not-the-password\n")
    cases = [
        ("wrong password", f, wrongpw, "password is wrong"),
        ("truncated file", write("trunc.p12", data[: len(data) // 2]), pw, "truncated"),
        ("not a PKCS#12", os.path.join(pki, "ca", "root.crt"), pw, "not a PKCS#12"),
        ("random bytes", write("junk.p12", os.urandom(600)), pw, "not a PKCS#12"),
        ("empty file", write("empty.p12", b""), pw, "is empty"),
        ("no private key inside", nokey, pw, "no private key"),
        ("a key without its certificate", keynocert, pw, "no certificate for it"),
        ("missing file", os.path.join(tmp, "nope.p12"), pw, "cannot read"),
        ("RSA key filed with another person's cert", mism_rsa, pw,
         "does not belong to its certificate"),
        ("RSA key in a plain keyBag with another person's cert", mism_rsa_plain, pw,
         "does not belong to its certificate"),
        ("EC key filed with another key's cert", mism_ec, pw,
         "does not belong to its certificate"),
    ]
    base = snapshot(db)
    for what, path, pwf, says in cases:
        p = cm(env, "import-p12", "--nssdb", db, "--password-file", pwf, path)
        t.ok(p.returncode == 3 and one_line(p) and says in p.stderr,
             f"{what}: exit 3, one line saying '{says}'", (p.returncode, p.stderr))
        t.eq(snapshot(db), base, f"{what}: database byte-for-byte unchanged")
    t.ok("recovered-keys.json" not in os.listdir(os.path.join(env["XDG_DATA_HOME"], "cacmail"))
         or all(k["nssdb"] != db for k in json.load(open(os.path.join(
             env["XDG_DATA_HOME"], "cacmail", "recovered-keys.json")))["keys"]),
         "failures record nothing in the state file")

    # --- the same hand-made files with the right key: imported (proves the refusals above
    # come from the key check, not from the way the files are made) ---
    for what, data in (("RSA key in a plain keyBag", pfxcraft.build(
            load("contractor-encryption-old-aes.p12")[0], [con_der], epw, shrouded=False)),
            ("EC key-agreement-only key", pfxcraft.build(ec_a, [ec_a_der], epw))):
        db = newdb(os.path.join(tmp, "db-craft-" + what.split()[0]))
        p = cm(env, "import-p12", "--nssdb", db, "--password-file", pw, write("ok.p12", data))
        t.ok(p.returncode == 0 and "imported" in p.stdout and len(keys(db)) == 1,
             f"hand-made file, {what}: imported with its key", p.stdout + p.stderr)

    # --- a database with a primary password: refused before anything is written ---
    db = os.path.join(tmp, "db-primary")
    os.makedirs(db)
    subprocess.run(["certutil", "-N", "-d", f"sql:{db}", "-f", wrongpw], check=True,
                   capture_output=True)
    base = snapshot(db)
    p = cm(env, "import-p12", "--nssdb", db, "--password-file", pw, f)
    t.ok(p.returncode == 4 and one_line(p) and "primary password" in p.stderr,
         "database with a primary password: exit 4, one line saying so", (p.returncode, p.stderr))
    t.eq(snapshot(db), base, "database with a primary password: unchanged")

    # --- a write that fails half-way: what was added is removed again ---
    # tests/fault/cacmail-failwrite.c fails one write to key4.db or cert9.db (ENOSPC), the
    # 1st, 2nd, ... in turn, until the import no longer reaches it. The database already holds
    # the contractor's recovered key, which must survive every failure.
    shim = os.environ.get("CACMAIL_FAILWRITE")
    t.ok(shim and os.path.exists(shim), "the fault injector is built (CACMAIL_FAILWRITE)", shim)
    nested = write("nested.p12", pfxcraft.build(res_key, [load(
        "reservist-encryption-old-aes.p12")[1].public_bytes(serialization.Encoding.DER)], epw,
        nested=True))
    contractor_p12 = os.path.join(esc, "contractor-encryption-old-aes.p12")
    for way, p12 in (("fast way", os.path.join(esc, "reservist-encryption-old-aes.p12")),
                     ("older way (nested bags)", nested)):
        for target in ("key4.db", "cert9.db"):
            fired = undone = 0
            problems = []
            for n in range(60):
                db = newdb(os.path.join(tmp, f"db-fault-{len(way)}-{target}-{n}"))
                assert cm(env, "import-p12", "--nssdb", db, "--password-file", pw,
                          contractor_p12).returncode == 0
                before = nicknames(db)
                mark = os.path.join(tmp, "fault-fired")
                if os.path.exists(mark):
                    os.unlink(mark)
                fenv = dict(env, LD_PRELOAD=shim,
                            CACMAIL_FAULT_FILE=os.path.realpath(os.path.join(db, target)),
                            CACMAIL_FAULT_AFTER=str(n), CACMAIL_FAULT_MARK=mark,
                            ASAN_OPTIONS=os.environ.get("ASAN_OPTIONS", "")
                            + ":verify_asan_link_order=0")
                p = cm(fenv, "import-p12", "--nssdb", db, "--password-file", pw, p12)
                n_keys, names = len(keys(db)), nicknames(db)
                if not os.path.exists(mark):
                    if p.returncode != 0 or n_keys != 2:
                        problems.append(f"write {n} (not reached): exit {p.returncode}, "
                                        f"{n_keys} keys: {p.stderr.strip()}")
                    break
                fired += 1
                if p.returncode == 0:
                    if n_keys != 2 or len(names) != 2:
                        problems.append(f"write {n}: exit 0 but {n_keys} keys, certs {names}")
                    continue
                undone += 1
                if p.returncode != 4 or not one_line(p) or "removed" not in p.stderr:
                    problems.append(f"write {n}: exit {p.returncode}: {p.stderr.strip()}")
                if n_keys != 1 or names != before:
                    problems.append(f"write {n}: exit {p.returncode} but {n_keys} keys, "
                                    f"certs {names}")
                recorded = [k for k in json.load(open(os.path.join(
                    env["XDG_DATA_HOME"], "cacmail", "recovered-keys.json")))["keys"]
                    if k["nssdb"] == db]
                if len(recorded) != 1:
                    problems.append(f"write {n}: the state file records {len(recorded)} keys")
            t.ok(fired > 0 and undone > 0 and not problems,
                 f"{way}, failed write to {target}: every one of {fired} failures is undone "
                 f"({undone} refused with exit 4 and the key removed), the old key kept",
                 "\n".join(problems[:5]))

    # --- read-only database (another user, files not writable by them) ---
    rodb = newdb(os.path.join(tmp, "db-ro"))
    os.chmod(tmp, 0o755)
    for d in (rodb,):
        os.chmod(d, 0o555)
        for n in os.listdir(d):
            os.chmod(os.path.join(d, n), 0o444)
    nob = os.path.join(tmp, "nobody")
    os.makedirs(nob)
    shutil.copy(f, os.path.join(nob, "in.p12"))
    shutil.copy(pw, os.path.join(nob, "pw"))
    subprocess.run(["chown", "-R", "65534:65534", nob], check=True)
    for d, _, files in os.walk(pki):
        os.chmod(d, 0o755)
    base = snapshot(rodb)
    nenv = dict(env, HOME=nob, XDG_DATA_HOME=os.path.join(nob, "data"),
                XDG_CONFIG_HOME=os.path.join(nob, "config"))
    p = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", CACMAIL,
                        "import-p12", "--nssdb", rodb, "--password-file",
                        os.path.join(nob, "pw"), os.path.join(nob, "in.p12")],
                       capture_output=True, text=True, env=nenv, timeout=60)
    t.ok(p.returncode == 4 and one_line(p) and "read-only" in p.stderr,
         "read-only database: exit 4, one line", (p.returncode, p.stderr))
    t.eq(snapshot(rodb), base, "read-only database: unchanged")
    t.ok(not os.path.exists(os.path.join(nob, "data", "cacmail", "recovered-keys.json")),
         "read-only database: nothing recorded")

    # --- files older versions checked in a scratch database (a kill there left the key on
    # disk): now walked and decrypted in memory, the same one way as every other file ---
    rkey, rcert, _ = load("reservist-encryption-old-aes.p12")
    rder = rcert.public_bytes(serialization.Encoding.DER)
    ckey = load("contractor-encryption-old-aes.p12")[0]
    for what, data in (
            ("bags nested in a safeContentsBag", pfxcraft.build(rkey, [rder], epw, nested=True)),
            ("key and certificate in an encrypted part", pfxcraft.build(rkey, [rder], epw,
                                                                         sealed="all")),
            ("a plain keyBag in an encrypted part", pfxcraft.build(rkey, [rder], epw,
                                                                   sealed="all", shrouded=False)),
            ("two keys whose certificates are only in an encrypted part", pfxcraft.build_many(
                [(rkey, [rder], b"\x01" * 20), (ckey, [con_der], b"\x02" * 20)], epw,
                sealed="certs"))):
        db = newdb(os.path.join(tmp, "db-mem-" + what.split()[0] + str(len(what))))
        p = cm(env, "import-p12", "--nssdb", db, "--password-file", pw, write("mem.p12", data))
        want = 2 if what.startswith("two") else 1
        t.ok(p.returncode == 0 and len(keys(db)) == want and len(nicknames(db)) == want,
             f"{what}: imported, {want} key(s) with their certificates", p.stdout + p.stderr)
    t.eq(os.listdir(env["XDG_RUNTIME_DIR"]) + os.listdir(env["TMPDIR"]), [],
         "nothing was written to $XDG_RUNTIME_DIR or $TMPDIR (no scratch database)")
    # a database whose key database was never given a password (certutil -A alone)
    db = os.path.join(tmp, "db-uninit")
    os.makedirs(db)
    subprocess.run(["certutil", "-A", "-d", f"sql:{db}", "-n", "root", "-t", "C,C,", "-a", "-i",
                    os.path.join(pki, "ca", "root.crt")], check=True)
    p = cm(env, "import-p12", "--nssdb", db, "--password-file", pw, f)
    t.ok(p.returncode == 0 and len(keys(db)) == 1, "a key database never initialised: the key "
         "is imported (its empty password set first)", p.stdout + p.stderr)

    # --- input bounds: iteration counts capped before NSS derives a key, files read bounded ---
    db = newdb(os.path.join(tmp, "db-bounds"))
    base = snapshot(db)
    huge = 2**31 - 1
    hostile = [
        ("MAC iteration count 2^31-1", dict(mac_iterations=huge), "2147483647"),
        ("key PBE (PBKDF2) iteration count 2^31-1", dict(key_iterations=huge), "2147483647"),
        ("encrypted-part PBE iteration count 2^31-1", dict(sealed="certs",
                                                           sealed_iterations=huge), "2147483647"),
        ("MAC iteration count 2^80", dict(mac_iterations=2**80), "64-bit"),
        ("key iteration count 10,000,001", dict(key_iterations=10000001), "10000001"),
    ]
    for what, kw, says in hostile:
        path = write("hostile.p12", pfxcraft.build(rkey, [rder], epw, **kw))
        started = time.monotonic()
        p = cm_bounded(env, "import-p12", "--nssdb", db, "--password-file", pw, path)
        took = time.monotonic() - started
        t.ok(p.returncode == 3 and one_line(p) and "iterations" in p.stderr and says in p.stderr
             and took < 10, f"{what}: refused in {took:.1f} s, exit 3, one line naming the count",
             (p.returncode, p.stderr))
    fifo = os.path.join(tmp, "fifo.p12")
    os.mkfifo(fifo)
    os.makedirs(os.path.join(tmp, "folder.p12"))
    for what, path, says in (("/dev/zero", "/dev/zero", "not a regular file"),
                             ("a FIFO", fifo, "not a regular file"),
                             ("a folder", os.path.join(tmp, "folder.p12"), "not a regular file"),
                             ("a 2 MiB file", write("big.p12", b"\x30\x84" + os.urandom(2 << 20)),
                              "larger than 1024 KiB")):
        p = cm_bounded(env, "import-p12", "--nssdb", db, "--password-file", pw, path)
        t.ok(p.returncode == 3 and one_line(p) and says in p.stderr and path in p.stderr,
             f"{what} as the .p12: exit 3, one line naming it: '{says}'", (p.returncode, p.stderr))
    t.eq(snapshot(db), base, "refused inputs: database byte-for-byte unchanged")

    # --- the record of recovered keys is handled like a key: fail closed, private, whole ---
    sdir = os.path.join(tmp, "state")
    senv = dict(env, CACMAIL_STATE_DIR=sdir)
    db = newdb(os.path.join(tmp, "db-state"))
    p = cm(senv, "import-p12", "--nssdb", db, "--password-file", pw, f)
    state = os.path.join(sdir, "recovered-keys.json")
    t.ok(p.returncode == 0 and oct(os.stat(sdir).st_mode & 0o777) == "0o700"
         and oct(os.stat(state).st_mode & 0o777) == "0o600",
         "the record is written 0600 in a folder made 0700", p.stderr)
    os.link(state, state + ".old")
    p = cm(senv, "import-p12", "--nssdb", db, "--password-file", pw, contractor_p12)
    t.ok(p.returncode == 0 and open(state + ".old").read() != open(state).read()
         and len(json.load(open(state + ".old"))["keys"]) == 1,
         "the record is replaced whole (a new file renamed over it), never rewritten in place")
    os.unlink(state + ".old")
    good = open(state, "rb").read()
    other = os.path.join(esc, "contractor-encryption-old-3des.p12")
    doc = json.loads(good)
    del doc["keys"][0]["sha256"]
    cases = [
        ("a truncated record", lambda: open(state, "wb").write(good[: len(good) // 2]), 3,
         "damaged"),
        ("a record with an entry without its sha256",
         lambda: open(state, "w").write(json.dumps(doc)), 3, "damaged"),
        ("a record others may change (0666)", lambda: os.chmod(state, 0o666), 5, "chmod 600"),
        ("a record of another user", lambda: os.chown(state, 65534, 65534), 5, "chown"),
        ("a state folder others may change (0777)", lambda: os.chmod(sdir, 0o777), 5,
         "chmod 700"),
    ]
    for what, spoil, code, says in cases:
        with open(state, "wb") as fh:
            fh.write(good)
        os.chmod(state, 0o600)
        os.chmod(sdir, 0o700)
        spoil()
        spoiled, dbase = open(state, "rb").read(), snapshot(db)
        p = cm(senv, "import-p12", "--nssdb", db, "--password-file", pw, other)
        t.ok(p.returncode == code and one_line(p) and says in p.stderr
             and (state in p.stderr or sdir in p.stderr),
             f"{what}: import refused, exit {code}, one line naming it and '{says}'",
             (p.returncode, p.stderr))
        t.ok(open(state, "rb").read() == spoiled and snapshot(db) == dbase,
             f"{what}: record and database left as they were")
        p = cm(senv, "import-p12", "--nssdb", db, "--list")
        t.ok(p.returncode == code and says in p.stderr, f"{what}: --list refuses too",
             (p.returncode, p.stderr))
        os.chown(state, 0, 0)
    os.chmod(sdir, 0o700)

    # --- password from a pipe (never argv); usage errors ---
    db = newdb(os.path.join(tmp, "db-pipe"))
    p = cm(env, "import-p12", "--nssdb", db, os.path.join(esc, "contractor-encryption-old-aes.p12"),
           stdin=m["escrow_password"] + "\n")
    t.ok(p.returncode == 0 and "imported" in p.stdout, "password read from standard input",
         p.stdout + p.stderr)
    p = cm(env, "import-p12", "--nssdb", db)
    t.eq(p.returncode, 2, "no FILE: usage error")
    p = cm(env, "import-p12", "--nssdb", db, "--password", "x", f)
    t.eq(p.returncode, 2, "no --password option: passwords never on the command line")

t.done()
