#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The generated test PKI (tests/pki/make-pki): every cert's role, UPN, GUID and persona as the
manifest says, from single files and from the card folders; every scenario's picks, decrypt-only
list and problems, from the card folders and again from the same certificates as loose files
(the manifest's "loose" overrides); and chains to the generated root through both EMAIL CAs."""
import glob
import os

from cmtest import Tap, make_pki, run, run_json, tmpdir


def loose_inputs(pki, inputs):
    """A scenario's inputs as loose files: each card folder becomes its .crt files."""
    out = []
    for i in inputs:
        path = os.path.join(pki, i)
        out += sorted(glob.glob(os.path.join(path, "*.crt"))) if os.path.isdir(path) else [path]
    return out


def check_pick(t, name, got, want, old=()):
    for k in ("login", "signing", "encryption", "decrypt_only"):
        t.eq(got[k], want[k], f"{name}: {k}")
    codes = {x["code"] for x in got["problems"]}
    if want["problems"]:
        t.ok(set(want["problems"]) <= codes, f"{name}: problems {want['problems']}", codes)
    else:
        t.eq(codes, set(), f"{name}: no problems")
    for x in got["problems"]:
        t.ok(x["message"] and x["hint"], f"{name}: {x['code']} has a message and a hint")
    if old:
        t.ok(got["signing"] not in old and got["encryption"] not in old,
             f"{name}: an old-generation cert is never picked to sign or encrypt")


t = Tap()
with tmpdir() as tmp:
    pki, m = make_pki(tmp)
    at = "2026-06-01"
    cards = {c["name"]: c for c in m["cards"]}

    # Roles, SAN identities and personas from each file alone (no slot, no card known).
    for c in m["certs"]:
        r = run_json("certs", "--at", at, os.path.join(pki, c["file"]))["certs"][0]
        t.eq(r["role"], c["role"], f"{c['file']}: role")
        t.eq(r["sha256"], c["sha256"], f"{c['file']}: sha256")
        t.eq([r["upn"], r["uuid"]], [c["upn"], c["guid"]],
             f"{c['file']}: UPN and GUID of its SAN as the profile says")
        if c["role"] == "piv-auth":
            card = cards[c["card"]]
            t.eq(r["persona_id"], c["persona_id"],
                 f"{c['file']}: persona from its 16-digit UPN" if card["edipi"]
                 else f"{c['file']}: no persona ID on a PIV-I card")
            t.eq(r["edipi"], card["edipi"], f"{c['file']}: EDIPI")

    # Roles, slots and personas with every card read as a folder.
    rep = run_json("certs", "--at", at, *[os.path.join(pki, "cards", n) for n in cards])
    by_sha = {c["sha256"]: c for c in rep["certs"]}
    for c in m["certs"]:
        if not c["card"]:
            continue
        got = by_sha.get(c["sha256"])
        t.ok(got is not None and got["role"] == c["role"], f"folder {c['file']}: role",
             got and got["role"])
        if c["card"] != "reservist-same-email":
            t.eq(got["persona_id"], c["persona_id"], f"folder {c['file']}: persona")
        t.ok(c["slot"] in [s["slot"] for s in got["sources"]], f"folder {c['file']}: slot")
    t.eq(len(rep["cards"]), len(cards), "one card object per card folder")
    for card in rep["cards"]:
        want = cards[os.path.basename(card["label"])]
        fascn = card["chuid"]["fascn"] if card["chuid"] else None
        t.eq(fascn and fascn["hex"], want["fascn"], f"{want['name']}: CHUID decodes, its FASC-N")
        t.eq(sorted(s["slot"] for s in card["certs"]),
             sorted(c["slot"] for c in m["certs"] if c["card"] == want["name"]),
             f"{want['name']}: the card's slots, CAC ones only on DoD cards")
        if want["edipi"] is None:
            t.eq(card["identity"], f"uuid:{want['guid']}",
                 f"{want['name']}: agency 9999, the GUID is the card's identity")
    t.eq(rep["problems"], [], "generated cards have no card problems")

    # Scenarios: picks, decrypt-only and problems exactly as the generator intends, from the
    # card folders and from the same certificates as loose files (where a loose file can no
    # longer say that a cert is a retired one, the manifest's "loose" expects it picked).
    old = [c["sha256"] for c in m["certs"] if "old" in c["file"]]
    for s in m["scenarios"]:
        inputs = [os.path.join(pki, i) for i in s["inputs"]]
        forms = [("files" if s["files_only"] else "folders", inputs)]
        if not s["files_only"] and not s["folders_only"]:
            forms.append(("loose", loose_inputs(pki, s["inputs"])))
        for form, args in forms:
            for p in s["picks"]:
                want = {**p, **p.get("loose", {})} if form == "loose" else p
                got = run_json("pick", "--at", s["at"], "--email", p["email"], *args)
                check_pick(t, f"{s['name']} ({form}) {p['email']}", got, want,
                           old if form != "loose" else ())

    # Chains to the generated root: signing certs through EMAIL CA-62, encryption certs through
    # EMAIL CA-64, PIV-I certs through their own CA; a missing CA is reported.
    ca = [a for f in m["ca_files"] for a in ("--ca", os.path.join(pki, f))]
    for name, card in cards.items():
        got = run_json("pick", "--at", at, "--email", card["email"], *ca,
                       os.path.join(pki, "cards", name))
        t.eq([x["code"] for x in got["problems"]], [], f"{name}: picks chain to the generated root")
    contractor = os.path.join(pki, "cards", "contractor")
    email = cards["contractor"]["email"]
    no64 = [a for f in m["ca_files"] if "64" not in f for a in ("--ca", os.path.join(pki, f))]
    got = run_json("pick", "--at", at, "--email", email, *no64, contractor)
    t.ok([x["code"] for x in got["problems"]] == ["chain-untrusted"]
         and "encryption" in got["problems"][0]["message"],
         "without EMAIL CA-64: the encryption cert does not chain", got["problems"])
    got = run_json("pick", "--at", at, "--email", email, "--ca",
                   os.path.join(pki, "ca", "root.crt"), contractor)
    t.ok({x["code"] for x in got["problems"]} == {"chain-untrusted"},
         "without the intermediates: chain-untrusted (missing DoD chain)")

    # Human output names the picks and the problems.
    out = run("pick", "--at", at, "--email", email, contractor,
              os.path.join(pki, "cards", "reservist-same-email")).stdout
    t.ok("email-shared-by-personas" in out and "fix:" in out,
         "text output shows the shared-email problem with its fix", out)

t.done()
