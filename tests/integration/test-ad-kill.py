#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The Active Directory DC (Samba, tests/harness/with-samba-ad) killed (SIGKILL) while cacmail
republishes, 20 times: afterwards the entry is either fully old or fully new, and cacmail exits
0 or 4 with one line, never by a signal."""
import importlib.util
import os
import random
import shutil
import subprocess
import tempfile
import time

spec = importlib.util.spec_from_file_location(
    "adlib", os.path.join(os.path.dirname(os.path.abspath(__file__)), "test-ad-lib.py"))
A = importlib.util.module_from_spec(spec)
spec.loader.exec_module(A)
L = A.L
from cmtest import Tap  # noqa: E402

ROUNDS = 20
pki = A.reexec(os.path.abspath(__file__), ["contractor"])
t = Tap()
tmp = tempfile.mkdtemp(prefix="ad-kill-")
c = A.Ctx(pki, tmp)
DN = c.dn("contractor")
CTL = os.environ["CACMAIL_AD_CTL"]
enc = L.card_cert(pki, "contractor", "5 - Key_Mgmt.crt")
sign = L.card_cert(pki, "contractor", "4 - Dig_Sig.crt")
old = [L.der(os.path.join(pki, "previous", "contractor-signing-old.crt")),
       L.der(os.path.join(pki, "previous", "contractor-encryption-old.crt"))]
OLD_BLOB = b"\x30\x03\x02\x01\x07"
rng = random.Random(int(os.environ.get("CACMAIL_TEST_SEED", "5")))
outcomes = {"old": 0, "new": 0}
bad = []
exits = {}


def start_republish():
    proc, tty = L.start_on_tty(c.args(pin_file=False) + ["--timeout", "5"], env=c.env())
    # cacmail has bound, read the entry and waits for the PIN
    L.answer_prompt(proc, tty, "PIN of the card", L.PIN + "\n")
    return proc, tty


# how long cacmail takes from the PIN to the end of its write here: kills are spread over a bit
# more than that
A.set_entry(DN, old, OLD_BLOB)
p0, tty0 = start_republish()
t0 = time.monotonic()
for line in iter(lambda: p0.stdout.readline(), ""):
    if "] verify ..." in line or "write ... done" in line:
        break
span = (time.monotonic() - t0) * 1.5
p0.communicate(timeout=60)
os.close(tty0)
t.eq(p0.returncode, 0, "calibration run: republished")
print(f"# kills spread over {span * 1000:.0f} ms after the PIN")

t_start = time.monotonic()
for i in range(ROUNDS):
    A.set_entry(DN, old, OLD_BLOB)
    proc, tty = start_republish()
    # one kill in each slice of the span: before, during and after the write
    time.sleep(span * (i + rng.random()) / ROUNDS)
    subprocess.run([CTL, "kill"], check=True)
    try:
        out, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        bad.append(f"round {i}: cacmail hung after the kill")
    os.close(tty)
    exits[proc.returncode] = exits.get(proc.returncode, 0) + 1
    lines = [l for l in err.splitlines() if l.strip()]
    if proc.returncode not in (0, 4):
        bad.append(f"round {i}: exit {proc.returncode}: {err.strip()}")
    elif proc.returncode == 4 and not (len(lines) == 1 and lines[0].startswith("cacmail: error")):
        bad.append(f"round {i}: exit 4 without one error line: {err!r}")
    subprocess.run([CTL, "start"], check=True)
    e = A.read_entry(DN)
    if e["certs"] == old and e["smime"] == [OLD_BLOB]:
        outcomes["old"] += 1
    elif e["certs"] == [enc, sign] and len(e["smime"]) == 1 and e["smime"][0] != OLD_BLOB:
        outcomes["new"] += 1
        if proc.returncode == 4 and "either unchanged or fully updated" not in err \
                and "reading it back failed" not in err:
            bad.append(f"round {i}: new entry, exit 4 with an unexpected message: {err}")
    else:
        bad.append(f"round {i}: entry half-changed: {len(e['certs'])} certs, "
                   f"{len(e['smime'])} blobs")
print(f"# {ROUNDS} rounds in {time.monotonic() - t_start:.1f} s: outcomes {outcomes}, "
      f"exits {exits}")
t.eq(bad, [], f"{ROUNDS} kills of the DC mid-republish: entry fully old or fully new, exit 0 "
     "or 4 with one error line")
t.ok(outcomes["old"] + outcomes["new"] == ROUNDS, "every round ended fully old or fully new",
     str(outcomes))
t.ok(outcomes["new"] > 0 and outcomes["old"] > 0,
     "some kills came before the write (entry fully old), some after (fully new)",
     str(outcomes))

shutil.rmtree(tmp, ignore_errors=True)
t.done()
