#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""module-cacmail inside the real Evolution (Debian 12), under Xvfb, driven through the
accessibility tree (AT-SPI), with our virtual cards behind a private pcscd
(tests/harness/with-pcscd) and a throwaway slapd (tests/harness/with-slapd):

- the module loads from the build tree (EDS_EXTRA_PREFIXES) with no warning of ours; the mail
  window has "Republish Certificates to GAL" in the File menu and the toolbar, disabled until
  the address list server is set; the Preferences window has the "Smart Card" page; nothing
  touches the card or LDAP until the user acts;
- the setup flow from an empty profile (no card module, no CA, no cacmail.conf) to a
  republish, each step's state asserted before and after: the page lists the six steps in the
  order of `cacmail setup`, buttons with nothing to do disabled, no identity "ok" without a
  certificate; the card inserted: the alert offers "Make Card Certificates Available", which
  loads OpenSC into the running Evolution (no restart, saved in pkcs11.txt) and the identity is
  pointed at the card; Undo Last Fix and Fix S/MIME Settings; "Install DoD Trust Chain..." with
  make-pki's bundle.p7b: the roots shown with their SHA-256, the confirmed root trusted C,C,,
  the cross-certificate skipped; "Directory Settings...": a server that does not answer saves
  nothing, then the test slapd is tested and saved; Republish from the page; the doctor report;
  "Import Recovered Key..." through the file chooser and the password dialog;
- swapping the contractor card for the reservist card (same NSS nicknames) re-checks the
  settings, points the reservist identity at the inserted card and says so in an alert;
- "Republish Certificates to GAL" asks the LDAP password and the PIN in dialogs, shows its
  progress, and publishes the card's certificates to slapd (checked with ldapsearch).

Screenshots go to $CACMAIL_BUILD_ROOT/test-artifacts/evolution-gui/."""
import configparser
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "gui"))
from cmtest import BUILD, SOURCE, Tap, make_pki, skip  # noqa: E402
import evogui  # noqa: E402

MODULE = os.path.join(BUILD, "plugins", "evolution", "module", "module-cacmail.so")
WITH_PCSCD = os.path.join(SOURCE, "tests", "harness", "with-pcscd")
WITH_SLAPD = os.path.join(SOURCE, "tests", "harness", "with-slapd")
OPENSC = "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so"
ARTIFACTS = os.path.join(BUILD, "test-artifacts", "evolution-gui")
CTR, MIL = "john.q.doe.ctr@mail.mil", "john.q.doe.mil@mail.mil"
TOKEN = "DOE.JOHN.QUINCY.1234567890"
SIGN_NICK = f"{TOKEN}:Certificate for Digital Signature"
ENC_NICK = f"{TOKEN}:Certificate for Key Management"
PIN = "123456"
SECTION = "Secure MIME (S/MIME)"
REPUBLISH = "Republish Certificates to GAL"


def outside():
    """Check the tools, make the PKI, re-run this script inside the harnesses."""
    if not os.path.exists(MODULE):
        skip("module-cacmail.so was not built (needs evolution-dev and libebook1.2-dev)")
    tool = evogui.missing_tool()
    if tool:
        skip(f"{tool} is not installed (scripts/test installs it)")
    for tool in ("certutil", "ldapsearch", "pcscd"):
        if subprocess.run(["sh", "-c", f"command -v {tool} || test -x /usr/sbin/{tool}"],
                          capture_output=True).returncode != 0:
            skip(f"{tool} is not installed (scripts/test installs it)")
    if not os.path.exists(OPENSC):
        skip(f"{OPENSC} is missing (Debian: opensc-pkcs11)")
    # an installed module-cacmail.so would load beside the build tree's (GType clashes)
    moduledir = subprocess.run(["pkg-config", "--variable=moduledir", "evolution-shell-3.0"],
                               capture_output=True, text=True).stdout.strip() \
        or "/usr/lib/evolution/modules"
    installed = os.path.join(moduledir, "module-cacmail.so")
    if os.path.exists(installed):
        print(f"Bail out! {installed} is installed: Evolution would load it beside the one "
              f"under test; remove it (or run the tests on a machine without cacmail installed)")
        sys.exit(1)
    if os.geteuid() != 0:
        skip("the pcscd harness needs root for its namespaces")
    with tempfile.TemporaryDirectory(prefix="cacmail-evo-gui-") as tmp:
        pki, _ = make_pki(tmp)
        cmd = [WITH_PCSCD, "--card", os.path.join(pki, "cards", "contractor"),
               "--card", os.path.join(pki, "cards", "reservist"),
               "--", WITH_SLAPD, "--pki", pki,
               "--", "/usr/bin/python3", os.path.abspath(__file__), "--inside", pki, tmp]
        rc = subprocess.run(cmd, env=dict(os.environ, TMPDIR=tmp)).returncode
        if rc == 77:
            skip("with-pcscd or with-slapd cannot run here (root, namespaces, slapd)")
        sys.exit(rc)


def card(n, command):
    sock = os.path.join(os.environ["CACMAIL_VCARD_CONTROL_DIR"], f"card{n}.sock")
    subprocess.run([os.environ["CACMAIL_VCARD"], "--control", sock, "--send", command],
                   check=True, capture_output=True)


def apdus(n):
    path = os.path.join(os.environ["CACMAIL_VCARD_LOG_DIR"], f"card{n}.log")
    if not os.path.exists(path):
        return 0
    with open(path) as f:
        return sum(1 for line in f if line.startswith("C "))


def run(*cmd, **kw):
    p = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if p.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)}: {p.stdout}{p.stderr}")
    return p.stdout


def write_identity(home, uid, name, address):
    cp = configparser.ConfigParser(interpolation=None)
    cp.optionxform = str
    cp["Data Source"] = {"DisplayName": name, "Enabled": "true", "Parent": ""}
    cp["Mail Identity"] = {"Address": address, "Name": name}
    cp[SECTION] = {"SigningCertificate": "", "EncryptionCertificate": "",
                   "SignByDefault": "false", "EncryptByDefault": "false",
                   "EncryptToSelf": "true", "SigningAlgorithm": ""}
    with open(os.path.join(home, ".config", "evolution", "sources", f"{uid}.source"), "w") as f:
        cp.write(f, space_around_delimiters=False)


def smime(home, uid):
    cp = configparser.ConfigParser(interpolation=None)
    cp.optionxform = str
    cp.read(os.path.join(home, ".config", "evolution", "sources", f"{uid}.source"))
    return dict(cp[SECTION]) if cp.has_section(SECTION) else {}


def make_home(tmp, pki):
    """An empty profile: Evolution's NSS database without a CA or a card module, the two mail
    identities, the DISA-like bundle downloaded to the home folder, and in cacmail.conf only
    the address to publish for (Evolution's default identity could be either)."""
    home = os.path.join(tmp, "home")
    db = os.path.join(home, ".pki", "nssdb")
    os.makedirs(db)
    os.makedirs(os.path.join(home, ".config", "evolution", "sources"))
    run("certutil", "-N", "-d", f"sql:{db}", "--empty-password")
    write_identity(home, "cacmail-ctr", "John Doe (contractor)", CTR)
    write_identity(home, "cacmail-mil", "John Doe (reservist)", MIL)
    shutil.copy2(os.path.join(pki, "bundle.p7b"), os.path.join(home, "bundle.p7b"))
    os.makedirs(os.path.join(home, ".config", "cacmail"))
    with open(os.path.join(home, ".config", "cacmail", "cacmail.conf"), "w") as f:
        f.write(f"[ldap]\nemail={CTR}\n")
    env = dict(os.environ, HOME=home, XDG_CONFIG_HOME=os.path.join(home, ".config"),
               XDG_DATA_HOME=os.path.join(home, ".local", "share"),
               XDG_CACHE_HOME=os.path.join(home, ".cache"),
               XDG_RUNTIME_DIR=os.path.join(tmp, "run"), LANG="C.UTF-8", LC_ALL="C.UTF-8")
    env.pop("CACMAIL_STATE_DIR", None)
    os.makedirs(env["XDG_RUNTIME_DIR"], mode=0o700)
    prefix = os.path.join(tmp, "prefix")
    modules = os.path.join(prefix, "lib", "evolution", "modules")
    os.makedirs(modules)
    # a copy, not a link: a build running meanwhile in the same tree cannot change it under
    # Evolution; the copy finds our libraries through LD_LIBRARY_PATH (the module's build
    # RPATH is relative to its own folder)
    shutil.copy2(MODULE, os.path.join(modules, "module-cacmail.so"))
    env["EDS_EXTRA_PREFIXES"] = prefix
    # the page runs `cacmail doctor` from PATH
    env["PATH"] = os.path.join(BUILD, "cli") + ":" + env["PATH"]
    env["LD_LIBRARY_PATH"] = os.path.join(BUILD, "core") + ":" + os.path.join(BUILD, "ldap")
    return home, db, env


def slapd_connections():
    with open(os.environ["CACMAIL_SLAPD_LOG"], errors="replace") as f:
        return sum(1 for line in f if " ACCEPT from" in line)


def read_entry(dn):
    out = run("ldapsearch", "-x", "-H", os.environ["CACMAIL_LDAP_URI"], "-ZZ", "-D",
              os.environ["CACMAIL_LDAP_ADMIN_DN"], "-y",
              os.environ["CACMAIL_LDAP_ADMIN_PASSWORD_FILE"], "-b", dn, "-s", "base", "-LLL",
              "-o", "ldif-wrap=no", "(objectClass=*)", "userCertificate;binary",
              "userSMIMECertificate",
              env=dict(os.environ, LDAPTLS_CACERT=os.environ["CACMAIL_LDAP_CA"]))
    certs = [line.split(":: ", 1)[1] for line in out.splitlines()
             if line.lower().startswith("usercertificate;binary::")]
    smime_values = [line for line in out.splitlines()
                    if line.lower().startswith("usersmimecertificate:")]
    return certs, smime_values


def pem_b64(path):
    with open(path) as f:
        text = f.read()
    return "".join(text.split("-----")[2].split())


def inside(pki, tmp):
    t = Tap()
    with open(os.path.join(pki, "manifest.json")) as f:
        manifest = json.load(f)
    os.makedirs(ARTIFACTS, exist_ok=True)
    with open(os.environ["CACMAIL_LDAP_USERS"]) as f:
        users = {u["uid"]: u for u in json.load(f)}
    home, db, env = make_home(tmp, pki)
    card(0, "remove")  # the contractor card comes later; the reservist card much later
    card(1, "remove")
    base_apdus, base_ldap = apdus(0), slapd_connections()

    evo = evogui.Evolution(tmp, env, private_x11=True)
    try:
        evo.__enter__()
        steps(t, evo, pki, manifest, home, db, users, base_apdus, base_ldap)
    except Exception as e:  # a time-out or a lost window: say where, with what was on screen
        detail = [f"{type(e).__name__}: {e}"]
        try:
            for w in evo.windows():
                detail.append(f"--- window {w.name!r}:\n" + evo.all_text(w))
            evo.screenshot(os.path.join(ARTIFACTS, "failure.png"))
        except Exception:
            pass
        if evo.log:
            detail.append("--- Evolution's output (tail):\n" + evo.read_log()[-4000:])
        t.ok(False, "the GUI steps ran to the end", "\n".join(detail))
    finally:
        evo.close()
    t.done()


STEP_NAMES = ("Evolution and its certificate database", "Card certificates in Evolution",
              "DoD trust chain", "Address list (directory) settings",
              "S/MIME settings of the mail identities",
              "Publish your certificates to the address list")


def colon_hex(sha):
    return ":".join(sha[i:i + 2] for i in range(0, len(sha), 2)).upper()


def steps(t, evo, pki, manifest, home, db, users, base_apdus, base_ldap):
    import pyatspi  # only now: it talks to the accessibility bus of our session

    def sensitive(acc):
        return acc.getState().contains(pyatspi.STATE_SENSITIVE)

    def step_state(prefs, n):
        """The state word of step @n (1-based) as its title says it."""
        label = evo.find(prefs, role="label", pattern=rf"^{n}\. {re.escape(STEP_NAMES[n - 1])}: ")
        return label.name.split(": ", 1)[1]

    def wait_step(prefs, n, word, what):
        got = evo.poll(lambda: step_state(prefs, n) == word and word, 60,
                       f"step {n} to be '{word}'")
        t.eq(got, word, what)

    def buttons(prefs, *names):
        return tuple(sensitive(evo.find(prefs, role="push button", name=n)) for n in names)

    def page_alert(prefs, title):
        """The text of the page's alert titled @title (its label starts with the title line)."""
        lab = evo.find(prefs, role="label", pattern="^" + re.escape(title) + "(\n|$)",
                       timeout=90)
        return evo.all_text(evo.ancestor(lab, "info bar"))

    def close_alert(root, lab_pattern):
        lab = evo.find(root, role="label", pattern=lab_pattern, showing=True)
        evo.click(evo.find(evo.ancestor(lab, "info bar"), role="push button", name="Close"))
        evo.poll(lambda: not evo.find_all(root, role="label", pattern=lab_pattern, showing=True,
                                          limit=1), 30, "the alert to close")

    def choose_file(title, name, accept):
        chooser = evo.wait_frame(title)
        cell = evo.find(chooser, role="table cell", name=name, timeout=30)
        table = cell.parent
        while table.getRoleName() not in ("table", "tree table"):
            table = table.parent
        table.querySelection().selectChild(cell.getIndexInParent())
        evo.click(evo.find(chooser, role="push button", name=accept))

    # ---- the module loads; the action and the page exist -----------------------------
    mail = evo.wait_frame("Mail", timeout=60)
    t.ok(mail is not None, "Evolution's mail window is up with the module from the build tree")
    item = evo.find(mail, role="menu item", name=REPUBLISH)
    t.ok(item is not None and not sensitive(item),
         "File menu: 'Republish Certificates to GAL', disabled while no address list server "
         "is set")
    t.ok(evo.find_all(mail, role="push button", name=REPUBLISH, limit=1),
         "toolbar: 'Republish Certificates to GAL' button")
    evo.click(evo.find(mail, role="menu item", name="Preferences"))
    prefs = evo.wait_frame("Evolution Preferences")
    pages = evo.find(prefs, role="list box")
    names = [row[0][1].name for row in pages]
    t.ok("Smart Card" in names, "Preferences: a 'Smart Card' page", names)
    time.sleep(4)  # past the watcher's start: still nothing may touch the card or LDAP
    t.eq((apdus(0) - base_apdus, slapd_connections() - base_ldap), (0, 0),
         "start-up and opening the Preferences: no APDU to the card, no LDAP connection")

    # ---- the page of an empty profile: the steps in setup order -------------------------
    pages.querySelection().selectChild(names.index("Smart Card"))
    evo.find(prefs, role="label", pattern=r"^Checked at", timeout=60)
    titles = [lab.name for lab in evo.find_all(prefs, role="label", pattern=r"^\d\. ")]
    t.eq([n.split(": ")[0] for n in titles], [f"{i + 1}. {n}" for i, n in enumerate(STEP_NAMES)],
         "page: the six setup steps, in the order of cacmail setup")
    t.eq(tuple(step_state(prefs, n) for n in range(1, 7)),
         ("done", "to do", "to do", "to do", "waiting for an earlier step",
          "waiting for an earlier step"),
         "empty profile: Evolution found, the card, trust and directory steps to do, fix and "
         "republish waiting")
    t.eq(buttons(prefs, "Make Card Certificates Available", "Install DoD Trust Chain\u2026",
                 "Directory Settings\u2026", "Fix S/MIME Settings", "Undo Last Fix",
                 "Republish Certificates to GAL"),
         (True, True, True, False, False, False),
         "empty profile: Fix, Undo and Republish disabled (nothing to do yet)")
    text = evo.all_text(prefs)
    t.ok(f"John Doe (contractor) <{CTR}>: no certificate" in text and ": ok" not in text,
         "page: an identity without a certificate says so, never 'ok'", text)
    t.ok("Virtual PCD 00 00: no card" in text and "no card module is registered" in text,
         "page: no card in the readers, no card module", text)
    # the doctor report: the command line's words, or why it could not be made
    # (in Evolution's environment: its session bus, its display)
    doctor = subprocess.run([os.path.join(BUILD, "cli", "cacmail"), "doctor", "--json"],
                            env=evo.env, capture_output=True, text=True)
    if doctor.returncode in (0, 7):
        first = json.loads(doctor.stdout)["problems"]
        want = first[0]["message"] if first else "cacmail doctor found no problem."
    else:
        want = "The report could not be made: cacmail doctor failed"
    report = evo.poll(lambda: want in evo.all_text(prefs) and want, 60, "the doctor report")
    t.ok(report, "page: the report of cacmail doctor --json (run without blocking)", want)
    evo.screenshot(os.path.join(ARTIFACTS, "smart-card-page-before.png"), prefs)

    # ---- the card is inserted: the alert offers the page's live button -------------------
    evo.click(evo.find(prefs, role="push button", name="Close"))
    evo.poll(lambda: "Evolution Preferences" not in [w.name for w in evo.windows()], 30,
             "the Preferences window to close")
    card(0, "insert")
    alert = evo.find(mail, role="label", pattern=r"^Smart card inserted: .*\(contractor\)",
                     timeout=60)
    bar = evo.ancestor(alert, "info bar")
    text = evo.all_text(bar)
    button = evo.find(bar, role="push button", name="Make Card Certificates Available")
    t.ok("not visible to Evolution" in text and "cacmail nss register" not in text
         and "close Evolution" not in text,
         "card inserted: the alert says Evolution cannot see the card, and does not send the "
         "user to a terminal", text)
    evo.screenshot(os.path.join(ARTIFACTS, "card-alert-load.png"), mail)
    evo.click(button)
    # "Card certificates available", then (the bar shows the newest alert) the re-check's
    evo.find(mail, role="label", pattern="^S/MIME settings pointed at the card in the reader",
             timeout=60)
    ctr = evo.poll(lambda: smime(home, "cacmail-ctr").get("SigningCertificate") and
                   smime(home, "cacmail-ctr"), 30, "the contractor's settings written")
    t.eq((ctr["SigningCertificate"], ctr["EncryptionCertificate"], ctr["SigningAlgorithm"]),
         (SIGN_NICK, ENC_NICK, "sha256"),
         "alert's Make Card Certificates Available: the card's certs are visible at once and "
         "the contractor identity is pointed at them")
    with open(os.path.join(db, "pkcs11.txt")) as f:
        saved = f.read()
    t.ok(OPENSC in saved or "p11-kit-proxy.so" in saved,
         "the module (OpenSC, or p11-kit's proxy to it) is saved in pkcs11.txt for the next "
         "start", saved)
    evo.click(evo.find(mail, role="menu item", name="Preferences"))
    prefs = evo.wait_frame("Evolution Preferences")
    pages = evo.find(prefs, role="list box")
    pages.querySelection().selectChild([row[0][1].name for row in pages].index("Smart Card"))
    wait_step(prefs, 2, "done", "step 2 done once the card module is loaded")
    wait_step(prefs, 5, "done", "step 5 done once the identity points at the card")
    evo.find(prefs, role="label", pattern=rf"^John Doe \(contractor\) <{CTR}>: ok$", timeout=60)
    text = evo.all_text(prefs)
    t.ok(SIGN_NICK in text and ENC_NICK in text and "uuid:" not in text,
         "page: the card's certs with their whole Evolution names; no persona named by a UUID",
         text)
    t.eq(buttons(prefs, "Make Card Certificates Available", "Fix S/MIME Settings",
                 "Undo Last Fix"), (False, False, True),
         "after the load: Make Card Certificates Available and Fix disabled, Undo enabled")

    # ---- Undo Last Fix, then Fix S/MIME Settings ------------------------------------------
    evo.click(evo.find(prefs, role="push button", name="Undo Last Fix"))
    page_alert(prefs, "Last fix undone")
    ctr = evo.poll(lambda: not smime(home, "cacmail-ctr").get("SigningCertificate") and
                   smime(home, "cacmail-ctr"), 30, "the contractor's settings restored")
    t.eq((ctr["SigningCertificate"], ctr["EncryptionCertificate"], ctr["SigningAlgorithm"]),
         ("", "", ""), "Undo Last Fix: the previous (empty) settings are back")
    wait_step(prefs, 5, "to do", "after the undo: step 5 to do")
    evo.find(prefs, role="label", pattern=rf"^John Doe \(contractor\) <{CTR}>: stale$",
             timeout=60)
    t.eq(buttons(prefs, "Fix S/MIME Settings", "Undo Last Fix"), (True, False),
         "after the undo: Fix enabled, Undo disabled (nothing left to undo)")
    evo.click(evo.find(prefs, role="push button", name="Fix S/MIME Settings"))
    text = page_alert(prefs, "Fix S/MIME Settings")
    t.ok("Fixed the S/MIME settings of 1 identity" in text, "Fix: one identity fixed", text)
    ctr = evo.poll(lambda: smime(home, "cacmail-ctr").get("SigningCertificate") and
                   smime(home, "cacmail-ctr"), 30, "the contractor's settings written")
    t.eq((ctr["SigningCertificate"], ctr["EncryptionCertificate"]), (SIGN_NICK, ENC_NICK),
         "Fix: the contractor identity points at the card's signing and encryption certs")
    wait_step(prefs, 5, "done", "after the fix: step 5 done")

    # ---- Install DoD Trust Chain... ---------------------------------------------------
    bundle = manifest["bundle"]
    t.eq(step_state(prefs, 3), "to do", "before the trust chain: step 3 to do")
    evo.click(evo.find(prefs, role="push button", name="Install DoD Trust Chain\u2026"))
    choose_file("Choose the DoD PKI Bundle from DISA", "bundle.p7b", "Open")
    dlg = evo.wait_frame("Confirm the DoD Root", timeout=30)
    install = evo.find(dlg, role="push button", name="Install")
    text = evo.all_text(dlg)
    t.ok(all(colon_hex(r) in text for r in bundle["roots"]) and not sensitive(install),
         "trust chain: the dialog lists every root of the bundle with its SHA-256; Install "
         "is disabled until one is chosen", text)
    evo.click(evo.find(dlg, role="radio button", pattern=re.escape(colon_hex(
        bundle["root_sha256"]))))
    evo.poll(lambda: sensitive(install), 30, "Install to be enabled")
    text = evo.all_text(dlg)
    t.ok(f"intermediate CAs under it; {len(bundle['cross']) + len(bundle['other_roots'])} "
         "skipped" in text and "What would change:" in text,
         "trust chain: the chosen root shows what would change, cross-certificate and other "
         "root skipped", text)
    evo.screenshot(os.path.join(ARTIFACTS, "trust-chain.png"), dlg)
    evo.click(install)
    page_alert(prefs, "DoD trust chain installed")
    wait_step(prefs, 3, "done", "after the install: step 3 done (the card's certs chain)")
    listing = run("certutil", "-L", "-d", f"sql:{db}")
    trusted = [line for line in listing.splitlines() if line.rstrip().endswith("C,C,")]
    t.ok(len(trusted) == 1, "trust chain: exactly one cert trusted C,C, (the root)", listing)

    # ---- Directory Settings...: tested before it is saved -------------------------------
    conf = os.path.join(home, ".config", "cacmail", "cacmail.conf")
    uri, base = os.environ["CACMAIL_LDAP_URI"], os.environ["CACMAIL_LDAP_BASE"]

    def fill_directory(ca):
        b = evo.find(prefs, role="push button", name="Directory Settings\u2026")
        evo.poll(lambda: sensitive(b), 60, "the page to be idle")  # it reloads after a job
        evo.click(b)
        d = evo.wait_frame("Directory Settings", timeout=30)
        evo.set_text(evo.find(d, role="text", name="Server URI"), uri)
        evo.set_text(evo.find(d, role="text", name="Search base"), base)
        evo.set_text(evo.find(d, role="text", name="Server CA file"), ca)
        return d

    # the test slapd's certificate is not from the DoD chain: without its CA file the test
    # fails, and the alert names the dialog's field, not a command-line option
    d = fill_directory("")
    evo.click(evo.find(d, role="push button", name="Test and Save"))
    text = page_alert(prefs, "The directory settings were not saved")
    with open(conf) as f:
        t.ok("Nothing was saved" in text and "could not be verified" in text
             and "Server CA file in Directory Settings" in text and "--ca-file" not in text
             and "uri" not in f.read(),
             "Directory Settings: a server certificate that cannot be verified: the alert says "
             "so and names the dialog's field; nothing is saved", text)
    d = fill_directory(os.environ["CACMAIL_LDAP_CA"])
    evo.screenshot(os.path.join(ARTIFACTS, "directory-settings.png"), d)
    evo.click(evo.find(d, role="push button", name="Test and Save"))
    text = page_alert(prefs, "Directory settings saved")
    saved = configparser.ConfigParser(interpolation=None)
    saved.read(conf)
    t.eq((saved["ldap"].get("uri"), saved["ldap"].get("base"), saved["ldap"].get("bind"),
          saved["ldap"].get("email")), (uri, base, "simple", CTR),
         "Directory Settings: tested, then uri, base and bind saved; the other keys kept")
    wait_step(prefs, 4, "done", "after the save: step 4 done")
    wait_step(prefs, 6, "ready", "step 6 ready once the directory is set")
    try:
        evo.poll(lambda: sensitive(evo.find(mail, role="menu item", name=REPUBLISH)), 30,
                 "the menu's Republish to be enabled")
    except AssertionError:
        pass
    t.ok(sensitive(evo.find(mail, role="menu item", name=REPUBLISH)),
         "the mail window's Republish is enabled once the directory is set")
    evo.screenshot(os.path.join(ARTIFACTS, "smart-card-page.png"), prefs)

    # ---- Republish from the page ------------------------------------------------------------
    ctr_user = users["contractor"]
    with open(ctr_user["password_file"]) as f:
        ldap_pw = f.read().strip()
    evo.click(evo.find(prefs, role="push button", name=REPUBLISH))
    dlg = evo.wait_frame("Address List Password", timeout=60)
    t.ok(ctr_user["dn"] in evo.all_text(dlg), "Republish: the LDAP password is asked for "
         "the user's entry")
    evo.set_text(evo.find(dlg, role="password text"), ldap_pw)
    evo.click(evo.find(dlg, role="push button", name="OK"))
    dlg = evo.wait_frame("Smart Card PIN", timeout=60)
    t.ok(TOKEN in evo.all_text(dlg), "Republish: our PIN dialog names the card")
    evo.screenshot(os.path.join(ARTIFACTS, "pin-dialog.png"), dlg)
    progress = evo.find(mail, pattern=r"Republishing certificates to GAL: read card \(step 2 "
                        r"of 5\)", timeout=30)
    t.ok(progress is not None, "Republish: the status bar shows the progress (step 2 of 5)")
    evo.set_text(evo.find(dlg, role="password text"), PIN)
    evo.click(evo.find(dlg, role="push button", name="OK"))
    # PIV asks for the PIN again for each signature: NSS asks through Evolution's prompt
    deadline = time.time() + 60
    done = None
    prompts = 0
    while time.time() < deadline and done is None:
        for w in evo.windows():
            if w.name == "Enter password":
                t.ok(evo.find_all(mail, pattern=r"Republishing certificates to GAL: sign "
                                  r"\(step 3 of 5\)", limit=1),
                     "Republish: Evolution's own PIN prompt comes for the signature "
                     "(step 3 of 5)")
                evo.set_text(evo.find(w, role="password text"), PIN)
                evo.click(evo.find(w, role="push button", name="OK"))
                prompts += 1
        done = (evo.find_all(prefs, role="label", pattern=r"^(Certificates republished|"
                             r"Republishing to the address list \(GAL\) failed)",
                             showing=True, limit=1) or [None])[0]
        time.sleep(0.3)
    t.ok(prompts <= 1, "Republish: at most one more PIN prompt (the signature's)", prompts)
    text = evo.all_text(evo.ancestor(done, "info bar")) if done else ""
    t.ok(done is not None and done.name.startswith("Certificates republished"),
         "Republish from the page: the page's alert says the certificates were republished",
         text)
    certs, blobs = read_entry(ctr_user["dn"])
    card_dir = os.path.join(pki, "cards", "contractor")
    t.eq(certs, [pem_b64(os.path.join(card_dir, "5 - Key_Mgmt.crt")),
                 pem_b64(os.path.join(card_dir, "4 - Dig_Sig.crt"))],
         "Republish: slapd holds the card's encryption cert, then its signing cert")
    t.eq(len(blobs), 1, "Republish: slapd holds one userSMIMECertificate")
    published = (certs, blobs)
    evo.screenshot(os.path.join(ARTIFACTS, "republished.png"), prefs)

    # ---- Import Recovered Key... ---------------------------------------------------------
    p12 = "contractor-encryption-old-aes.p12"
    with open(os.path.join(pki, "escrow", p12), "rb") as src, \
            open(os.path.join(home, p12), "wb") as dst:
        dst.write(src.read())
    evo.click(evo.find(prefs, role="push button", name="Import Recovered Key\u2026"))
    chooser = evo.wait_frame("Import Recovered Key")
    cell = evo.find(chooser, role="table cell", name=p12, timeout=30)
    table = cell.parent
    while table.getRoleName() not in ("table", "tree table"):
        table = table.parent
    table.querySelection().selectChild(cell.getIndexInParent())
    evo.click(evo.find(chooser, role="push button", name="Import"))
    pw = evo.wait_frame("Recovered Key Password")
    t.ok(p12 in evo.all_text(pw), "Import: the password dialog names the file")
    evo.set_text(evo.find(pw, role="password text"), "escrow-pass")
    evo.click(evo.find(pw, role="push button", name="OK"))
    evo.find(prefs, role="label", pattern="Recovered keys imported", timeout=60)
    line = evo.find(prefs, role="label", pattern=r"^Recovered key, expired 2025-08-31: "
                    r"CN=DOE\.JOHN\.QUINCY\.1234567890,OU=CONTRACTOR", timeout=60)
    t.ok(line is not None, "Import: the escrowed key is imported and listed as a recovered key")
    text = evo.all_text(prefs)
    t.ok("uuid:" not in text and "\nearlier card" not in text,
         "page: the recovered (earlier card's) key is shown under its persona, not as a "
         "persona of its own", text)
    keys = run("certutil", "-K", "-d", f"sql:{db}")
    t.ok("Recovered key, expired 2025-08-31" in keys,
         "Import: the key is in Evolution's database", keys)

    evo.click(evo.find(prefs, role="push button", name="Close"))
    evo.poll(lambda: "Evolution Preferences" not in [w.name for w in evo.windows()], 30,
             "the Preferences window to close")

    # ---- a card swap: the reservist card has the same NSS nicknames ---------------------
    card(0, "remove")
    card(1, "insert")
    alert = evo.find(mail, role="label", pattern=r"^Smart card inserted: .*\(uniformed "
                     r"service\): " + MIL.replace(".", r"\."), timeout=60)
    text = evo.all_text(evo.ancestor(alert, "info bar"))
    mil = evo.poll(lambda: smime(home, "cacmail-mil").get("SigningCertificate") and
                   smime(home, "cacmail-mil"), 30, "the reservist's settings written")
    t.eq((mil["SigningCertificate"], mil["EncryptionCertificate"]), (SIGN_NICK, ENC_NICK),
         "card swap: the reservist identity is pointed at the inserted card")
    t.ok(f"Mail from {MIL} is now signed and encrypted with the inserted card" in text,
         "card swap: the alert says so", text)
    t.ok(f"Removed: {TOKEN} (contractor): {CTR}." in text,
         "card swap: the alert names the card that was removed", text)
    t.ok(f"{CTR}: the signing certificate '{SIGN_NICK}' is not for {CTR}" in text,
         "card swap: the alert warns that the contractor's settings now reach the "
         "reservist's card (same nicknames)", text)
    evo.screenshot(os.path.join(ARTIFACTS, "card-inserted.png"), mail)
    card(1, "remove")
    card(0, "insert")
    line = evo.find(mail, role="label", pattern=r"^Smart card inserted: .*\(contractor\)",
                    timeout=60)
    t.ok(line is not None, "card swap back: the contractor card is announced")

    # ---- Republish Certificates to GAL from the mail window: the failures --------------
    # a wrong password first: the error and its hint in an alert, nothing written
    evo.click(evo.find(mail, role="menu item", name=REPUBLISH))
    dlg = evo.wait_frame("Address List Password", timeout=60)
    evo.set_text(evo.find(dlg, role="password text"), "not-the-password")
    evo.click(evo.find(dlg, role="push button", name="OK"))
    failed = evo.find(mail, role="label", pattern=r"^Republishing to the address list "
                      r"\(GAL\) failed", timeout=60)
    text = evo.all_text(evo.ancestor(failed, "info bar"))
    t.ok("refused the password" in text and "Nothing was written" in text,
         "Republish, wrong password: an error alert says what failed and that nothing "
         "was written", text)
    t.eq(read_entry(ctr_user["dn"]), published, "Republish, wrong password: entry unchanged")
    evo.click(evo.find(evo.ancestor(failed, "info bar"), role="push button", name="Close"))
    evo.poll(lambda: not evo.find_all(mail, role="label", pattern=r"^Republishing to the "
                                      r"address list \(GAL\) failed", showing=True,
                                      limit=1), 30, "the error alert to close")

    def available_again():
        evo.poll(lambda: evo.find_all(mail, role="menu item", name=REPUBLISH, limit=1)[0]
                 .getState().contains(pyatspi.STATE_SENSITIVE), 30,
                 "the action to be available again")

    def failure_alerts():
        return evo.find_all(mail, role="label", pattern=r"^Republishing to the address list "
                            r"\(GAL\) failed", showing=True, limit=1)

    def up_to_pin_dialog():
        available_again()
        evo.click(evo.find(mail, role="menu item", name=REPUBLISH))
        d = evo.wait_frame("Address List Password", timeout=60)
        evo.set_text(evo.find(d, role="password text"), ldap_pw)
        evo.click(evo.find(d, role="push button", name="OK"))
        return evo.wait_frame("Smart Card PIN", timeout=60)

    # no address list server: the action is disabled (cacmail.conf is watched)
    os.rename(conf, conf + ".away")
    try:
        evo.poll(lambda: not sensitive(evo.find(mail, role="menu item", name=REPUBLISH)), 30,
                 "the action to be disabled")
    except AssertionError:
        pass
    t.ok(not sensitive(evo.find(mail, role="menu item", name=REPUBLISH)),
         "Republish, cacmail.conf gone: the mail window's action is disabled")
    os.rename(conf + ".away", conf)

    # the PIN dialog cancelled: the run stops quietly, nothing is written
    dlg = up_to_pin_dialog()
    evo.click(evo.find(dlg, role="push button", name="Cancel"))
    available_again()
    time.sleep(1)
    t.ok(not failure_alerts() and not evo.find_all(mail, role="label", pattern=r"^Certificates "
                                                   r"republished", showing=True, limit=1),
         "Republish, PIN dialog cancelled: no alert, the action is available again")
    t.eq(read_entry(ctr_user["dn"]), published,
         "Republish, PIN dialog cancelled: entry unchanged")

    # a wrong PIN: the alert says the card refused it and that nothing was written
    dlg = up_to_pin_dialog()
    evo.set_text(evo.find(dlg, role="password text"), "000000")
    ok_button = evo.find(dlg, role="push button", name="OK")
    evo.poll(lambda: ok_button.getState().contains(pyatspi.STATE_SENSITIVE), 10,
             "OK to take the PIN")
    evo.click(ok_button)
    # the alert bar shows one alert at a time and reuses its labels: wait for this one's text
    def pin_alert():
        for lab in failure_alerts():
            txt = evo.all_text(evo.ancestor(lab, "info bar"))
            if "PIN" in txt:
                return lab, txt
        return None

    failed, text = evo.poll(pin_alert, 60, "the wrong-PIN alert")
    t.ok("refused the PIN" in text and "Nothing was written" in text and "63C" not in text,
         "Republish, wrong PIN: the alert says the card refused the PIN, in words, and that "
         "nothing was written", text)
    t.eq(read_entry(ctr_user["dn"]), published, "Republish, wrong PIN: entry unchanged")
    evo.click(evo.find(evo.ancestor(failed, "info bar"), role="push button", name="Close"))
    evo.poll(lambda: not failure_alerts(), 30, "the error alert to close")

    # ---- the card is removed ------------------------------------------------------------
    card(0, "remove")
    gone = evo.find(mail, role="label", pattern=r"^Smart card removed: .*\(contractor\)",
                    timeout=60)
    text = evo.all_text(evo.ancestor(gone, "info bar"))
    t.ok(f"{CTR}: the signing certificate '{SIGN_NICK}' is not in the NSS database" in text,
         "card removed: the alert says the contractor's certificates are gone with it", text)

    # ---- nothing of ours in Evolution's output, never the PIN ------------------------------
    log = evo.read_log()
    ours = [line for line in log.splitlines() if "cacmail" in line.lower()]
    t.eq(ours, [], "Evolution's output has no warning or message of ours")
    # what Evolution 3.46 prints anyway under AT-SPI (the same without the module)
    known = ("gdk_window_get_window_type: assertion",
             "invalid cast from 'GtkToplevelAccessible' to 'GtkAccessible'",
             "gtk_accessible_get_widget: assertion")
    other = [line for line in log.splitlines()
             if ("-WARNING **" in line or "-CRITICAL **" in line)
             and not any(k in line for k in known)]
    t.eq(other, [], "Evolution's output has no other warning or critical")
    t.ok(PIN not in log and ldap_pw not in log, "the PIN and the password are not in "
         "Evolution's output")


if __name__ == "__main__":
    if len(sys.argv) > 3 and sys.argv[1] == "--inside":
        inside(sys.argv[2], sys.argv[3])
    else:
        outside()
