/* cm-trust.c: build a path from a certificate to a trust anchor. Issuers are matched by name
 * and authority/subject key ID, then their signature is checked with NSS; several candidates
 * (cross-certificates, re-keyed CAs) are tried depth-first. */
#include "cm-private.h"
#include <cryptohi.h>

#define MAX_DEPTH 8

struct _CmTrust
{
  GPtrArray *anchors;       /* CmCert* (ref) */
  GPtrArray *intermediates; /* CmCert* (ref) */
  GHashTable *seen;         /* sha256 set */
};

CmTrust *
cm_trust_new (void)
{
  CmTrust *t = g_new0 (CmTrust, 1);
  t->anchors = g_ptr_array_new_with_free_func ((GDestroyNotify)cm_cert_unref);
  t->intermediates = g_ptr_array_new_with_free_func ((GDestroyNotify)cm_cert_unref);
  t->seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  return t;
}

void
cm_trust_free (CmTrust *t)
{
  if (t == NULL)
    return;
  g_ptr_array_unref (t->anchors);
  g_ptr_array_unref (t->intermediates);
  g_hash_table_unref (t->seen);
  g_free (t);
}

static gboolean is_self_signed (CmCert *c);

static gboolean
first_time (CmTrust *t, CmCert *cert)
{
  if (g_hash_table_contains (t->seen, cm_cert_get_sha256 (cert)))
    return FALSE;
  g_hash_table_add (t->seen, g_strdup (cm_cert_get_sha256 (cert)));
  return TRUE;
}

void
cm_trust_add_anchor (CmTrust *t, CmCert *cert)
{
  if (first_time (t, cert))
    g_ptr_array_add (t->anchors, cm_cert_ref (cert));
}

void
cm_trust_add_intermediate (CmTrust *t, CmCert *cert)
{
  if (first_time (t, cert))
    g_ptr_array_add (t->intermediates, cm_cert_ref (cert));
}

guint
cm_trust_count_anchors (CmTrust *t)
{
  return t->anchors->len;
}

gboolean
cm_trust_add_file (CmTrust *t, const char *path, GError **error)
{
  g_autoptr (GBytes) bytes = cm_read_file (path, error);
  g_autoptr (GPtrArray) blobs = NULL;
  g_autoptr (GPtrArray) certs = g_ptr_array_new_with_free_func ((GDestroyNotify)cm_cert_unref);

  if (bytes == NULL || (blobs = cm_load_cert_blobs (bytes, path, error)) == NULL)
    return FALSE;
  for (guint i = 0; i < blobs->len; i++)
    {
      g_autoptr (GError) local = NULL;
      CmCert *c = cm_cert_new_from_der (g_ptr_array_index (blobs, i), NULL, &local);
      if (c == NULL)
        {
          g_set_error (error, CM_ERROR, CM_ERROR_BAD_INPUT, "%s: %s (truncated or corrupt)", path,
                       local->message);
          return FALSE;
        }
      g_ptr_array_add (certs, c);
    }
  for (guint i = 0; i < certs->len; i++)
    {
      CmCert *c = g_ptr_array_index (certs, i);
      if (is_self_signed (c))
        cm_trust_add_anchor (t, c);
      else
        cm_trust_add_intermediate (t, c);
    }
  return TRUE;
}

static gboolean signature_ok (CmCert *issuer, CmCert *child);

/* A root: same name AND its own key signed it. Self-issued certs signed by another key are
 * key-rollover cross-certificates (GSA's "xcert" Signing CAs): intermediates, not anchors. */
static gboolean
is_self_signed (CmCert *c)
{
  return cm_cert_is_self_issued (c) && signature_ok (c, c);
}

static gboolean
may_have_issued (CmCert *issuer, CmCert *child)
{
  CERTCertificate *i = cm_cert_get_nss (issuer), *c = cm_cert_get_nss (child);
  const SECItem *aki = cm_cert_get_aki (child), *ski = cm_cert_get_ski (issuer);

  if (!SECITEM_ItemsAreEqual (&i->derSubject, &c->derIssuer))
    return FALSE;
  return aki == NULL || ski == NULL || SECITEM_ItemsAreEqual (aki, ski);
}

static gboolean
signature_ok (CmCert *issuer, CmCert *child)
{
  CERTCertificate *i = cm_cert_get_nss (issuer), *c = cm_cert_get_nss (child);
  return CERT_VerifySignedDataWithPublicKeyInfo (&c->signatureWrap, &i->subjectPublicKeyInfo, NULL)
         == SECSuccess;
}

static gboolean
is_anchor (CmTrust *t, CmCert *c)
{
  for (guint i = 0; i < t->anchors->len; i++)
    if (g_ptr_array_index (t->anchors, i) == c
        || strcmp (cm_cert_get_sha256 (g_ptr_array_index (t->anchors, i)), cm_cert_get_sha256 (c))
             == 0)
      return TRUE;
  return FALSE;
}

/* Worse failures win when no path is found, so the user hears the most useful reason. */
static void
note (CmChainStatus *worst, CmChainStatus s)
{
  static const int rank[] = { [CM_CHAIN_OK] = 0,
                              [CM_CHAIN_NO_ISSUER] = 1,
                              [CM_CHAIN_UNTRUSTED_ROOT] = 2,
                              [CM_CHAIN_BAD_SIGNATURE] = 3,
                              [CM_CHAIN_CA_NOT_VALID] = 4 };
  if (rank[s] > rank[*worst])
    *worst = s;
}

static gboolean
search (CmTrust *t, CmCert *cur, gint64 at, GPtrArray *path, CmChainStatus *worst)
{
  GPtrArray *pools[] = { t->anchors, t->intermediates };
  gboolean found_issuer = FALSE;

  if (is_anchor (t, cur))
    return TRUE;
  if (path->len >= MAX_DEPTH)
    return FALSE;
  if (is_self_signed (cur))
    {
      note (worst, CM_CHAIN_UNTRUSTED_ROOT);
      return FALSE;
    }
  for (gsize p = 0; p < G_N_ELEMENTS (pools); p++)
    for (guint i = 0; i < pools[p]->len; i++)
      {
        CmCert *cand = g_ptr_array_index (pools[p], i);
        if (g_ptr_array_find (path, cand, NULL) || !may_have_issued (cand, cur))
          continue;
        found_issuer = TRUE;
        if (!signature_ok (cand, cur))
          {
            note (worst, CM_CHAIN_BAD_SIGNATURE);
            continue;
          }
        if (!cm_cert_is_valid_at (cand, at))
          {
            note (worst, CM_CHAIN_CA_NOT_VALID);
            continue;
          }
        g_ptr_array_add (path, cand);
        if (search (t, cand, at, path, worst))
          return TRUE;
        g_ptr_array_remove_index (path, path->len - 1);
      }
  if (!found_issuer)
    note (worst, CM_CHAIN_NO_ISSUER);
  return FALSE;
}

CmChainStatus
cm_trust_build_chain (CmTrust *t, CmCert *leaf, gint64 at, GPtrArray **chain)
{
  g_autoptr (GPtrArray) path = g_ptr_array_new ();
  CmChainStatus worst = CM_CHAIN_OK;

  if (chain)
    *chain = NULL;
  if (!cm_nss_ready (NULL))
    return CM_CHAIN_NO_ISSUER;
  g_ptr_array_add (path, leaf);
  if (!search (t, leaf, at, path, &worst))
    return worst == CM_CHAIN_OK ? CM_CHAIN_NO_ISSUER : worst;
  if (chain)
    {
      *chain = g_ptr_array_new_with_free_func ((GDestroyNotify)cm_cert_unref);
      for (guint i = 0; i < path->len; i++)
        g_ptr_array_add (*chain, cm_cert_ref (g_ptr_array_index (path, i)));
    }
  return CM_CHAIN_OK;
}

const char *
cm_chain_status_to_string (CmChainStatus s)
{
  switch (s)
    {
    case CM_CHAIN_OK: return "ok";
    case CM_CHAIN_NO_ISSUER: return "no-issuer";
    case CM_CHAIN_UNTRUSTED_ROOT: return "untrusted-root";
    case CM_CHAIN_CA_NOT_VALID: return "ca-not-valid";
    case CM_CHAIN_BAD_SIGNATURE: return "bad-signature";
    default: return "unknown";
    }
}
