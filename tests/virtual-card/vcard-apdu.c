/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* vcard-apdu.c: APDU parsing, response and command chaining, SELECT dispatch and the PIN. */
#include "vcard.h"

#include <string.h>

/* A frame to vpcd carries at most 0xFFFF bytes: data + SW1 SW2. */
#define VC_MAX_DATA_PER_RESPONSE (0xFFFF - 2)

void
vc_buf_add (VcBuf *b, const void *data, size_t len)
{
  if (b->len + len > b->cap)
    {
      size_t cap = b->cap ? b->cap : 256;
      while (cap < b->len + len)
        cap *= 2;
      b->data = g_realloc (b->data, cap);
      b->cap = cap;
    }
  if (len)
    memcpy (b->data + b->len, data, len);
  b->len += len;
}

void
vc_buf_byte (VcBuf *b, uint8_t byte)
{
  vc_buf_add (b, &byte, 1);
}

void
vc_buf_tl (VcBuf *b, unsigned tag, size_t len)
{
  if (tag > 0xFFFF)
    vc_buf_byte (b, (uint8_t)(tag >> 16));
  if (tag > 0xFF)
    vc_buf_byte (b, (uint8_t)(tag >> 8));
  vc_buf_byte (b, (uint8_t)tag);
  if (len < 0x80)
    vc_buf_byte (b, (uint8_t)len);
  else if (len < 0x100)
    {
      vc_buf_byte (b, 0x81);
      vc_buf_byte (b, (uint8_t)len);
    }
  else if (len < 0x10000)
    {
      vc_buf_byte (b, 0x82);
      vc_buf_byte (b, (uint8_t)(len >> 8));
      vc_buf_byte (b, (uint8_t)len);
    }
  else
    {
      vc_buf_byte (b, 0x83);
      vc_buf_byte (b, (uint8_t)(len >> 16));
      vc_buf_byte (b, (uint8_t)(len >> 8));
      vc_buf_byte (b, (uint8_t)len);
    }
}

void
vc_buf_tlv (VcBuf *b, unsigned tag, const void *value, size_t len)
{
  vc_buf_tl (b, tag, len);
  vc_buf_add (b, value, len);
}

void
vc_buf_clear (VcBuf *b)
{
  b->len = 0;
}

void
vc_buf_free (VcBuf *b)
{
  g_free (b->data);
  memset (b, 0, sizeof *b);
}

gboolean
vc_ber_read (const uint8_t **pp, const uint8_t *end, unsigned *tag, const uint8_t **value,
             size_t *len)
{
  const uint8_t *p = *pp;
  if (p >= end)
    return FALSE;
  unsigned t = *p++;
  if ((t & 0x1F) == 0x1F)
    {
      do
        {
          if (p >= end || t > 0xFFFF)
            return FALSE;
          t = (t << 8) | *p;
        }
      while (*p++ & 0x80);
    }
  if (p >= end)
    return FALSE;
  size_t l = *p++;
  if (l & 0x80)
    {
      int n = (int)(l & 0x7F);
      if (n == 0 || n > 3 || end - p < n)
        return FALSE;
      l = 0;
      while (n--)
        l = (l << 8) | *p++;
    }
  if ((size_t)(end - p) < l)
    return FALSE;
  *tag = t;
  *value = p;
  *len = l;
  *pp = p + l;
  return TRUE;
}

/* ISO 7816-4 5.1: cases 1, 2S, 3S, 4S, 2E, 3E, 4E. */
static gboolean
parse_apdu (const uint8_t *a, size_t n, VcApdu *apdu)
{
  memset (apdu, 0, sizeof *apdu);
  if (n < 4)
    return FALSE;
  apdu->cla = a[0];
  apdu->ins = a[1];
  apdu->p1 = a[2];
  apdu->p2 = a[3];
  apdu->data = a + n; /* no data: an empty range, never NULL (data + lc is used) */
  if (n == 4)
    return TRUE; /* case 1 */
  if (n == 5)
    {
      apdu->has_le = TRUE; /* case 2S */
      apdu->ne = a[4] ? a[4] : 256;
      return TRUE;
    }
  if (a[4] != 0)
    {
      size_t lc = a[4];
      if (n != 5 + lc && n != 6 + lc)
        return FALSE;
      apdu->lc = lc;
      apdu->data = a + 5;
      if (n == 6 + lc)
        {
          apdu->has_le = TRUE;
          apdu->ne = a[5 + lc] ? a[5 + lc] : 256;
        }
      return TRUE;
    }
  /* extended length: first byte 00 */
  apdu->extended = TRUE;
  if (n == 7)
    {
      apdu->has_le = TRUE; /* case 2E */
      apdu->ne = ((size_t)a[5] << 8) | a[6];
      if (apdu->ne == 0)
        apdu->ne = 65536;
      return TRUE;
    }
  if (n < 8)
    return FALSE;
  size_t lc = ((size_t)a[5] << 8) | a[6];
  if (lc == 0 || (n != 7 + lc && n != 9 + lc))
    return FALSE;
  apdu->lc = lc;
  apdu->data = a + 7;
  if (n == 9 + lc)
    {
      apdu->has_le = TRUE;
      apdu->ne = ((size_t)a[7 + lc] << 8) | a[8 + lc];
      if (apdu->ne == 0)
        apdu->ne = 65536;
    }
  return TRUE;
}

void
vc_card_init (VcCard *card, const VcFolder *folder, const VcOptions *opt)
{
  memset (card, 0, sizeof *card);
  card->folder = folder;
  card->opt = opt;
  card->tries_left = 3;
  g_strlcpy (card->pin, opt->pin, sizeof card->pin);
  vc_card_reset (card);
}

void
vc_card_clear (VcCard *card)
{
  vc_buf_free (&card->pending);
  vc_buf_free (&card->chain);
  vc_buf_free (&card->cac_op);
}

void
vc_card_reset (VcCard *card)
{
  /* PIV is the default application after a reset (SP 800-73-4 part 1, 2.2) */
  card->applet = VC_APPLET_PIV;
  card->cac_index = 0;
  card->verified = FALSE;
  card->cac_object_selected = FALSE;
  vc_buf_clear (&card->pending);
  card->pending_off = 0;
  vc_buf_clear (&card->chain);
  card->chaining = FALSE;
  vc_buf_clear (&card->cac_op);
}

/* Send up to Ne bytes of the pending data, 61xx when more remains. */
static void
send_pending (VcCard *card, size_t ne, VcBuf *out)
{
  size_t left = card->pending.len - card->pending_off;
  size_t n = MIN (MIN (left, ne), (size_t)VC_MAX_DATA_PER_RESPONSE);
  vc_buf_add (out, card->pending.data + card->pending_off, n);
  card->pending_off += n;
  left -= n;
  if (left == 0)
    {
      vc_buf_clear (&card->pending);
      card->pending_off = 0;
      VC_SW (out, 0x9000);
    }
  else
    VC_SW (out, 0x6100 | (left >= 256 ? 0 : left));
}

void
vc_card_answer (VcCard *card, const VcApdu *apdu, const uint8_t *data, size_t len, VcBuf *out)
{
  vc_buf_clear (&card->pending);
  card->pending_off = 0;
  if (len == 0)
    {
      VC_SW (out, 0x9000);
      return;
    }
  vc_buf_add (&card->pending, data, len);
  /* No Le (case 3 where data was due): announce everything with 61xx, as T=0 cards do. */
  send_pending (card, apdu->has_le ? apdu->ne : 0, out);
}

void
vc_card_verify (VcCard *card, const VcApdu *apdu, VcBuf *out)
{
  if (apdu->p1 == 0xFF && apdu->lc == 0)
    {
      /* SP 800-73-4 part 2, 3.2.1: P1 FF resets the security status of the key reference */
      card->verified = FALSE;
      VC_SW (out, 0x9000);
      return;
    }
  if (apdu->p1 != 0x00)
    {
      VC_SW (out, 0x6A86);
      return;
    }
  /* 80: PIV Card Application PIN; 00: the global PIN (CAC applets use it): one PIN here */
  if (apdu->p2 != 0x80 && apdu->p2 != 0x00)
    {
      VC_SW (out, 0x6A88);
      return;
    }
  if (card->tries_left == 0)
    {
      VC_SW (out, 0x6983);
      return;
    }
  if (apdu->lc == 0)
    {
      if (card->verified)
        VC_SW (out, 0x9000);
      else
        VC_SW (out, 0x63C0 | card->tries_left);
      return;
    }
  if (apdu->lc != 8)
    {
      VC_SW (out, 0x6A80);
      return;
    }
  uint8_t want[8];
  memset (want, 0xFF, sizeof want);
  memcpy (want, card->pin, strlen (card->pin));
  if (memcmp (want, apdu->data, 8) == 0)
    {
      card->verified = TRUE;
      card->tries_left = 3;
      VC_SW (out, 0x9000);
      return;
    }
  card->verified = FALSE;
  card->tries_left--;
  if (card->tries_left == 0)
    VC_SW (out, 0x6983);
  else
    VC_SW (out, 0x63C0 | card->tries_left);
}

static void
process_select (VcCard *card, const VcApdu *apdu, VcBuf *out)
{
  if (apdu->p1 == 0x04)
    {
      if (apdu->lc && !card->opt->no_piv && vc_piv_aid_matches (apdu->data, apdu->lc))
        {
          vc_piv_select (card, apdu, out);
          return;
        }
      if (apdu->lc && vc_cac_select_aid (card, apdu->data, apdu->lc))
        {
          VC_SW (out, 0x9000); /* CAC applets return no FCI */
          return;
        }
      VC_SW (out, 0x6A82); /* the current application stays selected */
      return;
    }
  if (apdu->p1 == 0x02 && (card->applet == VC_APPLET_CAC_PKI || card->applet == VC_APPLET_CAC_CCC))
    {
      vc_cac_process (card, apdu, out);
      return;
    }
  VC_SW (out, apdu->p1 <= 0x09 ? 0x6A82 : 0x6A86);
}

static void
dispatch (VcCard *card, const VcApdu *apdu, VcBuf *out)
{
  uint8_t cla = apdu->cla & ~0x10;
  if (cla != 0x00 && cla != 0x80)
    {
      VC_SW (out, 0x6E00);
      return;
    }
  if (apdu->ins == 0xA4 && cla == 0x00)
    {
      process_select (card, apdu, out);
      return;
    }
  switch (card->applet)
    {
    case VC_APPLET_PIV:
      if (cla != 0x00)
        VC_SW (out, 0x6E00);
      else
        vc_piv_process (card, apdu, out);
      return;
    case VC_APPLET_CAC_PKI:
    case VC_APPLET_CAC_CCC: vc_cac_process (card, apdu, out); return;
    case VC_APPLET_NONE:
    default: VC_SW (out, 0x6D00); return;
    }
}

void
vc_card_process (VcCard *card, const uint8_t *raw, size_t len, VcBuf *out)
{
  VcApdu apdu;
  if (!parse_apdu (raw, len, &apdu))
    {
      VC_SW (out, 0x6700);
      return;
    }
  if (apdu.extended && card->opt->short_only)
    {
      VC_SW (out, 0x6700);
      return;
    }
  if (apdu.ins == 0xC0 && (apdu.cla & ~0x10) == 0x00)
    {
      /* GET RESPONSE */
      if (apdu.p1 || apdu.p2)
        VC_SW (out, 0x6A86);
      else if (card->pending.len == 0)
        VC_SW (out, 0x6985);
      else
        send_pending (card, apdu.has_le ? apdu.ne : 256, out);
      return;
    }
  vc_buf_clear (&card->pending);
  card->pending_off = 0;

  /* command chaining (ISO 7816-4 5.1.1.1): CLA bit 0x10 = more commands follow */
  if (card->chaining
      && (apdu.ins != card->chain_ins || apdu.p1 != card->chain_p1 || apdu.p2 != card->chain_p2))
    {
      card->chaining = FALSE;
      vc_buf_clear (&card->chain);
      if (!(apdu.cla & 0x10))
        {
          VC_SW (out, 0x6883); /* last command of the chain expected */
          return;
        }
    }
  if (apdu.cla & 0x10)
    {
      if ((apdu.cla & 0x80) || apdu.ins == 0xA4 || apdu.ins == 0xC0)
        {
          VC_SW (out, 0x6884); /* chaining not supported here */
          return;
        }
      if (!card->chaining)
        {
          card->chaining = TRUE;
          card->chain_ins = apdu.ins;
          card->chain_p1 = apdu.p1;
          card->chain_p2 = apdu.p2;
          vc_buf_clear (&card->chain);
        }
      vc_buf_add (&card->chain, apdu.data, apdu.lc);
      if (card->chain.len > 65536)
        {
          card->chaining = FALSE;
          vc_buf_clear (&card->chain);
          VC_SW (out, 0x6700);
          return;
        }
      VC_SW (out, 0x9000);
      return;
    }
  if (card->chaining)
    {
      /* the last command of the chain: process the whole data */
      VcBuf all = { 0 };
      vc_buf_add (&all, card->chain.data, card->chain.len);
      vc_buf_add (&all, apdu.data, apdu.lc);
      card->chaining = FALSE;
      vc_buf_clear (&card->chain);
      /* a chain of commands with no data: an empty range, never NULL (data + lc is used) */
      apdu.data = all.len ? all.data : apdu.data;
      apdu.lc = all.len;
      dispatch (card, &apdu, out);
      vc_buf_free (&all);
      return;
    }
  dispatch (card, &apdu, out);
}
