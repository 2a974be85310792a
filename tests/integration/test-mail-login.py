#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Mail login with the Kerberos ticket against a real Dovecot with GSSAPI and the MIT KDC
(tests/harness/with-slapd --kerberos, tests/harness/with-imap-gssapi); the ticket comes from
kinit with the user's password on stdin. `cacmail thunderbird login --method kerberos` sets the
account's authMethod to 5 (GSSAPI) only where the IMAP server offers GSSAPI, and a real
AUTHENTICATE GSSAPI with that account's settings (curl) logs in as the user (and fails without
a ticket); a server without GSSAPI is refused with one line and nothing changed; auto mode picks
Kerberos by what the server offers; undo gives prefs.js back byte for byte; a running
Thunderbird is refused. `cacmail evolution login` switches the Evolution account's
authentication method to GSSAPI through a private source registry (tests/harness/with-eds), read
back from the registry's own file, and Camel (evolution-data-server's mail library) logs in to
Dovecot with those settings; an account on a server without GSSAPI is refused with one line and
its source is left byte for byte."""
import json
import os
import shutil
import subprocess
import sys
import tempfile

from cmtest import BUILD, CACMAIL, SOURCE, Tap, schema_errors, skip

H = os.path.join(SOURCE, "tests", "harness")
E = os.environ

if "--inside" not in sys.argv and "--evolution" not in sys.argv:
    for tool in ("kinit", "kdestroy", "curl", "certutil"):
        if shutil.which(tool) is None:
            skip(f"{tool} is not installed (scripts/test installs it)")
    for f in ("/usr/sbin/dovecot", "/usr/lib/dovecot/modules/auth/libmech_gssapi.so",
              "/usr/sbin/krb5kdc"):
        if not os.path.exists(f):
            skip(f"{f} is not installed (scripts/install-deps test installs it)")
    p = subprocess.run([os.path.join(H, "with-slapd"), "--kerberos", "--",
                        os.path.join(H, "with-imap-gssapi"), "--",
                        sys.executable, os.path.abspath(__file__), "--inside"],
                       env=dict(E, CACMAIL_BUILD_ROOT=BUILD), timeout=120)
    sys.exit(p.returncode)

# Camel (Evolution's mail library, through GObject introspection) logs in to the account's
# server with the settings the registry has for it (argv: source UID, a folder for Camel)
CAMEL_LOGIN = r'''
import sys, gi
gi.require_version("Camel", "1.2")
gi.require_version("EDataServer", "1.2")
from gi.repository import Camel, EDataServer
uid, d = sys.argv[1], sys.argv[2]
class S(Camel.Session):
    def do_trust_prompt(self, service, cert, errors):
        return Camel.CertTrust.TEMPORARY
    def do_authenticate_sync(self, service, mechanism, cancellable):
        return service.authenticate_sync(mechanism, cancellable) == Camel.AuthenticationResult.ACCEPTED
Camel.provider_init()
db = Camel.CertDB.new()
db.set_filename(d + "/camel-cert.db")
Camel.CertDB.set_default(db)
src = EDataServer.SourceRegistry.new_sync(None).ref_source(uid)
auth = src.get_extension(EDataServer.SOURCE_EXTENSION_AUTHENTICATION)
sec = src.get_extension(EDataServer.SOURCE_EXTENSION_SECURITY).get_method()
s = S(user_data_dir=d, user_cache_dir=d, online=True)
store = s.add_service(uid, "imapx", Camel.ProviderType.STORE)
st = store.ref_settings()
st.set_property("host", auth.get_host()); st.set_property("port", auth.get_port())
st.set_property("user", auth.get_user()); st.set_property("auth-mechanism", auth.get_method())
st.set_property("security-method", {"starttls-on-standard-port": Camel.NetworkSecurityMethod.STARTTLS_ON_STANDARD_PORT, "ssl-on-alternate-port": Camel.NetworkSecurityMethod.SSL_ON_ALTERNATE_PORT}.get(sec, Camel.NetworkSecurityMethod.NONE))
store.set_online_sync(True, None)
store.connect_sync(None)
print("mechanism", auth.get_method(), "connected", store.get_connection_status() == Camel.ServiceConnectionStatus.CONNECTED)
'''
USER = "contractor"
ADDR = "john.q.doe.ctr@mail.mil"
HOST = E.get("CACMAIL_IMAP_HOST")
GSS_PORT = int(E.get("CACMAIL_IMAP_PORT", "0"))
PLAIN_PORT = int(E.get("CACMAIL_IMAP_NOGSSAPI_PORT", "0"))


def imap_login(host, port, ccache, starttls=True):
    """AUTHENTICATE GSSAPI with curl (its own GSSAPI client) and the ticket in @ccache."""
    args = ["curl", "-s", "--max-time", "20", "--cacert", E["CACMAIL_IMAP_CA"],
            "--login-options", "AUTH=GSSAPI", "-u", ":", f"imap://{host}:{port}/",
            "-X", "EXAMINE INBOX"]
    if starttls:
        args.insert(1, "--ssl-reqd")
    return subprocess.run(args, capture_output=True, text=True, env=dict(E, KRB5CCNAME=ccache))


def gss_logins():
    with open(E["CACMAIL_IMAP_LOG"]) as f:
        return [line for line in f if f"Login: user=<{USER}>, method=GSSAPI" in line]


# ---------------------------------------------------------------------------- Evolution part
if "--evolution" in sys.argv:
    t = Tap()
    ccache = sys.argv[sys.argv.index("--evolution") + 1]
    home = E["CACMAIL_EDS_HOME"]
    src_dir = os.path.join(home, ".config", "evolution", "sources")

    # ASan builds: EDS's leaks are suppressed (tests/lsan-eds.supp); no summary of them on
    # stderr, where the one-line error is checked
    lsan = ":".join(o for o in (E.get("LSAN_OPTIONS"), "print_suppressions=0") if o)

    def evo(*args):
        return subprocess.run([CACMAIL, "evolution", *args], capture_output=True, text=True,
                              env=dict(E, KRB5CCNAME=ccache, LSAN_OPTIONS=lsan), timeout=60)

    def source(uid):
        with open(os.path.join(src_dir, uid + ".source"), "rb") as f:
            return f.read()

    plain_before = source("acct-plain")
    p = evo("--identity", "id-plain", "login")
    t.eq(p.returncode, 5, "evolution login: an account whose server offers no GSSAPI: refused")
    t.ok(len(p.stderr.strip().splitlines()) == 1 and "GSSAPI" in p.stderr
         and f":{PLAIN_PORT}" in p.stderr, "... with one line naming the server and GSSAPI",
         p.stderr)
    t.eq(source("acct-plain"), plain_before, "... and its source is left byte for byte")

    p = evo("--identity", "id-gss", "login", "--json")
    t.eq(p.returncode, 0, "evolution login on the GSSAPI server succeeds")
    doc = json.loads(p.stdout or "{}")
    servers = doc.get("servers", [])
    t.ok(len(servers) == 1 and servers[0].get("offers_gssapi") is True
         and servers[0].get("kerberos_auth") is True and servers[0].get("method") == "GSSAPI"
         and servers[0].get("port") == GSS_PORT, "... the JSON says GSSAPI is offered and set",
         servers)
    t.eq(schema_errors(doc), [], "evolution login --json follows docs/cacmail.schema.json")
    text = source("acct-gss").decode()
    t.ok("\nMethod=GSSAPI\n" in text.split("[Authentication]")[1].split("[")[0],
         "the registry wrote Method=GSSAPI into the account's [Authentication]", text)
    p = evo("--identity", "id-gss", "login")
    t.ok(p.returncode == 0 and "Changed 0 servers" in p.stdout,
         "a second login changes nothing (already GSSAPI)", p.stdout + p.stderr)

    logins = len(gss_logins())
    with tempfile.TemporaryDirectory(prefix="camel-") as cdir:
        p = subprocess.run(["/usr/bin/python3", "-c", CAMEL_LOGIN, "acct-gss", cdir],
                           capture_output=True, text=True, timeout=60,
                           env=dict(E, KRB5CCNAME=ccache))
    t.ok(p.returncode == 0 and "mechanism GSSAPI connected True" in p.stdout
         and len(gss_logins()) == logins + 1,
         "Camel logs in to Dovecot with the account's settings from the registry "
         "(auth-mechanism GSSAPI; Dovecot: method=GSSAPI)", p.stdout + p.stderr)

    sys.exit(t.done())

# ---------------------------------------------------------------------------- Thunderbird part
t = Tap()
tmp = tempfile.mkdtemp(prefix="mail-login-")
users = {u["uid"]: u for u in json.load(open(E["CACMAIL_LDAP_USERS"]))}
CC = "FILE:" + os.path.join(tmp, "ccache")
CC_NONE = "FILE:" + os.path.join(tmp, "ccache-empty")
with open(users[USER]["krb5_password_file"]) as pw:
    p = subprocess.run(["kinit", users[USER]["principal"]], stdin=pw, capture_output=True,
                       text=True, env=dict(E, KRB5CCNAME=CC))
t.eq(p.returncode, 0, "kinit with the password from a file on stdin gives a ticket")

home = os.path.join(tmp, "home")
prof = os.path.join(home, "profile")
os.makedirs(prof)
env = dict(E, HOME=home, XDG_CONFIG_HOME=os.path.join(home, ".config"),
           XDG_DATA_HOME=os.path.join(home, ".local", "share"), KRB5CCNAME=CC)
subprocess.run(["certutil", "-N", "-d", "sql:" + prof, "--empty-password"], check=True,
               capture_output=True)
prefs = {
    "mail.accountmanager.accounts": "account1,account2,account3",
    "mail.account.account1.server": "server1",
    "mail.account.account1.identities": "id1",
    "mail.account.account2.server": "server2",
    "mail.account.account2.identities": "id2",
    "mail.identity.id1.useremail": ADDR,
    "mail.identity.id2.useremail": ADDR,
    "mail.account.account3.server": "server3",
    "mail.account.account3.identities": "id3",
    "mail.identity.id3.useremail": ADDR,
}
# server3: the GSSAPI server, but the account connects without TLS
for srv, port, sock in (("server1", GSS_PORT, 2), ("server2", PLAIN_PORT, 2),
                        ("server3", GSS_PORT, 0)):
    prefs.update({f"mail.server.{srv}.type": "imap", f"mail.server.{srv}.hostname": HOST,
                  f"mail.server.{srv}.port": port, f"mail.server.{srv}.socketType": sock,
                  f"mail.server.{srv}.userName": USER, f"mail.server.{srv}.authMethod": 3})
prefs_js = os.path.join(prof, "prefs.js")
with open(prefs_js, "w") as f:
    f.write("// Mozilla User Preferences\n\n")
    for k, v in sorted(prefs.items()):
        f.write(f'user_pref("{k}", {json.dumps(v)});\n')
with open(prefs_js, "rb") as f:
    before = f.read()


def tb(*args):
    return subprocess.run([CACMAIL, "thunderbird", "--profile", prof, *args],
                          capture_output=True, text=True, env=env, timeout=60)


def prefs_now():
    out = {}
    with open(prefs_js) as f:
        for line in f:
            if line.startswith("user_pref("):
                k, v = line[len("user_pref("):].rstrip().rstrip(");").split(", ", 1)
                out[json.loads(k)] = json.loads(v)
    return out


def backups():
    d = os.path.join(home, ".local", "share", "cacmail", "thunderbird-backups")
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


# without a ticket curl's GSSAPI login fails: what follows proves the ticket is what logs in
t.ok(imap_login(HOST, GSS_PORT, CC_NONE).returncode != 0 and not gss_logins(),
     "without a ticket AUTHENTICATE GSSAPI fails")

p = tb("--identity", "id2", "--method", "kerberos", "login")
t.eq(p.returncode, 5, "thunderbird login --method kerberos on a server without GSSAPI: refused")
t.ok(len(p.stderr.strip().splitlines()) == 1 and "GSSAPI" in p.stderr
     and f":{PLAIN_PORT}" in p.stderr, "... with one line naming the server and the fix", p.stderr)
t.ok(open(prefs_js, "rb").read() == before and backups() == [],
     "... prefs.js is byte for byte as before and no backup was made")
p = tb("--identity", "id3", "--method", "kerberos", "login")
t.ok(p.returncode == 5 and len(p.stderr.strip().splitlines()) == 1
     and "without TLS" in p.stderr and open(prefs_js, "rb").read() == before,
     "--method kerberos on an account without TLS: refused with one line, nothing written",
     p.stderr)
p = tb("--identity", "id2", "login")
t.ok(p.returncode == 0 and "Changed 0 servers" in p.stdout and "nothing to do" in p.stdout
     and open(prefs_js, "rb").read() == before,
     "auto mode on that server: nothing to do, nothing changed", p.stdout + p.stderr)

p = tb("--identity", "id1", "--method", "kerberos", "login", "--json")
t.eq(p.returncode, 0, "thunderbird login --method kerberos on the GSSAPI server succeeds")
doc = json.loads(p.stdout or "{}")
servers = doc.get("servers", [])
t.eq(schema_errors(doc), [], "thunderbird login --json follows docs/cacmail.schema.json")
t.ok(len(servers) == 1 and servers[0].get("offers_gssapi") is True
     and servers[0].get("kerberos_auth") is True and servers[0].get("asks_cert") is False,
     "... the probe found AUTH=GSSAPI (after STARTTLS) and login sets Kerberos", servers)
now = prefs_now()
t.ok(now.get("mail.server.server1.authMethod") == 5
     and now.get("mail.server.server2.authMethod") == 3,
     "authMethod 5 (nsMsgAuthMethod GSSAPI) for that server only", now)
p = imap_login(now["mail.server.server1.hostname"], now["mail.server.server1.port"], CC,
               starttls=now["mail.server.server1.socketType"] == 2)
t.ok(p.returncode == 0 and "UIDVALIDITY" in p.stdout and len(gss_logins()) == 1,
     "AUTHENTICATE GSSAPI with that account's host, port and STARTTLS logs in as the user "
     "(Dovecot: method=GSSAPI)", p.stdout + p.stderr)

p = tb("undo")
t.ok(p.returncode == 0 and open(prefs_js, "rb").read() == before,
     "thunderbird undo gives prefs.js back byte for byte", p.stdout + p.stderr)
p = tb("--identity", "id1", "login")
t.ok(p.returncode == 0 and prefs_now().get("mail.server.server1.authMethod") == 5
     and "Kerberos" in p.stdout, "auto mode picks Kerberos for a server that offers GSSAPI and "
     "asks for no certificate", p.stdout + p.stderr)
tb("undo")

os.symlink(f"127.0.0.1:+{os.getpid()}", os.path.join(prof, "lock"))
p = tb("--identity", "id1", "--method", "kerberos", "login")
t.ok(p.returncode == 5 and open(prefs_js, "rb").read() == before,
     "refused while Thunderbird runs on the profile, nothing written", p.stderr)
os.unlink(os.path.join(prof, "lock"))

# ---- Evolution: sources for a private registry, then the part above under with-eds ----
ehome = os.path.join(tmp, "evo-home")
sdir = os.path.join(ehome, ".config", "evolution", "sources")
os.makedirs(sdir)
for ident, acct, port in (("id-gss", "acct-gss", GSS_PORT), ("id-plain", "acct-plain",
                                                               PLAIN_PORT)):
    with open(os.path.join(sdir, ident + ".source"), "w") as f:
        f.write(f"[Data Source]\nDisplayName={ADDR}\nEnabled=true\nParent=\n\n"
                f"[Mail Identity]\nAddress={ADDR}\nName=John Doe\n")
    with open(os.path.join(sdir, acct + ".source"), "w") as f:
        f.write(f"[Data Source]\nDisplayName={acct}\nEnabled=true\nParent=\n\n"
                f"[Mail Account]\nBackendName=imapx\nIdentityUid={ident}\n\n"
                f"[Authentication]\nHost={HOST}\nMethod=PLAIN\nPort={port}\nUser={USER}\n\n"
                f"[Security]\nMethod=starttls-on-standard-port\n")
p = subprocess.run([os.path.join(H, "with-eds"), "--home", ehome, "--", sys.executable,
                    os.path.abspath(__file__), "--evolution", CC], capture_output=True,
                   text=True, timeout=90)
for line in p.stdout.splitlines():
    if line.startswith(("ok ", "not ok ")):
        t.ok(line.startswith("ok "), line.split(" - ", 1)[-1], p.stdout[-2000:] + p.stderr[-2000:])
    elif line.startswith("#"):
        print(line)
t.ok(p.returncode == 0, "the Evolution part ran whole", p.stderr[-2000:])
shutil.rmtree(tmp, ignore_errors=True)
t.done()
