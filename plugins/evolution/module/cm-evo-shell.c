/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cm-evo-shell.c: CmEvoShellExtension, the extension of EShell (one per process). It adds the
 * "Smart Card" page to the Preferences window (the page is built, and reads anything, only
 * when the user opens it) and owns the card watcher, started a few seconds after start-up so
 * that nothing of ours runs while Evolution comes up. */
#include "cm-evo-login-action.h"
#include "cm-evo-module.h"

/* After the first window is up; the watcher itself only waits on pcscd. */
#define WATCH_DELAY_SECONDS 3
/* Between Evolution's "Certificates" page and the plugin pages. */
#define PAGE_SORT_ORDER 750

typedef struct
{
  EExtension parent;
  CmEvoWatch *watch; /* owned */
  guint start_id;    /* the delayed start of the watcher, or 0 */
} CmEvoShellExtension;

typedef struct
{
  EExtensionClass parent_class;
} CmEvoShellExtensionClass;

GType cm_evo_shell_extension_get_type (void);
G_DEFINE_DYNAMIC_TYPE (CmEvoShellExtension, cm_evo_shell_extension, E_TYPE_EXTENSION)

static GtkWidget *
create_page (EPreferencesWindow *window)
{
  return cm_evo_page_new (E_SHELL (e_preferences_window_get_shell (window)));
}

static gboolean
start_watch (gpointer data)
{
  CmEvoShellExtension *ext = data;

  ext->start_id = 0;
  cm_evo_watch_start (ext->watch);
  return G_SOURCE_REMOVE;
}

static void
shell_extension_constructed (GObject *object)
{
  CmEvoShellExtension *ext = (CmEvoShellExtension *)object;
  EShell *shell = E_SHELL (e_extension_get_extensible (E_EXTENSION (ext)));
  GtkWidget *prefs;

  G_OBJECT_CLASS (cm_evo_shell_extension_parent_class)->constructed (object);
  prefs = e_shell_get_preferences_window (shell);
  if (prefs)
    e_preferences_window_add_page (E_PREFERENCES_WINDOW (prefs), CM_EVO_PAGE_NAME,
                                   "auth-smartcard-symbolic", "Smart Card", NULL, create_page,
                                   PAGE_SORT_ORDER);
  else
    g_warning ("Evolution has no Preferences window: the Smart Card page is not added");
  ext->watch = cm_evo_watch_new (shell);
  ext->start_id = g_timeout_add_seconds (WATCH_DELAY_SECONDS, start_watch, ext);
}

static void
shell_extension_dispose (GObject *object)
{
  CmEvoShellExtension *ext = (CmEvoShellExtension *)object;

  if (ext->start_id)
    {
      g_source_remove (ext->start_id);
      ext->start_id = 0;
    }
  g_clear_object (&ext->watch);
  G_OBJECT_CLASS (cm_evo_shell_extension_parent_class)->dispose (object);
}

static void
cm_evo_shell_extension_class_init (CmEvoShellExtensionClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->constructed = shell_extension_constructed;
  object_class->dispose = shell_extension_dispose;
  E_EXTENSION_CLASS (klass)->extensible_type = E_TYPE_SHELL;
}

static void
cm_evo_shell_extension_class_finalize (CmEvoShellExtensionClass *klass)
{
}

static void
cm_evo_shell_extension_init (CmEvoShellExtension *ext)
{
}

void
cm_evo_shell_extension_type_register (GTypeModule *module)
{
  cm_evo_shell_extension_register_type (module);
  cm_evo_login_action_type_register (module); /* the mail window's Log In with Smart Card */
}
