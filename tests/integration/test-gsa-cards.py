#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""GSA's real PIV test cards are third-party ground truth: every slot's cert gets the role of
its slot (from the folder and from renamed copies, where only the content speaks), every CHUID
decodes to the values GSA published, and the special cards report what is wrong with them."""
import glob
import os
import shutil

from cmtest import GSA_CARDS, Tap, gsa_cards, read_properties, run, run_json, tmpdir

AT = "2026-06-01"
SLOT_ROLE = {"3": "piv-auth", "4": "email-signing", "5": "email-encryption", "6": "card-auth"}
SLOT_NAME = {"3": "9a", "4": "9c", "5": "9d", "6": "9e"}
EMAIL = "icam.test.cards@gsa.gov"

t = Tap()
with tmpdir() as tmp:
    for card in gsa_cards():
        d = os.path.join(GSA_CARDS, card)
        rep = run_json("certs", "--at", AT, d)
        by_slot = {}
        for c in rep["certs"]:
            for s in c["sources"]:
                if s["slot"]:
                    by_slot[s["slot"]] = c
        for num, role in SLOT_ROLE.items():
            files = glob.glob(os.path.join(d, f"{num} - *.crt"))
            if not files:
                continue
            c = by_slot.get(SLOT_NAME[num])
            t.ok(c is not None and c["role"] == role, f"{card}: slot {SLOT_NAME[num]} is {role}",
                 c and (c["role"], c["reasons"]))
            # The same cert under a meaningless name: only its content can tell.
            for i, f in enumerate(files):
                copy = os.path.join(tmp, f"{card}-{num}-{i}.bin")
                shutil.copyfile(f, copy)
                r = run_json("certs", "--at", AT, copy)["certs"][0]
                t.eq(r["role"], role, f"{card}: renamed {os.path.basename(f)} is {role}")
                t.ok(not any(s["slot"] for s in r["sources"]), f"{card}: renamed copy has no slot")

        # CHUID against GSA's published properties.
        props = read_properties(glob.glob(os.path.join(d, "c*-chuid.properties"))[0])
        chuid = rep["cards"][0]["chuid"]
        t.eq(chuid["fascn"]["hex"], props["fascn"].upper(), f"{card}: CHUID FASC-N")
        t.eq(chuid["guid"], props["uuid"].lower(), f"{card}: CHUID GUID")
        t.eq(chuid["cardholder_uuid"], props["cardholderUuid"].lower(),
             f"{card}: CHUID cardholder UUID")
        exp = props["expirationDate"][:8]
        t.eq(chuid["expiry"], f"{exp[:4]}-{exp[4:6]}-{exp[6:8]}", f"{card}: CHUID expiry")
        t.ok(chuid["signed"], f"{card}: CHUID carries its issuer signature")

        codes = {p["code"] for p in rep["problems"]}
        want = {"15_CHUID_FASCN_mismatch": {"chuid-fascn-mismatch"},
                "19_CHUID_UUID_mismatch": {"chuid-uuid-mismatch"}}.get(card, set())
        t.eq(codes, want, f"{card}: card problems")
        pick = run_json("pick", "--at", AT, "--email", EMAIL, d)
        pcodes = {p["code"] for p in pick["problems"]}
        t.ok(want <= pcodes, f"{card}: pick reports the card's problems", pcodes)

    # Known FASC-N decoding (GSA README).
    c46 = run_json("certs", "--at", AT, os.path.join(GSA_CARDS, "46_Golden_FIPS_201-2_PIV"))
    f = c46["cards"][0]["chuid"]["fascn"]
    t.eq((f["agency_code"], f["system_code"], f["credential_number"], f["cs"], f["ici"], f["pi"],
          f["oc"], f["oi"], f["poa"]),
         ("4700", "0257", "000046", "1", "1", "0257000046", "1", "9999", "1"),
         "card 46 FASC-N fields")
    piv46 = [c for c in c46["certs"] if c["role"] == "piv-auth"][0]
    t.eq(piv46["upn"], "0257000046@gsa.gov", "card 46 PIV Auth has the 10-digit GSA UPN")
    t.eq(piv46["edipi"], None, "a non-mil UPN is no EDIPI")
    t.eq(c46["cards"][0]["identity"], "fascn:4700-0257-000046-1-1", "card 46 identity")

    # PIV-I: agency 9999 FASC-N, so the GUID is the identity.
    c02 = run_json("certs", "--at", AT, os.path.join(GSA_CARDS, "02_Golden_PIV-I"))
    t.eq(c02["cards"][0]["chuid"]["fascn"]["agency_code"], "9999", "card 02 agency 9999")
    t.eq(c02["cards"][0]["identity"], "uuid:be127ea0-d180-124d-e044-000f202b235a",
         "card 02 (PIV-I) identity is its GUID")

    # Validity: 13's PIV Auth expired, 12's not yet valid (valid by 2031).
    def piv_auth(card, at):
        rep = run_json("certs", "--at", at, os.path.join(GSA_CARDS, card))
        return [c for c in rep["certs"] if c["role"] == "piv-auth"][0]

    p13 = piv_auth("13_Certs_are_expired", AT)
    t.ok(not p13["valid_at"] and p13["not_after"] < "2026", "card 13 PIV Auth is expired",
         p13["not_after"])
    p12 = piv_auth("12_Certs_not_yet_valid", AT)
    t.ok(not p12["valid_at"] and p12["not_before"] > "2026", "card 12 PIV Auth not yet valid",
         p12["not_before"])
    t.ok(piv_auth("12_Certs_not_yet_valid", "2031-01-01")["valid_at"],
         "card 12 PIV Auth valid at 2031-01-01")
    pk13 = run_json("pick", "--at", AT, "--email", EMAIL,
                    os.path.join(GSA_CARDS, "13_Certs_are_expired"))
    t.ok(pk13["login"] is None and "piv-auth-expired" in {p["code"] for p in pk13["problems"]},
         "card 13: no login pick, piv-auth-expired reported")
    t.ok(pk13["signing"] is not None and pk13["encryption"] is not None,
         "card 13: its email certs are still picked")
    pk12 = run_json("pick", "--at", AT, "--email", EMAIL,
                    os.path.join(GSA_CARDS, "12_Certs_not_yet_valid"))
    t.ok(pk12["login"] is None
         and "piv-auth-not-yet-valid" in {p["code"] for p in pk12["problems"]},
         "card 12: piv-auth-not-yet-valid reported")

    # Card 53's Card Auth carries an email, and is still never picked for mail or login.
    d53 = os.path.join(GSA_CARDS, "53_FIPS_201-2_Large_Card_Auth_Cert")
    rep = run_json("certs", "--at", AT, d53)
    ca = [c for c in rep["certs"] if c["role"] == "card-auth"][0]
    pk = run_json("pick", "--at", AT, "--email", EMAIL, d53)
    t.ok(ca["sha256"] not in (pk["login"], pk["signing"], pk["encryption"]),
         "card 53: the Card Auth cert is never picked")

    # Same DER in two inputs: one object, both sources.
    d01 = os.path.join(GSA_CARDS, "01_Golden_PIV")
    f = os.path.join(d01, "4 - ICAM_PIV_Dig_Sig_SP_800-73-4.crt")
    rep = run_json("certs", "--at", AT, d01, f)
    sig = [c for c in rep["certs"] if c["role"] == "email-signing"]
    t.eq(len(sig), 1, "duplicate DER gives one cert object")
    t.eq(sorted(s["type"] for s in sig[0]["sources"]), ["card-folder", "file"],
         "the cert lists both sources")

    # Chains through GSA's CAs (cross-certificates included) with --ca.
    cas = sorted(glob.glob(os.path.join(os.path.dirname(GSA_CARDS), "ca", "*.crt")))
    ca_args = [a for c in cas for a in ("--ca", c)]
    for card in ("01_Golden_PIV", "46_Golden_FIPS_201-2_PIV", "02_Golden_PIV-I"):
        rep = run_json("certs", "--at", AT, *ca_args, os.path.join(GSA_CARDS, card))
        chains = {c["role"]: c["chain"] for c in rep["certs"]}
        t.eq(chains.get("piv-auth"), "ok", f"{card}: PIV Auth chains to a GSA test root")
        t.eq(chains.get("email-signing"), "ok", f"{card}: signing cert chains")
    # Without the root: no path.
    inter = [c for c in cas if "Signing_CA" in c]
    rep = run_json("pick", "--at", AT, "--email", EMAIL,
                   "--ca", os.path.join(os.path.dirname(GSA_CARDS), "ca",
                                        "37_ICAM_Test_Card_PIV-I_Root_CA.crt"),
                   *[a for c in inter for a in ("--ca", c)], d01)
    t.ok("chain-untrusted" in {p["code"] for p in rep["problems"]},
         "card 01 against only the PIV-I root: chain-untrusted reported")

t.done()
