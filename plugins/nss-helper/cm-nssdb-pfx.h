/* cm-nssdb-pfx.h: what cm-nssdb-p12.c needs of a PKCS#12 beyond NSS's decoder: a first look
 * at the bytes, the password's encoding, the bags of its unencrypted SafeContents, its shrouded
 * keys unwrapped as session keys and proved to be their certificates', and the writes that put
 * them in the database (and take them out again). Not installed. */
#pragma once

#include "cm-nssdb-private.h"
#include <keythi.h>

typedef struct
{
  GBytes *epki;         /* the EncryptedPrivateKeyInfo, as encoded (plain: PrivateKeyInfo) */
  GBytes *local_key_id; /* the localKeyID attribute, or NULL */
  gboolean plain;       /* a keyBag: the key is not encrypted in the file */
} CmPfxKey;

typedef struct
{
  GBytes *der;          /* the X.509 certificate */
  GBytes *local_key_id; /* or NULL */
} CmPfxCert;

typedef struct
{
  GPtrArray *keys;  /* CmPfxKey*: pkcs8ShroudedKeyBags and keyBags of the plain SafeContents */
  GPtrArray *certs; /* CmPfxCert*: x509 certBags of the plain SafeContents */
  guint other_keys; /* nested safeContentsBags there (not handled here) */
  guint sealed;     /* encrypted or enveloped ContentInfos: their bags are not seen here */
} CmPfx;

/* One key of the file and the certificates NSS's decoder pairs with it. */
typedef struct
{
  CmPfxKey *key;             /* borrowed from the CmPfx */
  GPtrArray *certs;          /* CERTCertificate*, in bag order: the first names the key */
  SECKEYPrivateKey *session; /* the key unwrapped as a session key, once the caller has */
  SECKEYPrivateKey *token;   /* the key as the database already held it, or NULL */
} CmPfxPair;

/* A first look at the bytes, for clear errors (PKCS#12 is SEQUENCE { INTEGER 3, ... }): FALSE
 * with @error (CM_ERROR_BAD_INPUT naming @path: empty, PEM, not a PKCS#12, truncated). */
G_GNUC_INTERNAL gboolean cm_nssdb_pfx_check_shape (const guint8 *p, gsize len, const char *path,
                                                   GError **error);

/* The password as PKCS#12 wants it: UCS-2 big-endian with a terminating zero; NULL when @utf8
 * is not UTF-8. Free with cm_nssdb_pfx_password_free(), which wipes it. */
G_GNUC_INTERNAL SECItem *cm_nssdb_pfx_password (const char *utf8);
G_GNUC_INTERNAL void cm_nssdb_pfx_password_free (SECItem *pw);

/* Walk the PFX in @p (DER or BER) down to the bags of its plain SafeContents, without
 * decrypting anything. FALSE when the structure is not one this walker knows (the caller then
 * relies on NSS's decoder alone). */
G_GNUC_INTERNAL gboolean cm_nssdb_pfx_parse (const guint8 *p, gsize len, CmPfx *pfx);
G_GNUC_INTERNAL void cm_nssdb_pfx_clear (CmPfx *pfx);

/* Pair each certificate NSS's decoder says has a key (@with_key: GBytes DER, in bag order)
 * with its key among @pfx's, as NSS pairs them: by localKeyID, a file's only key going with
 * every such cert. NULL when that cannot be told here (keys the decoder saw in encrypted or
 * other bags, several keys and a cert only in an encrypted bag, a key without a cert, a key
 * type not proved here). Caller unrefs (CmPfxPair*: session keys are destroyed). */
G_GNUC_INTERNAL GPtrArray *cm_nssdb_pfx_pair (CmPfx *pfx, GPtrArray *with_key, guint nss_keys);

/* Pass 1: each pair's key unwrapped as a session key in @slot, labelled with its first
 * cert's nickname (@nicknames: sha256 -> nickname), and proved to be the key of each of its
 * certs; a key the token already holds is noted. Session objects only: nothing is written.
 * @ucs2 is the password NSS's decoder accepted, @utf8 the same as typed. FALSE with @error
 * (CM_ERROR_BAD_INPUT naming @path). */
G_GNUC_INTERNAL gboolean cm_nssdb_pfx_verify (PK11SlotInfo *slot, GPtrArray *pairs,
                                              GHashTable *nicknames, const SECItem *ucs2,
                                              const char *utf8, const char *path, GError **error);

/* Pass 2, after cm_nssdb_pfx_verify(): per key, the session key gets its first cert's subject
 * and is copied to the token (one write; NSS's import makes four), its certs are imported,
 * then the public keys. FALSE with @error (CM_ERROR_ENVIRONMENT naming @path and the database
 * folder @dir) when a write failed: what this call added is deleted again. */
G_GNUC_INTERNAL gboolean cm_nssdb_pfx_write (PK11SlotInfo *slot, GPtrArray *pairs,
                                             GHashTable *nicknames, const char *path,
                                             const char *dir, GError **error);

/* The error for a key that is not @cert's (CM_ERROR_BAD_INPUT naming @path); FALSE. */
G_GNUC_INTERNAL gboolean cm_nssdb_pfx_not_its_key (CERTCertificate *cert, const char *path,
                                                   GError **error);

/* TRUE when @key is the private half of @cert's public key: RSA by modulus and exponent, EC
 * by a signature made with @key that @cert's key verifies (a key-agreement-only key may sign
 * for that proof: it gets CKA_SIGN for a moment). */
G_GNUC_INTERNAL gboolean cm_nssdb_pfx_key_is_certs (SECKEYPrivateKey *key, CERTCertificate *cert);

/* TRUE when @slot holds the certificate @der (one object search: making an NSS certificate
 * from the database also reads its trust and S/MIME records, a dozen queries). */
G_GNUC_INTERNAL gboolean cm_nssdb_pfx_cert_in (PK11SlotInfo *slot, const SECItem *der);

/* TRUE when @slot holds the certificate @der and the private key with the cert's CKA_ID, with
 * raw object searches only (an import asks this several times). */
G_GNUC_INTERNAL gboolean cm_nssdb_pfx_cert_and_key_in (PK11SlotInfo *slot, const SECItem *der);

/* Delete the public key objects of @cert's key from @slot (NSS's import stores one beside the
 * key; undoing an import removes it too). */
G_GNUC_INTERNAL void cm_nssdb_pfx_forget_public_key (PK11SlotInfo *slot, CERTCertificate *cert);
