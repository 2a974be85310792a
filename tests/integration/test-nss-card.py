#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The card through NSS, as the mail clients see it: our virtual card (tests/harness/with-pcscd)
read by OpenSC registered in a database by `cacmail nss register`; each cert listed with its
client nickname "token:label" and dbKey; two persona cards give the same nicknames (warned);
`nss trust` reports every card cert's chain. Then a profile made by Thunderbird itself
(thunderbird --headless -CreateProfile, run once): found through profiles.ini, registered, and
refused while Thunderbird runs."""
import glob
import json
import os
import signal
import subprocess
import time

from cmtest import CACMAIL, SOURCE, Tap, make_pki, need, schema_errors, skip, tmpdir

HARNESS = os.path.join(SOURCE, "tests", "harness", "with-pcscd")
for tool in ("certutil", "modutil", "pcscd", "unshare", "openssl", "thunderbird"):
    need(tool)
if not glob.glob("/usr/lib/pcsc/drivers/serial/libifdvpcd.so*"):
    skip("vsmartcard-vpcd is not installed (scripts/test installs it)")
if not os.path.exists("/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so"):
    skip("opensc-pkcs11 is not installed (scripts/test installs it)")
if os.geteuid() != 0:
    skip("the pcscd harness needs root for its mount namespace")

t = Tap()


def env_for(tmp):
    e = dict(os.environ)
    e.update(HOME=os.path.join(tmp, "home"), XDG_DATA_HOME=os.path.join(tmp, "data"),
             XDG_CONFIG_HOME=os.path.join(tmp, "config"), XDG_CACHE_HOME=os.path.join(tmp, "cache"))
    e.pop("CACMAIL_STATE_DIR", None)
    os.makedirs(e["HOME"], exist_ok=True)
    return e


def modules(path):
    out = subprocess.run(["modutil", "-dbdir", f"sql:{path}", "-list"], capture_output=True,
                         text=True).stdout
    return [l.split(":", 1)[1].strip() for l in out.splitlines() if "library name:" in l]


def with_cards(env, cards, *args):
    cmd = [HARNESS]
    for c in cards:
        cmd += ["--card", c]
    return subprocess.run(cmd + ["--", CACMAIL, *args], capture_output=True, text=True, env=env,
                          timeout=120)


with tmpdir() as tmp:
    env = env_for(tmp)
    pki, m = make_pki(tmp)
    db = os.path.join(tmp, "db")
    os.makedirs(db)
    subprocess.run(["certutil", "-N", "--empty-password", "-d", f"sql:{db}"], check=True)
    p = subprocess.run([CACMAIL, "nss", "register", "--module", "opensc", "--nssdb", db],
                       capture_output=True, text=True, env=env)
    t.ok(p.returncode == 0 and modules(db) == ["/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so"],
         "OpenSC registered", p.stdout + p.stderr)
    contractor = os.path.join(pki, "cards", "contractor")
    reservist = os.path.join(pki, "cards", "reservist")
    p = with_cards(env, [contractor], "nss", "list", "--nssdb", db)
    out = p.stdout
    tok = "DOE.JOHN.QUINCY.1234567890"
    for label, role in (("Certificate for PIV Authentication", "piv-auth"),
                        ("Certificate for Digital Signature", "email-signing"),
                        ("Certificate for Key Management", "email-encryption")):
        t.ok(f"{tok}:{label}\n      {role}" in out, f"card cert listed as {tok}:{label} ({role})",
             out + p.stderr)
    t.ok(out.count("dbKey ") >= 4, "each card cert has its dbKey", out)
    t.ok("same nickname" not in out, "one card: no nickname warning")

    # registered "friendly": NSS lists the card's certs without asking for the PIN (a module
    # added the plain way makes certutil prompt, and fail with no terminal)
    pin_free = os.path.join(tmp, "pin-free.sh")
    with open(pin_free, "w") as f:
        f.write(f"exec certutil -L -d sql:{db} -h all </dev/null\n")
    p = subprocess.run([HARNESS, "--card", contractor, "--", "sh", pin_free],
                       capture_output=True, text=True, env=env, timeout=120)
    t.ok(p.returncode == 0 and f"{tok}:Certificate for Digital Signature" in p.stdout
         and "input terminal" not in p.stdout + p.stderr and "Password" not in p.stdout,
         "card certs listed by NSS without a PIN prompt (slots registered friendly)",
         p.stdout + p.stderr)
    p = with_cards(env, [contractor], "nss", "list", "--nssdb", db, "--json")
    doc = json.loads(p.stdout)
    t.eq(schema_errors(doc), [], "nss list --json: matches the schema")
    d = doc["databases"][0]
    byrole = {c["role"]: c for c in d["card_certs"]}
    t.ok(set(byrole) >= {"piv-auth", "email-signing", "email-encryption"}
         and byrole["email-signing"]["nickname"] == f"{tok}:Certificate for Digital Signature"
         and all(c["dbkey"] and c["token"] == tok for c in d["card_certs"]),
         "nss list --json: card certs with token:label nicknames, roles and dbKeys", d)
    t.ok([m_["kind"] for m_ in d["modules"]] == ["opensc"] and d["modules"][0]["library_exists"],
         "nss list --json: the registered module, of kind opensc", d["modules"])
    t.ok(d["client"] == "other" and d["client_pid"] is None and d["warnings"] == [],
         "nss list --json: a database no client uses, no warnings", d)

    p = with_cards(env, [contractor, reservist], "nss", "list", "--nssdb", db)
    t.ok("two inserted cards give" in p.stdout, "two persona cards: same nicknames warned",
         p.stdout + p.stderr)
    p = with_cards(env, [contractor, reservist], "nss", "list", "--nssdb", db, "--json")
    d = json.loads(p.stdout)["databases"][0]
    t.ok(any("same nickname" in w for w in d["warnings"]) and len(d["card_certs"]) >= 6,
         "nss list --json, two persona cards: both cards' certs and the nickname warning", d)

    bundle = os.path.join(tmp, "dod.p7b")
    subprocess.run(["openssl", "crl2pkcs7", "-nocrl", "-certfile",
                    os.path.join(pki, "ca", "root.crt"), "-outform", "DER", "-out", bundle],
                   check=True)
    p = with_cards(env, [contractor], "nss", "trust", "--nssdb", db, bundle)
    t.ok(p.returncode == 0 and "no-issuer" in p.stdout and "fix: add the issuing CA" in p.stdout,
         "root only: every card cert reported with a missing intermediate and the fix",
         p.stdout + p.stderr)
    p7 = os.path.join(tmp, "dod-full.p7b")
    subprocess.run(["openssl", "crl2pkcs7", "-nocrl", "-certfile",
                    os.path.join(pki, "ca", "root.crt"), "-certfile",
                    os.path.join(pki, "ca", "id-ca.crt"), "-certfile",
                    os.path.join(pki, "ca", "email-ca.crt"), "-certfile",
                    os.path.join(pki, "ca", "email-ca-64.crt"), "-outform", "DER", "-out", p7],
                   check=True)
    p = with_cards(env, [contractor], "nss", "trust", "--nssdb", db, p7)
    chains = [l.split()[0] for l in p.stdout.splitlines() if l.startswith("    ")]
    t.ok(p.returncode == 0 and len(chains) >= 4 and set(chains) == {"ok"},
         "with the whole DoD bundle: every card cert chains (ok)", p.stdout + p.stderr)

    # --- a profile made by Thunderbird itself ---
    tb = "/usr/bin/thunderbird"  # checked at the start: the test skips without it
    prof = os.path.join(tmp, "home", ".thunderbird", "cmtest")
    subprocess.run([tb, "--headless", "-CreateProfile", f"cmtest {prof}"], env=env,
                   capture_output=True, timeout=120)
    t.ok(os.path.isdir(prof), "thunderbird -CreateProfile made the profile")
    run = subprocess.Popen([tb, "--headless", "--profile", prof], env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           start_new_session=True)
    deadline = time.time() + 60
    while time.time() < deadline and not (os.path.exists(os.path.join(prof, "cert9.db"))
                                          and os.path.islink(os.path.join(prof, "lock"))):
        time.sleep(0.3)
    t.ok(os.path.exists(os.path.join(prof, "cert9.db")), "Thunderbird made its NSS database")
    p = subprocess.run([CACMAIL, "nss", "register", "--nssdb", prof], capture_output=True,
                       text=True, env=env)
    t.ok(p.returncode == 5 and "Thunderbird is running" in p.stderr,
         "register while this Thunderbird runs: refused (exit 5)", p.stderr)
    os.killpg(run.pid, signal.SIGTERM)
    try:
        run.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(run.pid, signal.SIGKILL)
        run.wait()
    p = subprocess.run([CACMAIL, "nss", "list"], capture_output=True, text=True, env=env)
    t.ok(f"Thunderbird profile cmtest" in p.stdout and f"sql:{prof}" in p.stdout,
         "the profile is found through Thunderbird's own profiles.ini", p.stdout)
    p = subprocess.run([CACMAIL, "nss", "register", "--nssdb", prof], capture_output=True,
                       text=True, env=env)
    t.ok(p.returncode == 0 and "added" in p.stdout, "registered once Thunderbird is closed",
         p.stdout + p.stderr)
    t.eq(len(modules(prof)), 1, "modutil sees one card module in Thunderbird's profile")

t.done()
