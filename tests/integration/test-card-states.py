#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The card layer's harder cases against the real pcscd + vpcd + virtual card: OpenSC's
pkcs11-tool reads the same bytes we do (an independent reader, so our reader and our card
cannot share a bug unseen); the cache (warm read confirms certs from first chunks, a changed
card is read again); a card removed mid-read (clean error, next read works); a blocked PIN;
a card that is not a PIV card; the CAC applets; waiting for insertion."""
import hashlib
import json
import os
import shutil
import subprocess

from cmtest import CACMAIL, GSA_CARDS, SOURCE, Tap, make_pki, need, skip, tmpdir

HARNESS = os.path.join(SOURCE, "tests", "harness", "with-pcscd")
VCARD = os.path.join(os.environ.get("CACMAIL_BUILD_ROOT", os.path.join(SOURCE, "build")),
                     "tests", "virtual-card", "cacmail-vcard")
OPENSC = "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so"
AT = "2026-06-01"
for tool in ("pcscd", "unshare", "pkcs11-tool", "opensc-tool", "modutil", "certutil"):
    need(tool)
if os.geteuid() != 0:
    skip("the pcscd harness needs root for its mount namespace")

t = Tap()


def in_harness(cards, script, env=None, hargs=()):
    """Run a shell script inside with-pcscd; returns (rc, stdout, stderr)."""
    cmd = [HARNESS]
    for c in cards:
        cmd += ["--card", c]
    cmd += [*hargs, "--", "bash", "-c", script]
    e = dict(os.environ, CACMAIL=CACMAIL, VCARD=VCARD, OPENSC=OPENSC, AT=AT)
    e.update(env or {})
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=180, env=e)
    return p.returncode, p.stdout, p.stderr


with tmpdir() as tmp:
    cache = os.path.join(tmp, "cache")
    env = {"XDG_CACHE_HOME": cache}
    d46 = os.path.join(GSA_CARDS, "46_Golden_FIPS_201-2_PIV")

    # 1. OpenSC and cacmail read the same certificates off the same virtual card, and NSS
    # sees the card's token through opensc-pkcs11.so.
    for name in ("01_Golden_PIV", "46_Golden_FIPS_201-2_PIV", "02_Golden_PIV-I"):
        d = os.path.join(GSA_CARDS, name)
        rc, out, err = in_harness([d], r'''
            set -e
            for id in 01 02 03; do
              pkcs11-tool --module "$OPENSC" --read-object --type cert --id $id -o "$TMPD/$id.der" >/dev/null 2>&1
              sha256sum "$TMPD/$id.der" | cut -c1-64
            done
            "$CACMAIL" status --json --no-cache --at "$AT"
        ''', env={**env, "TMPD": tmp})
        t.ok(rc == 0, f"{name}: pkcs11-tool and cacmail both read the card", err)
        lines = out.splitlines()
        status = json.loads("\n".join(lines[3:]))
        ours = {c["slot"]: c["sha256"] for c in status["readers"][0]["card"]["certs"]}
        t.eq(lines[:3], [ours.get("9a"), ours.get("9c"), ours.get("9d")],
             f"{name}: OpenSC's objects 01/02/03 are byte-identical to cacmail's 9A/9C/9D")

    nssdb = os.path.join(tmp, "nssdb")
    os.mkdir(nssdb)
    rc, out, err = in_harness([d46], r'''
        set -e
        certutil -N -d "sql:$DB" --empty-password
        modutil -dbdir "sql:$DB" -add OpenSC -libfile "$OPENSC" -force >/dev/null
        certutil -L -d "sql:$DB" -h all
    ''', env={**env, "DB": nssdb})
    t.ok(rc == 0 and out.count(":") >= 3 and "Digital Signature" in out,
         "NSS lists the virtual card's certificates through opensc-pkcs11.so", out + err)

    # 2. Cache: cold, then warm (5 APDUs, certs from first chunks), then a changed card.
    rc, out, err = in_harness([d46], r'''
        set -e
        log=$CACMAIL_VCARD_LOG_DIR/card0.log
        "$CACMAIL" status --json --at "$AT" > "$TMPD/cold.json"
        a=$(grep -c '^C' "$log")
        "$CACMAIL" status --json --at "$AT" > "$TMPD/warm.json"
        b=$(grep -c '^C' "$log")
        echo "$a $((b - a))"
    ''', env={**env, "TMPD": tmp}, hargs=("--short-only",))
    cold_n, warm_n = (int(x) for x in out.split())
    cold = json.load(open(os.path.join(tmp, "cold.json")))["readers"][0]["card"]
    warm = json.load(open(os.path.join(tmp, "warm.json")))["readers"][0]["card"]
    t.ok(rc == 0 and cold_n <= 24, f"cold read in short APDUs: {cold_n} <= 24 APDUs", err)
    t.ok(warm_n <= 5, f"warm read: {warm_n} <= 5 APDUs")
    t.eq(warm["from_cache"], 3, "warm read confirms the three certs from the cache")
    t.eq([c["sha256"] for c in warm["certs"]], [c["sha256"] for c in cold["certs"]],
         "warm read gives the same certs")
    t.ok(os.path.isdir(os.path.join(cache, "cacmail", "cards")), "cache lives in XDG_CACHE_HOME")
    # Card 41 shares card 46's FASC-N and GUID but not its certs (re-keyed): never served
    # from the cache.
    d41 = os.path.join(GSA_CARDS, "41_Re-keyed_Card")
    rc, out, err = in_harness([d41], '"$CACMAIL" status --json --at "$AT"', env=env)
    c41 = json.loads(out)["readers"][0]["card"]
    want41 = json.loads(subprocess.run([CACMAIL, "certs", "--json", "--at", AT, d41],
                                       capture_output=True, text=True).stdout)
    want41 = {s["slot"]: s["sha256"] for s in want41["cards"][0]["certs"] if s["slot"] in
              ("9a", "9c", "9d")}
    t.eq({c["slot"]: c["sha256"] for c in c41["certs"]}, want41,
         "re-keyed card with the same CHUID: its new certs are read, not the cached ones")
    t.eq(c41["from_cache"], 0, "re-keyed card: nothing taken from the cache")

    # 3. Removed mid-read: a clean error naming the fix; after re-insertion the read works.
    rc, out, err = in_harness([d46], r'''
        sock=$CACMAIL_VCARD_CONTROL_DIR/card0.sock
        "$VCARD" --control "$sock" --send "remove-after 4" >/dev/null
        "$CACMAIL" status --json --no-cache --at "$AT" > "$TMPD/removed.json"; echo "rc1=$?"
        "$VCARD" --control "$sock" --send insert >/dev/null
        for i in $(seq 50); do
          "$CACMAIL" status --json --at "$AT" > "$TMPD/again.json"
          grep -q '"sha256"' "$TMPD/again.json" && break; sleep 0.1
        done
        echo "rc2=$?"
    ''', env={**env, "TMPD": tmp})
    removed = json.load(open(os.path.join(tmp, "removed.json")))
    msgs = " ".join(p["message"] for p in removed["problems"])
    t.ok("rc1=0" in out and "card-read-failed" in {p["code"] for p in removed["problems"]}
         and "removed during the read" in msgs and "re-insert" in msgs,
         "card removed mid-read: reported with what to do", msgs)
    again = json.load(open(os.path.join(tmp, "again.json")))
    t.ok(again["readers"][0]["card"] is not None, "after re-insertion the next read works")

    # 4. Blocked PIN (three wrong VERIFYs through OpenSC), reported in plain words.
    rc, out, err = in_harness([d46], r'''
        for i in 1 2 3; do
          opensc-tool -s '00 A4 04 00 09 A0 00 00 03 08 00 00 10 00' \
                      -s '00 20 00 80 08 39 39 39 39 39 39 FF FF' >/dev/null 2>&1
        done
        "$CACMAIL" status --all --json --at "$AT"
    ''', env=env)
    st = json.loads(out)
    t.eq(st["readers"][0]["card"]["pin_tries_left"], 0, "three wrong PINs: 0 tries left")
    blocked = [p for p in st["problems"] if p["code"] == "pin-blocked"]
    t.ok(blocked and "RAPIDS" in blocked[0]["hint"] and "63C" not in blocked[0]["message"],
         "blocked PIN reported in words with where to unblock it", st["problems"])

    # 5. A card that is not a PIV card.
    rc, out, err = in_harness([d46], '"$CACMAIL" status --json --at "$AT"', env=env,
                              hargs=("--vcard-arg", "--no-piv"))
    st = json.loads(out)
    msgs = [p["message"] for p in st["problems"] if p["code"] == "card-read-failed"]
    t.ok(rc == 0 and msgs and "not a PIV or CAC card" in msgs[0],
         "non-PIV card: a clear message, exit 0", (rc, st["problems"], err))

    # 6. CAC applets read in the same session as PIV (--all), byte-identical to the folder.
    pki, m = make_pki(tmp)
    contractor = os.path.join(pki, "cards", "contractor")
    rc, out, err = in_harness([contractor], '"$CACMAIL" status --all --json --at "$AT"', env=env)
    card = json.loads(out)["readers"][0]["card"]
    got = {c["slot"]: c for c in card["certs"]}
    want = {c["slot"]: c for c in m["certs"] if c["card"] == "contractor" and c["slot"]}
    for slot in ("cac-id", "cac-sign", "cac-enc", "9e", "82"):
        t.ok(slot in got and got[slot]["sha256"] == want[slot]["sha256"]
             and got[slot]["role"] == want[slot]["role"],
             f"--all reads {slot} ({want[slot]['role']}) byte-identical", got.get(slot))
    t.ok("cac" in card["applets"], "the CAC applets are listed")

    # 7. No reader at all: a state, not a crash.
    rc, out, err = in_harness([], '"$CACMAIL" status --json', env=env, hargs=("--no-readers",))
    st = json.loads(out or "{}")
    t.ok(rc == 0 and st.get("readers") == [] and
         "no-reader" in {p["code"] for p in st.get("problems", [])},
         "no reader at all: reported as a state, exit 0", (rc, out, err))

    # 8. Waiting for a card: returns when one is inserted.
    rc, out, err = in_harness([d46], r'''
        sock=$CACMAIL_VCARD_CONTROL_DIR/card0.sock
        "$VCARD" --control "$sock" --send remove >/dev/null
        sleep 0.5
        ( sleep 1; "$VCARD" --control "$sock" --send insert >/dev/null ) &
        start=$(date +%s%N)
        "$CACMAIL" status --wait 20 --json --at "$AT" > "$TMPD/waited.json"; echo "rc=$?"
        echo "ms=$(( ($(date +%s%N) - start) / 1000000 ))"
    ''', env={**env, "TMPD": tmp})
    ms = int(out.split("ms=")[1].split()[0]) if "ms=" in out else -1
    t.ok("rc=0" in out and 500 <= ms < 15000, f"--wait returns on insertion ({ms} ms)", err)

t.done()
