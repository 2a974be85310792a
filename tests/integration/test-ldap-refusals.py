#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""cacmail republish refuses, with one line and nothing written, whatever is unsafe: another
address, someone else's entry, expired / not yet valid / untrusted certs, certs that are not
the card's own, an ambiguous entry, unverifiable TLS, refused StartTLS, a server that is down.
Also: LDAPS, SASL EXTERNAL, failover to a second URI, the config file; deadlines (a server that
accepts TCP and never answers TLS or StartTLS is given up after "timeout" seconds for the next
URI; Ctrl-C ends the wait at once); TLS always (--insecure skips the certificate check but still
sends StartTLS, seen through a relay; plain LDAP only with --allow-plain-ldap, loudly)."""
import importlib.util
import os
import shutil
import signal
import subprocess
import tempfile
import termios
import time

spec = importlib.util.spec_from_file_location(
    "ldaplib", os.path.join(os.path.dirname(os.path.abspath(__file__)), "test-ldap-lib.py"))
L = importlib.util.module_from_spec(spec)
spec.loader.exec_module(L)
from cmtest import Tap  # noqa: E402

Relay, Stalled = L.Relay, L.Stalled

pki = L.reexec(os.path.abspath(__file__), ["contractor"])
t = Tap()
tmp = tempfile.mkdtemp(prefix="ldap-refusals-")
c = L.Ctx(pki, tmp)
DN = c.dn("contractor")
OTHER = c.dn("someone")
E = os.environ


def refused(p, code, must_say, what):
    n = L.mod_count()
    L.one_line_error(t, p, code, must_say, what)
    t.eq(n, refused.n0, f"{what}: nothing written (no MOD)")


def start():
    refused.n0 = L.mod_count()


def with_opt(args, opt, value):
    args = list(args)
    if opt in args:
        args[args.index(opt) + 1] = value
    else:
        args += [opt, value]
    return args


# ---- the address and the entry ---------------------------------------------------------------
start()
args = with_opt(c.args(uid="someone"), "--entry-dn", OTHER)
refused(c.run(base=args), 5, "has mail jane.roe@mail.mil, not john.q.doe.ctr",
        "entry of another address")

start()
args = with_opt(with_opt(c.args(), "--entry-dn", OTHER), "--bind-dn", DN)
refused(c.run(base=args), 5, "has mail jane.roe@mail.mil", "someone else's entry (mail differs)")

# someone else's entry that carries our address: refused by us (bound identity), before the ACL
L.admin_modify(f"dn: {OTHER}\nchangetype: modify\nadd: mail\nmail: {L.CTR}\n-\n")
start()
args = with_opt(with_opt(c.args(), "--entry-dn", OTHER), "--bind-dn", DN)
p = c.run(base=args)
refused(p, 5, "writes only your own entry", "someone else's entry with our address")

# ---- not unique ------------------------------------------------------------------------------
start()
refused(c.run(), 5, "2 entries match (mail=john.q.doe.ctr@mail.mil)",
        "two entries with the address")
L.admin_modify(f"dn: {OTHER}\nchangetype: modify\ndelete: mail\nmail: {L.CTR}\n-\n")

# ---- the certificates ------------------------------------------------------------------------
start()
refused(c.run("--at", "2029-01-01"), 5, "expired", "expired certificates")
start()
p = c.run("--at", "2025-06-01")
# from NSS the card's certs carry no slot: at that date the retired encryption cert (valid then)
# counts as another persona's, and core may name that instead of the not-yet-valid signing cert
refused(p, 5, "nothing published", "not yet valid certificates")
t.ok("not valid until" in p.stderr or "signing-cert-missing" in p.stderr,
     "not yet valid: says why", p.stderr)
untrusted = L.make_nssdb(tmp, pki, name="untrusted", trust_root=False)
start()
refused(c.run(nssdb=untrusted), 5, "does not chain to a trusted root", "untrusted root")
# a soft-token copy of another persona's newer certs for the address is not the card's own
same = os.path.join(pki, "cards", "reservist-same-email")
soft = L.make_nssdb(tmp, pki, name="soft", p12s=[os.path.join(same, "4 - Dig_Sig.p12"),
                                                  os.path.join(same, "5 - Key_Mgmt.p12")])
start()
# (the soft copies are another persona's current certs for the address: the shared address is
# the real cause, and republish names it)
refused(c.run(nssdb=soft), 5, "email-shared-by-personas",
        "another persona's certificates for the address")
start()
refused(c.run("--token", "DOE.JOHN.QUINCY.1234567890", nssdb=soft), 5,
        "email-shared-by-personas", "--token names the card, another persona's certs elsewhere")
noopensc = L.make_nssdb(tmp, pki, name="noopensc", opensc=False)
start()
refused(c.run(nssdb=noopensc), 4, "no card was found", "no card module")

# ---- TLS -------------------------------------------------------------------------------------
wrong_ca = os.path.join(pki, "ca", "root.crt")
start()
refused(c.run(base=with_opt(c.args(), "--ca-file", wrong_ca)), 4, "could not be verified",
        "StartTLS, server cert from another CA")
start()
refused(c.run(base=with_opt(with_opt(c.args(), "--ca-file", wrong_ca), "--uri",
                            E["CACMAIL_LDAPS_URI"])), 4, "could not be verified",
        "LDAPS, server cert from another CA")
start()
refused(c.run(base=with_opt(c.args(), "--uri", E["CACMAIL_LDAP_PLAIN_URI"])), 4,
        "refused StartTLS", "StartTLS refused")
start()
refused(c.run(base=with_opt(c.args(), "--ca-file", os.path.join(tmp, "nope.pem"))), 2,
        "does not exist", "missing CA file")

# ---- servers ---------------------------------------------------------------------------------
start()
refused(c.run(base=with_opt(c.args(), "--uri", "ldap://127.0.0.1:1")), 4, "cannot reach",
        "server down")
p = c.run("--dry-run", base=with_opt(c.args(), "--uri",
                                      "ldap://127.0.0.1:1 " + E["CACMAIL_LDAP_URI"]))
t.ok(p.returncode == 0 and "dry run" in p.stdout, "first URI down: the second one is used",
     p.stderr)
p = c.run(base=with_opt(c.args(), "--uri", E["CACMAIL_LDAPS_URI"]))
t.ok(p.returncode == 0 and L.read_entry(DN)["certs"][:1] ==
     [L.card_cert(pki, "contractor", "5 - Key_Mgmt.crt")], "LDAPS: published", p.stderr)
u = c.users["contractor"]
args = [a for a in c.args() if a not in ("--password-file", u["password_file"])]
args = with_opt(with_opt(with_opt(with_opt(args, "--uri", E["CACMAIL_LDAPS_URI"]), "--bind",
                                  "external"), "--client-cert", u["cert"]), "--client-key",
                u["key"])
p = c.run(base=args)
t.ok(p.returncode == 0 and "verified" in p.stdout, "SASL EXTERNAL over LDAPS: published",
     p.stderr)
args = with_opt(with_opt(args, "--client-cert", c.users["someone"]["cert"]), "--client-key",
                c.users["someone"]["key"])
start()
refused(c.run(base=args), 5, "writes only your own entry", "SASL EXTERNAL as someone else")

# GSSAPI without a Kerberos ticket (no KDC here): one line saying what to do
args = [a for a in c.args() if a not in ("--password-file", u["password_file"])]
p = c.run(base=with_opt(args, "--bind", "gssapi"),
          env_extra={"KRB5CCNAME": os.path.join(tmp, "no-ccache")})
L.one_line_error(t, p, 1, "get a Kerberos ticket first", "GSSAPI bind without a ticket")

# ---- TLS always: --insecure skips the certificate check, not TLS ----------------------------
PW = open(u["password_file"]).read().strip().encode()
relay = Relay(E["CACMAIL_LDAP_URI"])
args = with_opt(with_opt(c.args(), "--uri", relay.uri()), "--ca-file", wrong_ca)
p = c.run("--insecure", "--dry-run", base=args)
t.ok(p.returncode == 0 and "WARNING: insecure" in p.stderr and "not verified" in p.stderr,
     "--insecure, server cert from another CA: works and warns", p.stderr)
t.ok(relay.starttls_sent() and not relay.saw(PW),
     "--insecure: StartTLS was sent (relay) and the password never crossed in clear text")
relay.clear()
p = c.run("--dry-run", base=args)
t.ok(p.returncode == 4 and relay.starttls_sent() and not relay.saw(PW),
     "control: the same without --insecure is refused (cert from another CA), nothing in clear",
     p.stderr)
# plain LDAP (a server without StartTLS) only with --allow-plain-ldap, loudly
plain = Relay(E["CACMAIL_LDAP_PLAIN_URI"])
start()
refused(c.run(base=with_opt(c.args(), "--uri", plain.uri())), 4, "refused StartTLS",
        "no TLS, no option")
t.ok(plain.starttls_sent() and not plain.saw(PW), "no TLS, no option: the password was not sent")
plain.clear()
start()
p = c.run("--insecure", base=with_opt(c.args(), "--uri", plain.uri()))
t.ok("WARNING: insecure" in p.stderr, "no TLS, --insecure: warns", p.stderr)
refused(L.without_warnings(p), 2, "set allow-plain-ldap = true",
        "no TLS, --insecure (which once allowed plain LDAP)")
t.ok(not plain.saw(PW), "no TLS, --insecure: the password was not sent")
plain.clear()
with open(os.path.join(tmp, "old.conf"), "w") as f:
    f.write(f"[ldap]\ninsecure = true\nuri = {plain.uri()}\n")
p = c.run("--dry-run", "--config", os.path.join(tmp, "old.conf"),
          base=[a for a in c.args() if a != "--uri" and a != E["CACMAIL_LDAP_URI"]])
L.one_line_error(t, L.without_warnings(p), 2, "insecure no longer allows plain LDAP",
                 "an old config relying on insecure = true for plain LDAP")
plain.clear()
p = c.run("--allow-plain-ldap", base=with_opt(c.args(), "--uri", plain.uri()))
t.ok(p.returncode == 0 and "WARNING: allow-plain-ldap" in p.stderr
     and "clear text" in p.stderr and "no TLS was used" in p.stdout,
     "--allow-plain-ldap: works on plain LDAP, warns before and after", p.stdout + p.stderr)
t.ok(plain.starttls_sent() and plain.saw(PW),
     "--allow-plain-ldap: StartTLS was tried first; refused, the password went in clear text")

# ---- deadlines: a server that accepts TCP and never answers ---------------------------------
stall = Stalled()
for scheme, what in (("ldaps", "TLS handshake"), ("ldap", "StartTLS")):
    t0 = time.monotonic()
    try:
        p = c.run("--dry-run", "--timeout", "2",
                  base=with_opt(c.args(), "--uri", f"{stall.uri(scheme)} {E['CACMAIL_LDAP_URI']}"),
                  timeout=30)
        took = time.monotonic() - t0
    except subprocess.TimeoutExpired as e:
        p, took = e, time.monotonic() - t0
    t.ok(getattr(p, "returncode", None) == 0 and "dry run" in (p.stdout or ""),
         f"no answer to the {what} (--timeout 2): the next URI is used", p.stderr)
    t.ok(took < 2 + 3, f"no answer to the {what}: given up after the deadline ({took:.1f} s)")
t0 = time.monotonic()
try:
    p = c.run("--dry-run", "--timeout", "2", base=with_opt(c.args(), "--uri", stall.uri()),
              timeout=30)
    L.one_line_error(t, p, 4, "timed out (no answer within 2 s)", "only a stalled LDAPS server")
except subprocess.TimeoutExpired:
    t.ok(False, "only a stalled LDAPS server: cacmail ends")
t.ok(time.monotonic() - t0 < 2 + 3, "only a stalled LDAPS server: exit 4 within the deadline")
# the server hangs after cacmail read the entry: the write gets the same deadline
hang = Relay(E["CACMAIL_LDAP_URI"])
proc, tty = L.start_on_tty(with_opt(c.args(pin_file=False), "--uri", hang.uri())
                           + ["--timeout", "2"], env=dict(E, HOME=tmp, XDG_CONFIG_HOME=tmp))
L.answer_prompt(proc, tty, "PIN of the card", L.PIN + "\n", before=hang.freeze)
t0 = time.monotonic()
out, err = proc.communicate(timeout=60)
os.close(tty)
t.ok(proc.returncode == 4 and "gave no answer to the write within 2 s" in err
     and "either unchanged or fully updated" in err and time.monotonic() - t0 < 2 + 3,
     f"a server hanging at the write: exit 4 after the deadline ({time.monotonic() - t0:.1f} s "
     "from the PIN), says what may have happened", err)
hang.freeze(False)
# Ctrl-C while the handshake hangs (the same cancellable the Evolution module passes)
n = len(stall.held)
proc = subprocess.Popen([L.CACMAIL, *with_opt(c.args(), "--uri", stall.uri()), "--dry-run"],
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                        env=dict(E, HOME=tmp, XDG_CONFIG_HOME=tmp, LSAN_OPTIONS=L.LSAN))
t.ok(stall.wait_accepted(n + 1), "Ctrl-C: cacmail connected to the stalled server")
time.sleep(0.3)  # in the handshake now (default timeout: 15 s)
t0 = time.monotonic()
proc.send_signal(signal.SIGINT)
try:
    out, err = proc.communicate(timeout=10)
except subprocess.TimeoutExpired:
    proc.kill()
    out, err = proc.communicate()
t.ok(proc.returncode == 130 and err.strip() == "cacmail: cancelled: nothing was written"
     and time.monotonic() - t0 < 2,
     f"Ctrl-C during the TLS handshake: ends at once ({time.monotonic() - t0:.1f} s), exit 130, "
     "one line", (proc.returncode, err))

# Ctrl-C at the password prompt: the prompt ends, the terminal echoes again
args = [a for a in c.args() if a not in ("--password-file", u["password_file"])]
proc, tty = L.start_on_tty(args, env=dict(E, HOME=tmp, XDG_CONFIG_HOME=tmp, LSAN_OPTIONS=L.LSAN))
L.answer_prompt(proc, tty, "LDAP password for", "", before=lambda: proc.send_signal(signal.SIGINT))
out, err = proc.communicate(timeout=30)
echo = termios.tcgetattr(tty)[3] & termios.ECHO
os.close(tty)
t.ok(proc.returncode == 130 and "cancelled" in err and echo,
     "Ctrl-C at the password prompt: exit 130, the terminal echoes again", (proc.returncode, err))

# ---- secrets never in argv, no terminal ------------------------------------------------------
p = c.run("--password", "x")
t.eq(p.returncode, 2, "there is no --password option (usage error)")
args = [a for a in c.args() if a not in ("--password-file", u["password_file"])]
p = c.run(base=args, stdin=subprocess.DEVNULL, start_new_session=True)
L.one_line_error(t, p, 2, "no terminal", "no password file and no terminal")

# ---- the config file -------------------------------------------------------------------------
cfgdir = os.path.join(tmp, "config", "cacmail")
os.makedirs(cfgdir)
with open(os.path.join(cfgdir, "cacmail.conf"), "w") as f:
    f.write(f"[ldap]\nuri={E['CACMAIL_LDAP_URI']}\nbase={E['CACMAIL_LDAP_BASE']}\n"
            f"ca-file={E['CACMAIL_LDAP_CA']}\nemail={L.CTR}\n"
            f"password-file={u['password_file']}\nnssdb={c.nssdb}\n")
p = c.run("--dry-run", base=["republish", "--pin-file", c.pin_file])
t.ok(p.returncode == 0 and DN in p.stdout, "settings from cacmail.conf", p.stderr)
p = c.run("--dry-run", base=["republish", "--uri", "ldap://127.0.0.1:1"])
L.one_line_error(t, p, 4, "cannot reach", "an option overrides the config file")
with open(os.path.join(cfgdir, "cacmail.conf"), "a") as f:
    f.write("bogus=1\n")
p = c.run("--dry-run", base=["republish"])
L.one_line_error(t, p, 2, "key bogus", "unknown key in cacmail.conf")

shutil.rmtree(tmp, ignore_errors=True)
t.done()
