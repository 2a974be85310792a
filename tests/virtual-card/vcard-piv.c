/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* vcard-piv.c: the PIV Card Application (NIST SP 800-73-4 part 2). */
#include "vcard.h"

#include <string.h>

static const uint8_t piv_aid[]
  = { 0xA0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00, 0x01, 0x00 };

gboolean
vc_piv_aid_matches (const uint8_t *aid, size_t len)
{
  /* the full AID, or a right-truncated one down to the 9-byte PIX prefix */
  return len >= 9 && len <= sizeof piv_aid && memcmp (aid, piv_aid, len) == 0;
}

void
vc_piv_select (VcCard *card, const VcApdu *apdu, VcBuf *out)
{
  card->applet = VC_APPLET_PIV;
  vc_buf_clear (&card->cac_op);
  if (apdu->p2 == 0x0C)
    {
      VC_SW (out, 0x9000);
      return;
    }
  if (apdu->p2 != 0x00)
    {
      VC_SW (out, 0x6A86);
      return;
    }
  /* Application property template (SP 800-73-4 part 2, table 3) */
  VcBuf body = { 0 };
  vc_buf_tlv (&body, 0x4F, piv_aid + 5, sizeof piv_aid - 5);
  static const uint8_t authority[] = { 0x4F, 0x05, 0xA0, 0x00, 0x00, 0x03, 0x08 };
  vc_buf_tlv (&body, 0x79, authority, sizeof authority);
  static const char label[] = "cacmail virtual PIV card";
  vc_buf_tlv (&body, 0x50, label, strlen (label));
  static const uint8_t algs[]
    = { 0x80, 0x01, VC_ALG_RSA_1024, 0x80, 0x01, VC_ALG_RSA_2048, 0x80, 0x01, VC_ALG_RSA_3072,
        0x80, 0x01, VC_ALG_EC_P256,  0x80, 0x01, VC_ALG_EC_P384,  0x06, 0x01, 0x00 };
  vc_buf_tlv (&body, 0xAC, algs, sizeof algs);
  VcBuf tmpl = { 0 };
  vc_buf_tlv (&tmpl, 0x61, body.data, body.len);
  vc_card_answer (card, apdu, tmpl.data, tmpl.len, out);
  vc_buf_free (&body);
  vc_buf_free (&tmpl);
}

/* The certificate slot behind a 5FC1xx tag. */
static const VcSlot *
cert_slot (const VcFolder *f, unsigned tag)
{
  switch (tag)
    {
    case 0x5FC105: return &f->piv_auth;
    case 0x5FC10A: return &f->dig_sig;
    case 0x5FC10B: return &f->key_mgmt;
    case 0x5FC101: return &f->card_auth;
    default:
      if (tag >= 0x5FC10D && tag < 0x5FC10D + VC_N_RETIRED)
        return &f->retired[tag - 0x5FC10D];
      return NULL;
    }
}

/* 53 { 70 cert | 71 CertInfo | FE 00 } (SP 800-73-4 part 1, appendix A). */
static void
cert_container (const VcCard *card, GBytes *cert, VcBuf *out)
{
  GBytes *use = g_bytes_ref (cert);
  uint8_t info = 0x00;
  if (card->opt->gzip)
    {
      GBytes *z = vc_crypto_gzip (cert);
      if (z)
        {
          g_bytes_unref (use);
          use = z;
          info = 0x01;
        }
    }
  gsize clen = 0;
  const uint8_t *c = g_bytes_get_data (use, &clen);
  VcBuf body = { 0 };
  vc_buf_tlv (&body, 0x70, c, clen);
  vc_buf_tlv (&body, 0x71, &info, 1);
  vc_buf_tlv (&body, 0xFE, NULL, 0);
  vc_buf_tlv (out, 0x53, body.data, body.len);
  vc_buf_free (&body);
  g_bytes_unref (use);
}

static void
wrap53 (GBytes *content, VcBuf *out)
{
  gsize len = 0;
  const uint8_t *d = g_bytes_get_data (content, &len);
  vc_buf_tlv (out, 0x53, d, len);
}

static void
get_data (VcCard *card, const VcApdu *apdu, VcBuf *out)
{
  const VcFolder *f = card->folder;
  if (apdu->p1 != 0x3F || apdu->p2 != 0xFF)
    {
      VC_SW (out, 0x6A86);
      return;
    }
  const uint8_t *p = apdu->data;
  unsigned tag = 0, want = 0;
  const uint8_t *v = NULL;
  size_t vlen = 0;
  if (!vc_ber_read (&p, apdu->data + apdu->lc, &tag, &v, &vlen) || tag != 0x5C || vlen < 1
      || vlen > 3 || p != apdu->data + apdu->lc)
    {
      VC_SW (out, 0x6A80);
      return;
    }
  for (size_t i = 0; i < vlen; i++)
    want = (want << 8) | v[i];
  VcBuf obj = { 0 };
  const VcSlot *slot = cert_slot (f, want);
  if (want == 0x7E && f->discovery)
    vc_buf_add (&obj, g_bytes_get_data (f->discovery, NULL), g_bytes_get_size (f->discovery));
  else if (want == 0x5FC102 && f->chuid)
    wrap53 (f->chuid, &obj);
  else if (want == 0x5FC107 && f->ccc)
    wrap53 (f->ccc, &obj);
  else if (want == 0x5FC10C && f->key_history)
    wrap53 (f->key_history, &obj);
  else if (want == 0x5FC109 && f->printed)
    {
      /* Printed Information is readable only after PIN verification, as on a real card */
      if (!card->verified)
        {
          VC_SW (out, 0x6982);
          return;
        }
      wrap53 (f->printed, &obj);
    }
  else if (slot && slot->cert)
    cert_container (card, slot->cert, &obj);
  if (obj.len == 0)
    VC_SW (out, 0x6A82);
  else
    vc_card_answer (card, apdu, obj.data, obj.len, out);
  vc_buf_free (&obj);
}

static gboolean
alg_is_rsa (int alg)
{
  return alg == VC_ALG_RSA_1024 || alg == VC_ALG_RSA_2048 || alg == VC_ALG_RSA_3072;
}

/* GENERAL AUTHENTICATE with a private key: 7C { 82 00, 81 challenge | 85 peer point }. */
static void
general_authenticate (VcCard *card, const VcApdu *apdu, VcBuf *out)
{
  if (apdu->p2 == 0x9B)
    {
      /* card management key: only the first step, a challenge 7C { 81 00 } -> 7C { 81 rnd },
       * which OpenSC uses as GET CHALLENGE; the mutual authentication is not emulated */
      static const uint8_t ask[] = { 0x7C, 0x02, 0x81, 0x00 };
      size_t n = apdu->p1 == 0x00 || apdu->p1 == 0x03 ? 8 : 16;
      if (apdu->p1 != 0x00 && apdu->p1 != 0x03 && apdu->p1 != 0x08 && apdu->p1 != 0x0A
          && apdu->p1 != 0x0C)
        {
          VC_SW (out, 0x6A86);
          return;
        }
      if (apdu->lc != sizeof ask || memcmp (apdu->data, ask, sizeof ask) != 0)
        {
          VC_SW (out, 0x6A80);
          return;
        }
      uint8_t resp[4 + 16] = { 0x7C, (uint8_t)(n + 2), 0x81, (uint8_t)n };
      vc_crypto_random (resp + 4, n);
      vc_card_answer (card, apdu, resp, 4 + n, out);
      return;
    }
  const VcSlot *slot = vc_folder_piv_slot (card->folder, apdu->p2);
  if (!slot || !slot->key)
    {
      VC_SW (out, 0x6A88); /* no such key on this card */
      return;
    }
  if (apdu->p1 != slot->alg)
    {
      VC_SW (out, 0x6A86);
      return;
    }
  if (apdu->p2 != 0x9E && !card->verified)
    {
      VC_SW (out, 0x6982);
      return;
    }
  const uint8_t *p = apdu->data, *end = apdu->data + apdu->lc, *v = NULL;
  unsigned tag = 0;
  size_t len = 0;
  if (!vc_ber_read (&p, end, &tag, &v, &len) || tag != 0x7C || p != end)
    {
      VC_SW (out, 0x6A80);
      return;
    }
  const uint8_t *challenge = NULL, *peer = NULL;
  size_t challenge_len = 0, peer_len = 0;
  gboolean want_response = FALSE;
  p = v;
  end = v + len;
  while (p < end)
    {
      if (!vc_ber_read (&p, end, &tag, &v, &len))
        {
          VC_SW (out, 0x6A80);
          return;
        }
      if (tag == 0x82 && len == 0)
        want_response = TRUE;
      else if (tag == 0x81)
        {
          challenge = v;
          challenge_len = len;
        }
      else if (tag == 0x85)
        {
          peer = v;
          peer_len = len;
        }
      else
        {
          VC_SW (out, 0x6A80); /* witness / card-management-key protocols are not emulated */
          return;
        }
    }
  if (!want_response || (!challenge == !peer))
    {
      VC_SW (out, 0x6A80);
      return;
    }
  VcBuf result = { 0 };
  gboolean ok;
  if (alg_is_rsa (slot->alg))
    ok = challenge && vc_crypto_rsa_raw (slot->key, challenge, challenge_len, &result);
  else if (challenge)
    ok = vc_crypto_ecdsa (slot->key, challenge, challenge_len, &result);
  else
    ok = vc_crypto_ecdh (slot->key, peer, peer_len, &result);
  if (!ok)
    {
      VC_SW (out, 0x6A80);
      vc_buf_free (&result);
      return;
    }
  VcBuf inner = { 0 }, resp = { 0 };
  vc_buf_tlv (&inner, 0x82, result.data, result.len);
  vc_buf_tlv (&resp, 0x7C, inner.data, inner.len);
  vc_card_answer (card, apdu, resp.data, resp.len, out);
  vc_buf_free (&result);
  vc_buf_free (&inner);
  vc_buf_free (&resp);
}

/* CHANGE REFERENCE DATA for the PIN: old PIN || new PIN, each padded to 8 bytes with FF. */
static void
change_pin (VcCard *card, const VcApdu *apdu, VcBuf *out)
{
  if (apdu->p1 != 0x00 || (apdu->p2 != 0x80 && apdu->p2 != 0x00))
    {
      VC_SW (out, apdu->p1 ? 0x6A86 : 0x6A88);
      return;
    }
  if (apdu->lc != 16)
    {
      VC_SW (out, 0x6A80);
      return;
    }
  /* check the old PIN exactly as VERIFY does */
  VcApdu verify = *apdu;
  verify.ins = 0x20;
  verify.lc = 8;
  VcBuf sw = { 0 };
  vc_card_verify (card, &verify, &sw);
  gboolean ok = sw.len == 2 && sw.data[0] == 0x90;
  if (!ok)
    {
      vc_buf_add (out, sw.data, sw.len);
      vc_buf_free (&sw);
      return;
    }
  vc_buf_free (&sw);
  const uint8_t *n = apdu->data + 8;
  size_t nlen = 0;
  while (nlen < 8 && n[nlen] != 0xFF)
    {
      if (!g_ascii_isdigit (n[nlen]))
        {
          VC_SW (out, 0x6A80);
          return;
        }
      nlen++;
    }
  for (size_t i = nlen; i < 8; i++)
    if (n[i] != 0xFF)
      {
        VC_SW (out, 0x6A80);
        return;
      }
  if (nlen < 6)
    {
      VC_SW (out, 0x6A80);
      return;
    }
  memcpy (card->pin, n, nlen);
  card->pin[nlen] = '\0';
  VC_SW (out, 0x9000);
}

void
vc_piv_process (VcCard *card, const VcApdu *apdu, VcBuf *out)
{
  switch (apdu->ins)
    {
    case 0xCB: get_data (card, apdu, out); return;
    case 0x20: vc_card_verify (card, apdu, out); return;
    case 0x87: general_authenticate (card, apdu, out); return;
    case 0x24: change_pin (card, apdu, out); return;
    case 0x2C:             /* RESET RETRY COUNTER: needs the PUK, which this card does not have */
    case 0x47:             /* GENERATE ASYMMETRIC KEY PAIR */
    case 0xDB:             /* PUT DATA */
      VC_SW (out, 0x6982); /* both need the card management key */
      return;
    default: VC_SW (out, 0x6D00); return;
    }
}
