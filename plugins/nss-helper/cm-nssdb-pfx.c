/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cm-nssdb-pfx.c: the keys of a PKCS#12 file (as cm-nssdb-pfx-walk.c found them) into an NSS
 * database, for cm-nssdb-p12.c: each key paired with its certificates as NSS's decoder pairs
 * them, unwrapped into a session key of the target token and proved to be its certificate's
 * key, with no write: the decrypted key is never on disk outside the target database. Then the
 * writes: the certificates, then the keys (the import is whole when the last key is in), then
 * the public keys; a failed write is undone. */
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

/* NSS exports its decoder only under this name; it decodes without any certificate store (as
 * core/cm-cert.c uses it). */
extern CERTCertificate *__CERT_DecodeDERCertificate (SECItem *der, PRBool copy, char *nickname);

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

/* The localKeyID of the cert bag holding @der, or NULL. */
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

static GPtrArray *
no_pairs (const char *path, const char *why, GError **error)
{
  g_set_error (error, CM_ERROR, CM_ERROR_BAD_INPUT,
               "%s %s: ask the key recovery agent for a new file", path, why);
  return NULL;
}

/* The pair of the key @der goes with (@id its cert bag's localKeyID), or NULL with @error. */
static CmPfxPair *
pair_of (GPtrArray *pairs, GBytes *id, const char *path, GError **error)
{
  CmPfxPair *to = pairs->len == 1 ? g_ptr_array_index (pairs, 0) : NULL;

  for (guint k = 0; id && pairs->len > 1 && k < pairs->len; k++)
    {
      CmPfxPair *p = g_ptr_array_index (pairs, k);
      if (p->key->local_key_id && g_bytes_equal (p->key->local_key_id, id))
        {
          if (to) /* two keys with one ID: which one NSS takes is not ours to guess */
            return no_pairs (path, "files two private keys under one localKeyID", error), NULL;
          to = p;
        }
    }
  if (to == NULL)
    no_pairs (path, "does not say which of its private keys a certificate goes with", error);
  return to;
}

GPtrArray *
cm_nssdb_pfx_pair (CmPfx *pfx, GPtrArray *with_key, guint nss_keys, const char *path,
                   GError **error)
{
  g_autoptr (GPtrArray) pairs = g_ptr_array_new_with_free_func ((GDestroyNotify)pair_free);

  if (nss_keys != pfx->keys->len)
    return no_pairs (path,
                     pfx->enveloped ? "keeps keys in a part encrypted to a public key"
                                    : "holds keys in a form cacmail cannot read",
                     error);
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
      CmPfxPair *to = pair_of (pairs, id_of_cert (pfx, der), path, error);
      gsize n = 0;
      SECItem it = { siBuffer, (unsigned char *)g_bytes_get_data (der, &n), 0 };
      CERTCertificate *c;

      it.len = n;
      if (to == NULL)
        return NULL;
      c = CERT_NewTempCertificate (CERT_GetDefaultCertDB (), &it, NULL, PR_FALSE, PR_TRUE);
      if (c == NULL)
        return no_pairs (path, "holds a certificate NSS cannot read", error);
      g_ptr_array_add (to->certs, c);
      if (!can_prove (c))
        return no_pairs (
          path, "holds a key that is neither RSA nor EC, the kinds mail is encrypted to", error);
    }
  for (guint k = 0; k < pairs->len; k++)
    if (((CmPfxPair *)g_ptr_array_index (pairs, k))->certs->len == 0)
      return no_pairs (path, "holds a private key without its certificate", error);
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
  /* (its iteration count was checked by the walk) */
  if (!cm_nssdb_pfx_pbe_password (SECOID_GetAlgorithmTag (&epki->algorithm), ucs2, utf8, &pw))
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
               path, cm_nss_error_text ());
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

/* The CKA_ID a key gets for the certificate @der (SHA-1 of its public value, as NSS's import
 * makes it), or NULL. Computed here: asking NSS for it with no slot would attach a store
 * object to a certificate decoded outside any store, which then outlives NSS. */
static SECItem *
key_id (const SECItem *der)
{
  CERTCertificate *c = __CERT_DecodeDERCertificate ((SECItem *)der, PR_FALSE, NULL);
  SECKEYPublicKey *pub = c ? CERT_ExtractPublicKey (c) : NULL;
  SECItem *id = pub && public_value (pub) ? PK11_MakeIDFromPubKey (public_value (pub)) : NULL;

  if (pub)
    SECKEY_DestroyPublicKey (pub);
  if (c)
    CERT_DestroyCertificate (c);
  return id;
}

gboolean
cm_nssdb_pfx_key_in (PK11SlotInfo *slot, const SECItem *der)
{
  SECItem *id = key_id (der);
  SECKEYPrivateKey *k = id ? PK11_FindKeyByKeyID (slot, id, NULL) : NULL;
  gboolean in = k != NULL;

  if (k)
    SECKEY_DestroyPrivateKey (k);
  if (id)
    SECITEM_FreeItem (id, PR_TRUE);
  return in;
}

/* Delete from @slot the token objects of @class whose CKA_ID is @id. */
static void
forget_objects (PK11SlotInfo *slot, CK_OBJECT_CLASS class, const SECItem *id)
{
  PK11GenericObject *objs = PK11_FindGenericObjects (slot, class);

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
}

void
cm_nssdb_pfx_forget (PK11SlotInfo *slot, const SECItem *der, gboolean key, gboolean cert)
{
  SECItem *id = key ? key_id (der) : NULL;
  CERTCertificate *perm = cert ? PK11_FindCertFromDERCertItem (slot, der, NULL) : NULL;

  if (id)
    forget_objects (slot, CKO_PRIVATE_KEY, id);
  if (id)
    forget_objects (slot, CKO_PUBLIC_KEY, id);
  if (perm)
    SEC_DeletePermCertificate (perm);
  if (perm)
    CERT_DestroyCertificate (perm);
  if (id)
    SECITEM_FreeItem (id, PR_TRUE);
}

/* Undo a write that failed: the keys (with their public keys), then the certificates. */
static void
undo (PK11SlotInfo *slot, GPtrArray *keys, GPtrArray *certs)
{
  for (guint i = 0; i < keys->len; i++)
    cm_nssdb_pfx_forget (slot, &((CERTCertificate *)g_ptr_array_index (keys, i))->derCert, TRUE,
                         FALSE);
  for (guint i = 0; i < certs->len; i++)
    cm_nssdb_pfx_forget (slot, &((CERTCertificate *)g_ptr_array_index (certs, i))->derCert, FALSE,
                         TRUE);
}

/* The certificates of @pairs that @slot lacks, imported (those added go to @added). A new key's
 * certs go in before it, so their CKA_ID is made from the cert's public key (the key's own);
 * a key the database held keeps its label. */
static gboolean
write_certs (PK11SlotInfo *slot, GPtrArray *pairs, GHashTable *nicknames, GPtrArray *added)
{
  for (guint i = 0; i < pairs->len; i++)
    {
      CmPfxPair *p = g_ptr_array_index (pairs, i);
      for (guint j = 0; j < p->certs->len; j++)
        {
          CERTCertificate *c = g_ptr_array_index (p->certs, j);

          if (cm_nssdb_pfx_cert_in (slot, &c->derCert))
            continue;
          if (PK11_ImportCert (slot, c, CK_INVALID_HANDLE, nickname_of (nicknames, c), PR_FALSE)
              != SECSuccess)
            return FALSE;
          g_ptr_array_add (added, c);
        }
    }
  return TRUE;
}

/* Each new session key copied to the token with its label, ID and first cert's subject (the
 * first cert of each goes to @added). */
static gboolean
write_keys (GPtrArray *pairs, GPtrArray *added)
{
  gboolean ok = TRUE;

  for (guint i = 0; i < pairs->len; i++)
    {
      CmPfxPair *p = g_ptr_array_index (pairs, i);
      CERTCertificate *first = g_ptr_array_index (p->certs, 0);
      SECKEYPrivateKey *key = NULL;

      if (ok && p->token == NULL
          && PK11_WriteRawAttribute (PK11_TypePrivKey, p->session, CKA_SUBJECT, &first->derSubject)
               == SECSuccess
          && (key = PK11_ConvertSessionPrivKeyToTokenPrivKey (p->session, NULL)))
        g_ptr_array_add (added, first);
      ok &= p->token != NULL || key != NULL;
      if (key)
        SECKEY_DestroyPrivateKey (key);
      drop_session (p); /* from here on, lookups by ID find the token's key */
    }
  return ok;
}

gboolean
cm_nssdb_pfx_write (PK11SlotInfo *slot, GPtrArray *pairs, GHashTable *nicknames, const char *path,
                    const char *dir, GError **error)
{
  g_autoptr (GPtrArray) certs = g_ptr_array_new (); /* CERTCertificate*: added (borrowed) */
  g_autoptr (GPtrArray) keys = g_ptr_array_new ();  /* CERTCertificate*: whose key was added */

  if (!write_certs (slot, pairs, nicknames, certs) || !write_keys (pairs, keys)
      || !all_in (slot, pairs))
    {
      g_set_error (error, CM_ERROR, CM_ERROR_ENVIRONMENT,
                   "writing %s into %s failed half-way (%s); what was added has been removed: "
                   "check free space and that no other program locks the database",
                   path, dir, cm_nss_error_text ());
      undo (slot, keys, certs);
      return FALSE;
    }
  /* last, so that no failure has to undo them: the public keys of the keys added */
  for (guint i = 0; i < keys->len; i++)
    {
      SECKEYPublicKey *pub = CERT_ExtractPublicKey (g_ptr_array_index (keys, i));

      if (pub)
        PK11_ImportPublicKey (slot, pub, PR_TRUE);
      if (pub)
        SECKEY_DestroyPublicKey (pub);
    }
  return TRUE;
}
