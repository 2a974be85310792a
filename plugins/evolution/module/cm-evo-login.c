/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cm-evo-login.c: CmEvoLoginExtension, an extension of every EShellView that adds, to the mail
 * view only, "Log In with Smart Card" to the File menu: with a Kerberos ticket from the card
 * (`cacmail login`, checked with `cacmail login --status`), each identity's mail account and
 * SMTP server that offer GSSAPI are set to Kerberos through the source registry
 * (libcacmail-evolution, cm-evo-login.h); accounts whose server offers no GSSAPI are left as
 * they are and named. The work runs in a thread; the result is an alert in the window. */
#include "cm-evo-login-action.h"
#include "cm-evo-module.h"
#include <cm-evo-login.h>

#define MAIL_UI_MANAGER_ID "org.gnome.evolution.mail"
#define ACTION_GROUP "cacmail-login"
#define ACTION_LOGIN "cacmail-login"
#define PROBE_TIMEOUT_MS 10000

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

/* What the thread found: an alert's type and texts. */
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

/* The cacmail program: on PATH, else where it was installed. Caller frees. */
static char *
cacmail_program (void)
{
  char *path = g_find_program_in_path ("cacmail");

#ifdef CM_BINDIR
  return path ? path : g_build_filename (CM_BINDIR, "cacmail", NULL);
#else
  return path ? path : g_strdup ("cacmail");
#endif
}

/* TRUE when `cacmail login --status` finds a valid ticket. */
static gboolean
have_ticket (void)
{
  g_autofree char *prog = cacmail_program ();
  const char *argv[] = { prog, "login", "--status", NULL };
  g_autoptr (GSubprocess) p = g_subprocess_newv (
    argv, G_SUBPROCESS_FLAGS_STDOUT_SILENCE | G_SUBPROCESS_FLAGS_STDERR_SILENCE, NULL);

  return p && g_subprocess_wait_check (p, NULL, NULL);
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

static Outcome *
outcome_new (GtkMessageType type, const char *primary, char *secondary)
{
  Outcome *o = g_new0 (Outcome, 1);

  o->type = type;
  o->primary = g_strdup (primary);
  o->secondary = secondary;
  return o;
}

static void
login_thread (GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (CmEvoLogin) login = NULL;
  g_autoptr (GString) skipped = g_string_new (NULL);
  gint n;

  if (!have_ticket ())
    {
      g_task_return_pointer (
        task,
        outcome_new (GTK_MESSAGE_WARNING, "No Kerberos ticket from your smart card",
                     g_strdup ("Insert the card and run 'cacmail login' in a terminal (it asks "
                               "for the card's PIN), then choose File > Log In with Smart Card "
                               "again.")),
        (GDestroyNotify)outcome_free);
      return;
    }
  if ((login = cm_evo_login_new_sync (NULL, cancellable, &error)) != NULL)
    {
      cm_evo_login_probe_sync (login, PROBE_TIMEOUT_MS, cancellable);
      skip_refused (login, skipped);
    }
  if (login == NULL || (n = cm_evo_login_apply_sync (login, cancellable, &error)) < 0)
    {
      g_task_return_pointer (
        task,
        outcome_new (GTK_MESSAGE_ERROR, "Log in with smart card failed", g_strdup (error->message)),
        (GDestroyNotify)outcome_free);
      return;
    }
  g_task_return_pointer (
    task,
    outcome_new (n || skipped->len == 0 ? GTK_MESSAGE_INFO : GTK_MESSAGE_WARNING,
                 n ? "Mail accounts set to log in with your smart card's Kerberos ticket"
                   : "No mail account changed",
                 g_strdup_printf ("%d server%s now log%s in with Kerberos (GSSAPI); Evolution "
                                  "uses it at the next connection.%s%s",
                                  n, n == 1 ? "" : "s", n == 1 ? "s" : "",
                                  skipped->len ? "\nLeft as they are:\n" : "", skipped->str)),
    (GDestroyNotify)outcome_free);
}

static void
login_done (GObject *source, GAsyncResult *result, gpointer data)
{
  CmEvoLoginExtension *ext = data;
  Outcome *o = g_task_propagate_pointer (G_TASK (result), NULL);
  EExtensible *view = e_extension_get_extensible (E_EXTENSION (ext));

  ext->busy = FALSE;
  if (ext->actions)
    gtk_action_set_sensitive (gtk_action_group_get_action (ext->actions, ACTION_LOGIN), TRUE);
  if (o && view)
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

static void
login_activate (GtkAction *action, CmEvoLoginExtension *ext)
{
  g_autoptr (GTask) task = NULL;

  if (ext->busy)
    return;
  ext->busy = TRUE;
  gtk_action_set_sensitive (action, FALSE);
  task = g_task_new (NULL, NULL, login_done, g_object_ref (ext));
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
