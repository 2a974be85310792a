#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Benchmark of the NSS helper against NSS's own tools, on the same input (temp dirs only).

1. import: 100 PKCS#12 files (EC P-256 key + cert, PBES2/AES), one process per file, into a
   fresh database: `cacmail import-p12 --nssdb` vs `pk12util -i` (the target's figure). Also
   printed: cacmail given all 100 files in one command, as a user with a folder of recovered
   keys runs it (pk12util takes one file per run).
2. enumerate + classify a database holding 5,000 certificates: `cacmail nss list --nssdb`
   (every cert decoded and classified into an inventory) vs `certutil -L` (plain listing).

Each figure is the median of 5 alternating runs of cacmail/tool time ratios. Usage:
    bench/nss-bench.py [BUILD_DIR]      (default ./build)
"""
import datetime
import os
import statistics
import subprocess
import sys
import tempfile
import time

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

BUILD = sys.argv[1] if len(sys.argv) > 1 else "build"
CACMAIL = os.path.abspath(os.path.join(BUILD, "cli", "cacmail"))
RUNS = 5
NOW = datetime.datetime(2025, 1, 1)


def cert(name, key, issuer_name=None, issuer_key=None, ca=False):
    b = (x509.CertificateBuilder()
         .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
         .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_name or name)]))
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(NOW).not_valid_after(NOW + datetime.timedelta(days=3650))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    return b.sign(issuer_key or key, hashes.SHA256())


def newdb(path):
    os.makedirs(path)
    subprocess.run(["certutil", "-N", "--empty-password", "-d", f"sql:{path}"], check=True,
                   capture_output=True)


def timed(cmds, env=None):
    t0 = time.perf_counter()
    for c in cmds:
        subprocess.run(c, check=True, capture_output=True, env=env)
    return time.perf_counter() - t0


def alternate(r, cm, other, env):
    """(cacmail's time, the other tool's) for run @r; odd runs start with cacmail."""
    if r % 2:
        tc = timed(cm, env)
        return tc, timed(other, env)
    to = timed(other, env)
    return timed(cm, env), to


def main():
    tmp = tempfile.mkdtemp(prefix="cacmail-bench-")
    env = dict(os.environ, HOME=tmp, XDG_DATA_HOME=os.path.join(tmp, "data"),
               XDG_CONFIG_HOME=os.path.join(tmp, "config"))
    # 100 PKCS#12 files
    files = []
    for i in range(100):
        k = ec.generate_private_key(ec.SECP256R1())
        c = cert(f"Bench User {i}", k)
        data = pkcs12.serialize_key_and_certificates(
            f"user {i}".encode(), k, c, None, serialization.BestAvailableEncryption(b"bench-pass"))
        files.append(os.path.join(tmp, f"u{i}.p12"))
        with open(files[-1], "wb") as f:
            f.write(data)
    pw = os.path.join(tmp, "pw")
    with open(pw, "w") as f:
        f.write("bench-pass\n")
    os.chmod(pw, 0o600)  # cacmail refuses a password file others may read

    def import_runs(tag, one_command):
        """Median cacmail/pk12util ratio over RUNS alternating runs, each into fresh databases
        and, for cacmail, a fresh record of recovered keys (else run 5 would rewrite a record
        of 500 keys on every import)."""
        ratios = []
        for r in range(RUNS):
            a, b = os.path.join(tmp, f"imp-cm{tag}-{r}"), os.path.join(tmp, f"imp-pk{tag}-{r}")
            newdb(a)
            newdb(b)
            cm_cmd = [CACMAIL, "import-p12", "--nssdb", a, "--password-file", pw]
            cm = [cm_cmd + files] if one_command else [cm_cmd + [f] for f in files]
            pk = [["pk12util", "-i", f, "-d", f"sql:{b}", "-w", pw] for f in files]
            tc, tp = alternate(r, cm, pk, dict(env, XDG_DATA_HOME=os.path.join(
                tmp, f"data{tag}-{r}")))
            ratios.append(tc / tp)
            what = ", one cacmail command for the 100 files" if one_command else ""
            print(f"import run {r + 1}{what}: cacmail {tc:.2f} s, pk12util {tp:.2f} s, "
                  f"ratio {tc / tp:.3f}")
        return statistics.median(ratios)

    imp = import_runs("", False)
    imp_batch = import_runs("b", True)

    # a database with 5,000 certificates (CA certs, imported in one go through a PKCS#7)
    big = os.path.join(tmp, "big")
    newdb(big)
    root_key = ec.generate_private_key(ec.SECP256R1())
    certs = [cert(f"Bench CA {i}", root_key, "Bench Root", root_key, ca=True) for i in range(5000)]
    pem = os.path.join(tmp, "5000.pem")
    with open(pem, "wb") as f:
        for c in certs:
            f.write(c.public_bytes(serialization.Encoding.PEM))
    subprocess.run([CACMAIL, "nss", "trust", "--nssdb", big, "--bundle",
                    os.path.join(tmp, "bundle.pem"), pem], check=True, capture_output=True, env=env)
    n = subprocess.run(["certutil", "-L", "-d", f"sql:{big}"], capture_output=True,
                       text=True).stdout.count("\n") - 4
    ratios = []
    for r in range(RUNS):
        tc, tu = alternate(r, [[CACMAIL, "nss", "list", "--nssdb", big]],
                           [["certutil", "-L", "-d", f"sql:{big}"]], env)
        ratios.append(tc / tu)
        print(f"list run {r + 1} ({n} certs): cacmail {tc:.3f} s, certutil -L {tu:.3f} s, "
              f"ratio {tc / tu:.3f}")
    lst = statistics.median(ratios)
    print(f"RESULT import 100 PKCS#12: median ratio {imp:.3f} (target <= 1.1)")
    print(f"RESULT import 100 PKCS#12, one cacmail command: median ratio {imp_batch:.3f}")
    print(f"RESULT enumerate+classify {n} certs: median ratio {lst:.3f} (target <= 1.0)")
    subprocess.run(["rm", "-rf", tmp])


if __name__ == "__main__":
    main()
