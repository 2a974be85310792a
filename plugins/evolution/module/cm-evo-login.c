/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cm-evo-login.c: CmEvoLoginExtension, an extension of every EShellView that adds, to the mail
 * view only, "Log In with Smart Card" to the File menu: with a Kerberos ticket from the card
 * (checked with `cacmail login --status`; without one, the card's PIN is asked in the module's
 * PIN dialog and `cacmail login --pin-fd 3` gets one, the PIN on a pipe), each identity's mail
 * account and SMTP server that offer GSSAPI are set to Kerberos through the source registry
 * (libcacmail-evolution, cm-evo-login.h); accounts whose server offers no GSSAPI are left as
 * they are and named. The work runs in a thread, its progress in an EActivity; the result is
 * an alert in the window. */
#include "cm-evo-login-action.h"
#include "cm-evo-module.h"
#include "cm-private.h"
#include <cm-evo-login.h>
#include <errno.h>
#include <fcntl.h>
#include <glib-unix.h>
#include <unistd.h>

#define MAIL_UI_MANAGER_ID "org.gnome.evolution.mail"
#define ACTION_GROUP "cacmail-login"
#define ACTION_LOGIN "cacmail-login"
#define PROBE_TIMEOUT_MS 10000
#define PIN_FD 3            /* where `cacmail login --pin-fd` reads the PIN in the child */
#define STEP_TIMEOUT_S 20   /* `cacmail login --timeout`: each of its three steps */
#define LOGIN_DEADLINE_S 75 /* the whole `cacmail login` run (the PIN is typed before) */
#define AGAIN "choose File > Log In with Smart Card again"

typedef struct
{
  EExtension parent;
  GtkActionGroup *actions; /* owned; inserted in the window's UI manager */
  guint merge_id;          /* UI merged while the mail view is active, or 0 */
  gboolean busy;           /* a login runs in this window */
} CmEvoLoginExtension;

typedef struct
{
  EExtensionClass parent_class;
} CmEvoLoginExtensionClass;

GType cm_evo_login_extension_get_type (void);
G_DEFINE_DYNAMIC_TYPE (CmEvoLoginExtension, cm_evo_login_extension, E_TYPE_EXTENSION)

static const char ui_definition[] = "<ui>"
                                    "  <menubar name='main-menu'>"
                                    "    <menu action='file-menu'>"
                                    "      <placeholder name='long-running-actions'>"
                                    "        <menuitem action='" ACTION_LOGIN "'/>"
                                    "      </placeholder>"
                                    "    </menu>"
                                    "  </menubar>"
                                    "</ui>";

/* What the thread found: an alert's type and texts; no @primary: nothing to say (the user
 * cancelled). */
typedef struct
{
  GtkMessageType type;
  char *primary;
  char *secondary;
} Outcome;

static void
outcome_free (Outcome *o)
{
  g_free (o->primary);
  g_free (o->secondary);
  g_free (o);
}

static Outcome *
outcome_new (GtkMessageType type, const char *primary, char *secondary)
{
  Outcome *o = g_new0 (Outcome, 1);

  o->type = type;
  o->primary = g_strdup (primary);
  o->secondary = secondary;
  return o;
}

/* One run of the action: main-thread objects the worker only passes on. */
typedef struct
{
  GtkWindow *window;         /* referenced: parent of the PIN dialog */
  EActivity *activity;       /* referenced: the progress in the status bar */
  GCancellable *cancellable; /* referenced: the activity's Cancel */
  GPtrArray *addresses;      /* char*: the identities' addresses, the default one first */
  char *logged_in;           /* worker: the ticket line of `cacmail login`, or NULL */
} Run;

static void
run_free (Run *run)
{
  g_clear_object (&run->window);
  g_clear_object (&run->activity);
  g_clear_object (&run->cancellable);
  g_ptr_array_unref (run->addresses);
  g_free (run->logged_in);
  g_free (run);
}

typedef struct
{
  EActivity *activity;
  char *text;
} Progress;

static gboolean
progress_in_main (gpointer data)
{
  Progress *p = data;

  e_activity_set_text (p->activity, p->text);
  g_object_unref (p->activity);
  g_free (p->text);
  g_free (p);
  return G_SOURCE_REMOVE;
}

/* Show @what in the status bar (any thread). */
static void
progress (Run *run, const char *what)
{
  Progress *p = g_new0 (Progress, 1);

  p->activity = g_object_ref (run->activity);
  p->text = g_strdup_printf ("Log In with Smart Card: %s", what);
  g_main_context_invoke (NULL, progress_in_main, p);
}

/* `cacmail` on PATH, else the one of this module's prefix (as for the doctor report). Caller
 * frees; NULL when neither. */
static char *
cacmail_program (void)
{
  char *path = g_find_program_in_path ("cacmail");

  if (path == NULL && g_file_test (CM_BINDIR "/cacmail", G_FILE_TEST_IS_EXECUTABLE))
    path = g_strdup (CM_BINDIR "/cacmail");
  return path;
}

/* TRUE when `cacmail login --status` finds a valid ticket. */
static gboolean
have_ticket (void)
{
  g_autofree char *prog = cacmail_program ();
  const char *argv[] = { prog, "login", "--status", NULL };
  g_autoptr (GSubprocess) p = NULL;

  if (prog == NULL)
    return FALSE;
  p = g_subprocess_newv (
    argv, G_SUBPROCESS_FLAGS_STDOUT_SILENCE | G_SUBPROCESS_FLAGS_STDERR_SILENCE, NULL);
  return p && g_subprocess_wait_check (p, NULL, NULL);
}

/* ---- no ticket: the card, the PIN, `cacmail login --pin-fd` (worker thread) ---- */

/* The reader of the card that holds the login certificate of the first of @addresses that
 * has one (the card the Smart Card page shows for that identity). Caller frees; NULL when
 * none. */
static char *
identity_reader (CmInventory *inv, GPtrArray *addresses)
{
  for (guint i = 0; i < addresses->len; i++)
    {
      g_autoptr (CmPicks) picks
        = cm_select_for_email (inv, g_ptr_array_index (addresses, i), cm_time_now (), NULL);
      g_autoptr (GPtrArray) cards = NULL;
      CmCert *login = cm_picks_get_login (picks);

      if (login == NULL)
        continue;
      cards = cm_inventory_cards_of (inv, login);
      for (guint j = 0; j < cards->len; j++)
        if (cm_card_get_kind (g_ptr_array_index (cards, j)) == CM_SOURCE_CARD)
          return g_strdup (cm_card_get_label (g_ptr_array_index (cards, j)));
    }
  return NULL;
}

static CmCard *
card_in (CmInventory *inv, const char *reader)
{
  GPtrArray *cards = cm_inventory_get_cards (inv);

  for (guint i = 0; i < cards->len; i++)
    if (cm_card_get_kind (g_ptr_array_index (cards, i)) == CM_SOURCE_CARD
        && g_strcmp0 (cm_card_get_label (g_ptr_array_index (cards, i)), reader) == 0)
      return g_ptr_array_index (cards, i);
  return NULL;
}

/* What the PIN dialog says: the card, its reader and the tries left (@tries < 0: unknown). */
static char *
pin_text (CmInventory *inv, const char *reader, int tries)
{
  CmCard *card = card_in (inv, reader);
  g_autofree char *summary = card ? cm_evo_card_summary (inv, card) : g_strdup ("your card");
  g_autofree char *left = tries == 1 ? g_strdup (" 1 try left: one more wrong PIN locks the card.")
                          : tries > 1
                            ? g_strdup_printf (" %d tries left before the card locks.", tries)
                            : g_strdup ("");

  return g_strdup_printf ("The card \342\200\234%s\342\200\235 in \342\200\234%s\342\200\235 "
                          "gets you a Kerberos ticket (PKINIT); your mail accounts then log in "
                          "with it instead of a password.%s The PIN goes to the card only; it "
                          "is not stored.",
                          summary, reader, left);
}

/* Read the cards in the readers and choose the one to log in with: the only one, else the
 * one of an identity. TRUE with *@reader and *@text (the PIN dialog's words), else FALSE with
 * *@out saying why. */
static gboolean
choose_card (Run *run, char **reader, char **text, Outcome **out, GCancellable *cancellable)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) readers = cm_pcsc_list_readers_sync (cancellable, &error);
  g_autoptr (CmInventory) inv = cm_inventory_new ();
  g_autoptr (GHashTable) tries = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_autoptr (GString) names = g_string_new (NULL);
  guint present = 0;
  int left;

  if (readers == NULL)
    {
      *out = outcome_new (GTK_MESSAGE_ERROR, "Not logged in with your smart card",
                          g_strdup (error->message));
      return FALSE;
    }
  for (guint i = 0; i < readers->len; i++)
    {
      CmReaderInfo *r = g_ptr_array_index (readers, i);
      CmCardReport report = { .pin_tries_left = -1 };

      if (!r->card_present)
        continue;
      g_string_append_printf (names, "%s\342\200\234%s\342\200\235", present++ ? ", " : "",
                              r->name);
      if (cm_card_read_sync (inv, r->name, CM_READ_ALL, &report, cancellable, NULL))
        g_hash_table_insert (tries, g_strdup (r->name),
                             GINT_TO_POINTER (report.pin_tries_left + 1));
      if (present == 1)
        *reader = g_strdup (r->name);
    }
  if (present == 0)
    *out = outcome_new (GTK_MESSAGE_WARNING, "No smart card in a reader",
                        g_strdup ("Insert your card, then " AGAIN "."));
  else if (present > 1)
    {
      g_free (*reader);
      if ((*reader = identity_reader (inv, run->addresses)) == NULL)
        *out = outcome_new (
          GTK_MESSAGE_WARNING, "Which smart card?",
          g_strdup_printf ("%u cards are inserted (in %s) and none holds the login certificate "
                           "of your mail addresses: remove the cards you do not log in with, "
                           "then " AGAIN ".",
                           present, names->str));
    }
  if (*out)
    return FALSE;
  left = GPOINTER_TO_INT (g_hash_table_lookup (tries, *reader)) - 1;
  if (left == 0)
    {
      *out = outcome_new (GTK_MESSAGE_ERROR, "Not logged in with your smart card",
                          g_strdup_printf ("The PIN of the card in \342\200\234%s\342\200\235 "
                                           "is blocked (no PIN was sent): have it unblocked at "
                                           "an ID card office (RAPIDS), then " AGAIN ".",
                                           *reader));
      return FALSE;
    }
  *text = pin_text (inv, *reader, left);
  return TRUE;
}

/* The error line of `cacmail login`'s @err, its fix in the words of this window. Caller
 * frees. */
static char *
error_line (const char *err, int status)
{
  g_auto (GStrv) lines = g_strsplit (err ? err : "", "\n", -1);
  const char *found = NULL;
  GString *line;

  for (guint i = 0; lines[i]; i++)
    if (g_str_has_prefix (lines[i], "cacmail: error: "))
      found = lines[i] + strlen ("cacmail: error: ");
    else if (g_str_has_prefix (lines[i], "cacmail: usage error: "))
      found = lines[i] + strlen ("cacmail: usage error: ");
  if (found == NULL)
    return g_strdup_printf ("cacmail login ended (status %d) without saying why: run cacmail "
                            "login in a terminal to see what happens",
                            status);
  line = g_string_new (found);
  g_string_replace (line, " (see 'cacmail --help')", "", 0);
  g_string_replace (line, "run cacmail login again", AGAIN, 0);
  return g_string_free (line, FALSE);
}

/* A pipe whose read end holds @pin and a newline, the write end closed (the PIN fits in the
 * pipe's buffer: at most CM_SECRET_LINE_MAX bytes). The read end, or -1. */
static int
pin_pipe (const char *pin, GError **error)
{
  int fds[2];
  gboolean ok;

  if (!g_unix_open_pipe (fds, FD_CLOEXEC, error))
    return -1;
  ok = cm_write_all (fds[1], pin, strlen (pin)) && cm_write_all (fds[1], "\n", 1);
  close (fds[1]);
  if (!ok)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED,
                   "cannot pass the PIN to cacmail login (%s): " AGAIN, g_strerror (errno));
      close (fds[0]);
      return -1;
    }
  return fds[0];
}

static gboolean
deadline_passed (gpointer stop)
{
  g_cancellable_cancel (stop);
  return G_SOURCE_REMOVE;
}

static void
user_cancelled (GCancellable *cancellable, gpointer stop)
{
  g_cancellable_cancel (stop);
}

/* Run `cacmail login --reader READER --pin-fd 3`, killed at LOGIN_DEADLINE_S or when
 * @cancellable fires. NULL when it logged in (its ticket line in run->logged_in), else what
 * to say. */
static Outcome *
run_cacmail_login (Run *run, const char *reader, int pin_fd, GCancellable *cancellable)
{
  g_autofree char *prog = cacmail_program (), *out = NULL, *err = NULL;
  g_autoptr (GSubprocessLauncher) launcher
    = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE
                                 | G_SUBPROCESS_FLAGS_STDERR_PIPE);
  g_autoptr (GSubprocess) proc = NULL;
  g_autoptr (GCancellable) stop = g_cancellable_new ();
  g_autoptr (GError) error = NULL;
  const char *argv[] = { prog,        "login",
                         "--reader",  reader,
                         "--pin-fd",  G_STRINGIFY (PIN_FD),
                         "--timeout", G_STRINGIFY (STEP_TIMEOUT_S),
                         NULL };
  GSource *timer;
  gulong cancel_id;
  gboolean ok;

  g_subprocess_launcher_take_fd (launcher, pin_fd, PIN_FD);
  proc = g_subprocess_launcher_spawnv (launcher, argv, &error);
  if (proc == NULL)
    return outcome_new (GTK_MESSAGE_ERROR, "Not logged in with your smart card",
                        g_strdup_printf ("cannot run %s (%s): install the cacmail of this "
                                         "Evolution module",
                                         prog, error->message));
  timer = g_timeout_source_new_seconds (LOGIN_DEADLINE_S);
  g_source_set_callback (timer, deadline_passed, g_object_ref (stop), g_object_unref);
  g_source_attach (timer, NULL);
  cancel_id = g_cancellable_connect (cancellable, G_CALLBACK (user_cancelled), stop, NULL);
  ok = g_subprocess_communicate_utf8 (proc, NULL, stop, &out, &err, &error);
  g_cancellable_disconnect (cancellable, cancel_id);
  g_source_destroy (timer);
  g_source_unref (timer);
  if (!ok)
    {
      g_subprocess_force_exit (proc);
      g_subprocess_wait (proc, NULL, NULL);
      if (g_cancellable_is_cancelled (cancellable))
        return outcome_new (GTK_MESSAGE_OTHER, NULL, NULL);
      return outcome_new (
        GTK_MESSAGE_ERROR, "Not logged in with your smart card",
        g_cancellable_is_cancelled (stop)
          ? g_strdup_printf ("cacmail login did not finish within %d s: check the card (cacmail "
                             "status) and the KDC in krb5.conf, then " AGAIN ".",
                             LOGIN_DEADLINE_S)
          : g_strdup_printf ("cacmail login failed (%s): " AGAIN ".", error->message));
    }
  if (g_subprocess_get_if_exited (proc) && g_subprocess_get_exit_status (proc) == 0)
    {
      run->logged_in = g_strndup (out ? out : "", strcspn (out ? out : "", "\n"));
      return NULL;
    }
  return outcome_new (GTK_MESSAGE_ERROR, "Not logged in with your smart card",
                      error_line (err, g_subprocess_get_status (proc)));
}

/* No ticket: choose the card, ask its PIN, log in. NULL when logged in, else what to say. */
static Outcome *
card_login (Run *run, GCancellable *cancellable)
{
  g_autofree char *reader = NULL, *text = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *prog = cacmail_program ();
  Outcome *out = NULL;
  char *pin;
  int fd;

  if (prog == NULL)
    return outcome_new (
      GTK_MESSAGE_ERROR, "Not logged in with your smart card",
      g_strdup ("the cacmail program is not installed (not on PATH nor in " CM_BINDIR
                "): install the cacmail of this Evolution module"));
  progress (run, "reading the cards");
  if (!choose_card (run, &reader, &text, &out, cancellable))
    return out;
  progress (run, "waiting for the PIN");
  pin = cm_evo_secret_ask_from_thread (run->window, CM_EVO_SECRET_LOGIN_PIN, text, cancellable,
                                       &error);
  if (pin == NULL)
    return g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED)
             ? outcome_new (GTK_MESSAGE_OTHER, NULL, NULL)
             : outcome_new (GTK_MESSAGE_ERROR, "Not logged in with your smart card",
                            g_strdup (error->message));
  fd = pin_pipe (pin, &error);
  cm_ldap_secret_free (pin);
  if (fd < 0)
    return outcome_new (GTK_MESSAGE_ERROR, "Not logged in with your smart card",
                        g_strdup (error->message));
  progress (run, "getting a Kerberos ticket with the card");
  return run_cacmail_login (run, reader, fd, cancellable);
}

/* Leave the identities whose incoming server is refused as they are; their messages in @out. */
static void
skip_refused (CmEvoLogin *login, GString *out)
{
  GPtrArray *servers = cm_evo_login_get_servers (login);

  for (guint i = 0; i < servers->len; i++)
    {
      CmEvoLoginServer *s = g_ptr_array_index (servers, i);
      if (!s->refused)
        continue;
      g_string_append_printf (out, "%s: %s\n", s->probe->address, s->message);
      for (guint j = 0; j < servers->len; j++)
        {
          CmEvoLoginServer *o = g_ptr_array_index (servers, j);
          if (g_strcmp0 (o->identity_uid, s->identity_uid) == 0)
            o->set = o->refused = FALSE;
        }
    }
}

static void
login_thread (GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
  Run *run = data;
  g_autoptr (GError) error = NULL;
  g_autoptr (CmEvoLogin) login = NULL;
  g_autoptr (GString) skipped = g_string_new (NULL);
  Outcome *o;
  gint n;

  if (!have_ticket () && (o = card_login (run, cancellable)) != NULL)
    {
      g_task_return_pointer (task, o, (GDestroyNotify)outcome_free);
      return;
    }
  progress (run, "asking the mail servers for Kerberos");
  if ((login = cm_evo_login_new_sync (NULL, cancellable, &error)) != NULL)
    {
      cm_evo_login_probe_sync (login, PROBE_TIMEOUT_MS, cancellable);
      skip_refused (login, skipped);
    }
  if (login == NULL || (n = cm_evo_login_apply_sync (login, cancellable, &error)) < 0)
    {
      g_task_return_pointer (
        task,
        outcome_new (GTK_MESSAGE_ERROR, "Log in with smart card failed",
                     g_strdup_printf ("%s%s%s", run->logged_in ? run->logged_in : "",
                                      run->logged_in ? "\n" : "", error->message)),
        (GDestroyNotify)outcome_free);
      return;
    }
  g_task_return_pointer (
    task,
    outcome_new (n || skipped->len == 0 ? GTK_MESSAGE_INFO : GTK_MESSAGE_WARNING,
                 n ? "Mail accounts set to log in with your smart card's Kerberos ticket"
                   : "No mail account changed",
                 g_strdup_printf ("%s%s%d server%s now log%s in with Kerberos (GSSAPI); Evolution "
                                  "uses it at the next connection.%s%s",
                                  run->logged_in ? run->logged_in : "", run->logged_in ? "\n" : "",
                                  n, n == 1 ? "" : "s", n == 1 ? "s" : "",
                                  skipped->len ? "\nLeft as they are:\n" : "", skipped->str)),
    (GDestroyNotify)outcome_free);
}

static void
login_done (GObject *source, GAsyncResult *result, gpointer data)
{
  CmEvoLoginExtension *ext = data;
  Run *run = g_task_get_task_data (G_TASK (result));
  Outcome *o = g_task_propagate_pointer (G_TASK (result), NULL);
  EExtensible *view = e_extension_get_extensible (E_EXTENSION (ext));

  ext->busy = FALSE;
  e_activity_set_state (run->activity,
                        o && o->primary ? E_ACTIVITY_COMPLETED : E_ACTIVITY_CANCELLED);
  if (ext->actions)
    gtk_action_set_sensitive (gtk_action_group_get_action (ext->actions, ACTION_LOGIN), TRUE);
  if (o && o->primary && view)
    {
      EAlert *alert = cm_evo_alert_new (o->type, o->primary, o->secondary);
      e_alert_sink_submit_alert (
        E_ALERT_SINK (e_shell_view_get_shell_content (E_SHELL_VIEW (view))), alert);
      g_object_unref (alert);
    }
  if (o)
    outcome_free (o);
  g_object_unref (ext);
}

/* The addresses of the enabled mail identities, the default identity's first. */
static GPtrArray *
identity_addresses (EShell *shell)
{
  ESourceRegistry *registry = e_shell_get_registry (shell);
  g_autoptr (ESource) def = e_source_registry_ref_default_mail_identity (registry);
  GList *all = e_source_registry_list_enabled (registry, E_SOURCE_EXTENSION_MAIL_IDENTITY);
  GPtrArray *out = g_ptr_array_new_with_free_func (g_free);

  if (def)
    all = g_list_prepend (all, g_object_ref (def));
  for (GList *l = all; l; l = l->next)
    {
      char *address = e_source_mail_identity_dup_address (
        e_source_get_extension (l->data, E_SOURCE_EXTENSION_MAIL_IDENTITY));
      if (address && *address
          && !g_ptr_array_find_with_equal_func (out, address, g_str_equal, NULL))
        g_ptr_array_add (out, address);
      else
        g_free (address);
    }
  g_list_free_full (all, g_object_unref);
  return out;
}

static void
login_activate (GtkAction *action, CmEvoLoginExtension *ext)
{
  EShellView *view = E_SHELL_VIEW (e_extension_get_extensible (E_EXTENSION (ext)));
  EShellWindow *window = e_shell_view_get_shell_window (view);
  g_autoptr (GTask) task = NULL;
  Run *run;

  if (ext->busy)
    return;
  ext->busy = TRUE;
  gtk_action_set_sensitive (action, FALSE);
  run = g_new0 (Run, 1);
  run->window = GTK_WINDOW (g_object_ref (window));
  run->addresses = identity_addresses (e_shell_window_get_shell (window));
  run->cancellable = g_cancellable_new ();
  run->activity = e_activity_new ();
  e_activity_set_text (run->activity, "Log In with Smart Card");
  e_activity_set_icon_name (run->activity, "auth-smartcard-symbolic");
  e_activity_set_cancellable (run->activity, run->cancellable);
  e_activity_set_alert_sink (run->activity, E_ALERT_SINK (e_shell_view_get_shell_content (view)));
  e_shell_backend_add_activity (e_shell_view_get_shell_backend (view), run->activity);
  task = g_task_new (NULL, run->cancellable, login_done, g_object_ref (ext));
  g_task_set_check_cancellable (task, FALSE);
  g_task_set_task_data (task, run, (GDestroyNotify)run_free);
  g_task_run_in_thread (task, login_thread);
}

/* Merge the UI while the mail view is active; remove it otherwise. */
static void
login_toggled (EShellView *shell_view, CmEvoLoginExtension *ext)
{
  GtkUIManager *manager
    = e_shell_window_get_ui_manager (e_shell_view_get_shell_window (shell_view));
  g_autoptr (GError) error = NULL;

  if (e_shell_view_is_active (shell_view) == (ext->merge_id != 0))
    return;
  if (ext->merge_id)
    {
      gtk_ui_manager_remove_ui (manager, ext->merge_id);
      ext->merge_id = 0;
    }
  else if ((ext->merge_id = gtk_ui_manager_add_ui_from_string (manager, ui_definition, -1, &error))
           == 0)
    g_warning ("cannot add Log In with Smart Card to the mail window: %s", error->message);
  gtk_ui_manager_ensure_update (manager);
}

static void
login_extension_constructed (GObject *object)
{
  CmEvoLoginExtension *ext = (CmEvoLoginExtension *)object;
  EShellView *view;
  GtkAction *action;

  G_OBJECT_CLASS (cm_evo_login_extension_parent_class)->constructed (object);
  view = E_SHELL_VIEW (e_extension_get_extensible (E_EXTENSION (ext)));
  if (g_strcmp0 (E_SHELL_VIEW_GET_CLASS (view)->ui_manager_id, MAIL_UI_MANAGER_ID) != 0)
    return;
  ext->actions = gtk_action_group_new (ACTION_GROUP);
  action = gtk_action_new (ACTION_LOGIN, "_Log In with Smart Card",
                           "Log in to your mail servers with the Kerberos ticket of your smart "
                           "card, where they offer it, instead of a password",
                           NULL);
  gtk_action_set_icon_name (action, "auth-smartcard-symbolic");
  g_signal_connect (action, "activate", G_CALLBACK (login_activate), ext);
  gtk_action_group_add_action (ext->actions, action);
  g_object_unref (action);
  gtk_ui_manager_insert_action_group (
    e_shell_window_get_ui_manager (e_shell_view_get_shell_window (view)), ext->actions, 0);
  g_signal_connect (view, "toggled", G_CALLBACK (login_toggled), ext);
  login_toggled (view, ext);
}

static void
login_extension_dispose (GObject *object)
{
  CmEvoLoginExtension *ext = (CmEvoLoginExtension *)object;
  EExtensible *extensible = e_extension_get_extensible (E_EXTENSION (ext));

  if (extensible)
    g_signal_handlers_disconnect_by_data (extensible, ext);
  g_clear_object (&ext->actions);
  G_OBJECT_CLASS (cm_evo_login_extension_parent_class)->dispose (object);
}

static void
cm_evo_login_extension_class_init (CmEvoLoginExtensionClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->constructed = login_extension_constructed;
  object_class->dispose = login_extension_dispose;
  E_EXTENSION_CLASS (klass)->extensible_type = E_TYPE_SHELL_VIEW;
}

static void
cm_evo_login_extension_class_finalize (CmEvoLoginExtensionClass *klass)
{
}

static void
cm_evo_login_extension_init (CmEvoLoginExtension *ext)
{
}

void
cm_evo_login_action_type_register (GTypeModule *module)
{
  cm_evo_login_extension_register_type (module);
}
