#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""slapd killed (SIGKILL) while cacmail republishes, 50 times: afterwards the entry is either
fully old or fully new, and cacmail exits 0 or 4 with one line, never by a signal."""
import importlib.util
import os
import random
import signal
import shutil
import subprocess
import tempfile
import time

spec = importlib.util.spec_from_file_location(
    "ldaplib", os.path.join(os.path.dirname(os.path.abspath(__file__)), "test-ldap-lib.py"))
L = importlib.util.module_from_spec(spec)
spec.loader.exec_module(L)
from cmtest import Tap  # noqa: E402

ROUNDS = 50
pki = L.reexec(os.path.abspath(__file__), ["contractor"])
t = Tap()
tmp = tempfile.mkdtemp(prefix="ldap-kill-")
c = L.Ctx(pki, tmp)
DN = c.dn("contractor")
CTL = os.environ["CACMAIL_SLAPD_CTL"]
enc = L.card_cert(pki, "contractor", "5 - Key_Mgmt.crt")
sign = L.card_cert(pki, "contractor", "4 - Dig_Sig.crt")
old = [L.der(os.path.join(pki, "previous", "contractor-signing-old.crt")),
       L.der(os.path.join(pki, "previous", "contractor-encryption-old.crt"))]
OLD_BLOB = b"\x30\x03\x02\x01\x07"
rng = random.Random(int(os.environ.get("CACMAIL_TEST_SEED", "5")))
outcomes = {"old": 0, "new": 0}
ttys = []
exits = {}
bad = []


def start_republish():
    proc, tty = L.start_on_tty(c.args(pin_file=False),
                               env=dict(os.environ, HOME=tmp, XDG_CONFIG_HOME=tmp))
    # cacmail has read the entry and waits for the PIN
    L.answer_prompt(proc, tty, "PIN of the card", L.PIN + "\n")
    ttys.append(tty)
    return proc


# how long cacmail takes from the PIN to the end of its write here (the progress line "write
# ... done" tells): kills are spread over a bit more than that
L.set_entry(DN, old, OLD_BLOB)
t0 = time.monotonic()
p0 = start_republish()
for line in iter(lambda: p0.stdout.readline(), ""):
    if "] verify ..." in line or "write ... done" in line:
        break
span = (time.monotonic() - t0) * 1.5
p0.communicate(timeout=60)
print(f"# kills spread over {span * 1000:.0f} ms after the PIN")

for i in range(ROUNDS):
    L.set_entry(DN, old, OLD_BLOB)  # slapd runs: started above or at the end of the last round
    with open(os.path.join(os.environ["CACMAIL_SLAPD_DIR"], "main.pid")) as f:
        slapd_pid = int(f.read().strip())
    proc = start_republish()
    time.sleep(rng.uniform(0, span))
    os.kill(slapd_pid, signal.SIGKILL)  # at once: the ctl script would add a bash start-up
    subprocess.run([CTL, "kill"], check=True)  # waits until it is gone
    out, err = proc.communicate(timeout=60)
    exits[proc.returncode] = exits.get(proc.returncode, 0) + 1
    if proc.returncode not in (0, 4) or (proc.returncode == 4 and err.count("\n") != 1):
        bad.append(f"round {i}: exit {proc.returncode}: {err.strip()}")
    subprocess.run([CTL, "start"], check=True)
    e = L.read_entry(DN)
    if e["certs"] == old and e["smime"] == [OLD_BLOB]:
        outcomes["old"] += 1
    elif e["certs"] == [enc, sign] and len(e["smime"]) == 1 and e["smime"][0] != OLD_BLOB \
            and e["smime"][0][:2] == b"\x30\x82":
        outcomes["new"] += 1
        if proc.returncode != 0:
            # the write reached the disk but the answer did not: cacmail said so
            if not any(s in err for s in ("either unchanged or fully updated", "was written")):
                bad.append(f"round {i}: written, but cacmail said: {err.strip()}")
    else:
        bad.append(f"round {i}: MIXED entry: {len(e['certs'])} certs, {len(e['smime'])} blobs")

print(f"# outcomes: {outcomes}, cacmail exit codes: {exits}")
t.eq(len(bad), 0, f"{ROUNDS} kills: every entry fully old or fully new, cacmail exits 0 or 4")
for b in bad[:10]:
    print(f"#   {b}")
t.eq(outcomes["old"] + outcomes["new"], ROUNDS, "every round checked")
t.ok(outcomes["old"] > 0 and outcomes["new"] > 0,
     "kills landed both before and after the write (the timing covers the write)",
     str(outcomes))
# the last published blob is a good one
subprocess.run([CTL, "start"], check=True)
p = c.run()
e = L.read_entry(DN)
v = L.openssl_verify(pki, e["smime"][0], tmp)
t.ok(p.returncode == 0 and v.returncode == 0, "after the kills a republish works", p.stderr)
for fd in ttys:
    os.close(fd)
shutil.rmtree(tmp, ignore_errors=True)
t.done()
