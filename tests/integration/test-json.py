#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The JSON contract: every document the CLI prints validates against docs/cacmail.schema.json,
and the documents for two GSA cards equal the golden files in tests/golden/ (set
CACMAIL_UPDATE_GOLDEN=1 to rewrite them after an intended change, and review the diff)."""
import json
import os
import subprocess

from cmtest import CACMAIL, GSA, SOURCE, Tap, gsa_cards, make_pki, skip, tmpdir

try:
    import jsonschema
except ImportError:
    skip("python3-jsonschema is not installed (scripts/test installs it)")

with open(os.path.join(SOURCE, "docs", "cacmail.schema.json")) as f:
    schema = json.load(f)
validator = jsonschema.Draft202012Validator(schema)
GOLDEN = os.path.join(SOURCE, "tests", "golden")
AT = "2026-06-01"
t = Tap()


def cli(*args, cwd=None):
    p = subprocess.run([CACMAIL, *args, "--json"], capture_output=True, text=True, cwd=cwd,
                       check=True)
    return json.loads(p.stdout)


def valid(doc, name):
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.path))
    t.ok(not errors, f"{name}: matches the schema",
         "\n".join(f"{list(e.path)}: {e.message}" for e in errors[:5]))


t.ok(validator.check_schema(schema) is None, "the schema itself is valid draft 2020-12")

for card in gsa_cards():
    d = os.path.join(GSA, "cards", card)
    valid(cli("certs", "--at", AT, d), f"certs {card}")
    valid(cli("pick", "--at", AT, "--email", "icam.test.cards@gsa.gov", d), f"pick {card}")
cas = [a for c in sorted(os.listdir(os.path.join(GSA, "ca")))
       for a in ("--ca", os.path.join(GSA, "ca", c))]
valid(cli("certs", "--at", AT, *cas, os.path.join(GSA, "cards", "01_Golden_PIV")),
      "certs with --ca (chain field)")

with tmpdir() as tmp:
    pki, m = make_pki(tmp)
    for s in m["scenarios"]:
        for p in s["picks"]:
            valid(cli("pick", "--at", s["at"], "--email", p["email"],
                      *[os.path.join(pki, i) for i in s["inputs"]]), f"pick {s['name']}")
    valid(cli("certs", "--at", AT, *[os.path.join(pki, "cards", c) for c in
                                     ("contractor", "reservist", "reservist-same-email")]),
          "certs on the generated cards")

# Goldens: run from the GSA folder with relative paths so the documents do not depend on where
# the checkout lives.
goldens = {
    "gsa-46-certs.json": ["certs", "--at", AT, "cards/46_Golden_FIPS_201-2_PIV"],
    "gsa-19-pick.json": ["pick", "--at", AT, "--email", "icam.test.cards@gsa.gov",
                         "cards/19_CHUID_UUID_mismatch"],
}
for name, args in goldens.items():
    got = cli(*args, cwd=GSA)
    path = os.path.join(GOLDEN, name)
    if os.environ.get("CACMAIL_UPDATE_GOLDEN") == "1":
        with open(path, "w") as f:
            json.dump(got, f, indent=2, sort_keys=False)
            f.write("\n")
    with open(path) as f:
        want = json.load(f)
    t.eq(got, want, f"golden {name}")

t.done()
