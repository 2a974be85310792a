/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-core.c: unit tests of the core's parsers on real GSA data and on every corruption of it
 * (each single-bit flip of a FASC-N, each truncation of a CHUID and a certificate). */
#include "cm-private.h"

static const char *gsa_dir;

static GBytes *
read_gsa (const char *rel)
{
  g_autofree char *path = g_build_filename (gsa_dir, rel, NULL);
  g_autoptr (GError) error = NULL;
  GBytes *b = cm_read_file (path, &error);
  g_assert_no_error (error);
  return b;
}

static void
hex_to_bytes (const char *hex, guint8 *out, gsize n)
{
  for (gsize i = 0; i < n; i++)
    {
      char pair[3] = { hex[2 * i], hex[2 * i + 1], 0 };
      out[i] = (guint8)strtoul (pair, NULL, 16);
    }
}

static void
test_fascn_known_value (void)
{
  guint8 raw[CM_FASCN_LEN];
  CmFascn f;
  g_autoptr (GError) error = NULL;

  hex_to_bytes ("D13810D828AF2C1084246DA1685828AF0210848D84E739C3EB", raw, sizeof raw);
  g_assert_true (cm_fascn_decode (raw, sizeof raw, &f, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (f.agency_code, ==, "4700");
  g_assert_cmpstr (f.system_code, ==, "0257");
  g_assert_cmpstr (f.credential_number, ==, "000046");
  g_assert_cmpstr (f.cs, ==, "1");
  g_assert_cmpstr (f.ici, ==, "1");
  g_assert_cmpstr (f.pi, ==, "0257000046");
  g_assert_cmpstr (f.oc, ==, "1");
  g_assert_cmpstr (f.oi, ==, "9999");
  g_assert_cmpstr (f.poa, ==, "1");
  g_assert_cmpstr (cm_fascn_poa_name (&f), ==, "employee");
  g_assert_cmpstr (f.hex, ==, "D13810D828AF2C1084246DA1685828AF0210848D84E739C3EB");
}

static void
test_fascn_roundtrip (void)
{
  CmFascn in = { .agency_code = "0097",
                 .system_code = "0001",
                 .credential_number = "100002",
                 .cs = "1",
                 .ici = "1",
                 .pi = "1234567890",
                 .oc = "1",
                 .oi = "0097",
                 .poa = "4" };
  guint8 raw[CM_FASCN_LEN];
  CmFascn out;

  g_assert_true (cm_fascn_encode (&in, raw, NULL));
  g_assert_true (cm_fascn_decode (raw, sizeof raw, &out, NULL));
  g_assert_cmpstr (out.credential_number, ==, "100002");
  g_assert_cmpstr (out.pi, ==, "1234567890");
  g_assert_cmpstr (cm_fascn_poa_name (&out), ==, "uniformed-service");
  {
    g_autofree char *key = cm_fascn_credential_key (&out);
    g_assert_cmpstr (key, ==, "fascn:0097-0001-100002-1-1");
  }
}

/* Odd parity per character plus the LRC catch every single-bit error. */
static void
test_fascn_every_bit_flip_detected (void)
{
  guint8 raw[CM_FASCN_LEN];
  CmFascn f;

  hex_to_bytes ("D13810D828AF2C1084246DA1685828AF0210848D84E739C3EB", raw, sizeof raw);
  for (guint bit = 0; bit < 8 * CM_FASCN_LEN; bit++)
    {
      g_autoptr (GError) error = NULL;
      raw[bit / 8] ^= (guint8)(0x80 >> (bit % 8));
      g_assert_false (cm_fascn_decode (raw, sizeof raw, &f, &error));
      g_assert_error (error, CM_ERROR, CM_ERROR_BAD_INPUT);
      raw[bit / 8] ^= (guint8)(0x80 >> (bit % 8));
    }
  g_assert_false (cm_fascn_decode (raw, 24, &f, NULL));
}

static void
test_chuid_gsa (void)
{
  g_autoptr (GBytes) b = read_gsa ("cards/46_Golden_FIPS_201-2_PIV/8 - CHUID Object");
  gsize len;
  const guint8 *p = g_bytes_get_data (b, &len);
  g_autoptr (CmChuid) c = NULL;
  g_autoptr (CmChuid) wrapped = NULL;
  g_autofree guint8 *buf = g_malloc (len + 4);
  g_autofree char *id = NULL;

  c = cm_chuid_parse (p, len, NULL);
  g_assert_nonnull (c);
  g_assert_cmpstr (cm_chuid_get_fascn (c)->hex, ==,
                   "D13810D828AF2C1084246DA1685828AF0210848D84E739C3EB");
  g_assert_cmpstr (cm_chuid_get_guid (c), ==, "94e28c68-84db-44db-8a0e-f502d6689b14");
  g_assert_cmpstr (cm_chuid_get_cardholder_uuid (c), ==, "db175391-4749-4a32-977d-7a3843775e8a");
  g_assert_cmpstr (cm_chuid_get_expiry (c), ==, "2032-12-02");
  g_assert_true (cm_chuid_has_signature (c));
  id = cm_chuid_identity (c);
  g_assert_cmpstr (id, ==, "fascn:4700-0257-000046-1-1");

  /* The same with the 53 container a card returns. */
  g_assert_cmpuint (len, <, 65536);
  buf[0] = 0x53;
  buf[1] = 0x82;
  buf[2] = (guint8)(len >> 8);
  buf[3] = (guint8)len;
  memcpy (buf + 4, p, len);
  wrapped = cm_chuid_parse (buf, len + 4, NULL);
  g_assert_nonnull (wrapped);
  g_assert_cmpstr (cm_chuid_get_guid (wrapped), ==, cm_chuid_get_guid (c));
}

static void
test_chuid_every_truncation (void)
{
  g_autoptr (GBytes) b = read_gsa ("cards/01_Golden_PIV/8 - CHUID Object");
  gsize len;
  const guint8 *p = g_bytes_get_data (b, &len);

  for (gsize n = 0; n < len; n++)
    {
      g_autoptr (GError) error = NULL;
      g_autofree guint8 *copy = g_memdup2 (p, n); /* exact-size heap copy: ASan sees overreads */
      CmChuid *c = cm_chuid_parse (copy, n, &error);
      /* Cutting after a complete TLV can still leave a valid CHUID; never a crash. */
      if (c == NULL)
        g_assert_error (error, CM_ERROR, CM_ERROR_BAD_INPUT);
      cm_chuid_free (c);
    }
}

static void
test_der_oids (void)
{
  static const guint8 upn[] = { 0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x14, 0x02, 0x03 };
  static const guint8 fascn[] = { 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x06, 0x06 };
  static const guint8 bad[] = { 0x2b, 0x86 };
  g_autofree char *a = cm_der_oid_to_string (cm_der_init (upn, sizeof upn));
  g_autofree char *b = cm_der_oid_to_string (cm_der_init (fascn, sizeof fascn));

  g_assert_cmpstr (a, ==, "1.3.6.1.4.1.311.20.2.3");
  g_assert_cmpstr (b, ==, "2.16.840.1.101.3.6.6");
  g_assert_null (cm_der_oid_to_string (cm_der_init (bad, sizeof bad)));
}

static void
test_der_lengths (void)
{
  static const guint8 indefinite[] = { 0x30, 0x80, 0x00, 0x00 };
  static const guint8 overlong[] = { 0x30, 0x05, 0x01 };
  static const guint8 long_form[] = { 0x04, 0x81, 0x01, 0xaa };
  CmDer cur, v;
  guint8 tag;

  cur = cm_der_init (indefinite, sizeof indefinite);
  g_assert_false (cm_der_next (&cur, &tag, &v));
  cur = cm_der_init (overlong, sizeof overlong);
  g_assert_false (cm_der_next (&cur, &tag, &v));
  cur = cm_der_init (long_form, sizeof long_form);
  g_assert_true (cm_der_next (&cur, &tag, &v));
  g_assert_cmpuint (tag, ==, 0x04);
  g_assert_cmpuint (v.len, ==, 1);
  g_assert_cmpuint (v.p[0], ==, 0xaa);
  g_assert_cmpuint (cur.len, ==, 0);
}

/* GSA's PEM files start with "Bag Attributes" text before the armour. */
static void
test_pem_with_bag_attributes (void)
{
  g_autoptr (GBytes) b = read_gsa ("cards/01_Golden_PIV/3 - ICAM_PIV_Auth_SP_800-73-4.crt");
  g_autoptr (GPtrArray) blobs = cm_load_cert_blobs (b, "x", NULL);
  g_autoptr (CmCert) c = NULL;

  g_assert_nonnull (blobs);
  g_assert_cmpuint (blobs->len, ==, 1);
  c = cm_cert_new_from_der (g_ptr_array_index (blobs, 0), NULL, NULL);
  g_assert_nonnull (c);
  g_assert_cmpint (cm_cert_get_role (c), ==, CM_ROLE_PIV_AUTH);
  g_assert_nonnull (cm_cert_get_fascn (c));
  g_assert_cmpstr (cm_cert_get_fascn (c)->agency_code, ==, "4700");
}

static void
test_cert_fields (void)
{
  g_autoptr (GBytes) b
    = read_gsa ("cards/46_Golden_FIPS_201-2_PIV/3 - ICAM_PIV_Auth_SP_800-73-4.crt");
  g_autoptr (GPtrArray) blobs = cm_load_cert_blobs (b, "x", NULL);
  g_autoptr (CmCert) c = cm_cert_new_from_der (g_ptr_array_index (blobs, 0), NULL, NULL);
  g_autofree char *nb = NULL;

  g_assert_nonnull (c);
  g_assert_cmpstr (cm_cert_get_upn (c), ==, "0257000046@gsa.gov");
  g_assert_null (cm_cert_get_edipi (c));
  g_assert_true (cm_cert_get_key_usage (c) & CM_KU_DIGITAL_SIGNATURE);
  g_assert_false (cm_cert_get_key_usage (c) & CM_KU_NON_REPUDIATION);
  g_assert_true (g_strv_contains (cm_cert_get_ekus (c), "1.3.6.1.4.1.311.20.2.2"));
  g_assert_cmpuint (strlen (cm_cert_get_sha256 (c)), ==, 64);
  g_assert_true (g_str_has_prefix (cm_cert_get_subject (c), "CN="));
  nb = cm_time_format (cm_cert_get_not_after (c));
  g_assert_cmpstr (nb, ==, "2032-12-01T23:59:59Z");
}

static void
test_cert_every_truncation (void)
{
  g_autoptr (GBytes) b = read_gsa ("cards/01_Golden_PIV/5 - ICAM_PIV_Key_Mgmt_SP_800-73-4.crt");
  g_autoptr (GPtrArray) blobs = cm_load_cert_blobs (b, "x", NULL);
  gsize len;
  const guint8 *der = g_bytes_get_data (g_ptr_array_index (blobs, 0), &len);

  for (gsize n = 0; n < len; n += 7)
    {
      g_autoptr (GBytes) cut = g_bytes_new (der, n);
      g_autoptr (GError) error = NULL;
      CmCert *c = cm_cert_new_from_der (cut, NULL, &error);
      g_assert_null (c);
      g_assert_error (error, CM_ERROR, CM_ERROR_BAD_INPUT);
    }
}

static void
test_status_words (void)
{
  static const struct
  {
    guint16 sw;
    const char *want;
  } cases[] = {
    { 0x63c2, "wrong PIN, 2 PIN tries left" },
    { 0x63c1, "wrong PIN, 1 PIN try left" },
    { 0x63c0, "wrong PIN, no tries left: the PIN is now blocked" },
    { 0x6983, "PIN blocked: unblock it at a RAPIDS / card issuing office" },
    { 0x6a82, "object not on the card" },
    { 0x1234, "card error (status 1234)" },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *msg = cm_status_word_message (cases[i].sw);
      g_assert_cmpstr (msg, ==, cases[i].want);
    }
}

/* A recovered (decrypt-only) key is never picked to encrypt, only listed to decrypt. */
static void
test_select_skips_decrypt_only (void)
{
  g_autoptr (CmInventory) inv = cm_inventory_new ();
  g_autofree char *dir = g_build_filename (gsa_dir, "cards", "01_Golden_PIV", NULL);
  g_autoptr (CmPicks) before = NULL;
  g_autoptr (CmPicks) after = NULL;
  g_autofree char *enc = NULL;

  g_assert_true (cm_inventory_add_path (inv, dir, NULL));
  before = cm_select_for_email (inv, "icam.test.cards@gsa.gov", 1780272000, NULL);
  g_assert_nonnull (cm_picks_get_encryption (before));
  enc = g_strdup (cm_cert_get_sha256 (cm_picks_get_encryption (before)));
  cm_inventory_mark_decrypt_only (inv, enc);
  after = cm_select_for_email (inv, "icam.test.cards@gsa.gov", 1780272000, NULL);
  g_assert_null (cm_picks_get_encryption (after));
  g_assert_cmpuint (cm_picks_get_decrypt_only (after)->len, ==, 1);
  g_assert_cmpstr (cm_cert_get_sha256 (g_ptr_array_index (cm_picks_get_decrypt_only (after), 0)),
                   ==, enc);
  g_assert_nonnull (cm_picks_get_signing (after));
}

static void
test_time_parse (void)
{
  gint64 t;
  g_autoptr (GError) error = NULL;

  g_assert_true (cm_time_parse ("2026-06-01", &t, NULL));
  g_assert_cmpint (t, ==, 1780272000);
  g_assert_true (cm_time_parse ("2026-06-01T12:00:00Z", &t, NULL));
  g_assert_cmpint (t, ==, 1780315200);
  g_assert_true (cm_time_parse ("2026-06-01T14:00:00+02:00", &t, NULL));
  g_assert_cmpint (t, ==, 1780315200);
  g_assert_false (cm_time_parse ("01/06/2026", &t, &error));
  g_assert_error (error, CM_ERROR, CM_ERROR_BAD_INPUT);
}

/* A source tree without ../shared (a package build from a release tarball): the tests on
 * GSA's cards are skipped, never under CI. */
static void
skip_without_gsa (void)
{
  g_test_skip ("GSA's test cards are not there (CACMAIL_GSA_DIR, ../shared/testdata)");
}

int
main (int argc, char **argv)
{
  int rc;

  g_test_init (&argc, &argv, NULL);
  gsa_dir = g_getenv ("CACMAIL_GSA_DIR");
  if (gsa_dir == NULL || !g_file_test (gsa_dir, G_FILE_TEST_IS_DIR))
    {
      if (g_strcmp0 (g_getenv ("CI"), "true") == 0)
        {
          g_printerr ("CACMAIL_GSA_DIR is not set to ../shared/testdata/gsa-piv-cards\n");
          return 1;
        }
      gsa_dir = NULL;
    }
  g_assert_true (cm_init (NULL));
#define GSA(fn) (gsa_dir ? (fn) : skip_without_gsa)
  g_test_add_func ("/fascn/known-value", test_fascn_known_value);
  g_test_add_func ("/fascn/roundtrip", test_fascn_roundtrip);
  g_test_add_func ("/fascn/every-bit-flip-detected", test_fascn_every_bit_flip_detected);
  g_test_add_func ("/chuid/gsa-card-46", GSA (test_chuid_gsa));
  g_test_add_func ("/chuid/every-truncation", GSA (test_chuid_every_truncation));
  g_test_add_func ("/der/oids", test_der_oids);
  g_test_add_func ("/der/lengths", test_der_lengths);
  g_test_add_func ("/pem/bag-attributes", GSA (test_pem_with_bag_attributes));
  g_test_add_func ("/cert/fields", GSA (test_cert_fields));
  g_test_add_func ("/cert/every-truncation", GSA (test_cert_every_truncation));
  g_test_add_func ("/time/parse", test_time_parse);
  g_test_add_func ("/card/status-words", test_status_words);
  g_test_add_func ("/select/skips-decrypt-only", GSA (test_select_skips_decrypt_only));
#undef GSA
  rc = g_test_run ();
  cm_shutdown ();
  return rc;
}
