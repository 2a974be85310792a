/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-der.c: the one BER/TLV reader (core/cm-der.h) on the forms its three users meet: DER
 * (core), BER with indefinite lengths (the CMS blob, PKCS#12 files), high tag numbers, and the
 * bounds every form must keep. */
#include "cm-private.h"

/* The bytes cm_ber_read takes for the element at @p, or -1 when it refuses it. */
static gssize
read_at (const guint8 *p, gsize len, CmBerFlags flags, CmBerTlv *tlv)
{
  CmDer cur = cm_der_init (p, len);

  return cm_ber_read (&cur, flags, 0, tlv) ? (gssize)(len - cur.len) : -1;
}

#define READ(bytes, flags, tlv) read_at (bytes, sizeof bytes, flags, tlv)

#define BER (CM_BER_INDEFINITE | CM_BER_HIGH_TAG_NUMBERS)

static void
test_definite (void)
{
  static const guint8 short_form[] = { 0x04, 0x02, 0xaa, 0xbb, 0xff };
  static const guint8 long_form[] = { 0x30, 0x82, 0x00, 0x01, 0x05 };
  static const guint8 reserved[] = { 0x04, 0xff, 0x00 };
  static const guint8 huge[] = { 0x04, 0x89, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0 };
  static const guint8 past_end[] = { 0x04, 0x03, 0xaa, 0xbb };
  CmBerTlv t;

  g_assert_cmpint (READ (short_form, CM_BER_DEFINITE, &t), ==, 4);
  g_assert_cmpuint (t.h.id, ==, 0x04);
  g_assert_cmpuint (t.body.len, ==, 2);
  g_assert_cmpuint (t.body.p[1], ==, 0xbb);
  g_assert_cmpint (READ (long_form, CM_BER_DEFINITE, &t), ==, 5); /* not minimal: BER allows */
  g_assert_cmpuint (t.h.hdr_len, ==, 4);
  g_assert_cmpint (READ (reserved, BER, &t), ==, -1);
  g_assert_cmpint (READ (huge, BER, &t), ==, -1);
  g_assert_cmpint (READ (past_end, BER, &t), ==, -1);
}

static void
test_indefinite (void)
{
  /* SEQUENCE { [0] { OCTET STRING 02 } , SET { NULL } } with indefinite lengths, then a byte */
  static const guint8 nested[] = { 0x30, 0x80, 0xa0, 0x80, 0x04, 0x01, 0x02, 0x00, 0x00,
                                   0x31, 0x80, 0x05, 0x00, 0x00, 0x00, 0x00, 0x00, 0x77 };
  static const guint8 no_end[] = { 0x30, 0x80, 0x04, 0x01, 0x02 };
  static const guint8 primitive[] = { 0x04, 0x80, 0x00, 0x00 };
  CmBerTlv t;
  CmDer body;

  g_assert_cmpint (READ (nested, CM_BER_DEFINITE, &t), ==, -1);
  g_assert_cmpint (READ (nested, CM_BER_INDEFINITE, &t), ==, 17);
  g_assert_true (t.h.indefinite);
  g_assert_cmpuint (t.body.len, ==, 13); /* the two children, without the end octets */
  body = t.body;
  g_assert_true (cm_ber_expect (&body, CM_BER_INDEFINITE, 1, 0xa0, &t.body));
  g_assert_cmpuint (t.body.len, ==, 3);
  g_assert_true (cm_ber_expect (&body, CM_BER_INDEFINITE, 1, 0x31, &t.body));
  g_assert_cmpuint (body.len, ==, 0);
  g_assert_cmpint (READ (no_end, CM_BER_INDEFINITE, &t), ==, -1);
  g_assert_cmpint (READ (primitive, CM_BER_INDEFINITE, &t), ==, -1);
}

static void
test_high_tag_numbers (void)
{
  static const guint8 tag201[] = { 0xbf, 0x81, 0x49, 0x01, 0x00 }; /* [201] constructed */
  static const guint8 low_in_high_form[] = { 0x9f, 0x05, 0x00 };
  static const guint8 padded[] = { 0x9f, 0x80, 0x40, 0x00 };
  static const guint8 cut[] = { 0x9f, 0x81 };
  CmBerTlv t;
  CmDer cur = cm_der_init (tag201, sizeof tag201), v;

  g_assert_cmpint (READ (tag201, CM_BER_DEFINITE, &t), ==, -1);
  g_assert_cmpint (READ (tag201, BER, &t), ==, 5);
  g_assert_cmpuint (t.h.number, ==, 201);
  g_assert_cmpuint (t.h.id_len, ==, 3);
  g_assert_false (cm_ber_expect (&cur, BER, 0, 0xbf, &v)); /* never a high tag's first octet */
  g_assert_true (cur.p == tag201);
  g_assert_cmpint (READ (low_in_high_form, BER, &t), ==, -1);
  g_assert_cmpint (READ (padded, BER, &t), ==, -1);
  g_assert_cmpint (READ (cut, BER, &t), ==, -1);
}

/* The header alone, as the first chunk of a file or card object gives it. */
static void
test_header_only (void)
{
  static const guint8 first[] = { 0x30, 0x82, 0x10, 0x00, 0x02, 0x01, 0x03 };
  static const guint8 cut[] = { 0x30, 0x83, 0x10 };
  CmBerHeader h;

  g_assert_true (cm_ber_header (first, sizeof first, CM_BER_DEFINITE, &h));
  g_assert_cmpuint (h.hdr_len, ==, 4);
  g_assert_cmpuint (h.len, ==, 0x1000);
  g_assert_false (cm_ber_header (cut, sizeof cut, CM_BER_DEFINITE, &h));
}

/* 40 nested indefinite SEQUENCEs: refused at CM_BER_MAX_DEPTH, not a stack overflow. */
static void
test_depth (void)
{
  guint8 deep[160];
  CmDer cur = cm_der_init (deep, sizeof deep);
  CmBerTlv t;

  for (int i = 0; i < 40; i++)
    deep[2 * i] = 0x30, deep[2 * i + 1] = 0x80;
  memset (deep + 80, 0, 80);
  g_assert_false (cm_ber_read (&cur, CM_BER_INDEFINITE, 0, &t));
  cur = cm_der_init (deep + 2 * (40 - CM_BER_MAX_DEPTH - 1), sizeof deep - 2 * (40 - 33));
  g_assert_true (cm_ber_read (&cur, CM_BER_INDEFINITE, 0, &t));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/ber/definite", test_definite);
  g_test_add_func ("/ber/indefinite", test_indefinite);
  g_test_add_func ("/ber/high-tag-numbers", test_high_tag_numbers);
  g_test_add_func ("/ber/header-only", test_header_only);
  g_test_add_func ("/ber/depth", test_depth);
  return g_test_run ();
}
