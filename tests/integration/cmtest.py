# SPDX-License-Identifier: LGPL-2.1-or-later
"""Shared helpers for cacmail's integration tests (TAP output, real CLI, temp dirs only)."""
import configparser
import json
import os
import shutil
import subprocess
import sys
import tempfile

SOURCE = os.environ.get("CACMAIL_SOURCE_ROOT") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("CACMAIL_BUILD_ROOT") or os.path.join(SOURCE, "build")
CACMAIL = os.path.join(BUILD, "cli", "cacmail")
GSA = os.environ.get("CACMAIL_GSA_DIR") or os.path.join(SOURCE, "..", "shared", "testdata",
                                                          "gsa-piv-cards")
GSA_CARDS = os.path.join(GSA, "cards")
SKIP = 77


def skip(why):
    print(f"1..0 # SKIP {why}")
    sys.exit(SKIP)


def need(tool):
    if shutil.which(tool) is None:
        skip(f"{tool} is not installed (scripts/test installs it)")


class Tap:
    """Minimal TAP producer: every check is one test point, failures are listed at the end."""

    def __init__(self):
        self.n = 0
        self.failed = []

    def ok(self, cond, name, detail=None):
        self.n += 1
        if cond:
            print(f"ok {self.n} - {name}")
        else:
            print(f"not ok {self.n} - {name}")
            if detail is not None:
                for line in str(detail).splitlines():
                    print(f"#   {line}")
            self.failed.append(name)
        sys.stdout.flush()
        return cond

    def eq(self, got, want, name):
        return self.ok(got == want, name, f"got:  {got!r}\nwant: {want!r}")

    def done(self):
        print(f"1..{self.n}")
        sys.exit(1 if self.failed else 0)


def run(*args, check=True, env=None):
    """Run the real CLI; returns CompletedProcess with text output."""
    p = subprocess.run([CACMAIL, *args], capture_output=True, text=True, env=env)
    if check and p.returncode != 0:
        raise AssertionError(f"cacmail {' '.join(args)} exited {p.returncode}: {p.stderr}")
    return p


def run_json(*args):
    return json.loads(run(*args, "--json").stdout)


def make_pki(tmp):
    out = os.path.join(tmp, "pki")
    subprocess.run([os.path.join(SOURCE, "tests", "pki", "make-pki"), out], check=True,
                   capture_output=True)
    with open(os.path.join(out, "manifest.json")) as f:
        return out, json.load(f)


def tmpdir():
    return tempfile.TemporaryDirectory(prefix="cacmail-test-")


def gsa_cards():
    return sorted(d for d in os.listdir(GSA_CARDS) if os.path.isdir(os.path.join(GSA_CARDS, d)))


def read_properties(path):
    props = {}
    with open(path) as f:
        for line in f:
            if "=" in line:
                k, v = line.rstrip("\n").split("=", 1)
                props[k] = v
    return props


_validator = None


def schema_errors(doc):
    """The ways @doc breaks docs/cacmail.schema.json (empty: valid). Skips the test (77) when
    python3-jsonschema is missing; scripts/test installs it, so CI never skips."""
    global _validator
    if _validator is None:
        try:
            import jsonschema
        except ImportError:
            skip("python3-jsonschema is not installed (scripts/test installs it)")
        with open(os.path.join(SOURCE, "docs", "cacmail.schema.json")) as f:
            _validator = jsonschema.Draft202012Validator(json.load(f))
    return [f"{list(e.path)}: {e.message}" for e in _validator.iter_errors(doc)]


def sandbox_home(tmp, address, smime_section="Secure MIME (S/MIME)"):
    """A sandbox HOME below tmp (returned): Evolution's NSS database (~/.pki/nssdb) and one mail
    identity for address with empty S/MIME settings, and a Thunderbird profile (profiles.ini,
    one account whose identity is address) with its own NSS database, both made by certutil."""
    home = os.path.join(tmp, "home")
    evo = os.path.join(home, ".pki", "nssdb")
    tb_root = os.path.join(home, ".thunderbird")
    prof = os.path.join(tb_root, "abcd1234.default")
    for d in (evo, prof, os.path.join(home, ".config", "evolution", "sources")):
        os.makedirs(d)
    for db in (evo, prof):
        subprocess.run(["certutil", "-N", "-d", f"sql:{db}", "--empty-password"], check=True)
    with open(os.path.join(tb_root, "profiles.ini"), "w") as f:
        f.write("[General]\nStartWithLastProfile=1\n\n[Profile0]\nName=default\nIsRelative=1\n"
                "Path=abcd1234.default\nDefault=1\n")
    with open(os.path.join(prof, "prefs.js"), "w") as f:
        f.write('user_pref("mail.accountmanager.accounts", "account1");\n'
                'user_pref("mail.account.account1.identities", "id1");\n'
                f'user_pref("mail.identity.id1.useremail", "{address}");\n')
    cp = configparser.ConfigParser(interpolation=None)
    cp.optionxform = str
    cp["Data Source"] = {"DisplayName": "ctr", "Enabled": "true", "Parent": ""}
    cp["Mail Identity"] = {"Address": address, "Name": "John Doe"}
    cp[smime_section] = {"SigningCertificate": "", "EncryptionCertificate": "",
                         "SignByDefault": "false", "EncryptByDefault": "false",
                         "EncryptToSelf": "true", "SigningAlgorithm": ""}
    with open(os.path.join(home, ".config", "evolution", "sources", "ctr.source"), "w") as f:
        cp.write(f, space_around_delimiters=False)
    return home
