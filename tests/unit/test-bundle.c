/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-bundle.c: the trust-bundle analysis (core/cm-bundle.c) on GSA's test CAs, a real PKI with
 * what DoD bundles hold: a bridge cross-certificate for the root, another root (PIV-I) and its
 * CA, key-rollover cross-certificates between two generations of a Signing CA (self-issued, signed
 * by the other key) and an expired CA. Also the fingerprint forms users paste. */
#include "cm-private.h"

static const char *gsa_dir;

#define ROOT "65c81e10e726143f72192d96a72bda6ff730d53403d040f0cd8c1085800e7be1"
#define BRIDGE_XCERT "61b25cb40de341f88c2b59d36a41bb775ca467e94fb77c67bb5f3c280c1e4e71"
#define PIVI_ROOT "119bace406b6526ed210c2c91d9b29635ea84c0338a0a91711b356a3e70de080"
#define PIVI_CA "eb2835622f761a24e4887d40006076547700e5947ddab4ce6d52093d9de6f934"
#define EXPIRED_CA "cc29fb0a80404700e984bd7c7803a3d7a299e0cdea786183b43fbecf327241b5"
#define ROLLOVER_A "a4d77270ad649af119661c1254eb8ff6a67c63264c0592e1f5d693f05f49d83d"
#define ROLLOVER_B "48055802ea1a1a53dd9a383d7497cfa4b9c7e68f497639274f72d6b33ea4d837"

/* Every CA file of GSA's ca/ folder in one PEM blob (as a user's bundle would hold them). */
static GBytes *
gsa_cas (void)
{
  g_autofree char *dir = g_build_filename (gsa_dir, "ca", NULL);
  g_autoptr (GDir) d = g_dir_open (dir, 0, NULL);
  g_autoptr (GString) all = g_string_new (NULL);
  const char *name;

  g_assert_nonnull (d);
  while ((name = g_dir_read_name (d)))
    {
      g_autofree char *path = g_build_filename (dir, name, NULL);
      g_autofree char *text = NULL;
      if (g_str_has_suffix (name, ".crt") && g_file_get_contents (path, &text, NULL, NULL))
        g_string_append (all, text);
    }
  return g_string_free_to_bytes (g_steal_pointer (&all));
}

static CmBundleRole
role_of (CmBundleAnalysis *a, const char *sha256, const char **reason)
{
  GPtrArray *items = cm_bundle_analysis_get_items (a);
  g_autofree char *want = cm_bundle_normalize_sha256 (sha256);

  for (guint i = 0; i < items->len; i++)
    {
      CmBundleItem *it = g_ptr_array_index (items, i);
      if (strcmp (cm_cert_get_sha256 (it->cert), want) == 0)
        {
          *reason = it->reason;
          return it->role;
        }
    }
  g_assert_not_reached ();
}

static void
test_gsa_analysis (void)
{
  g_autoptr (GBytes) pem = gsa_cas ();
  g_autoptr (GError) error = NULL;
  g_autoptr (CmBundle) b = cm_bundle_load_bytes (pem, "gsa", &error);
  g_autoptr (CmBundleAnalysis) a = NULL;
  g_autoptr (GPtrArray) ders = NULL;
  gint64 at = 0;
  const char *why = NULL;

  g_assert_no_error (error);
  g_assert_cmpuint (cm_bundle_get_certs (b)->len, ==, 12); /* two files hold the same roots */
  g_assert_cmpuint (cm_bundle_get_roots (b)->len, ==, 2);
  g_assert_true (cm_time_parse ("2026-06-01", &at, NULL));
  a = cm_bundle_analyse (b, ROOT, at, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (cm_cert_get_sha256 (cm_bundle_analysis_get_root (a)), ==, ROOT);
  g_assert_cmpint (role_of (a, BRIDGE_XCERT, &why), ==, CM_BUNDLE_SKIPPED);
  g_assert_nonnull (strstr (why, "cross-certificate"));
  g_assert_cmpint (role_of (a, PIVI_ROOT, &why), ==, CM_BUNDLE_SKIPPED);
  g_assert_nonnull (strstr (why, "another root"));
  g_assert_cmpint (role_of (a, PIVI_CA, &why), ==, CM_BUNDLE_SKIPPED);
  g_assert_nonnull (strstr (why, "not on a path"));
  g_assert_cmpint (role_of (a, EXPIRED_CA, &why), ==, CM_BUNDLE_SKIPPED);
  g_assert_nonnull (strstr (why, "not valid now"));
  /* a key-rollover cert is self-issued but no root: on the path, through the other key */
  g_assert_cmpint (role_of (a, ROLLOVER_A, &why), ==, CM_BUNDLE_INTERMEDIATE);
  g_assert_nonnull (strstr (why, "2 signatures verified"));
  g_assert_cmpint (role_of (a, ROLLOVER_B, &why), ==, CM_BUNDLE_INTERMEDIATE);
  g_assert_cmpuint (cm_bundle_analysis_count (a, CM_BUNDLE_INTERMEDIATE), ==, 7);
  g_assert_cmpuint (cm_bundle_analysis_count (a, CM_BUNDLE_SKIPPED), ==, 4);
  {
    g_autoptr (JsonNode) doc = cm_bundle_analysis_to_json (a);
    JsonObject *o = json_node_get_object (doc);
    JsonArray *skipped = json_object_get_array_member (o, "skipped");

    g_assert_cmpstr (
      json_object_get_string_member (json_object_get_object_member (o, "root"), "sha256"), ==,
      ROOT);
    g_assert_cmpuint (json_array_get_length (json_object_get_array_member (o, "intermediates")), ==,
                      7);
    g_assert_cmpuint (json_array_get_length (skipped), ==, 4);
    g_assert_nonnull (
      json_object_get_string_member (json_array_get_object_element (skipped, 0), "reason"));
  }
  /* the root first, then parents before children (the rollover certs last) */
  ders = cm_bundle_analysis_get_ders (a);
  g_assert_cmpuint (ders->len, ==, 8);
  {
    g_autoptr (CmCert) first = cm_cert_new_from_der (g_ptr_array_index (ders, 0), NULL, NULL);
    g_autoptr (CmCert) last = cm_cert_new_from_der (g_ptr_array_index (ders, 7), NULL, NULL);
    g_assert_cmpstr (cm_cert_get_sha256 (first), ==, ROOT);
    g_assert_true (cm_cert_is_self_issued (last));
  }
}

static void
test_gsa_refusals (void)
{
  g_autoptr (GBytes) pem = gsa_cas ();
  g_autoptr (CmBundle) b = cm_bundle_load_bytes (pem, "gsa", NULL);
  g_autoptr (GError) error = NULL;
  g_autofree char *other = g_strconcat ("00", ROOT + 2, NULL);
  CmBundleAnalysis *a;

  /* the bridge's cross-certificate for the root is no root, though it has the root's name */
  a = cm_bundle_analyse (b, BRIDGE_XCERT, cm_time_now (), &error);
  g_assert_null (a);
  g_assert_error (error, CM_ERROR, CM_ERROR_UNSAFE);
  g_assert_nonnull (strstr (error->message, "not a self-signed root"));
  g_clear_error (&error);
  a = cm_bundle_analyse (b, other, cm_time_now (), &error);
  g_assert_null (a);
  g_assert_error (error, CM_ERROR, CM_ERROR_UNSAFE);
  g_assert_nonnull (strstr (error->message, ROOT)); /* lists the roots to compare */
  g_clear_error (&error);
  g_assert_null (cm_bundle_analyse (b, "12:34", cm_time_now (), &error));
  g_assert_error (error, CM_ERROR, CM_ERROR_BAD_INPUT);
  g_clear_error (&error);
  g_assert_null (cm_bundle_load_bytes (g_bytes_new_static ("no certs", 8), "junk", &error));
  g_assert_error (error, CM_ERROR, CM_ERROR_BAD_INPUT);
  g_assert_nonnull (strstr (error->message, "junk"));
}

static void
test_normalize (void)
{
  const char *colons = "65:C8:1E:10:E7:26:14:3F:72:19:2D:96:A7:2B:DA:6F:F7:30:D5:34:03:D0:40:F0:"
                       "CD:8C:10:85:80:0E:7B:E1";
  g_autofree char *a = cm_bundle_normalize_sha256 (colons);
  g_autofree char *b = cm_bundle_normalize_sha256 (" 65c81e10 e726143f72192d96a72bda6ff730d534"
                                                   "03d040f0cd8c1085800e7be1 ");
  g_autofree char *c = cm_bundle_normalize_sha256 (ROOT "00");
  g_autofree char *zz = g_strconcat ("zz", ROOT + 2, NULL);
  g_autofree char *d = cm_bundle_normalize_sha256 (zz);

  g_assert_cmpstr (a, ==, ROOT);
  g_assert_cmpstr (b, ==, ROOT);
  g_assert_null (c);
  g_assert_null (d);
  g_assert_null (cm_bundle_normalize_sha256 (NULL));
}

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
  g_test_add_func ("/bundle/normalize-sha256", test_normalize);
  g_test_add_func ("/bundle/gsa-analysis", gsa_dir ? test_gsa_analysis : skip_without_gsa);
  g_test_add_func ("/bundle/gsa-refusals", gsa_dir ? test_gsa_refusals : skip_without_gsa);
  rc = g_test_run ();
  cm_shutdown ();
  return rc;
}
