/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cm-evo-ui.c: CmEvoUiExtension, an extension of every EShellView that adds, to the mail
 * view only, the action "Republish Certificates to GAL" to the File menu and the toolbar. The
 * action's UI is merged while the mail view is the window's active view, and removed when
 * another view (contacts, calendar) becomes active. The action is disabled until the address
 * list server is set (cacmail.conf, watched: the Smart Card page's Directory Settings or
 * `cacmail setup` write it) and while a republish runs. */
#include "cm-evo-module.h"

#define MAIL_UI_MANAGER_ID "org.gnome.evolution.mail"
#define ACTION_GROUP "cacmail"
#define ACTION_REPUBLISH "cacmail-republish"

typedef struct
{
  EExtension parent;
  GtkActionGroup *actions; /* owned; inserted in the window's UI manager */
  guint merge_id;          /* UI merged while the mail view is active, or 0 */
  gboolean busy;           /* a republish runs in this window */
  GFileMonitor *monitor;   /* cacmail.conf */
} CmEvoUiExtension;

typedef struct
{
  EExtensionClass parent_class;
} CmEvoUiExtensionClass;

GType cm_evo_ui_extension_get_type (void);
G_DEFINE_DYNAMIC_TYPE (CmEvoUiExtension, cm_evo_ui_extension, E_TYPE_EXTENSION)

static const char ui_definition[] = "<ui>"
                                    "  <menubar name='main-menu'>"
                                    "    <menu action='file-menu'>"
                                    "      <placeholder name='long-running-actions'>"
                                    "        <menuitem action='" ACTION_REPUBLISH "'/>"
                                    "      </placeholder>"
                                    "    </menu>"
                                    "  </menubar>"
                                    "  <toolbar name='main-toolbar'>"
                                    "    <placeholder name='mail-toolbar-common'>"
                                    "      <toolitem action='" ACTION_REPUBLISH "'/>"
                                    "    </placeholder>"
                                    "  </toolbar>"
                                    "</ui>";

static EShellView *
ui_shell_view (CmEvoUiExtension *ext)
{
  return E_SHELL_VIEW (e_extension_get_extensible (E_EXTENSION (ext)));
}

#define TOOLTIP                                                                                    \
  "Publish the email certificates of your smart card to the organization's address list (GAL), "   \
  "so that others can send you encrypted mail"

/* Sensitive when the directory is set and no republish of this window runs. */
static void
update_action (CmEvoUiExtension *ext)
{
  GtkAction *action = gtk_action_group_get_action (ext->actions, ACTION_REPUBLISH);
  CmEvoDirectory *dir = cm_evo_directory_read ();
  gboolean set = cm_evo_directory_is_set (dir);

  gtk_action_set_sensitive (action, set && !ext->busy);
  gtk_action_set_tooltip (action, set ? TOOLTIP
                                      : "Set the address list server first: Edit, Preferences, "
                                        "Smart Card, Directory Settings");
  cm_evo_directory_free (dir);
}

static void
config_changed (GFileMonitor *monitor, GFile *file, GFile *other, GFileMonitorEvent event,
                CmEvoUiExtension *ext)
{
  update_action (ext);
}

static void
republish_done (gpointer data)
{
  CmEvoUiExtension *ext = data;

  ext->busy = FALSE;
  if (ext->actions)
    update_action (ext);
  g_object_unref (ext);
}

static void
republish_activate (GtkAction *action, CmEvoUiExtension *ext)
{
  if (ext->busy || cm_evo_republish_running ())
    return;
  ext->busy = TRUE;
  gtk_action_set_sensitive (action, FALSE);
  cm_evo_republish_start (ui_shell_view (ext), republish_done, g_object_ref (ext));
}

/* Merge the UI while the mail view is active; remove it otherwise. */
static void
ui_toggled (EShellView *shell_view, CmEvoUiExtension *ext)
{
  EShellWindow *shell_window = e_shell_view_get_shell_window (shell_view);
  GtkUIManager *manager = e_shell_window_get_ui_manager (shell_window);
  g_autoptr (GError) error = NULL;
  gboolean active = e_shell_view_is_active (shell_view);

  if (active == (ext->merge_id != 0))
    return;
  if (ext->merge_id)
    {
      gtk_ui_manager_remove_ui (manager, ext->merge_id);
      ext->merge_id = 0;
    }
  else
    {
      ext->merge_id = gtk_ui_manager_add_ui_from_string (manager, ui_definition, -1, &error);
      if (ext->merge_id == 0)
        g_warning ("cannot add the Republish action to the mail window: %s", error->message);
    }
  gtk_ui_manager_ensure_update (manager);
}

static void
ui_extension_constructed (GObject *object)
{
  CmEvoUiExtension *ext = (CmEvoUiExtension *)object;
  EShellView *shell_view;
  EShellWindow *shell_window;
  GtkAction *action;

  G_OBJECT_CLASS (cm_evo_ui_extension_parent_class)->constructed (object);
  shell_view = ui_shell_view (ext);
  if (g_strcmp0 (E_SHELL_VIEW_GET_CLASS (shell_view)->ui_manager_id, MAIL_UI_MANAGER_ID) != 0)
    return;
  shell_window = e_shell_view_get_shell_window (shell_view);
  ext->actions = gtk_action_group_new (ACTION_GROUP);
  action = gtk_action_new (ACTION_REPUBLISH, "Re_publish Certificates to GAL", TOOLTIP, NULL);
  gtk_action_set_icon_name (action, "send-to-symbolic");
  g_signal_connect (action, "activate", G_CALLBACK (republish_activate), ext);
  gtk_action_group_add_action (ext->actions, action);
  g_object_unref (action);
  gtk_ui_manager_insert_action_group (e_shell_window_get_ui_manager (shell_window), ext->actions,
                                      0);
  g_signal_connect (shell_view, "toggled", G_CALLBACK (ui_toggled), ext);
  ui_toggled (shell_view, ext);
  {
    g_autofree char *path = cm_ldap_config_default_path ();
    g_autoptr (GFile) file = g_file_new_for_path (path);
    ext->monitor = g_file_monitor_file (file, G_FILE_MONITOR_WATCH_MOVES, NULL, NULL);
    if (ext->monitor)
      g_signal_connect (ext->monitor, "changed", G_CALLBACK (config_changed), ext);
  }
  update_action (ext);
}

static void
ui_extension_dispose (GObject *object)
{
  CmEvoUiExtension *ext = (CmEvoUiExtension *)object;
  EExtensible *extensible = e_extension_get_extensible (E_EXTENSION (ext));

  if (extensible)
    g_signal_handlers_disconnect_by_data (extensible, ext);
  if (ext->monitor)
    {
      g_signal_handlers_disconnect_by_data (ext->monitor, ext);
      g_file_monitor_cancel (ext->monitor);
      g_clear_object (&ext->monitor);
    }
  g_clear_object (&ext->actions);
  G_OBJECT_CLASS (cm_evo_ui_extension_parent_class)->dispose (object);
}

static void
cm_evo_ui_extension_class_init (CmEvoUiExtensionClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->constructed = ui_extension_constructed;
  object_class->dispose = ui_extension_dispose;
  E_EXTENSION_CLASS (klass)->extensible_type = E_TYPE_SHELL_VIEW;
}

static void
cm_evo_ui_extension_class_finalize (CmEvoUiExtensionClass *klass)
{
}

static void
cm_evo_ui_extension_init (CmEvoUiExtension *ext)
{
}

void
cm_evo_ui_extension_type_register (GTypeModule *module)
{
  cm_evo_ui_extension_register_type (module);
}
