#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""File > Log In with Smart Card in the real Evolution (module-cacmail from the build tree,
Xvfb, AT-SPI: tests/gui/evogui.py) against a real Dovecot with GSSAPI and the MIT KDC
(tests/harness/with-slapd --kerberos, tests/harness/with-imap-gssapi): without a ticket the
action says to run `cacmail login` and changes nothing; with a ticket (kinit, password on stdin)
it sets the IMAP account to GSSAPI through the registry (read back from the source file), says
so in an alert, and Evolution itself, going online, logs in to Dovecot with the ticket (Dovecot
logs method=GSSAPI) and asks for no password."""
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "gui"))
from cmtest import BUILD, SOURCE, Tap, skip  # noqa: E402
import evogui  # noqa: E402

MODULE = os.path.join(BUILD, "plugins", "evolution", "module", "module-cacmail.so")
H = os.path.join(SOURCE, "tests", "harness")
ACTION = "Log In with Smart Card"
ADDR, USER = "john.q.doe.ctr@mail.mil", "contractor"


def outside():
    if not os.path.exists(MODULE):
        skip("module-cacmail.so was not built (needs evolution-dev and libebook1.2-dev)")
    tool = evogui.missing_tool()
    if tool:
        skip(f"{tool} is not installed (scripts/test installs it)")
    for f in ("/usr/sbin/dovecot", "/usr/lib/dovecot/modules/auth/libmech_gssapi.so",
              "/usr/sbin/krb5kdc", "/usr/bin/kinit"):
        if not os.path.exists(f):
            skip(f"{f} is not installed (scripts/install-deps test installs it)")
    if os.geteuid() != 0:
        skip("the harnesses need root for their namespaces")
    with tempfile.TemporaryDirectory(prefix="cacmail-mail-login-gui-") as tmp:
        cmd = [os.path.join(H, "with-pcscd"), "--no-readers", "--",
               os.path.join(H, "with-slapd"), "--kerberos", "--",
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


def steps(t, evo, home, ccache):
    mail = evo.wait_frame("Mail", timeout=60)
    item = evo.find(mail, role="menu item", name=ACTION)
    t.ok(item is not None, "File menu: 'Log In with Smart Card'")

    evo.click(item)
    alert = evo.find(mail, role="label", pattern=r"^No Kerberos ticket", timeout=60)
    t.ok(alert is not None and "cacmail login" in evo.all_text(mail),
         "without a ticket: an alert says to run 'cacmail login'")
    t.eq(method(home), "PLAIN", "... and the account is unchanged")

    with open(os.path.join(os.environ["CACMAIL_SLAPD_DIR"], "users",
                           USER + ".krb5.pw")) as pw:
        subprocess.run(["kinit", USER], stdin=pw, check=True, capture_output=True,
                       env=dict(os.environ, KRB5CCNAME=ccache))
    before = gss_logins()
    evo.click(evo.find(mail, role="menu item", name=ACTION))
    done = evo.find(mail, role="label", pattern=r"^Mail accounts set to log in", timeout=60)
    t.ok(done is not None, "with a ticket: the alert says the accounts log in with it",
         evo.all_text(mail))
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
    t.ok(gss_logins() > before, "Evolution then logs in to Dovecot with the ticket "
         "(method=GSSAPI)", "windows: %s\n--- Dovecot's log (tail):\n%s\n--- Evolution's "
         "output (tail):\n%s" % ([w.name for w in evo.windows()], log, evo.read_log()[-3000:]))
    t.ok(not asked, "... and no password was asked for")


def inside(tmp):
    t = Tap()
    ccache = "FILE:" + os.path.join(tmp, "ccache")
    home, env = make_env(tmp, ccache)
    evo = evogui.Evolution(tmp, env, private_x11=True)
    try:
        evo.__enter__()
        steps(t, evo, home, ccache)
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
    t.done()


if __name__ == "__main__":
    if "--inside" in sys.argv:
        inside(sys.argv[sys.argv.index("--inside") + 1])
    else:
        outside()
