#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# vcard-opensc.sh: OpenSC (0.23, Debian 12) reads and uses the virtual card (cacmail-vcard)
# through the real pcscd + vpcd, in tests/harness/with-pcscd.
#
# Checks, on the GSA golden cards 01 and 46:
#   - pkcs11-tool -O lists the 4 certificates; --read-object --type cert --id 01..04 returns the
#     card folder's DER byte for byte; pkcs11-tool --test --login passes (RSA signing, decryption)
#   - the same with --short-only (and an extended APDU is refused with 6700), with --gzip
#     (CertInfo 01), and extended-length APDUs sent with scriptor (one response, no 61xx)
#   - three wrong PINs block the PIN: 63C2, 63C1, then 6983 for every VERIFY
#   - a card removed mid-read (remove-after) makes the read fail; after "insert" it works
#   - the CAC applets through OpenSC's cac driver (forced in a temporary opensc.conf)
#   - an EC card made here (P-256, P-384: ECDSA; ECDH), two cards at once, a nested harness
# Exit 0 pass, 1 fail, 77 skip (no pcscd / vpcd / OpenSC / not root).
set -u

here=$(cd "$(dirname "$0")" && pwd)
src=${CACMAIL_SOURCE_ROOT:-$(cd "$here/../.." && pwd)}
harness="$src/tests/harness/with-pcscd"
gsa=${CACMAIL_GSA_DIR:-$src/../shared/testdata/gsa-piv-cards}
cards="$gsa/cards"

module=${OPENSC_PKCS11_MODULE:-}
if [ -z "$module" ]; then
  for m in /usr/lib/x86_64-linux-gnu/opensc-pkcs11.so /usr/lib/aarch64-linux-gnu/opensc-pkcs11.so \
           /usr/lib/opensc-pkcs11.so /usr/lib64/opensc-pkcs11.so; do
    [ -e "$m" ] && { module=$m; break; }
  done
fi
export OPENSC_PKCS11_MODULE=$module

# ---------------------------------------------------------------------------------------------
# inner part: runs inside the harness, one scenario per call
# ---------------------------------------------------------------------------------------------
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
pass() { echo "ok: $*"; }
p11() { pkcs11-tool --module "$OPENSC_PKCS11_MODULE" "$@"; }
ctl() { "$CACMAIL_VCARD" --control "$CACMAIL_VCARD_CONTROL_DIR/card${2:-0}.sock" --send "$1"; }
log0() { echo "$CACMAIL_VCARD_LOG_DIR/card0.log"; }

# the DER of the first certificate file "<prefix> - *.crt" of a card folder
folder_der() {
  local f
  f=$(find -L "$1" -maxdepth 1 -name "$2 - *.crt" | sort | head -n 1)
  [ -n "$f" ] || return 1
  if grep -q -- '-----BEGIN CERTIFICATE-----' "$f"; then
    sed -n '/-----BEGIN CERTIFICATE-----/,/-----END CERTIFICATE-----/p' "$f" \
      | grep -v -- '-----' | base64 -d
  else
    cat "$f"
  fi
}

# reader 0 shows (Yes) or lacks (No) a card, within 5 s
wait_reader() {
  local t
  for ((t = 0; t < 50; t++)); do
    opensc-tool -l 2>/dev/null | grep -q "^0 *$1 " && return 0
    sleep 0.1
  done
  return 1
}

# compare the certificates read through PKCS#11 with the card folder's
check_read_objects() { # DIR "ID:prefix ..." what
  local id prefix pair
  for pair in $2; do
    id=${pair%%:*}; prefix=${pair#*:}
    rm -f "$TMPD/got.der" "$TMPD/want.der"
    folder_der "$1" "$prefix" > "$TMPD/want.der" || { fail "$3: no '$prefix - ' cert in $1"; continue; }
    if ! p11 --read-object --type cert --id "$id" -o "$TMPD/got.der" >/dev/null 2>&1; then
      fail "$3: --read-object --id $id failed"
    elif cmp -s "$TMPD/got.der" "$TMPD/want.der"; then
      pass "$3: cert id $id byte-identical to '$prefix - ' ($(stat -c %s "$TMPD/got.der") bytes)"
    else
      fail "$3: cert id $id differs from the card folder"
    fi
  done
}

count_certs() { p11 -O 2>/dev/null | grep -c '^Certificate Object'; }

scenario_piv() { # DIR what
  local n out
  n=$(count_certs)
  [ "$n" = 4 ] && pass "$2: -O lists 4 certificates" || fail "$2: -O lists $n certificates, want 4"
  echo "   APDUs for the listing: $(grep -c '^C ' "$(log0)")"
  check_read_objects "$1" "01:3 02:4 03:5 04:6" "$2"
  out=$(p11 --test --login --pin 123456 2>&1)
  if [ $? = 0 ] && echo "$out" | grep -q '^No errors'; then
    pass "$2: pkcs11-tool --test --login (signatures, decryption)"
  else
    fail "$2: pkcs11-tool --test --login"; echo "$out" | tail -n 15
  fi
  if grep -q '^C 1087' "$(log0)"; then pass "$2: GENERAL AUTHENTICATE used command chaining"
  else fail "$2: no chained GENERAL AUTHENTICATE in the log"; fi
}

scenario_short_only() { # DIR
  local n
  : > "$(log0)"
  n=$(count_certs)
  [ "$n" = 4 ] && pass "short-only: -O lists 4 certificates" || fail "short-only: $n certificates"
  echo "   short-only: pkcs11-tool -O used $(grep -c '^C ' "$(log0)") APDUs," \
       "$(grep '^C ' "$(log0)" | awk '{n += length($2) / 2} END {print n}') command bytes," \
       "$(grep '^R ' "$(log0)" | awk '{n += length($2) / 2} END {print n}') response bytes"
  check_read_objects "$1" "01:3 04:6" "short-only"
  if command -v scriptor >/dev/null 2>&1; then
    printf '00 A4 04 00 09 A0 00 00 03 08 00 00 10 00 00\n00 CB 3F FF 00 00 05 5C 03 5F C1 05 00 00\n' \
      | scriptor >/dev/null 2>&1
    if grep -A1 '^C 00CB3FFF0000055C035FC1050000$' "$(log0)" | grep -q '^R 6700$'; then
      pass "short-only: an extended APDU is answered 6700"
    else
      fail "short-only: the extended APDU was not refused with 6700"
    fi
  fi
}

scenario_extended() { # DIR
  command -v scriptor >/dev/null 2>&1 || { echo "   (no scriptor: extended APDUs not tried)"; return; }
  local der len want got
  der=$(folder_der "$1" 3 | od -An -v -tx1 | tr -d ' \n' | tr a-f A-F)
  len=$(( ${#der} / 2 ))
  printf '00 A4 04 00 09 A0 00 00 03 08 00 00 10 00 00\n00 CB 3F FF 00 00 05 5C 03 5F C1 05 00 00\n' \
    | scriptor >/dev/null 2>&1
  got=$(grep -A1 '^C 00CB3FFF0000055C035FC1050000$' "$(log0)" | sed -n 's/^R //p')
  # 53 82 LL LL { 70 82 LL LL cert 71 01 00 FE 00 } 90 00
  want=$(printf '5382%04X7082%04X%s710100FE009000' $((len + 9)) "$len" "$der")
  if [ "$got" = "$want" ]; then
    pass "extended: GET DATA with Le 0000 returned the whole container ($((len + 13)) bytes) at once"
  else
    fail "extended: unexpected answer to an extended GET DATA (${got:0:40}...)"
  fi
}

scenario_gzip() { # DIR
  local n
  n=$(count_certs)
  [ "$n" = 4 ] && pass "gzip: -O lists 4 certificates" || fail "gzip: $n certificates"
  check_read_objects "$1" "01:3 02:4 03:5 04:6" "gzip"
  if grep -q '^R .*710101FE009000$' "$(log0)"; then pass "gzip: containers carry CertInfo 01"
  else fail "gzip: no CertInfo 01 in the answers"; fi
}

apdu_sw() { # the SW of the last APDU sent with opensc-tool -s
  opensc-tool -s "00 A4 04 00 09 A0 00 00 03 08 00 00 10 00 00" -s "$1" 2>&1 \
    | sed -n 's/^Received (SW1=0x\(..\), SW2=0x\(..\)).*/\1\2/p' | tail -n 1 | tr a-f A-F
}

scenario_pin() {
  local sw out
  sw=$(apdu_sw "00 20 00 80")
  [ "$sw" = 63C3 ] && pass "pin: VERIFY without data says 63C3" || fail "pin: VERIFY status $sw, want 63C3"
  sw=$(apdu_sw "00 20 00 80 08 31 32 33 34 35 36 FF FF")
  [ "$sw" = 9000 ] && pass "pin: the right PIN -> 9000" || fail "pin: right PIN gave $sw"
  opensc-tool --reset >/dev/null 2>&1
  sw=$(apdu_sw "00 20 00 80")
  [ "$sw" = 63C3 ] && pass "pin: a card reset clears the PIN status" || fail "pin: after reset $sw"
  out=$(p11 --login --pin 999999 -O 2>&1)
  echo "$out" | grep -q CKR_PIN_INCORRECT && pass "pin: wrong PIN -> CKR_PIN_INCORRECT" \
    || fail "pin: wrong PIN not reported"
  sw=$(apdu_sw "00 20 00 80")
  [ "$sw" = 63C2 ] && pass "pin: 2 tries left (63C2)" || fail "pin: status $sw, want 63C2"
  sw=$(apdu_sw "00 20 00 80 08 39 39 39 39 39 39 FF FF")
  [ "$sw" = 63C1 ] && pass "pin: second wrong PIN -> 63C1" || fail "pin: got $sw, want 63C1"
  sw=$(apdu_sw "00 20 00 80 08 39 39 39 39 39 39 FF FF")
  [ "$sw" = 6983 ] && pass "pin: third wrong PIN -> 6983" || fail "pin: got $sw, want 6983"
  sw=$(apdu_sw "00 20 00 80 08 31 32 33 34 35 36 FF FF")
  [ "$sw" = 6983 ] && pass "pin: the right PIN is refused too once blocked (6983)" \
    || fail "pin: right PIN after block gave $sw"
  out=$(p11 --login --pin 123456 -O 2>&1)
  echo "$out" | grep -q CKR_PIN_LOCKED && pass "pin: pkcs11-tool login -> CKR_PIN_LOCKED" \
    || fail "pin: pkcs11-tool did not report CKR_PIN_LOCKED"
  p11 -T 2>/dev/null | grep -q 'user PIN locked' && pass "pin: token flags say 'user PIN locked'" \
    || fail "pin: token flags do not say the PIN is locked"
}

scenario_remove() { # DIR
  local rc st
  [ "$(ctl 'remove-after 20')" = ok ] || fail "remove: control command refused"
  p11 --read-object --type cert --id 03 -o "$TMPD/part.der" >/dev/null 2>&1
  rc=$?
  [ "$rc" != 0 ] && pass "remove: the read failed when the card left after 20 APDUs" \
    || fail "remove: the read succeeded although the card was removed"
  st=$(ctl status)
  echo "$st" | grep -q 'inserted=0 connected=0' && pass "remove: status says removed ($st)" \
    || fail "remove: status $st"
  wait_reader No && pass "remove: pcscd sees the reader empty" || fail "remove: reader still shows a card"
  [ "$(ctl insert)" = ok ] || fail "remove: insert refused"
  wait_reader Yes && pass "remove: card back after insert" || fail "remove: card not back after insert"
  check_read_objects "$1" "03:5" "remove (after insert)"
}

scenario_remove_cli() { # DIR, harness started the card with --remove-after=5
  p11 -O >/dev/null 2>&1 && fail "remove-cli: listing succeeded past --remove-after=5" \
    || pass "remove-cli: --remove-after=5 on the command line removes the card"
  [ "$(grep -c '^C ' "$(log0)")" = 5 ] && pass "remove-cli: exactly 5 APDUs answered" \
    || fail "remove-cli: $(grep -c '^C ' "$(log0)") APDUs answered, want 5"
  ctl insert >/dev/null
  wait_reader Yes || fail "remove-cli: card not back"
  [ "$(count_certs)" = 4 ] && pass "remove-cli: all 4 certificates after insert" \
    || fail "remove-cli: listing after insert"
}

scenario_cac() { # DIR (with CAC0..CAC2 files)
  local n out
  export OPENSC_CONF="$TMPD/opensc-cac.conf"
  printf 'app default {\n  card_drivers = cac;\n}\n' > "$OPENSC_CONF"
  opensc-tool -n 2>/dev/null | grep -q 'Common Access Card' && pass "cac: OpenSC's cac driver took the card" \
    || fail "cac: the cac driver did not take the card"
  n=$(count_certs)
  [ "$n" = 3 ] && pass "cac: -O lists the 3 CAC certificates" || fail "cac: $n certificates, want 3"
  p11 -O 2>/dev/null | grep -q 'CAC Email Signature Certificate' || fail "cac: labels"
  check_read_objects "$1" "0001:CAC0 0002:CAC1 0003:CAC2" "cac"
  out=$(p11 --test --login --pin 123456 2>&1)
  if [ $? = 0 ] && echo "$out" | grep -q '^No errors'; then pass "cac: --test --login (INS 42 signing)"
  else fail "cac: --test --login"; echo "$out" | tail -n 15; fi
  unset OPENSC_CONF
}

scenario_ec() { # DIR
  local id pub
  echo hello > "$TMPD/msg"
  for id in 01:3 02:4; do
    pub="$TMPD/pub${id%%:*}.pem"
    openssl x509 -in "$(find "$1" -name "${id#*:} - *.crt")" -pubkey -noout > "$pub"
    if p11 --login --pin 123456 --sign --mechanism ECDSA-SHA256 --id "${id%%:*}" -i "$TMPD/msg" \
         -o "$TMPD/sig" --signature-format openssl >/dev/null 2>&1 \
       && openssl dgst -sha256 -verify "$pub" -signature "$TMPD/sig" "$TMPD/msg" >/dev/null 2>&1; then
      pass "ec: ECDSA signature by key ${id%%:*} verifies"
    else
      fail "ec: ECDSA signature by key ${id%%:*}"
    fi
  done
  if p11 --login --pin 123456 --derive -m ECDH1-DERIVE --id 03 -i "$1/peer.der" \
       -o "$TMPD/shared" >/dev/null 2>&1 && cmp -s "$TMPD/shared" "$1/shared.expected"; then
    pass "ec: ECDH with the key management key gives the expected secret"
  else
    fail "ec: ECDH"
  fi
}

scenario_two_cards() {
  local n
  n=$(p11 -L 2>/dev/null | grep -c 'token label')
  [ "$n" = 2 ] && pass "two cards: 2 tokens" || fail "two cards: $n tokens"
  [ -S "$CACMAIL_VCARD_CONTROL_DIR/card1.sock" ] && [ -e "$CACMAIL_VCARD_LOG_DIR/card1.log" ] \
    && pass "two cards: card1.sock and card1.log exist" || fail "two cards: no card1 files"
  "$harness" --card "$cards/01_Golden_PIV" -- sh -c \
    'opensc-tool -l | grep -c "^[0-9] *Yes" | grep -qx 1' \
    && pass "nested: an inner harness sees only its own card" || fail "nested harness"
}

if [ "${1:-}" = --inner ]; then
  shift
  TMPD=$(mktemp -d)
  export HOME="$TMPD/home" XDG_CACHE_HOME="$TMPD/cache"
  mkdir -p "$HOME"
  "scenario_$1" "${@:2}"
  rm -rf "$TMPD"
  [ "$fails" = 0 ]
  exit $?
fi

# ---------------------------------------------------------------------------------------------
# outer part
# ---------------------------------------------------------------------------------------------
for t in pkcs11-tool opensc-tool openssl base64; do
  command -v "$t" >/dev/null 2>&1 || { echo "SKIP: $t not found"; exit 77; }
done
[ -n "$module" ] || { echo "SKIP: opensc-pkcs11.so not found"; exit 77; }
[ -d "$cards/01_Golden_PIV" ] || { echo "SKIP: GSA cards not found in $cards"; exit 77; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
me=$(readlink -f "$0")
status=0
run() { # harness options... -- scenario args...
  "$harness" "$@"
  local rc=$?
  [ "$rc" = 77 ] && { echo "SKIP: the harness cannot run here"; exit 77; }
  [ "$rc" = 0 ] || status=1
}

c01="$cards/01_Golden_PIV"
c46="$cards/46_Golden_FIPS_201-2_PIV"
for c in "$c01" "$c46"; do
  echo "== $(basename "$c")"
  run --card "$c" -- "$me" --inner piv "$c" "$(basename "$c")"
done
echo "== short-only (46)"
run --short-only --card "$c46" -- "$me" --inner short_only "$c46"
echo "== extended (46)"
run --card "$c46" -- "$me" --inner extended "$c46"
echo "== gzip (01)"
run --gzip --card "$c01" -- "$me" --inner gzip "$c01"
echo "== PIN retry counter (01)"
run --card "$c01" -- "$me" --inner pin
echo "== removal (46)"
run --card "$c46" -- "$me" --inner remove "$c46"
run --vcard-arg --remove-after=5 --card "$c46" -- "$me" --inner remove_cli "$c46"

echo "== CAC applets (46 certificates in CAC0..CAC2)"
cac="$work/cac"
mkdir -p "$cac"
for f in "$c46"/*; do ln -s "$f" "$cac/"; done
for pair in 0:3 1:4 2:5; do
  for ext in crt p12; do
    f=$(find "$c46" -name "${pair#*:} - *.$ext" | sort | head -n 1)
    ln -s "$f" "$cac/CAC${pair%%:*} - $(basename "$f")"
  done
done
run --card "$cac" -- "$me" --inner cac "$cac"

echo "== EC card (P-256 PIV Auth, P-384 Digital Signature, P-256 Key Management)"
ec="$work/ec"
mkdir -p "$ec"
mkcert() { # prefix curve cn [ext]
  openssl req -x509 -newkey ec -pkeyopt "ec_paramgen_curve:$2" -nodes -keyout "$ec/key.pem" \
    -out "$ec/$1 - $3.crt" -subj "/CN=$3/O=cacmail test" -days 30 ${4:+-addext "$4"} 2>/dev/null \
  && openssl pkcs12 -export -inkey "$ec/key.pem" -in "$ec/$1 - $3.crt" -out "$ec/$1 - $3.p12" \
    -passout pass: 2>/dev/null
}
if mkcert 3 P-256 "EC PIV Auth" && mkcert 4 P-384 "EC Dig Sig" \
   && mkcert 5 P-256 "EC Key Mgmt" keyUsage=keyAgreement \
   && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$ec/peer.pem" 2>/dev/null \
   && openssl pkey -in "$ec/peer.pem" -pubout -outform DER -out "$ec/peer.der" \
   && openssl x509 -in "$ec/5 - EC Key Mgmt.crt" -pubkey -noout > "$ec/km.pub" \
   && openssl pkeyutl -derive -inkey "$ec/peer.pem" -peerkey "$ec/km.pub" -out "$ec/shared.expected"; then
  rm -f "$ec/key.pem"
  run --card "$ec" -- "$me" --inner ec "$ec"
else
  echo "FAIL: cannot make the EC card with openssl"; status=1
fi

echo "== two cards, nested harness"
run --card "$c01" --card "$c46" -- "$me" --inner two_cards

if [ "$status" = 0 ]; then echo "PASS"; else echo "FAILED"; fi
exit "$status"
