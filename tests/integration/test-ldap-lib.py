#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Helpers of the test-ldap-*.py tests (imported with importlib; run alone it checks itself).

Each test re-executes itself inside tests/harness/with-pcscd (virtual cards of a generated PKI)
and tests/harness/with-slapd (a throwaway slapd with TLS), then drives the real CLI."""
import base64
import fcntl
import json
import os
import re
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import termios
import threading
import time

from cmtest import CACMAIL, SOURCE, Tap, make_pki, skip

OPENSC = "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so"
WITH_PCSCD = os.path.join(SOURCE, "tests", "harness", "with-pcscd")
WITH_SLAPD = os.path.join(SOURCE, "tests", "harness", "with-slapd")
# libldap leaks a client cert's GnuTLS objects (see the file): for the ASan build
LSAN = ("print_suppressions=0:suppressions="
        + os.path.join(SOURCE, "ldap", "lsan-libldap.supp"))
CTR = "john.q.doe.ctr@mail.mil"
MIL = "john.q.doe.mil@mail.mil"
PIN = "123456"


def need_tools(*extra):
    for tool in ("slapd", "ldapsearch", "ldapmodify", "certutil", "modutil", "pk12util",
                 "openssl", "pcscd", *extra):
        if shutil.which(tool) is None and not os.path.exists(f"/usr/sbin/{tool}"):
            skip(f"{tool} is not installed (scripts/test installs it)")
    if not os.path.exists(OPENSC):
        skip(f"{OPENSC} is missing (Debian: opensc-pkcs11)")


def reexec(script, cards, pki_dirs_wanted=True, slapd_opts=(), vcard_args=()):
    """Outside: make a PKI, then run SCRIPT --inside PKI under with-pcscd (each of VCARD_ARGS,
    e.g. "--pin=...", passed to the virtual cards) and with-slapd (with SLAPD_OPTS, e.g.
    ["--kerberos"])."""
    if len(sys.argv) > 2 and sys.argv[1] == "--inside":
        return sys.argv[2]
    need_tools()
    with tempfile.TemporaryDirectory(prefix="cacmail-ldap-") as tmp:
        pki, _ = make_pki(tmp)
        cmd = [WITH_PCSCD]
        for c in cards:
            cmd += ["--card", os.path.join(pki, "cards", c)]
        for a in vcard_args:
            cmd += ["--vcard-arg", a]
        cmd += ["--", WITH_SLAPD, "--pki", pki, *slapd_opts, "--", sys.executable, script,
                "--inside", pki]
        env = dict(os.environ, TMPDIR=tmp)
        rc = subprocess.run(cmd, env=env).returncode
        if rc == 77:
            skip("with-pcscd or with-slapd cannot run here (needs root, namespaces, slapd)")
        sys.exit(rc)


E = os.environ.get


def users():
    with open(E("CACMAIL_LDAP_USERS")) as f:
        return {u["uid"]: u for u in json.load(f)}


def ldap_env():
    return dict(os.environ, LDAPTLS_CACERT=E("CACMAIL_LDAP_CA"), LDAPTLS_REQCERT="demand")


def parse_ldif(text):
    """{attr: [bytes...]} of the first entry, values in the server's order."""
    lines = []
    for line in text.splitlines():
        if line.startswith(" ") and lines:
            lines[-1] += line[1:]
        elif line and not line.startswith("#"):
            lines.append(line)
    out = {}
    for line in lines:
        m = re.match(r"^([^:]+)(::?) ?(.*)$", line)
        if not m:
            continue
        attr, sep, val = m.groups()
        data = base64.b64decode(val) if sep == "::" else val.encode()
        out.setdefault(attr.lower(), []).append(data)
    return out


def _admin_tool(argv, stdin=None):
    """An OpenLDAP client as the admin. "Can't contact LDAP server" is retried a few
    times: ldap-kill restarts slapd 50 times on a loaded machine and the first connection after
    a restart was once refused; what the tests check is the entry, not slapd's start-up."""
    for attempt in range(4):
        p = subprocess.run(argv, input=stdin, capture_output=True, text=True, env=ldap_env())
        if p.returncode == 0 or "Can't contact LDAP server" not in p.stderr:
            break
        time.sleep(0.5)
    return p


def read_entry(dn):
    p = _admin_tool(["ldapsearch", "-x", "-H", E("CACMAIL_LDAP_URI"), "-ZZ", "-D",
                     E("CACMAIL_LDAP_ADMIN_DN"), "-y", E("CACMAIL_LDAP_ADMIN_PASSWORD_FILE"),
                     "-b", dn, "-s", "base", "-LLL", "-o", "ldif-wrap=no", "(objectClass=*)",
                     "mail", "userCertificate;binary", "userSMIMECertificate", "entryCSN"])
    if p.returncode != 0:
        raise AssertionError(f"ldapsearch {dn}: {p.stderr}")
    e = parse_ldif(p.stdout)
    return {"certs": e.get("usercertificate;binary", []),
            "smime": e.get("usersmimecertificate", []),
            "mail": [m.decode() for m in e.get("mail", [])],
            "csn": e.get("entrycsn", [b""])[0].decode()}


def admin_modify(ldif):
    p = _admin_tool(["ldapmodify", "-x", "-H", E("CACMAIL_LDAP_URI"), "-ZZ", "-D",
                     E("CACMAIL_LDAP_ADMIN_DN"), "-y", E("CACMAIL_LDAP_ADMIN_PASSWORD_FILE")],
                    stdin=ldif)
    if p.returncode != 0:
        raise AssertionError(f"ldapmodify: {p.stderr}\n{ldif}")


def b64(data):
    return base64.b64encode(data).decode()


def set_entry(dn, certs, smime=None):
    """Replace the entry's certificate attributes (as an admin)."""
    ldif = f"dn: {dn}\nchangetype: modify\nreplace: userCertificate;binary\n"
    ldif += "".join(f"userCertificate;binary:: {b64(c)}\n" for c in certs)
    ldif += "-\nreplace: userSMIMECertificate\n"
    if smime is not None:
        ldif += f"userSMIMECertificate:: {b64(smime)}\n"
    ldif += "-\n"
    admin_modify(ldif)


def mod_count():
    """MOD operations slapd has logged so far."""
    with open(E("CACMAIL_SLAPD_LOG"), errors="replace") as f:
        return sum(1 for line in f if " MOD dn=" in line)


def der(path):
    with open(path, "rb") as f:
        data = f.read()
    m = re.search(rb"-----BEGIN CERTIFICATE-----(.*?)-----END", data, re.S)
    return base64.b64decode(b"".join(m.group(1).split())) if m else data


def card_cert(pki, card, name):
    return der(os.path.join(pki, "cards", card, name))


def make_nssdb(tmp, pki, name="nssdb", trust_root=True, opensc=True, p12s=()):
    """An NSS database as the NSS helper will prepare it: CAs, the OpenSC module, keys."""
    d = os.path.join(tmp, name)
    os.makedirs(d)

    def run(*cmd):
        p = subprocess.run(cmd, capture_output=True, text=True, input="")
        if p.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)}: {p.stdout}{p.stderr}")

    run("certutil", "-N", "-d", f"sql:{d}", "--empty-password")
    run("certutil", "-A", "-d", f"sql:{d}", "-n", "Test DoD Root CA 3",
        "-t", "C,C,C" if trust_root else ",,", "-i", os.path.join(pki, "ca", "root.crt"))
    for ca in ("email-ca", "email-ca-64", "id-ca"):
        run("certutil", "-A", "-d", f"sql:{d}", "-n", ca, "-t", ",,", "-i",
            os.path.join(pki, "ca", ca + ".crt"))
    if opensc:
        run("modutil", "-dbdir", f"sql:{d}", "-add", "OpenSC", "-libfile", OPENSC, "-force")
    for p12 in p12s:
        run("pk12util", "-i", p12, "-d", f"sql:{d}", "-W", "")
    return d


class Ctx:
    """Paths and the base command line of one test run (inside the harnesses)."""

    def __init__(self, pki, tmp):
        self.pki = pki
        self.tmp = tmp
        self.users = users()
        self.nssdb = make_nssdb(tmp, pki)
        self.pin_file = write_secret(os.path.join(tmp, "pin"), PIN + "\n")

    def dn(self, uid):
        return self.users[uid]["dn"]

    def args(self, uid="contractor", email=CTR, pin_file=None, nssdb=None):
        """PIN_FILE False: no --pin-file (cacmail asks on its terminal)."""
        return ["republish", "--uri", E("CACMAIL_LDAP_URI"), "--base", E("CACMAIL_LDAP_BASE"),
                "--ca-file", E("CACMAIL_LDAP_CA"), "--email", email,
                "--password-file", self.users[uid]["password_file"],
                "--nssdb", nssdb or self.nssdb] + (
                    [] if pin_file is False else ["--pin-file", pin_file or self.pin_file])

    def run(self, *extra, uid="contractor", email=CTR, pin_file=None, nssdb=None, base=None,
            env_extra=None, **kw):
        args = base if base is not None else self.args(uid, email, pin_file, nssdb)
        env = dict(os.environ, XDG_CONFIG_HOME=os.path.join(self.tmp, "config"),
                   HOME=self.tmp, LSAN_OPTIONS=LSAN, **(env_extra or {}))
        return subprocess.run([CACMAIL, *args, *extra], capture_output=True, text=True,
                              env=env, **kw)


def write_secret(path, text, mode=0o600):
    """A secret file as cacmail accepts it: only its owner may read it."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(path, mode)
    return path


def start_on_tty(args, env=None):
    """Run cacmail ARGS with a new pseudo-terminal as its controlling terminal: it asks for the
    PIN and the password there, as it would a user; stdout and stderr are pipes (text). Returns
    (Popen, the terminal's master fd: the caller closes it)."""
    master, slave = os.openpty()

    def take_tty():
        fcntl.ioctl(slave, termios.TIOCSCTTY, 0)

    try:
        proc = subprocess.Popen([CACMAIL, *args], stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=env, start_new_session=True, preexec_fn=take_tty,
                                pass_fds=(slave,))
    finally:
        os.close(slave)
    return proc, master


def answer_prompt(proc, master, prompt, text, before=None, timeout=60):
    """Wait until PROC shows PROMPT on its terminal (it then waits for the answer: for the PIN,
    the entry was read), run BEFORE(), then type TEXT. Fails instead of hanging when PROC ends
    without asking."""
    seen = b""
    deadline = time.monotonic() + timeout
    while prompt.encode() not in seen:
        ready, _, _ = select.select([master], [], [], 0.02)
        if ready:
            try:
                seen += os.read(master, 4096)
            except OSError:  # the terminal's last user is gone
                ready = None
        if ready is None or proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            out, err = proc.communicate()
            raise AssertionError(f"cacmail did not ask '{prompt}': {seen!r} {out}{err}")
    if before:
        before()
    os.write(master, text.encode())


class Stalled:
    """A TCP listener on 127.0.0.1 that accepts connections and never answers: no TLS handshake,
    no LDAP result (a hung server, or a firewall that lets SYN through)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.held = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                self.held.append(self.sock.accept()[0])
            except OSError:
                return

    def uri(self, scheme="ldaps"):
        return f"{scheme}://127.0.0.1:{self.port}"

    def wait_accepted(self, n, timeout=30):
        deadline = time.monotonic() + timeout
        while len(self.held) < n and time.monotonic() < deadline:
            time.sleep(0.01)
        return len(self.held) >= n


class Relay:
    """A TCP relay on 127.0.0.1 to a server URI's port that records every byte clients send:
    whether StartTLS was asked for, whether a password crossed it in clear text."""

    STARTTLS = b"1.3.6.1.4.1.1466.20037"

    def __init__(self, target_uri):
        self.target = int(target_uri.rsplit(":", 1)[1].strip("/"))
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.sent = bytearray()
        self.lock = threading.Lock()
        self.flowing = threading.Event()
        self.flowing.set()
        threading.Thread(target=self._accept, daemon=True).start()

    def uri(self):
        return f"ldap://127.0.0.1:{self.port}"

    def freeze(self, frozen=True):
        """Hold every byte from now on (a server that hangs mid-session), or pass them again."""
        if frozen:
            self.flowing.clear()
        else:
            self.flowing.set()

    def clear(self):
        with self.lock:
            self.sent.clear()

    def starttls_sent(self):
        with self.lock:
            return self.STARTTLS in self.sent

    def saw(self, data):
        with self.lock:
            return data in self.sent

    def _accept(self):
        while True:
            try:
                client = self.sock.accept()[0]
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.target))
            threading.Thread(target=self._pump, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, False),
                             daemon=True).start()

    def _pump(self, src, dst, record):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                self.flowing.wait()
                if record:
                    with self.lock:
                        self.sent += data
                dst.sendall(data)
        except OSError:
            pass
        for sk in (src, dst):
            try:
                sk.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def without_warnings(p):
    """P with the "cacmail: WARNING: ..." lines taken out of its stderr (for one_line_error)."""
    return subprocess.CompletedProcess(p.args, p.returncode, p.stdout, "".join(
        l for l in p.stderr.splitlines(True) if not l.startswith("cacmail: WARNING: ")))


def one_line_error(t, p, code, must_say, what):
    lines = [l for l in p.stderr.splitlines() if l.strip()]
    t.eq(p.returncode, code, f"{what}: exit {code}")
    t.ok(len(lines) == 1 and lines[0].startswith("cacmail: error: ") and must_say in lines[0],
         f"{what}: one error line saying '{must_say}'", p.stderr)


def openssl_verify(pki, blob, tmp):
    path = os.path.join(tmp, "blob.der")
    cas = os.path.join(tmp, "cas.pem")
    with open(path, "wb") as f:
        f.write(blob)
    with open(cas, "w") as f:
        for ca in ("root", "email-ca"):
            f.write(open(os.path.join(pki, "ca", ca + ".crt")).read())
    return subprocess.run(["openssl", "cms", "-verify", "-inform", "der", "-in", path,
                           "-content", "/dev/null", "-binary", "-CAfile", cas, "-purpose",
                           "smimesign", "-out", "/dev/null"], capture_output=True, text=True)


if __name__ == "__main__":
    t = Tap()
    e = parse_ldif("dn: x\nmail: a@b\nuserCertificate;binary:: AAEC\n AwQ=\n")
    t.eq(e["usercertificate;binary"], [b"\x00\x01\x02\x03\x04"], "parse_ldif folds lines")
    t.done()
