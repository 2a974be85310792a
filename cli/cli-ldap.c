/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cli-ldap.c: the directory settings as republish and lookup read them (cli-ldap.h). */
#include "cli-ldap.h"

gboolean
cli_ldap_config_prepare (CmLdapConfig *cfg, const char *config, const char *const *keys,
                         char *const *vals, gsize n, gboolean insecure, gboolean plain,
                         GError **error)
{
  g_autofree char *def = cm_ldap_config_default_path ();

  if (!cm_ldap_config_load_file (cfg, config ? config : def, config != NULL, error))
    return FALSE;
  for (gsize i = 0; i < n; i++)
    if (vals[i] && !cm_ldap_config_set (cfg, keys[i], vals[i], error))
      return FALSE;
  if (insecure)
    cm_ldap_config_set (cfg, "insecure", "true", NULL);
  if (plain)
    cm_ldap_config_set (cfg, "allow-plain-ldap", "true", NULL);
  return TRUE;
}
