# SPDX-License-Identifier: LGPL-2.1-or-later
"""Hand-made PKCS#12 files for tests: what openssl and python-cryptography refuse to write,
such as a key filed with a certificate that is not its own under one localKeyID. RFC 7292:
PFX { version 3, authSafe ContentInfo(data), MacData (HMAC-SHA1, key from the PKCS#12 KDF) },
one plain SafeContents holding the key bag and the cert bags, or some of them in an
encryptedData ContentInfo (PBES2); iteration counts of any size for the MAC and the PBEs."""
import hashlib
import hmac
import os

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

OID_DATA = "1.2.840.113549.1.7.1"
OID_KEY_BAG = "1.2.840.113549.1.12.10.1.1"
OID_SHROUDED_KEY_BAG = "1.2.840.113549.1.12.10.1.2"
OID_CERT_BAG = "1.2.840.113549.1.12.10.1.3"
OID_SAFE_CONTENTS_BAG = "1.2.840.113549.1.12.10.1.6"
OID_X509_CERT = "1.2.840.113549.1.9.22.1"
OID_LOCAL_KEY_ID = "1.2.840.113549.1.9.21"
OID_FRIENDLY_NAME = "1.2.840.113549.1.9.20"
OID_SHA1 = "1.3.14.3.2.26"


def _len(n):
    if n < 0x80:
        return bytes([n])
    b = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(b)]) + b


def tlv(tag, content):
    return bytes([tag]) + _len(len(content)) + content


def seq(*items):
    return tlv(0x30, b"".join(items))


def set_of(*items):
    return tlv(0x31, b"".join(sorted(items)))


def octets(b):
    return tlv(0x04, b)


def explicit0(b):
    return tlv(0xA0, b)


def integer(n):
    return tlv(0x02, n.to_bytes(max(1, (n.bit_length() + 8) // 8), "big"))


def oid(dotted):
    parts = [int(x) for x in dotted.split(".")]
    out = bytes([40 * parts[0] + parts[1]])
    for p in parts[2:]:
        chunk = [p & 0x7F]
        p >>= 7
        while p:
            chunk.append(0x80 | (p & 0x7F))
            p >>= 7
        out += bytes(reversed(chunk))
    return tlv(0x06, out)


def bmp(s):
    return s.encode("utf-16-be") + b"\0\0"


def p12_kdf(password, salt, ident, iterations, n):
    """RFC 7292 B.2 with SHA-1 (u = 20, v = 64); @password is the BMPString with its NUL."""
    v = 64
    d = bytes([ident]) * v
    def fill(x):
        if not x:
            return b""
        size = v * -(-len(x) // v)
        return (x * (size // len(x) + 1))[:size]

    s, p = fill(salt), fill(password)
    i = bytearray(s + p)
    out = b""
    while len(out) < n:
        a = hashlib.sha1(d + bytes(i)).digest()
        for _ in range(iterations - 1):
            a = hashlib.sha1(a).digest()
        out += a
        b = int.from_bytes((a * (v // len(a) + 1))[:v], "big") + 1
        for j in range(0, len(i), v):
            block = (int.from_bytes(i[j:j + v], "big") + b) % (1 << (8 * v))
            i[j:j + v] = block.to_bytes(v, "big")
    return out[:n]


def _attrs(local_key_id, name):
    attrs = []
    if local_key_id is not None:
        attrs.append(seq(oid(OID_LOCAL_KEY_ID), set_of(octets(local_key_id))))
    if name is not None:
        attrs.append(seq(oid(OID_FRIENDLY_NAME), set_of(tlv(0x1E, name.encode("utf-16-be")))))
    return set_of(*attrs) if attrs else b""


OID_ENCRYPTED_DATA = "1.2.840.113549.1.7.6"
OID_PBES2 = "1.2.840.113549.1.5.13"
OID_PBKDF2 = "1.2.840.113549.1.5.12"
OID_HMAC_SHA256 = "1.2.840.113549.2.9"
OID_AES256_CBC = "2.16.840.1.101.3.4.1.42"
# Above this many iterations the cipher text and the MAC are random bytes, not computed: such a
# file only shows that cacmail refuses the count before deriving any key with it.
REAL_LIMIT = 100000


def pbes2(password, data, iterations):
    """(AlgorithmIdentifier, cipher text) of @data under PBES2 (PBKDF2-HMAC-SHA256 with
    @iterations, AES-256-CBC), as PKCS#12 uses it (the UTF-8 password)."""
    salt, iv = os.urandom(16), os.urandom(16)
    alg = seq(oid(OID_PBES2), seq(
        seq(oid(OID_PBKDF2), seq(octets(salt), integer(iterations),
                                 seq(oid(OID_HMAC_SHA256), b"\x05\x00"))),
        seq(oid(OID_AES256_CBC), octets(iv))))
    pad = 16 - len(data) % 16
    if iterations > REAL_LIMIT:
        return alg, os.urandom(len(data) + pad)
    key = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations, 32)
    enc = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return alg, enc.update(data + bytes([pad]) * pad) + enc.finalize()


def _key_bag(key, password, lkid, name, shrouded, key_iterations):
    if not shrouded:
        body = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption())
        return seq(oid(OID_KEY_BAG), explicit0(body), _attrs(lkid, name))
    if key_iterations is None:
        body = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                 serialization.BestAvailableEncryption(password.encode()))
    else:
        plain = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption())
        alg, ct = pbes2(password, plain, key_iterations)
        body = seq(alg, octets(ct))
    return seq(oid(OID_SHROUDED_KEY_BAG), explicit0(body), _attrs(lkid, name))


def _sealed(bags, password, iterations):
    """An encryptedData ContentInfo holding the SafeContents of @bags."""
    alg, ct = pbes2(password, seq(*bags), iterations)
    return seq(oid(OID_ENCRYPTED_DATA), explicit0(seq(integer(0), seq(oid(OID_DATA), alg,
                                                                      tlv(0x80, ct)))))


def build_many(entries, password, shrouded=True, name="Recovered key", nested=False,
               sealed=None, mac_iterations=2048, key_iterations=None, sealed_iterations=2048):
    """A PFX with each (key, certs, local_key_id) of @entries: the key's bag, then its certs
    (DER; the first carries the local_key_id). @sealed: None (one plain SafeContents), "certs"
    (the cert bags in an encryptedData ContentInfo, as openssl and pk12util write them), "all"
    (key and cert bags encrypted). @key_iterations: the shrouded keys in PBES2 with that count
    (default: python-cryptography's own PBES2). @mac_iterations, @sealed_iterations: those
    counts; any over REAL_LIMIT is written but not computed."""
    key_bags, cert_bags = [], []
    for key, certs, lkid in entries:
        key_bags.append(_key_bag(key, password, lkid, name, shrouded, key_iterations))
        for n, der in enumerate(certs):
            cert_bag = seq(oid(OID_X509_CERT), explicit0(octets(der)))
            cert_bags.append(seq(oid(OID_CERT_BAG), explicit0(cert_bag),
                                 _attrs(lkid if n == 0 else None, name if n == 0 else None)))
    if sealed == "all":
        infos = [_sealed(key_bags + cert_bags, password, sealed_iterations)]
    else:
        plain, hidden = (key_bags, cert_bags) if sealed == "certs" else (key_bags + cert_bags, [])
        if nested:
            plain = [seq(oid(OID_SAFE_CONTENTS_BAG), explicit0(seq(*plain)))]
        infos = [seq(oid(OID_DATA), explicit0(octets(seq(*plain))))]
        if hidden:
            infos.append(_sealed(hidden, password, sealed_iterations))
    auth_safe = seq(*infos)
    salt = os.urandom(8)
    if mac_iterations > REAL_LIMIT:
        mac = os.urandom(20)
    else:
        mac_key = p12_kdf(bmp(password), salt, 3, mac_iterations, 20)
        mac = hmac.new(mac_key, auth_safe, hashlib.sha1).digest()
    mac_data = seq(seq(seq(oid(OID_SHA1), b"\x05\x00"), octets(mac)), octets(salt),
                   integer(mac_iterations))
    return seq(integer(3), seq(oid(OID_DATA), explicit0(octets(auth_safe))), mac_data)


def build(key, certs, password, local_key_id=b"\x01" * 20, shrouded=True, name="Recovered key",
          nested=False, **kw):
    """A PFX with @key (a python-cryptography private key) and @certs (DER bytes, the first one
    carrying @local_key_id like the key). @shrouded: pkcs8ShroudedKeyBag (PBES2/AES, as
    BestAvailableEncryption writes it), else a plain keyBag. @nested: the bags inside one
    safeContentsBag (legal, rare). Other options as build_many()."""
    return build_many([(key, certs, local_key_id)], password, shrouded, name, nested, **kw)
