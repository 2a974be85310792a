/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cm-ldap.h: libcacmail-ldap, "Republish to GAL": publish the card's email signing and
 * encryption certificates to the user's entry in the organisation's LDAP address list, the way
 * Outlook's Publish to GAL does, and remove the stale ones. Include only this header.
 *
 * Blocking calls end in _sync and take a GCancellable: it ends a network step at once (TCP
 * connect, TLS handshake, bind, search) and is checked between card operations; each network
 * step also ends at its deadline ("timeout"). Secrets (password, PIN) are asked through a
 * CmLdapSecretFunc when needed, used once, wiped and freed: the library never keeps or logs one.
 * See docs/ldap.md. */
#pragma once

#include <gio/gio.h>
#include <json-glib/json-glib.h>
#include <cacmail.h>

G_BEGIN_DECLS

#define CM_LDAP_ERROR (cm_ldap_error_quark ())

/* Stable codes; messages are one line naming the problem and the fix. */
typedef enum
{
  CM_LDAP_ERROR_FAILED,     /* anything not covered below */
  CM_LDAP_ERROR_CONFIG,     /* a setting is missing or malformed (config file or option) */
  CM_LDAP_ERROR_CONNECT,    /* the server cannot be reached or went away */
  CM_LDAP_ERROR_TLS,        /* TLS refused (StartTLS) or the server cert cannot be verified */
  CM_LDAP_ERROR_AUTH,       /* bind failed: wrong password, no Kerberos ticket, bad client cert */
  CM_LDAP_ERROR_NOT_FOUND,  /* no entry for the address */
  CM_LDAP_ERROR_NOT_UNIQUE, /* several entries for the address */
  CM_LDAP_ERROR_REFUSED,    /* refused for safety (section "Refusals" of docs/ldap.md) */
  CM_LDAP_ERROR_CONFLICT,   /* the entry changed since it was read: nothing was written */
  CM_LDAP_ERROR_CARD,       /* the card, its NSS module or database is missing or failed */
  CM_LDAP_ERROR_PIN,        /* the card refused the PIN */
  CM_LDAP_ERROR_SERVER,     /* the server refused the change (rights, schema) */
  CM_LDAP_ERROR_VERIFY,     /* what the server holds after the write is not what was written */
} CmLdapError;

GQuark cm_ldap_error_quark (void);

/* ---- configuration ------------------------------------------------------------------------ */

/* Settings, by the names of the config file's [ldap] keys and of the CLI options:
 *   uri            LDAP URIs (ldap:// = StartTLS, ldaps://), space separated, tried in order
 *   base           search base DN
 *   entry-dn       the user's entry; when unset, found under base by filter
 *   filter         search filter with one %s for the (escaped) address; default (mail=%s)
 *   bind           simple | external | gssapi (default simple)
 *   bind-dn        DN for a simple bind (default: the entry's DN)
 *   password-file  file holding the simple-bind password (else it is asked)
 *   client-cert, client-key   PEM files for SASL EXTERNAL over TLS
 *   ca-file        CA certificates (PEM) the server cert must chain to (default: see
 *                  cm_ldap_default_ca_file)
 *   insecure       true = do not verify the server certificate (TLS is still required)
 *   allow-plain-ldap  true = go on without TLS when a server refuses StartTLS (only for tests;
 *                  a GSSAPI bind with a SASL security layer of 56 bits or more needs neither)
 *   nssdb          NSS database directory holding the card's PKCS#11 module and trusted CAs
 *   token          NSS token label of the card (default: the token holding the picked keys)
 *   email          the address to publish for
 *   timeout        deadline in seconds of each network step: TCP connect, TLS handshake,
 *                  bind, search, modify (default 15); a URI that does not answer in time is
 *                  given up for the next one
 *   guard          auto (default: assert the entryCSN where the server offers the assertion
 *                  control, else rely on the exact-value deletes) or values (never assert)
 *   domain         DNS domain (example.mil): "uri" from its SRV records _ldap._tcp.DOMAIN when
 *                  unset, "realm" its upper case when unset
 *   realm          Kerberos realm / UPN suffix for a bare bind-dn user name on Active Directory */
typedef struct _CmLdapConfig CmLdapConfig;

CmLdapConfig *cm_ldap_config_new (void);
void cm_ldap_config_free (CmLdapConfig *cfg);

/* $XDG_CONFIG_HOME/cacmail/cacmail.conf. Caller frees. */
char *cm_ldap_config_default_path (void);

/* The CA bundle the NSS helper maintains: $XDG_DATA_HOME/cacmail/ca-bundle.pem
 * ($CACMAIL_STATE_DIR/ca-bundle.pem when set). Caller frees. */
char *cm_ldap_default_ca_file (void);

/* Read the [ldap] group of a GLib key file. A missing file is fine unless @must_exist. Unknown
 * keys or bad values are CM_LDAP_ERROR_CONFIG naming the file and the key. */
gboolean cm_ldap_config_load_file (CmLdapConfig *cfg, const char *path, gboolean must_exist,
                                   GError **error);

/* Set one setting (command-line options override the file this way). @value NULL unsets it.
 * An unknown @key or a bad value is CM_LDAP_ERROR_CONFIG. */
gboolean cm_ldap_config_set (CmLdapConfig *cfg, const char *key, const char *value, GError **error);

/* The setting's value or NULL; owned by @cfg until it is set again. */
const char *cm_ldap_config_get (CmLdapConfig *cfg, const char *key);

/* ---- secrets and progress ----------------------------------------------------------------- */

typedef enum
{
  CM_LDAP_SECRET_PASSWORD, /* the simple-bind password for @subject (a DN) */
  CM_LDAP_SECRET_PIN,      /* the card PIN for @subject (a token label) */
} CmLdapSecretKind;

/* Return a newly allocated secret (g_malloc) or NULL with @error (e.g. the user cancelled).
 * The library wipes it with explicit_bzero() and frees it right after use. */
typedef char *(*CmLdapSecretFunc) (CmLdapSecretKind kind, const char *subject, gpointer user_data,
                                   GError **error);

/* Wipe and free a secret (NULL is fine). */
void cm_ldap_secret_free (char *secret);

/* Read a secret from the first line of @path (trailing CR/LF dropped), like every secret file
 * of cacmail: a file other users may read or change is CM_LDAP_ERROR_REFUSED ("chmod 600"); an
 * empty, unreadable or oversized file or one that is not a regular file (a FIFO, a device) is
 * CM_LDAP_ERROR_CONFIG naming it. Caller frees with cm_ldap_secret_free. */
char *cm_ldap_secret_read_file (const char *path, GError **error);

typedef enum
{
  CM_LDAP_STEP_FIND_ENTRY, /* connect, bind, find and read the entry */
  CM_LDAP_STEP_READ_CARD,  /* open the NSS database and the card, pick the certs */
  CM_LDAP_STEP_SIGN,       /* PIN, proof of both keys, sign and check the blob */
  CM_LDAP_STEP_WRITE,      /* the one modify operation */
  CM_LDAP_STEP_VERIFY,     /* read back and compare */
  CM_LDAP_N_STEPS,
} CmLdapStep;

const char *cm_ldap_step_to_string (CmLdapStep step); /* "find entry", ... static */

/* @done FALSE when a step starts, TRUE when it ends (with its duration in ms). */
typedef void (*CmLdapProgressFunc) (CmLdapStep step, gboolean done, double ms, gpointer user_data);

/* ---- republish ---------------------------------------------------------------------------- */

typedef enum
{
  CM_LDAP_REPUBLISH_DEFAULT = 0,
  CM_LDAP_REPUBLISH_DRY_RUN = 1 << 0,   /* plan only: nothing is written, no PIN asked */
  CM_LDAP_REPUBLISH_UNPUBLISH = 1 << 1, /* remove what cacmail published; no card needed */
} CmLdapRepublishFlags;

typedef struct _CmLdapResult CmLdapResult;

/* Republish the certificates of the card for the address set in @cfg ("email"): find the
 * entry, pick the current signing and encryption certs on the card (refusing anything unsafe),
 * sign the userSMIMECertificate blob with the card (PIN through @ask), write everything in one
 * guarded modify, read it back. @at is the time the certificates must be valid at
 * (cm_time_now() normally). @ask and @progress may be NULL (then a needed secret is an error).
 * NSS must be initialised (cm_init) or be the application's. Returns a result (caller frees
 * with cm_ldap_result_free) or NULL with @error (CM_LDAP_ERROR, or G_IO_ERROR_CANCELLED); on
 * error nothing was written unless the error is CM_LDAP_ERROR_VERIFY. */
CmLdapResult *cm_ldap_republish_sync (CmLdapConfig *cfg, CmLdapRepublishFlags flags, gint64 at,
                                      CmLdapSecretFunc ask, gpointer ask_data,
                                      CmLdapProgressFunc progress, gpointer progress_data,
                                      GCancellable *cancellable, GError **error);

/* Getters return data owned by @result. */
const char *cm_ldap_result_get_dn (CmLdapResult *result);
const char *cm_ldap_result_get_email (CmLdapResult *result);
gboolean cm_ldap_result_get_written (CmLdapResult *result);   /* a modify was sent and applied */
gboolean cm_ldap_result_get_unchanged (CmLdapResult *result); /* nothing to do (unpublish) */
gboolean cm_ldap_result_get_reordered (CmLdapResult *result); /* server returned another order */
gboolean cm_ldap_result_get_insecure (CmLdapResult *result);  /* no TLS nor SASL layer */
double cm_ldap_result_get_ms (CmLdapResult *result, CmLdapStep step);
/* The kind of server, from its root DSE: "active-directory" or "ldap" (static), and one line
 * saying which rules cacmail followed there (static). */
const char *cm_ldap_result_get_server (CmLdapResult *result);
const char *cm_ldap_result_get_rules (CmLdapResult *result);
/* userCertificate values someone else added meanwhile, kept behind ours (Active Directory). */
guint cm_ldap_result_get_foreign (CmLdapResult *result);
/* The userCertificate values before and as planned (CmCert*; a value that is not a certificate
 * is skipped in these lists but still deleted or kept as planned). */
GPtrArray *cm_ldap_result_get_old_certs (CmLdapResult *result);
GPtrArray *cm_ldap_result_get_new_certs (CmLdapResult *result);
gboolean cm_ldap_result_get_old_smime (CmLdapResult *result); /* the entry had a blob */
GBytes *cm_ldap_result_get_new_smime (CmLdapResult *result);  /* planned blob, or NULL */
/* The whole result as JSON (docs/ldap.md, "JSON"). Caller frees with json_node_unref. */
JsonNode *cm_ldap_result_to_json (CmLdapResult *result);
void cm_ldap_result_free (CmLdapResult *result);

/* Check a userSMIMECertificate blob: a CMS SignedData with absent content, one signer whose
 * signature over empty content verifies with @signing, holding @encryption, SMIMECapabilities,
 * id-aa-encrypKeyPref and Microsoft's encryption-key preference naming @encryption, the
 * signer's chain trusted now in NSS (@at: reserved). FALSE with CM_LDAP_ERROR_REFUSED naming what
 * is wrong. */
gboolean cm_ldap_smime_check (GBytes *blob, CmCert *signing, CmCert *encryption, gint64 at,
                              GError **error);

/* ---- directory settings: test, then save (cm-ldap-setup.c) ------------------------------- */

/* The keys `cacmail setup` writes: uri, base, bind (and ca-file when set). Static. */
const char *const *cm_ldap_config_setup_keys (void);

/* Test the directory settings of @cfg before they are saved: connect to "uri" with TLS and the
 * server certificate VERIFIED ("insecure" and "allow-plain-ldap" are refused: a setting saved
 * for good must not skip them), bind as "bind" says when that needs no secret (gssapi, external;
 * simple: no bind, anonymous read), and read the "base" entry (a server that refuses anonymous
 * reads passes: it answered over verified TLS). *@report (nullable; caller frees) gets one line
 * saying what was checked. FALSE with CM_LDAP_ERROR (CONFIG, CONNECT, TLS, AUTH, SERVER) naming
 * the problem and the fix, or G_IO_ERROR_CANCELLED. */
gboolean cm_ldap_config_test_sync (CmLdapConfig *cfg, char **report, GCancellable *cancellable,
                                   GError **error);

/* What saving @keys (NULL: cm_ldap_config_setup_keys) of @cfg into the config file @path (NULL:
 * the default) would change: a new array (caller unrefs) of lines "KEY: OLD -> NEW" (or "KEY:
 * NEW" when unset); empty when the file holds these values already. NULL with @error when the
 * file exists and cannot be read (CM_LDAP_ERROR_CONFIG, naming it). */
GPtrArray *cm_ldap_config_plan_save (CmLdapConfig *cfg, const char *path, const char *const *keys,
                                     GError **error);

/* Save @keys (as above) of @cfg into @path (NULL: the default): every other key, group and
 * comment is kept; the file is replaced atomically (a temporary file, mode 0600, renamed over
 * it; the folder made 0700 when missing), the previous one kept as "@path.bak". *@backup
 * (nullable; caller frees) gets the backup's path, or NULL when there was no file. Nothing is
 * written when nothing would change. FALSE with CM_LDAP_ERROR_CONFIG naming the file and the
 * fix. */
gboolean cm_ldap_config_save (CmLdapConfig *cfg, const char *path, const char *const *keys,
                              char **backup, GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (CmLdapConfig, cm_ldap_config_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CmLdapResult, cm_ldap_result_free)

G_END_DECLS
