/* cm-nssdb-pfx.c: PKCS#12 (RFC 7292) below NSS's PKCS#12 import, for cm-nssdb-p12.c: a first
 * look at the bytes and the password's encoding; a walk of the PFX just deep enough to reach
 * its keys, decrypting nothing (PFX ::= SEQUENCE { version, authSafe ContentInfo (data),
 * macData }; the data is an AuthenticatedSafe, a SEQUENCE OF ContentInfo; each one of type
 * data holds SafeContents, a SEQUENCE OF SafeBag { bagId, [0] bagValue, attributes }); each
 * pkcs8ShroudedKeyBag (an EncryptedPrivateKeyInfo) unwrapped into a session key of the target
 * token and proved to be its certificate's key, with no write; then the writes. Encrypted
 * ContentInfos are only counted: NSS's decoder has read them. BER is accepted (indefinite
 * lengths, constructed OCTET STRINGs), as some exporters write it. */
#include "cm-nssdb-pfx.h"
#include <cryptohi.h>
#include <keyhi.h>
#include <nss.h>
#include <p12plcy.h>
#include <prerror.h>
#include <pk11pub.h>
#include <secasn1.h>
#include <secerr.h>
#include <secoid.h>
#include <certdb.h>

#define MAX_DEPTH 24

/* NSS exports its decoder only under this name; it decodes without any certificate store (as
 * core/cm-cert.c uses it). */
extern CERTCertificate *__CERT_DecodeDERCertificate (SECItem *der, PRBool copy, char *nickname);

typedef struct
{
  const guint8 *p;
  gsize len;
} Span;

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

void
cm_nssdb_pfx_clear (CmPfx *pfx)
{
  g_clear_pointer (&pfx->keys, g_ptr_array_unref);
  g_clear_pointer (&pfx->certs, g_ptr_array_unref);
  pfx->other_keys = pfx->sealed = 0;
}

gboolean
cm_nssdb_pfx_check_shape (const guint8 *p, gsize len, const char *path, GError **error)
{
  gsize hdr = 2, body = 0;

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
  if (len < 5 || p[0] != 0x30)
    goto not_p12;
  if (p[1] & 0x80)
    {
      gsize n = p[1] & 0x7f;
      if (n == 0)
        hdr = 2, body = len - 2; /* BER indefinite length */
      else if (n > 4 || len < 2 + n)
        goto not_p12;
      else
        {
          for (gsize i = 0; i < n; i++)
            body = (body << 8) | p[2 + i];
          hdr = 2 + n;
        }
    }
  else
    body = p[1];
  if (len < hdr + 3 || p[hdr] != 0x02 || p[hdr + 1] != 0x01 || p[hdr + 2] != 0x03)
    goto not_p12;
  if (hdr + body > len)
    return g_set_error (error, CM_ERROR, CM_ERROR_BAD_INPUT,
                        "%s is truncated (%" G_GSIZE_FORMAT " of %" G_GSIZE_FORMAT " bytes): "
                        "copy the file again from the key recovery message",
                        path, len, hdr + body),
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

/* The element at the start of @in: its @tag, its contents @body (for an indefinite length, up
 * to its end-of-contents octets) and its whole encoding @all; @in moves past it. */
static gboolean
tlv (Span *in, guint8 *tag, Span *body, Span *all, int depth)
{
  const guint8 *p = in->p;
  gsize hdr = 2, n = 0;

  if (depth > MAX_DEPTH || in->len < 2 || (p[0] & 0x1f) == 0x1f)
    return FALSE; /* high tag numbers are not used by PKCS#12 */
  if (p[1] == 0x80)
    {
      Span rest = { p + 2, in->len - 2 }, b, a;
      guint8 t;

      if (!(p[0] & 0x20))
        return FALSE; /* only constructed encodings have indefinite lengths */
      while (rest.len >= 2 && (rest.p[0] || rest.p[1]))
        if (!tlv (&rest, &t, &b, &a, depth + 1))
          return FALSE;
      if (rest.len < 2)
        return FALSE;
      n = rest.p - (p + 2);
      *body = (Span){ p + 2, n };
      *all = (Span){ p, n + 4 };
    }
  else
    {
      if (p[1] & 0x80)
        {
          gsize k = p[1] & 0x7f;
          if (k == 0 || k > 4 || in->len < 2 + k)
            return FALSE;
          for (gsize i = 0; i < k; i++)
            n = (n << 8) | p[2 + i];
          hdr = 2 + k;
        }
      else
        n = p[1];
      if (n > in->len - hdr)
        return FALSE;
      *body = (Span){ p + hdr, n };
      *all = (Span){ p, hdr + n };
    }
  *tag = p[0];
  in->p += all->len;
  in->len -= all->len;
  return TRUE;
}

static gboolean
expect (Span *in, guint8 tag, Span *body, int depth)
{
  Span all;
  guint8 t;

  return tlv (in, &t, body, &all, depth) && t == tag;
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
  b = g_byte_array_free_to_bytes (g_steal_pointer (&joined));
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

static gboolean
safe_bag (Span bag, CmPfx *pfx, GPtrArray *keep, int depth)
{
  Span oid, value, attrs = { NULL, 0 }, inner, all;
  guint8 t;
  SECOidTag type;

  if (!expect (&bag, 0x06, &oid, depth) || !expect (&bag, 0xa0, &value, depth)
      || (bag.len && !expect (&bag, 0x31, &attrs, depth)))
    return FALSE;
  type = oid_tag (oid);
  if (type == SEC_OID_PKCS12_V1_PKCS8_SHROUDED_KEY_BAG_ID || type == SEC_OID_PKCS12_V1_KEY_BAG_ID)
    {
      CmPfxKey *k;
      if (!tlv (&value, &t, &inner, &all, depth + 1) || t != 0x30)
        return FALSE;
      k = g_new0 (CmPfxKey, 1);
      k->epki = g_bytes_new (all.p, all.len);
      k->local_key_id = local_key_id (attrs, keep, depth + 1);
      k->plain = type == SEC_OID_PKCS12_V1_KEY_BAG_ID;
      g_ptr_array_add (pfx->keys, k);
    }
  else if (type == SEC_OID_PKCS12_V1_CERT_BAG_ID)
    {
      Span cb, cert_oid, der;
      CmPfxCert *c;
      if (!expect (&value, 0x30, &cb, depth + 1) || !expect (&cb, 0x06, &cert_oid, depth + 2))
        return FALSE;
      if (oid_tag (cert_oid) != SEC_OID_PKCS9_X509_CERT)
        return TRUE; /* SDSI certificates: NSS ignores them too */
      if (!explicit_octets (&cb, &der, keep, depth + 2))
        return FALSE;
      c = g_new0 (CmPfxCert, 1);
      c->der = g_bytes_new (der.p, der.len);
      c->local_key_id = local_key_id (attrs, keep, depth + 1);
      g_ptr_array_add (pfx->certs, c);
    }
  else if (type == SEC_OID_PKCS12_V1_SAFE_CONTENTS_BAG_ID)
    pfx->other_keys++;
  return TRUE; /* CRL and secret bags hold no key */
}

gboolean
cm_nssdb_pfx_parse (const guint8 *p, gsize len, CmPfx *pfx)
{
  g_autoptr (GPtrArray) keep = g_ptr_array_new_with_free_func ((GDestroyNotify)g_bytes_unref);
  Span in = { p, len }, body, x, ci, oid, auth, seq;
  gboolean ok = FALSE;

  pfx->keys = g_ptr_array_new_with_free_func ((GDestroyNotify)key_free);
  pfx->certs = g_ptr_array_new_with_free_func ((GDestroyNotify)cert_free);
  /* PFX { version, authSafe ContentInfo { data, [0] OCTET STRING }, ... } */
  if (!expect (&in, 0x30, &body, 0) || !expect (&body, 0x02, &x, 1) || !expect (&body, 0x30, &ci, 1)
      || !expect (&ci, 0x06, &oid, 2) || oid_tag (oid) != SEC_OID_PKCS7_DATA
      || !explicit_octets (&ci, &auth, keep, 2) || !expect (&auth, 0x30, &seq, 0))
    goto out;
  while (seq.len)
    {
      Span safes, contents, bags, bag;
      SECOidTag type;

      if (!expect (&seq, 0x30, &ci, 1) || !expect (&ci, 0x06, &oid, 2))
        goto out;
      type = oid_tag (oid);
      if (type == SEC_OID_PKCS7_ENCRYPTED_DATA || type == SEC_OID_PKCS7_ENVELOPED_DATA)
        {
          pfx->sealed++;
          continue;
        }
      if (type != SEC_OID_PKCS7_DATA || !explicit_octets (&ci, &safes, keep, 2)
          || !expect (&safes, 0x30, &contents, 0))
        goto out;
      bags = contents;
      while (bags.len)
        if (!expect (&bags, 0x30, &bag, 1) || !safe_bag (bag, pfx, keep, 2))
          goto out;
    }
  ok = TRUE;
out:
  if (!ok)
    cm_nssdb_pfx_clear (pfx);
  return ok;
}

/* The public value an import derives the key's CKA_ID from (as NSS's PKCS#12 decoder does). */
static SECItem *
public_value (SECKEYPublicKey *pub)
{
  switch (pub->keyType)
    {
    case rsaKey: return &pub->u.rsa.modulus;
    case ecKey: return &pub->u.ec.publicValue;
    default: return NULL;
    }
}

static gboolean
can_prove (CERTCertificate *cert)
{
  SECKEYPublicKey *pub = CERT_ExtractPublicKey (cert);
  gboolean ok = pub && public_value (pub) != NULL;

  if (pub)
    SECKEY_DestroyPublicKey (pub);
  return ok;
}

/* Destroy @pair's session key, its object too (NSS leaves unwrapped session objects to the end
 * of the session). */
static void
drop_session (CmPfxPair *pair)
{
  if (pair->session == NULL)
    return;
  PK11_DestroyObject (pair->session->pkcs11Slot, pair->session->pkcs11ID);
  g_clear_pointer (&pair->session, SECKEY_DestroyPrivateKey);
}

static void
pair_free (CmPfxPair *pair)
{
  drop_session (pair);
  g_clear_pointer (&pair->token, SECKEY_DestroyPrivateKey);
  g_ptr_array_unref (pair->certs);
  g_free (pair);
}

/* The localKeyID of the plain cert bag holding @der, or NULL. */
static GBytes *
id_of_cert (CmPfx *pfx, GBytes *der)
{
  for (guint i = 0; i < pfx->certs->len; i++)
    {
      CmPfxCert *c = g_ptr_array_index (pfx->certs, i);
      if (g_bytes_equal (c->der, der))
        return c->local_key_id;
    }
  return NULL;
}

GPtrArray *
cm_nssdb_pfx_pair (CmPfx *pfx, GPtrArray *with_key, guint nss_keys)
{
  g_autoptr (GPtrArray) pairs = g_ptr_array_new_with_free_func ((GDestroyNotify)pair_free);

  if (nss_keys == 0 || nss_keys != pfx->keys->len || pfx->other_keys)
    return NULL;
  for (guint i = 0; i < pfx->keys->len; i++)
    {
      CmPfxPair *pair = g_new0 (CmPfxPair, 1);
      pair->key = g_ptr_array_index (pfx->keys, i);
      pair->certs = g_ptr_array_new_with_free_func ((GDestroyNotify)CERT_DestroyCertificate);
      g_ptr_array_add (pairs, pair);
    }
  for (guint i = 0; i < with_key->len; i++)
    {
      GBytes *der = g_ptr_array_index (with_key, i);
      GBytes *id = pairs->len > 1 ? id_of_cert (pfx, der) : NULL;
      CmPfxPair *to = pairs->len == 1 ? g_ptr_array_index (pairs, 0) : NULL;
      gsize n = 0;
      SECItem it = { siBuffer, (unsigned char *)g_bytes_get_data (der, &n), 0 };
      CERTCertificate *c;

      for (guint k = 0; id && k < pairs->len; k++)
        {
          CmPfxPair *p = g_ptr_array_index (pairs, k);
          if (p->key->local_key_id && g_bytes_equal (p->key->local_key_id, id))
            {
              if (to)
                return NULL; /* two keys with one ID: which one NSS takes is not ours to guess */
              to = p;
            }
        }
      it.len = n;
      if (to == NULL
          || (c = CERT_NewTempCertificate (CERT_GetDefaultCertDB (), &it, NULL, PR_FALSE, PR_TRUE))
               == NULL)
        return NULL;
      g_ptr_array_add (to->certs, c);
      if (!can_prove (c))
        return NULL;
    }
  for (guint k = 0; k < pairs->len; k++)
    if (((CmPfxPair *)g_ptr_array_index (pairs, k))->certs->len == 0)
      return NULL; /* NSS's import refuses a key without a cert */
  return g_steal_pointer (&pairs);
}

/* Decrypt @key into @slot as a session key (nothing is written) for @cert, with the label
 * @nickname and the ID, usages and public value NSS's import gives it. @ucs2 is the password
 * NSS's decoder accepted (UCS-2, for PKCS#12's own PBEs), @utf8 the same as typed (PBES2). */
static SECKEYPrivateKey *
unwrap (PK11SlotInfo *slot, CmPfxKey *key, const SECItem *ucs2, const char *utf8,
        CERTCertificate *cert, const char *nickname, const char *path, GError **error)
{
  PLArenaPool *arena = PORT_NewArena (2048);
  SECKEYEncryptedPrivateKeyInfo *epki
    = arena ? PORT_ArenaZNew (arena, SECKEYEncryptedPrivateKeyInfo) : NULL;
  SECKEYPublicKey *pub = CERT_ExtractPublicKey (cert);
  SECKEYPrivateKey *priv = NULL;
  gsize n = 0;
  SECItem der = { siBuffer, (unsigned char *)g_bytes_get_data (key->epki, &n), 0 };
  SECItem pw = { siBuffer, NULL, 0 };
  SECItem nick = { siBuffer, (unsigned char *)nickname, strlen (nickname) };
  PRInt32 force_ucs2 = 0;

  der.len = n;
  if (key->plain && pub && public_value (pub))
    {
      /* a keyBag (unencrypted, rare in escrow files but legal): imported as it is */
      if (PK11_ImportDERPrivateKeyInfoAndReturnKey (slot, &der, &nick, public_value (pub), PR_FALSE,
                                                    PR_TRUE, cert->keyUsage, &priv, NULL)
            == SECSuccess
          && priv)
        goto out;
      goto undecryptable;
    }
  if (epki == NULL || pub == NULL || public_value (pub) == NULL
      || SEC_ASN1DecodeItem (arena, epki, SEC_ASN1_GET (SECKEY_EncryptedPrivateKeyInfoTemplate),
                             &der)
           != SECSuccess)
    goto undecryptable;
  if (SECOID_GetAlgorithmTag (&epki->algorithm)
      == SEC_OID_PKCS12_V2_PBE_WITH_SHA1_AND_2KEY_TRIPLE_DES_CBC)
    {
      /* NSS's PKCS#12 PBE table has no 2-key triple DES (pk12util fails on it as well) */
      g_set_error (error, CM_ERROR, CM_ERROR_BAD_INPUT,
                   "%s encrypts its key with 2-key triple DES (pbeWithSHAAnd2-KeyTripleDES-CBC), "
                   "which NSS cannot decrypt: ask the key recovery agent for the file with AES "
                   "or 3-key triple DES",
                   path);
      goto out;
    }
  if (!SEC_PKCS12DecryptionAllowed (&epki->algorithm))
    {
      g_set_error (error, CM_ERROR, CM_ERROR_BAD_INPUT,
                   "%s uses a cipher that this system's crypto policy forbids (%s): allow "
                   "legacy PKCS#12 decryption in the NSS policy, or re-export the file with AES",
                   path, PR_ErrorToString (SEC_ERROR_BAD_EXPORT_ALGORITHM, PR_LANGUAGE_I_DEFAULT));
      goto out;
    }
  /* PKCS#12's own PBEs take the UCS-2 password with its two zero bytes; PBES2 takes the
   * UTF-8 one without a terminator (as NSS's decoder hands them to the same call) */
  NSS_OptionGet (__NSS_PKCS12_DECODE_FORCE_UNICODE, &force_ucs2);
  if (SECOID_GetAlgorithmTag (&epki->algorithm) == SEC_OID_PKCS5_PBES2 && !force_ucs2)
    {
      if (*utf8 && SECITEM_AllocItem (NULL, &pw, strlen (utf8)) == NULL)
        goto undecryptable;
      if (*utf8)
        memcpy (pw.data, utf8, pw.len);
    }
  else if (SECITEM_CopyItem (NULL, &pw, ucs2) != SECSuccess)
    goto undecryptable;
  if (PK11_ImportEncryptedPrivateKeyInfoAndReturnKey (slot, epki, &pw, &nick, public_value (pub),
                                                      PR_FALSE, PR_TRUE, pub->keyType,
                                                      cert->keyUsage, &priv, NULL)
        == SECSuccess
      && priv)
    goto out;
undecryptable:
  g_set_error (error, CM_ERROR, CM_ERROR_BAD_INPUT,
               "the key in %s could not be decrypted or stored (%s): check the password, or "
               "ask the key recovery agent for a new file",
               path, cm_nssdb_nss_error ());
out:
  if (pw.data)
    SECITEM_ZfreeItem (&pw, PR_FALSE);
  if (arena)
    PORT_FreeArena (arena, PR_TRUE);
  if (pub)
    SECKEY_DestroyPublicKey (pub);
  return priv;
}

/* Two unsigned big-endian integers are equal, whatever zero bytes lead them. */
static gboolean
same_integer (const SECItem *a, const SECItem *b)
{
  gsize i = 0, j = 0;

  while (i < a->len && a->data[i] == 0)
    i++;
  while (j < b->len && b->data[j] == 0)
    j++;
  return a->len - i == b->len - j && memcmp (a->data + i, b->data + j, a->len - i) == 0;
}

/* @key signs a random digest that @pub verifies. A key-agreement-only key may sign for this
 * proof: the session object gets CKA_SIGN for it and loses it again. */
static gboolean
signs_for (SECKEYPrivateKey *key, SECKEYPublicKey *pub)
{
  guint8 digest[32];
  CK_BBOOL on = CK_TRUE, off = CK_FALSE;
  SECItem hash = { siBuffer, digest, sizeof digest }, sig = { siBuffer, NULL, 0 };
  SECItem yes = { siBuffer, &on, sizeof on }, no = { siBuffer, &off, sizeof off };
  gboolean could = PK11_HasAttributeSet (key->pkcs11Slot, key->pkcs11ID, CKA_SIGN, PR_FALSE);
  int len = PK11_SignatureLen (key);
  gboolean ok = FALSE;

  if (len <= 0 || PK11_GenerateRandom (digest, sizeof digest) != SECSuccess
      || SECITEM_AllocItem (NULL, &sig, len) == NULL)
    return FALSE;
  if (could || PK11_WriteRawAttribute (PK11_TypePrivKey, key, CKA_SIGN, &yes) == SECSuccess)
    {
      ok = PK11_Sign (key, &sig, &hash) == SECSuccess
           && PK11_Verify (pub, &sig, &hash, NULL) == SECSuccess;
      if (!could && PK11_WriteRawAttribute (PK11_TypePrivKey, key, CKA_SIGN, &no) != SECSuccess)
        ok = FALSE;
    }
  SECITEM_FreeItem (&sig, PR_FALSE);
  return ok;
}

gboolean
cm_nssdb_pfx_key_is_certs (SECKEYPrivateKey *key, CERTCertificate *cert)
{
  SECKEYPublicKey *pub = CERT_ExtractPublicKey (cert);
  SECItem n = { siBuffer, NULL, 0 }, e = { siBuffer, NULL, 0 };
  gboolean ok = FALSE;

  if (pub && pub->keyType == rsaKey && key->keyType == rsaKey)
    ok = PK11_ReadRawAttribute (PK11_TypePrivKey, key, CKA_MODULUS, &n) == SECSuccess
         && PK11_ReadRawAttribute (PK11_TypePrivKey, key, CKA_PUBLIC_EXPONENT, &e) == SECSuccess
         && same_integer (&n, &pub->u.rsa.modulus) && same_integer (&e, &pub->u.rsa.publicExponent);
  else if (pub && pub->keyType == ecKey && key->keyType == ecKey)
    ok = signs_for (key, pub);
  SECITEM_FreeItem (&n, PR_FALSE);
  SECITEM_FreeItem (&e, PR_FALSE);
  if (pub)
    SECKEY_DestroyPublicKey (pub);
  return ok;
}

gboolean
cm_nssdb_pfx_not_its_key (CERTCertificate *cert, const char *path, GError **error)
{
  g_autofree char *cn = cert ? CERT_GetCommonName (&cert->subject) : NULL;

  g_set_error (error, CM_ERROR, CM_ERROR_BAD_INPUT,
               "the private key in %s does not belong to its certificate%s%s%s: ask the key "
               "recovery agent for a new file",
               path, cn ? " (" : "", cn ? cn : "", cn ? ")" : "");
  return FALSE;
}

static const char *
nickname_of (GHashTable *nicknames, CERTCertificate *c)
{
  g_autofree char *h = cm_nssdb_sha256 (&c->derCert);
  const char *nick = g_hash_table_lookup (nicknames, h);

  return nick ? nick : "Recovered key";
}

gboolean
cm_nssdb_pfx_verify (PK11SlotInfo *slot, GPtrArray *pairs, GHashTable *nicknames,
                     const SECItem *ucs2, const char *utf8, const char *path, GError **error)
{
  for (guint i = 0; i < pairs->len; i++)
    {
      CmPfxPair *p = g_ptr_array_index (pairs, i);
      CERTCertificate *first = g_ptr_array_index (p->certs, 0);

      /* looked up before the session key exists, which has the same ID */
      p->token = PK11_FindKeyByDERCert (slot, first, NULL);
      p->session
        = unwrap (slot, p->key, ucs2, utf8, first, nickname_of (nicknames, first), path, error);
      if (p->session == NULL)
        return FALSE;
      for (guint j = 0; j < p->certs->len; j++)
        if (!cm_nssdb_pfx_key_is_certs (p->session, g_ptr_array_index (p->certs, j)))
          return cm_nssdb_pfx_not_its_key (g_ptr_array_index (p->certs, j), path, error);
    }
  return TRUE;
}

gboolean
cm_nssdb_pfx_cert_in (PK11SlotInfo *slot, const SECItem *der)
{
  return PK11_FindEncodedCertInSlot (slot, (SECItem *)der, NULL) != CK_INVALID_HANDLE;
}

gboolean
cm_nssdb_pfx_cert_and_key_in (PK11SlotInfo *slot, const SECItem *der)
{
  CERTCertificate *c = __CERT_DecodeDERCertificate ((SECItem *)der, PR_FALSE, NULL);
  /* with a slot: the CKA_ID of the slot's object for this certificate, NULL when none */
  SECItem *id = c ? PK11_GetLowLevelKeyIDForCert (slot, c, NULL) : NULL;
  SECKEYPrivateKey *k = id ? PK11_FindKeyByKeyID (slot, id, NULL) : NULL;
  gboolean in = k != NULL;

  if (k)
    SECKEY_DestroyPrivateKey (k);
  if (id)
    SECITEM_FreeItem (id, PR_TRUE);
  if (c)
    CERT_DestroyCertificate (c);
  return in;
}

/* Every cert of @pairs is in @slot with its key (which is no session key any more). */
static gboolean
all_in (PK11SlotInfo *slot, GPtrArray *pairs)
{
  for (guint i = 0; i < pairs->len; i++)
    {
      CmPfxPair *p = g_ptr_array_index (pairs, i);
      for (guint j = 0; j < p->certs->len; j++)
        if (!cm_nssdb_pfx_cert_and_key_in (
              slot, &((CERTCertificate *)g_ptr_array_index (p->certs, j))->derCert))
          return FALSE;
    }
  return TRUE;
}

gboolean
cm_nssdb_pfx_write (PK11SlotInfo *slot, GPtrArray *pairs, GHashTable *nicknames, const char *path,
                    const char *dir, GError **error)
{
  g_autoptr (GPtrArray) keys = g_ptr_array_new ();  /* SECKEYPrivateKey*: token keys added */
  g_autoptr (GPtrArray) certs = g_ptr_array_new (); /* CERTCertificate*: added (borrowed) */
  gboolean ok = TRUE;

  for (guint i = 0; ok && i < pairs->len; i++)
    {
      CmPfxPair *p = g_ptr_array_index (pairs, i);
      CERTCertificate *first = g_ptr_array_index (p->certs, 0);
      SECKEYPrivateKey *key = p->token;

      if (key == NULL
          && PK11_WriteRawAttribute (PK11_TypePrivKey, p->session, CKA_SUBJECT, &first->derSubject)
               == SECSuccess
          && (key = PK11_ConvertSessionPrivKeyToTokenPrivKey (p->session, NULL)))
        g_ptr_array_add (keys, key);
      drop_session (p); /* from here on, lookups by ID find the token's key */
      ok = key != NULL;
      for (guint j = 0; ok && j < p->certs->len; j++)
        {
          CERTCertificate *c = g_ptr_array_index (p->certs, j);

          if (cm_nssdb_pfx_cert_in (slot, &c->derCert))
            continue;
          /* a new key has its label, ID and subject; a key met again gets them from the cert */
          ok = PK11_ImportCert (slot, c, p->token || j > 0 ? key->pkcs11ID : CK_INVALID_HANDLE,
                                nickname_of (nicknames, c), PR_FALSE)
               == SECSuccess;
          if (ok)
            g_ptr_array_add (certs, c);
        }
    }
  if (!(ok = ok && all_in (slot, pairs)))
    g_set_error (error, CM_ERROR, CM_ERROR_ENVIRONMENT,
                 "writing %s into %s failed half-way (%s); what was added has been removed: "
                 "check free space and that no other program locks the database",
                 path, dir, cm_nssdb_nss_error ());
  for (guint i = 0; !ok && i < certs->len; i++)
    {
      CERTCertificate *c = PK11_FindCertFromDERCertItem (
        slot, &((CERTCertificate *)g_ptr_array_index (certs, i))->derCert, NULL);
      if (c)
        SEC_DeletePermCertificate (c);
      if (c)
        CERT_DestroyCertificate (c);
    }
  for (guint i = 0; i < keys->len; i++)
    if (ok)
      SECKEY_DestroyPrivateKey (g_ptr_array_index (keys, i));
    else
      PK11_DeleteTokenPrivateKey (g_ptr_array_index (keys, i), PR_TRUE); /* frees it too */
  /* last, so that no failure has to undo them: the public keys of the keys added */
  for (guint i = 0; ok && i < pairs->len; i++)
    {
      CmPfxPair *p = g_ptr_array_index (pairs, i);
      SECKEYPublicKey *pub
        = p->token ? NULL : CERT_ExtractPublicKey (g_ptr_array_index (p->certs, 0));

      if (pub)
        PK11_ImportPublicKey (slot, pub, PR_TRUE);
      if (pub)
        SECKEY_DestroyPublicKey (pub);
    }
  return ok;
}

void
cm_nssdb_pfx_forget_public_key (PK11SlotInfo *slot, CERTCertificate *cert)
{
  SECItem *id = PK11_GetLowLevelKeyIDForCert (NULL, cert, NULL);
  PK11GenericObject *objs = id ? PK11_FindGenericObjects (slot, CKO_PUBLIC_KEY) : NULL;

  for (PK11GenericObject *o = objs; o; o = PK11_GetNextGenericObject (o))
    {
      SECItem v = { siBuffer, NULL, 0 };
      if (PK11_ReadRawAttribute (PK11_TypeGeneric, o, CKA_ID, &v) == SECSuccess
          && SECITEM_ItemsAreEqual (&v, id))
        PK11_DestroyTokenObject (slot, PK11_GetObjectHandle (PK11_TypeGeneric, o, NULL));
      SECITEM_FreeItem (&v, PR_FALSE);
    }
  if (objs)
    PK11_DestroyGenericObjects (objs);
  if (id)
    SECITEM_FreeItem (id, PR_TRUE);
}
