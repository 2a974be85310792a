#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Cards that break the rules and cache files that lie (real pcscd + vpcd + virtual card).

1. tests/virtual-card --hostile modes: a card that answers 61 00 forever, 6C xx forever,
   answers without a status word, answers with more data than Le allows, or trickles its
   answer one byte at a time. `cacmail status` and `cacmail evolution check` end within 30 s,
   report that card as not answering properly (exit 0: a state, JSON problem
   card-read-failed), and still read the normal card in the other reader.
2. The card cache ($XDG_CACHE_HOME/cacmail/cards) is trusted only when proven: a swapped or cut
   certificate, a file or folder others may write, a file not ours, a symlink, a damaged or
   oversized file: the card is read in full, its real certificates are shown, the file is
   rewritten 0600 in a 0700 folder; plain and gzip-compressed containers."""
import base64
import json
import os
import subprocess
import sys
import time

from cmtest import CACMAIL, GSA_CARDS, SOURCE, Tap, need, schema_errors, skip, tmpdir

HARNESS = os.path.join(SOURCE, "tests", "harness", "with-pcscd")
EDS = os.path.join(SOURCE, "tests", "harness", "with-eds")
AT = "2026-06-01"


def cache_steps():
    """Inside with-pcscd (one card in reader 0): tamper with the cache file in each way, run
    `cacmail status`, print one JSON line per step (what status returned, how the file is
    left)."""
    cards = os.path.join(os.environ["XDG_CACHE_HOME"], "cacmail", "cards")

    def status():
        p = subprocess.run([CACMAIL, "status", "--json", "--at", AT], capture_output=True,
                           text=True, timeout=60)
        try:
            card = json.loads(p.stdout)["readers"][0]["card"] or {}
        except ValueError:
            card = {}
        return {"rc": p.returncode, "stderr": p.stderr[-500:],
                "from_cache": card.get("from_cache"),
                "certs": {c["slot"]: c["sha256"] for c in card.get("certs", [])}}

    def path():
        names = os.listdir(cards)
        assert len(names) == 1, names
        return os.path.join(cards, names[0])

    def sections():
        out, cur = {}, None
        for line in open(path()).read().splitlines():
            if line.startswith("["):
                cur = out.setdefault(line.strip("[]"), {})
            elif "=" in line and cur is not None:
                k, v = line.split("=", 1)
                cur[k] = v
        return out

    def write(secs):
        text = "".join(f"[{name}]\n" + "".join(f"{k}={v}\n" for k, v in kv.items()) + "\n"
                       for name, kv in secs.items())
        with open(path(), "w") as f:
            f.write(text)

    def swap(secs):  # 9A's certificate replaced by 9C's (a real cert, well formed)
        secs["5fc105"]["der"] = secs["5fc10a"]["der"]
        write(secs)

    def cut(secs):  # 9A's certificate without its last 16 bytes: same first chunk
        der = base64.b64decode(secs["5fc105"]["der"])
        secs["5fc105"]["der"] = base64.b64encode(der[:-16]).decode()
        write(secs)

    def bad_base64(secs):
        for kv in secs.values():
            kv["der"] = "!!not*base64!!"
        write(secs)

    def symlink(secs):
        name, real = path(), os.path.join(os.environ["XDG_CACHE_HOME"], "elsewhere.cache")
        os.rename(name, real)
        os.symlink(real, name)

    def oversized(secs):
        write(secs)
        with open(path(), "a") as f:
            f.write(("# " + "x" * 1000 + "\n") * 600)

    def garbage(secs):
        with open(path(), "wb") as f:
            f.write(os.urandom(3000))

    def half(secs):
        data = open(path(), "rb").read()
        with open(path(), "wb") as f:
            f.write(data[:len(data) // 2])

    steps = {
        "swap": swap, "cut": cut, "bad-base64": bad_base64, "symlink": symlink,
        "oversized": oversized, "garbage": garbage, "half": half,
        "chmod-666": lambda secs: os.chmod(path(), 0o666),
        "chown-other": lambda secs: os.chown(path(), 65534, 65534),
        "folder-777": lambda secs: os.chmod(cards, 0o777),
    }
    print(json.dumps({"step": "cold", **status()}))
    print(json.dumps({"step": "warm", **status()}))
    for name, tamper in steps.items():
        tamper(sections())
        r = status()
        st = os.lstat(path())
        folder = os.lstat(cards)
        r.update(step=name, mode=st.st_mode & 0o7777, uid=st.st_uid, link=os.path.islink(path()),
                 folder_mode=folder.st_mode & 0o7777)
        print(json.dumps(r))
        sys.stdout.flush()
        r = status()  # the rewritten file is trusted again
        print(json.dumps({"step": name + "-again", **r}))


if sys.argv[1:2] == ["--cache-steps"]:
    cache_steps()
    sys.exit(0)
for tool in ("pcscd", "unshare", "certutil"):
    need(tool)
if os.geteuid() != 0:
    skip("the pcscd harness needs root for its mount namespace")

t = Tap()
hostile = os.path.join(GSA_CARDS, "46_Golden_FIPS_201-2_PIV")  # reader 0, made hostile
normal = os.path.join(GSA_CARDS, "01_Golden_PIV")  # reader 1, always well behaved
want_normal = {c["slot"]: c["sha256"] for c in json.loads(subprocess.run(
    [CACMAIL, "certs", "--json", "--at", AT, normal], capture_output=True, text=True,
    check=True).stdout)["cards"][0]["certs"] if c["slot"] in ("9a", "9c", "9d")}

# mode -> what the message says about it
MODES = {
    "61-forever": "announces more data and sends none",
    "6c-forever": "keeps asking for another length",
    "short": "without a status word",
    "oversized": "more data than the command asked for",
    "slow": "took over 20 s",
}

SCRIPT = r'''
sock=$CACMAIL_VCARD_CONTROL_DIR/card0.sock
log=$CACMAIL_VCARD_LOG_DIR/card0.log
for mode in $MODES; do
  "$CACMAIL_VCARD" --control "$sock" --send "hostile $mode" >/dev/null || exit 3
  before=$(grep -c '^C' "$log")
  start=$(date +%s%N)
  timeout 60 "$CACMAIL" status --json --at "$AT" > "$TMPD/$mode.json"
  rc=$?
  echo "$mode rc=$rc ms=$(( ($(date +%s%N) - start) / 1000000 )) apdus=$(( $(grep -c '^C' "$log") - before ))"
done
# the text form, and the evolution command's card read
"$CACMAIL_VCARD" --control "$sock" --send "hostile 6c-forever" >/dev/null
timeout 60 "$CACMAIL" status --at "$AT" > "$TMPD/text.out"; echo "text rc=$?"
home=$TMPD/evo-home
mkdir -p "$home/.pki/nssdb" && certutil -N -d "sql:$home/.pki/nssdb" --empty-password || exit 3
before=$(grep -c '^C' "$log")
start=$(date +%s%N)
# (ASan builds: evolution-data-server's own leaks are suppressed, as meson.build does for the
# evolution tests)
ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}fast_unwind_on_malloc=0" LSAN_OPTIONS="suppressions=$SUPP" \
  timeout 60 "$EDS" --home "$home" -- "$CACMAIL" evolution check --at "$AT" > "$TMPD/evo.out" 2>&1
rc=$?
echo "evolution rc=$rc ms=$(( ($(date +%s%N) - start) / 1000000 )) apdus=$(( $(grep -c '^C' "$log") - before ))"
# the same card, well behaved again, is read
"$CACMAIL_VCARD" --control "$sock" --send "hostile none" >/dev/null
"$CACMAIL" status --json --no-cache --at "$AT" > "$TMPD/after.json"; echo "after rc=$?"
'''

with tmpdir() as tmp:
    env = dict(os.environ, CACMAIL=CACMAIL, AT=AT, TMPD=tmp, EDS=EDS, MODES=" ".join(MODES),
               SUPP=os.path.join(SOURCE, "tests", "lsan-eds.supp"),
               XDG_CACHE_HOME=os.path.join(tmp, "cache"))
    start = time.monotonic()
    p = subprocess.run([HARNESS, "--card", hostile, "--card", normal, "--", "bash", "-c", SCRIPT],
                       capture_output=True, text=True, timeout=400, env=env)
    total = time.monotonic() - start
    runs = {}
    for line in p.stdout.splitlines():
        name, *kv = line.split()
        runs[name] = dict(x.split("=") for x in kv)
    t.ok(p.returncode == 0 and "after" in runs, f"the harness ran every step ({total:.1f} s)",
         p.stdout + p.stderr)

    for mode, why in MODES.items():
        r = runs.get(mode, {"rc": "?", "ms": "999999", "apdus": "?"})
        ms = int(r["ms"])
        t.ok(r["rc"] == "0" and ms < 30000,
             f"{mode}: status ends within 30 s, exit 0 ({ms} ms, {r['apdus']} APDUs to the card)",
             r)
        try:
            doc = json.load(open(os.path.join(tmp, f"{mode}.json")))
        except (OSError, ValueError) as e:
            t.ok(False, f"{mode}: status printed its JSON document", e)
            continue
        t.ok(not schema_errors(doc), f"{mode}: the status document matches the schema",
             schema_errors(doc)[:3])
        readers = doc["readers"]
        failed = [x for x in doc["problems"] if x["code"] == "card-read-failed"]
        msg = failed[0]["message"] if failed else ""
        t.ok(readers[0]["card"] is None and len(failed) == 1
             and "reader 'Virtual PCD 00 00' does not answer properly" in msg
             and why in msg and msg.endswith("remove and reinsert it") and "\n" not in msg,
             f"{mode}: that card is reported as not answering properly, in one line", msg)
        got = {c["slot"]: c["sha256"] for c in (readers[1]["card"] or {}).get("certs", [])}
        t.eq(got, want_normal, f"{mode}: the normal card in the other reader is still read")
        if mode != "slow":
            t.ok(r["apdus"] != "?" and int(r["apdus"]) <= 12,
                 f"{mode}: the read gives up after a few APDUs ({r['apdus']})")

    text = open(os.path.join(tmp, "text.out")).read() if os.path.exists(
        os.path.join(tmp, "text.out")) else ""
    t.ok(runs.get("text", {}).get("rc") == "0"
         and "reader Virtual PCD 00 00: card present, not read" in text
         and "does not answer properly" in text and "Virtual PCD 00 01: card read" in text,
         "text status: the card is present, not read, and the problem says why", text)

    evo = runs.get("evolution", {"rc": "?", "ms": "999999", "apdus": "0"})
    evo_out = open(os.path.join(tmp, "evo.out")).read() if os.path.exists(
        os.path.join(tmp, "evo.out")) else ""
    t.ok(evo["rc"] == "0" and int(evo["ms"]) < 30000 and int(evo["apdus"]) > 0,
         f"evolution check reads past a looping card and ends ({evo['ms']} ms, exit 0, "
         f"{evo['apdus']} APDUs to that card)", (evo, evo_out[-1500:]))

    after = json.load(open(os.path.join(tmp, "after.json"))) if os.path.exists(
        os.path.join(tmp, "after.json")) else {"readers": [{"card": None}]}
    t.ok(after["readers"][0]["card"] is not None and not after["problems"],
         "the same card, well behaved again, is read at the next status", after["problems"])

# 2. The cache, plain and gzip-compressed containers.
want46 = {c["slot"]: c["sha256"] for c in json.loads(subprocess.run(
    [CACMAIL, "certs", "--json", "--at", AT, hostile], capture_output=True, text=True,
    check=True).stdout)["cards"][0]["certs"] if c["slot"] in ("9a", "9c", "9d")}
WHY = {
    "swap": "9A's certificate swapped for 9C's in the file",
    "cut": "9A's certificate cut short (its first chunk still matches)",
    "bad-base64": "certificates that are not base64",
    "symlink": "the file is a symlink",
    "oversized": "a file over the size cap",
    "garbage": "random bytes",
    "half": "the file cut in half",
    "chmod-666": "the file writable by group and others",
    "chown-other": "the file owned by another user",
    "folder-777": "the folder writable by others",
}
for label, hargs in (("plain", ()), ("gzip", ("--gzip",))):
    with tmpdir() as tmp:
        env = dict(os.environ, XDG_CACHE_HOME=os.path.join(tmp, "cache"))
        p = subprocess.run([HARNESS, "--card", hostile, *hargs, "--", sys.executable,
                            os.path.abspath(__file__), "--cache-steps"], capture_output=True,
                           text=True, timeout=300, env=env)
        steps = {}
        for line in p.stdout.splitlines():
            r = json.loads(line)
            steps[r["step"]] = r
        t.ok(p.returncode == 0 and len(steps) == 2 + 2 * len(WHY),
             f"cache ({label}): every step ran", p.stdout[-2000:] + p.stderr[-2000:])
        warm = steps.get("warm", {})
        t.ok(steps.get("cold", {}).get("certs") == want46 and warm.get("certs") == want46
             and warm.get("from_cache") == 3,
             f"cache ({label}): a warm read confirms the three certs from the cache", warm)
        for name, why in WHY.items():
            r = steps.get(name, {})
            again = steps.get(name + "-again", {})
            trusted = {"swap": 2, "cut": 2}.get(name, 0)  # only 9A was touched there
            if name == "half":  # what survives of the file may be used, if proven
                t.ok(r.get("rc") == 0 and r.get("certs") == want46,
                     f"cache ({label}): {why}: no crash, the card's real certs", r)
            else:
                t.ok(r.get("rc") == 0 and r.get("certs") == want46
                     and r.get("from_cache") == trusted,
                     f"cache ({label}): {why}: not trusted ({trusted} of 3 from the cache), "
                     "the card's real certs", r)
            t.ok(r.get("mode") == 0o600 and r.get("uid") == os.geteuid() and not r.get("link")
                 and r.get("folder_mode") == 0o700 and again.get("from_cache") == 3
                 and again.get("certs") == want46,
                 f"cache ({label}): {why}: rewritten 0600 in a 0700 folder, trusted again",
                 (r, again))

t.done()
