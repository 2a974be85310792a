# SPDX-License-Identifier: LGPL-2.1-or-later
"""Helpers of the Thunderbird tests (not a test itself: test-thunderbird.py and
test-thunderbird-login.py load it). The real Thunderbird, started headless on a throwaway
profile that Thunderbird made itself, driven through Marionette (its remote protocol, built into
every Thunderbird; chrome-context scripts need -remote-allow-system-access) to ask Thunderbird
itself what it makes of the settings cacmail wrote."""
import json
import os
import signal
import socket
import subprocess
import time

from cryptography import x509
from cryptography.hazmat.primitives import serialization


def tb_env(home):
    """Thunderbird and cacmail confined to @home (never the real $HOME)."""
    return dict(os.environ, HOME=home, XDG_CONFIG_HOME=os.path.join(home, ".config"),
                XDG_DATA_HOME=os.path.join(home, ".local", "share"),
                XDG_CACHE_HOME=os.path.join(home, ".cache"), MOZ_CRASHREPORTER_DISABLE="1",
                MOZ_DISABLE_AUTO_SAFE_MODE="1")


def thunderbird_env(home, extra=None):
    """tb_env for Thunderbird itself: without the test suite's G_DEBUG=fatal-criticals (headless
    Thunderbird logs GTK criticals about icon themes) and MALLOC_PERTURB_."""
    env = tb_env(home)
    for k in ("G_DEBUG", "MALLOC_PERTURB_"):
        env.pop(k, None)
    env.update(extra or {})
    return env


def wait_for(cond, timeout, what):
    end = time.time() + timeout
    while time.time() < end:
        if cond():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def create_profile(home, name="cacmail"):
    """A profile made by Thunderbird (-CreateProfile), run once so that it has its NSS database
    and prefs.js, then closed. Returns its folder."""
    env = thunderbird_env(home)
    prof = os.path.join(home, "profile-" + name)
    subprocess.run(["thunderbird", "--headless", "-CreateProfile", f"{name} {prof}"], env=env,
                   check=True, capture_output=True, timeout=60)
    proc = subprocess.Popen(["thunderbird", "--headless", "--profile", prof], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    files = [os.path.join(prof, f) for f in ("cert9.db", "key4.db", "pkcs11.txt", "prefs.js")]
    wait_for(lambda: all(os.path.exists(f) for f in files), 60, "Thunderbird's first start")
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    return prof


class Marionette:
    """A minimal client of Marionette's protocol: "len:json" frames, [0, id, cmd, params]."""

    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=60)
        self.buf = b""
        self.id = 0
        self._recv()  # the server's hello

    def _recv(self):
        while b":" not in self.buf:
            chunk = self.s.recv(65536)
            if not chunk:
                raise AssertionError("Marionette closed the connection")
            self.buf += chunk
        n, rest = self.buf.split(b":", 1)
        while len(rest) < int(n):
            rest += self.s.recv(65536)
        self.buf = rest[int(n):]
        return json.loads(rest[:int(n)])

    def call(self, cmd, params=None):
        self.id += 1
        data = json.dumps([0, self.id, cmd, params or {}]).encode()
        self.s.sendall(str(len(data)).encode() + b":" + data)
        while True:
            r = self._recv()
            if r[0] == 1 and r[1] == self.id:
                if r[2]:
                    raise AssertionError(f"Marionette {cmd}: {r[2]}")
                return r[3]

    def js(self, script, *args):
        """Run @script in Thunderbird's chrome (privileged) context; returns its value."""
        return self.call("WebDriver:ExecuteScript",
                         {"script": script, "args": list(args)})["value"]


class Thunderbird:
    """Thunderbird running headless on @prof with Marionette on a free port (user.js)."""

    def __init__(self, home, prof, extra_env=None):
        self.prof = prof
        with open(os.path.join(prof, "user.js"), "w") as f:
            f.write('user_pref("marionette.port", 0);\n')
        port_file = os.path.join(prof, "MarionetteActivePort")
        if os.path.exists(port_file):
            os.unlink(port_file)
        self.log = open(os.path.join(home, "thunderbird.log"), "ab")
        self.proc = subprocess.Popen(
            ["thunderbird", "--headless", "--profile", prof, "--marionette",
             "-remote-allow-system-access"], env=thunderbird_env(home, extra_env),
            stdout=self.log, stderr=self.log)
        wait_for(lambda: os.path.exists(port_file) and open(port_file).read().strip(), 90,
                 "Marionette's port")
        self.m = Marionette(int(open(port_file).read()))
        self.m.call("WebDriver:NewSession", {"capabilities": {}})
        self.m.call("Marionette:SetContext", {"value": "chrome"})

    def quit(self):
        """Quit as a person would (prefs.js is written on the way out)."""
        try:
            self.m.call("Marionette:Quit", {"flags": ["eAttemptQuit"]})
        except (AssertionError, OSError):
            pass
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        os.unlink(os.path.join(self.prof, "user.js"))


def der_of(path):
    with open(path, "rb") as f:
        data = f.read()
    return x509.load_pem_x509_certificate(data) if b"BEGIN" in data else \
        x509.load_der_x509_certificate(data)


def dbkey(path):
    """Thunderbird's dbKey of the certificate in @path, computed here independently of cacmail:
    base64 of 8 zero bytes, the serial's and the issuer's lengths (32-bit big-endian), the
    serial's DER content bytes (a leading 00 kept), the DER issuer."""
    import base64
    cert = der_of(path)
    n = cert.serial_number
    serial = n.to_bytes((n.bit_length() + 8) // 8, "big")  # DER: a sign byte when the top bit is set
    issuer = cert.issuer.public_bytes(serialization.Encoding.DER)
    raw = bytes(8) + len(serial).to_bytes(4, "big") + len(issuer).to_bytes(4, "big") + serial + issuer
    return base64.b64encode(raw).decode()


def sha256(path):
    return der_of(path).fingerprint(__import__("cryptography.hazmat.primitives.hashes",
                                               fromlist=["SHA256"]).SHA256()).hex()


def js_string(s):
    """A JS string literal as Thunderbird writes it in prefs.js."""
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") \
        .replace("\r", "\\r") + '"'


def user_pref(name, value):
    if isinstance(value, bool):
        v = "true" if value else "false"
    elif isinstance(value, int):
        v = str(value)
    else:
        v = js_string(value)
    return f"user_pref({js_string(name)}, {v});\n"
