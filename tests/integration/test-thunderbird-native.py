#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""cacmail-native, the native messaging host of the Thunderbird add-on, driven as Thunderbird
drives it (a 4-byte native-order length + UTF-8 JSON on stdin/stdout), with our virtual card
behind a private pcscd and a throwaway slapd:

- framing: answers in order, a request split in single bytes, two in one write, a message of
  exactly 1 MiB; an oversized one is refused and skipped (the next one is answered); bad JSON,
  bad UTF-8, deep nesting, a non-object, no command, an unknown command and missing members are
  answered with one-line errors, never a crash; a frame cut short ends the host with a line on
  stderr; stdout carries nothing but frames;
- republish in the host (libcacmail-ldap): the LDAP password and the PIN are asked through the
  port, progress comes in step order, the entry gets the card's certs; a wrong PIN and a
  cancelled question write nothing;
- a host killed (SIGKILL) while it waits for the PIN writes nothing and the next host works; a
  host whose Thunderbird goes away (stdin closed) mid-request stops by itself, nothing written;
- import-p12 into the profile's database: the key lands, again adds nothing, a wrong password
  is a bad-input error;
- check, fix, fixed, undo: the fix's pref changes name the card's certificates by their dbKey
  (computed here from the DER, as Thunderbird does); once set, check says ok; the recorded
  changes are undone."""
import base64
import importlib.util
import json
import os
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("ldaplib", os.path.join(HERE, "test-ldap-lib.py"))
L = importlib.util.module_from_spec(spec)
spec.loader.exec_module(L)
from cmtest import BUILD, Tap, skip  # noqa: E402

NATIVE = os.path.join(BUILD, "plugins", "thunderbird", "native", "cacmail-native")
ADDON_ID = "cacmail@cacmail.invalid"
MIB = 1024 * 1024
CTR = L.CTR


class Host:
    """One cacmail-native process, started as Thunderbird starts it."""

    def __init__(self, env):
        self.p = subprocess.Popen([NATIVE, "/usr/lib/mozilla/native-messaging-hosts/"
                                   "cacmail_native.json", ADDON_ID],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, env=env)
        self.err = b""
        self.buf = b""
        self._t = threading.Thread(target=self._read_err, daemon=True)
        self._t.start()

    def _read_err(self):
        for chunk in iter(lambda: self.p.stderr.read1(4096), b""):
            self.err += chunk

    def raw(self, data):
        self.p.stdin.write(data)
        self.p.stdin.flush()

    def send(self, obj):
        data = json.dumps(obj).encode()
        self.raw(struct.pack("=I", len(data)) + data)

    def _read(self, n, timeout):
        end = time.monotonic() + timeout
        fd = self.p.stdout.fileno()
        while len(self.buf) < n:
            left = end - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise AssertionError(f"no answer in {timeout} s; stderr: {self.err!r}")
            chunk = os.read(fd, 65536)
            if not chunk:
                raise AssertionError(f"the host closed stdout; stderr: {self.err!r}")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def recv(self, timeout=30):
        (n,) = struct.unpack("=I", self._read(4, timeout))
        return json.loads(self._read(n, timeout).decode())

    def final(self, rid, timeout=60, on_ask=None):
        """Messages until the final answer to @rid: (answer, [progress...], [asks...])."""
        progress, asks = [], []
        while True:
            m = self.recv(timeout)
            if m.get("id") == rid and "progress" in m:
                progress.append(m["progress"])
            elif m.get("id") == rid and "ask" in m:
                asks.append(m["ask"])
                if on_ask:
                    on_ask(m["ask"])
            elif "ok" in m and m.get("id") == rid:
                return m, progress, asks

    def close(self, timeout=10):
        try:
            self.p.stdin.close()
        except BrokenPipeError:
            pass
        try:
            rc = self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            rc = None
        self._t.join(2)
        return rc


def err_of(m):
    return (m.get("error") or {}).get("code"), (m.get("error") or {}).get("message", "")


def one_line_with_fix(msg):
    return "\n" not in msg and ":" in msg and len(msg) > 20


def framing(t, env):
    h = Host(env)
    h.send({"id": 1, "command": "hello"})
    m = h.recv()
    t.ok(m.get("id") == 1 and m.get("ok") and m["result"]["name"] == "cacmail-native"
         and "republish" in m["result"]["commands"], "hello answers with the host's commands", m)

    # one request fed a byte at a time, then two requests in one write: answered in order
    data = json.dumps({"id": 2, "command": "hello"}).encode()
    for b in struct.pack("=I", len(data)) + data:
        h.raw(bytes([b]))
    two = b"".join(struct.pack("=I", len(d)) + d for d in
                   (json.dumps({"id": i, "command": "hello"}).encode() for i in (3, 4)))
    h.raw(two)
    ids = [h.recv()["id"] for _ in range(3)]
    t.eq(ids, [2, 3, 4], "a request split into single bytes and two in one write: answered in order")

    # exactly 1 MiB is taken; one byte more is refused and skipped, the next request answered
    body = json.dumps({"id": 5, "command": "hello", "pad": ""}).encode()
    exact = body[:-2] + b" " * (MIB - len(body)) + body[-2:]
    h.raw(struct.pack("=I", len(exact)) + exact)
    m = h.recv()
    t.ok(m.get("id") == 5 and m.get("ok"), "a message of exactly 1 MiB is answered", m)
    h.raw(struct.pack("=I", MIB + 1) + b"x" * (MIB + 1))
    m = h.recv()
    code, msg = err_of(m)
    t.ok(code == "too-large" and m["ok"] is False and "1 MiB" in msg and one_line_with_fix(msg),
         "1 MiB + 1 byte: a one-line too-large error", m)
    h.send({"id": 6, "command": "hello"})
    t.eq(h.recv().get("id"), 6, "after the oversized message the next request is answered")

    cases = [
        (b"{not json", "bad-json", "malformed JSON"),
        (b'{"id": 7, "command": "hello\xff"}', "bad-json", "invalid UTF-8"),
        (b"[" * 100000 + b"]" * 100000, "bad-json", "100,000 nested arrays"),
        (b"", "bad-json", "an empty message"),
        (b"[1, 2]", "bad-request", "a JSON array"),
        (b'{"id": 8}', "bad-request", "an object without command"),
        (b'{"id": 9, "command": 42}', "bad-request", "a command that is not a string"),
    ]
    for payload, want, what in cases:
        h.raw(struct.pack("=I", len(payload)) + payload)
        m = h.recv()
        code, msg = err_of(m)
        t.ok(m.get("ok") is False and code == want and one_line_with_fix(msg),
             f"{what}: error {want} in one line with the fix", m)
    h.send({"id": "x-10", "command": "frobnicate"})
    m = h.recv()
    code, msg = err_of(m)
    t.ok(m.get("id") == "x-10" and code == "unknown-command" and "frobnicate" in msg
         and one_line_with_fix(msg), "an unknown command: its id echoed, unknown-command", m)
    for cmd in ("check", "fix", "republish", "import-p12"):
        h.send({"id": 11, "command": cmd})
        m = h.recv()
        code, msg = err_of(m)
        t.ok(code == "bad-request" and "profile" in msg,
             f"{cmd} without a profile: bad-request naming the member", m)
    h.send({"id": 12, "command": "import-p12", "profile": "/nonexistent", "file": "/x.p12"})
    code, msg = err_of(h.recv())
    t.ok(code == "bad-request" and "password" in msg, "import-p12 without a password: named", msg)
    h.send({"id": 13, "command": "answer", "job": 99, "secret": "123456"})
    code, _ = err_of(h.recv())
    t.eq(code, "no-question", "an answer when no question waits: no-question")
    h.send({"id": 14, "command": "cancel", "job": 99})
    m = h.recv()
    t.ok(m.get("ok") and m["result"]["cancelled"] is False, "cancelling no task: cancelled false", m)
    h.send({"id": 15, "command": "hello"})
    t.eq(h.recv().get("id"), 15, "still answering after every bad message")
    t.eq(h.close(), 0, "stdin closed while idle: the host exits 0")
    t.ok(h.buf == b"" and b"Sanitizer" not in h.err, "nothing but frames on stdout, no sanitizer "
         "report", h.err[-2000:])

    # a frame cut short: the host stops (exit 1, one stderr line) instead of waiting forever
    for what, data in (("a length of 2 bytes", b"\x10\x00"),
                       ("a payload cut short", struct.pack("=I", 100) + b'{"id": 1')):
        h = Host(env)
        h.raw(data)
        rc = h.close(timeout=5)
        t.ok(rc == 1 and b"cut short" in h.err, f"{what} then end of stream: exit 1 with a line",
             f"rc {rc}, stderr {h.err!r}")


# ---- the card, LDAP and the profile --------------------------------------------------------


def dbkey(der_cert):
    """Thunderbird's dbKey of a DER certificate (facts 6): 8 zero bytes, serial length, issuer
    length (uint32 BE), the serial's DER content bytes, the DER issuer."""
    def tlv(buf, i):
        tag, n = buf[i], buf[i + 1]
        i += 2
        if n & 0x80:
            k = n & 0x7F
            n = int.from_bytes(buf[i:i + k], "big")
            i += k
        return tag, i, n  # tag, start of content, length

    _, i, _ = tlv(der_cert, 0)          # Certificate
    _, i, _ = tlv(der_cert, i)          # TBSCertificate content
    tag, c, n = tlv(der_cert, i)
    if tag == 0xA0:                     # [0] version
        i = c + n
        tag, c, n = tlv(der_cert, i)
    serial = der_cert[c:c + n]
    i = c + n
    _, c, n = tlv(der_cert, i)          # signature AlgorithmIdentifier
    i = c + n
    _, c, n = tlv(der_cert, i)          # issuer Name
    issuer = der_cert[i:c + n]
    key = b"\0" * 8 + struct.pack(">II", len(serial), len(issuer)) + serial + issuer
    return base64.b64encode(key).decode()


def write_prefs(profile):
    with open(os.path.join(profile, "prefs.js"), "w") as f:
        f.write('// Mozilla User Preferences\n'
                'user_pref("mail.accountmanager.accounts", "account1");\n'
                'user_pref("mail.account.account1.identities", "id1");\n'
                'user_pref("mail.account.account1.server", "server1");\n'
                'user_pref("mail.identity.id1.fullName", "John Doe");\n'
                f'user_pref("mail.identity.id1.useremail", "{CTR}");\n'
                'user_pref("mail.identity.id1.valid", true);\n')


def republish(h, rid, profile, answers, on_ask=None):
    """Send republish; answer each question from @answers {kind: secret or None (cancel)}."""
    def answer(ask):
        if on_ask:
            on_ask(ask)
        secret = answers.get(ask["kind"])
        if secret is None:
            h.send({"id": rid * 100 + len(asked), "command": "answer", "job": rid, "cancel": True})
        else:
            h.send({"id": rid * 100 + len(asked), "command": "answer", "job": rid,
                    "secret": secret})
        asked.append(ask)
    asked = []
    h.send({"id": rid, "command": "republish", "profile": profile, "email": CTR})
    return h.final(rid, on_ask=answer)


def inside(pki):
    t = Tap()
    tmp = tempfile.mkdtemp(prefix="tb-native-")
    env = dict(os.environ, HOME=tmp, XDG_CONFIG_HOME=os.path.join(tmp, "config"),
               XDG_DATA_HOME=os.path.join(tmp, "data"), LSAN_OPTIONS=L.LSAN)
    env.pop("CACMAIL_STATE_DIR", None)
    framing(t, env)

    users = L.users()
    dn = users["contractor"]["dn"]
    with open(users["contractor"]["password_file"]) as f:
        password = f.read().strip()
    profile = L.make_nssdb(tmp, pki, name="profile")
    write_prefs(profile)
    os.makedirs(os.path.join(tmp, "config", "cacmail"))
    with open(os.path.join(tmp, "config", "cacmail", "cacmail.conf"), "w") as f:
        f.write(f"[ldap]\nuri={os.environ['CACMAIL_LDAP_URI']}\n"
                f"base={os.environ['CACMAIL_LDAP_BASE']}\n"
                f"ca-file={os.environ['CACMAIL_LDAP_CA']}\n")
    enc = L.card_cert(pki, "contractor", "5 - Key_Mgmt.crt")
    sign = L.card_cert(pki, "contractor", "4 - Dig_Sig.crt")
    old = [L.der(os.path.join(pki, "previous", "contractor-signing-old.crt"))]
    L.set_entry(dn, old, None)
    mods = L.mod_count()

    # ---- a wrong PIN, then a cancelled question: nothing written
    h = Host(env)
    m, _, asks = republish(h, 1, profile, {"password": password, "pin": "999999"})
    code, msg = err_of(m)
    t.ok(code == "pin" and one_line_with_fix(msg) and [a["kind"] for a in asks] == ["password",
         "pin"], "a wrong PIN: error pin (one line) after asking the password, then the PIN", m)
    m, _, _ = republish(h, 2, profile, {"password": password, "pin": None})
    t.eq(err_of(m)[0], "cancelled", "the PIN question cancelled: the task ends cancelled")
    t.ok(L.read_entry(dn)["certs"] == old and L.mod_count() == mods,
         "after the wrong PIN and the cancel the entry is untouched (no modify)")

    # ---- killed while waiting for the PIN: nothing written, the next host works
    h2 = Host(env)
    got_pin_question = threading.Event()

    def kill_at_pin(ask):
        if ask["kind"] == "pin":
            got_pin_question.set()
            h2.p.send_signal(signal.SIGKILL)
    try:
        republish(h2, 3, profile, {"password": password, "pin": L.PIN}, on_ask=kill_at_pin)
        killed_msg = "answered"
    except (AssertionError, BrokenPipeError) as e:
        killed_msg = str(e)
    h2.p.wait(10)
    t.ok(got_pin_question.is_set() and h2.p.returncode == -signal.SIGKILL
         and L.read_entry(dn)["certs"] == old and L.mod_count() == mods,
         "host SIGKILLed while it waits for the PIN: entry untouched", killed_msg)

    # ---- Thunderbird gone (stdin closed) while the PIN is asked: the host stops by itself
    h3 = Host(env)
    h3.send({"id": 4, "command": "republish", "profile": profile, "email": CTR})
    kinds = []
    while True:
        m = h3.recv()
        if "ask" in m:
            kinds.append(m["ask"]["kind"])
            if m["ask"]["kind"] == "pin":
                break
            h3.send({"id": 40, "command": "answer", "job": 4, "secret": password})
    t0 = time.monotonic()
    rc = h3.close(timeout=10)
    t.ok(rc == 0 and time.monotonic() - t0 < 5 and L.mod_count() == mods,
         "stdin closed while the PIN is asked: the host exits 0 at once, nothing written",
         f"rc {rc} after {time.monotonic() - t0:.1f} s; stderr {h3.err!r}")

    # ---- the real republish through the same first host
    m, progress, asks = republish(h, 5, profile, {"password": password, "pin": L.PIN})
    e = L.read_entry(dn)
    t.ok(m.get("ok") and e["certs"] == [enc, sign] and len(e["smime"]) == 1,
         "republish in the host: the entry holds the card's encryption then signing cert", m)
    t.ok([a["kind"] for a in asks] == ["password", "pin"] and asks[0]["subject"] == dn
         and "PIN of the card" in asks[1]["prompt"],
         "it asked the LDAP password for the entry's DN, then the card's PIN", asks)
    steps = [(p["index"], p["done"]) for p in progress]
    t.ok(steps == sorted(steps) and {i for i, _ in steps} == {1, 2, 3, 4, 5}
         and all(p["count"] == 5 for p in progress),
         "progress: the five steps, each started and done, in order", steps)
    t.ok(m.get("ok") and any("now holds" in s for s in m["result"]["summary"])
         and m["result"]["written"] is True, "the answer has the summary and the JSON result", m)
    v = L.openssl_verify(pki, e["smime"][0], tmp)
    t.eq(v.returncode, 0, "the published userSMIMECertificate verifies (openssl cms)")

    # ---- import-p12 into the profile, while a host that republished holds NSS open
    esc = os.path.join(pki, "escrow", "contractor-encryption-old-aes.p12")
    h.send({"id": 6, "command": "import-p12", "profile": profile, "file": esc,
            "password": "wrong"})
    code, msg = err_of(h.final(6)[0])
    t.ok(code == "bad-input" and one_line_with_fix(msg), "import with a wrong password: "
         "bad-input, one line", msg)
    h.send({"id": 7, "command": "import-p12", "profile": profile, "file": esc,
            "password": "escrow-pass"})
    m = h.final(7)[0]
    listed = subprocess.run(["certutil", "-L", "-d", f"sql:{profile}"], capture_output=True,
                            text=True).stdout
    t.ok(m.get("ok") and m["result"]["added"] == 1 and len(m["result"]["keys"]) == 1
         and m["result"]["keys"][0]["nickname"] in listed,
         "import-p12: one recovered key added, in the profile's database", m)
    h.send({"id": 8, "command": "import-p12", "profile": profile, "file": esc,
            "password": "escrow-pass"})
    m = h.final(8)[0]
    t.ok(m.get("ok") and m["result"]["added"] == 0, "importing it again adds nothing", m)

    # ---- check, fix, fixed, undo: the pref changes point id1 at the card's certs by dbKey
    h.send({"id": 9, "command": "check", "profile": profile})
    m = h.final(9)[0]
    idents = (m.get("result") or {}).get("identities") or [{}]
    t.ok(m.get("ok") and m["result"]["profile"] == profile and idents[0].get("id") == "id1"
         and idents[0].get("state") == "stale" and idents[0].get("reasons"),
         "check: id1 without certificates is stale, with reasons", m)
    h.send({"id": 10, "command": "fix", "profile": profile})
    m = h.final(10)[0]
    changes = (m.get("result") or {}).get("prefs", [])
    prefs = {p["name"]: p["value"] for p in changes}
    want = {"mail.identity.id1.signing_cert_dbkey": dbkey(sign),
            "mail.identity.id1.encryption_cert_dbkey": dbkey(enc)}
    t.ok(m.get("ok") and all(prefs.get(k) == v for k, v in want.items())
         and prefs.get("mail.identity.id1.signing_cert_name")
         and prefs.get("mail.identity.id1.encryption_cert_name") and len(prefs) == 4
         and all(p["previous"] is None for p in changes),
         "fix: id1's 4 certificate prefs, dbKeys as Thunderbird computes them (were unset)", m)
    t.ok(m.get("ok") and m["result"]["identities"][0]["changed"] is True
         and m["result"]["identities"][0]["signing"]["dbkey"] == dbkey(sign),
         "fix: the identity summary says what it will use", m)
    # the add-on sends the values Thunderbird holds ("live"): prefs.js lags behind them
    h.send({"id": 101, "command": "check", "profile": profile, "live": prefs})
    m = h.final(101)[0]
    t.ok(m.get("ok") and m["result"]["identities"][0]["state"] == "ok",
         "check with the live prefs while prefs.js is not yet written: id1 is ok", m)
    h.send({"id": 102, "command": "fix", "profile": profile, "live": prefs})
    m = h.final(102)[0]
    t.ok(m.get("ok") and m["result"]["prefs"] == []
         and m["result"]["identities"][0]["changed"] is False,
         "fix with the live prefs already right: nothing to set", m)
    for rid, live, why in ((103, {"browser.startup.homepage": "x"}, "a pref that is not one of "
                            "an identity's certificate prefs"),
                           (104, {"mail.identity.id1.signing_cert_name": 5}, "a value that is "
                            "not a string"),
                           (105, ["mail.identity.id1.signing_cert_name"], "a list")):
        h.send({"id": rid, "command": "check", "profile": profile, "live": live})
        code, msg = err_of(h.final(rid)[0])
        t.ok(code == "bad-request" and "live" in msg and one_line_with_fix(msg),
             f"check refuses \"live\" with {why} (bad-request, one line with its fix)", msg)
    # what the add-on does next: Thunderbird's pref service writes prefs.js (emulated here),
    # then it reports the changes
    with open(os.path.join(profile, "prefs.js"), "a") as f:
        for name, value in prefs.items():
            f.write(f'user_pref("{name}", {json.dumps(value)});\n')
    h.send({"id": 11, "command": "check", "profile": profile})
    m = h.final(11)[0]
    t.ok(m.get("ok") and m["result"]["identities"][0]["state"] == "ok",
         "check after the prefs are set: id1 is ok", m)
    h.send({"id": 106, "command": "check", "profile": profile, "live": {}})
    m = h.final(106)[0]
    t.ok(m.get("ok") and m["result"]["identities"][0]["state"] == "stale",
         "check with live prefs that no longer have them (cleared, prefs.js not yet written): "
         "id1 is stale again", m)
    h.send({"id": 12, "command": "fixed", "profile": profile, "changes": changes})
    m = h.final(12)[0]
    t.ok(m.get("ok") and m["result"]["recorded"] == 4, "fixed: the 4 changes recorded", m)
    h.send({"id": 13, "command": "undo", "profile": profile})
    m = h.final(13)[0]
    undo = {p["name"]: p["value"] for p in (m.get("result") or {}).get("prefs", [])}
    t.ok(m.get("ok") and set(undo) == set(prefs) and all(v is None for v in undo.values()),
         "undo: clears the 4 prefs again (they were unset)", m)
    h.send({"id": 14, "command": "undo", "profile": profile})
    code, msg = err_of(h.final(14)[0])
    t.ok(code == "not-found" and "undo" in msg and "\n" not in msg,
         "a second undo: not-found, nothing left to undo (one line)", msg)
    h.send({"id": 15, "command": "fixed", "profile": profile,
            "changes": [{"name": "browser.startup.homepage", "value": "x", "previous": None}]})
    t.eq(err_of(h.final(15)[0])[0], "bad-request", "fixed refuses a pref that is not an "
         "identity's")

    t.eq(h.close(), 0, "the host exits 0 when stdin closes")
    t.ok(b"Sanitizer" not in h.err and b"CRITICAL" not in h.err,
         "no sanitizer report or GLib critical from the host", h.err[-3000:])
    shutil.rmtree(tmp, ignore_errors=True)
    t.done()


if __name__ == "__main__":
    if not os.path.exists(NATIVE):
        skip("cacmail-native was not built")
    pki = L.reexec(os.path.abspath(__file__), ["contractor"])
    inside(pki)
