/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* vcard-hostile.c: cards that break the rules, so the tests can prove the host's read loops
 * end. SELECT and everything outside the data reads still work (the card is found and taken
 * for a PIV card); GET DATA, GET RESPONSE and READ BUFFER misbehave. */
#include "vcard.h"

#include <string.h>

static const struct
{
  const char *name;
  VcHostile mode;
} modes[] = {
  { "none", VC_HOSTILE_NONE },
  { "61-forever", VC_HOSTILE_61_FOREVER },
  { "6c-forever", VC_HOSTILE_6C_FOREVER },
  { "short", VC_HOSTILE_SHORT },
  { "oversized", VC_HOSTILE_OVERSIZED },
  { "slow", VC_HOSTILE_SLOW },
};

gboolean
vc_hostile_parse (const char *name, VcHostile *mode)
{
  for (size_t i = 0; i < G_N_ELEMENTS (modes); i++)
    if (g_ascii_strcasecmp (name, modes[i].name) == 0)
      {
        *mode = modes[i].mode;
        return TRUE;
      }
  return FALSE;
}

const char *
vc_hostile_name (VcHostile mode)
{
  for (size_t i = 0; i < G_N_ELEMENTS (modes); i++)
    if (modes[i].mode == mode)
      return modes[i].name;
  return "?";
}

/* Le of a short APDU (256 for 00), 0 when the APDU is extended or carries none. */
static size_t
short_le (const uint8_t *apdu, size_t len)
{
  if (len == 5)
    return apdu[4] ? apdu[4] : 256;
  if (len > 5 && apdu[4] != 0 && len == 6 + (size_t)apdu[4])
    return apdu[len - 1] ? apdu[len - 1] : 256;
  return 0;
}

gboolean
vc_hostile_answer (VcHostile mode, const uint8_t *apdu, size_t len, VcBuf *out, unsigned *delay_ms)
{
  uint8_t ins = len >= 2 ? apdu[1] : 0;
  gboolean extended = len > 5 && apdu[4] == 0;

  *delay_ms = 0;
  if (mode == VC_HOSTILE_NONE || (ins != 0xCB && ins != 0xC0 && ins != 0x52))
    return FALSE;
  switch (mode)
    {
    case VC_HOSTILE_61_FOREVER: /* "more data waiting", and never any data */
      VC_SW (out, 0x6100);
      return TRUE;
    case VC_HOSTILE_6C_FOREVER: /* "wrong length, send it again with Le xx", whatever Le is */
      VC_SW (out, 0x6C00 | (short_le (apdu, len) == 0x80 ? 0x40 : 0x80));
      return TRUE;
    case VC_HOSTILE_SHORT: /* one byte: no status word */ vc_buf_byte (out, 0x90); return TRUE;
    case VC_HOSTILE_OVERSIZED: /* no extended length; more data than Le allows */
      if (extended)
        {
          VC_SW (out, 0x6700);
          return TRUE;
        }
      {
        size_t n = (short_le (apdu, len) ? short_le (apdu, len) : 256) + 64;
        uint8_t *junk = g_malloc (n);
        memset (junk, 0x53, n);
        vc_buf_add (out, junk, n);
        g_free (junk);
      }
      VC_SW (out, 0x9000);
      return TRUE;
    case VC_HOSTILE_SLOW: /* one byte and "1 more" per answer, a quarter second each */
      *delay_ms = 250;
      vc_buf_byte (out, 0x53);
      VC_SW (out, 0x6101);
      return TRUE;
    case VC_HOSTILE_NONE:
    default: return FALSE;
    }
}
