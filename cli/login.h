/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* login.h: the pieces of `cacmail login` (cacmail-login, docs/login.md): the card's token and
 * login certificate (login-card.c), Kerberos PKINIT and the credential cache (login-krb5.c). */
#pragma once

#include "cli.h"

/* The card token that logs in and the certificate it logs in with. */
typedef struct
{
  char *module;   /* PKCS#11 module path (OpenSC) */
  gulong slot_id; /* the token's slot ID in this run's module: found by reader, never by label */
  char *reader;   /* the slot description: the reader's name */
  char *token;    /* token label (two persona cards share one: shown, never used to find it) */
  char *identity; /* cm_nss_token_identity(): token:MAKER/MODEL/SERIAL */
  char *cert_id;  /* the login cert's CKA_ID, lowercase hex */
  /* the PIV Authentication certificate core's login pick chose (strings: NSS is shut down
   * before Kerberos loads the module, and a CmCert holds an NSS certificate) */
  char *sha256, *subject, *upn; /* upn NULL when the cert has none */
} LoginCard;

void login_card_clear (LoginCard *card);

/* Find the present card token (in @reader when set, else the only one), read its certs without
 * a PIN, pick the login cert at @at (core's login pick) and refuse an expired or missing one
 * before the card is asked for anything else. The module is unloaded again before returning,
 * so that Kerberos can load it. Errors are one line with the fix (CM_ERROR domain). */
gboolean login_card_find (const char *reader, gint64 at, LoginCard *card, GError **error);

/* Wrong PINs left on the card in @reader (PC/SC, no PIN sent), or -1 when unknown. */
int login_card_pin_tries (const char *reader);

/* Asks for the PIN of @card (nullable flags from the token: KRB5_RESPONDER_PKINIT_FLAGS_*).
 * Returns a secret the caller wipes (cm_secret_free), or NULL with @error. */
typedef char *(*LoginAskPin) (const LoginCard *card, guint flags, gpointer data, GError **error);

/* A ticket in a credential cache. */
typedef struct
{
  char *ccache;    /* TYPE:RESIDUAL */
  char *principal; /* the client principal, unparsed */
  char *realm;
  gint64 authtime, starttime, endtime, renew_till; /* Unix seconds; 0 = not set */
} LoginTicket;

void login_ticket_clear (LoginTicket *t);

/* PKINIT with @card's login certificate as @principal (the cert's UPN, an enterprise name, in
 * @realm or the default realm), the PIN through @ask; the ticket goes to the default
 * credential cache (KRB5CCNAME honoured). @warned is set when the token said its PIN count is
 * low. Errors are one line with the fix; a refused PIN is CM_ERROR_FAILED with "wrong PIN". */
gboolean login_krb5_pkinit (const LoginCard *card, const char *principal, const char *realm,
                            LoginAskPin ask, gpointer data, LoginTicket *out, GError **error);

/* The ticket-granting ticket in the default credential cache. FALSE with @error
 * (CM_ERROR_NOT_FOUND) when there is none. */
gboolean login_krb5_status (LoginTicket *out, GError **error);

/* The default credential cache's name (TYPE:RESIDUAL); caller frees. NULL if Kerberos fails. */
char *login_krb5_ccache_name (void);
