"""Hand-made PKCS#12 files for tests: what openssl and python-cryptography refuse to write,
such as a key filed with a certificate that is not its own under one localKeyID. RFC 7292:
PFX { version 3, authSafe ContentInfo(data), MacData (HMAC-SHA1, key from the PKCS#12 KDF) },
one plain SafeContents holding the key bag and the cert bags."""
import hashlib
import hmac
import os

from cryptography.hazmat.primitives import serialization

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


def build(key, certs, password, local_key_id=b"\x01" * 20, shrouded=True, name="Recovered key",
          nested=False):
    """A PFX with @key (a python-cryptography private key) and @certs (DER bytes, the first one
    carrying @local_key_id like the key). @shrouded: pkcs8ShroudedKeyBag (PBES2/AES, as
    BestAvailableEncryption writes it), else a plain keyBag. @nested: the bags inside one
    safeContentsBag (legal, rare; cacmail imports those the older way, through NSS's own
    import into a scratch database)."""
    if shrouded:
        body = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                 serialization.BestAvailableEncryption(password.encode()))
        key_bag = seq(oid(OID_SHROUDED_KEY_BAG), explicit0(body), _attrs(local_key_id, name))
    else:
        body = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption())
        key_bag = seq(oid(OID_KEY_BAG), explicit0(body), _attrs(local_key_id, name))
    bags = [key_bag]
    for n, der in enumerate(certs):
        cert_bag = seq(oid(OID_X509_CERT), explicit0(octets(der)))
        bags.append(seq(oid(OID_CERT_BAG), explicit0(cert_bag),
                        _attrs(local_key_id if n == 0 else None, name if n == 0 else None)))
    if nested:
        bags = [seq(oid(OID_SAFE_CONTENTS_BAG), explicit0(seq(*bags)))]
    safe_contents = seq(*bags)
    auth_safe = seq(seq(oid(OID_DATA), explicit0(octets(safe_contents))))
    salt, iterations = os.urandom(8), 2048
    mac_key = p12_kdf(bmp(password), salt, 3, iterations, 20)
    mac = hmac.new(mac_key, auth_safe, hashlib.sha1).digest()
    mac_data = seq(seq(seq(oid(OID_SHA1), b"\x05\x00"), octets(mac)), octets(salt),
                   integer(iterations))
    return seq(integer(3), seq(oid(OID_DATA), explicit0(octets(auth_safe))), mac_data)
