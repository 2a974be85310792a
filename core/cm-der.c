/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cm-der.c: the one BER/TLV reader (cm-der.h), strict about bounds. Certificates themselves are
 * decoded by NSS; this reads the extension values and card objects NSS leaves to us, the CMS blob
 * rewritten to DER for the directory and the PKCS#12 files of key recovery. */
#include "cm-private.h"

/* The tag number of a high-tag-number identifier: base 128, the first octet not 0x80 (minimal
 * form), at most 4 octets (2^28, far above any tag in use), and above 30 (X.690 8.1.2). */
static gboolean
high_tag_number (const guint8 *p, gsize avail, guint32 *number, gsize *id_len)
{
  guint32 v = 0;
  gsize i = 1;

  if (avail < 2 || p[1] == 0x80)
    return FALSE;
  for (;; i++)
    {
      if (i >= avail || i > 4)
        return FALSE;
      v = (v << 7) | (p[i] & 0x7f);
      if (!(p[i] & 0x80))
        break;
    }
  if (v < 0x1f)
    return FALSE;
  *number = v;
  *id_len = i + 1;
  return TRUE;
}

gboolean
cm_ber_header (const guint8 *p, gsize avail, CmBerFlags flags, CmBerHeader *h)
{
  gsize at, n;

  if (avail < 2)
    return FALSE;
  *h = (CmBerHeader){ .id = p[0], .number = p[0] & 0x1f, .id_len = 1 };
  if ((p[0] & 0x1f) == 0x1f
      && (!(flags & CM_BER_HIGH_TAG_NUMBERS)
          || !high_tag_number (p, avail, &h->number, &h->id_len)))
    return FALSE;
  at = h->id_len;
  if (at >= avail || p[at] == 0xff)
    return FALSE;
  if (p[at] == 0x80)
    {
      if (!(flags & CM_BER_INDEFINITE) || !(p[0] & 0x20))
        return FALSE;
      h->indefinite = TRUE;
      h->hdr_len = at + 1;
      return TRUE;
    }
  if (p[at] < 0x80)
    {
      h->len = p[at];
      h->hdr_len = at + 1;
      return TRUE;
    }
  n = p[at] & 0x7f;
  if (avail - at - 1 < n)
    return FALSE;
  for (gsize i = 1; i <= n; i++)
    {
      if (h->len >> (8 * sizeof (gsize) - 8))
        return FALSE;
      h->len = (h->len << 8) | p[at + i];
    }
  h->hdr_len = at + 1 + n;
  return TRUE;
}

/* Past the elements of an indefinite length up to its end-of-contents octets: @cur is left at
 * them. */
static gboolean
walk_to_end (CmDer *cur, CmBerFlags flags, int depth)
{
  CmBerTlv child;

  while (cur->len >= 2 && (cur->p[0] || cur->p[1]))
    if (!cm_ber_read (cur, flags, depth, &child))
      return FALSE;
  return cur->len >= 2;
}

gboolean
cm_ber_read (CmDer *cur, CmBerFlags flags, int depth, CmBerTlv *tlv)
{
  CmBerHeader h;
  gsize total;

  if (depth > CM_BER_MAX_DEPTH || !cm_ber_header (cur->p, cur->len, flags, &h))
    return FALSE;
  if (h.indefinite)
    {
      CmDer rest = cm_der_init (cur->p + h.hdr_len, cur->len - h.hdr_len);

      if (!walk_to_end (&rest, flags, depth + 1))
        return FALSE;
      tlv->body = cm_der_init (cur->p + h.hdr_len, (gsize)(rest.p - (cur->p + h.hdr_len)));
      total = h.hdr_len + tlv->body.len + 2;
    }
  else
    {
      if (h.len > cur->len - h.hdr_len)
        return FALSE;
      tlv->body = cm_der_init (cur->p + h.hdr_len, h.len);
      total = h.hdr_len + h.len;
    }
  tlv->h = h;
  tlv->all = cm_der_init (cur->p, total);
  cur->p += total;
  cur->len -= total;
  return TRUE;
}

gboolean
cm_ber_expect (CmDer *cur, CmBerFlags flags, int depth, guint8 id, CmDer *body)
{
  CmDer save = *cur;
  CmBerTlv t;

  if (!cm_ber_read (cur, flags, depth, &t) || t.h.id != id || t.h.id_len != 1)
    {
      *cur = save;
      return FALSE;
    }
  *body = t.body;
  return TRUE;
}

gboolean
cm_der_next (CmDer *cur, guint8 *tag, CmDer *value)
{
  CmBerTlv t;

  if (!cm_ber_read (cur, CM_BER_DEFINITE, 0, &t))
    return FALSE;
  *tag = t.h.id;
  *value = t.body;
  return TRUE;
}

gboolean
cm_der_expect (CmDer *cur, guint8 tag, CmDer *value)
{
  return cm_ber_expect (cur, CM_BER_DEFINITE, 0, tag, value);
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
