/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cm-ldap-card.c: the card through NSS and its PKCS#11 module (OpenSC): list the certs that
 * have a key, pick and check the ones to publish, prove both keys, sign the
 * userSMIMECertificate blob. */
#include "cm-ldap-private.h"
#include "cm-der.h"
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
  CmInventory *inv; /* every cert NSS sees, each with its card (core's one NSS reader) */
};

/* What the NSS password callback needs while one signature is made. */
typedef struct
{
  char *pin; /* asked once per sign step, wiped at its end */
  gboolean asked_again;
} PinCtx;

void
cm_ldap_card_free (CmLdapCard *card)
{
  if (card == NULL)
    return;
  cm_inventory_free (card->inv);
  g_clear_pointer (&card->db, cm_nss_db_free);
  g_free (card->nssdb);
  g_free (card);
}

static const char *
nss_error_name (void)
{
  const char *name = PR_ErrorToName (PR_GetError ());

  return name ? name : "unknown NSS error";
}

/* The certs of the application's NSS (Evolution's): its database's own token and every card
 * token loaded in the process. */
static gboolean
read_application_nss (CmInventory *inv, GCancellable *cancellable, GError **error)
{
  g_autoptr (GPtrArray) tokens = cm_nss_list_card_tokens ();
  PK11SlotInfo *internal = PK11_GetInternalKeySlot ();
  gboolean ok
    = internal == NULL || cm_nss_add_token_certs_sync (inv, internal, NULL, cancellable, error);

  if (internal)
    PK11_FreeSlot (internal);
  for (guint i = 0; ok && i < tokens->len; i++)
    ok = cm_nss_add_token_certs_sync (inv, g_ptr_array_index (tokens, i), NULL, cancellable, error);
  return ok;
}

CmLdapCard *
cm_ldap_card_open_sync (CmLdapConfig *cfg, GCancellable *cancellable, GError **error)
{
  g_autoptr (CmLdapCard) card = g_new0 (CmLdapCard, 1);
  g_autoptr (GError) local = NULL;
  const char *db = cm_ldap_config_get (cfg, "nssdb");
  gboolean ok;

  card->inv = cm_inventory_new ();
  if (db)
    {
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
      ok = cm_nss_db_add_certs_sync (card->db, card->inv, cancellable, &local);
    }
  else if (!NSS_IsInitialized ())
    {
      g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_CARD,
                   "NSS is not initialised: pass --nssdb DIR (the database holding the card's "
                   "module)");
      return NULL;
    }
  else
    ok = read_application_nss (card->inv, cancellable, &local);
  if (!ok)
    {
      g_propagate_error (error, g_steal_pointer (&local));
      return NULL;
    }
  if (cm_inventory_get_cards (card->inv)->len == 0 && !cm_ldap_config_get (cfg, "token"))
    {
      GPtrArray *problems = card->db ? cm_nss_db_get_module_problems (card->db) : NULL;
      g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_CARD,
                   "no card was found%s%s%s%s: insert the card and register its module there "
                   "(cacmail nss register%s%s)",
                   card->nssdb ? " through the NSS database " : "", card->nssdb ? card->nssdb : "",
                   problems && problems->len ? "; " : "",
                   problems && problems->len ? (char *)g_ptr_array_index (problems, 0) : "",
                   card->nssdb ? " --nssdb " : "", card->nssdb ? card->nssdb : "");
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

/* The card @c sits on (borrowed), or NULL for a cert on no card. */
static CmCard *
card_of (CmLdapCard *card, CmCert *c)
{
  g_autoptr (GPtrArray) cards = cm_inventory_cards_of (card->inv, c);
  return cards->len ? g_ptr_array_index (cards, 0) : NULL;
}

/* The token name @c was read from (the first NSS source's). */
static const char *
token_of (CmCert *c)
{
  GPtrArray *sources = cm_cert_get_sources (c);
  for (guint i = 0; i < sources->len; i++)
    {
      CmSource *s = g_ptr_array_index (sources, i);
      if (s->kind == CM_SOURCE_NSS && s->token)
        return s->token;
    }
  return "?";
}

/* The token that holds @c's key: its card's token (found by the card's identity, never by
 * label), else the token it was read from. New reference, or NULL. */
static PK11SlotInfo *
key_slot (CmLdapCard *card, CmCert *c)
{
  CmCard *on = card_of (card, c);
  const char *token = token_of (c);

  if (on)
    return cm_nss_find_token (cm_card_get_identity (on));
  if (strcmp (token, CM_NSS_DB_TOKEN_NAME) == 0)
    return card->db ? PK11_ReferenceSlot (cm_nss_db_get_slot (card->db))
                    : PK11_GetInternalKeySlot ();
  return PK11_FindSlotByName (token);
}

/* The NSS certificate of @c (new reference), or NULL: the card token's own object where NSS
 * shows it without a login (friendly slots, or after the PIN), else the one NSS knows, else a
 * temporary one decoded from the DER (enough to verify the chain; the key is found after the
 * PIN either way). */
static CERTCertificate *
nss_cert (CmLdapCard *card, CmCert *c)
{
  GBytes *der = cm_cert_get_der (c);
  SECItem item = { siDERCertBuffer, (unsigned char *)g_bytes_get_data (der, NULL),
                   (unsigned int)g_bytes_get_size (der) };
  PK11SlotInfo *slot = key_slot (card, c);
  CERTCertificate *cert = NULL;

  if (slot && (!PK11_NeedLogin (slot) || PK11_IsLoggedIn (slot, NULL) || PK11_IsFriendly (slot)))
    cert = PK11_FindCertFromDERCertItem (slot, &item, NULL);
  if (slot)
    PK11_FreeSlot (slot);
  if (cert == NULL)
    cert = CERT_FindCertByDERCert (CERT_GetDefaultCertDB (), &item);
  if (cert == NULL)
    cert = CERT_NewTempCertificate (CERT_GetDefaultCertDB (), &item, NULL, PR_FALSE, PR_TRUE);
  return cert;
}

static gboolean
check_trust (CmLdapCard *card, CmCert *c, SECCertUsage usage, const char *what, gint64 at,
             GError **error)
{
  CERTCertificate *cert = nss_cert (card, c);
  g_autofree char *desc = describe (c);
  gboolean ok = cert
                && CERT_VerifyCert (CERT_GetDefaultCertDB (), cert, PR_TRUE, usage,
                                    (PRTime)at * PR_USEC_PER_SEC, NULL, NULL)
                     == SECSuccess;

  if (cert)
    CERT_DestroyCertificate (cert);
  if (!ok)
    g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_REFUSED,
                 "nothing published: the %s cert (%s) does not chain to a trusted root in %s (%s): "
                 "trust the issuing root CA there (cacmail nss trust ROOT.crt%s%s)",
                 what, desc, card->nssdb ? card->nssdb : "the NSS database", nss_error_name (),
                 card->nssdb ? " --nssdb " : "", card->nssdb ? card->nssdb : "");
  return ok;
}

/* @c was read from the token named @want (of all its NSS sources). */
static gboolean
on_token (CmCert *c, const char *want)
{
  GPtrArray *sources = cm_cert_get_sources (c);
  for (guint i = 0; i < sources->len; i++)
    {
      CmSource *s = g_ptr_array_index (sources, i);
      if (s->kind == CM_SOURCE_NSS && g_strcmp0 (s->token, want) == 0)
        return TRUE;
    }
  return FALSE;
}

/* The picks' problems that make publishing wrong whatever the certs: the address on two
 * personas, or persona IDs in conflict. */
static gboolean
refuse_problems (CmPicks *picks, GError **error)
{
  GPtrArray *problems = cm_picks_get_problems (picks);
  static const char *const blocking[] = { "email-shared-by-personas", "persona-id-conflict" };

  for (guint i = 0; i < problems->len; i++)
    {
      CmProblem *p = g_ptr_array_index (problems, i);
      for (gsize j = 0; j < G_N_ELEMENTS (blocking); j++)
        if (strcmp (cm_problem_get_code (p), blocking[j]) == 0)
          {
            g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_REFUSED,
                         "nothing published: %s (%s): %s", cm_problem_get_message (p),
                         cm_problem_get_code (p), cm_problem_get_hint (p));
            return TRUE;
          }
    }
  return FALSE;
}

/* Both certs must sit on one card (or, with --token, on that token). */
static gboolean
check_place (CmLdapCard *card, const char *want, CmCert *both[2], const char *email, GError **error)
{
  const char *what[] = { "signing", "encryption" };
  CmCard *cards[] = { card_of (card, both[0]), card_of (card, both[1]) };

  for (guint i = 0; i < 2; i++)
    {
      g_autofree char *desc = describe (both[i]);
      const char *token = token_of (both[i]);

      if (want && !on_token (both[i], want))
        {
          g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_REFUSED,
                       "nothing published: the %s cert for %s (%s) is on token '%s', not on "
                       "'%s': insert the card that holds the current certs for this address, or "
                       "pass --token '%s'",
                       what[i], email, desc, token, want, token);
          return FALSE;
        }
      if (!want && cards[i] == NULL)
        {
          g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_REFUSED,
                       "nothing published: the %s cert for %s (%s) has its key in the NSS "
                       "database '%s', not on a card: insert the card that holds the current "
                       "certs (cacmail publishes a card's own certs; --token '%s' overrides)",
                       what[i], email, desc, token, token);
          return FALSE;
        }
      if (!want && cards[1 - i] && cards[i] != cards[1 - i])
        {
          g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_REFUSED,
                       "nothing published: the %s cert for %s (%s) is on another card (%s) than "
                       "the %s cert (%s): insert only the card that holds both current certs "
                       "for this address",
                       what[i], email, desc, cm_card_get_identity (cards[i]), what[1 - i],
                       cm_card_get_identity (cards[1 - i]));
          return FALSE;
        }
    }
  return TRUE;
}

gboolean
cm_ldap_card_pick (CmLdapCard *card, CmLdapConfig *cfg, const char *email, gint64 at,
                   CmCert **signing, CmCert **encryption, GError **error)
{
  g_autoptr (CmPicks) picks = cm_select_for_email (card->inv, email, at, NULL);
  CmCert *s = cm_picks_get_signing (picks), *e = cm_picks_get_encryption (picks);
  CmCert *both[] = { s, e };
  const char *what[] = { "signing", "encryption" };

  if (refuse_problems (picks, error))
    return FALSE;
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
    if (!cm_cert_is_valid_at (both[i], at) || !cm_cert_has_email (both[i], email))
      {
        g_autofree char *desc = describe (both[i]);
        g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_REFUSED,
                     "nothing published: the %s cert (%s) is not valid now for %s: renew it",
                     what[i], desc, email);
        return FALSE;
      }
  if (!check_place (card, cm_ldap_config_get (cfg, "token"), both, email, error)
      || !check_trust (card, s, certUsageEmailSigner, "signing", at, error)
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
  const char *token = PK11_IsInternal (slot) ? CM_NSS_DB_TOKEN_NAME : PK11_GetTokenName (slot);

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

/* The DER of @t (read by cm_ber_read) appended to @out: definite minimal lengths, the
 * constructed contents rewritten element by element. */
static gboolean
write_der (const CmBerTlv *t, GByteArray *out, int depth)
{
  g_autoptr (GByteArray) body = g_byte_array_new ();
  guint8 l[1 + sizeof (guint)];
  guint n = 0;

  if (!(t->h.id & 0x20))
    g_byte_array_append (body, t->body.p, (guint)t->body.len);
  else
    for (CmDer rest = t->body; rest.len;)
      {
        CmBerTlv child;
        if (!cm_ber_read (&rest, CM_BER_INDEFINITE | CM_BER_HIGH_TAG_NUMBERS, depth + 1, &child)
            || !write_der (&child, body, depth + 1))
          return FALSE;
      }
  g_byte_array_append (out, t->all.p, (guint)t->h.id_len);
  if (body->len < 0x80)
    l[n++] = (guint8)body->len;
  else
    {
      guint k = 0;
      for (guint v = body->len; v; v >>= 8)
        k++;
      l[n++] = (guint8)(0x80 | k);
      for (guint i = 0; i < k; i++)
        l[n++] = (guint8)(body->len >> (8 * (k - 1 - i)));
    }
  g_byte_array_append (out, l, n);
  g_byte_array_append (out, body->data, body->len);
  return TRUE;
}

gsize
cm_ldap_ber_to_der (const guint8 *in, gsize len, GByteArray *out, int depth)
{
  CmDer cur = cm_der_init (in, len);
  CmBerTlv t;

  if (!cm_ber_read (&cur, CM_BER_INDEFINITE | CM_BER_HIGH_TAG_NUMBERS, depth, &t)
      || t.all.len > G_MAXUINT / 2 || !write_der (&t, out, depth))
    return 0;
  return t.all.len;
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
    if (cm_ldap_ber_to_der (out.data, out.len, der, 0) == out.len)
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
  CERTCertificate *sign = NULL, *enc = NULL;
  PK11SlotInfo *slot = key_slot (card, signing);
  g_autofree char *edesc = describe (encryption);
  GBytes *blob = NULL;

  if (slot == NULL)
    {
      g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_CARD,
                   "the card was removed while it was being read: insert it again and retry");
      goto out;
    }
  if (!log_in (card, slot, &ctx, ask, ask_data, error)
      || g_cancellable_set_error_if_cancelled (cancellable, error))
    goto out;
  /* after the PIN, NSS shows the token's own objects, which it ties to the card's keys */
  sign = nss_cert (card, signing);
  enc = nss_cert (card, encryption);
  if (sign == NULL || enc == NULL)
    {
      g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_CARD,
                   "NSS cannot find the card's certificates after the PIN (%s): check that the "
                   "card is still in the reader",
                   nss_error_name ());
      goto out;
    }
  if (!prove_decryption (enc, &ctx, edesc, error)
      || g_cancellable_set_error_if_cancelled (cancellable, error))
    goto out;
  blob = make_blob (sign, enc, &ctx, error);
  /* the signature verifying with the signing cert proves the card holds its key */
  if (blob && !cm_ldap_smime_check (blob, signing, encryption, at, error))
    g_clear_pointer (&blob, g_bytes_unref);
out:
  cm_ldap_secret_free (ctx.pin);
  if (sign)
    CERT_DestroyCertificate (sign);
  if (enc)
    CERT_DestroyCertificate (enc);
  if (slot)
    PK11_FreeSlot (slot);
  return blob;
}
