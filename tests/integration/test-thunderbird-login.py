#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""`cacmail thunderbird login`: mail servers on loopback that ask for a client certificate
(optionally, or requiring it), offer EXTERNAL or not, over TLS or STARTTLS (IMAP, SMTP), one
that asks for nothing and one without TLS; the contractor's card in a reader. login remembers
the card's PIV Authentication cert (ClientAuthRememberList.bin, read back here with an
independent decoder) for the hosts that ask, sets authMethod 7 only where the server offers
EXTERNAL, keeps other remembered decisions byte for byte, and undo restores both files. Then
the real Thunderbird connects to an IMAPS server that requires a client certificate: the server
receives the PIV Auth cert with no certificate chooser shown (the test answers the PIN
prompt)."""
import base64
import datetime
import hashlib
import importlib.util
import json
import os
import socket
import ssl
import subprocess
import sys
import threading
import time

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from cmtest import BUILD, CACMAIL, SOURCE, Tap, make_pki, need, schema_errors, tmpdir

HARNESS = os.path.join(SOURCE, "tests", "harness", "with-pcscd")
spec = importlib.util.spec_from_file_location(
    "tbcommon", os.path.join(os.path.dirname(os.path.abspath(__file__)),
                             "test-thunderbird-common.py"))
tb = importlib.util.module_from_spec(spec)
spec.loader.exec_module(tb)

for tool in ("thunderbird", "pcscd"):
    need(tool)

if "--inside" not in sys.argv:
    with tmpdir() as tmp:
        pki, _ = make_pki(tmp)
        p = subprocess.run([HARNESS, "--card", os.path.join(pki, "cards", "contractor"), "--",
                            sys.executable, os.path.abspath(__file__), "--inside", pki, tmp],
                           env=dict(os.environ, CACMAIL_BUILD_ROOT=BUILD), timeout=280)
        sys.exit(p.returncode)

pki, tmp = sys.argv[2], sys.argv[3]
t = Tap()
home = os.path.join(tmp, "home")
os.makedirs(home)
env = tb.tb_env(home)
CTR = "john.q.doe.ctr@mail.mil"
AUTH = os.path.join(pki, "cards", "contractor", "3 - PIV_Auth.crt")


def cm(*args):
    return subprocess.run([CACMAIL, *args], capture_output=True, text=True, env=env, timeout=120)


# ---- TLS servers on loopback (each host its own address: the remembered key has no port) ----

def server_cert():
    """A CA of the mail servers (Thunderbird is told to trust it) and their certificate."""
    import ipaddress
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test Mail Server CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(days=1))
          .not_valid_after(now + datetime.timedelta(days=30))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=20))
            .add_extension(x509.SubjectAlternativeName(
                [x509.DNSName("localhost")]
                + [x509.IPAddress(ipaddress.ip_address(f"127.0.0.{i}")) for i in range(1, 8)]),
                critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = [os.path.join(tmp, n) for n in ("server.crt", "server.key", "server-ca.crt")]
    with open(paths[0], "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(paths[1], "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    with open(paths[2], "wb") as f:
        f.write(ca.public_bytes(serialization.Encoding.PEM))
    return paths


CERT, KEY, SERVER_CA = server_cert()


def context(verify):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(CERT, KEY)
    ctx.verify_mode = verify
    if verify != ssl.CERT_NONE:
        for ca in ("root.crt", "id-ca.crt"):
            ctx.load_verify_locations(os.path.join(pki, "ca", ca))
    return ctx


class Server:
    """One mail server: @proto imap or smtp, @tls "implicit" or "starttls", @verify for the
    client certificate, @caps after TLS. Records the client certificates it received."""

    def __init__(self, host, proto, tls, verify, caps):
        self.proto, self.tls, self.caps = proto, tls, caps
        self.ctx = context(verify)
        self.client_certs = []
        self.sock = socket.socket()
        self.sock.bind((host, 0))
        self.sock.listen(8)
        self.host, self.port = host, self.sock.getsockname()[1]
        threading.Thread(target=self.loop, daemon=True).start()

    def loop(self):
        while True:
            conn, _ = self.sock.accept()
            threading.Thread(target=self.serve, args=(conn,), daemon=True).start()

    def wrap(self, conn):
        s = self.ctx.wrap_socket(conn, server_side=True)
        der = s.getpeercert(binary_form=True)
        if der:
            self.client_certs.append(der)
        return s

    def serve(self, conn):
        try:
            conn.settimeout(30)
            if self.tls == "implicit":
                conn = self.wrap(conn)
            (self.imap if self.proto == "imap" else self.smtp)(conn)
        except (OSError, ssl.SSLError):
            pass
        finally:
            conn.close()

    def lines(self, conn):
        buf = b""
        while True:
            while b"\n" not in buf:
                data = conn.recv(4096)
                if not data:
                    return
                buf += data
            line, buf = buf.split(b"\n", 1)
            yield line.rstrip(b"\r").decode()

    def imap(self, conn):
        tls = self.tls == "implicit"
        conn.sendall(f"* OK [CAPABILITY IMAP4rev1 {self.caps if tls else 'STARTTLS'}] hi\r\n"
                     .encode())
        it = self.lines(conn)
        for line in it:
            tag, _, cmd = line.partition(" ")
            cmd = cmd.upper()
            if cmd == "STARTTLS" and not tls:
                conn.sendall(f"{tag} OK go\r\n".encode())
                conn = self.wrap(conn)
                tls = True
                it = self.lines(conn)
                # a new generator on the TLS socket
                for line2 in it:
                    if not self.imap_cmd(conn, line2):
                        return
                return
            if not self.imap_cmd(conn, line):
                return

    def imap_cmd(self, conn, line):
        tag, _, cmd = line.partition(" ")
        word = cmd.split(" ")[0].upper()
        if word == "CAPABILITY":
            conn.sendall(f"* CAPABILITY IMAP4rev1 {self.caps}\r\n{tag} OK\r\n".encode())
        elif word == "AUTHENTICATE":
            if len(cmd.split(" ")) < 3:
                conn.sendall(b"+ \r\n")
                next(self.lines(conn), None)
            conn.sendall(f"{tag} OK logged in by certificate\r\n".encode())
        elif word == "LOGOUT":
            conn.sendall(f"* BYE\r\n{tag} OK\r\n".encode())
            return False
        else:
            conn.sendall(f"{tag} OK\r\n".encode())
        return True

    def smtp(self, conn):
        tls = self.tls == "implicit"
        conn.sendall(b"220 mail ESMTP\r\n")
        it = self.lines(conn)
        for line in it:
            word = line.split(" ")[0].upper()
            if word == "EHLO":
                extra = self.caps if tls else "STARTTLS"
                conn.sendall(f"250-mail\r\n250 {extra}\r\n".encode())
            elif word == "STARTTLS" and not tls:
                conn.sendall(b"220 go\r\n")
                conn = self.wrap(conn)
                tls = True
                it = self.lines(conn)
                return self.smtp_tls(conn, it)
            elif word == "QUIT":
                conn.sendall(b"221 bye\r\n")
                return
            else:
                conn.sendall(b"250 ok\r\n")

    def smtp_tls(self, conn, it):
        for line in it:
            word = line.split(" ")[0].upper()
            if word == "EHLO":
                conn.sendall(f"250-mail\r\n250 {self.caps}\r\n".encode())
            elif word == "QUIT":
                conn.sendall(b"221 bye\r\n")
                return
            else:
                conn.sendall(b"250 ok\r\n")


imap_opt = Server("127.0.0.1", "imap", "implicit", ssl.CERT_OPTIONAL, "AUTH=EXTERNAL AUTH=PLAIN")
smtp_opt = Server("127.0.0.2", "smtp", "starttls", ssl.CERT_OPTIONAL, "AUTH EXTERNAL PLAIN")
imap_none = Server("127.0.0.3", "imap", "starttls", ssl.CERT_NONE, "AUTH=PLAIN")
imap_req = Server("127.0.0.4", "imap", "implicit", ssl.CERT_REQUIRED, "AUTH=EXTERNAL")
smtp_plain_auth = Server("127.0.0.5", "smtp", "implicit", ssl.CERT_OPTIONAL, "AUTH PLAIN LOGIN")

# ---- a profile made by Thunderbird, its card module, four accounts ----
prof = tb.create_profile(home)
p = cm("nss", "register", "--client", "thunderbird")
t.eq(p.returncode, 0, "the card module is registered in the profile")
p = cm("nss", "trust", "--client", "thunderbird", SERVER_CA)
t.eq(p.returncode, 0, "Thunderbird trusts the mail servers' CA")
prefs = {
    "mail.accountmanager.accounts": "account1,account2,account3,account4",
    "mail.smtpservers": "smtp1,smtp2",
}
servers = {
    "account1": ("server1", "imap", imap_opt, 3, "id1", "smtp1"),
    "account2": ("server2", "imap", imap_none, 2, "id2", "smtp2"),
    "account3": ("server3", "imap", imap_req, 3, "id3", None),
    "account4": ("server4", "pop3", None, 0, "id4", None),
}
for acc, (srv, kind, s, sock, ident, smtp) in servers.items():
    prefs[f"mail.account.{acc}.server"] = srv
    prefs[f"mail.account.{acc}.identities"] = ident
    prefs[f"mail.identity.{ident}.useremail"] = CTR
    prefs[f"mail.identity.{ident}.fullName"] = "John Doe"
    if smtp:
        prefs[f"mail.identity.{ident}.smtpServer"] = smtp
    b = f"mail.server.{srv}"
    prefs.update({f"{b}.type": kind, f"{b}.hostname": s.host if s else "127.0.0.9",
                  f"{b}.port": s.port if s else 110, f"{b}.socketType": sock,
                  f"{b}.userName": "john", f"{b}.authMethod": 3})
for name, s, sock in (("smtp1", smtp_opt, 2), ("smtp2", smtp_plain_auth, 3)):
    prefs.update({f"mail.smtpserver.{name}.hostname": s.host,
                  f"mail.smtpserver.{name}.port": s.port,
                  f"mail.smtpserver.{name}.try_ssl": sock,
                  f"mail.smtpserver.{name}.authMethod": 3})
prefs_js = os.path.join(prof, "prefs.js")
with open(prefs_js, "a") as f:
    f.write("".join(tb.user_pref(k, v) for k, v in prefs.items()))
with open(prefs_js, "rb") as f:
    before = f.read()

# A decision Thunderbird remembered before, for another server, in a slot of its own.
SLOT = 2 + 2 + 2 + 256 + 1024


def encode_slot(key, value, score=3, day=20000):
    body = score.to_bytes(2, "big") + day.to_bytes(2, "big") + key.encode().ljust(256, b"\0") \
        + value.encode().ljust(1024, b"\0")
    x = 0
    for i in range(0, len(body), 2):
        x ^= int.from_bytes(body[i:i + 2], "big")
    return x.to_bytes(2, "big") + body


def decode_bin(data):
    out = {}
    assert len(data) % SLOT == 0, len(data)
    for off in range(0, len(data), SLOT):
        s = data[off:off + SLOT]
        x = 0
        for i in range(0, SLOT, 2):
            x ^= int.from_bytes(s[i:i + 2], "big")
        score, day = int.from_bytes(s[2:4], "big"), int.from_bytes(s[4:6], "big")
        if x == 0 and score and day:
            out[s[6:262].rstrip(b"\0").decode()] = (s[262:].rstrip(b"\0").decode(), score, day)
    return out


other = encode_slot("mail.example.org,,", "AAAAAAAAAAAAAAABAAAAAwEwAQ==")
binfile = os.path.join(prof, "ClientAuthRememberList.bin")
with open(binfile, "wb") as f:
    f.write(other)

# ---- login ----
p = cm("thunderbird", "login", "--json")
t.eq(p.returncode, 0, "login runs", )
doc = json.loads(p.stdout) if p.returncode == 0 else {"servers": []}
t.eq(schema_errors(doc), [], "login --json follows docs/cacmail.schema.json")
got = {s["prefs"]: s for s in doc["servers"]}
key = tb.dbkey(AUTH)
auth_sha = tb.sha256(AUTH)


def row(b):
    s = got.get(b, {})
    return (s.get("asks_cert"), s.get("requires_cert"), s.get("offers_external"),
            s.get("remembered"), s.get("tls_certificate_auth"))


t.eq(row("mail.server.server1"), (True, False, True, True, True),
     "IMAPS asking for a certificate, offering EXTERNAL: remembered, TLS certificate login")
t.eq(row("mail.smtpserver.smtp1"), (True, False, True, True, True),
     "SMTP with STARTTLS asking for a certificate, AUTH EXTERNAL: the same")
t.eq(row("mail.server.server2"), (False, False, False, False, False),
     "IMAP with STARTTLS asking for no certificate: nothing changes")
t.eq(row("mail.server.server3"), (True, True, False, True, False),
     "IMAPS requiring a certificate: remembered, login method left (not visible without one)")
t.eq(row("mail.smtpserver.smtp2"), (True, False, False, True, False),
     "SMTPS asking for a certificate but offering only passwords: remembered, method left")
t.ok(got.get("mail.server.server4", {}).get("error")
     and "without TLS" in got["mail.server.server4"]["error"],
     "a server without TLS is not probed, and login says why", got.get("mail.server.server4"))
t.eq({s["cert"] for s in doc["servers"] if s["remembered"]}, {auth_sha},
     "the certificate remembered is the card's PIV Authentication certificate")
with open(binfile, "rb") as f:
    data = f.read()
dec = decode_bin(data)
t.eq({k: v[0] for k, v in dec.items()},
     {"mail.example.org,,": "AAAAAAAAAAAAAAABAAAAAwEwAQ==", "127.0.0.1,,": key,
      "127.0.0.2,,": key, "127.0.0.4,,": key, "127.0.0.5,,": key},
     "ClientAuthRememberList.bin: key 'host,,' -> the PIV Auth cert's dbKey, checksums valid")
t.ok(data.startswith(other), "the decision remembered before keeps its slot byte for byte")
t.ok(all(v[1] >= 1 and v[2] == int(time.time() // 86400) for k, v in dec.items()
         if k.startswith("127.")), "new slots have a score and today's day")
with open(prefs_js, "rb") as f:
    text = f.read().decode()
t.ok(tb.user_pref("mail.server.server1.authMethod", 7) in text
     and tb.user_pref("mail.smtpserver.smtp1.authMethod", 7) in text
     and tb.user_pref("mail.server.server3.authMethod", 3) in text
     and tb.user_pref("mail.smtpserver.smtp2.authMethod", 3) in text,
     "authMethod 7 only where the server offers EXTERNAL")
p = cm("thunderbird", "login")
t.ok(p.returncode == 0 and "Changed 0 servers" in p.stdout, "a second login changes nothing",
     p.stdout + p.stderr)

# ---- undo ----
p = cm("thunderbird", "undo")
with open(prefs_js, "rb") as f, open(binfile, "rb") as g:
    t.ok(p.returncode == 0 and f.read() == before and g.read() == other,
         "undo restores prefs.js and ClientAuthRememberList.bin byte for byte",
         p.stdout + p.stderr)
p = cm("thunderbird", "login", "--identity", "id3")
t.ok(p.returncode == 0 and "Changed 1 server" in p.stdout and "127.0.0.4" in p.stdout
     and "127.0.0.1" not in p.stdout, "login --identity id3 handles that identity's servers only",
     p.stdout)
cm("thunderbird", "undo")

# ---- the real Thunderbird logs in with the card, no certificate chooser ----
p = cm("thunderbird", "login")
t.eq(p.returncode, 0, "login again, for Thunderbird")
# One more account that asks for a certificate, which login did not see: Thunderbird has no
# remembered decision for it, so it shows its certificate chooser there.
chooser = Server("127.0.0.6", "imap", "implicit", ssl.CERT_OPTIONAL, "AUTH=EXTERNAL")
with open(prefs_js) as f:
    text = f.read().replace('"account1,account2,account3,account4"',
                            '"account1,account2,account3,account4,account5"')
extra = {"mail.account.account5.server": "server5", "mail.account.account5.identities": "id5",
         "mail.identity.id5.useremail": CTR, "mail.server.server5.type": "imap",
         "mail.server.server5.hostname": chooser.host, "mail.server.server5.port": chooser.port,
         "mail.server.server5.socketType": 3, "mail.server.server5.authMethod": 7,
         "mail.server.server5.userName": "john"}
with open(prefs_js, "w") as f:
    f.write(text + "".join(tb.user_pref(k, v) for k, v in extra.items()))

# Watch every dialog and window; answer the PIN prompt with the card's PIN; cancel a
# certificate chooser (recording it); then log in to @server as Thunderbird's account set-up
# does (verifyLogon).
LOGON = """
const { MailServices } = ChromeUtils.importESModule("resource:///modules/MailServices.sys.mjs");
const W = Services.wm.getMostRecentWindow("mail:3pane");
W.cmLog = [];
W.cmDone = null;
if (!W.cmObserver) {
  W.cmObserver = { observe(subject, topic) {
    try {
      if (topic == "common-dialog-loaded") {
        const doc = subject.document;
        const pw = doc.getElementById("password1Textbox");
        W.cmLog.push({ kind: "prompt", text: doc.getElementById("infoBody").textContent,
                       password: !!pw && !pw.hidden });
        if (pw) {
          pw.value = W.cmPin;
          doc.getElementById("commonDialog").acceptDialog();
        }
      } else {
        subject.addEventListener("load", () => {
          const url = subject.document.documentURI;
          W.cmLog.push({ kind: "window", url });
          if (/clientauthask/i.test(url))
            subject.close();
        }, { once: true });
      }
    } catch (e) { W.cmLog.push({ kind: "error", text: String(e) }); }
  } };
  Services.obs.addObserver(W.cmObserver, "common-dialog-loaded");
  Services.obs.addObserver(W.cmObserver, "domwindowopened");
}
W.cmPin = arguments[1];
MailServices.accounts.getIncomingServer(arguments[0]).verifyLogon(
  { OnStartRunningUrl() {}, OnStopRunningUrl(url, rc) { W.cmDone = rc; } }, null);
"""
STATE = """const W = Services.wm.getMostRecentWindow("mail:3pane");
return { log: W.cmLog, done: W.cmDone };"""
tbird = tb.Thunderbird(home, prof)
try:
    tbird.m.js(LOGON, "server1", "123456")
    tb.wait_for(lambda: tbird.m.js(STATE)["done"] is not None, 60, "the IMAP login")
    st = tbird.m.js(STATE)
    t.eq([hashlib.sha256(c).hexdigest() for c in imap_opt.client_certs], [auth_sha],
         "the IMAPS server received the card's PIV Authentication certificate from Thunderbird")
    t.ok([(e["kind"], e.get("password")) for e in st["log"]] == [("prompt", True)],
         "the only dialog was the PIN prompt (answered by the test): no certificate chooser",
         st["log"])
    t.ok("security device" in st["log"][0]["text"] if st["log"] else False,
         "... Thunderbird's prompt for the card's PIN", st["log"])
    t.eq(st["done"], 0, "Thunderbird logged in (AUTHENTICATE EXTERNAL with the certificate)")
    tbird.m.js(LOGON, "server5", "123456")
    tb.wait_for(lambda: any(e["kind"] == "window" for e in tbird.m.js(STATE)["log"]), 60,
                "a window for the server without a remembered decision")
    st = tbird.m.js(STATE)
    t.ok(any(e["kind"] == "window" and "clientauthask" in e["url"].lower() for e in st["log"]),
         "a server without a remembered decision gets Thunderbird's certificate chooser "
         "(what login spares the user)", st["log"])
finally:
    tbird.quit()
cm("thunderbird", "undo")

t.done()
