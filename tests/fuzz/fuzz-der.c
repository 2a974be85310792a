/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* fuzz-der.c: the one BER/TLV reader (core/cm-der.h) that core, the BER to DER rewrite and the
 * PKCS#12 walk share, in its four modes. What it reads must hold together: the header reads
 * again the same, the contents lie inside the element and the element inside the input, an
 * indefinite length ends in its end-of-contents octets and its contents read again as exactly
 * its children, a stricter mode never reads something a looser one reads otherwise, and
 * cm_der_next is the definite mode. */
#include "cm-private.h"
#include "fuzz.h"
#include <stdio.h>
#include <stdlib.h>

#define ALL (CM_BER_INDEFINITE | CM_BER_HIGH_TAG_NUMBERS)

static void
fail (const char *what)
{
  fprintf (stderr, "fuzz-der: %s\n", what);
  abort ();
}

static gboolean
same_header (const CmBerHeader *a, const CmBerHeader *b)
{
  return a->id == b->id && a->number == b->number && a->id_len == b->id_len
         && a->hdr_len == b->hdr_len && a->indefinite == b->indefinite && a->len == b->len;
}

static gboolean
same_tlv (const CmBerTlv *a, const CmBerTlv *b)
{
  return same_header (&a->h, &b->h) && a->body.p == b->body.p && a->body.len == b->body.len
         && a->all.p == b->all.p && a->all.len == b->all.len;
}

static void check (const CmBerTlv *t, const guint8 *at, gsize avail, CmBerFlags flags, int depth);

/* The elements of a constructed element's contents; an indefinite length's must all read. */
static void
check_children (const CmBerTlv *t, CmBerFlags flags, int depth)
{
  CmDer rest = t->body;

  while (rest.len)
    {
      const guint8 *at = rest.p;
      gsize avail = rest.len;
      CmBerTlv c;

      if (!cm_ber_read (&rest, flags, depth + 1, &c))
        {
          if (t->h.indefinite)
            fail ("the contents of an indefinite length do not read again as its children");
          return;
        }
      check (&c, at, avail, flags, depth + 1);
    }
}

static void
check (const CmBerTlv *t, const guint8 *at, gsize avail, CmBerFlags flags, int depth)
{
  CmBerHeader h;
  gboolean high = t->h.id_len > 1;

  if (depth > CM_BER_MAX_DEPTH)
    fail ("an element deeper than CM_BER_MAX_DEPTH was read");
  if (t->all.p != at || t->all.len > avail || t->h.hdr_len > t->all.len
      || t->body.p != t->all.p + t->h.hdr_len || t->body.len > t->all.len - t->h.hdr_len)
    fail ("an element or its contents lie outside the bytes read");
  if (!cm_ber_header (at, avail, flags, &h) || !same_header (&h, &t->h))
    fail ("the header does not read again the same");
  if (t->h.indefinite
      && (!(flags & CM_BER_INDEFINITE) || !(t->h.id & 0x20)
          || t->h.hdr_len + t->body.len + 2 != t->all.len || t->all.p[t->all.len - 1]
          || t->all.p[t->all.len - 2]))
    fail ("an indefinite length that is not constructed contents ending in 00 00");
  if (!t->h.indefinite && (t->body.len != t->h.len || t->h.hdr_len + t->h.len != t->all.len))
    fail ("a definite length that is not the contents' length");
  if (high && (!(flags & CM_BER_HIGH_TAG_NUMBERS) || (t->h.id & 0x1f) != 0x1f || t->h.number < 31))
    fail ("a high tag number read where it must not be");
  if (!high && t->h.number != (guint32)(t->h.id & 0x1f))
    fail ("a one-octet tag whose number is not its low bits");
  if (t->h.id == 0x06 && !t->h.indefinite)
    {
      g_autofree char *oid = cm_der_oid_to_string (t->body);
      if (oid && (strspn (oid, "0123456789.") != strlen (oid) || !strchr ("012", oid[0])))
        fail ("an OID string that is not dotted digits");
    }
  if (t->h.id & 0x20)
    check_children (t, flags, depth);
}

/* The top-level elements in one mode, each compared with the loosest mode's reading. */
static void
walk (const uint8_t *data, size_t size, CmBerFlags flags)
{
  CmDer cur = cm_der_init (data, size), loose, plain;

  while (cur.len)
    {
      const guint8 *at = cur.p;
      gsize avail = cur.len;
      CmBerTlv t, l;
      guint8 tag = 0;
      CmDer v = { NULL, 0 };
      gboolean ok = cm_ber_read (&cur, flags, 0, &t);

      loose = cm_der_init (at, avail);
      if (ok && (!cm_ber_read (&loose, ALL, 0, &l) || !same_tlv (&t, &l)))
        fail ("a stricter mode read an element the loosest mode reads otherwise");
      if (flags == CM_BER_DEFINITE)
        {
          plain = cm_der_init (at, avail);
          if (cm_der_next (&plain, &tag, &v) != ok
              || (ok && (tag != t.h.id || v.p != t.body.p || v.len != t.body.len)))
            fail ("cm_der_next is not the definite mode");
        }
      if (!ok)
        {
          if (cur.p != at || cur.len != avail)
            fail ("a refused element moved the cursor");
          return;
        }
      check (&t, at, avail, flags, 0);
    }
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  static const CmBerFlags modes[]
    = { CM_BER_DEFINITE, CM_BER_INDEFINITE, CM_BER_HIGH_TAG_NUMBERS, ALL };

  for (gsize i = 0; i < G_N_ELEMENTS (modes); i++)
    walk (data, size, modes[i]);
  return 0;
}
