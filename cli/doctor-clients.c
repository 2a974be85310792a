/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* doctor-clients.c: `cacmail doctor`'s checks of the directory settings (present, and a
 * connection test with TLS verified and a deadline: cm_ldap_config_test_sync) and of the S/MIME
 * settings of every mail client (Evolution through its registry, each Thunderbird profile's
 * prefs.js), with the same code `cacmail evolution check` and `cacmail thunderbird check` use. */
#include "doctor.h"
#include <cm-ldap.h>
#include <cm-nssdb.h>
#include <cm-tb.h>
#ifdef CM_HAVE_EVOLUTION
#include <cm-evo.h>
#endif
#include <stdio.h>

#define SETUP_HINT                                                                                 \
  "Run cacmail setup with the address list's settings (--uri URI --base DN --bind "                \
  "simple|gssapi|external): it tests the connection, then saves them"

void
doctor_check_directory (Doctor *d)
{
  g_autoptr (CmLdapConfig) cfg = cm_ldap_config_new ();
  g_autofree char *path = cm_ldap_config_default_path ();
  g_autofree char *timeout = g_strdup_printf ("%d", d->timeout);
  g_autofree char *report = NULL;
  g_autoptr (GError) error = NULL;

  if (!cm_ldap_config_load_file (cfg, path, FALSE, &error))
    {
      doctor_problem (d, "directory-settings-invalid", CM_SEVERITY_ERROR, SETUP_HINT, "%s",
                      error->message);
      return;
    }
  if (cm_ldap_config_get (cfg, "uri") == NULL || cm_ldap_config_get (cfg, "base") == NULL)
    {
      doctor_problem (d, "directory-not-set", CM_SEVERITY_ERROR, SETUP_HINT,
                      "the address list's settings (uri, base) are not in %s: cacmail cannot "
                      "publish your certificates or find your recipients'",
                      path);
      return;
    }
  if (cm_ldap_config_get (cfg, "timeout") == NULL)
    cm_ldap_config_set (cfg, "timeout", timeout, NULL);
  if (!cm_ldap_config_test_sync (cfg, &report, NULL, &error))
    {
      gboolean config = g_error_matches (error, CM_LDAP_ERROR, CM_LDAP_ERROR_CONFIG);
      doctor_problem (d, config ? "directory-settings-invalid" : "directory-unreachable",
                      CM_SEVERITY_ERROR, SETUP_HINT, "the address list %s: %s",
                      cm_ldap_config_get (cfg, "uri"), error->message);
      return;
    }
  doctor_checked (d, "directory: %s", report);
}

#ifdef CM_HAVE_EVOLUTION
static char *
joined_messages (const char *const *m)
{
  return g_strjoinv ("; ", (char **)m);
}

void
doctor_check_evolution (Doctor *d)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (CmEvoRegistry) reg = NULL;
  g_autoptr (CmInventory) inv = cm_inventory_new ();
  g_autoptr (CmNssDb) db = NULL;
  g_autofree char *dir = g_build_filename (g_get_home_dir (), ".pki", "nssdb", NULL);
  GPtrArray *settings;
  guint stale = 0;

  g_autofree char *bus = g_build_filename (g_get_user_runtime_dir (), "bus", NULL);

  /* without a session bus there is no registry to ask (and nothing to start one) */
  if ((g_getenv ("DBUS_SESSION_BUS_ADDRESS") == NULL && !g_file_test (bus, G_FILE_TEST_EXISTS))
      || (reg = cm_evo_registry_new_sync (NULL, &error)) == NULL)
    {
      doctor_checked (d, "Evolution: its settings registry is not running (not checked)");
      return;
    }
  db = cm_nss_db_open_sync (dir, CM_NSS_DB_READ_ONLY | CM_NSS_DB_LOAD_MODULES, NULL, NULL);
  if (db)
    cm_nss_db_add_certs_sync (db, inv, NULL, NULL);
  cm_nssdb_mark_recovered (inv);
  doctor_read_cards (NULL, inv, NULL);
  settings = cm_evo_registry_list_identities (reg);
  for (guint i = 0; i < settings->len; i++)
    {
      g_autoptr (CmEvoIdentity) id
        = cm_evo_identity_check (g_ptr_array_index (settings, i), inv, d->inserted, d->at);
      const CmEvoSettings *cur = cm_evo_identity_get_current (id);
      g_autofree char *why = NULL;

      if (!cm_evo_identity_is_stale (id))
        continue;
      stale++;
      why = joined_messages (cm_evo_identity_get_messages (id));
      doctor_problem (d, "evolution-settings-stale", CM_SEVERITY_ERROR,
                      "Run cacmail evolution fix (cacmail evolution undo puts the old settings "
                      "back)",
                      "Evolution identity %s <%s>: %s", cur->name ? cur->name : cur->uid,
                      cur->address, why);
    }
  doctor_checked (d, "Evolution: %u mail identit%s, %u stale", settings->len,
                  settings->len == 1 ? "y" : "ies", stale);
}
#else
void
doctor_check_evolution (Doctor *d)
{
  doctor_checked (d, "Evolution: this cacmail was built without Evolution support (not checked)");
}
#endif

static void
check_profile (Doctor *d, CmNssdbLocation *loc)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (CmTbProfile) profile = cm_tb_profile_open (loc->dir, &error);
  g_autoptr (CmInventory) inv = cm_inventory_new ();
  g_autoptr (GPtrArray) ids = NULL;
  guint stale = 0;

  if (profile == NULL || !cm_tb_profile_add_certs_sync (profile, inv, NULL, &error))
    {
      doctor_checked (d, "Thunderbird profile %s: not checked (%s)", loc->dir, error->message);
      return;
    }
  doctor_read_cards (NULL, inv, NULL);
  if ((ids = cm_tb_profile_check (profile, inv, d->inserted, d->at, NULL, &error)) == NULL)
    {
      doctor_problem (d, "thunderbird-settings-unreadable", CM_SEVERITY_ERROR,
                      "Fix what the message says, then run cacmail doctor again", "%s",
                      error->message);
      return;
    }
  for (guint i = 0; i < ids->len; i++)
    {
      CmTbIdentity *id = g_ptr_array_index (ids, i);
      const CmTbSettings *s = cm_tb_identity_get_settings (id);
      g_autofree char *why = NULL, *hint = NULL;

      if (!cm_tb_identity_is_stale (id))
        continue;
      stale++;
      why = g_strjoinv ("; ", (char **)cm_tb_identity_get_messages (id));
      hint = g_strdup_printf ("With Thunderbird closed, run cacmail thunderbird --profile %s fix "
                              "(or use the cacmail add-on's Fix S/MIME Settings)",
                              loc->dir);
      doctor_problem (d, "thunderbird-settings-stale", CM_SEVERITY_ERROR, hint,
                      "Thunderbird identity %s <%s> in %s: %s", s->name ? s->name : s->id,
                      s->address, loc->dir, why);
    }
  doctor_checked (d, "Thunderbird profile %s: %u mail identit%s, %u stale", loc->dir, ids->len,
                  ids->len == 1 ? "y" : "ies", stale);
}

void
doctor_check_thunderbird (Doctor *d)
{
  g_autoptr (GPtrArray) locs = cm_nssdb_find_locations ();

  for (guint i = 0; i < locs->len; i++)
    {
      CmNssdbLocation *loc = g_ptr_array_index (locs, i);
      if (loc->client == CM_NSSDB_CLIENT_THUNDERBIRD && loc->exists)
        check_profile (d, loc);
    }
}
