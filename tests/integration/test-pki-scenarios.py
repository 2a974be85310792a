#!/usr/bin/python3
"""The generated dual-persona PKI (tests/pki/make-pki): every cert's role and persona as the
manifest says, from the card folders and from single files; every scenario's picks, decrypt-only
list and problems; and chains to the generated root."""
import os

from cmtest import Tap, make_pki, run, run_json, tmpdir

t = Tap()
with tmpdir() as tmp:
    pki, m = make_pki(tmp)
    at = "2026-06-01"

    # Roles and personas from each file alone (no slot known).
    for c in m["certs"]:
        r = run_json("certs", "--at", at, os.path.join(pki, c["file"]))["certs"][0]
        t.eq(r["role"], c["role"], f"{c['file']}: role")
        t.eq(r["sha256"], c["sha256"], f"{c['file']}: sha256")
        if c["role"] == "piv-auth":
            t.eq(r["persona_id"], c["persona_id"], f"{c['file']}: persona from its 16-digit UPN")
            t.eq(r["edipi"], m["edipi"], f"{c['file']}: EDIPI")

    # Roles, slots and personas with both cards read as folders.
    cards = sorted({c["card"] for c in m["certs"] if c["card"]})
    rep = run_json("certs", "--at", at, *[os.path.join(pki, "cards", c) for c in cards])
    by_sha = {c["sha256"]: c for c in rep["certs"]}
    for c in m["certs"]:
        if not c["card"]:
            continue
        got = by_sha.get(c["sha256"])
        t.ok(got is not None and got["role"] == c["role"], f"folder {c['file']}: role",
             got and got["role"])
        if c["card"] != "reservist-same-email":
            t.eq(got["persona_id"], c["persona_id"], f"folder {c['file']}: persona")
        if c["slot"]:
            t.ok(c["slot"] in [s["slot"] for s in got["sources"]], f"folder {c['file']}: slot")
    t.eq(len(rep["cards"]), len(cards), "one card object per card folder")
    for card in rep["cards"]:
        t.ok(card["chuid"] is not None and card["chuid"]["fascn"]["agency_code"] == "0097",
             f"{card['label']}: CHUID decodes (DoD agency 0097)")
    t.eq(rep["problems"], [], "generated cards have no card problems")

    # Scenarios: picks, decrypt-only and problems exactly as the generator intends.
    for s in m["scenarios"]:
        inputs = [os.path.join(pki, i) for i in s["inputs"]]
        for p in s["picks"]:
            got = run_json("pick", "--at", s["at"], "--email", p["email"], *inputs)
            name = f"{s['name']} {p['email']}"
            for k in ("login", "signing", "encryption", "decrypt_only"):
                t.eq(got[k], p[k], f"{name}: {k}")
            codes = {x["code"] for x in got["problems"]}
            if p["problems"]:
                t.ok(set(p["problems"]) <= codes, f"{name}: problems {p['problems']}", codes)
            else:
                t.eq(codes, set(), f"{name}: no problems")
            for x in got["problems"]:
                t.ok(x["message"] and x["hint"], f"{name}: {x['code']} has a message and a hint")
            old = [c["sha256"] for c in m["certs"] if "old" in c["file"]]
            t.ok(got["signing"] not in old and got["encryption"] not in old,
                 f"{name}: an old-generation cert is never picked to sign or encrypt")

    # Chain to the generated DoD-like root; a wrong root is reported.
    ca = [a for f in ("root.crt", "id-ca.crt", "email-ca.crt")
          for a in ("--ca", os.path.join(pki, "ca", f))]
    contractor = os.path.join(pki, "cards", "contractor")
    email = [p["email"] for p in m["personas"] if p["card"] == "contractor"][0]
    got = run_json("pick", "--at", at, "--email", email, *ca, contractor)
    t.eq([x["code"] for x in got["problems"]], [], "picks chain to the generated root")
    got = run_json("pick", "--at", at, "--email", email, "--ca",
                   os.path.join(pki, "ca", "root.crt"), contractor)
    t.ok({x["code"] for x in got["problems"]} == {"chain-untrusted"},
         "without the intermediates: chain-untrusted (missing DoD chain)")

    # Human output names the picks and the problems.
    out = run("pick", "--at", at, "--email", email, os.path.join(pki, "cards", "contractor"),
              os.path.join(pki, "cards", "reservist-same-email")).stdout
    t.ok("email-shared-by-personas" in out and "fix:" in out,
         "text output shows the shared-email problem with its fix", out)

t.done()
