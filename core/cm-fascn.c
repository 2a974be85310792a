/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cm-fascn.c: FASC-N, 40 characters of 4 data bits (LSB first) + odd parity, packed MSB first;
 * the 40th is the LRC, the XOR of the data bits of the 39 before it (TIG SCEPACS 2.3). */
#include "cm-private.h"

#define FASCN_SS 0xb
#define FASCN_FS 0xd
#define FASCN_ES 0xf
#define FASCN_CHARS 40

/* Field layout: 'S' start, 'F' separator, 'E' end, 'L' LRC; digits name the field. */
static const char fascn_layout[FASCN_CHARS + 1] = "SaaaaFssssFccccccFkFiFppppppppppoqqqqrEL";

static guint
get_char (const guint8 *data, guint i)
{
  guint v = 0;

  for (guint b = 0; b < 5; b++)
    {
      guint bit = i * 5 + b;
      v |= ((data[bit / 8] >> (7 - bit % 8)) & 1u) << b; /* bit 0 of v = first bit on the wire */
    }
  return v; /* bits 0..3 data (LSB first), bit 4 parity */
}

static void
put_char (guint8 *data, guint i, guint v)
{
  for (guint b = 0; b < 5; b++)
    {
      guint bit = i * 5 + b;
      if ((v >> b) & 1u)
        data[bit / 8] |= (guint8)(1u << (7 - bit % 8));
    }
}

static guint
with_parity (guint data)
{
  guint ones = __builtin_popcount (data & 0xf);
  return (data & 0xf) | ((ones % 2 == 0) ? 0x10 : 0);
}

static char *
field_dest (CmFascn *f, char code)
{
  switch (code)
    {
    case 'a': return f->agency_code;
    case 's': return f->system_code;
    case 'c': return f->credential_number;
    case 'k': return f->cs;
    case 'i': return f->ici;
    case 'p': return f->pi;
    case 'o': return f->oc;
    case 'q': return f->oi;
    case 'r': return f->poa;
    default: return NULL;
    }
}

gboolean
cm_fascn_decode (const guint8 *data, gsize len, CmFascn *out, GError **error)
{
  guint lrc = 0;
  CmFascn f = { 0 };

  memset (out, 0, sizeof *out);
  if (data == NULL || len != CM_FASCN_LEN)
    {
      g_set_error (error, CM_ERROR, CM_ERROR_BAD_INPUT,
                   "FASC-N is %" G_GSIZE_FORMAT " bytes, not 25", len);
      return FALSE;
    }
  for (guint i = 0; i < FASCN_CHARS; i++)
    {
      guint c = get_char (data, i);
      guint d = c & 0xf;
      char code = fascn_layout[i];

      if (c != with_parity (d))
        {
          g_set_error (error, CM_ERROR, CM_ERROR_BAD_INPUT,
                       "FASC-N character %u fails its parity check", i + 1);
          return FALSE;
        }
      if (code == 'L')
        {
          if (d != lrc)
            {
              g_set_error (error, CM_ERROR, CM_ERROR_BAD_INPUT, "FASC-N LRC is %X, expected %X", d,
                           lrc);
              return FALSE;
            }
          continue;
        }
      lrc ^= d;
      if ((code == 'S' && d != FASCN_SS) || (code == 'F' && d != FASCN_FS)
          || (code == 'E' && d != FASCN_ES))
        {
          g_set_error (error, CM_ERROR, CM_ERROR_BAD_INPUT,
                       "FASC-N character %u should be a %s sentinel", i + 1,
                       code == 'S'   ? "start"
                       : code == 'F' ? "field separator"
                                     : "end");
          return FALSE;
        }
      if (code != 'S' && code != 'F' && code != 'E')
        {
          char *dest = field_dest (&f, code);
          if (d > 9)
            {
              g_set_error (error, CM_ERROR, CM_ERROR_BAD_INPUT,
                           "FASC-N character %u is not a digit", i + 1);
              return FALSE;
            }
          dest[strlen (dest)] = (char)('0' + d);
        }
    }
  {
    g_autofree char *hex = cm_hex_encode (data, len, TRUE);
    g_strlcpy (f.hex, hex, sizeof f.hex);
  }
  *out = f;
  return TRUE;
}

gboolean
cm_fascn_encode (const CmFascn *fields, guint8 out[CM_FASCN_LEN], GError **error)
{
  guint lrc = 0;
  guint pos[128] = { 0 };
  CmFascn copy = *fields;

  memset (out, 0, CM_FASCN_LEN);
  for (guint i = 0; i < FASCN_CHARS; i++)
    {
      char code = fascn_layout[i];
      guint d;

      if (code == 'L')
        d = lrc;
      else if (code == 'S')
        d = FASCN_SS;
      else if (code == 'F')
        d = FASCN_FS;
      else if (code == 'E')
        d = FASCN_ES;
      else
        {
          const char *src = field_dest (&copy, code);
          guint k = pos[(guchar)code]++;
          if (k >= strlen (src) || !g_ascii_isdigit (src[k]))
            {
              g_set_error (error, CM_ERROR, CM_ERROR_BAD_INPUT,
                           "FASC-N field is too short or not decimal");
              return FALSE;
            }
          d = (guint)(src[k] - '0');
        }
      if (code != 'L')
        lrc ^= d;
      put_char (out, i, with_parity (d));
    }
  return TRUE;
}

char *
cm_fascn_credential_key (const CmFascn *f)
{
  return g_strdup_printf ("fascn:%s-%s-%s-%s-%s", f->agency_code, f->system_code,
                          f->credential_number, f->cs, f->ici);
}

const char *
cm_fascn_poa_name (const CmFascn *f)
{
  static const char *const names[]
    = { NULL,         "employee",  "civil",      "executive-staff", "uniformed-service",
        "contractor", "affiliate", "beneficiary" };
  int poa = f->poa[0] - '0';

  return (poa >= 1 && poa <= 7) ? names[poa] : "unknown";
}
