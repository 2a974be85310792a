#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""`cacmail import-p12` killed (SIGKILL) at each step of an import, and what older versions
left: a decrypted escrow key is never anywhere but in the target database (not in
$XDG_RUNTIME_DIR, /dev/shm, $TMPDIR, the home or the state folder), and the import is
all-or-nothing: the next import into that database finds it whole, or removes what it had
added and its record. A step is each fsync, fdatasync, rename and unlink (SQLite commits and
drops its journal with those; state files are renamed into place), counted by the fault
injector tests/fault/cacmail-failwrite.c, which raises SIGKILL at the Nth. Scratch folders an
older cacmail left (cacmail-p12-XXXXXX, with a decrypted key in an NSS database) are removed."""
import datetime as dt
import json
import os
import shutil
import subprocess

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

import pfxcraft
from cmtest import CACMAIL, Tap, need, tmpdir

for tool in ("certutil", "pk12util"):
    need(tool)

t = Tap()
PW = "kill-test-pass"
SHIM = os.environ.get("CACMAIL_FAILWRITE")


def rsa_cert(cn):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    der = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
           .public_key(key.public_key()).serial_number(x509.random_serial_number())
           .not_valid_before(dt.datetime(2020, 1, 1)).not_valid_after(dt.datetime(2030, 1, 1))
           .add_extension(x509.KeyUsage(False, False, True, False, False, False, False, False,
                                        False), critical=True)
           .sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER))
    return key, der


def p12(key, der):
    cert = x509.load_der_x509_certificate(der)
    return pkcs12.serialize_key_and_certificates(
        b"escrow", key, cert, None, serialization.BestAvailableEncryption(PW.encode()))


def keys(db):
    out = subprocess.run(["certutil", "-K", "-d", f"sql:{db}"], capture_output=True,
                         text=True).stdout
    return sorted(line.split()[-1] for line in out.splitlines() if line.startswith("<"))


def certs(db):
    out = subprocess.run(["certutil", "-L", "-d", f"sql:{db}"], capture_output=True,
                         text=True).stdout
    return sorted(line[:60].strip() for line in out.splitlines()[4:] if line.strip())


def secret_bytes(key):
    n = key.private_numbers()
    return [v.to_bytes((v.bit_length() + 7) // 8, "big") for v in (n.p, n.q, n.d)]


with tmpdir() as tmp:
    env = dict(os.environ)
    env.pop("CACMAIL_STATE_DIR", None)
    areas = {}
    for var, name in (("HOME", "home"), ("XDG_DATA_HOME", "data"), ("XDG_CONFIG_HOME", "config"),
                      ("XDG_RUNTIME_DIR", "run"), ("TMPDIR", "tmpdir")):
        areas[var] = env[var] = os.path.join(tmp, name)
        os.makedirs(env[var], mode=0o700)
    pw, wrong = os.path.join(tmp, "pw"), os.path.join(tmp, "wrong-pw")
    for path, text in ((pw, PW), (wrong, "not the password")):
        with open(path, "w") as f:
            f.write(text + "\n")
        os.chmod(path, 0o600)

    def cm(*args, extra=None):
        return subprocess.run([CACMAIL, *args], capture_output=True, text=True, timeout=120,
                              env=dict(env, **(extra or {})))

    old_key, old_der = rsa_cert("Old Recovered Key")
    new_key, new_der = rsa_cert("New Recovered Key")
    files = {name: os.path.join(tmp, f"{name}.p12") for name in ("old", "new", "sealed")}
    for name, data in (("old", p12(old_key, old_der)), ("new", p12(new_key, new_der)),
                       ("sealed", pfxcraft.build(new_key, [new_der], PW, sealed="all"))):
        with open(files[name], "wb") as f:
            f.write(data)
    secrets = secret_bytes(new_key) + secret_bytes(old_key)

    # a database that already holds a recovered key: every step starts from a copy of it
    template = os.path.join(tmp, "template")
    os.makedirs(template)
    subprocess.run(["certutil", "-N", "--empty-password", "-d", f"sql:{template}"], check=True)
    p = cm("import-p12", "--nssdb", template, "--password-file", pw, files["old"])
    assert p.returncode == 0, p.stderr
    base_state = open(os.path.join(areas["XDG_DATA_HOME"], "cacmail",
                                   "recovered-keys.json")).read()
    before = (keys(template), certs(template))

    def outside(target):
        """Files, outside @target, that hold a key database or a private key's secret bytes."""
        found = []
        roots = list(areas.values()) + ["/dev/shm"]
        for root in roots:
            for d, _, names in os.walk(root):
                if root == "/dev/shm" and not d.startswith("/dev/shm/cacmail"):
                    names = [n for n in names if n.startswith("cacmail")]
                for n in names:
                    path = os.path.join(d, n)
                    if os.path.commonpath([path, target]) == target or not os.path.isfile(path):
                        continue
                    data = open(path, "rb").read()
                    if n.startswith("key4.db") or any(s in data for s in secrets):
                        found.append(path)
        return found

    def records(db):
        doc = json.load(open(os.path.join(areas["XDG_DATA_HOME"], "cacmail",
                                          "recovered-keys.json")))
        return (sorted(k["nickname"] for k in doc["keys"] if k["nssdb"] == db),
                [q for q in doc.get("pending", []) if q["nssdb"] == db])

    t.ok(SHIM and os.path.exists(SHIM), "the fault injector is built (CACMAIL_FAILWRITE)", SHIM)
    for what, f in (("a file as openssl writes it (key shrouded, certs encrypted)", files["new"]),
                    ("a file with key and certs in an encrypted part (older cacmail checked "
                     "such files in a scratch database)", files["sealed"])):
        steps, problems = 0, []
        for n in range(100):
            db = os.path.join(tmp, f"db-{len(what)}-{n}")
            shutil.copytree(template, db)
            with open(os.path.join(areas["XDG_DATA_HOME"], "cacmail", "recovered-keys.json"),
                      "w") as fh:
                fh.write(base_state.replace(template, db))
            mark = os.path.join(tmp, "killed")
            if os.path.exists(mark):
                os.unlink(mark)
            p = cm("import-p12", "--nssdb", db, "--password-file", pw, f,
                   extra={"LD_PRELOAD": SHIM, "CACMAIL_FAULT_KILL": str(n),
                          "CACMAIL_FAULT_MARK": mark,
                          "ASAN_OPTIONS": env.get("ASAN_OPTIONS", "")
                          + ":verify_asan_link_order=0"})
            if not os.path.exists(mark):
                if p.returncode != 0 or len(keys(db)) != 2:
                    problems.append(f"step {n} (not reached): exit {p.returncode}: {p.stderr}")
                break
            steps += 1
            if p.returncode != -9:
                problems.append(f"step {n}: exit {p.returncode}, not killed: {p.stderr}")
            left = outside(db)
            if left:
                problems.append(f"step {n}: a key outside the database: {left}")
            # the next import into that database, here one that fails (wrong password) so it
            # adds nothing itself: the killed one is then whole or undone, record and all
            p = cm("import-p12", "--nssdb", db, "--password-file", wrong, f)
            now = (keys(db), certs(db))
            rec, pending = records(db)
            if p.returncode != 3 or "password is wrong" not in p.stderr:
                problems.append(f"step {n}: the next import: exit {p.returncode}: {p.stderr}")
            if now != before and (len(now[0]) != 2 or len(now[1]) != 2):
                problems.append(f"step {n}: neither whole nor undone: keys {now[0]}, "
                                f"certs {now[1]}")
            if rec != now[1] or pending:
                problems.append(f"step {n}: record {rec} (pending {len(pending)}) but "
                                f"certs {now[1]}")
            p = cm("import-p12", "--nssdb", db, "--password-file", pw, f)
            if p.returncode != 0 or len(keys(db)) != 2 or len(certs(db)) != 2:
                problems.append(f"step {n}: importing again: exit {p.returncode}, "
                                f"keys {keys(db)}: {p.stderr}")
            shutil.rmtree(db)
        t.ok(steps >= 5 and not problems,
             f"{what}: killed at each of its {steps} steps, no key outside the target "
             f"database and the next import finds it whole or as before", "\n".join(problems[:5]))

    # --- what an older cacmail left: scratch databases with a decrypted key ---
    def scratch(base, name, owner=None):
        d = os.path.join(base, name)
        os.makedirs(d)
        subprocess.run(["certutil", "-N", "--empty-password", "-d", f"sql:{d}"], check=True)
        subprocess.run(["pk12util", "-i", files["old"], "-d", f"sql:{d}", "-W", PW], check=True,
                       capture_output=True)
        if owner:
            subprocess.run(["chown", "-R", f"{owner}:{owner}", d], check=True)
        return d

    gone = [scratch(areas["XDG_RUNTIME_DIR"], "cacmail-p12-Ab12Cd"),
            scratch(areas["TMPDIR"], "cacmail-p12-Zz99Yy")]
    kept = [scratch(areas["TMPDIR"], "cacmail-p12-nobody", owner=65534),
            scratch(areas["TMPDIR"], "cacmail-p12-notascratchname")]
    t.ok(len(outside(os.path.join(tmp, "none"))) >= 4, "the old scratch databases hold the key",
         outside(os.path.join(tmp, "none")))
    db = os.path.join(tmp, "db-after-old")
    shutil.copytree(template, db)
    p = cm("import-p12", "--nssdb", db, "--password-file", pw, files["new"])
    t.ok(p.returncode == 0 and not any(os.path.exists(d) for d in gone),
         "the user's scratch folders an older cacmail left ($XDG_RUNTIME_DIR, $TMPDIR) are "
         "removed by the next import", [d for d in gone if os.path.exists(d)])
    t.ok(all(os.path.exists(d) for d in kept),
         "another user's folder, and one not named as a scratch folder, are left alone")
    for d in kept:
        shutil.rmtree(d)

t.done()
