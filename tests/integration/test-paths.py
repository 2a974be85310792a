#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""One table, every input path: each scenario of the generated PKI (tests/pki/make-pki,
manifest.json) gives the same picks and problems whether its certificates arrive as card
folders, as loose .crt files, from the cards in readers (`status` over pcscd), from the cards as
NSS tokens (`nss register`, then `republish --dry-run`), or in Evolution (`evolution check`
through a real registry). Loose files may leave a login null with its problem: the manifest
says so per pick ("loose"). The table (scenario x path) is printed as TAP comments.

Outside, the two offline paths run directly; then, per scenario with cards, this script runs
itself inside tests/harness/with-pcscd (the scenario's cards in virtual readers),
with-slapd (an entry per address) and with-eds (a private Evolution registry) and writes what
each device path gave to a JSON file that the outside checks."""
import glob
import json
import os
import subprocess
import sys

from cmtest import CACMAIL, SOURCE, Tap, make_pki, need, schema_errors, skip, tmpdir

HARNESS = os.path.join(SOURCE, "tests", "harness")
OPENSC = "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so"


def expand(pki, inputs):
    """The inputs as loose certificate files: a card folder becomes its .crt files."""
    out = []
    for i in inputs:
        p = os.path.join(pki, i)
        out += sorted(glob.glob(os.path.join(p, "*.crt"))) if os.path.isdir(p) else [p]
    return out


def codes(problems):
    return sorted({p["code"] for p in problems})


def want_for(pick, path):
    w = dict(pick)
    if path == "loose-files":
        w.update(pick.get("loose") or {})
    return w


def problems_match(got, want):
    """Every expected code is there; with none expected, there are none."""
    return set(want) <= set(got) if want else not got


# ---- inside the harnesses: the device paths ---------------------------------------------------

def inside(spec_file):
    """Every run of @spec (scenarios with the same cards, at their own times) on one set of
    harnesses: status, NSS token + republish --dry-run, evolution check."""
    with open(spec_file) as f:
        spec = json.load(f)
    env = dict(os.environ, HOME=spec["home"], XDG_DATA_HOME=os.path.join(spec["home"], "data"),
               XDG_CACHE_HOME=os.path.join(spec["home"], "cache"))

    def cm(*args, **kw):
        return subprocess.run([CACMAIL, *args], capture_output=True, text=True, env=env,
                              timeout=120, **kw)

    def doc(p):
        return json.loads(p.stdout) if p.returncode == 0 else {"error": p.stderr}

    db = os.path.join(spec["home"], ".pki", "nssdb")
    steps = [cm("nss", "register", "--module", "opensc", "--nssdb", db),
             cm("nss", "trust", "--nssdb", db, *spec["ca_files"])]
    with open(os.environ["CACMAIL_LDAP_USERS"]) as f:
        users = {u["email"]: u for u in json.load(f)}
    nss_list = doc(cm("nss", "list", "--json", "--nssdb", db))
    for run in spec["runs"]:
        at, out = run["at"], {"nss_setup": [s.stderr for s in steps if s.returncode != 0],
                              "nss_list": nss_list, "republish": {}}
        out["status"] = doc(cm("status", "--json", "--all", "--no-cache", "--at", at))
        for email in run["emails"]:
            u = users.get(email)
            if u is None:
                out["republish"][email] = {"error": "no directory entry", "rc": None}
                continue
            p = cm("republish", "--dry-run", "--json", "--uri", os.environ["CACMAIL_LDAP_URI"],
                   "--base", os.environ["CACMAIL_LDAP_BASE"], "--ca-file",
                   os.environ["CACMAIL_LDAP_CA"], "--email", email, "--password-file",
                   u["password_file"], "--nssdb", db, "--at", at)
            out["republish"][email] = ({"doc": json.loads(p.stdout), "rc": 0}
                                       if p.returncode == 0
                                       else {"error": p.stderr, "rc": p.returncode})
        out["evolution"] = doc(cm("evolution", "check", "--json", "--nssdb", db, "--at", at))
        if run is spec["runs"][-1] and len(spec["cards"]) > 1:
            # the check named the card to remove: pull the second card, then Fix the first
            # identity
            sock = os.path.join(os.environ["CACMAIL_VCARD_CONTROL_DIR"], "card1.sock")
            subprocess.run([os.environ["CACMAIL_VCARD"], "--control", sock, "--send", "remove"],
                           capture_output=True, timeout=30)
            fix = cm("evolution", "fix", "--json", "--identity", run["first_uid"], "--nssdb", db,
                     "--at", at)
            after = cm("evolution", "check", "--json", "--identity", run["first_uid"],
                       "--nssdb", db, "--at", at)
            out["fix"] = {"rc": fix.returncode, "error": fix.stderr,
                          "after": json.loads(after.stdout) if after.returncode == 0 else None}
        with open(run["out"], "w") as f:
            json.dump(out, f)
    return 0


if len(sys.argv) == 3 and sys.argv[1] == "--inside":
    sys.exit(inside(sys.argv[2]))

# ---- outside -------------------------------------------------------------------------------------

for tool in ("certutil", "pcscd", "unshare", "slapd"):
    if tool == "slapd":
        if not os.path.exists("/usr/sbin/slapd"):
            skip("slapd is not installed (scripts/test installs it)")
        continue
    need(tool)
if not os.path.exists(OPENSC) or not os.path.exists("/usr/libexec/evolution-source-registry"):
    skip("opensc-pkcs11 or evolution-data-server is missing (scripts/test installs them)")
if os.geteuid() != 0:
    skip("the pcscd harness needs root for its mount namespace")
if subprocess.run([CACMAIL, "evolution", "--help"], capture_output=True).returncode != 0:
    skip("cacmail was built without evolution-data-server-dev")

t = Tap()
table = []  # (scenario, email, path, verdict)


def record(scenario, email, path, ok, marked=False):
    """@marked: the manifest expects this path to differ (a loose login left null)."""
    table.append((scenario, email, path, ("same*" if marked else "same") if ok else "DIFFERENT"))
    return ok


def check_pick(s, pick, path, got):
    """A `pick --json`-shaped document against the manifest's pick for @path."""
    w = want_for(pick, path)
    name = f"{s['name']} {pick['email']} [{path}]"
    ok = True
    for k in ("login", "signing", "encryption", "decrypt_only"):
        want = w[k]
        if k == "decrypt_only" and path == "pcscd":
            want = [x for x in want if x in s["_on_cards"]]
        ok &= t.eq(got.get(k), want, f"{name}: {k}")
    ok &= t.ok(problems_match(codes(got.get("problems", [])), w["problems"]),
               f"{name}: problems {w['problems']}", codes(got.get("problems", [])))
    return record(s["name"], pick["email"], path, ok,
                  path == "loose-files" and bool(pick.get("loose")))


def write_source(home, uid, address):
    d = os.path.join(home, ".config", "evolution", "sources")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"{uid}.source"), "w") as f:
        f.write(f"[Data Source]\nDisplayName={uid}\nEnabled=true\nParent=\n\n"
                f"[Mail Identity]\nAddress={address}\nName=John Doe\n\n"
                "[Secure MIME (S/MIME)]\nSigningCertificate=\nEncryptionCertificate=\n"
                "SignByDefault=false\nEncryptByDefault=false\nEncryptToSelf=true\n"
                "SigningAlgorithm=\n")


def device_paths(tmp, pki, m, group, cards):
    """Run the device paths of the scenarios in @group (all with the same @cards) inside one set
    of harnesses; returns {scenario name: what each path gave} (None for a failed run)."""
    tag = "-".join(os.path.basename(c) for c in cards)
    home = os.path.join(tmp, f"home-{tag}")
    os.makedirs(os.path.join(home, ".pki", "nssdb"))
    subprocess.run(["certutil", "-N", "--empty-password", "-d",
                    f"sql:{os.path.join(home, '.pki', 'nssdb')}"], check=True)
    uids = {}
    for s in group:
        for p in s["picks"]:
            if p["email"] not in uids:
                uids[p["email"]] = f"id{len(uids)}"
                write_source(home, uids[p["email"]], p["email"])
    runs = [{"name": s["name"], "at": s["at"], "emails": [p["email"] for p in s["picks"]],
             "first_uid": uids[s["picks"][0]["email"]],
             "out": os.path.join(tmp, f"out-{s['name']}.json")} for s in group]
    spec = {"pki": pki, "home": home, "cards": cards, "runs": runs,
            "ca_files": [os.path.join(pki, c) for c in m["ca_files"]]}
    spec_file = os.path.join(tmp, f"spec-{tag}.json")
    with open(spec_file, "w") as f:
        json.dump(spec, f)
    cmd = [os.path.join(HARNESS, "with-pcscd")]
    for c in cards:
        cmd += ["--card", os.path.join(pki, c)]
    cmd += ["--", os.path.join(HARNESS, "with-slapd"), "--pki", pki, "--",
            os.path.join(HARNESS, "with-eds"), "--home", home, "--", sys.executable,
            os.path.abspath(__file__), "--inside", spec_file]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=600,
                       env=dict(os.environ, TMPDIR=tmp))
    results = {}
    for r in runs:
        ok = p.returncode == 0 and os.path.exists(r["out"])
        t.ok(ok, f"{r['name']}: the device paths ran", None if ok else p.stdout + p.stderr)
        if ok:
            with open(r["out"]) as f:
                results[r["name"]] = json.load(f)
    return results


def check_status(s, got):
    if "error" in got:
        return t.ok(False, f"{s['name']}: status over pcscd", got["error"])
    by_email = {p["email"]: p for p in got.get("picks", [])}
    for pick in s["picks"]:
        check_pick(s, pick, "pcscd", by_email.get(pick["email"], {}))


def check_republish(s, got):
    for pick in s["picks"]:
        w, r = want_for(pick, "nss-token"), got["republish"][pick["email"]]
        name = f"{s['name']} {pick['email']} [nss-token republish]"
        blocking = {"email-shared-by-personas", "persona-id-conflict"} & set(w["problems"])
        if w["signing"] and w["encryption"] and not blocking:
            new = {c["role"]: c["sha256"] for c in r.get("doc", {}).get("new", [])}
            ok = t.ok(r["rc"] == 0, f"{name}: publishes", r.get("error"))
            ok &= t.eq(new.get("email-signing"), w["signing"], f"{name}: signing")
            ok &= t.eq(new.get("email-encryption"), w["encryption"], f"{name}: encryption")
        else:
            why = sorted(blocking) or [c for c in w["problems"] if "cert" in c]
            ok = t.ok(r["rc"] not in (0, None) and any(c in r.get("error", "") for c in why)
                      if why else r["rc"] not in (0, None),
                      f"{name}: refused, naming {why}", r.get("error"))
        record(s["name"], pick["email"], "nss-token", ok)


def check_evolution(s, got):
    if "error" in got["evolution"]:
        return t.ok(False, f"{s['name']}: evolution check", got["evolution"]["error"])
    t.eq(schema_errors(got["evolution"]), [], f"{s['name']}: evolution check --json matches the "
         "schema")
    by_addr = {i["address"]: i for i in got["evolution"]["identities"]}
    nicks = {}
    for d in got["nss_list"].get("databases", []):
        for c in d["card_certs"]:
            nicks.setdefault(c["nickname"], set()).add(c["sha256"])
    for pick in s["picks"]:
        w, i = want_for(pick, "evolution"), by_addr.get(pick["email"], {})
        name = f"{s['name']} {pick['email']} [evolution]"
        got_codes = codes(i.get("problems", []))
        ok = t.ok(problems_match(got_codes, w["problems"]), f"{name}: the picks' problems",
                  got_codes)
        for role in ("signing", "encryption"):
            prop = (i.get("proposed") or {}).get(role)
            shared = f"{role}-nickname-shared" in i.get("reasons", [])
            if shared:
                ok &= t.ok(prop is None and any("remove" in msg for msg in i["messages"]),
                           f"{name}: {role}: a nickname two cards share is not proposed; "
                           "it says which card to remove", i)
            else:
                ok &= t.eq(nicks.get(prop) if prop else None,
                           {w[role]} if w[role] else None, f"{name}: proposed {role}")
        record(s["name"], pick["email"], "evolution", ok)


with tmpdir() as tmp:
    pki, m = make_pki(tmp)
    groups = {}  # the cards of a scenario -> its scenarios: one set of harnesses each
    for s in m["scenarios"]:
        cards = [i for i in s["inputs"] if os.path.isdir(os.path.join(pki, i))]
        s["_on_cards"] = {c["sha256"] for c in m["certs"]
                          if any(c["file"].startswith(card + "/") for card in cards)}
        if not s.get("files_only"):
            for pick in s["picks"]:
                got = json.loads(subprocess.run(
                    [CACMAIL, "pick", "--json", "--at", s["at"], "--email", pick["email"],
                     *[os.path.join(pki, i) for i in s["inputs"]]],
                    capture_output=True, text=True, check=True).stdout)
                check_pick(s, pick, "card-folder", got)
        for pick in [] if s.get("folders_only") else s["picks"]:
            got = json.loads(subprocess.run(
                [CACMAIL, "pick", "--json", "--at", s["at"], "--email", pick["email"],
                 *expand(pki, s["inputs"])], capture_output=True, text=True, check=True).stdout)
            check_pick(s, pick, "loose-files", got)
        if cards and not s.get("files_only"):
            groups.setdefault(tuple(cards), []).append(s)
    for cards, group in groups.items():
        results = device_paths(tmp, pki, m, group, list(cards))
        for s in group:
            got = results.get(s["name"])
            if got is None:
                continue
            t.eq(got["nss_setup"], [], f"{s['name']}: nss register and nss trust")
            check_status(s, got["status"])
            check_republish(s, got)
            check_evolution(s, got)
            if "fix" in got:
                f = got["fix"]
                after = (f["after"] or {"identities": [{}]})["identities"][0]
                t.ok(f["rc"] == 0 and after.get("state") == "ok"
                     and after.get("current", {}).get("signing") is not None,
                     f"{s['name']}: with the other persona's card removed, Fix sets the first "
                     "identity and check calls it ok", f)

    paths = ["card-folder", "loose-files", "pcscd", "nss-token", "evolution"]
    print("# the table: scenario / address x path (same = the manifest's picks and problems)")
    print("# " + " | ".join(["scenario", "address", *paths]))
    rows = {}
    for sc, email, path, verdict in table:
        rows.setdefault((sc, email), {})[path] = verdict
    for (sc, email), v in rows.items():
        print("# " + " | ".join([sc, email, *[v.get(p, "-") for p in paths]]))
    print("# same*: as the manifest's 'loose' expectation says (loose files cannot tie the login)")
t.done()
