/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cm-trust.c: build a path from a certificate to a trust anchor. Issuers are matched by name
 * and authority/subject key ID, then their signature is checked with NSS; several candidates
 * (cross-certificates, re-keyed CAs) are tried depth-first. */
#include "cm-private.h"
#include <cryptohi.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#define MAX_DEPTH 8

struct _CmTrust
{
  GPtrArray *anchors;       /* CmCert* (ref) */
  GPtrArray *intermediates; /* CmCert* (ref) */
  GHashTable *seen;         /* sha256 set */
  GHashTable *anchor_set;   /* sha256 set of the anchors */
  GHashTable *by_subject;   /* DER subject (GBytes) -> GPtrArray of CmCert*: issuer candidates */
  GHashTable *verified;     /* "issuer sha|child sha" -> GINT_TO_POINTER (1 ok, 2 bad) */
  GHashTable *keys;         /* issuer sha -> EVP_PKEY* (OpenSSL), or NULL when it has none */
};

static void
free_key (gpointer k)
{
  EVP_PKEY_free (k);
}

CmTrust *
cm_trust_new (void)
{
  CmTrust *t = g_new0 (CmTrust, 1);
  t->anchors = g_ptr_array_new_with_free_func ((GDestroyNotify)cm_cert_unref);
  t->intermediates = g_ptr_array_new_with_free_func ((GDestroyNotify)cm_cert_unref);
  t->seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  t->anchor_set = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  t->by_subject = g_hash_table_new_full (g_bytes_hash, g_bytes_equal, (GDestroyNotify)g_bytes_unref,
                                         (GDestroyNotify)g_ptr_array_unref);
  t->verified = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  t->keys = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, free_key);
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
  g_hash_table_unref (t->anchor_set);
  g_hash_table_unref (t->by_subject);
  g_hash_table_unref (t->verified);
  g_hash_table_unref (t->keys);
  g_free (t);
}

static gboolean is_self_signed (CmTrust *t, CmCert *c);

static gboolean
first_time (CmTrust *t, CmCert *cert)
{
  CERTCertificate *c;
  g_autoptr (GBytes) subject = NULL;
  GPtrArray *same;

  if (g_hash_table_contains (t->seen, cm_cert_get_sha256 (cert)))
    return FALSE;
  g_hash_table_add (t->seen, g_strdup (cm_cert_get_sha256 (cert)));
  /* index by subject: a child's issuer name finds its candidates at once */
  c = cm_cert_get_nss (cert);
  subject = g_bytes_new (c->derSubject.data, c->derSubject.len);
  if ((same = g_hash_table_lookup (t->by_subject, subject)) == NULL)
    g_hash_table_insert (t->by_subject, g_bytes_ref (subject), same = g_ptr_array_new ());
  g_ptr_array_add (same, cert);
  return TRUE;
}

void
cm_trust_add_anchor (CmTrust *t, CmCert *cert)
{
  if (first_time (t, cert))
    {
      g_ptr_array_add (t->anchors, cm_cert_ref (cert));
      g_hash_table_add (t->anchor_set, g_strdup (cm_cert_get_sha256 (cert)));
    }
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
      if (is_self_signed (t, c))
        cm_trust_add_anchor (t, c);
      else
        cm_trust_add_intermediate (t, c);
    }
  return TRUE;
}

static gboolean signature_ok (CmTrust *t, CmCert *issuer, CmCert *child);

/* A root: same name AND its own key signed it. Self-issued certs signed by another key are
 * key-rollover cross-certificates (GSA's "xcert" Signing CAs): intermediates, not anchors. */
static gboolean
is_self_signed (CmTrust *t, CmCert *c)
{
  return cm_cert_is_self_issued (c) && signature_ok (t, c, c);
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

/* @issuer's public key for OpenSSL, decoded once per CmTrust (borrowed), or NULL. */
static EVP_PKEY *
issuer_key (CmTrust *t, CmCert *issuer)
{
  GBytes *der = cm_cert_get_der (issuer);
  const unsigned char *p = g_bytes_get_data (der, NULL);
  EVP_PKEY *key = NULL;
  X509 *x;

  if (g_hash_table_lookup_extended (t->keys, cm_cert_get_sha256 (issuer), NULL, (gpointer *)&key))
    return key;
  if ((x = d2i_X509 (NULL, &p, (long)g_bytes_get_size (der))) != NULL)
    {
      key = X509_get_pubkey (x);
      X509_free (x);
    }
  g_hash_table_insert (t->keys, g_strdup (cm_cert_get_sha256 (issuer)), key);
  return key;
}

/* The digest of a PKCS#1 v1.5 RSA or ECDSA signature algorithm, or NULL for the others. */
static const EVP_MD *
digest_of (SECOidTag alg)
{
  switch (alg)
    {
    case SEC_OID_PKCS1_SHA256_WITH_RSA_ENCRYPTION:
    case SEC_OID_ANSIX962_ECDSA_SHA256_SIGNATURE: return EVP_sha256 ();
    case SEC_OID_PKCS1_SHA384_WITH_RSA_ENCRYPTION:
    case SEC_OID_ANSIX962_ECDSA_SHA384_SIGNATURE: return EVP_sha384 ();
    case SEC_OID_PKCS1_SHA512_WITH_RSA_ENCRYPTION:
    case SEC_OID_ANSIX962_ECDSA_SHA512_SIGNATURE: return EVP_sha512 ();
    case SEC_OID_PKCS1_SHA1_WITH_RSA_ENCRYPTION:
    case SEC_OID_ANSIX962_ECDSA_SHA1_SIGNATURE: return EVP_sha1 ();
    default: return NULL;
    }
}

/* @child's signature (its TBS part as NSS decoded it) by @key with OpenSSL: NSS 3.87's ECDSA is
 * tens of times slower. 1 good, 0 bad, -1 when OpenSSL cannot judge it (RSA-PSS, a key type
 * that does not fit): NSS decides then. */
static int
openssl_verify (EVP_PKEY *key, CmCert *child)
{
  const CERTSignedData *sd = &cm_cert_get_nss (child)->signatureWrap;
  const EVP_MD *md = digest_of (SECOID_GetAlgorithmTag (&sd->signatureAlgorithm));
  EVP_MD_CTX *ctx;
  int r = -1;

  if (key == NULL || md == NULL || sd->signature.len % 8 != 0 || (ctx = EVP_MD_CTX_new ()) == NULL)
    return -1;
  if (EVP_DigestVerifyInit (ctx, NULL, md, NULL, key) == 1)
    r = EVP_DigestVerify (ctx, sd->signature.data, sd->signature.len / 8, sd->data.data,
                          sd->data.len)
            == 1
          ? 1
          : 0;
  EVP_MD_CTX_free (ctx);
  return r;
}

/* Each issuer signature is verified once per CmTrust: chains of one issuer share it. */
static gboolean
signature_ok (CmTrust *t, CmCert *issuer, CmCert *child)
{
  CERTCertificate *i = cm_cert_get_nss (issuer), *c = cm_cert_get_nss (child);
  char *key = g_strconcat (cm_cert_get_sha256 (issuer), "|", cm_cert_get_sha256 (child), NULL);
  gpointer known = g_hash_table_lookup (t->verified, key);
  int r;

  if (known)
    {
      g_free (key);
      return GPOINTER_TO_INT (known) == 1;
    }
  if ((r = openssl_verify (issuer_key (t, issuer), child)) < 0)
    r = CERT_VerifySignedDataWithPublicKeyInfo (&c->signatureWrap, &i->subjectPublicKeyInfo, NULL)
        == SECSuccess;
  g_hash_table_insert (t->verified, key, GINT_TO_POINTER (r == 1 ? 1 : 2));
  return r == 1;
}

static gboolean
is_anchor (CmTrust *t, CmCert *c)
{
  return g_hash_table_contains (t->anchor_set, cm_cert_get_sha256 (c));
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

/* The certs whose subject is @c's issuer, anchors first (borrowed; caller unrefs). */
static GPtrArray *
candidates (CmTrust *t, CmCert *c)
{
  CERTCertificate *n = cm_cert_get_nss (c);
  g_autoptr (GBytes) issuer = g_bytes_new_static (n->derIssuer.data, n->derIssuer.len);
  GPtrArray *same = g_hash_table_lookup (t->by_subject, issuer);
  GPtrArray *out = g_ptr_array_new ();

  for (int anchors = 1; same && anchors >= 0; anchors--)
    for (guint i = 0; i < same->len; i++)
      if (is_anchor (t, g_ptr_array_index (same, i)) == anchors)
        g_ptr_array_add (out, g_ptr_array_index (same, i));
  return out;
}

static gboolean
search (CmTrust *t, CmCert *cur, gint64 at, GPtrArray *path, CmChainStatus *worst)
{
  g_autoptr (GPtrArray) cands = NULL;
  gboolean found_issuer = FALSE;

  if (is_anchor (t, cur))
    return TRUE;
  if (path->len >= MAX_DEPTH)
    return FALSE;
  if (is_self_signed (t, cur))
    {
      note (worst, CM_CHAIN_UNTRUSTED_ROOT);
      return FALSE;
    }
  cands = candidates (t, cur);
  for (guint i = 0; i < cands->len; i++)
    {
      CmCert *cand = g_ptr_array_index (cands, i);
      if (g_ptr_array_find (path, cand, NULL) || !may_have_issued (cand, cur))
        continue;
      found_issuer = TRUE;
      if (!signature_ok (t, cand, cur))
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
