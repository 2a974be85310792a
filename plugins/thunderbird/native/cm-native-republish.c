/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cm-native-republish.c: "republish": the card's certificates to the address list (GAL) in this
 * process, through libcacmail-ldap, as Evolution's module does it in-process. The settings are
 * those of `cacmail republish` (the [ldap] group of $XDG_CONFIG_HOME/cacmail/cacmail.conf); the
 * NSS database is the Thunderbird profile's (its card module, its trusted roots); the LDAP
 * password and the PIN are asked through the add-on when the library needs them. */
#include "cm-native.h"
#include <cm-ldap.h>

static char *
ask_secret (CmLdapSecretKind kind, const char *subject, gpointer data, GError **error)
{
  CmNativeJob *job = data;
  g_autofree char *prompt = kind == CM_LDAP_SECRET_PIN
                              ? g_strdup_printf ("PIN of the card '%s'", subject)
                              : g_strdup_printf ("LDAP password for %s", subject);

  /* the library wipes and frees it (g_malloc'ed, as cm_native_job_ask's) */
  return cm_native_job_ask (job, kind == CM_LDAP_SECRET_PIN ? "pin" : "password", subject, prompt,
                            error);
}

static void
progress (CmLdapStep step, gboolean done, double ms, gpointer data)
{
  CmNativeJob *job = data;
  JsonObject *o = json_object_new ();
  JsonNode *node = json_node_new (JSON_NODE_OBJECT);
  g_autofree char *text
    = g_strdup_printf ("%s (step %d of %d)%s", cm_ldap_step_to_string (step), (int)step + 1,
                       (int)CM_LDAP_N_STEPS, done ? ": done" : "...");

  json_object_set_string_member (o, "step", cm_ldap_step_to_string (step));
  json_object_set_int_member (o, "index", (int)step + 1);
  json_object_set_int_member (o, "count", CM_LDAP_N_STEPS);
  json_object_set_boolean_member (o, "done", done);
  json_object_set_double_member (o, "ms", done ? ms : 0);
  json_object_set_string_member (o, "text", text);
  json_node_take_object (node, o);
  cm_native_job_progress (job, node);
}

static void
add_take (JsonArray *lines, char *line)
{
  json_array_add_string_element (lines, line);
  g_free (line);
}

/* What the server now holds, in words (the popup shows these lines). */
static JsonArray *
summary (CmLdapResult *res)
{
  GPtrArray *certs = cm_ldap_result_get_new_certs (res);
  JsonArray *lines = json_array_new ();

  add_take (lines, g_strdup_printf ("%s (%s) now holds:", cm_ldap_result_get_dn (res),
                                    cm_ldap_result_get_email (res)));
  for (guint i = 0; i < certs->len; i++)
    {
      CmCert *c = g_ptr_array_index (certs, i);
      g_autofree char *until = cm_time_format_date (cm_cert_get_not_after (c));
      const char *cn = cm_cert_get_subject_cn (c);
      add_take (lines, g_strdup_printf ("%u. %s certificate %s, valid until %s", i + 1,
                                        cm_role_to_string (cm_cert_get_role (c)),
                                        cn ? cn : cm_cert_get_subject (c), until));
    }
  add_take (lines, g_strdup_printf ("userSMIMECertificate %s, signed by the card.",
                                    cm_ldap_result_get_old_smime (res) ? "replaced" : "added"));
  if (cm_ldap_result_get_written (res))
    json_array_add_string_element (lines, "Verified: the server holds exactly what was written.");
  if (cm_ldap_result_get_reordered (res))
    json_array_add_string_element (lines, "Warning: the server changed the order of the "
                                          "certificates; some clients read only the first one.");
  if (cm_ldap_result_get_insecure (res))
    json_array_add_string_element (lines,
                                   "Warning: no TLS was used (insecure = true in cacmail.conf).");
  return lines;
}

/* The settings of `cacmail republish`, with the profile's NSS database and, unless the file
 * names one, the address the add-on sent (Thunderbird's default identity). */
static CmLdapConfig *
load_config (JsonObject *request, const char *profile, GError **error)
{
  g_autoptr (CmLdapConfig) cfg = cm_ldap_config_new ();
  g_autofree char *path = cm_ldap_config_default_path ();
  const char *email = cm_native_get_string (request, "email", FALSE, NULL);

  if (!cm_ldap_config_load_file (cfg, path, FALSE, error))
    return NULL;
  if (cm_ldap_config_get (cfg, "uri") == NULL
      || (cm_ldap_config_get (cfg, "base") == NULL && cm_ldap_config_get (cfg, "entry-dn") == NULL))
    {
      g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_CONFIG,
                   "no address list (LDAP) server is set: put uri and base in the [ldap] group "
                   "of %s (see cacmail's docs/thunderbird.md), then try again",
                   path);
      return NULL;
    }
  if (cm_ldap_config_get (cfg, "email") == NULL)
    {
      if (email == NULL || *email == '\0')
        {
          g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_CONFIG,
                       "no address to publish for: add a mail account to Thunderbird, or set "
                       "email in the [ldap] group of %s",
                       path);
          return NULL;
        }
      if (!cm_ldap_config_set (cfg, "email", email, error))
        return NULL;
    }
  if (!cm_ldap_config_set (cfg, "nssdb", profile, error))
    return NULL;
  return g_steal_pointer (&cfg);
}

JsonNode *
cm_native_cmd_republish (CmNativeJob *job, JsonObject *request, GError **error)
{
  const char *profile = cm_native_get_string (request, "profile", TRUE, error);
  g_autoptr (CmLdapConfig) cfg = profile ? load_config (request, profile, error) : NULL;
  g_autoptr (CmLdapResult) res = NULL;
  JsonNode *node;

  if (cfg == NULL)
    return NULL;
  res = cm_ldap_republish_sync (cfg, CM_LDAP_REPUBLISH_DEFAULT, cm_time_now (), ask_secret, job,
                                progress, job, cm_native_job_cancellable (job), error);
  if (res == NULL)
    return NULL;
  node = cm_ldap_result_to_json (res);
  json_object_set_array_member (json_node_get_object (node), "summary", summary (res));
  return node;
}
