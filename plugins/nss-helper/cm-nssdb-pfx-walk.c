/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cm-nssdb-pfx-walk.c: a PKCS#12 file (RFC 7292) read with bounds and walked to its bags, for
 * cm-nssdb-p12.c. PFX ::= SEQUENCE { version, authSafe ContentInfo (data), macData }; the data
 * is an AuthenticatedSafe, a SEQUENCE OF ContentInfo; one of type data holds SafeContents, a
 * SEQUENCE OF SafeBag { bagId, [0] bagValue, attributes }; one of type encryptedData holds the
 * same encrypted with a password-based cipher, opened here in memory (NSS's PKCS#7 decoder,
 * the PBE key a session key) once NSS's PKCS#12 decoder has accepted the password. Every
 * iteration count the file asks for is checked before NSS derives a key with it: a hostile
 * count (2^31-1) would otherwise hold the process for hours. BER is accepted (indefinite
 * lengths, constructed OCTET STRINGs), as some exporters write it. */
#include "cm-nssdb-pfx.h"
#include "cm-der.h"
#include <errno.h>
#include <fcntl.h>
#include <nss.h>
#include <p12plcy.h>
#include <pk11pub.h>
#include <secoid.h>
#include <secpkcs5.h>
#include <secpkcs7.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_DEPTH 24

typedef CmDer Span;

GBytes *
cm_nssdb_pfx_read (const char *path, GError **error)
{
  int fd = open (path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  struct stat st;
  guint8 *buf = NULL;
  gsize len = 0;
  ssize_t n = 0;

  if (fd < 0)
    {
      g_set_error (error, CM_ERROR, errno == ENOENT ? CM_ERROR_NOT_FOUND : CM_ERROR_BAD_INPUT,
                   "cannot read %s (%s): check the file name", path, g_strerror (errno));
      return NULL;
    }
  if (fstat (fd, &st) != 0 || !S_ISREG (st.st_mode))
    {
      close (fd);
      g_set_error (error, CM_ERROR, CM_ERROR_BAD_INPUT,
                   "%s is not a regular file (a device, pipe or folder): give the .p12/.pfx "
                   "file the key recovery service sent",
                   path);
      return NULL;
    }
  /* bounded whatever fstat said: the file may grow while it is read */
  buf = g_malloc (CM_PFX_MAX_BYTES + 1);
  while (
    len <= CM_PFX_MAX_BYTES
    && ((n = read (fd, buf + len, CM_PFX_MAX_BYTES + 1 - len)) > 0 || (n < 0 && errno == EINTR)))
    len += n > 0 ? n : 0;
  close (fd);
  if (n < 0 || len > CM_PFX_MAX_BYTES)
    {
      g_free (buf);
      if (n < 0)
        g_set_error (error, CM_ERROR, CM_ERROR_BAD_INPUT, "cannot read %s (%s): check the file",
                     path, g_strerror (errno));
      else
        g_set_error (error, CM_ERROR, CM_ERROR_BAD_INPUT,
                     "%s is larger than %u KiB, which no recovered-key file is: give the "
                     ".p12/.pfx file the key recovery service sent",
                     path, CM_PFX_MAX_BYTES / 1024);
      return NULL;
    }
  return g_bytes_new_take (g_realloc (buf, MAX (len, 1)), len);
}

gboolean
cm_nssdb_pfx_check_shape (const guint8 *p, gsize len, const char *path, GError **error)
{
  CmBerHeader h;
  gsize body;

  if (len == 0)
    return g_set_error (error, CM_ERROR, CM_ERROR_BAD_INPUT,
                        "%s is empty: give the PKCS#12 (.p12/.pfx) file the key recovery "
                        "service sent",
                        path),
           FALSE;
  if (len >= 10 && memcmp (p, "-----BEGIN", 10) == 0)
    return g_set_error (error, CM_ERROR, CM_ERROR_BAD_INPUT,
                        "%s is PEM text, not a PKCS#12 file: give the .p12/.pfx file (or convert "
                        "with openssl pkcs12 -export)",
                        path),
           FALSE;
  if (len < 5 || p[0] != 0x30 || !cm_ber_header (p, len, CM_BER_INDEFINITE, &h))
    goto not_p12;
  body = h.indefinite ? len - h.hdr_len : h.len; /* an indefinite length ends where the file does */
  if (len < h.hdr_len + 3 || p[h.hdr_len] != 0x02 || p[h.hdr_len + 1] != 0x01
      || p[h.hdr_len + 2] != 0x03)
    goto not_p12;
  if (body > len - h.hdr_len)
    return g_set_error (error, CM_ERROR, CM_ERROR_BAD_INPUT,
                        "%s is truncated (%" G_GSIZE_FORMAT " of %" G_GSIZE_FORMAT " bytes): "
                        "copy the file again from the key recovery message",
                        path, len, body > G_MAXSIZE - h.hdr_len ? G_MAXSIZE : h.hdr_len + body),
           FALSE;
  return TRUE;
not_p12:
  g_set_error (error, CM_ERROR, CM_ERROR_BAD_INPUT,
               "%s is not a PKCS#12 file: give the .p12/.pfx file the key recovery service sent",
               path);
  return FALSE;
}

SECItem *
cm_nssdb_pfx_password (const char *utf8)
{
  glong n = 0;
  gunichar2 *u = g_utf8_to_utf16 (utf8, -1, NULL, &n, NULL);
  SECItem *it;

  if (u == NULL)
    return NULL;
  it = SECITEM_AllocItem (NULL, NULL, 2 * n + 2);
  for (glong i = 0; it && i <= n; i++)
    {
      it->data[2 * i] = u[i] >> 8;
      it->data[2 * i + 1] = u[i] & 0xff;
    }
  explicit_bzero (u, n * sizeof *u);
  g_free (u);
  return it;
}

void
cm_nssdb_pfx_password_free (SECItem *pw)
{
  if (pw == NULL)
    return;
  explicit_bzero (pw->data, pw->len);
  SECITEM_FreeItem (pw, PR_TRUE);
}

/* PKCS#12's own PBEs, and the PKCS#5 v1.5 ones NSS treats the same way (UCS-2 passwords). */
static gboolean
is_pkcs12_pbe (SECOidTag alg)
{
  switch (alg)
    {
    case SEC_OID_PKCS12_V2_PBE_WITH_SHA1_AND_3KEY_TRIPLE_DES_CBC:
    case SEC_OID_PKCS12_V2_PBE_WITH_SHA1_AND_2KEY_TRIPLE_DES_CBC:
    case SEC_OID_PKCS12_PBE_WITH_SHA1_AND_TRIPLE_DES_CBC:
    case SEC_OID_PKCS12_PBE_WITH_SHA1_AND_40_BIT_RC2_CBC:
    case SEC_OID_PKCS12_PBE_WITH_SHA1_AND_128_BIT_RC2_CBC:
    case SEC_OID_PKCS12_V2_PBE_WITH_SHA1_AND_128_BIT_RC2_CBC:
    case SEC_OID_PKCS12_V2_PBE_WITH_SHA1_AND_40_BIT_RC2_CBC:
    case SEC_OID_PKCS12_PBE_WITH_SHA1_AND_40_BIT_RC4:
    case SEC_OID_PKCS12_PBE_WITH_SHA1_AND_128_BIT_RC4:
    case SEC_OID_PKCS12_V2_PBE_WITH_SHA1_AND_128_BIT_RC4:
    case SEC_OID_PKCS12_V2_PBE_WITH_SHA1_AND_40_BIT_RC4:
    case SEC_OID_PKCS5_PBE_WITH_MD2_AND_DES_CBC:
    case SEC_OID_PKCS5_PBE_WITH_SHA1_AND_DES_CBC:
    case SEC_OID_PKCS5_PBE_WITH_MD5_AND_DES_CBC: return TRUE;
    default: return FALSE;
    }
}

gboolean
cm_nssdb_pfx_pbe_password (SECOidTag alg, const SECItem *ucs2, const char *utf8, SECItem *out)
{
  PRInt32 force_ucs2 = 0;

  *out = (SECItem){ siBuffer, NULL, 0 };
  NSS_OptionGet (__NSS_PKCS12_DECODE_FORCE_UNICODE, &force_ucs2);
  if (is_pkcs12_pbe (alg) || force_ucs2)
    return SECITEM_CopyItem (NULL, out, ucs2) == SECSuccess;
  if (*utf8 && SECITEM_AllocItem (NULL, out, strlen (utf8)) == NULL)
    return FALSE;
  if (*utf8)
    memcpy (out->data, utf8, out->len);
  return TRUE;
}

/* ---- the walk ---- */

/* The element at the start of @in (core's reader: BER indefinite lengths, one-octet tags, as
 * PKCS#12 uses): its @tag, its contents @body (for an indefinite length, up to its
 * end-of-contents octets) and its whole encoding @all; @in moves past it. */
static gboolean
tlv (Span *in, guint8 *tag, Span *body, Span *all, int depth)
{
  CmBerTlv t;

  if (depth > MAX_DEPTH || !cm_ber_read (in, CM_BER_INDEFINITE, depth, &t))
    return FALSE;
  *tag = t.h.id;
  *body = t.body;
  *all = t.all;
  return TRUE;
}

static gboolean
expect (Span *in, guint8 tag, Span *body, int depth)
{
  Span all;
  guint8 t;

  return tlv (in, &t, body, &all, depth) && t == tag;
}

static void
wipe_free (gpointer data)
{
  GByteArray *a = data;

  if (a->len) /* an empty array may have no buffer at all */
    explicit_bzero (a->data, a->len);
  g_byte_array_unref (a);
}

/* A GBytes over a copy of @n bytes at @p that is wiped when freed. */
static GBytes *
wiped_bytes (const guint8 *p, gsize n)
{
  GByteArray *a = g_byte_array_sized_new (n);

  g_byte_array_append (a, p, n);
  return g_bytes_new_with_free_func (a->data, a->len, wipe_free, a);
}

/* The bytes of an OCTET STRING (a constructed one is joined into a buffer kept in @keep). */
static gboolean
octets (guint8 tag, Span body, Span *out, GPtrArray *keep, int depth)
{
  g_autoptr (GByteArray) joined = NULL;
  GBytes *b;

  if (tag == 0x04)
    return *out = body, TRUE;
  if (tag != 0x24)
    return FALSE;
  joined = g_byte_array_new ();
  while (body.len)
    {
      Span inner, all, part;
      guint8 t;
      if (!tlv (&body, &t, &inner, &all, depth + 1) || !octets (t, inner, &part, keep, depth + 1))
        return FALSE;
      g_byte_array_append (joined, part.p, part.len);
    }
  b = wiped_bytes (joined->data, joined->len);
  if (joined->len) /* a constructed OCTET STRING of empty parts has no buffer */
    explicit_bzero (joined->data, joined->len);
  g_ptr_array_add (keep, b);
  out->p = g_bytes_get_data (b, &out->len);
  return TRUE;
}

static SECOidTag
oid_tag (Span oid)
{
  SECItem it = { siBuffer, (unsigned char *)oid.p, oid.len };
  return SECOID_FindOIDTag (&it);
}

/* [0] EXPLICIT OCTET STRING: its bytes. */
static gboolean
explicit_octets (Span *in, Span *out, GPtrArray *keep, int depth)
{
  Span wrapped, body, all;
  guint8 t;

  return expect (in, 0xa0, &wrapped, depth) && tlv (&wrapped, &t, &body, &all, depth + 1)
         && octets (t, body, out, keep, depth + 1);
}

/* A non-negative INTEGER; one that does not fit 64 bits reads as G_MAXUINT64. */
static gboolean
count_at (Span *in, guint64 *out, int depth)
{
  Span body;

  if (!expect (in, 0x02, &body, depth) || body.len == 0 || (body.p[0] & 0x80))
    return FALSE;
  *out = 0;
  for (gsize i = 0; i < body.len; i++)
    {
      if (*out >> 56)
        return *out = G_MAXUINT64, TRUE;
      *out = (*out << 8) | body.p[i];
    }
  return TRUE;
}

/* PBKDF2-params ::= SEQUENCE { salt CHOICE { OCTET STRING, AlgorithmIdentifier },
 * iterationCount INTEGER, ... }: the count. */
static gboolean
pbkdf2_count (Span *in, guint64 *n, int depth)
{
  Span params, salt, all;
  guint8 t;

  return expect (in, 0x30, &params, depth) && tlv (&params, &t, &salt, &all, depth + 1)
         && count_at (&params, n, depth + 1);
}

/* The iteration count the AlgorithmIdentifier (its SEQUENCE's contents @alg) asks for: PBES2 and
 * PBMAC1 (a PBKDF2 inside), PBKDF2, the PKCS#12 and PKCS#5 v1.5 PBEs (PBEParameter { salt,
 * iterations }); 0 for any other algorithm (NSS derives no key for those). */
static gboolean
alg_count (Span alg, guint64 *n, int depth)
{
  Span oid, params, kdf, kdf_oid, salt, all;
  SECOidTag tag;
  guint8 t;

  *n = 0;
  if (!expect (&alg, 0x06, &oid, depth))
    return FALSE;
  tag = oid_tag (oid);
  if (tag == SEC_OID_PKCS5_PBES2 || tag == SEC_OID_PKCS5_PBMAC1)
    {
      if (!expect (&alg, 0x30, &params, depth) || !expect (&params, 0x30, &kdf, depth + 1)
          || !expect (&kdf, 0x06, &kdf_oid, depth + 2))
        return FALSE;
      return oid_tag (kdf_oid) != SEC_OID_PKCS5_PBKDF2 || pbkdf2_count (&kdf, n, depth + 2);
    }
  if (tag == SEC_OID_PKCS5_PBKDF2)
    return pbkdf2_count (&alg, n, depth);
  if (!SEC_PKCS5IsAlgorithmPBEAlgTag (tag))
    return TRUE;
  return expect (&alg, 0x30, &params, depth) && tlv (&params, &t, &salt, &all, depth + 1)
         && count_at (&params, n, depth + 1);
}

static gboolean
damaged (const char *path, const char *what, GError **error)
{
  g_set_error (error, CM_ERROR, CM_ERROR_BAD_INPUT,
               "%s is damaged (%s): copy the file again, or ask the key recovery agent for a new "
               "one",
               path, what);
  return FALSE;
}

/* Count @n iterations that @what asks for against the caps. */
static gboolean
charge (CmPfx *pfx, guint64 n, const char *what, const char *path, GError **error)
{
  if (n <= CM_PFX_MAX_ITERATIONS && (pfx->iterations += n) <= CM_PFX_MAX_TOTAL_ITERATIONS)
    return TRUE;
  if (n == G_MAXUINT64)
    g_set_error (error, CM_ERROR, CM_ERROR_BAD_INPUT,
                 "%s asks for more key-derivation iterations for %s than a 64-bit number holds "
                 "(cacmail allows %u; escrow files use a few thousand): ask the key recovery "
                 "agent for a new file",
                 path, what, CM_PFX_MAX_ITERATIONS);
  else if (n > CM_PFX_MAX_ITERATIONS)
    g_set_error (error, CM_ERROR, CM_ERROR_BAD_INPUT,
                 "%s asks for %" G_GUINT64_FORMAT " key-derivation iterations for %s, more "
                 "than the %u cacmail allows (escrow files use a few thousand): ask the key "
                 "recovery agent for a new file",
                 path, n, what, CM_PFX_MAX_ITERATIONS);
  else
    g_set_error (error, CM_ERROR, CM_ERROR_BAD_INPUT,
                 "%s asks for more than %u key-derivation iterations in all, more than any "
                 "escrow file needs: ask the key recovery agent for a new file",
                 path, CM_PFX_MAX_TOTAL_ITERATIONS);
  return FALSE;
}

/* The localKeyID among a bag's attributes, or NULL. */
static GBytes *
local_key_id (Span attrs, GPtrArray *keep, int depth)
{
  while (attrs.len)
    {
      Span attr, oid, values, body, all, id;
      guint8 t;

      if (!expect (&attrs, 0x30, &attr, depth) || !expect (&attr, 0x06, &oid, depth + 1))
        return NULL;
      if (oid_tag (oid) == SEC_OID_PKCS9_LOCAL_KEY_ID && expect (&attr, 0x31, &values, depth + 1)
          && tlv (&values, &t, &body, &all, depth + 2) && octets (t, body, &id, keep, depth + 2))
        return g_bytes_new (id.p, id.len);
    }
  return NULL;
}

typedef struct
{
  CmPfx *pfx;
  const char *path;
  GError **error;
} Walk;

static gboolean safe_contents (Walk *w, Span contents, int depth);

static gboolean
key_bag (Walk *w, Span value, Span attrs, gboolean plain, int depth)
{
  Span body, all, alg;
  guint64 n = 0;
  guint8 t;
  CmPfxKey *k;

  if (!tlv (&value, &t, &body, &all, depth) || t != 0x30)
    return damaged (w->path, "a key bag", w->error);
  /* EncryptedPrivateKeyInfo ::= SEQUENCE { encryptionAlgorithm, encryptedData } */
  if (!plain && (!expect (&body, 0x30, &alg, depth + 1) || !alg_count (alg, &n, depth + 2)))
    return damaged (w->path, "a key's cipher", w->error);
  if (!plain && !charge (w->pfx, n, "a private key", w->path, w->error))
    return FALSE;
  k = g_new0 (CmPfxKey, 1);
  k->epki = plain ? wiped_bytes (all.p, all.len) : g_bytes_new (all.p, all.len);
  k->local_key_id = local_key_id (attrs, w->pfx->keep, depth);
  k->plain = plain;
  g_ptr_array_add (w->pfx->keys, k);
  return TRUE;
}

static gboolean
cert_bag (Walk *w, Span value, Span attrs, int depth)
{
  Span cb, cert_oid, der;
  CmPfxCert *c;

  if (!expect (&value, 0x30, &cb, depth) || !expect (&cb, 0x06, &cert_oid, depth + 1))
    return damaged (w->path, "a certificate bag", w->error);
  if (oid_tag (cert_oid) != SEC_OID_PKCS9_X509_CERT)
    return TRUE; /* SDSI certificates: NSS ignores them too */
  if (!explicit_octets (&cb, &der, w->pfx->keep, depth + 1))
    return damaged (w->path, "a certificate bag", w->error);
  c = g_new0 (CmPfxCert, 1);
  c->der = g_bytes_new (der.p, der.len);
  c->local_key_id = local_key_id (attrs, w->pfx->keep, depth);
  g_ptr_array_add (w->pfx->certs, c);
  return TRUE;
}

static gboolean
safe_bag (Walk *w, Span bag, int depth)
{
  Span oid, value, attrs = { NULL, 0 };
  SECOidTag type;

  if (!expect (&bag, 0x06, &oid, depth) || !expect (&bag, 0xa0, &value, depth)
      || (bag.len && !expect (&bag, 0x31, &attrs, depth)))
    return damaged (w->path, "a safe bag", w->error);
  if (++w->pfx->bags > CM_PFX_MAX_BAGS)
    return g_set_error (w->error, CM_ERROR, CM_ERROR_BAD_INPUT,
                        "%s holds more than %u bags, more than any escrow file: ask the key "
                        "recovery agent for a new file",
                        w->path, CM_PFX_MAX_BAGS),
           FALSE;
  type = oid_tag (oid);
  if (type == SEC_OID_PKCS12_V1_PKCS8_SHROUDED_KEY_BAG_ID || type == SEC_OID_PKCS12_V1_KEY_BAG_ID)
    return key_bag (w, value, attrs, type == SEC_OID_PKCS12_V1_KEY_BAG_ID, depth + 1);
  if (type == SEC_OID_PKCS12_V1_CERT_BAG_ID)
    return cert_bag (w, value, attrs, depth + 1);
  if (type == SEC_OID_PKCS12_V1_SAFE_CONTENTS_BAG_ID)
    return safe_contents (w, value, depth + 1);
  return TRUE; /* CRL and secret bags hold no key */
}

/* SafeContents ::= SEQUENCE OF SafeBag, the SEQUENCE at the start of @contents. */
static gboolean
safe_contents (Walk *w, Span contents, int depth)
{
  Span bags, bag;

  if (!expect (&contents, 0x30, &bags, depth))
    return damaged (w->path, "its safe contents", w->error);
  while (bags.len)
    if (!expect (&bags, 0x30, &bag, depth + 1))
      return damaged (w->path, "a safe bag", w->error);
    else if (!safe_bag (w, bag, depth + 2))
      return FALSE;
  return TRUE;
}

/* ContentInfo { encryptedData, [0] EncryptedData { version, EncryptedContentInfo {
 * contentType, contentEncryptionAlgorithm, [0] encryptedContent } } }: its cipher's count. */
static gboolean
sealed (Walk *w, Span ci, Span all, int depth)
{
  Span wrapped, ed, version, eci, type, alg;
  guint64 n = 0;

  if (!expect (&ci, 0xa0, &wrapped, depth) || !expect (&wrapped, 0x30, &ed, depth + 1)
      || !expect (&ed, 0x02, &version, depth + 2) || !expect (&ed, 0x30, &eci, depth + 2)
      || !expect (&eci, 0x06, &type, depth + 3) || !expect (&eci, 0x30, &alg, depth + 3)
      || !alg_count (alg, &n, depth + 4))
    return damaged (w->path, "an encrypted part", w->error);
  if (!charge (w->pfx, n, "an encrypted part", w->path, w->error))
    return FALSE;
  g_ptr_array_add (w->pfx->sealed, g_bytes_new (all.p, all.len));
  return TRUE;
}

/* MacData ::= SEQUENCE { mac DigestInfo, macSalt OCTET STRING, iterations INTEGER DEFAULT 1 } */
static gboolean
mac_data (Walk *w, Span rest)
{
  Span mac, digest, salt;
  guint64 n = 1;

  if (rest.len == 0)
    return TRUE;
  if (!expect (&rest, 0x30, &mac, 1) || !expect (&mac, 0x30, &digest, 2)
      || !expect (&mac, 0x04, &salt, 2) || (mac.len && !count_at (&mac, &n, 2)))
    return damaged (w->path, "its MAC", w->error);
  return charge (w->pfx, n, "its MAC", w->path, w->error);
}

static void
key_free (CmPfxKey *k)
{
  g_bytes_unref (k->epki);
  g_clear_pointer (&k->local_key_id, g_bytes_unref);
  g_free (k);
}

static void
cert_free (CmPfxCert *c)
{
  g_bytes_unref (c->der);
  g_clear_pointer (&c->local_key_id, g_bytes_unref);
  g_free (c);
}

static void
init (CmPfx *pfx)
{
  if (pfx->keys)
    return;
  pfx->keys = g_ptr_array_new_with_free_func ((GDestroyNotify)key_free);
  pfx->certs = g_ptr_array_new_with_free_func ((GDestroyNotify)cert_free);
  pfx->sealed = g_ptr_array_new_with_free_func ((GDestroyNotify)g_bytes_unref);
  pfx->keep = g_ptr_array_new_with_free_func ((GDestroyNotify)g_bytes_unref);
}

void
cm_nssdb_pfx_clear (CmPfx *pfx)
{
  g_clear_pointer (&pfx->keys, g_ptr_array_unref);
  g_clear_pointer (&pfx->certs, g_ptr_array_unref);
  g_clear_pointer (&pfx->sealed, g_ptr_array_unref);
  g_clear_pointer (&pfx->keep, g_ptr_array_unref);
  pfx->enveloped = pfx->bags = 0;
  pfx->iterations = 0;
}

gboolean
cm_nssdb_pfx_parse (const guint8 *p, gsize len, CmPfx *pfx, const char *path, GError **error)
{
  Span in = { p, len }, body, x, ci, oid, auth, seq;
  Walk w = { pfx, path, error };

  init (pfx);
  /* PFX { version, authSafe ContentInfo { data, [0] OCTET STRING }, macData } */
  if (!expect (&in, 0x30, &body, 0) || !expect (&body, 0x02, &x, 1) || !expect (&body, 0x30, &ci, 1)
      || !expect (&ci, 0x06, &oid, 2))
    return damaged (path, "its outer structure", error);
  if (oid_tag (oid) != SEC_OID_PKCS7_DATA)
    return g_set_error (error, CM_ERROR, CM_ERROR_BAD_INPUT,
                        "%s is protected with a public key, not a password: ask the key "
                        "recovery agent for a password-protected PKCS#12 file",
                        path),
           FALSE;
  if (!explicit_octets (&ci, &auth, pfx->keep, 2) || !expect (&auth, 0x30, &seq, 0))
    return damaged (path, "its outer structure", error);
  if (!mac_data (&w, body))
    return FALSE;
  while (seq.len)
    {
      Span all, safes;
      guint8 t;
      SECOidTag type;

      if (!tlv (&seq, &t, &ci, &all, 1) || t != 0x30 || !expect (&ci, 0x06, &oid, 2))
        return damaged (path, "a content info", error);
      type = oid_tag (oid);
      if (type == SEC_OID_PKCS7_ENCRYPTED_DATA && !sealed (&w, ci, all, 2))
        return FALSE;
      if (type == SEC_OID_PKCS7_ENVELOPED_DATA)
        pfx->enveloped++;
      if (type == SEC_OID_PKCS7_DATA && !explicit_octets (&ci, &safes, pfx->keep, 2))
        return damaged (path, "a content info", error);
      if (type == SEC_OID_PKCS7_DATA && !safe_contents (&w, safes, 0))
        return FALSE;
    }
  return TRUE;
}

/* ---- the encrypted parts ---- */

typedef struct
{
  PK11SlotInfo *slot;
  const SECItem *ucs2;
  const char *utf8;
  guint8 *plain; /* as large as the encrypted part: the plain text is no larger */
  gsize len, cap;
  gboolean overflow;
} Opener;

static void
take_plain (void *arg, const char *buf, unsigned long len)
{
  Opener *o = arg;

  if (len > o->cap - o->len)
    o->overflow = TRUE;
  else
    memcpy (o->plain + o->len, buf, len), o->len += len;
}

static PK11SymKey *
sealed_key (void *arg, SECAlgorithmID *algid)
{
  Opener *o = arg;
  SECItem pw;
  PK11SymKey *key = NULL;

  if (!cm_nssdb_pfx_pbe_password (SECOID_GetAlgorithmTag (algid), o->ucs2, o->utf8, &pw))
    return NULL;
  key = PK11_PBEKeyGen (o->slot, algid, &pw, PR_FALSE, NULL);
  if (key == NULL)
    {
      PK11SlotInfo *internal = PK11_GetInternalSlot ();
      key = PK11_PBEKeyGen (internal, algid, &pw, PR_FALSE, NULL);
      PK11_FreeSlot (internal);
    }
  /* the cipher's IV (PKCS#12 PBEs) comes from the password as the decoder gave it */
  if (key)
    PK11_SetSymKeyUserData (key, (SECItem *)o->ucs2, NULL);
  SECITEM_ZfreeItem (&pw, PR_FALSE);
  return key;
}

static PRBool
sealed_allowed (SECAlgorithmID *algid, PK11SymKey *key)
{
  return SEC_PKCS12DecryptionAllowed (algid);
}

gboolean
cm_nssdb_pfx_open_sealed (CmPfx *pfx, PK11SlotInfo *slot, const SECItem *ucs2, const char *utf8,
                          const char *path, GError **error)
{
  Walk w = { pfx, path, error };
  gboolean ok = TRUE;

  init (pfx);
  for (guint i = 0; ok && i < pfx->sealed->len; i++)
    {
      gsize n = 0;
      GBytes *b = g_ptr_array_index (pfx->sealed, i);
      SECItem it = { siBuffer, (unsigned char *)g_bytes_get_data (b, &n), 0 };
      Opener o = { slot, ucs2, utf8, g_malloc (MAX (n, 1)), 0, n, FALSE };
      SEC_PKCS7ContentInfo *cinfo;

      it.len = n;
      cinfo = SEC_PKCS7DecodeItem (&it, take_plain, &o, NULL, NULL, sealed_key, &o, sealed_allowed);
      if (cinfo == NULL || o.len == 0 || o.overflow)
        {
          g_set_error (error, CM_ERROR, CM_ERROR_BAD_INPUT,
                       "an encrypted part of %s could not be decrypted (%s): check the "
                       "password, or ask the key recovery agent for a new file",
                       path, cm_nss_error_text ());
          ok = FALSE;
        }
      else
        ok = safe_contents (&w, (Span){ o.plain, o.len }, 0);
      if (cinfo)
        SEC_PKCS7DestroyContentInfo (cinfo);
      explicit_bzero (o.plain, o.cap);
      g_free (o.plain);
    }
  g_ptr_array_set_size (pfx->sealed, 0);
  return ok;
}
