/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cm-evo-module.c: the entry points Evolution's module loader (EModule) calls. Loading only
 * registers types: no card, NSS, registry or LDAP access happens here. */
#include "cm-evo-module.h"

G_MODULE_EXPORT void e_module_load (GTypeModule *type_module);
G_MODULE_EXPORT void e_module_unload (GTypeModule *type_module);

G_MODULE_EXPORT void
e_module_load (GTypeModule *type_module)
{
  cm_evo_watch_type_register (type_module);
  cm_evo_page_type_register (type_module);
  cm_evo_ui_extension_type_register (type_module);
  cm_evo_shell_extension_type_register (type_module);
}

G_MODULE_EXPORT void
e_module_unload (GTypeModule *type_module)
{
}

EAlert *
cm_evo_alert_new (GtkMessageType type, const char *primary, const char *secondary)
{
  /* e-system.error: generic-error and generic-warning take {0} primary and {1} secondary;
   * simple-info takes {0} secondary only, so its primary text is set afterwards. */
  EAlert *alert;

  if (type == GTK_MESSAGE_ERROR)
    alert = e_alert_new ("system:generic-error", primary, secondary ? secondary : "", NULL);
  else if (type == GTK_MESSAGE_WARNING)
    alert = e_alert_new ("system:generic-warning", primary, secondary ? secondary : "", NULL);
  else
    {
      alert = e_alert_new ("system:simple-info", secondary ? secondary : "", NULL);
      e_alert_set_primary_text (alert, primary);
    }
  return alert;
}
