/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* login-krb5.c: Kerberos PKINIT with the card (MIT libkrb5 and its PKINIT plugin, which loads
 * the card's PKCS#11 module itself), the PIN passed by a responder, and the ticket in the
 * user's credential cache. */
#include "login.h"
#include "cm-private.h"
#include <krb5.h>
#include <string.h>

void
login_ticket_clear (LoginTicket *t)
{
  g_clear_pointer (&t->ccache, g_free);
  g_clear_pointer (&t->principal, g_free);
  g_clear_pointer (&t->realm, g_free);
}

typedef struct
{
  const LoginCard *card;
  LoginAskPin ask;
  gpointer data;
  GError *error; /* the PIN could not be asked */
  guint flags;   /* the token's PIN flags when the PIN was asked */
  gboolean asked;
  char *login_failed; /* the PKCS#11 login's failure, from libkrb5's trace */
} Responder;

/* libkrb5 reports a refused PIN only in its trace ("PKINIT PKCS11 C_Login failed: pin
 * incorrect"); its error is a generic pre-authentication failure. */
static void
on_trace (krb5_context ctx, const krb5_trace_info *info, void *data)
{
  Responder *r = data;
  const char *at;

  (void)ctx;
  if (info == NULL || info->message == NULL || r->login_failed)
    return;
  at = strstr (info->message, "C_Login failed: ");
  if (at)
    r->login_failed = g_strchomp (g_strdup (at + strlen ("C_Login failed: ")));
}

/* Kerberos asks for the token's PIN: answer for the one identity we gave it. */
static krb5_error_code
respond (krb5_context ctx, void *data, krb5_responder_context rctx)
{
  Responder *r = data;
  krb5_responder_pkinit_challenge *chl = NULL;
  krb5_error_code ret = krb5_responder_pkinit_get_challenge (ctx, rctx, &chl);

  if (ret != 0 || chl == NULL || chl->identities == NULL)
    {
      if (chl)
        krb5_responder_pkinit_challenge_free (ctx, rctx, chl);
      return ret;
    }
  for (int i = 0; ret == 0 && chl->identities[i]; i++)
    {
      krb5_responder_pkinit_identity *id = chl->identities[i];
      char *pin;

      r->flags = (guint)id->token_flags;
      if (r->flags & KRB5_RESPONDER_PKINIT_FLAGS_TOKEN_USER_PIN_LOCKED)
        {
          ret = KRB5_LIBOS_CANTREADPWD; /* never send a PIN to a blocked card */
          break;
        }
      pin = r->ask (r->card, r->flags, r->data, &r->error);
      if (pin == NULL)
        {
          ret = KRB5_LIBOS_PWDINTR;
          break;
        }
      r->asked = TRUE;
      ret = krb5_responder_pkinit_set_answer (ctx, rctx, id->identity, pin);
      cm_secret_free (pin); /* libkrb5 keeps a copy, which it wipes when it frees it */
    }
  krb5_responder_pkinit_challenge_free (ctx, rctx, chl);
  return ret;
}

static gboolean
pin_refused (const char *why)
{
  return why
         && (strstr (why, "incorrect") || strstr (why, "INCORRECT") || strstr (why, "len range")
             || strstr (why, "LEN_RANGE") || strstr (why, "invalid") || strstr (why, "INVALID"));
}

static gboolean
pin_locked (const char *why)
{
  return why && (strstr (why, "locked") || strstr (why, "LOCKED"));
}

/* One line for a failed login: what went wrong and what to do. */
static void
set_login_error (krb5_context ctx, krb5_error_code ret, Responder *r, const char *principal,
                 GError **error)
{
  const char *msg = krb5_get_error_message (ctx, ret);
  const char *reader = r->card->reader;

  if (r->error)
    g_propagate_error (error, g_steal_pointer (&r->error));
  else if ((r->flags & KRB5_RESPONDER_PKINIT_FLAGS_TOKEN_USER_PIN_LOCKED)
           || pin_locked (r->login_failed))
    g_set_error (error, CM_ERROR, CM_ERROR_UNSAFE,
                 "the PIN of the card in '%s' is blocked, no PIN was sent: have it unblocked "
                 "at a RAPIDS office (or with its PUK), then run cacmail login again",
                 reader);
  else if (r->asked && pin_refused (r->login_failed))
    {
      int left = login_card_pin_tries (reader);
      g_autofree char *tries = left == 0  ? g_strdup ("the PIN is now blocked")
                               : left > 0 ? g_strdup_printf ("%d %s left before the card locks",
                                                             left, left == 1 ? "try" : "tries")
                               : r->flags & KRB5_RESPONDER_PKINIT_FLAGS_TOKEN_USER_PIN_FINAL_TRY
                                 ? g_strdup ("one more wrong PIN locks the card")
                                 : g_strdup ("the card counts wrong PINs");
      g_set_error (error, CM_ERROR, CM_ERROR_FAILED,
                   "wrong PIN for the card in '%s' (%s): check the PIN and run cacmail login "
                   "again",
                   reader, tries);
    }
  else if (ret == KRB5_KDC_UNREACH || ret == KRB5_REALM_CANT_RESOLVE || ret == KRB5_REALM_UNKNOWN)
    g_set_error (error, CM_ERROR, CM_ERROR_ENVIRONMENT,
                 "cannot reach a KDC for %s (%s): check the realm's kdc in krb5.conf "
                 "(KRB5_CONFIG) and the network, or pass --realm",
                 principal, msg);
  else if (ret == KRB5KDC_ERR_C_PRINCIPAL_UNKNOWN)
    g_set_error (error, CM_ERROR, CM_ERROR_FAILED,
                 "the domain has no account for %s (the card's UPN): ask the domain "
                 "administrators to give your account this user principal name",
                 principal);
  else if (ret == KRB5KRB_AP_ERR_SKEW)
    g_set_error (error, CM_ERROR, CM_ERROR_ENVIRONMENT,
                 "this computer's clock differs from the KDC's (%s): set the clock right "
                 "(timedatectl set-ntp true), then run cacmail login again",
                 msg);
  else if (ret == KRB5KDC_ERR_CLIENT_NAME_MISMATCH || ret == KRB5KDC_ERR_CLIENT_NOT_TRUSTED
           || ret == KRB5KDC_ERR_CANT_VERIFY_CERTIFICATE || ret == KRB5KDC_ERR_INVALID_CERTIFICATE
           || ret == KRB5KDC_ERR_REVOKED_CERTIFICATE || ret == KRB5KDC_ERR_INCONSISTENT_KEY_PURPOSE)
    g_set_error (error, CM_ERROR, CM_ERROR_FAILED,
                 "the KDC refused the card's certificate for %s (%s): ask the domain "
                 "administrators to trust its CA and map it to your account",
                 principal, msg);
  else
    g_set_error (error, CM_ERROR, CM_ERROR_FAILED,
                 "Kerberos login as %s with the card in '%s' failed (%s): check krb5.conf's "
                 "pkinit_anchors (the KDC's CA) and that the domain accepts smart-card logon",
                 principal, reader, msg);
  krb5_free_error_message (ctx, msg);
}

static void
fill_ticket (krb5_context ctx, krb5_ccache cc, krb5_creds *creds, LoginTicket *out)
{
  char *name = NULL, *full = NULL;

  if (krb5_unparse_name (ctx, creds->client, &name) == 0)
    out->principal = g_strdup (name);
  krb5_free_unparsed_name (ctx, name);
  out->realm = g_strndup (creds->client->realm.data, creds->client->realm.length);
  if (krb5_cc_get_full_name (ctx, cc, &full) == 0)
    out->ccache = g_strdup (full);
  krb5_free_string (ctx, full);
  out->authtime = (guint32)creds->times.authtime;
  out->starttime
    = (guint32)(creds->times.starttime ? creds->times.starttime : creds->times.authtime);
  out->endtime = (guint32)creds->times.endtime;
  out->renew_till = (guint32)creds->times.renew_till;
}

static krb5_error_code
make_options (krb5_context ctx, const LoginCard *card, Responder *r, krb5_ccache cc,
              krb5_get_init_creds_opt **opt)
{
  static krb5_preauthtype pkinit_only[] = { KRB5_PADATA_PK_AS_REQ };
  g_autofree char *ident = g_strdup_printf ("PKCS11:module_name=%s:slotid=%lu:certid=%s",
                                            card->module, card->slot_id, card->cert_id);
  krb5_error_code ret = krb5_get_init_creds_opt_alloc (ctx, opt);

  if (ret)
    return ret;
  krb5_get_init_creds_opt_set_canonicalize (*opt, 1);              /* enterprise names (AD) */
  krb5_get_init_creds_opt_set_preauth_list (*opt, pkinit_only, 1); /* never a password */
  ret = krb5_get_init_creds_opt_set_pa (ctx, *opt, "X509_user_identity", ident);
  if (ret == 0)
    ret = krb5_get_init_creds_opt_set_responder (ctx, *opt, respond, r);
  if (ret == 0)
    ret = krb5_get_init_creds_opt_set_out_ccache (ctx, *opt, cc);
  return ret;
}

/* One AS exchange (krb5_init_creds_get): unlike krb5_get_init_creds_password it never tries
 * again with the "primary KDC" after a failure, which would send a refused PIN to the card a
 * second time. */
static krb5_error_code
get_creds (krb5_context ctx, krb5_principal client, krb5_get_init_creds_opt *opt, krb5_creds *creds)
{
  krb5_init_creds_context ictx = NULL;
  krb5_error_code ret = krb5_init_creds_init (ctx, client, NULL, NULL, 0, opt, &ictx);

  if (ret == 0)
    ret = krb5_init_creds_get (ctx, ictx);
  if (ret == 0)
    ret = krb5_init_creds_get_creds (ctx, ictx, creds);
  if (ictx)
    krb5_init_creds_free (ctx, ictx);
  return ret;
}

gboolean
login_krb5_pkinit (const LoginCard *card, const char *principal, const char *realm, LoginAskPin ask,
                   gpointer data, LoginTicket *out, GError **error)
{
  Responder r = { card, ask, data, NULL, 0, FALSE, NULL };
  g_autofree char *name = realm ? g_strdup_printf ("%s@%s", principal, realm) : NULL;
  krb5_context ctx = NULL;
  krb5_principal client = NULL;
  krb5_get_init_creds_opt *opt = NULL;
  krb5_ccache cc = NULL;
  krb5_creds creds;
  krb5_error_code ret;
  gboolean ok = FALSE;

  memset (&creds, 0, sizeof creds);
  if (krb5_init_context (&ctx) != 0)
    {
      g_set_error (error, CM_ERROR, CM_ERROR_ENVIRONMENT,
                   "Kerberos cannot start: check krb5.conf (KRB5_CONFIG) for errors");
      return FALSE;
    }
  krb5_set_trace_callback (ctx, on_trace, &r);
  ret = krb5_parse_name_flags (ctx, name ? name : principal, KRB5_PRINCIPAL_PARSE_ENTERPRISE,
                               &client);
  if (ret)
    {
      const char *msg = krb5_get_error_message (ctx, ret);
      g_set_error (error, CM_ERROR, CM_ERROR_ENVIRONMENT,
                   "cannot make a Kerberos name of %s (%s): set default_realm in krb5.conf "
                   "or pass --realm REALM",
                   principal, msg);
      krb5_free_error_message (ctx, msg);
      krb5_free_context (ctx);
      return FALSE;
    }
  ret = krb5_cc_default (ctx, &cc);
  if (ret == 0)
    ret = make_options (ctx, card, &r, cc, &opt);
  if (ret == 0)
    ret = get_creds (ctx, client, opt, &creds);
  if (ret == 0)
    {
      fill_ticket (ctx, cc, &creds, out);
      ok = TRUE;
    }
  else
    set_login_error (ctx, ret, &r, principal, error);
  g_clear_error (&r.error);
  g_free (r.login_failed);
  krb5_free_cred_contents (ctx, &creds);
  if (opt)
    krb5_get_init_creds_opt_free (ctx, opt);
  if (cc)
    krb5_cc_close (ctx, cc);
  krb5_free_principal (ctx, client);
  krb5_free_context (ctx);
  return ok;
}

/* The ticket-granting ticket of @cc's principal. */
static gboolean
find_tgt (krb5_context ctx, krb5_ccache cc, krb5_principal me, LoginTicket *out)
{
  krb5_cc_cursor cur;
  krb5_creds c;
  gboolean found = FALSE;

  if (krb5_cc_start_seq_get (ctx, cc, &cur) != 0)
    return FALSE;
  while (!found && krb5_cc_next_cred (ctx, cc, &cur, &c) == 0)
    {
      if (c.server->length == 2 && c.server->data[0].length == 6
          && memcmp (c.server->data[0].data, "krbtgt", 6) == 0
          && krb5_realm_compare (ctx, c.server, me))
        {
          krb5_free_principal (ctx, c.client);
          krb5_copy_principal (ctx, me, &c.client);
          fill_ticket (ctx, cc, &c, out);
          found = TRUE;
        }
      krb5_free_cred_contents (ctx, &c);
    }
  krb5_cc_end_seq_get (ctx, cc, &cur);
  return found;
}

gboolean
login_krb5_status (LoginTicket *out, GError **error)
{
  krb5_context ctx = NULL;
  krb5_ccache cc = NULL;
  krb5_principal me = NULL;
  char *full = NULL;
  gboolean ok = FALSE;

  if (krb5_init_context (&ctx) != 0)
    {
      g_set_error (error, CM_ERROR, CM_ERROR_ENVIRONMENT,
                   "Kerberos cannot start: check krb5.conf (KRB5_CONFIG) for errors");
      return FALSE;
    }
  if (krb5_cc_default (ctx, &cc) == 0)
    krb5_cc_get_full_name (ctx, cc, &full);
  if (cc && krb5_cc_get_principal (ctx, cc, &me) == 0)
    ok = find_tgt (ctx, cc, me, out);
  if (!ok)
    g_set_error (error, CM_ERROR, CM_ERROR_NOT_FOUND,
                 "no Kerberos ticket in %s: log in with cacmail login", full ? full : "the cache");
  krb5_free_string (ctx, full);
  krb5_free_principal (ctx, me);
  if (cc)
    krb5_cc_close (ctx, cc);
  krb5_free_context (ctx);
  return ok;
}

char *
login_krb5_ccache_name (void)
{
  krb5_context ctx = NULL;
  krb5_ccache cc = NULL;
  char *full = NULL, *out = NULL;

  if (krb5_init_context (&ctx) != 0)
    return NULL;
  if (krb5_cc_default (ctx, &cc) == 0 && krb5_cc_get_full_name (ctx, cc, &full) == 0)
    out = g_strdup (full);
  krb5_free_string (ctx, full);
  if (cc)
    krb5_cc_close (ctx, cc);
  krb5_free_context (ctx);
  return out;
}
