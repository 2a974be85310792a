#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""File > Log In with Smart Card in the real Evolution (module-cacmail from the build tree,
Xvfb, AT-SPI: tests/gui/evogui.py) against a real Dovecot with GSSAPI and the MIT KDC with
PKINIT (tests/harness/with-slapd --kerberos --pki, tests/harness/with-imap-gssapi) and two
virtual persona cards (tests/harness/with-pcscd: the reservist's in reader 0, the contractor's
in reader 1). Without a ticket the action asks the PIN of the identity's card (the contractor's,
in reader 1) in the module's PIN dialog, with the tries left: cancelled, nothing changes and no
PIN reaches a card; a wrong PIN gives an alert with the tries left, no ticket and no change;
the right PIN makes a ticket with the card (`cacmail login --pin-fd`: klist in the test's
KRB5CCNAME shows the contractor card's principal), the IMAP account is set to GSSAPI through
the registry (read back from the source file), and Evolution itself, going online, logs in to
Dovecot with the ticket (Dovecot logs method=GSSAPI) and asks for no password. With the ticket
there, the action asks no PIN.

Then the real Thunderbird (tests/gui/tbgui.py, in a child process: a session and an AT-SPI
connection of its own) against the same KDC, Dovecot and cards: a profile with one IMAP
account on the GSSAPI port (STARTTLS, password login, login_at_startup as the wizard sets it,
the harness's CA imported with certutil), Thunderbird closed; a ticket made with the
contractor's card (`cacmail login --reader R1 --pin-fd`) in a KRB5CCNAME of its own; `cacmail thunderbird login --method kerberos --profile
DIR` sets the server's authMethod to 5 (read back from prefs.js); Thunderbird, started with that
KRB5CCNAME, then logs in to Dovecot with the card's ticket (a new method=GSSAPI login of the
card's user, and a ticket for imap/localhost in that cache) and shows no password prompt."""

import glob
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "gui"))
from cmtest import BUILD, CACMAIL, SOURCE, Tap, make_pki, skip  # noqa: E402
import evogui  # noqa: E402
import tbgui  # noqa: E402

MODULE = os.path.join(BUILD, "plugins", "evolution", "module", "module-cacmail.so")
H = os.path.join(SOURCE, "tests", "harness")
ACTION = "Log In with Smart Card"
ADDR, USER = "john.q.doe.ctr@mail.mil", "contractor"
PIN, BAD_PIN = "123456", "654321"
R1 = "Virtual PCD 00 01"  # the contractor's card


def outside():
    if not os.path.exists(MODULE):
        skip("module-cacmail.so was not built (needs evolution-dev and libebook1.2-dev)")
    tool = evogui.missing_tool() or tbgui.missing_tool()
    if tool:
        skip(f"{tool} is not installed (scripts/test installs it)")
    for f in ("/usr/sbin/dovecot", "/usr/lib/dovecot/modules/auth/libmech_gssapi.so",
              "/usr/sbin/krb5kdc", "/usr/bin/kinit", "/usr/bin/klist", "/usr/bin/certutil"):
        if not os.path.exists(f):
            skip(f"{f} is not installed (scripts/install-deps test installs it)")
    if not glob.glob("/usr/lib/*/krb5/plugins/preauth/pkinit.so"):
        skip("MIT's PKINIT plugin is not installed (Debian: krb5-pkinit)")
    if os.geteuid() != 0:
        skip("the harnesses need root for their namespaces")
    with tempfile.TemporaryDirectory(prefix="cacmail-mail-login-gui-") as tmp:
        pki, _ = make_pki(tmp)
        cmd = [os.path.join(H, "with-pcscd"), "--card", os.path.join(pki, "cards", "reservist"),
               "--card", os.path.join(pki, "cards", "contractor"), "--",
               os.path.join(H, "with-slapd"), "--kerberos", "--pki", pki, "--",
               os.path.join(H, "with-imap-gssapi"), "--",
               "/usr/bin/python3", os.path.abspath(__file__), "--inside", tmp]
        rc = subprocess.run(cmd, env=dict(os.environ, TMPDIR=tmp)).returncode
        if rc == 77:
            skip("a harness cannot run here (root, namespaces, slapd, KDC, Dovecot)")
        sys.exit(rc)


def gss_logins():
    with open(os.environ["CACMAIL_IMAP_LOG"]) as f:
        return sum(1 for line in f if f"Login: user=<{USER}>, method=GSSAPI" in line)


def make_env(tmp, ccache):
    home = os.path.join(tmp, "home")
    sdir = os.path.join(home, ".config", "evolution", "sources")
    os.makedirs(sdir)
    port = os.environ["CACMAIL_IMAP_PORT"]
    with open(os.path.join(sdir, "cacmail-id.source"), "w") as f:
        f.write(f"[Data Source]\nDisplayName={ADDR}\nEnabled=true\nParent=\n\n"
                f"[Mail Identity]\nAddress={ADDR}\nName=John Doe\n")
    with open(os.path.join(sdir, "cacmail-acct.source"), "w") as f:
        f.write(f"[Data Source]\nDisplayName=Work\nEnabled=true\nParent=\n\n"
                f"[Mail Account]\nBackendName=imapx\nIdentityUid=cacmail-id\n\n"
                f"[Authentication]\nHost={os.environ['CACMAIL_IMAP_HOST']}\nMethod=PLAIN\n"
                f"Port={port}\nUser={USER}\n\n"
                f"[Security]\nMethod=starttls-on-standard-port\n")
    env = dict(os.environ, HOME=home, XDG_CONFIG_HOME=os.path.join(home, ".config"),
               XDG_DATA_HOME=os.path.join(home, ".local", "share"),
               XDG_CACHE_HOME=os.path.join(home, ".cache"),
               XDG_RUNTIME_DIR=os.path.join(tmp, "run"), LANG="C.UTF-8", LC_ALL="C.UTF-8",
               KRB5CCNAME=ccache,
               PATH=os.path.join(BUILD, "cli") + ":" + os.environ["PATH"])
    os.makedirs(env["XDG_RUNTIME_DIR"], mode=0o700)
    modules = os.path.join(tmp, "prefix", "lib", "evolution", "modules")
    os.makedirs(modules)
    shutil.copy2(MODULE, os.path.join(modules, "module-cacmail.so"))
    env["EDS_EXTRA_PREFIXES"] = os.path.join(tmp, "prefix")
    env["LD_LIBRARY_PATH"] = os.path.join(BUILD, "core") + ":" + os.path.join(BUILD, "ldap")
    # in the harness's network namespace only loopback is up: GIO's network monitor would keep
    # Evolution offline
    os.makedirs(os.path.join(home, ".config", "glib-2.0", "settings"))
    with open(os.path.join(home, ".config", "glib-2.0", "settings", "keyfile"), "w") as f:
        f.write("[org/gnome/evolution-data-server]\nnetwork-monitor-gio-name='always-online'\n"
                # offline until the account is switched: no login with its old method first
                "[org/gnome/evolution/shell]\nstart-offline=true\n")
    return home, env


def method(home):
    with open(os.path.join(home, ".config", "evolution", "sources",
                           "cacmail-acct.source")) as f:
        text = f.read()
    return text.split("[Authentication]")[1].split("Method=")[1].split("\n")[0]


def card_log(n):
    return os.path.join(os.environ["CACMAIL_VCARD_LOG_DIR"], f"card{n}.log")


def size(path):
    return os.path.getsize(path) if os.path.exists(path) else 0


def verified(n, offset):
    """PIN VERIFYs with a PIN (key reference 80, 8 bytes) card @n got after @offset."""
    with open(card_log(n), errors="replace") as f:
        f.seek(offset)
        return sum(line.startswith("C 0020008008") for line in f)


def klist_principal(ccache):
    p = subprocess.run(["klist"], capture_output=True, text=True,
                       env=dict(os.environ, KRB5CCNAME=ccache))
    for line in p.stdout.splitlines():
        if line.startswith("Default principal: "):
            return line.split(": ", 1)[1]
    return None


def card_principal():
    """The contractor card's enterprise principal; mapped to the mail user as a site maps card
    logins to accounts (auth_to_local in krb5.conf, which Dovecot reads; the user is not a
    local account, so a missing .k5login must not decide). Dovecot must also take the name's
    '\\' (auth_username_chars): its configuration is reloaded (SIGHUP)."""
    d = os.path.join(os.environ["CACMAIL_IMAP_DIR"], "gssapi")
    with open(os.path.join(d, "dovecot.conf"), "a") as f:
        f.write("auth_username_chars =\n")
    with open(os.path.join(d, "run", "master.pid")) as f:
        os.kill(int(f.read().strip()), signal.SIGHUP)
    with open(os.environ["CACMAIL_LDAP_USERS"]) as f:
        upn = next(u["upn"] for u in json.load(f) if u["uid"] == USER)
    realm = os.environ["CACMAIL_KRB5_REALM"]
    with open(os.environ["KRB5_CONFIG"], "r+") as f:
        text = f.read()
        text = text.replace("[libdefaults]\n", "[libdefaults]\n k5login_authoritative = false\n", 1)
        text = text.replace(f" {realm} = {{\n", f" {realm} = {{\n  auth_to_local = RULE:[1:$1]"
                            f"(^{re.escape(upn)}$)s/^.*$/{USER}/\n  auth_to_local = DEFAULT\n", 1)
        f.seek(0)
        f.write(text)
        f.truncate()
    return upn.replace("@", "\\@") + "@" + realm


def sensitive(acc):
    import pyatspi
    return acc.getState().contains(pyatspi.STATE_SENSITIVE)


def pin_dialog(evo, mail):
    evo.click(evo.find(mail, role="menu item", name=ACTION))
    dlg = evo.wait_frame("Smart Card PIN", timeout=60)
    return dlg, evo.all_text(dlg)


def answer(evo, dlg, pin):
    evo.set_text(evo.find(dlg, role="password text"), pin)
    evo.click(evo.find(dlg, role="push button", name="OK"))


def steps(t, evo, home, ccache, princ):
    mail = evo.wait_frame("Mail", timeout=60)
    item = evo.find(mail, role="menu item", name=ACTION)
    t.ok(item is not None, "File menu: 'Log In with Smart Card'")

    # no ticket: the PIN dialog of the identity's card; cancelled, nothing changes
    c0, c1 = size(card_log(0)), size(card_log(1))
    dlg, text = pin_dialog(evo, mail)
    t.ok(R1 in text and "3 tries left" in text, "without a ticket: the PIN dialog names the "
         "identity's card (the contractor's, in reader 1 of 2) and its tries left", text)
    evo.click(evo.find(dlg, role="push button", name="Cancel"))
    evo.poll(lambda: sensitive(evo.find(mail, role="menu item", name=ACTION)), 30,
             "the action to be available again")
    time.sleep(0.5)
    t.ok(not evo.find_all(mail, role="label", pattern=r"^(Not logged in|Mail accounts)",
                          showing=True, limit=1)
         and klist_principal(ccache) is None and method(home) == "PLAIN"
         and verified(0, c0) + verified(1, c1) == 0,
         "PIN dialog cancelled: no alert, no ticket, the account unchanged, no PIN sent")

    # a wrong PIN: the alert says the tries left; no ticket, no change
    dlg, _ = pin_dialog(evo, mail)
    answer(evo, dlg, BAD_PIN)
    alert = evo.find(mail, role="label", pattern=r"^Not logged in with your smart card",
                     timeout=60)
    text = evo.all_text(mail)
    t.ok(alert is not None and "wrong PIN" in text and "2 tries left" in text
         and "choose File > Log In with Smart Card again" in text,
         "a wrong PIN: the alert says so with the tries left and the fix", text[-2000:])
    t.ok(klist_principal(ccache) is None and method(home) == "PLAIN" and BAD_PIN not in text,
         "a wrong PIN: no ticket, the account unchanged, the PIN shown nowhere")

    # the right PIN: a ticket with the card, the account set to GSSAPI
    c0, c1 = size(card_log(0)), size(card_log(1))
    before = gss_logins()
    evo.poll(lambda: sensitive(evo.find(mail, role="menu item", name=ACTION)), 30,
             "the action to be available again")
    dlg, text = pin_dialog(evo, mail)
    t.ok("2 tries left" in text, "the PIN dialog now says 2 tries left", text)
    answer(evo, dlg, PIN)
    done = evo.find(mail, role="label", pattern=r"^Mail accounts set to log in", timeout=60)
    t.ok(done is not None, "the right PIN: the alert says the accounts log in with the ticket",
         evo.all_text(mail)[-2000:])
    t.eq(klist_principal(ccache), princ,
         "klist in KRB5CCNAME: a ticket for the contractor card's principal")
    t.ok(verified(1, c1) > 0 and verified(0, c0) == 0,
         "the PIN went to the contractor's card (reader 1) only")
    evo.poll(lambda: method(home) == "GSSAPI", 20, "Method=GSSAPI in the source")
    t.eq(method(home), "GSSAPI", "the account's source has Method=GSSAPI (through the registry)")
    evo.click(evo.find(mail, role="menu item", name="Work Online"))
    end = time.time() + 60
    asked = False
    while gss_logins() == before and time.time() < end:
        # the test CA is unknown to Camel: accept the server's certificate as a user would
        for w in evo.windows():
            asked = asked or w.name == "Mail authentication request"
            if w.name.startswith("Certificate trust"):
                button = evo.find_all(w, role="push button", name="Accept Temporarily", limit=1)
                if button:
                    evo.click(button[0])
        time.sleep(0.3)
    with open(os.environ["CACMAIL_IMAP_LOG"]) as f:
        log = f.read()[-3000:]
    t.ok(gss_logins() > before, "Evolution then logs in to Dovecot with the card's ticket "
         "(method=GSSAPI)", "windows: %s\n--- Dovecot's log (tail):\n%s\n--- Evolution's "
         "output (tail):\n%s" % ([w.name for w in evo.windows()], log, evo.read_log()[-3000:]))
    t.ok(not asked, "... and no password was asked for")

    # with the ticket there: no PIN asked
    evo.poll(lambda: sensitive(evo.find(mail, role="menu item", name=ACTION)), 30,
             "the action to be available again")
    evo.click(evo.find(mail, role="menu item", name=ACTION))
    again = evo.find(mail, role="label", pattern=r"^No mail account changed", timeout=60)
    t.ok(again is not None and not any(w.name == "Smart Card PIN" for w in evo.windows()),
         "with the ticket: no PIN dialog, nothing left to change")


# ---- the real Thunderbird (a child process: its own X session and AT-SPI connection) ------

TB_PREFS_JS = re.compile(r'^user_pref\("([^"]+)", (.*)\);$')


def read_prefs(profile):
    with open(os.path.join(profile, "prefs.js")) as f:
        return {m.group(1): json.loads(m.group(2))
                for m in map(TB_PREFS_JS.match, f.read().splitlines()) if m}


def tb_profile(tmp):
    """A closed profile (no profiles.ini: tbgui starts `thunderbird --profile DIR`) with one
    IMAP account on Dovecot's GSSAPI port, STARTTLS, set up for a password; the harness's CA
    trusted in its NSS DB."""
    profile = os.path.join(tmp, "tb-profile")
    os.makedirs(profile)
    for cmd in (["-N", "--empty-password"],
                ["-A", "-n", "with-imap-gssapi test CA", "-t", "C,,", "-i",
                 os.environ["CACMAIL_IMAP_CA"]]):
        subprocess.run(["certutil", *cmd, "-d", f"sql:{profile}"], check=True,
                       capture_output=True)
    prefs = {
        "mail.accountmanager.accounts": "account1",
        "mail.accountmanager.defaultaccount": "account1",
        "mail.account.account1.server": "server1",
        "mail.account.account1.identities": "id1",
        "mail.identity.id1.useremail": ADDR,
        "mail.identity.id1.fullName": "John Doe",
        "mail.identity.id1.valid": True,
        "mail.server.server1.type": "imap",
        "mail.server.server1.name": "Work",
        "mail.server.server1.hostname": os.environ["CACMAIL_IMAP_HOST"],
        "mail.server.server1.port": int(os.environ["CACMAIL_IMAP_PORT"]),
        "mail.server.server1.socketType": 2,
        "mail.server.server1.userName": USER,
        "mail.server.server1.authMethod": 3,
        "mail.server.server1.login_at_startup": True,
    }
    with open(os.path.join(profile, "prefs.js"), "w") as f:
        for k, v in prefs.items():
            f.write(f"user_pref({json.dumps(k)}, {json.dumps(v)});\n")
    tbgui.write_user_js(profile, tbgui.QUIET_PREFS)
    return profile


def tb_env(tmp, ccache):
    home = os.path.join(tmp, "tb-home")
    env = dict(os.environ, HOME=home, XDG_CONFIG_HOME=os.path.join(home, ".config"),
               XDG_DATA_HOME=os.path.join(home, ".local", "share"),
               XDG_CACHE_HOME=os.path.join(home, ".cache"),
               XDG_RUNTIME_DIR=os.path.join(tmp, "tb-run"), LANG="C.UTF-8", LC_ALL="C.UTF-8",
               KRB5CCNAME=ccache)
    os.makedirs(env["XDG_RUNTIME_DIR"], mode=0o700)
    os.makedirs(home)
    return env


def card_login(env):
    """`cacmail login` with the contractor's card, the PIN on a pipe (--pin-fd)."""
    r, w = os.pipe()
    os.write(w, PIN.encode())
    os.close(w)
    try:
        return subprocess.run([CACMAIL, "login", "--reader", R1, "--pin-fd", str(r)],
                              pass_fds=(r,), env=env, capture_output=True, text=True,
                              timeout=120)
    finally:
        os.close(r)


def password_prompts(tb, seen):
    """Thunderbird's windows other than the main one, by name, into @seen; returns those that
    ask for a password (a password field, or a name or text about the password or a failed
    login)."""
    asking = []
    for w in tb.windows():
        try:
            name = w.name or ""
            if name.endswith("Mozilla Thunderbird"):
                continue
            seen.add(name)
            text = tb.text(w)
            if tb.find_all(w, role="password text", limit=1) or \
                    re.search(r"(?i)password|login .*failed", name + "\n" + text):
                asking.append(f"{name}: {text[:300]}")
        except Exception:  # it went away while we looked
            continue
    return asking


def tb_steps(t, tmp, tb_env_, profile, princ):
    before = gss_logins()
    tb = tbgui.Thunderbird(tmp, tb_env_, profile, log_name="tb.log", private_x11=True)
    seen, asked = set(), set()
    try:
        tb.__enter__()
        tb.wait_main(timeout=90)
        end = time.time() + 60
        while gss_logins() == before and time.time() < end and not asked:
            asked.update(password_prompts(tb, seen))
            if not tb.running():
                raise AssertionError("Thunderbird exited: " + tb.read_log()[-2000:])
            time.sleep(0.3)
        asked.update(password_prompts(tb, seen))
        with open(os.environ["CACMAIL_IMAP_LOG"]) as f:
            log = f.read()[-3000:]
        t.ok(gss_logins() > before, "Thunderbird logs in to Dovecot with the card's ticket "
             "(method=GSSAPI, the card's user)", "windows: %s\n--- Dovecot's log (tail):\n%s\n"
             "--- Thunderbird's output (tail):\n%s" % (sorted(seen), log, tb.read_log()[-3000:]))
        tickets = subprocess.run(["klist"], env=tb_env_, capture_output=True, text=True).stdout
        t.ok(f"Default principal: {princ}" in tickets and
             f"imap/localhost@{os.environ['CACMAIL_KRB5_REALM']}" in tickets,
             "... with the card principal's ticket from its KRB5CCNAME (it now also holds a "
             "ticket for imap/localhost)", tickets)
        t.ok(not asked, "... and Thunderbird asked for no password",
             "\n".join(sorted(asked)) + f"\nwindows: {sorted(seen)}")
    finally:
        tb.close()


class Checks(Tap):
    """Checks kept (for the parent's TAP) instead of printed."""

    def __init__(self):
        super().__init__()
        self.items = []

    def ok(self, cond, name, detail=None):
        self.items.append([bool(cond), name, None if detail is None else str(detail)])
        return cond


def inside_tb(tmp, princ, out):
    """The Thunderbird part; its checks go to @out (JSON) for the parent's TAP."""
    t = Checks()
    ccache = "FILE:" + os.path.join(tmp, "tb-ccache")
    env = tb_env(tmp, ccache)
    try:
        profile = tb_profile(tmp)
        p = card_login(env)
        t.ok(p.returncode == 0 and klist_principal(ccache) == princ,
             "Thunderbird part: `cacmail login --pin-fd` makes a ticket with the contractor's "
             "card in the test's own KRB5CCNAME", p.stdout + p.stderr)
        p = subprocess.run([CACMAIL, "thunderbird", "login", "--method", "kerberos",
                            "--profile", profile], env=env, capture_output=True, text=True,
                           timeout=120)
        t.ok(p.returncode == 0 and read_prefs(profile).get("mail.server.server1.authMethod") == 5,
             "`cacmail thunderbird login --method kerberos` sets the closed profile's IMAP server "
             "to Kerberos / GSSAPI (authMethod 5 in prefs.js)", p.stdout + p.stderr)
        tb_steps(t, tmp, env, profile, princ)
    except Exception as e:
        t.ok(False, "the Thunderbird steps ran to the end", f"{type(e).__name__}: {e}")
    with open(out, "w") as f:
        json.dump(t.items, f)


def thunderbird_part(t, tmp, princ):
    out = os.path.join(tmp, "tb-checks.json")
    try:
        p = subprocess.run([sys.executable, os.path.abspath(__file__), "--inside-tb", tmp,
                            princ, out], capture_output=True, text=True, timeout=240)
    except subprocess.TimeoutExpired as e:
        p = subprocess.CompletedProcess(e.cmd, -1, f"timed out after {e.timeout} s", "")
    items = []
    if os.path.exists(out):
        with open(out) as f:
            items = json.load(f)
    for cond, name, detail in items:
        t.ok(cond, name, detail)
    t.ok(p.returncode == 0 and len(items) >= 5, "the Thunderbird part ran to the end",
         (p.stdout + p.stderr)[-3000:])


def inside(tmp):
    t = Tap()
    ccache = "FILE:" + os.path.join(tmp, "ccache")
    home, env = make_env(tmp, ccache)
    princ = card_principal()
    evo = evogui.Evolution(tmp, env, private_x11=True)
    try:
        evo.__enter__()
        steps(t, evo, home, ccache, princ)
    except Exception as e:
        detail = [f"{type(e).__name__}: {e}"]
        try:
            for w in evo.windows():
                detail.append(f"--- window {w.name!r}:\n" + evo.all_text(w))
        except Exception:
            pass
        if evo.log:
            detail.append("--- Evolution's output (tail):\n" + evo.read_log()[-3000:])
        t.ok(False, "the GUI steps ran to the end", "\n".join(detail))
    finally:
        evo.close()
    thunderbird_part(t, tmp, princ)
    t.done()


if __name__ == "__main__":
    if "--inside-tb" in sys.argv:
        inside_tb(*sys.argv[sys.argv.index("--inside-tb") + 1:][:3])
    elif "--inside" in sys.argv:
        inside(sys.argv[sys.argv.index("--inside") + 1])
    else:
        outside()
