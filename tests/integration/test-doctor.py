#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""`cacmail doctor` on a sandbox HOME with Evolution's NSS database and identity (a real
evolution-source-registry, with-eds) and a Thunderbird profile's, the virtual card (with-pcscd)
and the test slapd (with-slapd): each finding is provoked, then fixed by running the cacmail
command its hint names, after which doctor no longer reports it; exit 7 while a problem is
found, 0 with none; the JSON is exactly {"problems": [problem...]} in the pick problem shape;
pcscd absent; a card removed; a Flatpak Thunderbird without the pcsc socket; certificates
expiring within 30 days (--at); --forget removes the card cache and lists it."""
import glob
import json
import os
import re
import subprocess
import sys

from cmtest import (CACMAIL, SOURCE, Tap, make_pki, need, sandbox_home, schema_errors, skip,
                    tmpdir)

HARNESS = os.path.join(SOURCE, "tests", "harness")
OPENSC = "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so"
CTR = "john.q.doe.ctr@mail.mil"
PROBLEM_KEYS = ["code", "severity", "message", "hint", "certs"]


def doctor(*args, env=None):
    p = subprocess.run([CACMAIL, "doctor", *args], capture_output=True, text=True, env=env,
                       stdin=subprocess.DEVNULL, timeout=120)
    return p


# every document doctor --json printed that docs/cacmail.schema.json refuses, with its errors
SCHEMA_BAD = []


def report(*args, env=None):
    """(exit status, {code: [problem...]}, the document) of doctor --json; each document is
    validated against docs/cacmail.schema.json (SCHEMA_BAD)."""
    p = doctor("--json", *args, env=env)
    try:
        doc = json.loads(p.stdout)
    except ValueError:
        return p.returncode, {}, {"stdout": p.stdout, "stderr": p.stderr}
    errors = schema_errors(doc)
    if errors:
        SCHEMA_BAD.append((doc, errors))
    codes = {}
    for prob in doc.get("problems", []):
        codes.setdefault(prob["code"], []).append(prob)
    return p.returncode, codes, doc


def shape_ok(doc):
    return (list(doc) == ["problems"] and isinstance(doc["problems"], list)
            and all(list(p) == PROBLEM_KEYS and p["severity"] in ("error", "warning", "info")
                    and all(re.fullmatch(r"[0-9a-f]{64}", c) for c in p["certs"])
                    for p in doc["problems"]))


def outside():
    for tool in ("certutil", "modutil", "pcscd", "unshare", "openssl", "dbus-run-session"):
        need(tool)
    if not os.path.exists("/usr/sbin/slapd"):
        skip("slapd is not installed (scripts/test installs it)")
    if not glob.glob("/usr/lib/pcsc/drivers/serial/libifdvpcd.so*") or not os.path.exists(OPENSC):
        skip("vsmartcard-vpcd or opensc-pkcs11 is not installed (scripts/test installs them)")
    if not os.path.exists("/usr/libexec/evolution-source-registry"):
        skip("evolution-data-server is not installed (scripts/test installs it)")
    if subprocess.run([CACMAIL, "evolution", "--help"], capture_output=True).returncode != 0:
        skip("cacmail was built without evolution-data-server-dev")
    if os.geteuid() != 0:
        skip("the pcscd harness needs root for its mount namespace")
    with tmpdir() as tmp:
        pki, _ = make_pki(tmp)
        home = sandbox_home(tmp, CTR)
        nomods = os.path.join(tmp, "no-p11kit-modules")
        os.makedirs(nomods)
        env = dict(os.environ, TMPDIR=tmp, CACMAIL_P11KIT_MODULE_DIRS=nomods, HOME=home,
                   XDG_CONFIG_HOME=os.path.join(home, ".config"),
                   XDG_DATA_HOME=os.path.join(home, ".local", "share"),
                   XDG_CACHE_HOME=os.path.join(home, ".cache"))
        env.pop("CACMAIL_STATE_DIR", None)
        env.pop("DBUS_SESSION_BUS_ADDRESS", None)
        cmd = [os.path.join(HARNESS, "with-pcscd"), "--card", os.path.join(pki, "cards",
                                                                          "contractor"), "--",
               os.path.join(HARNESS, "with-slapd"), "--pki", pki, "--",
               os.path.join(HARNESS, "with-eds"), "--home", home, "--",
               sys.executable, os.path.abspath(__file__), "--inside", pki, tmp]
        rc = subprocess.run(cmd, env=env).returncode
        if rc == 77:
            skip("a harness cannot run here (needs root, namespaces, slapd, EDS)")
        sys.exit(rc)


if len(sys.argv) < 4 or sys.argv[1] != "--inside":
    outside()

# ---- inside the harnesses: HOME and XDG_* are the sandbox's (with-eds) ----------------------
PKI, TMP = sys.argv[2], sys.argv[3]
HOME = os.environ["HOME"]
EVO = os.path.join(HOME, ".pki", "nssdb")
PROF = os.path.join(HOME, ".thunderbird", "abcd1234.default")
CONF = os.path.join(os.environ["XDG_CONFIG_HOME"], "cacmail", "cacmail.conf")
with open(os.path.join(PKI, "manifest.json")) as f:
    M = json.load(f)
BUNDLE = os.path.join(PKI, M["bundle"]["path"])
URI, BASE = os.environ["CACMAIL_LDAP_URI"], os.environ["CACMAIL_LDAP_BASE"]
t = Tap()
VCARD = [os.environ["CACMAIL_VCARD"], "--control",
         os.path.join(os.environ["CACMAIL_VCARD_CONTROL_DIR"], "card0.sock"), "--send"]


def run(*args):
    p = subprocess.run(list(args), capture_output=True, text=True, stdin=subprocess.DEVNULL,
                       timeout=120)
    return p


def mine(codes, code, where):
    """The problems of @code whose message names @where (a database, a profile; "" for any)."""
    return [p for p in codes.get(code, []) if where in p["message"]]


LAST = {}


def cycle(code, where, command, what):
    """Provoked: @code about @where reported (in the last report: nothing changed since), its
    hint naming @command; fixed by running it; then doctor no longer reports it."""
    rc, codes, doc = LAST["report"]
    found = mine(codes, code, where)
    t.ok(rc == 7 and found, f"{what}: doctor reports {code} (exit 7)", doc)
    shown = " ".join(command[:4])
    t.ok(found and all(shown in p["hint"] for p in found), f"... its hint names '{shown}'",
         [p["hint"] for p in found])
    p = run(CACMAIL, *command[1:])
    LAST["report"] = rc, codes, doc = report()
    t.ok(not mine(codes, code, where), f"... after running it (exit {p.returncode}), it is gone",
         (p.stdout + p.stderr, doc))
    return codes


# ---- no pcscd at all: its socket names nothing ------------------------------------------------
rc, codes, doc = report(env=dict(os.environ, PCSCLITE_CSOCK_NAME=os.path.join(TMP, "none")))
t.ok(rc == 7 and "pcscd-not-running" in codes and shape_ok(doc),
     "no pcscd: pcscd-not-running, exit 7, {\"problems\": [...]} in the pick shape", doc)
hint = codes.get("pcscd-not-running", [{}])[0].get("hint", "")
t.ok("systemctl start pcscd.socket" in hint, "... its hint says how to start pcscd", hint)
msg = codes.get("pcscd-not-running", [{}])[0].get("message", "")
t.ok(msg == "pcscd is not running", "... and its message says what is wrong, without repeating "
     "the fix", msg)

# ---- the first report: a new profile --------------------------------------------------------
rc, codes, doc = report()
t.ok(rc == 7 and shape_ok(doc), "a new profile: exit 7, JSON in the pick problem shape", doc)
t.ok(not schema_errors(doc), "... and it matches docs/cacmail.schema.json (doctor)",
     schema_errors(doc))
want = {"card-module-not-registered", "client-chain-untrusted", "directory-not-set",
        "evolution-settings-stale", "thunderbird-settings-stale"}
t.ok(want <= set(codes) and "pcscd-not-running" not in codes and "no-card" not in codes,
     "... it finds the unregistered module, missing trust, directory and stale settings",
     sorted(codes))
hints = [p["hint"] for p in doc.get("problems", [])]
t.ok(hints and not any(re.search(r"certutil|modutil|pk12util", h) for h in hints)
     and all("cacmail" in h for p in doc["problems"] for h in [p["hint"]]
             if p["code"] not in ("cert-expires-soon",)),
     "every hint names cacmail's own command, none certutil/modutil/pk12util", hints)
p = doctor()
t.ok(p.returncode == 7 and "problems:" in p.stdout and "fix: " in p.stdout
     and re.search(r"pcscd: \d+ readers?, 1 card read", p.stdout),
     "text report: what was checked, each problem with its fix, exit 7", p.stdout + p.stderr)

LAST["report"] = rc, codes, doc
# ---- the card module, in each database --------------------------------------------------------
cycle("card-module-not-registered", EVO, ["cacmail", "nss", "register", "--client", "evolution"],
      "Evolution without the card module")
cycle("card-module-not-registered", PROF, ["cacmail", "nss", "register", "--nssdb", PROF],
      "the Thunderbird profile without the card module")
# a second entry for OpenSC, as another tool may add one (pkcs11-register, by hand)
with open(os.path.join(PROF, "pkcs11.txt"), "a") as f:
    f.write(f'\nlibrary={OPENSC}\nname="OpenSC again"\n')
LAST["report"] = rc, codes, doc = report()
hint = codes.get("card-module-registered-twice", [{}])[0].get("hint", "")
t.ok(f"cacmail nss register --nssdb {PROF}" in hint and "unregister" not in hint,
     "OpenSC added a second time: the hint is one command, cacmail nss register --nssdb PROFILE",
     hint)
codes = cycle("card-module-registered-twice", PROF, ["cacmail", "nss", "register", "--nssdb", PROF],
              "OpenSC registered twice (another tool added it again)")
listed = run(CACMAIL, "nss", "list", "--nssdb", PROF, "--json").stdout
mods = json.loads(listed)["databases"][0]["modules"] if listed.startswith("{") else []
t.ok("card-module-not-registered" not in codes and [(m["kind"], m["friendly"]) for m in mods]
     == [("opensc", True)], "... the module is registered there once, friendly (nss list)",
     (sorted(codes), mods))

# ---- the trust chain in each database --------------------------------------------------------
prob = codes.get("client-chain-untrusted", [])
t.ok(len(prob) == 2 and all(p["certs"] for p in prob),
     "client-chain-untrusted once per database, naming the picked certificates", prob)
cycle("client-chain-untrusted", EVO, ["cacmail", "nss", "trust", "--client", "evolution", BUNDLE],
      "Evolution's database without the DoD chain")
cycle("client-chain-untrusted", PROF, ["cacmail", "nss", "trust", "--nssdb", PROF, BUNDLE],
      "the Thunderbird profile without the DoD chain")

# ---- stale S/MIME settings in every client -------------------------------------------------
cycle("evolution-settings-stale", "", ["cacmail", "evolution", "fix"],
      "Evolution's identity without certificates")
cycle("thunderbird-settings-stale", PROF, ["cacmail", "thunderbird", "--profile", PROF, "fix"],
      "the Thunderbird identity without certificates")

# ---- the directory: unset, unverifiable TLS, then set by cacmail setup -----------------------
os.makedirs(os.path.dirname(CONF), exist_ok=True)
with open(CONF, "w") as f:
    f.write(f"[ldap]\nuri={URI}\nbase={BASE}\n")
rc, codes, doc = report()
msg = codes.get("directory-unreachable", [{}])[0].get("message", "")
t.ok("directory-unreachable" in codes and "directory-not-set" not in codes and URI in msg,
     "settings whose server certificate cannot be verified: directory-unreachable", doc)
os.unlink(CONF)
rc, codes, doc = report()
hint = codes.get("directory-not-set", [{}])[0].get("hint", "")
t.ok("directory-not-set" in codes and "cacmail setup" in hint and "--uri" in hint,
     "no settings: directory-not-set, hint cacmail setup --uri --base --bind", doc)
p = run(CACMAIL, "setup", "--uri", URI, "--base", BASE, "--bind", "simple", "--ca-file",
        os.environ["CACMAIL_LDAP_CA"], "--yes")
rc, codes, doc = report()
t.ok(not ({"directory-not-set", "directory-unreachable"} & set(codes)),
     f"... after cacmail setup (exit {p.returncode}), the directory is set and answers",
     (p.stdout[-2000:], p.stderr, doc))

# ---- nothing left ------------------------------------------------------------------------------
t.ok(rc == 0 and doc == {"problems": []}, "everything fixed: exit 0, {\"problems\": []}", doc)
p = doctor()
t.ok(p.returncode == 0 and "No problem found." in p.stdout, "text: No problem found., exit 0",
     p.stdout + p.stderr)

# ---- certificates expiring within 30 days ---------------------------------------------------
from cryptography import x509  # noqa: E402

sig = x509.load_pem_x509_certificate(open(os.path.join(PKI, "cards", "contractor",
                                                       "4 - Dig_Sig.crt"), "rb").read())
at = (sig.not_valid_after - __import__("datetime").timedelta(days=10)).strftime(
    "%Y-%m-%dT%H:%M:%SZ")
rc, codes, doc = report("--at", at)
soon = [p for p in codes.get("cert-expires-soon", []) if "signing" in p["message"]]
t.ok(rc == 7 and soon and soon[0]["severity"] == "warning" and "in 10 days" in soon[0]["message"]
     and len(soon[0]["certs"]) == 1, "--at 10 days before the signing cert expires: "
     "cert-expires-soon (warning, the cert named)", codes.get("cert-expires-soon"))

# ---- the card removed, then inserted again -------------------------------------------------
run(*VCARD, "remove")
import time  # noqa: E402

for _ in range(50):
    rc, codes, doc = report()
    if "no-card" in codes:
        break
    time.sleep(0.2)
hint = codes.get("no-card", [{}])[0].get("hint", "")
t.ok(rc == 7 and "no-card" in codes and hint == "Insert your CAC or PIV card",
     "card removed: no-card, in status's words", doc)
run(*VCARD, "insert")
for _ in range(50):
    rc, codes, doc = report()
    if "no-card" not in codes:
        break
    time.sleep(0.2)
t.ok(rc == 0, "card inserted again: no problem", doc)

# ---- a Flatpak Thunderbird without the pcsc socket ------------------------------------------
flat = os.path.join(HOME, ".var", "app", "org.mozilla.Thunderbird", ".thunderbird")
os.makedirs(os.path.join(flat, "x.default"))
with open(os.path.join(flat, "profiles.ini"), "w") as f:
    f.write("[Profile0]\nName=default\nIsRelative=1\nPath=x.default\nDefault=1\n")
rc, codes, doc = report()
hint = codes.get("sandboxed-client-no-pcscd", [{}])[0].get("hint", "")
t.ok(rc == 7 and "flatpak override --user --socket=pcsc org.mozilla.Thunderbird" in hint,
     "a Flatpak Thunderbird: sandboxed-client-no-pcscd, hint flatpak override", doc)
# what `flatpak override --user --socket=pcsc` writes (flatpak is not installed here)
over = os.path.join(os.environ["XDG_DATA_HOME"], "flatpak", "overrides")
os.makedirs(over)
with open(os.path.join(over, "org.mozilla.Thunderbird"), "w") as f:
    f.write("[Context]\nsockets=pcsc;\n")
rc, codes, doc = report()
t.ok("sandboxed-client-no-pcscd" not in codes, "... with the override: gone", doc)

# ---- other cards, each in a fresh pcscd (with-pcscd nests) -----------------------------------
import shutil  # noqa: E402


def doctor_with_cards(*cards):
    out = os.path.join(TMP, "nested.json")
    cmd = [os.path.join(HARNESS, "with-pcscd")]
    for c in cards:
        cmd += ["--card", c]
    p = subprocess.run(cmd + ["--", "sh", "-c", f'"$0" doctor --json > "{out}"', CACMAIL],
                       capture_output=True, text=True, timeout=120)
    try:
        doc = json.load(open(out))
    except ValueError:
        doc = {"problems": [], "harness": p.stdout + p.stderr}
    return p.returncode, {q["code"]: q for q in doc["problems"]}, doc


noauth = os.path.join(TMP, "no-piv-auth")
shutil.copytree(os.path.join(PKI, "cards", "contractor"), noauth)
for f in glob.glob(os.path.join(noauth, "3 - PIV_Auth.*")):
    os.unlink(f)
rc, codes, doc = doctor_with_cards(noauth)
t.ok(rc == 7 and "piv-auth-missing" in codes
     and "card maintenance portal" in codes["piv-auth-missing"]["hint"],
     "a card without its PIV Authentication certificate: piv-auth-missing, activate it", doc)
rc, codes, doc = doctor_with_cards(os.path.join(PKI, "cards", "contractor"),
                                   os.path.join(PKI, "cards", "reservist-same-email"))
t.ok(rc == 7 and "email-shared-by-personas" in codes
     and len(codes["email-shared-by-personas"]["certs"]) >= 2,
     "two persona cards with one address: email-shared-by-personas, naming the certificates",
     doc)

# ---- --forget -----------------------------------------------------------------------------------
cache = os.path.join(os.environ["XDG_CACHE_HOME"], "cacmail")
cached = sorted(glob.glob(os.path.join(cache, "**", "*"), recursive=True))
cached = [c for c in cached if os.path.isfile(c)]
p = doctor("--forget")
t.ok(p.returncode == 0 and cached and all(f"removed {c}" in p.stdout for c in cached)
     and not os.path.exists(cache), "--forget removes the card cache and lists each file",
     (cached, p.stdout, p.stderr))
p = doctor("--forget", "--json")
t.ok(p.returncode == 0 and json.loads(p.stdout) == {"removed": []}
     and not schema_errors(json.loads(p.stdout)),
     "--forget --json again: {\"removed\": []} (docs/cacmail.schema.json: doctor_forget)",
     p.stdout + p.stderr)
p = doctor("frob")
t.eq(p.returncode, 2, "an argument: usage error (exit 2)")
t.ok(not SCHEMA_BAD, "every doctor --json document of this test matches docs/cacmail.schema.json",
     SCHEMA_BAD[:2])

t.done()
