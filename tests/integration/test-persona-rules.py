#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Persona rules on certificates shaped like the field's odd ones, made here with
python3-cryptography (facts section 2):
- a 2023-style CAC whose PIV Authentication cert names only the FASC-N (no UPN, no card UUID)
  and whose email certs carry no card UUID: given as loose files, the login still joins its
  persona by the EDIPI of the LAST.FIRST.MIDDLE.EDIPI common name and the exact subject DN;
- an old email cert that names its address only in the subject's emailAddress: it counts;
- two PIV Authentication certs of one card UUID with different persona IDs: never merged,
  reported as persona-id-conflict."""
import datetime as dt
import os
import uuid

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

from cmtest import Tap, run_json, tmpdir

OID_FASCN = ObjectIdentifier("2.16.840.1.101.3.6.6")
OID_UPN = ObjectIdentifier("1.3.6.1.4.1.311.20.2.3")
OID_SMARTCARD_LOGON = ObjectIdentifier("1.3.6.1.4.1.311.20.2.2")
EDIPI = "1234567890"
AT = "2026-06-01"
NB, NA = dt.datetime(2025, 1, 1), dt.datetime(2028, 1, 1)
# a FASC-N that decodes (GSA card 46's: see make-pki's self-test)
FASCN = bytes.fromhex("D13810D828AF2C1084246DA1685828AF0210848D84E739C3EB")


def utf8(text):
    data = text.encode()
    return bytes([0x0C, len(data)]) + data


def octets(data):
    return bytes([0x04, len(data)]) + data


def dn(ou, email=None):
    attrs = [x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
             x509.NameAttribute(NameOID.ORGANIZATION_NAME, "U.S. Government"),
             x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "DoD"),
             x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "PKI"),
             x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ou),
             x509.NameAttribute(NameOID.COMMON_NAME, f"DOE.JOHN.QUINCY.{EDIPI}")]
    if email:
        attrs.append(x509.NameAttribute(NameOID.EMAIL_ADDRESS, email))
    return x509.Name(attrs)


CA_KEY = ec.generate_private_key(ec.SECP256R1())
CA_NAME = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test Persona Rules CA")])


def issue(subject, ku, ekus, names, path):
    key = ec.generate_private_key(ec.SECP256R1())
    b = (x509.CertificateBuilder().subject_name(subject).issuer_name(CA_NAME)
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(NB).not_valid_after(NA)
         .add_extension(x509.KeyUsage(**ku), critical=True))
    if ekus:
        b = b.add_extension(x509.ExtendedKeyUsage(ekus), critical=False)
    if names:
        b = b.add_extension(x509.SubjectAlternativeName(names), critical=False)
    cert = b.sign(CA_KEY, hashes.SHA256())
    with open(path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    return path


def ku(*on):
    flags = dict.fromkeys(("digital_signature", "content_commitment", "key_encipherment",
                           "data_encipherment", "key_agreement", "key_cert_sign", "crl_sign",
                           "encipher_only", "decipher_only"), False)
    flags.update(dict.fromkeys(on, True))
    return flags


LOGIN = [ExtendedKeyUsageOID.CLIENT_AUTH, OID_SMARTCARD_LOGON]

t = Tap()
with tmpdir() as tmp:
    mail = "john.q.doe.civ@us.navy.mil"
    # 2023-style CAC: PIV Auth with the FASC-N only
    auth = issue(dn("USN"), ku("digital_signature"), LOGIN,
                 [x509.OtherName(OID_FASCN, octets(FASCN))], os.path.join(tmp, "auth.pem"))
    sign = issue(dn("USN"), ku("digital_signature", "content_commitment"),
                 [ExtendedKeyUsageOID.EMAIL_PROTECTION],
                 [x509.RFC822Name(mail), x509.OtherName(OID_UPN, utf8(f"{EDIPI}@mil"))],
                 os.path.join(tmp, "sign.pem"))
    enc = issue(dn("USN"), ku("key_agreement"), None, [x509.RFC822Name(mail)],
                os.path.join(tmp, "enc.pem"))
    # another persona card of the same person, other OU and address
    other_mail = "john.q.doe.ctr@mail.mil"
    other_auth = issue(dn("CONTRACTOR"), ku("digital_signature"), LOGIN,
                       [x509.OtherName(OID_FASCN, octets(FASCN[:-1] + b"\xEA"))],
                       os.path.join(tmp, "other-auth.pem"))
    other_sign = issue(dn("CONTRACTOR"), ku("digital_signature", "content_commitment"),
                       [ExtendedKeyUsageOID.EMAIL_PROTECTION],
                       [x509.RFC822Name(other_mail), x509.OtherName(OID_UPN, utf8(f"{EDIPI}@mil"))],
                       os.path.join(tmp, "other-sign.pem"))

    rep = run_json("certs", "--at", AT, auth, sign, enc, other_auth, other_sign)
    by_file = {c["sources"][0]["path"]: c for c in rep["certs"]}
    t.eq(by_file[auth]["role"], "piv-auth", "a PIV Auth cert with only the FASC-N is PIV Auth")
    t.eq(by_file[auth]["edipi"], EDIPI, "its EDIPI comes from the LAST.FIRST.MIDDLE.EDIPI name")
    t.ok(all(s["card"] is None for c in rep["certs"] for s in c["sources"]),
         "loose files sit on no card (source card null)")
    t.eq(len({by_file[f]["persona"] for f in (auth, sign, enc)}), 1,
         "loose login, signing and encryption certs of one name and address: one persona")
    t.ok(by_file[other_auth]["persona"] != by_file[auth]["persona"],
         "the other persona card (other OU) stays another persona")
    got = run_json("pick", "--at", AT, "--email", mail, auth, sign, enc, other_auth, other_sign)
    t.eq((got["login"], got["signing"], got["encryption"]),
         (by_file[auth]["sha256"], by_file[sign]["sha256"], by_file[enc]["sha256"]),
         "pick from loose files: the persona's own login, signing and encryption certs")
    t.eq([p["code"] for p in got["problems"]], [], "no problem (no shared address)")

    # an old cert names its address only in the subject's emailAddress
    old_mail = "john.doe@navy.mil"
    old = issue(dn("USN", old_mail), ku("digital_signature", "content_commitment"),
                [ExtendedKeyUsageOID.EMAIL_PROTECTION], None, os.path.join(tmp, "old.pem"))
    rep = run_json("certs", "--at", AT, old)
    t.eq(rep["certs"][0]["emails"], [old_mail], "the subject's emailAddress counts as an address")
    got = run_json("pick", "--at", AT, "--email", old_mail, old)
    t.eq(got["signing"], rep["certs"][0]["sha256"], "and the cert is picked for that address")

    # two persona IDs on one card UUID: kept apart, reported
    card = uuid.uuid4().urn
    ids = []
    for n, pid in enumerate(("117274", "117275")):
        ids.append(issue(dn("USA"), ku("digital_signature"), LOGIN,
                         [x509.OtherName(OID_UPN, utf8(f"{EDIPI}{pid}@mil")),
                          x509.UniformResourceIdentifier(card)],
                         os.path.join(tmp, f"conflict-{n}.pem")))
    rep = run_json("certs", "--at", AT, *ids)
    t.eq(sorted(c["persona"] for c in rep["certs"]), [f"{EDIPI}117274", f"{EDIPI}117275"],
         "two persona IDs sharing a card UUID stay two personas")
    conflicts = [p for p in rep["problems"] if p["code"] == "persona-id-conflict"]
    t.ok(len(conflicts) == 1 and f"{EDIPI}117274" in conflicts[0]["message"]
         and f"{EDIPI}117275" in conflicts[0]["message"] and conflicts[0]["hint"],
         "persona-id-conflict names both IDs, with a hint", rep["problems"])
t.done()
