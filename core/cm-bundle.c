/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cm-bundle.c: the DoD PKI bundle (PKCS#7 or PEM) judged against the root the user confirmed:
 * the CAs that chain up to it by verified signatures (cm-trust.c) are the chain to install, the
 * others (interoperability cross-certificates, other roots, CAs of other PKIs) are skipped. */
#define _GNU_SOURCE /* memmem */
#include "cm-private.h"
#include <certdb.h>
#include <cryptohi.h>

struct _CmBundle
{
  char *name;
  GPtrArray *certs; /* CmCert* (ref), file order, no duplicates */
  GPtrArray *roots; /* CmCert* (borrowed from certs): self-signed CAs */
};

struct _CmBundleAnalysis
{
  CmCert *root;      /* borrowed from items */
  GPtrArray *items;  /* CmBundleItem*, bundle order */
  GHashTable *depth; /* CmCert* -> GUINT (path length to the root) */
};

const char *
cm_bundle_role_to_string (CmBundleRole role)
{
  switch (role)
    {
    case CM_BUNDLE_ROOT: return "root";
    case CM_BUNDLE_INTERMEDIATE: return "intermediate";
    case CM_BUNDLE_SKIPPED: return "skipped";
    default: return "unknown";
    }
}

/* ---- loading ---------------------------------------------------------------------------- */

static SECStatus
collect_package (void *arg, SECItem **certs, int n)
{
  for (int i = 0; i < n; i++)
    g_ptr_array_add (arg, g_bytes_new (certs[i]->data, certs[i]->len));
  return SECSuccess;
}

/* The DER certificates of one PKCS#7 (or a single certificate): FALSE when NSS cannot read it. */
static gboolean
decode_package (const guint8 *data, gsize len, GPtrArray *out)
{
  if (len == 0 || len > G_MAXINT)
    return FALSE;
  return CERT_DecodeCertPackage ((char *)data, (int)len, collect_package, out) == SECSuccess;
}

/* Every "-----BEGIN PKCS7-----" block of @text decoded into @out's certs; FALSE when one does
 * not decode. */
static gboolean
decode_pem_pkcs7 (const char *text, gsize len, GPtrArray *out, guint *blocks)
{
  static const char begin[] = "-----BEGIN PKCS7-----", end[] = "-----END PKCS7-----";
  const char *p = text, *stop = text + len;

  *blocks = 0;
  while ((p = memmem (p, (gsize)(stop - p), begin, strlen (begin))) != NULL)
    {
      const char *b = p + strlen (begin);
      const char *e = memmem (b, (gsize)(stop - b), end, strlen (end));
      g_autofree char *body = NULL;
      g_autofree guchar *der = NULL;
      gsize n = 0;

      if (e == NULL)
        return FALSE;
      body = g_strndup (b, (gsize)(e - b));
      der = g_base64_decode (g_strstrip (body), &n);
      if (!decode_package (der, n, out))
        return FALSE;
      (*blocks)++;
      p = e + strlen (end);
    }
  return TRUE;
}

/* The DER certs of @data: PEM PKCS7 and CERTIFICATE blocks, else DER PKCS#7 or one cert. */
static GPtrArray *
bundle_blobs (GBytes *data, const char *name, GError **error)
{
  gsize len = 0;
  const guint8 *p = g_bytes_get_data (data, &len);
  g_autoptr (GPtrArray) out = g_ptr_array_new_with_free_func ((GDestroyNotify)g_bytes_unref);
  g_autoptr (GPtrArray) pem = NULL;
  g_autoptr (GError) local = NULL;
  guint p7 = 0;

  if (p != NULL && len && memmem (p, len, "-----BEGIN ", 11))
    {
      if (!decode_pem_pkcs7 ((const char *)p, len, out, &p7))
        {
          g_set_error (error, CM_ERROR, CM_ERROR_BAD_INPUT,
                       "%s: a PKCS7 block does not decode (truncated or corrupt): download the "
                       "DoD PKI bundle again",
                       name);
          return NULL;
        }
      if (memmem (p, len, "CERTIFICATE-----", 16))
        pem = cm_pem_decode_certs (p, len, &local);
      if (local)
        {
          g_set_error (error, CM_ERROR, CM_ERROR_BAD_INPUT, "%s: %s: download the bundle again",
                       name, local->message);
          return NULL;
        }
      for (guint i = 0; pem && i < pem->len; i++)
        g_ptr_array_add (out, g_bytes_ref (g_ptr_array_index (pem, i)));
    }
  else
    decode_package (p, len, out);
  if (out->len == 0)
    {
      g_set_error (error, CM_ERROR, CM_ERROR_BAD_INPUT,
                   "%s holds no certificate cacmail can read: give the DoD PKI bundle as "
                   "downloaded from DISA (PKCS#7 .p7b, DER or PEM)",
                   name);
      return NULL;
    }
  return g_steal_pointer (&out);
}

CmBundle *
cm_bundle_load_bytes (GBytes *data, const char *name, GError **error)
{
  g_autoptr (GPtrArray) blobs = NULL;
  g_autoptr (GHashTable) seen = g_hash_table_new (g_str_hash, g_str_equal);
  CmBundle *b;

  if (!cm_nss_ready (error) || (blobs = bundle_blobs (data, name, error)) == NULL)
    return NULL;
  b = g_new0 (CmBundle, 1);
  b->name = g_strdup (name);
  b->certs = g_ptr_array_new_with_free_func ((GDestroyNotify)cm_cert_unref);
  b->roots = g_ptr_array_new ();
  for (guint i = 0; i < blobs->len; i++)
    {
      g_autoptr (GError) local = NULL;
      CmCert *c = cm_cert_new_from_der (g_ptr_array_index (blobs, i), NULL, &local);

      if (c == NULL)
        {
          g_set_error (error, CM_ERROR, CM_ERROR_BAD_INPUT,
                       "%s: certificate %u does not decode (%s): download the bundle again", name,
                       i + 1, local->message);
          cm_bundle_free (b);
          return NULL;
        }
      if (!g_hash_table_add (seen, (gpointer)cm_cert_get_sha256 (c)))
        {
          cm_cert_unref (c);
          continue;
        }
      g_ptr_array_add (b->certs, c);
      if (cm_cert_is_ca (c) && cm_cert_is_self_signed (c))
        g_ptr_array_add (b->roots, c);
    }
  return b;
}

CmBundle *
cm_bundle_load_file (const char *path, GError **error)
{
  g_autoptr (GBytes) data = NULL;

  if (!g_file_test (path, G_FILE_TEST_EXISTS))
    {
      g_set_error (error, CM_ERROR, CM_ERROR_NOT_FOUND,
                   "%s does not exist: give the path of the DoD PKI bundle (.p7b) you downloaded",
                   path);
      return NULL;
    }
  if ((data = cm_read_file (path, error)) == NULL)
    return NULL;
  return cm_bundle_load_bytes (data, path, error);
}

void
cm_bundle_free (CmBundle *b)
{
  if (b == NULL)
    return;
  g_ptr_array_unref (b->roots);
  g_ptr_array_unref (b->certs);
  g_free (b->name);
  g_free (b);
}

GPtrArray *
cm_bundle_get_certs (CmBundle *b)
{
  return b->certs;
}

GPtrArray *
cm_bundle_get_roots (CmBundle *b)
{
  return b->roots;
}

const char *
cm_bundle_get_name (CmBundle *b)
{
  return b->name;
}

char *
cm_bundle_normalize_sha256 (const char *text)
{
  g_autoptr (GString) out = g_string_new (NULL);

  if (text == NULL)
    return NULL;
  for (const char *p = text; *p; p++)
    {
      if (*p == ':' || *p == ' ' || *p == '\t')
        continue;
      if (!g_ascii_isxdigit (*p))
        return NULL;
      g_string_append_c (out, g_ascii_tolower (*p));
    }
  if (out->len != 64)
    return NULL;
  return g_string_free (g_steal_pointer (&out), FALSE);
}

/* ---- analysis --------------------------------------------------------------------------- */

static void
item_free (CmBundleItem *it)
{
  cm_cert_unref (it->cert);
  g_free (it->reason);
  g_free (it);
}

static const char *
name_of (CmCert *c)
{
  const char *cn = cm_cert_get_subject_cn (c);
  return cn ? cn : cm_cert_get_subject (c);
}

/* Refuse the bundle when a cert is not a CA: it is not the CA bundle. */
static gboolean
check_all_ca (CmBundle *b, GError **error)
{
  for (guint i = 0; i < b->certs->len; i++)
    {
      CmCert *c = g_ptr_array_index (b->certs, i);
      if (!cm_cert_is_ca (c))
        {
          g_set_error (error, CM_ERROR, CM_ERROR_UNSAFE,
                       "%s holds %s (SHA-256 %.16s...), which is not a CA certificate: nothing was "
                       "installed; give the DoD PKI CA bundle (.p7b) exactly as downloaded from "
                       "DISA",
                       b->name, cm_cert_get_subject (c), cm_cert_get_sha256 (c));
          return FALSE;
        }
    }
  return TRUE;
}

/* "CN (SHA-256 ab12...), ..." of the bundle's roots, for the refusals. */
static char *
list_roots (CmBundle *b)
{
  g_autoptr (GString) s = g_string_new (NULL);

  for (guint i = 0; i < b->roots->len; i++)
    {
      CmCert *c = g_ptr_array_index (b->roots, i);
      g_string_append_printf (s, "%s%s (SHA-256 %s)", i ? ", " : "", name_of (c),
                              cm_cert_get_sha256 (c));
    }
  if (s->len == 0)
    g_string_append (s, "none");
  return g_string_free (g_steal_pointer (&s), FALSE);
}

static CmCert *
find_root (CmBundle *b, const char *fingerprint, GError **error)
{
  g_autofree char *want = cm_bundle_normalize_sha256 (fingerprint);
  g_autofree char *roots = list_roots (b);

  if (want == NULL)
    {
      g_set_error (error, CM_ERROR, CM_ERROR_BAD_INPUT,
                   "'%s' is not a SHA-256 fingerprint: give the 64 hex digits DISA publishes for "
                   "the DoD root (colons allowed)",
                   fingerprint ? fingerprint : "");
      return NULL;
    }
  for (guint i = 0; i < b->certs->len; i++)
    {
      CmCert *c = g_ptr_array_index (b->certs, i);
      if (strcmp (cm_cert_get_sha256 (c), want) != 0)
        continue;
      if (!g_ptr_array_find (b->roots, c, NULL))
        {
          g_set_error (error, CM_ERROR, CM_ERROR_UNSAFE,
                       "the certificate with that fingerprint in %s, %s, is not a self-signed "
                       "root CA: nothing was installed; confirm the DoD root's fingerprint (roots "
                       "in the bundle: %s)",
                       b->name, cm_cert_get_subject (c), roots);
          return NULL;
        }
      return c;
    }
  g_set_error (error, CM_ERROR, CM_ERROR_UNSAFE,
               "no certificate in %s has the SHA-256 fingerprint %s: nothing was installed; "
               "check the fingerprint against DISA's and the file you downloaded (roots in the "
               "bundle: %s)",
               b->name, want, roots);
  return NULL;
}

/* Why @c does not chain to the root, in one sentence. */
static char *
skip_reason (CmCert *c, CmCert *root, CmChainStatus st, gint64 at)
{
  g_autofree char *until = cm_time_format_date (cm_cert_get_not_after (c));

  if (cm_cert_is_self_signed (c))
    return g_strdup_printf ("another root, not the one you confirmed (%s)", name_of (root));
  if (!cm_cert_is_valid_at (c, at))
    return g_strdup_printf ("not valid now (valid until %s)", until);
  if (strcmp (cm_cert_get_subject (c), cm_cert_get_subject (root)) == 0)
    return g_strdup_printf ("cross-certificate: %s issued by %s, which does not chain to the "
                            "confirmed root",
                            name_of (c), cm_cert_get_issuer (c));
  switch (st)
    {
    case CM_CHAIN_CA_NOT_VALID:
      return g_strdup ("a CA on its path to the confirmed root is expired or not yet valid");
    case CM_CHAIN_BAD_SIGNATURE:
      return g_strdup ("a signature on its path to the confirmed root does not verify");
    default:
      return g_strdup_printf ("cross-certificate or another PKI's CA: its issuer %s is not on a "
                              "path to the confirmed root",
                              cm_cert_get_issuer (c));
    }
}

static CmBundleItem *
judge (CmTrust *trust, CmCert *c, CmCert *root, gint64 at, GHashTable *depth)
{
  CmBundleItem *it = g_new0 (CmBundleItem, 1);
  g_autoptr (GPtrArray) chain = NULL;
  CmChainStatus st = CM_CHAIN_NO_ISSUER;

  it->cert = cm_cert_ref (c);
  if (c == root)
    {
      it->role = CM_BUNDLE_ROOT;
      it->reason = g_strdup ("the root you confirmed by its SHA-256 fingerprint");
      g_hash_table_insert (depth, c, GUINT_TO_POINTER (0));
      return it;
    }
  if (!cm_cert_is_self_signed (c) && cm_cert_is_valid_at (c, at))
    st = cm_trust_build_chain (trust, c, at, &chain);
  if (st == CM_CHAIN_OK)
    {
      it->role = CM_BUNDLE_INTERMEDIATE;
      it->reason = g_strdup_printf ("issued by %s, chains to %s (%u signature%s verified)",
                                    name_of (g_ptr_array_index (chain, 1)), name_of (root),
                                    chain->len - 1, chain->len > 2 ? "s" : "");
      g_hash_table_insert (depth, c, GUINT_TO_POINTER (chain->len - 1));
    }
  else
    {
      it->role = CM_BUNDLE_SKIPPED;
      it->reason = skip_reason (c, root, st, at);
    }
  return it;
}

CmBundleAnalysis *
cm_bundle_analyse (CmBundle *b, const char *root_sha256, gint64 at, GError **error)
{
  g_autoptr (CmTrust) trust = NULL;
  CmBundleAnalysis *a;
  CmCert *root;

  if (!check_all_ca (b, error) || (root = find_root (b, root_sha256, error)) == NULL)
    return NULL;
  trust = cm_trust_new ();
  cm_trust_add_anchor (trust, root);
  for (guint i = 0; i < b->certs->len; i++)
    if (g_ptr_array_index (b->certs, i) != root)
      cm_trust_add_intermediate (trust, g_ptr_array_index (b->certs, i));
  a = g_new0 (CmBundleAnalysis, 1);
  a->root = root;
  a->items = g_ptr_array_new_with_free_func ((GDestroyNotify)item_free);
  a->depth = g_hash_table_new (g_direct_hash, g_direct_equal);
  for (guint i = 0; i < b->certs->len; i++)
    g_ptr_array_add (a->items, judge (trust, g_ptr_array_index (b->certs, i), root, at, a->depth));
  cm_cert_ref (root);
  return a;
}

CmCert *
cm_bundle_analysis_get_root (CmBundleAnalysis *a)
{
  return a->root;
}

GPtrArray *
cm_bundle_analysis_get_items (CmBundleAnalysis *a)
{
  return a->items;
}

guint
cm_bundle_analysis_count (CmBundleAnalysis *a, CmBundleRole role)
{
  guint n = 0;

  for (guint i = 0; i < a->items->len; i++)
    n += ((CmBundleItem *)g_ptr_array_index (a->items, i))->role == role;
  return n;
}

GPtrArray *
cm_bundle_analysis_get_ders (CmBundleAnalysis *a)
{
  GPtrArray *out = g_ptr_array_new_with_free_func ((GDestroyNotify)g_bytes_unref);
  guint max = 0;

  for (guint i = 0; i < a->items->len; i++)
    {
      CmBundleItem *it = g_ptr_array_index (a->items, i);
      if (it->role != CM_BUNDLE_SKIPPED)
        max = MAX (max, GPOINTER_TO_UINT (g_hash_table_lookup (a->depth, it->cert)));
    }
  /* by path length: the root, then its children, then theirs */
  for (guint d = 0; d <= max; d++)
    for (guint i = 0; i < a->items->len; i++)
      {
        CmBundleItem *it = g_ptr_array_index (a->items, i);
        if (it->role != CM_BUNDLE_SKIPPED
            && GPOINTER_TO_UINT (g_hash_table_lookup (a->depth, it->cert)) == d)
          g_ptr_array_add (out, g_bytes_ref (cm_cert_get_der (it->cert)));
      }
  return out;
}

static void
add_item_json (JsonBuilder *jb, CmBundleItem *it)
{
  json_builder_begin_object (jb);
  cm_json_add_string_or_null (jb, "subject", cm_cert_get_subject (it->cert));
  cm_json_add_string_or_null (jb, "issuer", cm_cert_get_issuer (it->cert));
  cm_json_add_string_or_null (jb, "sha256", cm_cert_get_sha256 (it->cert));
  cm_json_add_time (jb, "not_after", cm_cert_get_not_after (it->cert));
  cm_json_add_string_or_null (jb, "reason", it->reason);
  json_builder_end_object (jb);
}

JsonNode *
cm_bundle_analysis_to_json (CmBundleAnalysis *a)
{
  g_autoptr (JsonBuilder) jb = json_builder_new ();

  json_builder_begin_object (jb);
  for (CmBundleRole role = CM_BUNDLE_ROOT; role <= CM_BUNDLE_SKIPPED; role++)
    {
      json_builder_set_member_name (jb, role == CM_BUNDLE_ROOT           ? "root"
                                        : role == CM_BUNDLE_INTERMEDIATE ? "intermediates"
                                                                         : "skipped");
      if (role != CM_BUNDLE_ROOT)
        json_builder_begin_array (jb);
      for (guint i = 0; i < a->items->len; i++)
        {
          CmBundleItem *it = g_ptr_array_index (a->items, i);
          if (it->role == role)
            add_item_json (jb, it);
        }
      if (role != CM_BUNDLE_ROOT)
        json_builder_end_array (jb);
    }
  json_builder_end_object (jb);
  return json_builder_get_root (jb);
}

void
cm_bundle_analysis_free (CmBundleAnalysis *a)
{
  if (a == NULL)
    return;
  cm_cert_unref (a->root);
  g_ptr_array_unref (a->items);
  g_hash_table_unref (a->depth);
  g_free (a);
}
