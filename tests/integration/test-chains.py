#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Chain building (`certs --ca`): signatures are checked for real whichever library checks them
(OpenSSL for RSA PKCS#1 and ECDSA, NSS for the rest, such as RSA-PSS), a tampered signature is
'bad-signature' even when a good chain of the same issuer was verified just before (the per-issuer
cache keys on both certs), and a path through an intermediate is found. Certificates are made here
with python3-cryptography."""
import datetime
import os
import subprocess

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from cmtest import Tap, run_json, tmpdir

NB = datetime.datetime(2025, 1, 1)
AT = "2027-06-01"  # after the openssl-made certs' notBefore (now)


def name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def issue(subject, key, issuer, issuer_key, ca):
    b = (x509.CertificateBuilder().subject_name(name(subject)).issuer_name(name(issuer))
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(NB).not_valid_after(NB + datetime.timedelta(days=3650))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    return b.sign(issuer_key, hashes.SHA256())


def pem_file(tmp, fname, data):
    path = os.path.join(tmp, fname)
    with open(path, "wb") as f:
        f.write(data)
    return path


def issue_pss(tmp, subject, key, root_cert, root_key):
    """An RSA-PSS signed leaf (the openssl CLI: python3-cryptography 38 cannot sign PSS)."""
    k = pem_file(tmp, f"{subject}.key", key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    rk = pem_file(tmp, "root.key", root_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    rc = pem_file(tmp, "root.pem", root_cert.public_bytes(serialization.Encoding.PEM))
    csr = os.path.join(tmp, f"{subject}.csr")
    out = os.path.join(tmp, f"{subject}.pem")
    subprocess.run(["openssl", "req", "-new", "-key", k, "-subj", f"/CN={subject}", "-out", csr],
                   check=True, capture_output=True)
    subprocess.run(["openssl", "x509", "-req", "-in", csr, "-CA", rc, "-CAkey", rk, "-sha256",
                    "-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:32",
                    "-days", "3650", "-set_serial", "7", "-out", out], check=True,
                   capture_output=True)
    with open(out, "rb") as f:
        return x509.load_pem_x509_certificate(f.read())


def write(tmp, fname, cert, tamper=False):
    der = bytearray(cert.public_bytes(serialization.Encoding.DER))
    if tamper:
        der[-5] ^= 1  # inside the signature value
    path = os.path.join(tmp, fname)
    with open(path, "wb") as f:
        f.write(der)
    return path


t = Tap()
with tmpdir() as tmp:
    rk = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ik = ec.generate_private_key(ec.SECP384R1())
    lk = ec.generate_private_key(ec.SECP256R1())
    root_cert = issue("Root", rk, "Root", rk, True)
    root = write(tmp, "root.der", root_cert)
    inter = write(tmp, "inter.der", issue("Inter", ik, "Root", rk, True))
    good = [write(tmp, f"good{i}.der", issue(f"user {i}", lk, "Inter", ik, False)) for i in range(3)]
    bad = write(tmp, "bad.der", issue("user bad", lk, "Inter", ik, False), tamper=True)
    pss = write(tmp, "pss.der", issue_pss(tmp, "pss-user", lk, root_cert, rk))
    pss_bad = write(tmp, "pss-bad.der", issue_pss(tmp, "pss-bad", lk, root_cert, rk),
                    tamper=True)
    rep = run_json("certs", "--at", AT, "--ca", root, "--ca", inter, *good, bad, pss, pss_bad)
    chain = {os.path.basename(c["sources"][0]["path"]): c["chain"] for c in rep["certs"]}
    t.eq([chain[f"good{i}.der"] for i in range(3)], ["ok"] * 3,
         "EC leaves chain through an EC intermediate to an RSA root")
    t.eq(chain["bad.der"], "bad-signature",
         "a tampered ECDSA signature is bad-signature after good certs of the same issuer")
    t.eq(chain["pss.der"], "ok", "an RSA-PSS signature verifies (NSS checks it)")
    t.eq(chain["pss-bad.der"], "bad-signature", "a tampered RSA-PSS signature is bad-signature")
    rep = run_json("certs", "--at", AT, "--ca", root, "--ca", inter, bad, *good)
    t.eq([c["chain"] for c in rep["certs"]], ["bad-signature", "ok", "ok", "ok"],
         "the bad cert first, then good ones of the same issuer: each judged on its own")
t.done()
