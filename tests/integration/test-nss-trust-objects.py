#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""`cacmail nss trust` stores each CA as the certificate object NSS's own import writes (same
attributes in cert9.db as `certutil -A`: CKA_ID from the RSA modulus or EC point, label, issuer,
subject, DER serial, e-mail), in one PKCS#11 object creation per certificate, not the dozen
lookups by issuer and serial NSS's import makes (each a scan of every certificate of that issuer:
a DoD bundle's thousands made the import quadratic). Counted with NSS's PKCS#11 call logger."""
import datetime
import os
import re
import sqlite3
import subprocess

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from cmtest import CACMAIL, Tap, need, tmpdir

for tool in ("certutil",):
    need(tool)

t = Tap()
NOW = datetime.datetime(2025, 1, 1)
CKO_CERTIFICATE = b"\x00\x00\x00\x01"
MANY = 120  # intermediates of one issuer


def ca(cn, key, issuer, issuer_key, email=None):
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if email:
        attrs.append(x509.NameAttribute(NameOID.EMAIL_ADDRESS, email))
    b = (x509.CertificateBuilder().subject_name(x509.Name(attrs)).issuer_name(issuer)
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(NOW).not_valid_after(NOW + datetime.timedelta(days=3650))
         .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True))
    return b.sign(issuer_key, hashes.SHA256())


def newdb(path):
    os.makedirs(path)
    subprocess.run(["certutil", "-N", "--empty-password", "-d", f"sql:{path}"], check=True,
                   capture_output=True)
    return path


def created(log):
    """The classes of the objects C_CreateObject made, in NSS's PKCS#11 call log."""
    out, inside = [], False
    for line in open(log, errors="replace"):
        if line.rstrip().endswith(": C_CreateObject"):
            inside = True
            out.append(None)
        elif inside and "CKA_CLASS = " in line:
            out[-1] = line.split("CKA_CLASS = ", 1)[1].split()[0]
        elif inside and "rv = " in line:
            inside = False
    return out


def cert_rows(db):
    """Every certificate object of @db's cert9.db: DER -> its attribute columns (row id left)."""
    c = sqlite3.connect(f"file:{db}/cert9.db?mode=ro", uri=True)
    cols = [r[1] for r in c.execute("pragma table_info(nssPublic)")]
    rows = {}
    for row in c.execute("select * from nssPublic where a0 = ?", (CKO_CERTIFICATE,)):
        d = {k: v for k, v in zip(cols, row) if k != "id" and v is not None}
        rows[d["a11"]] = d
    c.close()
    return rows


with tmpdir() as tmp:
    root_key = ec.generate_private_key(ec.SECP256R1())
    root_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Objects Root")])
    root = ca("Objects Root", root_key, root_name, root_key)
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP384R1())
    special = [root,
               ca("Objects RSA CA", rsa_key, root_name, root_key, email="pki@example.mil"),
               ca("Objects EC CA", ec_key, root_name, root_key)]
    many = [ca(f"Objects CA {i}", ec_key, root_name, root_key) for i in range(MANY)]
    pem = os.path.join(tmp, "cas.pem")
    with open(pem, "wb") as f:
        for c in special + many:
            f.write(c.public_bytes(serialization.Encoding.PEM))

    mine, theirs = newdb(os.path.join(tmp, "mine")), newdb(os.path.join(tmp, "theirs"))
    log = os.path.join(tmp, "pkcs11.log")
    env = dict(os.environ, HOME=os.path.join(tmp, "home"), XDG_DATA_HOME=os.path.join(tmp, "data"),
               NSS_DEBUG_PKCS11_MODULE="NSS Internal PKCS #11 Module",
               NSPR_LOG_MODULES="nss_mod_log:4", NSPR_LOG_FILE=log)
    env.pop("CACMAIL_STATE_DIR", None)
    # NSS's call logger prints attribute values with NSPR's "%.*s", which runs strlen past
    # them: in the ASan build, that read (in libnspr4, only while logging) is not ours
    supp = os.path.join(tmp, "asan-nspr-log.supp")
    with open(supp, "w") as f:
        f.write("interceptor_via_lib:libnspr4.so\n")
    env["ASAN_OPTIONS"] = ":".join(filter(None, [env.get("ASAN_OPTIONS"),
                                                 f"suppressions={supp}"]))
    p = subprocess.run([CACMAIL, "nss", "trust", "--nssdb", mine, pem], capture_output=True,
                       text=True, env=env, timeout=300)
    t.eq(p.returncode, 0, "nss trust imports a root and 122 CAs of one issuer")
    if p.returncode:
        print("# " + p.stderr.replace("\n", "\n# "))

    # NSS's reference: the same certificates through certutil -A (PK11_ImportCert), same
    # nicknames (the CN), trust as nss trust sets it
    reference = special + many[:3] + [many[MANY // 2]]
    for c in reference:
        cn = c.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
        der = os.path.join(tmp, "one.der")
        with open(der, "wb") as f:
            f.write(c.public_bytes(serialization.Encoding.DER))
        subprocess.run(["certutil", "-A", "-d", f"sql:{theirs}", "-n", cn,
                        "-t", "C,C," if c is root else ",,", "-i", der], check=True,
                       capture_output=True)
    got, want = cert_rows(mine), cert_rows(theirs)
    t.eq(len(got), len(special) + len(many), "every certificate is one object in cert9.db")
    names = {"root (EC P-256)": root, "RSA CA with an e-mail address": special[1],
             "EC P-384 CA": special[2], "one of many of one issuer": many[MANY // 2]}
    for what, c in names.items():
        der = c.public_bytes(serialization.Encoding.DER)
        g, w = got.get(der, {}), want.get(der, {})
        t.ok(g and g == w, f"{what}: the object certutil -A writes, attribute for attribute",
             "\n".join(f"{k}: {g.get(k)!r} != {w.get(k)!r}" for k in sorted(set(g) | set(w))
                       if g.get(k) != w.get(k)))
    t.ok(got.get(special[1].public_bytes(serialization.Encoding.DER), {}).get("ace534352")
         == b"pki@example.mil", "the RSA CA's e-mail address is stored (CKA_NSS_EMAIL)")
    same = sum(1 for der, row in want.items() if got.get(der) == row)
    t.eq(same, len(reference), "all the reference objects equal NSS's own")

    lst = subprocess.run(["certutil", "-L", "-d", f"sql:{mine}"], capture_output=True,
                         text=True).stdout
    t.ok(re.search(r"^Objects Root\s+C,C,\s*$", lst, re.M), "the root is trusted C,C,", lst)
    t.ok(re.search(r"^Objects CA 7\s+,,\s*$", lst, re.M), "an intermediate has no trust", lst)
    v = subprocess.run(["certutil", "-V", "-u", "L", "-n", "Objects CA 7", "-d", f"sql:{mine}"],
                       capture_output=True, text=True)
    t.ok("certificate is valid" in v.stdout, "NSS verifies an intermediate to the root",
         v.stdout + v.stderr)

    n = len(special) + len(many)
    classes = created(log)
    t.eq(classes.count("CKO_CERTIFICATE"), n, "one object creation per certificate")
    t.eq(classes.count("CKO_NSS_TRUST"), 1, "one trust object: the root's")
    # PK11_ImportDERCert makes 17 searches per certificate; left: a fixed few at start and end
    finds = open(log, errors="replace").read().count("C_FindObjectsInit")
    t.ok(finds < n, f"no lookups per certificate: {finds} searches for {n} certificates")

    # again: nothing stored twice
    os.unlink(log)
    p = subprocess.run([CACMAIL, "nss", "trust", "--nssdb", mine, pem], capture_output=True,
                       text=True, env=env, timeout=300)
    t.ok(p.returncode == 0 and "CKO_CERTIFICATE" not in created(log)
         and len(cert_rows(mine)) == n, "a second import stores nothing again", p.stderr)

t.done()
