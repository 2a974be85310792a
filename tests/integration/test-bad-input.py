#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Bad input gets one line naming the file and the fix, a non-zero exit code (3), and no
crash (this test also runs in the ASan+UBSan build)."""
import os
import shutil

from cmtest import GSA_CARDS, Tap, run, tmpdir

GOOD = os.path.join(GSA_CARDS, "01_Golden_PIV", "4 - ICAM_PIV_Dig_Sig_SP_800-73-4.crt")
P12 = os.path.join(GSA_CARDS, "01_Golden_PIV", "4 - ICAM_PIV_Dig_Sig_SP_800-73-4.p12")

t = Tap()


def bad(path, what, must_say=None, cmd=("certs",)):
    for c in (cmd, ("pick", "--email", "a@b.mil")):
        p = run(*c, path, check=False)
        lines = [l for l in p.stderr.splitlines() if l]
        t.eq(p.returncode, 3, f"{what}: exit 3 ({c[0]})")
        t.ok(len(lines) == 1 and path in lines[0], f"{what}: one line naming the file ({c[0]})",
             p.stderr)
        if must_say:
            t.ok(must_say in p.stderr, f"{what}: says '{must_say}' ({c[0]})", p.stderr)
        t.eq(p.stdout, "", f"{what}: prints no partial result ({c[0]})")


with tmpdir() as tmp:
    with open(GOOD, "rb") as f:
        pem = f.read()
    import base64
    import re
    body = re.search(rb"-----BEGIN CERTIFICATE-----(.*?)-----END", pem, re.S).group(1)
    der = base64.b64decode(b"".join(body.split()))

    def write(name, data):
        p = os.path.join(tmp, name)
        with open(p, "wb") as f:
            f.write(data)
        return p

    bad(write("empty.crt", b""), "empty file", "is empty")
    bad(write("trunc.der", der[: len(der) // 2]), "truncated DER", "truncated or corrupt")
    bad(write("one.der", der[:1]), "one-byte DER")
    bad(write("garbage.bin", os.urandom(300).replace(b"-", b"x").replace(b"0", b"1")),
        "garbage", None)
    bad(write("text.txt", b"hello, this is not a certificate\n"), "plain text",
        "neither PEM nor DER")
    trunc_pem = pem[: pem.index(b"-----END")]
    bad(write("trunc.pem", trunc_pem), "PEM without END line", "truncated")
    cut = pem.index(b"-----END")
    bad(write("short.pem", pem[: cut - 200] + pem[cut:]), "PEM with a cut body")
    bad(write("badchar.pem", pem.replace(b"M", b"*", 3)), "PEM with a non-base64 char",
        "base64")
    bad(write("key.pem", b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"),
        "PEM private key", "no CERTIFICATE")
    bad(P12, "PKCS#12 passed as a cert", "PKCS#12")
    bad(write("zero.der", b"\x30\x82\xff\xff" + b"\x00" * 50), "DER with a bogus length")
    # A second cert in a PEM bundle is corrupt: the whole file is refused, nothing kept.
    bad(write("bundle.pem", pem + pem.replace(b"MII", b"MIJ", 1)), "bundle with a bad 2nd cert")

    os.mkdir(os.path.join(tmp, "plain-dir"))
    write(os.path.join("plain-dir", "notes.txt"), b"x")
    bad(os.path.join(tmp, "plain-dir"), "a directory that is not a card folder",
        "not a card folder")
    bad(os.path.join(tmp, "missing.crt"), "a missing file", "no such file")

    # Card folder with a corrupt CHUID: the error names the CHUID file.
    card = os.path.join(tmp, "card-bad-chuid")
    shutil.copytree(os.path.join(GSA_CARDS, "01_Golden_PIV"), card)
    chuid = os.path.join(card, "8 - CHUID Object")
    with open(chuid, "rb") as f:
        data = bytearray(f.read())
    data[5] ^= 0x01  # break a FASC-N parity bit
    with open(chuid, "wb") as f:
        f.write(data)
    p = run("certs", card, check=False)
    t.eq(p.returncode, 3, "corrupt CHUID: exit 3")
    t.ok("8 - CHUID Object" in p.stderr and "parity" in p.stderr and p.stderr.count("\n") == 1,
         "corrupt CHUID: one line naming the CHUID file and the parity failure", p.stderr)
    with open(chuid, "wb") as f:
        f.write(data[:40])
    p = run("certs", card, check=False)
    t.ok(p.returncode == 3 and "CHUID" in p.stderr, "truncated CHUID: exit 3 and named",
         p.stderr)

    # Two different certs for one slot in a card folder.
    card2 = os.path.join(tmp, "card-conflict")
    shutil.copytree(os.path.join(GSA_CARDS, "01_Golden_PIV"), card2)
    shutil.copyfile(os.path.join(GSA_CARDS, "01_Golden_PIV", "5 - ICAM_PIV_Key_Mgmt_SP_800-73-4.crt"),
                    os.path.join(card2, "4 - other.crt"))
    p = run("certs", card2, check=False)
    t.ok(p.returncode == 3 and "keep one" in p.stderr, "two certs for one slot: refused",
         p.stderr)
    t.ok("4 - other.crt: differs from" in p.stderr and "4 - ICAM_PIV_Dig_Sig" in p.stderr,
         "the folder is read in name order: the later file is the one refused", p.stderr)

    # A good input beside a bad one: the run fails as a whole.
    p = run("certs", GOOD, os.path.join(tmp, "empty.crt"), check=False)
    t.ok(p.returncode == 3 and p.stdout == "", "good + bad input: exit 3, nothing printed")

    # Usage errors exit 2.
    for args, what in ((["certs"], "no input"), (["pick", GOOD], "pick without --email"),
                       (["certs", "--at", "yesterday", GOOD], "bad --at"),
                       (["frobnicate"], "unknown command"), (["certs", "--bogus", GOOD],
                                                            "unknown option")):
        p = run(*args, check=False)
        t.ok(p.returncode == 2 and p.stderr.count("\n") == 1, f"usage error ({what}): exit 2",
             (p.returncode, p.stderr))
    p = run("certs", "--ca", os.path.join(tmp, "empty.crt"), GOOD, check=False)
    t.ok(p.returncode == 3 and "empty.crt" in p.stderr, "bad --ca file: exit 3, named", p.stderr)

t.done()
