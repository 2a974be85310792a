/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cm-evo-module.h: module-cacmail, cacmail inside Evolution (private to the module).
 *
 * - cm-evo-module.c: e_module_load / e_module_unload, type registration.
 * - cm-evo-ui.c: the mail window's "Republish Certificates to GAL" action (EShellView
 *   extension); cm-evo-republish.c runs it.
 * - cm-evo-shell.c: the EShell extension: the "Smart Card" preferences page (cm-evo-page.c)
 *   and the card watcher (cm-evo-watch.c).
 * - cm-evo-state.c: what the page shows, gathered in a worker thread; cm-evo-view.c shows
 *   it as the setup steps and sections; cm-evo-jobs.c: the page's buttons' work (fix, undo,
 *   import, make the card available); cm-evo-setup.c: the trust chain and directory settings
 *   dialogs; cm-evo-doctor.c: the report of `cacmail doctor --json`.
 * - cm-evo-secret.c: PIN and password dialogs, also asked from worker threads.
 *
 * Threads: GTK only in the main thread; anything that touches the card, NSS, the registry or
 * LDAP runs in a GTask worker thread. Secrets are wiped (explicit_bzero) and never logged. */
#pragma once

#include <gtk/gtk.h>
#include <e-util/e-util.h>
#include <shell/e-shell.h>
#include <shell/e-shell-view.h>
#include <shell/e-shell-window.h>
#include <shell/e-shell-backend.h>
#include <shell/e-shell-content.h>

#include <cacmail.h>
#include <cm-evo.h>
#include <cm-nssdb.h>
#include <cm-ldap.h>

G_BEGIN_DECLS

/* ---- types (each file registers its own) -------------------------------------------------- */

void cm_evo_ui_extension_type_register (GTypeModule *module);
void cm_evo_shell_extension_type_register (GTypeModule *module);
void cm_evo_page_type_register (GTypeModule *module);
void cm_evo_watch_type_register (GTypeModule *module);

/* ---- secrets (cm-evo-secret.c) ------------------------------------------------------------ */

/* What a secret is for: the card PIN (@subject = token label), the card PIN for a Kerberos
 * login (@subject = the sentence under the heading: card, reader, tries left), the LDAP
 * simple-bind password (@subject = DN) or the password of a PKCS#12 file (@subject = its file
 * name). */
typedef enum
{
  CM_EVO_SECRET_PIN,
  CM_EVO_SECRET_LOGIN_PIN,
  CM_EVO_SECRET_LDAP_PASSWORD,
  CM_EVO_SECRET_P12_PASSWORD,
} CmEvoSecretKind;

/* Show the secret dialog over @parent (nullable) and call @done with the secret when the
 * user answers. Main thread only. @done receives a newly allocated secret (NULL with an error
 * when cancelled) and must wipe it with cm_ldap_secret_free. */
typedef void (*CmEvoSecretDone) (char *secret, GError *error, gpointer user_data);
void cm_evo_secret_ask (GtkWindow *parent, CmEvoSecretKind kind, const char *subject,
                        GCancellable *cancellable, CmEvoSecretDone done, gpointer user_data);

/* From a worker thread: ask in the main thread and wait for the answer. Returns a new secret
 * (caller wipes it with cm_ldap_secret_free) or NULL with @error (G_IO_ERROR_CANCELLED when the
 * user cancelled or @cancellable fired). @parent is referenced while the dialog is up. */
char *cm_evo_secret_ask_from_thread (GtkWindow *parent, CmEvoSecretKind kind, const char *subject,
                                     GCancellable *cancellable, GError **error);

/* ---- directory settings (cm-evo-state.c) ------------------------------------------------- */

/* The [ldap] settings of cacmail.conf that republishing needs. */
typedef struct
{
  char *path;    /* the config file */
  char *uri;     /* NULL when not set */
  char *base;    /* base, or entry-dn when only that is set; NULL when neither */
  char *bind;    /* simple, external, gssapi (NULL: simple) */
  char *ca_file; /* the server's CA file, or NULL */
  char *error;   /* why the file cannot be read, or NULL */
} CmEvoDirectory;

/* Read the settings now (a small local file: any thread). Never NULL; free with
 * cm_evo_directory_free. */
CmEvoDirectory *cm_evo_directory_read (void);
void cm_evo_directory_free (CmEvoDirectory *dir);
/* uri and base are set: republishing can run. */
gboolean cm_evo_directory_is_set (const CmEvoDirectory *dir);

/* ---- state (cm-evo-state.c): gathered in a worker thread ---------------------------------- */

typedef struct
{
  char *name;       /* reader name */
  gboolean present; /* a card is in it */
  CmCard *card;     /* the card read (owned by the state's inventory), or NULL */
  char *error;      /* why the card could not be read, or NULL */
} CmEvoReader;

typedef struct
{
  gint64 at;
  char *nssdb;              /* Evolution's NSS database folder ($HOME/.pki/nssdb) */
  CmInventory *inv;         /* the cards in the readers and the NSS database's certs */
  GPtrArray *readers;       /* CmEvoReader*; NULL when pcscd could not be asked */
  GPtrArray *inserted;      /* char* sha256 of the certs on the cards in the readers; NULL
                               when no card was read */
  CmEvoRegistry *reg;       /* NULL when the source registry is unreachable (see problems) */
  GPtrArray *identities;    /* CmEvoIdentity*, empty without a registry */
  GPtrArray *modules;       /* CmNssdbModule* registered in pkcs11.txt */
  gboolean card_module;     /* a card module (OpenSC or p11-kit proxy with OpenSC) is registered */
  char *card_module_loaded; /* the name of the card module loaded in this process, or NULL */
  GPtrArray *locked;        /* char* token names whose certs NSS lists only after the PIN
                               (module loaded without "friendly", not logged in) */
  GPtrArray *recovered;     /* CmNssdbRecovered* of this database */
  gboolean recovered_unknown; /* the recovered-keys record cannot be read: nothing is judged */
  GPtrArray *problems;        /* char*: what could not be read, one sentence each */
  gboolean nssdb_exists;      /* Evolution's NSS database has been made (cert9.db) */
  gint undo_entries;          /* fixes Undo Last Fix can restore; -1: the backups are damaged */
  guint trust_anchors;        /* trusted root CAs in Evolution's database */
  guint chains_total;         /* valid email certificates of the personas ... */
  guint chains_ok;            /* ... and how many chain to a trusted root */
  char *chain_problem;        /* why the first one that does not chain, or NULL */
  CmEvoDirectory *directory;  /* the address list settings (cacmail.conf) */
} CmEvoState;

/* Evolution's NSS database folder. Caller frees. */
char *cm_evo_nssdb_dir (void);

/* Gather everything. With @read_cards the cards in the readers are read (PC/SC); otherwise
 * only the NSS database and the registry. Never fails: what could not be read is in
 * state->problems. Cancelled: NULL with @error. Free with cm_evo_state_free. */
CmEvoState *cm_evo_state_load_sync (gboolean read_cards, GCancellable *cancellable, GError **error);
void cm_evo_state_free (CmEvoState *state);

/* The name of the loaded module that reaches the card (OpenSC, or the p11-kit proxy), or
 * NULL. Caller frees. */
char *cm_evo_card_module_loaded (void);

/* "contractor", "uniformed service", ... or the persona key; borrowed or static. */
const char *cm_evo_persona_label (CmPersona *persona);

/* One line for a card: "DOE.JOHN.Q.1234567890 (contractor): a@b, c@d". Caller frees. */
char *cm_evo_card_summary (CmInventory *inv, CmCard *card);

/* The sentence the page and the alerts show for an identity's reason: the library's, except
 * where inside Evolution a button does what it says to run (borrowed or static). */
const char *cm_evo_reason_text (const char *code, const char *message);

/* Rewrite, in place, a library error whose fix names a command-line option to name the Smart
 * Card page's step instead (a server certificate that cannot be verified). */
void cm_evo_error_to_page_words (GError *error);

/* "valid until 2028-08-31", "EXPIRED 2025-08-31", "not valid before ...". Caller frees. */
char *cm_evo_cert_validity (CmCert *cert, gint64 at);

/* "email signing", "email encryption", "PIV authentication (login)", ... Static. */
const char *cm_evo_role_label (CmRole role);

/* ---- the page's jobs (cm-evo-jobs.c), run in worker threads ------------------------------ */

/* Fix the stale identities: state reloaded (cards read), then cm_evo_registry_fix_sync.
 * *@report (caller frees) says what changed. */
gboolean cm_evo_job_fix_sync (char **report, GCancellable *cancellable, GError **error);

/* Undo the last fix (cm_evo_registry_undo_sync). */
gboolean cm_evo_job_undo_sync (char **report, GCancellable *cancellable, GError **error);

/* Load the card's PKCS#11 module into this process with SECMOD_AddNewModuleEx, which also
 * saves it in Evolution's pkcs11.txt: the card's certs are visible at once, no restart. */
gboolean cm_evo_job_make_available_sync (char **report, GCancellable *cancellable, GError **error);

/* Import a PKCS#12 file of recovered (escrowed) keys into Evolution's database. @password is
 * not kept (the caller wipes it). */
gboolean cm_evo_job_import_sync (const char *path, const char *password, char **report,
                                 GCancellable *cancellable, GError **error);

/* cm_evo_registry_fix_sync, one fix or undo at a time in this process (each reads, changes
 * and writes the backup file). */
gint cm_evo_fix_locked (CmEvoRegistry *reg, GPtrArray *identities, GCancellable *cancellable,
                        GError **error);

/* ---- the card watcher (cm-evo-watch.c) --------------------------------------------------- */

/* One per Evolution process, owned by the EShell extension. It waits on pcscd in a thread of
 * its own (no card access until a card is inserted or removed), then re-checks the S/MIME
 * settings, points the identities at the inserted card and says so in an EAlert. */
#define CM_EVO_TYPE_WATCH (cm_evo_watch_get_type ())
G_DECLARE_FINAL_TYPE (CmEvoWatch, cm_evo_watch, CM_EVO, WATCH, GObject)

CmEvoWatch *cm_evo_watch_new (EShell *shell);
/* Start waiting for card changes (idempotent). */
void cm_evo_watch_start (CmEvoWatch *watch);
/* The process-wide watcher, or NULL before the shell extension made it (borrowed). */
CmEvoWatch *cm_evo_watch_get_default (void);
/* What the page read: cards that were in the readers when the watcher started, and that it
 * has not read itself, get their names (so that their removal names them). Main thread. */
void cm_evo_watch_learn (CmEvoWatch *watch, CmEvoState *state);
/* Tell the watcher (and so any open page) that the S/MIME settings or the NSS database
 * changed: emits "changed". Main thread. */
void cm_evo_watch_notify_changed (CmEvoWatch *watch);

/* ---- the page (cm-evo-page.c, cm-evo-certs.c) ------------------------------------------- */

#define CM_EVO_PAGE_NAME "cacmail-smart-card"
GtkWidget *cm_evo_page_new (EShell *shell);

/* The setup steps, in the order of `cacmail setup`. */
enum
{
  CM_EVO_STEP_CLIENT,
  CM_EVO_STEP_CARD,
  CM_EVO_STEP_TRUST,
  CM_EVO_STEP_DIRECTORY,
  CM_EVO_STEP_SMIME,
  CM_EVO_STEP_REPUBLISH,
  CM_EVO_N_STEPS
};

/* A button's work, run in a worker thread: TRUE with *@report (caller frees) or FALSE with
 * @error. */
typedef gboolean (*CmEvoJobFunc) (gpointer data, char **report, GCancellable *cancellable,
                                  GError **error);

/* Run @func(@data) in a worker for @page (a CmEvoPage), its spinner showing @status; then the
 * report under @ok_title or the error under @fail_title in the page's alert bar, and the page
 * reloads. @data is freed with @free_data (nullable) in any case. FALSE (and an alert) when
 * another job still runs. Main thread. */
gboolean cm_evo_page_run (GtkWidget *page, const char *status, const char *ok_title,
                          const char *fail_title, CmEvoJobFunc func, gpointer data,
                          GDestroyNotify free_data);

/* A modal "open file" chooser over @page's window, starting in the home folder, with buttons
 * Cancel and @accept (GTK_RESPONSE_ACCEPT). The caller connects "response" and destroys it. */
GtkWidget *cm_evo_file_chooser_new (GtkWidget *page, const char *title, const char *accept);

/* Show @alert in @page's alert bar (replacing the one shown). Main thread. */
void cm_evo_page_show_alert (GtkWidget *page, EAlert *alert);

/* The setup dialogs of the page (cm-evo-setup.c): Install DoD Trust Chain... (choose the .p7b,
 * confirm the root by its SHA-256, see what would change, install) and Directory Settings...
 * (URI, base, bind method, CA file; tested, then saved). Their work runs through
 * cm_evo_page_run. @current (nullable) fills the directory dialog. */
void cm_evo_setup_trust_start (GtkWidget *page);
void cm_evo_setup_directory_start (GtkWidget *page, const CmEvoDirectory *current);

/* A new tree view of @st's personas and certificates (floating), or NULL when there is no
 * personal certificate to show. */
GtkWidget *cm_evo_certs_view_new (CmEvoState *st);

/* ---- the page's sections (cm-evo-view.c), main thread ------------------------------------ */

/* A wrapping, selectable label appended to @box (returned, owned by @box). */
GtkWidget *cm_evo_add_label (GtkWidget *box, const char *text, gboolean markup);
/* Destroy every child of @box. */
void cm_evo_clear (GtkWidget *box);

/* A setup step's state, as its title says it. */
typedef enum
{
  CM_EVO_STEP_DONE,    /* nothing to do (its button may still rerun it) */
  CM_EVO_STEP_TODO,    /* its button would change something */
  CM_EVO_STEP_READY,   /* republish: everything it needs is set */
  CM_EVO_STEP_WAITING, /* an earlier step must be done first */
} CmEvoStepState;

const char *cm_evo_step_state_word (CmEvoStepState state); /* "done", ... static */

/* Each fills a step's @body from @st and returns the step's state. */
CmEvoStepState cm_evo_show_client (GtkWidget *body, CmEvoState *st);
CmEvoStepState cm_evo_show_card_module (GtkWidget *body, CmEvoState *st);
CmEvoStepState cm_evo_show_trust (GtkWidget *body, CmEvoState *st);
CmEvoStepState cm_evo_show_directory (GtkWidget *body, CmEvoState *st);
CmEvoStepState cm_evo_show_identities (GtkWidget *body, CmEvoState *st);
CmEvoStepState cm_evo_show_republish (GtkWidget *body, CmEvoState *st, gboolean running);
void cm_evo_show_cards (GtkWidget *body, CmEvoState *st);
void cm_evo_show_certs (GtkWidget *body, CmEvoState *st);
void cm_evo_show_recovered (GtkWidget *body, CmEvoState *st);
/* How many identities Fix S/MIME Settings would change. */
guint cm_evo_count_fixable (CmEvoState *st);

/* ---- the doctor report (cm-evo-doctor.c) -------------------------------------------------- */

/* Run `cacmail doctor --json` (the command on PATH, else the one installed beside this module's
 * prefix) without blocking; it is killed after @timeout_s seconds. Main thread. */
void cm_evo_doctor_run_async (guint timeout_s, GCancellable *cancellable,
                              GAsyncReadyCallback callback, gpointer user_data);
/* Its problems (JsonArray of {code, message, hint, ...}, new reference: caller unrefs), or
 * NULL with @error naming what went wrong and the fix. */
JsonArray *cm_evo_doctor_run_finish (GAsyncResult *result, GError **error);

/* ---- republish (cm-evo-republish.c) ------------------------------------------------------ */

typedef void (*CmEvoDoneFunc) (gpointer data);

/* Run "Republish Certificates to GAL" for @shell_view's window: a worker thread, progress in
 * an EActivity, PIN and password asked in dialogs, the outcome in an EAlert. @done (nullable)
 * is called with @done_data in the main thread when it ends. */
void cm_evo_republish_start (EShellView *shell_view, CmEvoDoneFunc done, gpointer done_data);

/* The same from the Smart Card page: dialogs over @parent, the outcome in @alert_bar (an
 * EAlertBar) as well as in the mail view of @shell (the progress shows in its status bar). */
void cm_evo_republish_start_from_page (EShell *shell, GtkWindow *parent, GtkWidget *alert_bar,
                                       CmEvoDoneFunc done, gpointer done_data);

/* A republish runs in this Evolution (one at a time, from the menu or the page). */
gboolean cm_evo_republish_running (void);

/* ---- small shared helpers ----------------------------------------------------------------- */

/* A new EAlert of @type (GTK_MESSAGE_INFO, _WARNING or _ERROR) with these texts; the caller
 * submits it and unrefs it. */
EAlert *cm_evo_alert_new (GtkMessageType type, const char *primary, const char *secondary);

G_END_DECLS
