#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""`cacmail status` against the real pcscd + vpcd with our virtual card (tests/harness/
with-pcscd): GSA cards read and classified with every cert byte-identical to the card folder,
two readers with the two generated personas, short-only, extended and gzip modes, and the
states that are not crashes: no card, pcscd not running."""
import glob
import json
import os
import shutil
import subprocess

from cmtest import CACMAIL, GSA_CARDS, SOURCE, Tap, make_pki, need, skip, tmpdir

try:
    import jsonschema
except ImportError:
    skip("python3-jsonschema is not installed (scripts/test installs it)")
with open(os.path.join(SOURCE, "docs", "cacmail.schema.json")) as f:
    VALIDATOR = jsonschema.Draft202012Validator(json.load(f))

HARNESS = os.path.join(SOURCE, "tests", "harness", "with-pcscd")
AT = "2026-06-01"
for tool in ("pcscd", "unshare"):
    need(tool)
if not glob.glob("/usr/lib/pcsc/drivers/serial/libifdvpcd.so*") and not glob.glob(
        "/usr/lib/pcsc/drivers/*vpcd*"):
    skip("vsmartcard-vpcd is not installed (scripts/test installs it)")
if os.geteuid() != 0:
    skip("the pcscd harness needs root for its mount namespace")

t = Tap()


def status(cards, *args, harness_args=()):
    cmd = [HARNESS]
    for c in cards:
        cmd += ["--card", c]
    cmd += [*harness_args, "--", CACMAIL, "status", "--json", "--at", AT, *args]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if p.returncode != 0:
        raise AssertionError(f"{cmd} exited {p.returncode}: {p.stderr}")
    doc = json.loads(p.stdout)
    errors = [f"{list(e.path)}: {e.message}" for e in VALIDATOR.iter_errors(doc)]
    t.ok(not errors, f"status JSON matches the schema ({' '.join(args) or 'default'})",
         "\n".join(errors[:5]))
    return doc


def folder_certs(card):
    rep = json.loads(subprocess.run([CACMAIL, "certs", "--json", "--at", AT, card],
                                    capture_output=True, text=True, check=True).stdout)
    return {s["slot"]: s["sha256"] for s in rep["cards"][0]["certs"]}


for name in ("01_Golden_PIV", "46_Golden_FIPS_201-2_PIV", "02_Golden_PIV-I"):
    d = os.path.join(GSA_CARDS, name)
    want = {k: v for k, v in folder_certs(d).items() if k in ("9a", "9c", "9d")}
    for mode, hargs in (("extended", ()), ("short-only", ("--short-only",))):
        rep = status([d], harness_args=hargs)
        card = rep["readers"][0]["card"]
        t.ok(card is not None, f"{name} ({mode}): card read")
        got = {c["slot"]: c["sha256"] for c in card["certs"]}
        t.eq(got, want, f"{name} ({mode}): certs byte-identical to the card folder")
        roles = {c["slot"]: c["role"] for c in card["certs"]}
        t.eq(roles, {"9a": "piv-auth", "9c": "email-signing", "9d": "email-encryption"},
             f"{name} ({mode}): roles")
        with open(glob.glob(os.path.join(d, "c*-chuid.properties"))[0]) as f:
            props = dict(l.strip().split("=", 1) for l in f if "=" in l)
        t.eq(card["fascn"], props["fascn"].upper(), f"{name} ({mode}): CHUID FASC-N")
        t.eq(card["guid"], props["uuid"].lower(), f"{name} ({mode}): CHUID GUID")
        t.eq(len(rep["picks"]), 1, f"{name} ({mode}): one mail identity")

d46 = os.path.join(GSA_CARDS, "46_Golden_FIPS_201-2_PIV")
rep = status([d46], "--all", harness_args=("--gzip",))
card = rep["readers"][0]["card"]
t.eq({c["slot"]: c["sha256"] for c in card["certs"]}, folder_certs(d46),
     "gzip-compressed containers inflate to the same certs (with --all: 9E too)")

with tmpdir() as tmp:
    pki, m = make_pki(tmp)
    cards = [os.path.join(pki, "cards", c) for c in ("contractor", "reservist")]
    rep = status(cards)
    t.eq(len(rep["readers"]), 2, "two readers")
    personas = [r["card"]["persona_id"] for r in rep["readers"]]
    t.eq(personas, [p["persona_id"] for p in m["personas"] if p["card"] in
                    ("contractor", "reservist")], "each reader holds its persona")
    picks = {p["email"]: p for p in rep["picks"]}
    scenario = [s for s in m["scenarios"] if s["name"] == "dual-persona"][0]
    for want in scenario["picks"]:
        got = picks.get(want["email"])
        t.ok(got is not None, f"status picks {want['email']}")
        for k in ("login", "signing", "encryption"):
            t.eq(got[k], want[k], f"status {want['email']}: {k} as the generator intends")

# States, not crashes.
rep = status([])
t.ok(all(r["card"] is None for r in rep["readers"]) and
     "no-card" in {p["code"] for p in rep["problems"]}, "no card: reported as a state",
     json.dumps({"readers": rep["readers"], "problems": rep["problems"]}))
# An empty reader says it is empty, with no PIN figure (it used to print "no card, 0 PIN tries
# left"); the card in the other reader keeps its PIN figure (--all asks the card).
p = subprocess.run([HARNESS, "--card", d46, "--", CACMAIL, "status", "--all", "--at", AT],
                   capture_output=True, text=True, timeout=120)
lines = {l.split(":", 1)[0]: l for l in p.stdout.splitlines() if l.startswith("reader ")}
empty = lines.get("reader Virtual PCD 00 01", "")
t.ok(p.returncode == 0 and empty == "reader Virtual PCD 00 01: empty (no card)",
     "text status: an empty reader says it is empty, no PIN figure", p.stdout + p.stderr)
t.ok("card read" in lines.get("reader Virtual PCD 00 00", "")
     and lines["reader Virtual PCD 00 00"].endswith(", 3 PIN tries left"),
     "text status: the card in the other reader shows its PIN tries", lines)
p = subprocess.run(["unshare", "--mount", "--fork", "sh", "-c",
                    "mount -t tmpfs none /run/pcscd 2>/dev/null || "
                    "{ mkdir -p /run/pcscd && mount -t tmpfs none /run/pcscd; }; "
                    f"exec {CACMAIL} status --json"],
                   capture_output=True, text=True, timeout=60)
t.eq(p.returncode, 0, "pcscd not running: exit 0 (a state)")
codes = {x["code"] for x in json.loads(p.stdout or "{}").get("problems", [])}
t.ok("pcscd-not-running" in codes and "pcscd" in p.stdout, "pcscd not running: named", p.stdout)
t.done()
