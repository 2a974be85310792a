/* cm-ldap-card.c: the card through NSS and its PKCS#11 module (OpenSC): list the certs that
 * have a key, pick and check the ones to publish, prove both keys, sign the
 * userSMIMECertificate blob. */
#include "cm-ldap-private.h"
#include <cert.h>
#include <certdb.h>
#include <cms.h>
#include <keyhi.h>
#include <nss.h>
#include <pk11pub.h>
#include <prerror.h>
#include <secerr.h>
#include <smime.h>
#include <string.h>

struct _CmLdapCard
{
  CmNssDb *db; /* "nssdb" bound next to cm_init() (core), or NULL: the application's NSS */
  char *nssdb;
  CmInventory *inv;
  GHashTable *nss;   /* sha256 -> CERTCertificate* */
  GHashTable *slots; /* sha256 -> PK11SlotInfo* holding the private key */
};

/* What the NSS password callback needs while one signature is made. */
typedef struct
{
  char *pin; /* asked once per sign step, wiped at its end */
  gboolean asked_again;
} PinCtx;

static void
destroy_cert (gpointer p)
{
  CERT_DestroyCertificate (p);
}

static void
free_slot (gpointer p)
{
  PK11_FreeSlot (p);
}

void
cm_ldap_card_free (CmLdapCard *card)
{
  if (card == NULL)
    return;
  g_clear_pointer (&card->nss, g_hash_table_unref);
  g_clear_pointer (&card->slots, g_hash_table_unref);
  cm_inventory_free (card->inv);
  g_clear_pointer (&card->db, cm_nss_db_free);
  g_free (card->nssdb);
  g_free (card);
}

/* The name of @slot as the user knows it: CM_NSS_DB_TOKEN_NAME for the NSS database's own
 * token (as core names it), else the token label. */
static const char *
token_name (PK11SlotInfo *slot)
{
  return PK11_IsInternal (slot) ? CM_NSS_DB_TOKEN_NAME : PK11_GetTokenName (slot);
}

static const char *
nss_error_name (void)
{
  const char *name = PR_ErrorToName (PR_GetError ());

  return name ? name : "unknown NSS error";
}

static void
add_cert (CmLdapCard *card, CERTCertificate *cert)
{
  PK11SlotList *slots = PK11_GetAllSlotsForCert (cert, NULL);
  PK11SlotInfo *key_slot = NULL;
  g_autoptr (GBytes) der = g_bytes_new (cert->derCert.data, cert->derCert.len);
  g_autoptr (GError) error = NULL;
  g_autofree char *sha = NULL;

  /* the token holding the key: one where NSS sees it without a login (soft tokens), else a
   * card token (a card's private keys are visible only after the PIN) */
  for (PK11SlotListElement *e = slots ? slots->head : NULL; e && !key_slot; e = e->next)
    {
      SECKEYPrivateKey *key = PK11_FindPrivateKeyFromCert (e->slot, cert, NULL);
      if (key)
        {
          key_slot = PK11_ReferenceSlot (e->slot);
          SECKEY_DestroyPrivateKey (key);
        }
    }
  for (PK11SlotListElement *e = slots ? slots->head : NULL; e && !key_slot; e = e->next)
    if (!PK11_IsInternal (e->slot) && PK11_NeedLogin (e->slot) && !PK11_IsLoggedIn (e->slot, NULL))
      key_slot = PK11_ReferenceSlot (e->slot);
  if (slots)
    PK11_FreeSlotList (slots);
  if (key_slot == NULL)
    return;
  {
    g_autoptr (CmSource) src = cm_source_new (CM_SOURCE_NSS, NULL, CM_SLOT_NONE);
    src->token = g_strdup (token_name (key_slot));
    src->nickname = g_strdup (cert->nickname);
    if (!cm_inventory_add_der (card->inv, der, src, &error))
      {
        /* a cert core cannot read is not one we could publish */
        g_debug ("skipping %s: %s", cert->nickname, error->message);
        PK11_FreeSlot (key_slot);
        return;
      }
  }
  sha = g_compute_checksum_for_bytes (G_CHECKSUM_SHA256, der);
  if (!g_hash_table_contains (card->nss, sha))
    {
      g_hash_table_insert (card->nss, g_strdup (sha), CERT_DupCertificate (cert));
      g_hash_table_insert (card->slots, g_strdup (sha), g_steal_pointer (&key_slot));
    }
  if (key_slot)
    PK11_FreeSlot (key_slot);
}

CmLdapCard *
cm_ldap_card_open_sync (CmLdapConfig *cfg, GCancellable *cancellable, GError **error)
{
  g_autoptr (CmLdapCard) card = g_new0 (CmLdapCard, 1);
  const char *db = cm_ldap_config_get (cfg, "nssdb");
  CERTCertList *list = NULL;

  card->inv = cm_inventory_new ();
  card->nss = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, destroy_cert);
  card->slots = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, free_slot);
  if (db)
    {
      g_autoptr (GError) local = NULL;
      card->nssdb = g_strdup (g_str_has_prefix (db, "sql:") ? db + 4 : db);
      card->db = cm_nss_db_open_sync (card->nssdb, CM_NSS_DB_READ_ONLY | CM_NSS_DB_LOAD_MODULES,
                                      cancellable, &local);
      if (card->db == NULL)
        {
          g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_CARD,
                       "%s; prepare the database (docs/ldap.md) or pass --nssdb DIR",
                       local->message);
          return NULL;
        }
    }
  else if (!NSS_IsInitialized ())
    {
      g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_CARD,
                   "NSS is not initialised: pass --nssdb DIR (the database holding the card's "
                   "module)");
      return NULL;
    }
  if (g_cancellable_set_error_if_cancelled (cancellable, error))
    return NULL;
  list = PK11_ListCerts (PK11CertListUser, NULL);
  for (CERTCertListNode *n = list ? CERT_LIST_HEAD (list) : NULL; n && !CERT_LIST_END (n, list);
       n = CERT_LIST_NEXT (n))
    add_cert (card, n->cert);
  if (list)
    CERT_DestroyCertList (list);
  if (g_hash_table_size (card->nss) == 0)
    {
      GPtrArray *problems = card->db ? cm_nss_db_get_module_problems (card->db) : NULL;
      g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_CARD,
                   "no certificate with a private key was found%s%s%s%s: insert the card and "
                   "check that its PKCS#11 module (OpenSC) is in that database (modutil -list)",
                   card->nssdb ? " through the NSS database " : "", card->nssdb ? card->nssdb : "",
                   problems && problems->len ? "; " : "",
                   problems && problems->len ? (char *)g_ptr_array_index (problems, 0) : "");
      return NULL;
    }
  return g_steal_pointer (&card);
}

static char *
describe (CmCert *c)
{
  g_autofree char *until = cm_time_format_date (cm_cert_get_not_after (c));
  const char *cn = cm_cert_get_subject_cn (c);

  return g_strdup_printf ("%s, until %s", cn ? cn : cm_cert_get_subject (c), until);
}

/* The refusal for a missing pick, from core's problems. */
static void
refuse_missing (CmPicks *picks, const char *what, const char *prefix, GError **error)
{
  GPtrArray *problems = cm_picks_get_problems (picks);

  for (guint i = 0; i < problems->len; i++)
    {
      CmProblem *p = g_ptr_array_index (problems, i);
      if (g_str_has_prefix (cm_problem_get_code (p), prefix)
          || strcmp (cm_problem_get_code (p), "email-not-found") == 0)
        {
          g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_REFUSED,
                       "nothing published: %s (%s): %s", cm_problem_get_message (p),
                       cm_problem_get_code (p), cm_problem_get_hint (p));
          return;
        }
    }
  g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_REFUSED,
               "nothing published: no valid %s certificate for %s on the card: get one in the "
               "card maintenance portal",
               what, cm_picks_get_email (picks));
}

static gboolean
check_trust (CmLdapCard *card, CmCert *c, SECCertUsage usage, const char *what, gint64 at,
             GError **error)
{
  CERTCertificate *cert = g_hash_table_lookup (card->nss, cm_cert_get_sha256 (c));
  g_autofree char *desc = describe (c);

  if (CERT_VerifyCert (CERT_GetDefaultCertDB (), cert, PR_TRUE, usage, (PRTime)at * PR_USEC_PER_SEC,
                       NULL, NULL)
      == SECSuccess)
    return TRUE;
  g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_REFUSED,
               "nothing published: the %s cert (%s) does not chain to a trusted root in %s (%s): "
               "trust the issuing root CA there (certutil -A -t C,C,)",
               what, desc, card->nssdb ? card->nssdb : "the NSS database", nss_error_name ());
  return FALSE;
}

gboolean
cm_ldap_card_pick (CmLdapCard *card, CmLdapConfig *cfg, const char *email, gint64 at,
                   CmCert **signing, CmCert **encryption, GError **error)
{
  g_autoptr (CmPicks) picks = cm_select_for_email (card->inv, email, at, NULL);
  CmCert *s = cm_picks_get_signing (picks), *e = cm_picks_get_encryption (picks);
  const char *want = cm_ldap_config_get (cfg, "token");
  CmCert *both[] = { s, e };
  const char *what[] = { "signing", "encryption" };

  if (s == NULL)
    {
      refuse_missing (picks, "signing", "signing-cert", error);
      return FALSE;
    }
  if (e == NULL)
    {
      refuse_missing (picks, "encryption", "encryption-cert", error);
      return FALSE;
    }
  for (guint i = 0; i < 2; i++)
    {
      PK11SlotInfo *slot = g_hash_table_lookup (card->slots, cm_cert_get_sha256 (both[i]));
      const char *token = token_name (slot);
      const char *other
        = token_name (g_hash_table_lookup (card->slots, cm_cert_get_sha256 (both[1 - i])));
      g_autofree char *desc = describe (both[i]);

      if (!cm_cert_is_valid_at (both[i], at) || !cm_cert_has_email (both[i], email))
        {
          g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_REFUSED,
                       "nothing published: the %s cert (%s) is not valid now for %s: renew it",
                       what[i], desc, email);
          return FALSE;
        }
      if (!want && PK11_IsInternal (slot))
        {
          g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_REFUSED,
                       "nothing published: the %s cert for %s (%s) has its key in the NSS "
                       "database '%s', not on a card: insert the card that holds the current "
                       "certs (cacmail publishes a card's own certs; --token '%s' overrides)",
                       what[i], email, desc, token, token);
          return FALSE;
        }
      if ((want && strcmp (token, want) != 0) || (!want && strcmp (token, other) != 0))
        {
          g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_REFUSED,
                       "nothing published: the %s cert for %s (%s) is on token '%s', not on the "
                       "card '%s': insert the card that holds the current certs for this "
                       "address, or pass --token '%s'",
                       what[i], email, desc, token, want ? want : other, token);
          return FALSE;
        }
    }
  if (!check_trust (card, s, certUsageEmailSigner, "signing", at, error)
      || !check_trust (card, e, certUsageEmailRecipient, "encryption", at, error))
    return FALSE;
  *signing = s;
  *encryption = e;
  return TRUE;
}

static char *
password_cb (PK11SlotInfo *slot, PRBool retry, void *arg)
{
  PinCtx *ctx = arg;

  /* never retry a PIN the card refused: each try costs one of the card's few */
  if (ctx == NULL || ctx->pin == NULL || retry)
    return NULL;
  ctx->asked_again = TRUE;
  return PORT_Strdup (ctx->pin);
}

static gboolean
log_in (CmLdapCard *card, PK11SlotInfo *slot, PinCtx *ctx, CmLdapSecretFunc ask, gpointer ask_data,
        GError **error)
{
  const char *token = token_name (slot);

  if (!PK11_NeedLogin (slot) || PK11_IsLoggedIn (slot, NULL))
    return TRUE;
  if (ask == NULL)
    {
      g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_PIN,
                   "the PIN of the card '%s' is needed: pass --pin-file FILE", token);
      return FALSE;
    }
  ctx->pin = ask (CM_LDAP_SECRET_PIN, token, ask_data, error);
  if (ctx->pin == NULL)
    return FALSE;
  if (PK11_CheckUserPassword (slot, ctx->pin) != SECSuccess)
    {
      if (PR_GetError () == SEC_ERROR_BAD_PASSWORD)
        {
          g_autofree char *msg = cm_nss_pin_refused_message (slot, token);
          g_set_error_literal (error, CM_LDAP_ERROR, CM_LDAP_ERROR_PIN, msg);
        }
      else
        g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_CARD,
                     "cannot log in to the card '%s' (%s): check that it is still in the reader",
                     token, nss_error_name ());
      return FALSE;
    }
  /* PIV's signing key needs the PIN again for each signature (context-specific login) */
  if (card->db)
    PK11_SetPasswordFunc (password_cb);
  return TRUE;
}

/* Prove that the card holds the encryption key: decrypt a random challenge. */
static gboolean
prove_decryption (CERTCertificate *cert, PinCtx *ctx, const char *desc, GError **error)
{
  SECKEYPublicKey *pub = CERT_ExtractPublicKey (cert);
  SECKEYPrivateKey *priv = PK11_FindKeyByAnyCert (cert, ctx);
  unsigned char challenge[32], ct[1024], pt[1024];
  unsigned int n = 0, len;
  gboolean ok = FALSE;

  if (pub == NULL || priv == NULL)
    {
      g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_REFUSED,
                   "nothing published: the card holds no private key for the encryption cert "
                   "(%s): it is not the card's own; use the card it was issued on",
                   desc);
      goto out;
    }
  if (SECKEY_GetPublicKeyType (pub) != rsaKey)
    {
      ok = TRUE; /* EC key agreement keys: the token's key lookup is the proof we have */
      goto out;
    }
  len = SECKEY_PublicKeyStrength (pub);
  if (len > sizeof ct || PK11_GenerateRandom (challenge, sizeof challenge) != SECSuccess
      || PK11_PubEncryptPKCS1 (pub, ct, challenge, sizeof challenge, NULL) != SECSuccess)
    {
      g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_CARD,
                   "cannot encrypt a test value to the encryption cert (%s, %s): report this bug",
                   desc, nss_error_name ());
      goto out;
    }
  if (PK11_PrivDecryptPKCS1 (priv, pt, &n, sizeof pt, ct, len) != SECSuccess
      || n != sizeof challenge || memcmp (pt, challenge, n) != 0)
    {
      g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_REFUSED,
                   "nothing published: the card could not decrypt with the key of the "
                   "encryption cert (%s, %s): it is not the card's own key; use the card it was "
                   "issued on",
                   desc, nss_error_name ());
      goto out;
    }
  ok = TRUE;
out:
  explicit_bzero (pt, sizeof pt);
  if (pub)
    SECKEY_DestroyPublicKey (pub);
  if (priv)
    SECKEY_DestroyPrivateKey (priv);
  return ok;
}

/* Add the encryption cert and the CAs of its chain that the signer's chain does not hold. */
static gboolean
add_encryption_chain (NSSCMSSignedData *sigd, CERTCertificate *sign, CERTCertificate *enc)
{
  CERTCertificateList *schain = CERT_CertChainFromCert (sign, certUsageEmailSigner, PR_FALSE);
  CERTCertificateList *echain = CERT_CertChainFromCert (enc, certUsageEmailRecipient, PR_FALSE);
  gboolean ok = NSS_CMSSignedData_AddCertificate (sigd, enc) == SECSuccess; /* it dups */

  for (int i = 1; ok && echain && i < echain->len; i++)
    {
      gboolean have = FALSE;
      for (int j = 0; schain && j < schain->len && !have; j++)
        have = SECITEM_ItemsAreEqual (&echain->certs[i], &schain->certs[j]);
      if (!have)
        {
          CERTCertificate *ca
            = CERT_FindCertByDERCert (CERT_GetDefaultCertDB (), &echain->certs[i]);
          ok = ca && NSS_CMSSignedData_AddCertificate (sigd, ca) == SECSuccess;
          if (ca)
            CERT_DestroyCertificate (ca);
        }
    }
  if (schain)
    CERT_DestroyCertificateList (schain);
  if (echain)
    CERT_DestroyCertificateList (echain);
  return ok;
}

/* NSS's CMS encoder writes indefinite lengths (BER); the GAL wants DER. Rewrite every
 * indefinite length as a definite one (the content itself is DER already: certificates and
 * signed attributes). Appends to @out; returns the bytes of @in consumed, or 0 if malformed. */
static gsize
ber_to_der (const guint8 *in, gsize len, GByteArray *out, int depth)
{
  gsize hdr = 2, clen = 0, used;
  guint8 tag;
  gboolean indefinite = FALSE;
  g_autoptr (GByteArray) body = NULL;

  if (len < 2 || depth > 32 || (in[0] & 0x1f) == 0x1f)
    return 0;
  tag = in[0];
  if (in[1] == 0x80)
    indefinite = TRUE;
  else if (in[1] & 0x80)
    {
      guint n = in[1] & 0x7f;
      if (n > 4 || len < 2 + n)
        return 0;
      for (guint i = 0; i < n; i++)
        clen = (clen << 8) | in[2 + i];
      hdr += n;
    }
  else
    clen = in[1];
  if (indefinite && !(tag & 0x20))
    return 0;
  if (!indefinite && (clen > len - hdr))
    return 0;
  body = g_byte_array_new ();
  if (!(tag & 0x20))
    g_byte_array_append (body, in + hdr, (guint)clen);
  else
    {
      gsize pos = hdr;
      while (indefinite ? !(pos + 1 < len && in[pos] == 0 && in[pos + 1] == 0) : pos < hdr + clen)
        {
          gsize n
            = ber_to_der (in + pos, indefinite ? len - pos : hdr + clen - pos, body, depth + 1);
          if (n == 0)
            return 0;
          pos += n;
        }
      if (indefinite)
        clen = pos + 2 - hdr; /* children and the end-of-contents octets */
    }
  used = hdr + clen;
  g_byte_array_append (out, &tag, 1);
  if (body->len < 0x80)
    {
      guint8 l = (guint8)body->len;
      g_byte_array_append (out, &l, 1);
    }
  else
    {
      guint8 l[5];
      guint n = 0;
      for (guint v = body->len; v; v >>= 8)
        n++;
      l[0] = (guint8)(0x80 | n);
      for (guint i = 0; i < n; i++)
        l[1 + i] = (guint8)(body->len >> (8 * (n - 1 - i)));
      g_byte_array_append (out, l, n + 1);
    }
  g_byte_array_append (out, body->data, body->len);
  return used;
}

static GBytes *
make_blob (CERTCertificate *sign, CERTCertificate *enc, PinCtx *ctx, GError **error)
{
  NSSCMSMessage *cmsg = NSS_CMSMessage_Create (NULL);
  NSSCMSSignedData *sigd = NULL;
  NSSCMSSignerInfo *si = NULL;
  NSSCMSEncoderContext *ecx = NULL;
  CERTCertDBHandle *db = CERT_GetDefaultCertDB ();
  PLArenaPool *arena = PORT_NewArena (4096);
  unsigned char hash[32];
  SECItem digest = { siBuffer, hash, sizeof hash }, out = { siBuffer, NULL, 0 };
  GBytes *blob = NULL;
  const char *step = "create";

  if (cmsg == NULL || arena == NULL)
    goto out;
  sigd = NSS_CMSSignedData_Create (cmsg);
  if (sigd == NULL
      || NSS_CMSContentInfo_SetContent_SignedData (cmsg, NSS_CMSMessage_GetContentInfo (cmsg), sigd)
           != SECSuccess
      || NSS_CMSContentInfo_SetContent_Data (cmsg, NSS_CMSSignedData_GetContentInfo (sigd), NULL,
                                             PR_TRUE)
           != SECSuccess)
    goto out;
  step = "add the signer";
  si = NSS_CMSSignerInfo_Create (cmsg, sign, SEC_OID_SHA256);
  if (si == NULL || NSS_CMSSignerInfo_IncludeCerts (si, NSSCMSCM_CertChain, certUsageEmailSigner)
      || NSS_CMSSignerInfo_AddSigningTime (si, PR_Now ()) || NSS_CMSSignerInfo_AddSMIMECaps (si))
    goto out;
  step = "add the encryption key preferences (is the root trusted?)";
  if (NSS_CMSSignerInfo_AddSMIMEEncKeyPrefs (si, enc, db)
      || NSS_CMSSignerInfo_AddMSSMIMEEncKeyPrefs (si, enc, db))
    goto out;
  step = "add the certificates";
  if (!add_encryption_chain (sigd, sign, enc) || NSS_CMSSignedData_AddSignerInfo (sigd, si))
    goto out;
  si = NULL; /* owned by sigd now */
  step = "sign (wrong PIN or card removed?)";
  if (PK11_HashBuf (SEC_OID_SHA256, hash, (const unsigned char *)"", 0) != SECSuccess
      || NSS_CMSSignedData_SetDigestValue (sigd, SEC_OID_SHA256, &digest) != SECSuccess)
    goto out;
  ecx = NSS_CMSEncoder_Start (cmsg, NULL, NULL, &out, arena, NULL, ctx, NULL, NULL, NULL, NULL);
  if (ecx == NULL || NSS_CMSEncoder_Finish (ecx) != SECSuccess || out.len == 0)
    goto out;
  {
    GByteArray *der = g_byte_array_new ();
    if (ber_to_der (out.data, out.len, der, 0) == out.len)
      blob = g_byte_array_free_to_bytes (der);
    else
      g_byte_array_unref (der);
  }
  step = "encode in DER";
out:
  if (blob == NULL)
    g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_CARD,
                 "cannot make the userSMIMECertificate blob: NSS failed to %s (%s): check the "
                 "card and the NSS database",
                 step, nss_error_name ());
  if (si)
    NSS_CMSSignerInfo_Destroy (si);
  if (cmsg)
    NSS_CMSMessage_Destroy (cmsg);
  if (arena)
    PORT_FreeArena (arena, PR_FALSE);
  return blob;
}

GBytes *
cm_ldap_card_sign_sync (CmLdapCard *card, CmCert *signing, CmCert *encryption, gint64 at,
                        CmLdapSecretFunc ask, gpointer ask_data, GCancellable *cancellable,
                        GError **error)
{
  PinCtx ctx = { NULL, FALSE };
  CERTCertificate *sign = g_hash_table_lookup (card->nss, cm_cert_get_sha256 (signing));
  CERTCertificate *enc = g_hash_table_lookup (card->nss, cm_cert_get_sha256 (encryption));
  PK11SlotInfo *slot = g_hash_table_lookup (card->slots, cm_cert_get_sha256 (signing));
  g_autofree char *edesc = describe (encryption);
  GBytes *blob = NULL;

  if (!log_in (card, slot, &ctx, ask, ask_data, error)
      || g_cancellable_set_error_if_cancelled (cancellable, error)
      || !prove_decryption (enc, &ctx, edesc, error)
      || g_cancellable_set_error_if_cancelled (cancellable, error))
    goto out;
  blob = make_blob (sign, enc, &ctx, error);
  /* the signature verifying with the signing cert proves the card holds its key */
  if (blob && !cm_ldap_smime_check (blob, signing, encryption, at, error))
    g_clear_pointer (&blob, g_bytes_unref);
out:
  cm_ldap_secret_free (ctx.pin);
  return blob;
}
