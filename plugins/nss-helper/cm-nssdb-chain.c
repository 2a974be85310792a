/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cm-nssdb-chain.c: the DoD chain of an analysed bundle (core/cm-bundle.h) into a database, for
 * `cacmail setup`: what it would change, then the change (trust C,C, on the confirmed root only,
 * the intermediates without trust, the skipped certs never), through cm_nssdb_trust_import_sync. */
#include "cm-nssdb-private.h"
#include <certdb.h>
#include <pk11pub.h>

static CERTCertificate *
find_in (CmNssDb *db, GBytes *der)
{
  gsize n = 0;
  SECItem it = { siBuffer, (unsigned char *)g_bytes_get_data (der, &n), 0 };

  it.len = (unsigned int)n;
  return PK11_FindCertFromDERCertItem (cm_nss_db_get_slot (db), &it, NULL);
}

static gboolean
is_trusted_ca (CERTCertificate *c)
{
  CERTCertTrust t;

  return CERT_GetCertTrust (c, &t) == SECSuccess && (t.sslFlags & CERTDB_TRUSTED_CA)
         && (t.emailFlags & CERTDB_TRUSTED_CA);
}

static char *
cn_of (GBytes *der)
{
  g_autoptr (CmCert) c = cm_cert_new_from_der (der, NULL, NULL);
  const char *cn = c ? cm_cert_get_subject_cn (c) : NULL;

  return g_strdup (cn ? cn : c ? cm_cert_get_subject (c) : "a CA certificate");
}

/* How many of @ders the PEM bundle @path lacks (all when it does not exist or is unreadable). */
static guint
missing_from_bundle (GPtrArray *ders, const char *path)
{
  g_autoptr (CmBundle) have = NULL;
  g_autoptr (GHashTable) sha = g_hash_table_new (g_str_hash, g_str_equal);
  guint missing = 0;

  if (g_file_test (path, G_FILE_TEST_EXISTS))
    have = cm_bundle_load_file (path, NULL);
  for (guint i = 0; have && i < cm_bundle_get_certs (have)->len; i++)
    g_hash_table_add (
      sha, (gpointer)cm_cert_get_sha256 (g_ptr_array_index (cm_bundle_get_certs (have), i)));
  for (guint i = 0; i < ders->len; i++)
    {
      g_autoptr (CmCert) c = cm_cert_new_from_der (g_ptr_array_index (ders, i), NULL, NULL);
      missing += c == NULL || !g_hash_table_contains (sha, cm_cert_get_sha256 (c));
    }
  return missing;
}

GPtrArray *
cm_nssdb_chain_plan (CmNssDb *db, CmBundleAnalysis *analysis, const char *bundle_path,
                     GError **error)
{
  g_autoptr (GPtrArray) ders = cm_bundle_analysis_get_ders (analysis);
  GPtrArray *out = g_ptr_array_new_with_free_func (g_free);
  guint missing;

  (void)error;
  for (guint i = 0; db && i < ders->len; i++)
    {
      GBytes *der = g_ptr_array_index (ders, i);
      CERTCertificate *c = find_in (db, der);
      g_autofree char *cn = cn_of (der);

      if (c == NULL)
        g_ptr_array_add (out, i == 0 ? g_strdup_printf ("add %s (root, trusted C,C,)", cn)
                                     : g_strdup_printf ("add %s (intermediate, no trust)", cn));
      else if (i == 0 && !is_trusted_ca (c))
        g_ptr_array_add (out, g_strdup_printf ("trust %s C,C, (TLS and email CA)", cn));
      if (c)
        CERT_DestroyCertificate (c);
    }
  if (bundle_path && (missing = missing_from_bundle (ders, bundle_path)) > 0)
    g_ptr_array_add (out, g_strdup_printf ("add %u CA%s to the CA bundle %s (LDAP's TLS)", missing,
                                           missing == 1 ? "" : "s", bundle_path));
  return out;
}

gboolean
cm_nssdb_chain_install_sync (CmNssDb *db, CmBundleAnalysis *analysis, const char *bundle_path,
                             GCancellable *cancellable, GError **error)
{
  g_autoptr (GPtrArray) ders = cm_bundle_analysis_get_ders (analysis);
  g_autoptr (GPtrArray) items = NULL;
  g_autoptr (GArray) had_trust = g_array_new (FALSE, TRUE, sizeof (gboolean));

  for (guint i = 0; i < ders->len; i++)
    {
      CERTCertificate *c = find_in (db, g_ptr_array_index (ders, i));
      gboolean t = c && is_trusted_ca (c);
      g_array_append_val (had_trust, t);
      if (c)
        CERT_DestroyCertificate (c);
    }
  if (!cm_nssdb_trust_import_sync (db, ders, bundle_path, &items, cancellable, error))
    return FALSE;
  /* the import trusts every self-issued CA: a key-rollover intermediate on the path is one, and
   * only the confirmed root may be trusted */
  for (guint i = 1; i < ders->len; i++)
    {
      CERTCertificate *c = find_in (db, g_ptr_array_index (ders, i));
      CERTCertTrust none;

      CERT_DecodeTrustString (&none, ",,");
      if (c && !g_array_index (had_trust, gboolean, i) && is_trusted_ca (c)
          && CERT_ChangeCertTrust (CERT_GetDefaultCertDB (), c, &none) != SECSuccess)
        {
          g_set_error (error, CM_ERROR, CM_ERROR_ENVIRONMENT,
                       "NSS could not clear the trust of %s in %s (%s): check that cert9.db is "
                       "writable",
                       c->subjectName, cm_nss_db_get_dir (db), cm_nss_error_text ());
          CERT_DestroyCertificate (c);
          return FALSE;
        }
      if (c)
        CERT_DestroyCertificate (c);
    }
  return TRUE;
}
