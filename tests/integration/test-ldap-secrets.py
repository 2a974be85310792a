#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Secrets are handled like keys, by the one reader in core (cm-secret.c) that republish and
import-p12 share: a secret file other users may read is refused (say chmod 600), so is anything
but a regular file (/dev/zero, a FIFO: no endless read, no hang) and an oversized file; only the
first line is the secret. Typed secrets never stay in memory: core images (gcore) of cacmail
republish at the password prompt, at the PIN prompt and right after the modify, and of
import-p12 after a password from a pipe, hold neither secret (a core taken while the secret is in
use finds it: the scan works)."""
import importlib.util
import json
import os
import shutil
import subprocess
import tempfile
import time

spec = importlib.util.spec_from_file_location(
    "ldaplib", os.path.join(os.path.dirname(os.path.abspath(__file__)), "test-ldap-lib.py"))
L = importlib.util.module_from_spec(spec)
spec.loader.exec_module(L)
from cmtest import Tap, skip  # noqa: E402

# a PIN no library carries by chance (123456 is in every digit table of a core image)
PIN = "73918264"
if shutil.which("gdb") is None or shutil.which("gcore") is None:
    skip("gdb is not installed (Debian: gdb; scripts/install-deps test installs it)")
pki = L.reexec(os.path.abspath(__file__), ["contractor"], vcard_args=[f"--pin={PIN}"])

E = os.environ
t = Tap()
tmp = tempfile.mkdtemp(prefix="ldap-secrets-")
c = L.Ctx(pki, tmp)
c.pin_file = L.write_secret(os.path.join(tmp, "pin"), PIN + "\n")
DN = c.dn("contractor")
PW = open(c.users["contractor"]["password_file"]).read().strip()
HELPER = os.path.join(os.path.dirname(L.CACMAIL), "cacmail-republish")
# gdb stops cacmail: LeakSanitizer cannot run under ptrace (ASan build). One malloc arena: each
# thread's own arena reserves 64 MiB that gcore writes out as zeros (cores of 230 MiB, not 30).
# Without the test suite's MALLOC_PERTURB_: cacmail must scrub freed memory by itself.
GDB_ENV = dict({k: v for k, v in E.items() if k != "MALLOC_PERTURB_"}, MALLOC_ARENA_MAX="1",
               HOME=tmp, XDG_CONFIG_HOME=tmp, XDG_DATA_HOME=tmp,
               ASAN_OPTIONS=":".join(o for o in (E.get("ASAN_OPTIONS"), "detect_leaks=0") if o))


def opt(args, name, value):
    args = list(args)
    args[args.index(name) + 1] = value
    return args


def secret_file(name, text, mode):
    return L.write_secret(os.path.join(tmp, name), text, mode)


# ---- secret files: republish -------------------------------------------------------------------
fifo = os.path.join(tmp, "fifo")
os.mkfifo(fifo, 0o600)
big = secret_file("big", "x" * 5000 + "\n", 0o600)
cases = [
    ("PIN file at mode 0666", "--pin-file", secret_file("pin-0666", PIN + "\n", 0o666), 5,
     "chmod 600"),
    ("password file at mode 0640", "--password-file", secret_file("pw-0640", PW + "\n", 0o640), 5,
     "chmod 600"),
    ("/dev/zero as the PIN file", "--pin-file", "/dev/zero", 2, "is a device"),
    ("a FIFO as the password file", "--password-file", fifo, 2, "is a FIFO"),
    ("a 5000-byte password file", "--password-file", big, 2, "too big for a secret"),
]
for what, option, path, code, says in cases:
    n0 = L.mod_count()
    try:
        p = c.run(base=opt(c.args(), option, path), timeout=20)
        L.one_line_error(t, p, code, says, f"republish, {what}")
    except subprocess.TimeoutExpired:
        t.ok(False, f"republish, {what}: cacmail ends (it hung)")
    t.eq(L.mod_count(), n0, f"republish, {what}: nothing written")
multi = secret_file("pw-lines", f"{PW}\nnot the password\n", 0o600)
p = c.run(base=opt(c.args(), "--password-file", multi))
t.ok(p.returncode == 0 and "verified" in p.stdout,
     "republish, a password file of two lines: the first line is the password", p.stderr)

# ---- secret files: import-p12 ------------------------------------------------------------------
manifest = json.load(open(os.path.join(pki, "manifest.json")))
P12_PW = f"p12-{os.urandom(6).hex()}"
src = os.path.join(pki, "escrow", "contractor-encryption-old-aes.p12")
p12 = os.path.join(tmp, "escrow.p12")
pem = os.path.join(tmp, "escrow.pem")
subprocess.run(["openssl", "pkcs12", "-in", src, "-nodes", "-out", pem, "-passin",
                "pass:" + manifest["escrow_password"]], check=True)
subprocess.run(["openssl", "pkcs12", "-export", "-in", pem, "-out", p12, "-passout",
                "pass:" + P12_PW], check=True)


def newdb(name):
    d = os.path.join(tmp, name)
    os.makedirs(d)
    subprocess.run(["certutil", "-N", "-d", f"sql:{d}", "--empty-password"], check=True)
    return d


def import_p12(db, *pwargs, **kw):
    return subprocess.run([L.CACMAIL, "import-p12", "--nssdb", db, *pwargs, p12],
                          capture_output=True, text=True, env=GDB_ENV, **kw)


db = newdb("db")
for what, path, code, says in (
        ("password file at mode 0666", secret_file("p12-0666", P12_PW + "\n", 0o666), 5,
         "chmod 600"),
        ("/dev/zero as the password file", "/dev/zero", 3, "is a device"),
        ("a FIFO as the password file", fifo, 3, "is a FIFO")):
    try:
        p = import_p12(db, "--password-file", path, timeout=20)
        L.one_line_error(t, p, code, says, f"import-p12, {what}")
    except subprocess.TimeoutExpired:
        t.ok(False, f"import-p12, {what}: cacmail ends (it hung)")
p = import_p12(db, "--password-file", secret_file("p12-lines", f"{P12_PW}\nnotes\n", 0o600))
t.ok(p.returncode == 0 and p.stdout.startswith("imported"),
     "import-p12, a password file of two lines: the first line is the password (man page)",
     p.stdout + p.stderr)


# ---- core images ---------------------------------------------------------------------------------
def found(core, *secrets):
    """Which of SECRETS the core image holds, as text or as UTF-16 (NSS turns a PKCS#12
    password into big-endian UCS-2)."""
    with open(core, "rb") as f:
        data = f.read()
    return [f"{s} ({enc})" for s in secrets for enc in ("ascii", "utf-16-be")
            if s.encode(enc) in data]


# The ASan build reserves terabytes of address space without access rights, which gcore would
# write out as zeros: there a gdb command writes every readable mapping but ASan's shadow instead.
ASAN_BUILD = "libasan" in subprocess.run(["ldd", HELPER], capture_output=True, text=True).stdout
DUMPER = """python
import gdb
class CoreImage(gdb.Command):
    def __init__(self):
        super().__init__("core-image", gdb.COMMAND_USER)
    def invoke(self, path, from_tty):
        inf = gdb.selected_inferior()
        head = None
        with open(path, "wb") as out:
            for line in open(f"/proc/{inf.pid}/smaps"):
                if "-" in line.split()[0] and not line.split()[0].endswith(":"):
                    head = line.split()
                elif line.startswith("VmFlags") and head[1][0] == "r" and " dd" not in line:
                    lo, hi = (int(x, 16) for x in head[0].split("-"))
                    try:
                        out.write(inf.read_memory(lo, hi - lo))
                    except gdb.MemoryError:
                        pass
CoreImage()
end
"""


def gdb_script(name, lines):
    path = os.path.join(tmp, name)
    text = "\n".join(lines).replace("gcore ", "core-image " if ASAN_BUILD else "gcore ")
    with open(path, "w") as f:
        f.write("set pagination off\nset confirm off\nset breakpoint pending on\n" + DUMPER
                + text + "\nrun\nquit\n")
    return path


# republish on a terminal, both secrets typed; cores at each prompt (cm_secret_read_line),
# while binding (control) and right after the write (the 8th progress call: its end)
L.set_entry(DN, [], None)
cores = {k: os.path.join(tmp, f"{k}.core") for k in
         ("password-prompt", "pin-prompt", "bind", "after-write")}
master, slave = os.openpty()
script = gdb_script("republish.gdb", [
    f"tty {os.ttyname(slave)}",
    "break cm_secret_read_line", "commands", "silent",
    f"gcore {cores['password-prompt']}", "disable 1", "enable 2", "continue", "end",
    "break cm_secret_read_line", "disable 2", "commands", "silent",
    f"gcore {cores['pin-prompt']}", "disable 2", "continue", "end",
    "break ldap_sasl_bind_s", "commands", "silent",
    f"gcore {cores['bind']}", "disable 3", "continue", "end",
    "break show_progress", "ignore 4 7", "commands", "silent",
    f"gcore {cores['after-write']}", "disable 4", "continue", "end"])
args = [a for a in c.args() if a not in ("--password-file", c.users["contractor"]["password_file"],
                                         "--pin-file", c.pin_file)]
g = subprocess.Popen(["gdb", "-batch", "-nx", "-x", script, "--args", HELPER, *args[1:]],
                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                     text=True, env=GDB_ENV)
# the slave stays open here until gdb's inferior has it (else reading the master fails)
L.answer_prompt(g, master, "LDAP password for", PW + "\n", timeout=120)
L.answer_prompt(g, master, "PIN of the card", PIN + "\n", timeout=120)
out = g.communicate(timeout=120)[0]
os.close(slave)
os.close(master)
e = L.read_entry(DN)
t.ok(g.returncode == 0 and len(e["certs"]) == 2 and len(e["smime"]) == 1,
     "republish under gdb, password and PIN typed on its terminal: published", out[-3000:])
for k in cores:
    t.ok(os.path.exists(cores[k]), f"republish: core image taken at the {k.replace('-', ' ')}",
         out[-2000:])
t.ok(os.path.exists(cores["bind"]) and found(cores["bind"], PW),
     "control: the core taken while binding holds the password (the scan finds a secret)")
for k in ("password-prompt", "pin-prompt", "after-write"):
    if os.path.exists(cores[k]):
        t.eq(found(cores[k], PW, PIN), [],
             f"republish, core at the {k.replace('-', ' ')}: neither the password nor the PIN")

# import-p12 with the password from a pipe: a core at exit() (stdio's stdin buffer lives on)
pipe_in = secret_file("p12-stdin", P12_PW + "\n", 0o600)
db2 = newdb("db2")
core_exit = os.path.join(tmp, "import-exit.core")
core_use = os.path.join(tmp, "import-use.core")
script = gdb_script("import.gdb", [
    "break cm_nssdb_import_p12_sync", "commands", "silent", f"gcore {core_use}", "disable 1",
    "continue", "end",
    "break exit", "commands", "silent", f"gcore {core_exit}", "continue", "end"])
with open(script) as f:
    text = f.read().replace("\nrun\n", f"\nrun import-p12 --nssdb {db2} {p12} < {pipe_in}\n")
with open(script, "w") as f:
    f.write(text)
g = subprocess.run(["gdb", "-batch", "-nx", "-x", script, L.CACMAIL], capture_output=True,
                   text=True, env=GDB_ENV, stdin=subprocess.DEVNULL, timeout=120)
t.ok("imported" in g.stdout and os.path.exists(core_exit) and os.path.exists(core_use),
     "import-p12 under gdb, password from a pipe: imported, core images taken",
     g.stdout[-2000:] + g.stderr[-1000:])
t.ok(os.path.exists(core_use) and found(core_use, P12_PW),
     "control: the core taken during the import holds the password")
t.eq(found(core_exit, P12_PW) if os.path.exists(core_exit) else ["no core"], [],
     "import-p12, core at exit: no copy of the password (no stdio buffer)")

shutil.rmtree(tmp, ignore_errors=True)
t.done()
