/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cm-nssdb.h: libcacmail-nss, everything cacmail changes in the NSS databases of Evolution and
 * Thunderbird: finding them (and whether their client runs), registering the card's PKCS#11
 * module, trust anchors and recovered-key (PKCS#12) import. Reading certs and tokens is the
 * core's (cm-nss.h). Blocking calls end in _sync and take a GCancellable. */
#pragma once

#include <cacmail.h>

G_BEGIN_DECLS

/* ---- where the databases are (cm-nssdb-find.c) ---- */

typedef enum
{
  CM_NSSDB_CLIENT_OTHER,       /* a folder named with --nssdb that no client uses */
  CM_NSSDB_CLIENT_EVOLUTION,   /* sql:$HOME/.pki/nssdb (also Chromium's, GNOME's) */
  CM_NSSDB_CLIENT_THUNDERBIRD, /* sql:<profile> */
} CmNssdbClient;

typedef enum
{
  CM_NSSDB_CHANGE_OBJECTS, /* certs, trust, keys: safe while the client runs (shared SQLite) */
  CM_NSSDB_CHANGE_MODULES, /* pkcs11.txt: the client reads it only at start */
} CmNssdbChange;

typedef struct
{
  CmNssdbClient client;
  char *dir;           /* absolute folder */
  char *profile;       /* Thunderbird profile name, or NULL */
  gboolean is_default; /* Thunderbird: the profile Thunderbird really starts with */
  gboolean exists;     /* the folder holds cert9.db */
  int pid;             /* > 0 while the client runs on this database */
  char *state;         /* "running (PID 42)", "not running", "not running (stale lock ...)" */
  const char *sandbox; /* Thunderbird from a sandboxed package: "Snap" or "Flatpak"; else NULL */
  const char *note;    /* one sentence for people about this location (a sandboxed package may
                          not reach pcscd, and what to do), or NULL; static */
} CmNssdbLocation;

const char *cm_nssdb_client_name (CmNssdbClient client); /* "Evolution", ... static */

/* The databases of the mail clients of this user ($HOME): Evolution's first (listed even when
 * not created yet), then each Thunderbird profile of profiles.ini (facts: Install section's
 * default first): ~/.thunderbird, then the Snap package's ~/snap/thunderbird/common/.thunderbird,
 * then the Flatpak's ~/.var/app/org.mozilla.Thunderbird/.thunderbird. Caller unrefs
 * (CmNssdbLocation*). */
GPtrArray *cm_nssdb_find_locations (void);

/* Describe @dir (a folder, "sql:" allowed): whose it is and whether that client runs. */
CmNssdbLocation *cm_nssdb_locate (const char *dir);
void cm_nssdb_location_free (CmNssdbLocation *loc);

/* FALSE with CM_ERROR_UNSAFE (a one-line reason and fix) when @change must not be made to
 * @loc now because its client runs. */
gboolean cm_nssdb_location_check (CmNssdbLocation *loc, CmNssdbChange change, GError **error);

/* ---- the card's PKCS#11 module (cm-nssdb-modules.c) ---- */

typedef enum
{
  CM_NSSDB_MODULE_OTHER,
  CM_NSSDB_MODULE_OPENSC,       /* opensc-pkcs11.so (or onepin-opensc-pkcs11.so) */
  CM_NSSDB_MODULE_P11KIT_PROXY, /* p11-kit-proxy.so: every module p11-kit has configured */
} CmNssdbModuleKind;

typedef struct
{
  char *name;
  char *library;
  CmNssdbModuleKind kind;
  gboolean library_exists;
  gboolean friendly; /* its slots are marked PublicCerts: certs listed without the PIN */
} CmNssdbModule;

void cm_nssdb_module_free (CmNssdbModule *m);

/* The non-internal modules registered in @db's pkcs11.txt. Caller unrefs (CmNssdbModule*). */
GPtrArray *cm_nssdb_list_modules (CmNssDb *db, GError **error);

/* Paths of the card modules on this system (NULL if absent); caller frees. */
char *cm_nssdb_find_opensc_module (void);
char *cm_nssdb_find_p11kit_proxy (void);

/* TRUE when p11-kit's configuration enables OpenSC for the proxy; @where (nullable) receives the
 * .module file that says so (caller frees). */
gboolean cm_nssdb_p11kit_has_opensc (char **where);

/* How many of @mods (from cm_nssdb_list_modules) reach the card: OpenSC, and the p11-kit proxy
 * when @p11kit_opensc (cm_nssdb_p11kit_has_opensc); only entries whose library is there count.
 * More than one means the card shows twice. */
guint cm_nssdb_count_card_entries (GPtrArray *mods, gboolean p11kit_opensc);

/* Register the card module in @db unless a module that already reaches the card is there:
 * @kind CM_NSSDB_MODULE_OTHER picks the p11-kit proxy when p11-kit has OpenSC, else OpenSC.
 * When several entries reach the card (it shows twice), they are all removed and one is added
 * (@kind, else OpenSC when it was among them). *@report (caller frees) says what changed or why
 * nothing did. Errors: no module installed (CM_ERROR_ENVIRONMENT), pkcs11.txt not writable. */
gboolean cm_nssdb_register_card_sync (CmNssDb *db, CmNssdbModuleKind kind, char **report,
                                      GCancellable *cancellable, GError **error);

/* Remove every OpenSC and p11-kit-proxy entry from @db; *@report as above. */
gboolean cm_nssdb_unregister_card_sync (CmNssDb *db, char **report, GCancellable *cancellable,
                                        GError **error);

/* ---- trust anchors (cm-nssdb-trust.c) ---- */

typedef struct
{
  char *subject;
  char *sha256;
  gboolean root;  /* self-signed CA: trusted C,C, */
  gboolean added; /* FALSE: it was there already (trust set if it was missing) */
} CmNssdbTrustItem;

void cm_nssdb_trust_item_free (CmNssdbTrustItem *item);

/* Read CA certificates from PEM, DER or PKCS#7 (.p7b, DER or PEM) files; a file that holds no
 * CA certificate is an error naming it. Caller unrefs the array (GBytes* DER). */
GPtrArray *cm_nssdb_read_ca_files (char **files, GError **error);

/* Import @ca_ders into @db: roots with trust C,C, (TLS and email CAs), intermediates without
 * trust; then rewrite the PEM bundle @bundle_path (nullable; the union of what it held and
 * these CAs). Caller unrefs *@items (CmNssdbTrustItem*). Nothing is imported unless every cert
 * parses. */
gboolean cm_nssdb_trust_import_sync (CmNssDb *db, GPtrArray *ca_ders, const char *bundle_path,
                                     GPtrArray **items, GCancellable *cancellable, GError **error);

/* $XDG_DATA_HOME/cacmail/ca-bundle.pem ($CACMAIL_STATE_DIR/ca-bundle.pem when set); caller
 * frees. */
char *cm_nssdb_default_bundle_path (void);

/* A trust store of every CA cert in @db (trusted self-signed ones are anchors) and in the
 * bundle at @bundle_path (nullable; its self-signed certs are anchors). Caller frees. */
CmTrust *cm_nssdb_trust_from_db (CmNssDb *db, const char *bundle_path);

/* ---- the DoD chain of an analysed bundle (cm-nssdb-chain.c; `cacmail setup`) ---- */

/* What installing @analysis (core/cm-bundle.h) into @db (nullable: the bundle file only) and into
 * the PEM bundle @bundle_path (nullable) would change: a new array (caller unrefs) of lines such
 * as "add CN (root, trusted C,C,)", "trust CN C,C,", "add CN", "add 5 CAs to the CA bundle
 * PATH"; empty when everything is there already. Only the root gets trust; an intermediate
 * that holds trust is left as it is (the user may have set it). */
GPtrArray *cm_nssdb_chain_plan (CmNssDb *db, CmBundleAnalysis *analysis, const char *bundle_path,
                                GError **error);

/* Install @analysis into @db: every cert on the path stored (nickname: its CN), the root
 * trusted C,C, (TLS and email CA), the intermediates without trust; skipped certs are never
 * stored. Then the PEM bundle @bundle_path (nullable) gets the same certs (libldap verifies
 * servers with it). Safe while the client runs (certs and trust only). Rerunning changes
 * nothing. Errors as cm_nssdb_trust_import_sync. */
gboolean cm_nssdb_chain_install_sync (CmNssDb *db, CmBundleAnalysis *analysis,
                                      const char *bundle_path, GCancellable *cancellable,
                                      GError **error);

/* ---- recovered keys (cm-nssdb-p12.c, cm-nssdb-state.c) ---- */

typedef struct
{
  char *sha256;
  char *nssdb;    /* the database folder */
  char *nickname; /* as the database names it */
  char *subject;
  char *file; /* the PKCS#12 it came from */
  gint64 not_before, not_after, imported;
  gboolean present; /* cm_nssdb_recovered_list: still in the database with its key */
} CmNssdbRecovered;

void cm_nssdb_recovered_free (CmNssdbRecovered *r);

/* $XDG_DATA_HOME/cacmail/recovered-keys.json ($CACMAIL_STATE_DIR/... when set); caller frees. */
char *cm_nssdb_state_path (void);

/* TRUE when @sha256 (lowercase hex) is a recovered, decrypt-only certificate: selection must not
 * pick it for signing or encryption and no client setting may name it. Also TRUE when the
 * record cannot be read (fail closed): what decides must call cm_nssdb_mark_recovered_checked() or
 * cm_nssdb_recovered_list(), which report that error. */
gboolean cm_nssdb_is_recovered (const char *sha256);

/* Mark every certificate of @inv that is a recorded recovered key decrypt-only
 * (cm_inventory_mark_decrypt_only); *@marked (nullable) says how many. FALSE with @error when
 * the record cannot be read (damaged: CM_ERROR_BAD_INPUT; not the user's or others may change
 * it: CM_ERROR_UNSAFE): what selects must then stop, since it cannot tell which keys are
 * decrypt-only. */
gboolean cm_nssdb_mark_recovered_checked (CmInventory *inv, guint *marked, GError **error);

/* The same without the error: when the record cannot be read, every certificate of @inv is
 * marked decrypt-only (fail closed). Returns how many were marked. Prefer the _checked one,
 * which lets the user see why. */
guint cm_nssdb_mark_recovered (CmInventory *inv);

/* Recovered keys recorded for @db (all databases when NULL), most recent Not After first; with
 * @db, each says whether cert and key are still there. Caller unrefs (CmNssdbRecovered*). */
GPtrArray *cm_nssdb_recovered_list (CmNssDb *db, GError **error);

/* Import one PKCS#12 file into @db as decrypt-only recovered keys (each cert with its key).
 * All-or-nothing: password, decoding, key-matches-cert and writability are checked before the
 * database is touched; a write that fails half-way is undone. Importing again adds nothing.
 * @password (UTF-8, may be "") is not kept. *@results (caller unrefs, CmNssdbRecovered*) lists
 * the keys; *@added counts those that were not there before. Errors name the file and the fix:
 * CM_ERROR_BAD_INPUT (not a PKCS#12, truncated, wrong password, no key, cert without key),
 * CM_ERROR_ENVIRONMENT (database read-only or protected by a primary password). */
gboolean cm_nssdb_import_p12_sync (CmNssDb *db, const char *path, const char *password,
                                   GPtrArray **results, guint *added, GCancellable *cancellable,
                                   GError **error);

/* ---- cacmail's own state files (cm-nssdb-state.c), handled like keys ---- */

#define CM_NSSDB_STATE_MAX (16 * 1024 * 1024) /* bytes of one state file */

/* The state file @path whole (NUL-terminated; caller frees *@contents), or NULL *@contents
 * when it does not exist. FALSE with @error naming it and the fix when it or its folder is
 * another user's or others may change it (CM_ERROR_UNSAFE), or it is no regular file or over
 * CM_NSSDB_STATE_MAX bytes (CM_ERROR_BAD_INPUT). */
gboolean cm_nssdb_state_file_read (const char *path, char **contents, gsize *len, GError **error);

/* The JSON object of the state file @path (caller unrefs): NULL with @error as
 * cm_nssdb_state_file_read() fails, or with *@damaged (caller frees: why) when it holds no
 * JSON object, or with neither when there is no file. */
JsonObject *cm_nssdb_state_file_load (const char *path, char **damaged, GError **error);

/* Replace @path with @text whole: a temporary file (mode 0600) in its folder (made 0700 when
 * missing, checked as above) renamed over it; @durable also waits for the disk. FALSE with
 * @error (CM_ERROR_ENVIRONMENT or CM_ERROR_UNSAFE) naming the file and the fix. */
gboolean cm_nssdb_state_file_write (const char *path, const char *text, gboolean durable,
                                    GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (CmNssdbLocation, cm_nssdb_location_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CmNssdbModule, cm_nssdb_module_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CmNssdbRecovered, cm_nssdb_recovered_free)

G_END_DECLS
