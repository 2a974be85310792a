/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* doctor-clients.c: `cacmail doctor`'s checks of the directory settings (present, and a
 * connection test with TLS verified and a deadline: cm_ldap_config_test_sync) and of the S/MIME
 * settings of every mail client (Evolution through `cacmail evolution check`, each Thunderbird
 * profile's prefs.js with the code `cacmail thunderbird check` uses). */
#include "doctor.h"
#include <cm-ldap.h>
#include <cm-nssdb.h>
#include <cm-tb.h>
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

/* `cacmail evolution check --json` (the helper cacmail-evolution, packaged with the Evolution
 * plugin: it links evolution-data-server, which this program does not), parsed. NULL with
 * @why (caller frees) when it cannot run or answer. */
static JsonNode *
evolution_check (char **why)
{
  g_autofree char *path = cli_helper_path ("cacmail-evolution");
  g_autofree char *bus = g_build_filename (g_get_user_runtime_dir (), "bus", NULL);
  g_autofree char *out = NULL, *err = NULL;
  g_autoptr (GError) error = NULL;
  char *argv[] = { NULL, (char *)"evolution", (char *)"check", (char *)"--json", NULL };
  int status = 0;

  if (path == NULL)
    return *why = g_strdup ("cacmail-evolution is not installed"), NULL;
  /* without a session bus there is no registry to ask (and nothing to start one) */
  if (g_getenv ("DBUS_SESSION_BUS_ADDRESS") == NULL && !g_file_test (bus, G_FILE_TEST_EXISTS))
    return *why = g_strdup ("no session bus, so no settings registry"), NULL;
  argv[0] = path;
  if (!g_spawn_sync (NULL, argv, NULL, G_SPAWN_FILE_AND_ARGV_ZERO, NULL, NULL, &out, &err, &status,
                     &error))
    return *why = g_strdup (error->message), NULL;
  if (!g_spawn_check_wait_status (status, NULL))
    return *why = g_strdup (g_strstrip (err)), NULL;
  if ((out = g_strstrip (out)) == NULL || *out == '\0')
    return *why = g_strdup ("no answer"), NULL;
  {
    JsonNode *root = json_from_string (out, &error);
    if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
      return *why = g_strdup ("an answer that is not JSON"), NULL;
    return root;
  }
}

static const char *
member (JsonObject *o, const char *name)
{
  JsonNode *n = json_object_get_member (o, name);
  return n && JSON_NODE_HOLDS_VALUE (n) ? json_node_get_string (n) : NULL;
}

void
doctor_check_evolution (Doctor *d)
{
  g_autofree char *why = NULL;
  g_autoptr (JsonNode) root = evolution_check (&why);
  JsonArray *ids;
  guint stale = 0, n;

  if (root == NULL
      || (ids = json_object_get_array_member (json_node_get_object (root), "identities")) == NULL)
    {
      doctor_checked (d, "Evolution: not checked (%s)", why ? why : "no identities");
      return;
    }
  n = json_array_get_length (ids);
  for (guint i = 0; i < n; i++)
    {
      JsonObject *id = json_array_get_object_element (ids, i);
      JsonArray *msgs = json_object_get_array_member (id, "messages");
      g_autoptr (GString) text = g_string_new (NULL);

      if (g_strcmp0 (member (id, "state"), "stale") != 0)
        continue;
      stale++;
      for (guint j = 0; msgs && j < json_array_get_length (msgs); j++)
        g_string_append_printf (text, "%s%s", j ? "; " : "",
                                json_array_get_string_element (msgs, j));
      doctor_problem (d, "evolution-settings-stale", CM_SEVERITY_ERROR,
                      "Run cacmail evolution fix (cacmail evolution undo puts the old settings "
                      "back)",
                      "Evolution identity %s <%s>: %s",
                      member (id, "name") ? member (id, "name") : member (id, "uid"),
                      member (id, "address"), text->str);
    }
  doctor_checked (d, "Evolution: %u mail identit%s, %u stale", n, n == 1 ? "y" : "ies", stale);
}

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
