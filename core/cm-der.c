/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cm-der.c: a small, strict TLV reader. Certificates themselves are decoded by NSS; this reads
 * the extension values and card objects NSS leaves to us. */
#include "cm-private.h"

gboolean
cm_der_next (CmDer *cur, guint8 *tag, CmDer *value)
{
  const guint8 *p = cur->p;
  gsize left = cur->len;
  gsize len = 0;

  if (left < 2)
    return FALSE;
  *tag = p[0];
  if ((p[0] & 0x1f) == 0x1f) /* multi-byte tags appear nowhere we read */
    return FALSE;
  p++;
  left--;
  if (p[0] < 0x80)
    {
      len = p[0];
      p++;
      left--;
    }
  else
    {
      guint n = p[0] & 0x7f;
      if (n == 0 || n > 4 || left < 1 + n)
        return FALSE; /* indefinite or absurd lengths are malformed here */
      for (guint i = 1; i <= n; i++)
        len = (len << 8) | p[i];
      p += 1 + n;
      left -= 1 + n;
    }
  if (len > left)
    return FALSE;
  value->p = p;
  value->len = len;
  cur->p = p + len;
  cur->len = left - len;
  return TRUE;
}

gboolean
cm_der_expect (CmDer *cur, guint8 tag, CmDer *value)
{
  CmDer save = *cur;
  guint8 t;

  if (!cm_der_next (cur, &t, value) || t != tag)
    {
      *cur = save;
      return FALSE;
    }
  return TRUE;
}

char *
cm_der_oid_to_string (CmDer oid)
{
  GString *s;
  guint64 v = 0;
  gboolean first = TRUE;

  if (oid.len == 0 || (oid.p[oid.len - 1] & 0x80))
    return NULL;
  s = g_string_new (NULL);
  for (gsize i = 0; i < oid.len; i++)
    {
      if (v > (G_MAXUINT64 >> 7))
        {
          g_string_free (s, TRUE);
          return NULL;
        }
      v = (v << 7) | (oid.p[i] & 0x7f);
      if (oid.p[i] & 0x80)
        continue;
      if (first)
        {
          guint64 a = v < 40 ? 0 : v < 80 ? 1 : 2;
          g_string_append_printf (s, "%" G_GUINT64_FORMAT ".%" G_GUINT64_FORMAT, a, v - a * 40);
          first = FALSE;
        }
      else
        g_string_append_printf (s, ".%" G_GUINT64_FORMAT, v);
      v = 0;
    }
  return g_string_free (s, FALSE);
}

gboolean
cm_is_digits (const guint8 *p, gsize n)
{
  for (gsize i = 0; i < n; i++)
    if (!g_ascii_isdigit (p[i]))
      return FALSE;
  return TRUE;
}

char *
cm_hex_encode (const guint8 *p, gsize len, gboolean upper)
{
  static const char lo[] = "0123456789abcdef";
  static const char up[] = "0123456789ABCDEF";
  const char *digits = upper ? up : lo;
  char *out = g_malloc (2 * len + 1);

  for (gsize i = 0; i < len; i++)
    {
      out[2 * i] = digits[p[i] >> 4];
      out[2 * i + 1] = digits[p[i] & 0xf];
    }
  out[2 * len] = '\0';
  return out;
}
