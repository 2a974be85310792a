/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* vcard-crypto.c: private-key operations of the virtual card (OpenSSL 3) and gzip (zlib). */
#include "vcard.h"

#include <string.h>
#include <zlib.h>

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pkcs12.h>
#include <openssl/provider.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

static OSSL_PROVIDER *prov_legacy, *prov_default;

void
vc_crypto_init (void)
{
  /* The GSA .p12 files use 3DES and RC2-40: RC2 lives in OpenSSL 3's legacy provider.
   * Loading a provider explicitly disables the implicit default one, so load both. */
  if (prov_default)
    return;
  prov_legacy = OSSL_PROVIDER_load (NULL, "legacy");
  prov_default = OSSL_PROVIDER_load (NULL, "default");
}

void
vc_crypto_shutdown (void)
{
  if (prov_legacy)
    OSSL_PROVIDER_unload (prov_legacy);
  if (prov_default)
    OSSL_PROVIDER_unload (prov_default);
  prov_legacy = prov_default = NULL;
}

static char *
ossl_error (void)
{
  unsigned long e = ERR_get_error ();
  char buf[256];
  ERR_error_string_n (e, buf, sizeof buf);
  ERR_clear_error ();
  return g_strdup (buf);
}

VcKey *
vc_crypto_load_p12 (const char *path, GError **error)
{
  vc_crypto_init ();
  BIO *bio = BIO_new_file (path, "rb");
  if (!bio)
    {
      g_autofree char *e = ossl_error ();
      g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_NOENT, "%s: %s", path, e);
      return NULL;
    }
  PKCS12 *p12 = d2i_PKCS12_bio (bio, NULL);
  BIO_free (bio);
  if (!p12)
    {
      g_autofree char *e = ossl_error ();
      g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_INVAL, "%s: not PKCS#12: %s", path, e);
      return NULL;
    }
  EVP_PKEY *key = NULL;
  X509 *cert = NULL;
  STACK_OF (X509) *ca = NULL;
  /* an empty password may be encoded either as "" or as no password at all */
  int ok = PKCS12_parse (p12, "", &key, &cert, &ca);
  if (!ok)
    {
      ERR_clear_error ();
      ok = PKCS12_parse (p12, NULL, &key, &cert, &ca);
    }
  PKCS12_free (p12);
  X509_free (cert);
  sk_X509_pop_free (ca, X509_free);
  if (!ok || !key)
    {
      g_autofree char *e = ossl_error ();
      g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                   "%s: cannot read the private key with an empty password: %s", path, e);
      EVP_PKEY_free (key);
      return NULL;
    }
  return key;
}

void
vc_crypto_free_key (VcKey *key)
{
  EVP_PKEY_free (key);
}

int
vc_crypto_key_alg (VcKey *key)
{
  if (EVP_PKEY_is_a (key, "RSA"))
    {
      switch (EVP_PKEY_get_bits (key))
        {
        case 1024: return VC_ALG_RSA_1024;
        case 2048: return VC_ALG_RSA_2048;
        case 3072: return VC_ALG_RSA_3072;
        default: return 0;
        }
    }
  if (EVP_PKEY_is_a (key, "EC"))
    {
      char group[64] = "";
      if (!EVP_PKEY_get_utf8_string_param (key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group,
                                           NULL))
        return 0;
      if (strcmp (group, "prime256v1") == 0 || strcmp (group, "P-256") == 0)
        return VC_ALG_EC_P256;
      if (strcmp (group, "secp384r1") == 0 || strcmp (group, "P-384") == 0)
        return VC_ALG_EC_P384;
    }
  return 0;
}

gboolean
vc_crypto_key_matches (VcKey *key, GBytes *cert)
{
  gsize len = 0;
  const unsigned char *p = g_bytes_get_data (cert, &len);
  X509 *x = d2i_X509 (NULL, &p, (long)len);
  if (!x)
    {
      ERR_clear_error ();
      return FALSE;
    }
  gboolean ok = X509_check_private_key (x, key) == 1;
  ERR_clear_error ();
  X509_free (x);
  return ok;
}

gboolean
vc_crypto_rsa_raw (VcKey *key, const uint8_t *in, size_t in_len, VcBuf *out)
{
  if (!EVP_PKEY_is_a (key, "RSA") || in_len != (size_t)EVP_PKEY_get_size (key))
    return FALSE;
  gboolean ok = FALSE;
  EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new (key, NULL);
  size_t olen = in_len;
  uint8_t *buf = g_malloc (olen);
  /* decryption without padding is the raw private-key operation m^d mod n */
  if (ctx && EVP_PKEY_decrypt_init (ctx) > 0
      && EVP_PKEY_CTX_set_rsa_padding (ctx, RSA_NO_PADDING) > 0
      && EVP_PKEY_decrypt (ctx, buf, &olen, in, in_len) > 0)
    {
      /* keep the full modulus length (leading zero bytes included) */
      for (size_t i = olen; i < in_len; i++)
        vc_buf_byte (out, 0);
      vc_buf_add (out, buf, olen);
      ok = TRUE;
    }
  ERR_clear_error ();
  EVP_PKEY_CTX_free (ctx);
  g_free (buf);
  return ok;
}

gboolean
vc_crypto_ecdsa (VcKey *key, const uint8_t *hash, size_t hash_len, VcBuf *out)
{
  if (!EVP_PKEY_is_a (key, "EC"))
    return FALSE;
  gboolean ok = FALSE;
  EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new (key, NULL);
  size_t slen = (size_t)EVP_PKEY_get_size (key);
  uint8_t *sig = g_malloc (slen);
  if (ctx && EVP_PKEY_sign_init (ctx) > 0 && EVP_PKEY_sign (ctx, sig, &slen, hash, hash_len) > 0)
    {
      vc_buf_add (out, sig, slen);
      ok = TRUE;
    }
  ERR_clear_error ();
  EVP_PKEY_CTX_free (ctx);
  g_free (sig);
  return ok;
}

gboolean
vc_crypto_ecdh (VcKey *key, const uint8_t *point, size_t point_len, VcBuf *out)
{
  if (!EVP_PKEY_is_a (key, "EC"))
    return FALSE;
  char group[64] = "";
  if (!EVP_PKEY_get_utf8_string_param (key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group, NULL))
    return FALSE;
  gboolean ok = FALSE;
  EVP_PKEY *peer = NULL;
  EVP_PKEY_CTX *pctx = EVP_PKEY_CTX_new_from_name (NULL, "EC", NULL);
  OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new ();
  OSSL_PARAM *params = NULL;
  EVP_PKEY_CTX *dctx = NULL;
  if (!pctx || !bld || !OSSL_PARAM_BLD_push_utf8_string (bld, OSSL_PKEY_PARAM_GROUP_NAME, group, 0)
      || !OSSL_PARAM_BLD_push_octet_string (bld, OSSL_PKEY_PARAM_PUB_KEY, point, point_len)
      || !(params = OSSL_PARAM_BLD_to_param (bld)) || EVP_PKEY_fromdata_init (pctx) <= 0
      || EVP_PKEY_fromdata (pctx, &peer, EVP_PKEY_PUBLIC_KEY, params) <= 0)
    goto out;
  dctx = EVP_PKEY_CTX_new (key, NULL);
  size_t slen = 0;
  if (!dctx || EVP_PKEY_derive_init (dctx) <= 0 || EVP_PKEY_derive_set_peer (dctx, peer) <= 0
      || EVP_PKEY_derive (dctx, NULL, &slen) <= 0)
    goto out;
  uint8_t *secret = g_malloc (slen);
  if (EVP_PKEY_derive (dctx, secret, &slen) > 0)
    {
      vc_buf_add (out, secret, slen);
      ok = TRUE;
    }
  g_free (secret);
out:
  ERR_clear_error ();
  EVP_PKEY_CTX_free (dctx);
  EVP_PKEY_free (peer);
  OSSL_PARAM_free (params);
  OSSL_PARAM_BLD_free (bld);
  EVP_PKEY_CTX_free (pctx);
  return ok;
}

GBytes *
vc_crypto_gzip (GBytes *in)
{
  gsize len = 0;
  const uint8_t *data = g_bytes_get_data (in, &len);
  z_stream zs;
  memset (&zs, 0, sizeof zs);
  /* windowBits 15 + 16: a gzip header, as PIV cards that compress certificates use */
  if (deflateInit2 (&zs, Z_BEST_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    return NULL;
  uLong cap = deflateBound (&zs, (uLong)len) + 32;
  uint8_t *buf = g_malloc (cap);
  zs.next_in = (Bytef *)data;
  zs.avail_in = (uInt)len;
  zs.next_out = buf;
  zs.avail_out = (uInt)cap;
  int r = deflate (&zs, Z_FINISH);
  size_t out_len = zs.total_out;
  deflateEnd (&zs);
  if (r != Z_STREAM_END)
    {
      g_free (buf);
      return NULL;
    }
  return g_bytes_new_take (buf, out_len);
}

void
vc_crypto_random (uint8_t *buf, size_t len)
{
  if (RAND_bytes (buf, (int)len) != 1)
    for (size_t i = 0; i < len; i++)
      buf[i] = (uint8_t)g_random_int ();
}
