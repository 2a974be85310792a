/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cm-nssdb-pfx.h: what cm-nssdb-p12.c needs of a PKCS#12 beyond NSS's decoder: the file read
 * with bounds, a first look at the bytes, the password's encoding, a walk of the file to its
 * bags (its password-encrypted parts opened in memory) with every key-derivation cost checked
 * before NSS sees it, its keys unwrapped as session keys and proved to be their certificates',
 * and the writes that put them in the database (and take them out again). Not installed. */
#pragma once

#include "cm-nssdb-private.h"
#include <keythi.h>

#define CM_PFX_MAX_BYTES (1024 * 1024) /* a .p12 file: escrow files are a few KiB */
#define CM_PFX_MAX_ITERATIONS 10000000 /* one key derivation (MAC, PBE, PBKDF2) */
#define CM_PFX_MAX_TOTAL_ITERATIONS (3 * CM_PFX_MAX_ITERATIONS) /* all of one file's */
#define CM_PFX_MAX_BAGS 256 /* safe bags in one file, nested ones included */

typedef struct
{
  GBytes *epki;         /* the EncryptedPrivateKeyInfo, as encoded (plain: PrivateKeyInfo) */
  GBytes *local_key_id; /* the localKeyID attribute, or NULL */
  gboolean plain;       /* a keyBag: the key is not encrypted in the file (wiped at free) */
} CmPfxKey;

typedef struct
{
  GBytes *der;          /* the X.509 certificate */
  GBytes *local_key_id; /* or NULL */
} CmPfxCert;

typedef struct
{
  GPtrArray *keys;    /* CmPfxKey*: pkcs8ShroudedKeyBags and keyBags */
  GPtrArray *certs;   /* CmPfxCert*: x509 certBags */
  GPtrArray *sealed;  /* GBytes*: password-encrypted ContentInfos not opened yet, as encoded */
  guint enveloped;    /* public-key-encrypted ContentInfos: never opened here */
  guint bags;         /* safe bags seen */
  guint64 iterations; /* key-derivation iterations the file asks for, all counted so far */
  GPtrArray *keep;    /* GBytes*: buffers the walk joined (wiped at clear) */
} CmPfx;

/* One key of the file and the certificates NSS's decoder pairs with it. */
typedef struct
{
  CmPfxKey *key;             /* borrowed from the CmPfx */
  GPtrArray *certs;          /* CERTCertificate*, in bag order: the first names the key */
  SECKEYPrivateKey *session; /* the key unwrapped as a session key, once the caller has */
  SECKEYPrivateKey *token;   /* the key as the database already held it, or NULL */
} CmPfxPair;

/* The file at @path, read with read(2) up to CM_PFX_MAX_BYTES: NULL with @error naming it
 * when it is missing (CM_ERROR_NOT_FOUND), not a regular file (a FIFO, /dev/zero...) or larger
 * (CM_ERROR_BAD_INPUT). Caller unrefs. */
G_GNUC_INTERNAL GBytes *cm_nssdb_pfx_read (const char *path, GError **error);

/* A first look at the bytes, for clear errors (PKCS#12 is SEQUENCE { INTEGER 3, ... }): FALSE
 * with @error (CM_ERROR_BAD_INPUT naming @path: empty, PEM, not a PKCS#12, truncated). */
G_GNUC_INTERNAL gboolean cm_nssdb_pfx_check_shape (const guint8 *p, gsize len, const char *path,
                                                   GError **error);

/* The password as PKCS#12 wants it: UCS-2 big-endian with a terminating zero; NULL when @utf8
 * is not UTF-8. Free with cm_nssdb_pfx_password_free(), which wipes it. */
G_GNUC_INTERNAL SECItem *cm_nssdb_pfx_password (const char *utf8);
G_GNUC_INTERNAL void cm_nssdb_pfx_password_free (SECItem *pw);

/* Into @out (caller frees with SECITEM_ZfreeItem (out, PR_FALSE)) the password as the PBE
 * @alg takes it, as NSS's decoder hands it over: PKCS#12's and PKCS#5 v1.5's PBEs the UCS-2
 * @ucs2 with its two zero bytes, the others (PBES2) the UTF-8 @utf8 without a terminator. */
G_GNUC_INTERNAL gboolean cm_nssdb_pfx_pbe_password (SECOidTag alg, const SECItem *ucs2,
                                                    const char *utf8, SECItem *out);

/* Walk the PFX in @p (DER or BER) to the bags of its unencrypted SafeContents (nested
 * safeContentsBags too), decrypting nothing; encrypted ContentInfos are kept in @pfx->sealed.
 * Every iteration count (the MAC's, each encrypted part's and each shrouded key's) is checked
 * here, before NSS sees it. FALSE with @error (CM_ERROR_BAD_INPUT naming @path): a structure
 * that is not PKCS#12's, too many bags, an iteration count over CM_PFX_MAX_ITERATIONS or a
 * file whose counts add up to more than CM_PFX_MAX_TOTAL_ITERATIONS. Clear with
 * cm_nssdb_pfx_clear() either way. */
G_GNUC_INTERNAL gboolean cm_nssdb_pfx_parse (const guint8 *p, gsize len, CmPfx *pfx,
                                             const char *path, GError **error);

/* Decrypt @pfx's sealed ContentInfos in memory (their PBE keys are session keys of @slot) and
 * add their bags, checked as cm_nssdb_pfx_parse() checks them. Call after NSS's decoder
 * accepted @ucs2 (and @utf8, the same password as typed). FALSE with @error (naming @path). */
G_GNUC_INTERNAL gboolean cm_nssdb_pfx_open_sealed (CmPfx *pfx, PK11SlotInfo *slot,
                                                   const SECItem *ucs2, const char *utf8,
                                                   const char *path, GError **error);
G_GNUC_INTERNAL void cm_nssdb_pfx_clear (CmPfx *pfx);

/* Pair each certificate NSS's decoder says has a key (@with_key: GBytes DER, in bag order)
 * with its key among @pfx's, as NSS pairs them: by localKeyID, a file's only key going with
 * every such cert. NULL with @error (CM_ERROR_BAD_INPUT naming @path) when the file's keys
 * cannot all be paired and proved: keys the walk did not see (@nss_keys is NSS's count), two
 * keys under one ID, a key without a cert, a key neither RSA nor EC. Caller unrefs
 * (CmPfxPair*: session keys are destroyed). */
G_GNUC_INTERNAL GPtrArray *cm_nssdb_pfx_pair (CmPfx *pfx, GPtrArray *with_key, guint nss_keys,
                                              const char *path, GError **error);

/* Pass 1: each pair's key unwrapped as a session key in @slot, labelled with its first
 * cert's nickname (@nicknames: sha256 -> nickname), and proved to be the key of each of its
 * certs; a key the token already holds is noted. Session objects only: nothing is written.
 * @ucs2 is the password NSS's decoder accepted, @utf8 the same as typed. FALSE with @error
 * (CM_ERROR_BAD_INPUT naming @path). */
G_GNUC_INTERNAL gboolean cm_nssdb_pfx_verify (PK11SlotInfo *slot, GPtrArray *pairs,
                                              GHashTable *nicknames, const SECItem *ucs2,
                                              const char *utf8, const char *path, GError **error);

/* Pass 2, after cm_nssdb_pfx_verify(): the certificates are imported first, then each new
 * session key is copied to the token with its label, ID and subject (one write each: the
 * import is whole when the last key is in), then the public keys. FALSE with @error
 * (CM_ERROR_ENVIRONMENT naming @path and the database folder @dir) when a write failed: what
 * this call added is deleted again. */
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

/* TRUE when @slot holds a private key with the CKA_ID of the certificate @der's public key. */
G_GNUC_INTERNAL gboolean cm_nssdb_pfx_key_in (PK11SlotInfo *slot, const SECItem *der);

/* Delete from @slot what an import of the certificate @der added: with @key, the private key
 * of its public key and that key's public key objects; with @cert, the certificate. */
G_GNUC_INTERNAL void cm_nssdb_pfx_forget (PK11SlotInfo *slot, const SECItem *der, gboolean key,
                                          gboolean cert);
