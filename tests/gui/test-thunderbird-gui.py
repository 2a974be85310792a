#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""cacmail's add-on inside the real Thunderbird (Debian 12: 153 ESR) under Xvfb, driven through
the accessibility tree (AT-SPI), with our virtual card behind a private pcscd
(tests/harness/with-pcscd), a throwaway slapd (tests/harness/with-slapd) and the real native
messaging host (cacmail-native from the build tree, found through
$HOME/.mozilla/native-messaging-hosts/cacmail_native.json):

- the .xpi built by meson, sideloaded into a fresh profile (extensions.autoDisableScopes 0),
  loads: the toolbar has the "Smart Card" button and the Tools menu the three entries;
- a click opens the popup, which shows the identity's S/MIME settings as stale, with why;
  "Fix S/MIME Settings" sets the four certificate prefs live through the experiment API (the
  dbKeys of the card's certs, in Thunderbird's own pref service, saved to prefs.js) and the
  popup then says ok; "Undo Last Fix" clears them again;
- "Republish Certificates to GAL" asks the LDAP password and the PIN in the popup, shows the
  steps and publishes the card's certs to slapd (checked with ldapsearch); a host killed while
  it asks makes the popup say so, and nothing is written;
- "Import Recovered Key..." opens a window whose form imports an escrowed key into the
  profile's database while Thunderbird runs.

Screenshots go to $CACMAIL_BUILD_ROOT/test-artifacts/thunderbird-gui/."""
import base64
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
sys.path.insert(0, HERE)
from cmtest import BUILD, CACMAIL, SOURCE, Tap, make_pki, skip  # noqa: E402
import tbgui  # noqa: E402

NATIVE = os.path.join(BUILD, "plugins", "thunderbird", "native", "cacmail-native")
XPI = os.path.join(BUILD, "plugins", "thunderbird", "addon", "cacmail-thunderbird.xpi")
ADDON_ID = "cacmail@cacmail.invalid"
WITH_PCSCD = os.path.join(SOURCE, "tests", "harness", "with-pcscd")
WITH_SLAPD = os.path.join(SOURCE, "tests", "harness", "with-slapd")
OPENSC = "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so"
ARTIFACTS = os.path.join(BUILD, "test-artifacts", "thunderbird-gui")
CTR = "john.q.doe.ctr@mail.mil"
PIN = "123456"
ESCROW_PASSWORD = "escrow-pass"
MENU = ("Republish Certificates to GAL", "Fix S/MIME Settings", "Import Recovered Key...")


def outside():
    for f, what in ((NATIVE, "cacmail-native"), (XPI, "the .xpi")):
        if not os.path.exists(f):
            skip(f"{what} was not built")
    tool = tbgui.missing_tool()
    if tool:
        skip(f"{tool} is not installed (scripts/test installs it)")
    for tool in ("certutil", "ldapsearch", "pcscd", "slapd"):
        if subprocess.run(["sh", "-c", f"command -v {tool} || test -x /usr/sbin/{tool}"],
                          capture_output=True).returncode != 0:
            skip(f"{tool} is not installed (scripts/test installs it)")
    if not os.path.exists(OPENSC):
        skip(f"{OPENSC} is missing (Debian: opensc-pkcs11)")
    if os.geteuid() != 0:
        skip("the pcscd harness needs root for its namespaces")
    with tempfile.TemporaryDirectory(prefix="cacmail-tb-gui-") as tmp:
        pki, _ = make_pki(tmp)
        cmd = [WITH_PCSCD, "--card", os.path.join(pki, "cards", "contractor"),
               "--", WITH_SLAPD, "--pki", pki,
               "--", "/usr/bin/python3", os.path.abspath(__file__), "--inside", pki, tmp]
        rc = subprocess.run(cmd, env=dict(os.environ, TMPDIR=tmp)).returncode
        if rc == 77:
            skip("with-pcscd or with-slapd cannot run here (root, namespaces, slapd)")
        sys.exit(rc)


def run(*cmd, **kw):
    p = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if p.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)}: {p.stdout}{p.stderr}")
    return p.stdout


def der(path):
    with open(path, "rb") as f:
        data = f.read()
    m = re.search(rb"-----BEGIN CERTIFICATE-----(.*?)-----END", data, re.S)
    return base64.b64decode(b"".join(m.group(1).split())) if m else data


def dbkey(der_cert):
    """Thunderbird's dbKey (facts 6): 8 zero bytes, serial and issuer lengths (uint32 BE), the
    serial's DER content bytes, the DER issuer."""
    def tlv(i):
        n = der_cert[i + 1]
        j = i + 2
        if n & 0x80:
            n, j = int.from_bytes(der_cert[j:j + (n & 0x7F)], "big"), j + (n & 0x7F)
        return der_cert[i], j, n
    _, i, _ = tlv(0)
    _, i, _ = tlv(i)
    tag, c, n = tlv(i)
    if tag == 0xA0:
        tag, c, n = tlv(c + n)
    serial = der_cert[c:c + n]
    _, c, n = tlv(c + n)
    i = c + n
    _, c, n = tlv(i)
    issuer = der_cert[i:c + n]
    return base64.b64encode(b"\0" * 8 + struct.pack(">II", len(serial), len(issuer))
                            + serial + issuer).decode()


def make_profile(tmp, pki):
    """A fresh profile as a Debian user has it after installing cacmail: the card module and
    the DoD roots registered with cacmail's own commands, the .xpi sideloaded, the host's
    manifest in ~/.mozilla/native-messaging-hosts, the LDAP settings in cacmail.conf."""
    home = os.path.join(tmp, "home")
    profile = os.path.join(home, ".thunderbird", "cacmail.test")
    os.makedirs(os.path.join(profile, "extensions"))
    env = dict(os.environ, HOME=home, XDG_CONFIG_HOME=os.path.join(home, ".config"),
               XDG_DATA_HOME=os.path.join(home, ".local", "share"),
               XDG_CACHE_HOME=os.path.join(home, ".cache"),
               XDG_RUNTIME_DIR=os.path.join(tmp, "run"), LANG="C.UTF-8", LC_ALL="C.UTF-8")
    env.pop("CACMAIL_STATE_DIR", None)
    os.makedirs(env["XDG_RUNTIME_DIR"], mode=0o700)
    with open(os.path.join(home, ".thunderbird", "profiles.ini"), "w") as f:
        f.write("[General]\nStartWithLastProfile=1\nVersion=2\n\n"
                "[Profile0]\nName=cacmail.test\nIsRelative=1\nPath=cacmail.test\nDefault=1\n")
    run("certutil", "-N", "-d", f"sql:{profile}", "--empty-password")
    run(CACMAIL, "nss", "--nssdb", profile, "trust",
        *(os.path.join(pki, "ca", c + ".crt") for c in ("root", "email-ca", "email-ca-64",
                                                       "id-ca")), env=env)
    run(CACMAIL, "nss", "--nssdb", profile, "register", env=env)
    shutil.copy(XPI, os.path.join(profile, "extensions", ADDON_ID + ".xpi"))
    prefs = dict(tbgui.QUIET_PREFS)
    prefs.update({
        # the sideloaded .xpi starts enabled (docs/thunderbird.md)
        "extensions.autoDisableScopes": 0,
        "mail.accountmanager.accounts": "account1,account2",
        "mail.accountmanager.defaultaccount": "account1",
        "mail.accountmanager.localfoldersserver": "server2",
        "mail.account.account1.server": "server1",
        "mail.account.account1.identities": "id1",
        "mail.account.account2.server": "server2",
        "mail.server.server1.type": "pop3",
        "mail.server.server1.hostname": "127.0.0.1",
        "mail.server.server1.port": 1110,
        "mail.server.server1.userName": "contractor",
        "mail.server.server1.name": CTR,
        "mail.server.server1.login_at_startup": False,
        "mail.server.server1.check_new_mail": False,
        "mail.server.server2.type": "none",
        "mail.server.server2.hostname": "Local Folders",
        "mail.server.server2.userName": "nobody",
        "mail.server.server2.name": "Local Folders",
        "mail.identity.id1.fullName": "John Q. Doe (contractor)",
        "mail.identity.id1.useremail": CTR,
        "mail.identity.id1.valid": True,
    })
    tbgui.write_user_js(profile, prefs)
    with open(os.path.join(profile, "xulstore.json"), "w") as f:
        # a window that fits the screen, and the menu bar shown (Thunderbird hides it until
        # Alt is pressed): the Tools menu is one way into the add-on
        json.dump({"chrome://messenger/content/messenger.xhtml": {
            "messengerWindow": {"width": "1120", "height": "800", "screenX": "0",
                                "screenY": "0", "sizemode": "normal"},
            "toolbar-menubar": {"autohide": "false"}}}, f)
    hosts = os.path.join(home, ".mozilla", "native-messaging-hosts")
    os.makedirs(hosts)
    with open(os.path.join(hosts, "cacmail_native.json"), "w") as f:
        json.dump({"name": "cacmail_native", "description": "cacmail (build tree)",
                   "path": NATIVE, "type": "stdio", "allowed_extensions": [ADDON_ID]}, f)
    os.makedirs(os.path.join(env["XDG_CONFIG_HOME"], "cacmail"))
    with open(os.path.join(env["XDG_CONFIG_HOME"], "cacmail", "cacmail.conf"), "w") as f:
        f.write(f"[ldap]\nuri={os.environ['CACMAIL_LDAP_URI']}\n"
                f"base={os.environ['CACMAIL_LDAP_BASE']}\n"
                f"ca-file={os.environ['CACMAIL_LDAP_CA']}\n")
    return profile, env


def prefs_js(profile):
    out = {}
    try:
        with open(os.path.join(profile, "prefs.js")) as f:
            for m in re.finditer(r'user_pref\("([^"]+)",\s*(.*)\);', f.read()):
                out[m.group(1)] = json.loads(m.group(2))
    except (OSError, ValueError):
        pass
    return out


def read_entry(dn):
    out = run("ldapsearch", "-x", "-H", os.environ["CACMAIL_LDAP_URI"], "-ZZ", "-D",
              os.environ["CACMAIL_LDAP_ADMIN_DN"], "-y",
              os.environ["CACMAIL_LDAP_ADMIN_PASSWORD_FILE"], "-b", dn, "-s", "base", "-LLL",
              "-o", "ldif-wrap=no", "(objectClass=*)", "userCertificate;binary",
              env=dict(os.environ, LDAPTLS_CACERT=os.environ["CACMAIL_LDAP_CA"]))
    return [base64.b64decode(line.split(":: ", 1)[1]) for line in out.splitlines()
            if line.lower().startswith("usercertificate;binary::")]


def native_pids():
    out = []
    for d in os.listdir("/proc"):
        try:
            if d.isdigit() and os.readlink(f"/proc/{d}/exe") == os.path.realpath(NATIVE):
                out.append(int(d))
        except OSError:
            continue
    return out


class Steps:
    def __init__(self, t, tb, pki, profile, env):
        self.t, self.tb, self.pki, self.profile, self.env = t, tb, pki, profile, env

    def shot(self, name, acc=None):
        """A screenshot of @acc's window (default: the main window, popup included)."""
        self.tb.screenshot(os.path.join(ARTIFACTS, name), acc or self.main)

    def shot_popup(self, name, doc):
        """The popup with the toolbar above it: from the popup's left edge to the window's
        right edge, from the window's top to the popup's bottom."""
        import pyatspi
        w = self.main.queryComponent().getExtents(pyatspi.DESKTOP_COORDS)
        p = self.tb.ancestor(doc, "panel").queryComponent().getExtents(pyatspi.DESKTOP_COORDS)
        x, y = max(p.x - 24, w.x), w.y
        width, height = w.x + w.width - x, min(p.y + p.height + 16, w.y + w.height) - y
        subprocess.run(["import", "-window", "root", "-crop", f"{width}x{height}+{x}+{y}",
                        "+repage", os.path.join(ARTIFACTS, name)], env=self.tb.env, check=True,
                       capture_output=True)

    def popup(self):
        """Open the toolbar button's popup (a second click would close it)."""
        tb = self.tb
        try:
            return tb.document("cacmail", timeout=1)
        except tbgui.evogui.Timeout:
            pass
        tb.click(tb.find(self.main, role="push button", name="Smart Card"))
        doc = tb.document("cacmail", timeout=20)
        tb.find(doc, role="push button", name="Fix S/MIME Settings", timeout=20)
        return doc

    def press(self, doc, name, until, timeout=60):
        """Click the button @name until the page's text matches @until (an action sent to a
        page that is still loading can be lost: the click is repeated only while nothing
        happened)."""
        tb = self.tb
        button = tb.find(doc, role="push button", name=name, showing=True, timeout=20)
        end = time.time() + timeout
        while True:
            tb.click(button)
            try:
                return tb.wait_text(doc, until, timeout=min(3, max(end - time.time(), 0.1)))
            except tbgui.evogui.Timeout:
                if time.time() > end or re.search(r"Working|Done\.|stopped|error",
                                                  tb.text(doc)):
                    return tb.wait_text(doc, until, timeout=max(end - time.time(), 1))

    def answer(self, doc, prompt, secret):
        tb = self.tb
        tb.wait_text(doc, prompt, timeout=60, what=f"the question '{prompt}'")
        field = tb.find(doc, role="password text", showing=True, timeout=10)
        tb.type_text(field, secret)
        tb.click(tb.find(doc, role="push button", name="OK", showing=True, timeout=10))

    def run(self):
        t, tb = self.t, self.tb
        self.main = tb.wait_main()
        button = tb.find(self.main, role="push button", name="Smart Card", timeout=60)
        tb.find(self.main, role="tree item", name=CTR, timeout=30)  # the account is shown
        t.ok(button is not None, "the sideloaded add-on's 'Smart Card' button is in the toolbar")

        doc = self.popup()
        text = tb.wait_text(doc, r"<" + re.escape(CTR) + r">: (stale|ok)", timeout=60,
                            what="the identity's state")
        t.ok(re.search(re.escape(CTR) + r">: stale", text) and "Fix sets signing" in text,
             "the popup shows the identity stale, and what Fix would set", text)
        self.shot_popup("thunderbird-popup.png", doc)

        sign = der(os.path.join(self.pki, "cards", "contractor", "4 - Dig_Sig.crt"))
        enc = der(os.path.join(self.pki, "cards", "contractor", "5 - Key_Mgmt.crt"))
        text = self.press(doc, "Fix S/MIME Settings", r"Done\.[\s\S]*now signs with"
                          r"|error|stopped")
        text = tb.wait_text(doc, re.escape(CTR) + r">: ok", timeout=30,
                            what="the identity ok after the fix")
        p = tb.poll(lambda: (lambda d: d if d.get("mail.identity.id1.signing_cert_dbkey")
                             else None)(prefs_js(self.profile)), 10, "prefs.js saved")
        t.ok(p.get("mail.identity.id1.signing_cert_dbkey") == dbkey(sign)
             and p.get("mail.identity.id1.encryption_cert_dbkey") == dbkey(enc)
             and p.get("mail.identity.id1.signing_cert_name")
             and p.get("mail.identity.id1.encryption_cert_name"),
             "Fix: Thunderbird's pref service holds the card certs' dbKeys and names (prefs.js)",
             {k: v for k, v in p.items() if "cert" in k})
        t.ok("now signs with" in text and re.search(re.escape(CTR) + r">: ok", text),
             "the popup says what it set and shows the identity ok", text)
        self.shot_popup("thunderbird-fixed.png", doc)

        text = self.press(doc, "Undo Last Fix", r"Done\.[\s\S]*cleared|error")
        p = tb.poll(lambda: (lambda d: d if "mail.identity.id1.signing_cert_dbkey" not in d
                             else None)(prefs_js(self.profile)), 10, "prefs.js without the fix")
        t.ok("cleared" in text and "mail.identity.id1.encryption_cert_dbkey" not in p,
             "Undo Last Fix clears the four prefs again", text)
        self.press(doc, "Fix S/MIME Settings", r"Done\.[\s\S]*now signs with|error|stopped")

        dn = "uid=contractor,ou=people," + os.environ["CACMAIL_LDAP_BASE"]
        with open(os.path.join(os.environ["CACMAIL_SLAPD_DIR"], "users", "contractor.pw")) as f:
            password = f.read().strip()
        before = read_entry(dn)
        # a host killed while it waits for the password: the popup says so, nothing written
        self.press(doc, "Republish Certificates to GAL", r"LDAP password for")
        pids = native_pids()
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        text = tb.wait_text(doc, r"stopped", timeout=20, what="the popup's word on the host")
        t.ok(len(pids) == 1 and "cacmail-native" in text and "try again" in text
             and read_entry(dn) == before,
             "host killed mid-request: the popup says it stopped, with what to do; nothing "
             "written", text)

        self.press(doc, "Republish Certificates to GAL", r"LDAP password for")
        self.answer(doc, r"LDAP password for uid=contractor", password)
        tb.wait_text(doc, r"PIN of the card", timeout=60, what="the PIN question")
        self.shot_popup("thunderbird-pin.png", doc)
        self.answer(doc, r"PIN of the card", PIN)
        text = tb.wait_text(doc, r"Done\.[\s\S]*now holds|error", timeout=60,
                            what="the republish result")
        entry = read_entry(dn)
        t.ok(entry == [enc, sign] and "Verified" in text,
             "Republish from the popup: slapd holds the card's encryption then signing cert",
             text)
        t.ok(re.search(r"verify \(step 5 of 5\): done", text),
             "the popup listed the steps up to verify", text)
        self.shot_popup("thunderbird-republish.png", doc)

        # Tools > cacmail > Import Recovered Key...: a window (a file chooser would close the
        # popup), whose Browse... opens Thunderbird's file chooser (cancelled here: the path is
        # typed into the form)
        import pyatspi
        pyatspi.Registry.generateKeyboardEvent(0xff1b, None, pyatspi.KEY_SYM)  # Escape
        tb.poll(lambda: not tb.find_all(tb.app(), role="document web", name="cacmail"), 10,
                "the popup to close")
        tb.click(tb.find(self.main, role="menu", name="Tools", timeout=10))
        tb.click(tb.find(tb.app(), role="menu", name="cacmail", showing=True, timeout=10))
        def shown():  # the submenu's items appear a moment after it opens (slower under load)
            names = {m.name for m in tb.find_all(tb.app(), role="menu item", showing=True)}
            return names if all(m in names for m in MENU) else None
        try:
            names = tb.poll(shown, 10, "the cacmail submenu's entries")
        except AssertionError:
            names = {m.name for m in tb.find_all(tb.app(), role="menu item", showing=True)}
        t.ok(all(m in names for m in MENU), "Tools > cacmail has the three entries",
             sorted(n for n in names if n))
        self.shot("thunderbird-menu.png")
        subprocess.run(["mogrify", "-crop", "840x640+0+0", "+repage",
                        os.path.join(ARTIFACTS, "thunderbird-menu.png")], check=True)
        tb.click(tb.find(tb.app(), role="menu item", name="Import Recovered Key...",
                         showing=True, timeout=10))
        win = tb.poll(lambda: next((d for d in tb.find_all(tb.app(), role="document web",
                                                           name="cacmail")
                                    if tb.find_all(d, role="push button", name="Import",
                                                   showing=True)), None),
                      30, "the import window")
        tb.click(tb.find(win, role="push button", name="Browse...", showing=True, timeout=10))
        chooser = tb.poll(lambda: next((w for w in tb.windows()
                                        if w.getRoleName() == "file chooser"), None),
                          20, "Thunderbird's file chooser")
        t.ok(chooser.name.startswith("Import Recovered Key - cacmail"),
             "Browse... opens Thunderbird's file chooser (the experiment's picker) over the "
             "cacmail window", chooser.name)
        tb.click(tb.find(chooser, role="push button", name="Cancel", timeout=10))
        tb.poll(lambda: not any(w.getRoleName() == "file chooser" for w in tb.windows()), 10,
                "the file chooser to close")
        esc = os.path.join(self.pki, "escrow", "contractor-encryption-old-aes.p12")
        tb.type_text(tb.find(win, role="entry", name="File", timeout=10), esc)
        tb.type_text(tb.find(win, role="password text", name="Password of the file",
                             timeout=10), ESCROW_PASSWORD)
        text = self.press(win, "Import", r"Done\.[\s\S]*imported:|error")
        listed = run("certutil", "-L", "-d", f"sql:{self.profile}")
        m = re.search(r"imported: (.+) \(valid until", text)
        t.ok(m is not None and m.group(1) in listed,
             "Import Recovered Key: the key is in the profile's database while Thunderbird runs",
             text + "\n" + listed)
        frame = tb.ancestor(win, "frame")
        self.shot("thunderbird-import.png", frame)
        t.ok(tb.running(), "Thunderbird is still running")


def inside(pki, tmp):
    t = Tap()
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    os.makedirs(ARTIFACTS)
    profile, env = make_profile(tmp, pki)
    tb = tbgui.Thunderbird(tmp, env, profile, private_x11=True)
    t0 = time.time()
    try:
        tb.__enter__()
        Steps(t, tb, pki, profile, env).run()
    except Exception as e:
        detail = [f"{type(e).__name__}: {e}"]
        try:
            tb.screenshot(os.path.join(ARTIFACTS, "failure.png"))
            detail.append(f"screenshot: {ARTIFACTS}/failure.png")
            detail.append(tb.read_log()[-4000:])
        except Exception:
            pass
        t.ok(False, "the GUI steps ran to the end", "\n".join(detail))
    finally:
        tb.close()
    print(f"# {time.time() - t0:.1f} s with Thunderbird")
    t.done()


if __name__ == "__main__":
    if len(sys.argv) > 3 and sys.argv[1] == "--inside":
        inside(sys.argv[2], sys.argv[3])
    else:
        outside()
