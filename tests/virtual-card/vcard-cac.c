/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* vcard-cac.c: the CAC (GSC-IS 2.1) applets: the Card Capability Container applet
 * (AID A0 00 00 01 16 DB 00) and up to three PKI applets (AID A0 00 00 00 79 01 0n).
 *
 * GSC-IS containers are split into a TL file (SimpleTLV tags and lengths) and a V file (the
 * values), read with READ BUFFER (INS 52, P1 P2 offset, data { 01 TL | 02 V, count }); each
 * file starts with its length, 2 bytes little-endian. GET PROPERTIES (INS 56) describes the
 * objects of an applet; INS 42 is the PKI private-key operation. */
#include "vcard.h"

#include <string.h>

static const uint8_t cac_rid[] = { 0xA0, 0x00, 0x00, 0x00, 0x79 };
static const uint8_t ccc_aid[] = { 0xA0, 0x00, 0x00, 0x01, 0x16, 0xDB, 0x00 };

static gboolean
has_cac (const VcFolder *f)
{
  for (int i = 0; i < VC_N_CAC; i++)
    if (f->cac[i].cert)
      return TRUE;
  return FALSE;
}

gboolean
vc_cac_select_aid (VcCard *card, const uint8_t *aid, size_t len)
{
  const VcFolder *f = card->folder;
  if (len == sizeof ccc_aid && memcmp (aid, ccc_aid, len) == 0 && has_cac (f))
    {
      card->applet = VC_APPLET_CAC_CCC;
      card->cac_object_selected = FALSE;
      vc_buf_clear (&card->cac_op);
      return TRUE;
    }
  if (len == 7 && memcmp (aid, cac_rid, 5) == 0 && aid[5] == 0x01 && aid[6] < VC_N_CAC
      && f->cac[aid[6]].cert)
    {
      card->applet = VC_APPLET_CAC_PKI;
      card->cac_index = aid[6];
      card->cac_object_selected = FALSE;
      vc_buf_clear (&card->cac_op);
      return TRUE;
    }
  return FALSE;
}

/* SimpleTLV: tag, length 1 byte, or FF + 2 bytes little-endian. */
static void
stlv_tl (VcBuf *tl, uint8_t tag, size_t len)
{
  vc_buf_byte (tl, tag);
  if (len < 0xFF)
    vc_buf_byte (tl, (uint8_t)len);
  else
    {
      vc_buf_byte (tl, 0xFF);
      vc_buf_byte (tl, (uint8_t)len);
      vc_buf_byte (tl, (uint8_t)(len >> 8));
    }
}

static void
stlv_add (VcBuf *tl, VcBuf *v, uint8_t tag, const void *value, size_t len)
{
  stlv_tl (tl, tag, len);
  vc_buf_add (v, value, len);
}

/* The card unique identifier (CUID): from the PIV CCC when it has one, else made up. */
static void
cuid (const VcFolder *f, VcBuf *out)
{
  if (f->ccc)
    {
      gsize len = 0;
      const uint8_t *p = g_bytes_get_data (f->ccc, &len), *end = p + len;
      while (end - p >= 2)
        {
          uint8_t tag = p[0];
          size_t l = p[1];
          p += 2;
          if (l == 0xFF)
            {
              if (end - p < 2)
                break;
              l = p[0] | ((size_t)p[1] << 8);
              p += 2;
            }
          if ((size_t)(end - p) < l)
            break;
          if (tag == 0xF0 && l >= 8)
            {
              vc_buf_add (out, p, l);
              return;
            }
          p += l;
        }
    }
  /* GSC RID, manufacturer, card type 02 (CAC-2 / Java card), card id */
  static const uint8_t made_up[] = { 0xA0, 0x00, 0x00, 0x00, 0x79, 0x02, 0x02, 0x63, 0x61,
                                     0x63, 0x6D, 0x61, 0x69, 0x6C, 0x00, 0x00, 0x00, 0x01 };
  vc_buf_add (out, made_up, sizeof made_up);
}

/* The CCC of the CAC: version, CUID and one card URL (F3) per PKI applet. */
static void
ccc_files (const VcFolder *f, VcBuf *tl, VcBuf *v)
{
  VcBuf id = { 0 };
  cuid (f, &id);
  stlv_add (tl, v, 0xF0, id.data, id.len);
  vc_buf_free (&id);
  static const uint8_t version = 0x21;
  stlv_add (tl, v, 0xF1, &version, 1);
  stlv_add (tl, v, 0xF2, &version, 1);
  for (int i = 0; i < VC_N_CAC; i++)
    {
      if (!f->cac[i].cert)
        continue;
      /* card URL: RID, application type 04 (PKI), object ID, application ID, access profile
       * (15 bytes), PIN ID, key file ID + key number, key algorithm */
      uint8_t url[30];
      memset (url, 0, sizeof url);
      memcpy (url, cac_rid, 5);
      url[5] = 0x04;
      url[6] = 0x01;
      url[7] = (uint8_t)i;
      url[8] = 0x01;
      url[9] = (uint8_t)i;
      url[25] = 0x00;
      url[29] = 0x06;
      stlv_add (tl, v, 0xF3, url, sizeof url);
    }
  static const uint8_t pkcs15 = 0x00, data_model = 0x10;
  stlv_add (tl, v, 0xF4, &pkcs15, 1);
  stlv_add (tl, v, 0xF5, &data_model, 1);
}

/* The certificate object of a PKI applet: 70 cert, 71 CertInfo. */
static void
pki_files (const VcCard *card, int index, VcBuf *tl, VcBuf *v)
{
  GBytes *cert = card->folder->cac[index].cert;
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
  gsize len = 0;
  const uint8_t *d = g_bytes_get_data (use, &len);
  stlv_add (tl, v, 0x70, d, len);
  stlv_add (tl, v, 0x71, &info, 1);
  g_bytes_unref (use);
}

/* READ BUFFER: P1 P2 offset into { length (2 bytes LE) | contents } of the TL or V file. */
static void
read_buffer (VcCard *card, const VcApdu *apdu, VcBuf *out)
{
  if (apdu->lc != 2 || (apdu->data[0] != 0x01 && apdu->data[0] != 0x02))
    {
      VC_SW (out, 0x6A80);
      return;
    }
  VcBuf tl = { 0 }, v = { 0 };
  if (card->applet == VC_APPLET_CAC_CCC)
    ccc_files (card->folder, &tl, &v);
  else
    pki_files (card, card->cac_index, &tl, &v);
  VcBuf *which = apdu->data[0] == 0x01 ? &tl : &v;
  VcBuf file = { 0 };
  vc_buf_byte (&file, (uint8_t)which->len);
  vc_buf_byte (&file, (uint8_t)(which->len >> 8));
  vc_buf_add (&file, which->data, which->len);
  size_t off = ((size_t)apdu->p1 << 8) | apdu->p2;
  size_t count = apdu->data[1];
  if (off >= file.len)
    VC_SW (out, 0x6B00);
  else
    vc_card_answer (card, apdu, file.data + off, MIN (count, file.len - off), out);
  vc_buf_free (&tl);
  vc_buf_free (&v);
  vc_buf_free (&file);
}

/* GET PROPERTIES P1 01: applet information, number of objects, object properties. */
static void
get_properties (VcCard *card, const VcApdu *apdu, VcBuf *out)
{
  if (apdu->p1 != 0x01 || apdu->p2 != 0x00)
    {
      VC_SW (out, 0x6A86);
      return;
    }
  VcBuf r = { 0 };
  static const uint8_t info_pki[] = { 0x01, 0x05, 0x12, 0x02, 0x01, 0x00, 0x00 };
  static const uint8_t info_ccc[] = { 0x01, 0x05, 0x10, 0x02, 0x01, 0x00, 0x00 };
  if (card->applet == VC_APPLET_CAC_PKI)
    {
      const VcSlot *s = &card->folder->cac[card->cac_index];
      vc_buf_add (&r, info_pki, sizeof info_pki);
      static const uint8_t one[] = { 0x40, 0x01, 0x01 };
      vc_buf_add (&r, one, sizeof one);
      uint8_t obj[] = {
        0x51,
        0x11, /* PKI object */
        0x41,
        0x02,
        0x01,
        (uint8_t)card->cac_index, /* object ID */
        0x42,
        0x05,
        0x01,
        0x00,
        0x00,
        0x00,
        0x00, /* SimpleTLV buffers */
        0x43,
        0x04,
        0x06,
        0x10,
        s->key ? 0x01 : 0x00,
        0x01, /* key initialised */
      };
      vc_buf_add (&r, obj, sizeof obj);
    }
  else
    {
      vc_buf_add (&r, info_ccc, sizeof info_ccc);
      static const uint8_t none[] = { 0x40, 0x01, 0x00 };
      vc_buf_add (&r, none, sizeof none);
    }
  vc_card_answer (card, apdu, r.data, r.len, out);
  vc_buf_free (&r);
}

/* INS 42: P1 80 = more data follows (chunks of up to 240 bytes), P1 00 = last chunk. */
static void
sign_decrypt (VcCard *card, const VcApdu *apdu, VcBuf *out)
{
  const VcSlot *s = &card->folder->cac[card->cac_index];
  if (card->applet != VC_APPLET_CAC_PKI || !s->key)
    {
      VC_SW (out, 0x6A88);
      return;
    }
  if (apdu->p1 != 0x80 && apdu->p1 != 0x00)
    {
      vc_buf_clear (&card->cac_op);
      VC_SW (out, 0x6A86);
      return;
    }
  if (!card->verified)
    {
      vc_buf_clear (&card->cac_op);
      VC_SW (out, 0x6982);
      return;
    }
  vc_buf_add (&card->cac_op, apdu->data, apdu->lc);
  if (apdu->p1 == 0x80)
    {
      VC_SW (out, 0x9000);
      return;
    }
  VcBuf result = { 0 };
  if (vc_crypto_rsa_raw (s->key, card->cac_op.data, card->cac_op.len, &result))
    vc_card_answer (card, apdu, result.data, result.len, out);
  else
    VC_SW (out, 0x6A80);
  vc_buf_clear (&card->cac_op);
  vc_buf_free (&result);
}

void
vc_cac_process (VcCard *card, const VcApdu *apdu, VcBuf *out)
{
  switch (apdu->ins)
    {
    case 0xA4:
      /* SELECT P1 02: the object by its ID, in the applet already selected */
      if (card->applet == VC_APPLET_CAC_PKI && apdu->lc == 2 && apdu->data[0] == 0x01
          && apdu->data[1] == card->cac_index)
        {
          card->cac_object_selected = TRUE;
          VC_SW (out, 0x9000);
        }
      else
        VC_SW (out, 0x6A82);
      return;
    case 0x52: read_buffer (card, apdu, out); return;
    case 0x56: get_properties (card, apdu, out); return;
    case 0x42: sign_decrypt (card, apdu, out); return;
    case 0x20: vc_card_verify (card, apdu, out); return;
    case 0x84:
      {
        /* GET CHALLENGE: 8 random bytes */
        uint8_t rnd[8];
        vc_crypto_random (rnd, sizeof rnd);
        vc_card_answer (card, apdu, rnd, sizeof rnd, out);
        return;
      }
    default: VC_SW (out, 0x6D00); return;
    }
}
