/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cm-tb.h: libcacmail-thunderbird, Thunderbird's S/MIME identity settings and card login
 * compared with cacmail's picks and fixed in the profile (prefs.js, ClientAuthRememberList.bin)
 * while Thunderbird is closed, with backups for undo. No GTK: `cacmail thunderbird` and the
 * add-on's native messaging host both call this. Prefix cm_tb_. docs/thunderbird.md. */
#pragma once

#include <cacmail.h>
#include <cm-nssdb.h>

G_BEGIN_DECLS

/* Errors of this library beyond CM_ERROR's (which it uses for the rest). */
#define CM_TB_ERROR (cm_tb_error_quark ())

typedef enum
{
  CM_TB_ERROR_CONFLICT, /* a profile file changed while cacmail worked: nothing was written */
} CmTbError;

GQuark cm_tb_error_quark (void);

/* ---- prefs.js (cm-tb-prefs.c) ----
 * Thunderbird's own grammar (libpref): `user_pref("name", value);` statements (also pref,
 * sticky_pref, lockPref), values string (single or double quoted, escapes \" \' \\ \n \r \xNN
 * \uNNNN), integer (32-bit, optional sign) or true/false; comments #, // and / * * /. A file
 * that does not parse is refused whole, with the line number. Changes splice the text: every
 * byte outside a changed statement stays as it was. */

typedef enum
{
  CM_TB_PREF_UNSET, /* not in the file (Thunderbird's default applies) */
  CM_TB_PREF_STRING,
  CM_TB_PREF_INT,
  CM_TB_PREF_BOOL,
} CmTbPrefType;

typedef struct
{
  CmTbPrefType type;
  char *string; /* CM_TB_PREF_STRING: the decoded bytes (UTF-8 as Thunderbird keeps them) */
  gint32 integer;
  gboolean boolean;
} CmTbPrefValue;

void cm_tb_pref_value_clear (CmTbPrefValue *value);
void cm_tb_pref_value_copy (CmTbPrefValue *dst, const CmTbPrefValue *src);
gboolean cm_tb_pref_value_equal (const CmTbPrefValue *a, const CmTbPrefValue *b);
/* The value as prefs.js writes it: "\"text\"" (Thunderbird's escapes), "42", "true"; NULL for
 * UNSET. Caller frees. */
char *cm_tb_pref_value_to_js (const CmTbPrefValue *value);
/* A JSON value (string, number, boolean) or null for UNSET. New node. */
JsonNode *cm_tb_pref_value_to_json (const CmTbPrefValue *value);
/* The reverse; FALSE for arrays, objects, fractions and integers beyond 32 bits. */
gboolean cm_tb_pref_value_from_json (JsonNode *node, CmTbPrefValue *value);

typedef struct _CmTbPrefs CmTbPrefs;

/* An empty prefs file. Free with cm_tb_prefs_free. */
CmTbPrefs *cm_tb_prefs_new (void);
/* Parse @len bytes of @text; @filename names it in errors. CM_ERROR_BAD_INPUT "FILE line N:
 * ..." when it does not parse. */
CmTbPrefs *cm_tb_prefs_parse (const char *text, gsize len, const char *filename, GError **error);
/* Read and parse @path; a missing file is an empty one (a profile Thunderbird never closed). */
CmTbPrefs *cm_tb_prefs_load (const char *path, GError **error);
void cm_tb_prefs_free (CmTbPrefs *prefs);

/* The value of @name (its last statement wins, as in Thunderbird); owned by @prefs, valid until
 * the next change. Never NULL: type UNSET when absent. */
const CmTbPrefValue *cm_tb_prefs_get (CmTbPrefs *prefs, const char *name);
/* The string value, or NULL when absent or not a string. Owned by @prefs. */
const char *cm_tb_prefs_get_string (CmTbPrefs *prefs, const char *name);
/* The integer value, or @fallback when absent or not an integer. */
gint32 cm_tb_prefs_get_int (CmTbPrefs *prefs, const char *name, gint32 fallback);
gboolean cm_tb_prefs_get_bool (CmTbPrefs *prefs, const char *name, gboolean fallback);

/* Set @name to @value: the value of its last statement is replaced in place; a new statement
 * `user_pref("name", value);` goes on its own line where Thunderbird's sorted order puts it;
 * UNSET removes every statement of @name (with its line when the line holds nothing else). */
void cm_tb_prefs_set (CmTbPrefs *prefs, const char *name, const CmTbPrefValue *value);
void cm_tb_prefs_set_string (CmTbPrefs *prefs, const char *name, const char *value);
void cm_tb_prefs_set_int (CmTbPrefs *prefs, const char *name, gint32 value);

/* The names set in the file that start with @prefix ("" for all), sorted, each once. Caller
 * unrefs (char*). */
GPtrArray *cm_tb_prefs_list_names (CmTbPrefs *prefs, const char *prefix);

/* The file's bytes now; owned by @prefs. */
const char *cm_tb_prefs_get_text (CmTbPrefs *prefs, gsize *len);

/* Write @len bytes to @path atomically (a temporary file in the same folder, fsync, rename),
 * keeping the old file's permissions (0600 for a new file); a symlink's target is replaced. */
gboolean cm_tb_write_file_atomic (const char *path, const char *data, gsize len, GError **error);

/* ---- one pref change (what a fix or login sets, what undo restores) ---- */

typedef struct
{
  char *name;
  CmTbPrefValue old_value; /* before (UNSET: absent) */
  CmTbPrefValue new_value; /* after (UNSET: removed) */
} CmTbPrefChange;

CmTbPrefChange *cm_tb_pref_change_new (const char *name, const CmTbPrefValue *old_value,
                                       const CmTbPrefValue *new_value);
void cm_tb_pref_change_free (CmTbPrefChange *change);

/* [{"name", "value", "previous"}] with values as cm_tb_pref_value_to_json: what the add-on's
 * native host hands Thunderbird's pref service while Thunderbird runs. New node. */
JsonNode *cm_tb_pref_changes_to_json (GPtrArray *changes);

/* ---- identities (cm-tb-check.c) ---- */

/* One mail identity's settings as prefs.js has them (NULL: the pref is not set). */
typedef struct
{
  char *id;      /* "id1" */
  char *name;    /* fullName */
  char *address; /* useremail */
  char *signing_name, *signing_dbkey, *encryption_name, *encryption_dbkey;
  gboolean sign_mail;
  gint32 encryption_policy; /* 0 off, 2 required */
} CmTbSettings;

void cm_tb_settings_free (CmTbSettings *s);

/* The identities of the accounts Thunderbird uses (mail.accountmanager.accounts, each account's
 * identities), in that order; every identity with an address when the file lists no accounts.
 * Identities without an address are left out. Caller unrefs (CmTbSettings*). */
GPtrArray *cm_tb_prefs_list_identities (CmTbPrefs *prefs);

typedef struct _CmTbIdentity CmTbIdentity;

/* Compare @settings with the picks for its address among @inv's certificates, which must include
 * the profile's NSS database (cm_nss_db_add_certs_sync): a dbKey resolves, as Thunderbird's
 * findCertByDBKey does, to a certificate Thunderbird sees (an NSS source). @inserted (nullable)
 * lists the sha256 of the certificates on the cards in the readers now. New identity
 * (cm_tb_identity_free). */
CmTbIdentity *cm_tb_identity_check (const CmTbSettings *settings, CmInventory *inv,
                                    GPtrArray *inserted, gint64 at);
void cm_tb_identity_free (CmTbIdentity *id);

const CmTbSettings *cm_tb_identity_get_settings (CmTbIdentity *id);
gboolean cm_tb_identity_is_stale (CmTbIdentity *id);
/* Stable reason codes (docs/thunderbird.md), NULL-terminated, owned by @id. */
const char *const *cm_tb_identity_get_reasons (CmTbIdentity *id);
/* One sentence per reason, same order. */
const char *const *cm_tb_identity_get_messages (CmTbIdentity *id);
/* The picks' problems for the address, as `cacmail pick --json` prints them. Owned by @id. */
JsonArray *cm_tb_identity_get_problems (CmTbIdentity *id);
/* The certificate the signing (@signing TRUE) or encryption dbKey resolves to, or NULL;
 * borrowed from the inventory. */
CmCert *cm_tb_identity_get_current_cert (CmTbIdentity *id, gboolean signing);
/* The certificate a fix sets, or NULL when there is none Thunderbird can see. */
CmCert *cm_tb_identity_get_proposed_cert (CmTbIdentity *id, gboolean signing);
/* The pref changes a fix makes (signing_cert_name + _dbkey, encryption_cert_name + _dbkey; never
 * sign_mail or encryptionpolicy): empty when the identity is right or nothing can be proposed.
 * CmTbPrefChange*, owned by @id. */
GPtrArray *cm_tb_identity_get_changes (CmTbIdentity *id);

/* {"id", "name", "address", "state", "reasons", "messages", "problems", "current", "proposed"}
 * (docs/json.md). New node. */
JsonNode *cm_tb_identity_to_json (CmTbIdentity *id);

/* The name Thunderbird shows and stores for @cert (nsIX509Cert.displayName: the subject's CN,
 * else OU, else O, else the subject). Caller frees. */
char *cm_tb_cert_display_name (CmCert *cert);

/* ---- the profile (cm-tb-profile.c) ---- */

typedef struct _CmTbProfile CmTbProfile;

/* The profile Thunderbird starts with (cm_nssdb_find_locations: Debian's package first, then
 * Snap, then Flatpak), or NULL with CM_ERROR_NOT_FOUND. Caller frees. */
char *cm_tb_default_profile (GError **error);

/* Open the profile folder @dir (NULL: cm_tb_default_profile) and read its prefs.js. Errors:
 * no such folder (CM_ERROR_NOT_FOUND), prefs.js malformed (CM_ERROR_BAD_INPUT, with its line).
 * Free with cm_tb_profile_free. */
CmTbProfile *cm_tb_profile_open (const char *dir, GError **error);
void cm_tb_profile_free (CmTbProfile *profile);

const char *cm_tb_profile_get_dir (CmTbProfile *profile);
/* Where it is and whether Thunderbird runs on it (pid, state, sandbox note). Borrowed. */
CmNssdbLocation *cm_tb_profile_get_location (CmTbProfile *profile);
CmTbPrefs *cm_tb_profile_get_prefs (CmTbProfile *profile); /* borrowed */

/* Add the certificates Thunderbird sees (the profile's NSS database and the tokens of its
 * modules) to @inv and mark the recovered keys. Error: no database yet (CM_ERROR_NOT_FOUND:
 * start Thunderbird once). The database stays open with @profile. */
gboolean cm_tb_profile_add_certs_sync (CmTbProfile *profile, CmInventory *inv,
                                       GCancellable *cancellable, GError **error);

/* Check every identity (or only @only, "idN": CM_ERROR_NOT_FOUND when there is no such
 * identity). Caller unrefs (CmTbIdentity*). */
GPtrArray *cm_tb_profile_check (CmTbProfile *profile, CmInventory *inv, GPtrArray *inserted,
                                gint64 at, const char *only, GError **error);

/* FALSE with CM_ERROR_UNSAFE (saying to close Thunderbird or use the add-on) when Thunderbird
 * runs on @profile now: it rewrites prefs.js when it exits. */
gboolean cm_tb_profile_check_closed (CmTbProfile *profile, GError **error);

/* Write the changes of @identities (CmTbIdentity*) to prefs.js, after saving prefs.js as one
 * backup entry (cm-tb-backup.c). Refused while Thunderbird runs (CM_ERROR_UNSAFE); nothing is
 * written when the backup cannot be saved. Returns the number of identities changed, or -1. */
gint cm_tb_profile_fix_sync (CmTbProfile *profile, GPtrArray *identities, GError **error);

/* Undo the last fix or login of @profile not undone yet: prefs.js (and
 * ClientAuthRememberList.bin) get their bytes back when nothing changed them since; otherwise
 * each pref and remembered decision cacmail set is put back where it still holds cacmail's
 * value, and *@report (caller frees) names what was left because it changed since. Refused
 * while Thunderbird runs. Errors: nothing to undo (CM_ERROR_NOT_FOUND), damaged backup
 * (CM_ERROR_BAD_INPUT). */
gboolean cm_tb_profile_undo_sync (CmTbProfile *profile, char **report, GError **error);

/* ---- backups (cm-tb-backup.c) ---- */

/* The folder of the backups: $CACMAIL_STATE_DIR/thunderbird-backups when set, else
 * $XDG_DATA_HOME/cacmail/thunderbird-backups (0700; an index.json and 0600 file copies). Caller
 * frees. */
char *cm_tb_backup_dir (void);

/* Record @changes (CmTbPrefChange*, old and new values) made to @profile_dir by other means
 * (the add-on through Thunderbird's pref service) as a backup entry of kind "live", so that
 * cm_tb_backup_pending_live_undo() can give them back. */
gboolean cm_tb_backup_record_live (const char *profile_dir, GPtrArray *changes, GError **error);

/* The pref changes that undo the last not-undone entry of @profile_dir when it is a "live" one
 * (new value = the old one), and mark it undone; NULL with CM_ERROR_NOT_FOUND when the last
 * entry is not live (then Thunderbird must be closed and cm_tb_profile_undo_sync used). Caller
 * unrefs (CmTbPrefChange*). */
GPtrArray *cm_tb_backup_pending_live_undo (const char *profile_dir, GError **error);

/* ---- card login (cm-tb-login.c, cm-tb-probe.c) ---- */

/* ClientAuthRememberList.bin: Thunderbird's remembered client-certificate decisions (facts.md
 * section 6), key "host,," -> the certificate's dbKey. */
typedef struct _CmTbClientAuth CmTbClientAuth;

/* Read @profile_dir's list (the old .txt format when there is no .bin yet; empty when there is
 * neither). A .bin whose length is not a whole number of slots is CM_ERROR_BAD_INPUT. */
CmTbClientAuth *cm_tb_client_auth_load (const char *profile_dir, GError **error);
void cm_tb_client_auth_free (CmTbClientAuth *ca);
/* The dbKey remembered for @host, or NULL. Owned by @ca. */
const char *cm_tb_client_auth_get (CmTbClientAuth *ca, const char *host);
/* Remember @dbkey (NULL: forget) for @host; slots of other keys keep their bytes. */
void cm_tb_client_auth_set (CmTbClientAuth *ca, const char *host, const char *dbkey);
/* The file's bytes now (2048 slots at most). Caller unrefs. */
GBytes *cm_tb_client_auth_to_bytes (CmTbClientAuth *ca);

/* What a TLS handshake with one mail server showed, without sending any certificate. */
typedef struct
{
  char *kind; /* "imap", "pop3" or "smtp" */
  char *key;  /* the server's prefs branch: "mail.server.server1", "mail.smtpserver.smtp1" */
  char *host;
  guint16 port;
  gint32 socket_type;       /* 0 plain, 2 STARTTLS, 3 TLS */
  gint32 auth_method;       /* Thunderbird's now (3 password, 7 TLS certificate, ...) */
  char *address;            /* the address of the identity whose login cert it gets */
  gboolean asks_cert;       /* the server sent a CertificateRequest */
  gboolean requires_cert;   /* ... and ended the connection when none came */
  gboolean offers_external; /* IMAP AUTH=EXTERNAL / SMTP AUTH EXTERNAL (or SMTP without AUTH) */
  gboolean offers_gssapi;   /* IMAP AUTH=GSSAPI / POP3 SASL GSSAPI / SMTP AUTH GSSAPI */
  char *error;              /* the probe failed: why (one line), else NULL */
} CmTbServerProbe;

void cm_tb_server_probe_free (CmTbServerProbe *p);

/* The IMAP, POP3 and SMTP servers of @prefs' accounts (those of identity @only when set), each
 * once, with the address of the identity that uses it, not yet probed. Caller unrefs
 * (CmTbServerProbe*). */
GPtrArray *cm_tb_prefs_list_servers (CmTbPrefs *prefs, const char *only);

/* Connect to @p's server (STARTTLS or TLS as configured; plain servers are not probed), do a TLS
 * handshake that offers no certificate and read the login methods. Fills asks_cert,
 * requires_cert, offers_external, or error. The server's certificate is not verified: nothing
 * secret is sent. @timeout_ms bounds each step. */
void cm_tb_probe_server_sync (CmTbServerProbe *p, guint timeout_ms, GCancellable *cancellable);

/* What `login` does for one server. */
typedef struct
{
  CmTbServerProbe *probe; /* borrowed */
  CmCert *cert;           /* the PIV Auth cert remembered for it, or NULL; borrowed */
  gboolean remembered;    /* ClientAuthRememberList gets host -> cert */
  gboolean auth_set;      /* authMethod becomes 7 (TLS certificate) */
  gboolean kerberos_set;  /* authMethod becomes 5 (Kerberos / GSSAPI) */
  gboolean refused;       /* CM_TB_LOGIN_KERBEROS and an incoming server without GSSAPI */
  char *message;          /* one sentence for people */
} CmTbLoginStep;

/* How `login` lets Thunderbird log in. */
typedef enum
{
  CM_TB_LOGIN_AUTO,        /* by what each server offers: certificate first, then Kerberos */
  CM_TB_LOGIN_CERTIFICATE, /* the card's PIV Authentication certificate only (TLS) */
  CM_TB_LOGIN_KERBEROS,    /* the user's Kerberos ticket (GSSAPI, nsMsgAuthMethod 5) only */
} CmTbLoginMode;

void cm_tb_login_step_free (CmTbLoginStep *step);

/* Decide for each probed server (@probes, CmTbServerProbe*) what login changes: remember the PIV
 * Auth cert that cm_select_for_email picks for the server's address, among the certs Thunderbird
 * sees (@inv), for each server that asks for a client certificate; authMethod 7 where the
 * server also offers EXTERNAL. Caller unrefs (CmTbLoginStep*). */
GPtrArray *cm_tb_login_plan (GPtrArray *probes, CmInventory *inv, gint64 at);

/* As cm_tb_login_plan, by @mode: CM_TB_LOGIN_CERTIFICATE is cm_tb_login_plan; KERBEROS sets
 * authMethod 5 where the server offers GSSAPI and marks an incoming (IMAP, POP3) server that
 * does not as refused (then nothing may be written: cm_tb_login_refused); AUTO remembers the
 * certificate where a server asks for one (authMethod 7 with EXTERNAL, else 5 with GSSAPI) and
 * sets 5 where a server asks for none but offers GSSAPI. @inv may be NULL for KERBEROS. Caller
 * unrefs (CmTbLoginStep*). */
GPtrArray *cm_tb_login_plan_mode (GPtrArray *probes, CmInventory *inv, gint64 at,
                                  CmTbLoginMode mode);
/* The first refused step of @steps, or NULL; borrowed. */
CmTbLoginStep *cm_tb_login_refused (GPtrArray *steps);

/* Apply @steps: back up prefs.js and ClientAuthRememberList.bin as one entry, then write both.
 * Refused while Thunderbird runs. Returns the number of servers changed, or -1. */
gint cm_tb_profile_login_sync (CmTbProfile *profile, GPtrArray *steps, GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (CmTbPrefs, cm_tb_prefs_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CmTbIdentity, cm_tb_identity_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CmTbProfile, cm_tb_profile_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CmTbClientAuth, cm_tb_client_auth_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CmTbSettings, cm_tb_settings_free)

G_END_DECLS
