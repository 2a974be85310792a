/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* lookup-configure.c: `cacmail lookup --configure evolution|thunderbird`: the directory of
 * cacmail.conf as the mail client's own address book, so that it completes recipients and
 * fetches their certificates itself (docs/ldap.md, "Recipient lookup"). */
#include "lookup.h"
#include <cm-tb-ldap.h>
#include <stdio.h>
#include <string.h>
#ifdef CM_LOOKUP_EVOLUTION
#include <cm-evo-addressbook.h>
#endif

/* In cacmail-lookup-evolution (the only program of the lookup that links
 * evolution-data-server, packaged with the Evolution plugin), or through it. */
static int
configure_evolution (CmLdapConfig *cfg, gboolean json, char **argv)
{
#ifdef CM_LOOKUP_EVOLUTION
  g_autoptr (GError) error = NULL;
  g_autoptr (CmEvoAddressbook) ab = NULL, back = NULL;
  const char *bind = cm_ldap_config_get (cfg, "bind");

  if (bind && strcmp (bind, "simple") != 0)
    return cli_usage ("Evolution's LDAP address book binds anonymously or with a bind DN and "
                      "password: set bind = simple and bind-dn (not '%s')",
                      bind);
  ab = cm_evo_addressbook_configure_sync (cm_ldap_config_get (cfg, "uri"),
                                          cm_ldap_config_get (cfg, "base"),
                                          cm_ldap_config_get (cfg, "bind-dn"), NULL, &error);
  /* read back through a new connection to the registry: what Evolution will see */
  if (ab)
    back = cm_evo_addressbook_read_sync (NULL, &error);
  if (back == NULL)
    {
      fprintf (stderr, "cacmail: error: %s\n", error->message);
      return error->code == CM_EVO_ERROR_REGISTRY ? CLI_EXIT_ENVIRONMENT : CLI_EXIT_FAILED;
    }
  back->created = ab->created;
  if (json)
    {
      g_autoptr (JsonNode) node = cm_evo_addressbook_to_json (back);
      cli_print_json (node);
    }
  else
    printf ("Evolution: address book '%s' %s: %s://%s:%u, base %s, %s\n", back->display_name,
            back->created ? "created" : "updated",
            strcmp (back->security, "ldaps") == 0 ? "ldaps" : "ldap", back->host, back->port,
            back->root_dn, back->user ? back->user : "anonymous");
  return CLI_EXIT_OK;
#else
  (void)cfg;
  (void)json;
  return cli_run_helper ("cacmail-lookup-evolution", "Evolution support (evolution-data-server)",
                         (int)g_strv_length (argv), argv);
#endif
}

static void
print_changes (GPtrArray *changes, gboolean json)
{
  if (json)
    {
      g_autoptr (JsonNode) node = cm_tb_pref_changes_to_json (changes);
      cli_print_json (node);
      return;
    }
  for (guint i = 0; i < changes->len; i++)
    {
      CmTbPrefChange *c = g_ptr_array_index (changes, i);
      g_autofree char *v = cm_tb_pref_value_to_js (&c->new_value);
      printf ("  %s = %s\n", c->name, v ? v : "(removed)");
    }
}

static int
configure_thunderbird (CmLdapConfig *cfg, const char *profile_dir, gboolean json)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (CmTbProfile) profile = cm_tb_profile_open (profile_dir, &error);
  g_autoptr (GPtrArray) changes = NULL;
  const char *bind = cm_ldap_config_get (cfg, "bind");
  g_auto (GStrv) uris = NULL;

  if (profile == NULL)
    return cli_fail (error);
  if (bind && strcmp (bind, "simple") != 0 && strcmp (bind, "gssapi") != 0)
    return cli_usage ("Thunderbird's directory binds anonymously, with a bind DN or with "
                      "Kerberos: set bind = simple or gssapi (not '%s')",
                      bind);
  uris = g_strsplit_set (cm_ldap_config_get (cfg, "uri") ? cm_ldap_config_get (cfg, "uri") : "",
                         " ,", -1);
  changes = cm_tb_ldap_plan (cm_tb_profile_get_prefs (profile), uris[0],
                             cm_ldap_config_get (cfg, "base"), cm_ldap_config_get (cfg, "bind-dn"),
                             g_strcmp0 (bind, "gssapi") == 0, &error);
  if (changes == NULL || !cm_tb_profile_ldap_sync (profile, changes, &error))
    return cli_fail (error);
  if (!json)
    printf ("Thunderbird (%s): %s\n", cm_tb_profile_get_dir (profile),
            changes->len ? "directory set (undo: cacmail thunderbird undo)"
                         : "the directory was set already");
  print_changes (changes, json);
  return CLI_EXIT_OK;
}

int
lookup_configure (CmLdapConfig *cfg, const char *client, const char *profile, gboolean json,
                  char **argv)
{
  if (strcmp (client, "evolution") == 0)
    return configure_evolution (cfg, json, argv);
  return configure_thunderbird (cfg, profile, json);
}
