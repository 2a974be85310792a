/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cm-native-import.c: "import-p12": a recovered key (the PKCS#12 file of a previous card's
 * encryption key, from the key-recovery agent) into the profile's certificate database, as
 * `cacmail import-p12` does. Certificates and keys are objects of the shared SQLite database:
 * adding them is safe while Thunderbird runs, which sees them at its next look-up. */
#include "cm-native.h"
#include <cm-nssdb.h>
#include <string.h>

/* A copy of the string member @name (may be empty), the request's own copy wiped. */
static char *
take_secret (JsonObject *request, const char *name, GError **error)
{
  JsonNode *n = json_object_get_member (request, name);
  char *copy, *orig;

  if (n == NULL || json_node_get_value_type (n) != G_TYPE_STRING)
    {
      g_set_error (error, CM_NATIVE_ERROR, CM_NATIVE_ERROR_BAD_REQUEST,
                   "the request has no \"%s\" string (it may be empty): update the add-on", name);
      return NULL;
    }
  orig = (char *)json_node_get_string (n);
  copy = g_strdup (orig);
  explicit_bzero (orig, strlen (orig));
  return copy;
}

static JsonNode *
describe (GPtrArray *keys, guint added, CmNssdbLocation *loc)
{
  JsonObject *o = json_object_new ();
  JsonArray *list = json_array_new ();
  JsonArray *lines = json_array_new ();
  JsonNode *node = json_node_new (JSON_NODE_OBJECT);

  for (guint i = 0; i < keys->len; i++)
    {
      CmNssdbRecovered *r = g_ptr_array_index (keys, i);
      JsonObject *k = json_object_new ();
      g_autofree char *until = cm_time_format_date (r->not_after);
      g_autofree char *line = g_strdup_printf (
        "%s: %s (valid until %s)", added ? "imported" : "already there", r->nickname, until);
      json_object_set_string_member (k, "nickname", r->nickname);
      json_object_set_string_member (k, "subject", r->subject);
      json_object_set_string_member (k, "sha256", r->sha256);
      json_object_set_string_member (k, "not_after", until);
      json_array_add_object_element (list, k);
      json_array_add_string_element (lines, line);
    }
  json_array_add_string_element (lines, "Thunderbird can now read old mail encrypted to this key; "
                                        "cacmail never picks it for new mail.");
  json_object_set_int_member (o, "added", added);
  json_object_set_string_member (o, "nssdb", loc->dir);
  json_object_set_array_member (o, "keys", list);
  json_object_set_array_member (o, "summary", lines);
  json_node_take_object (node, o);
  return node;
}

JsonNode *
cm_native_cmd_import_p12 (CmNativeJob *job, JsonObject *request, GError **error)
{
  const char *profile = cm_native_get_string (request, "profile", TRUE, error);
  const char *file = profile ? cm_native_get_string (request, "file", TRUE, error) : NULL;
  char *password = file ? take_secret (request, "password", error) : NULL;
  g_autoptr (CmNssdbLocation) loc = NULL;
  g_autoptr (CmNssDb) db = NULL;
  g_autoptr (GPtrArray) keys = NULL;
  guint added = 0;
  gboolean ok;

  if (password == NULL)
    return NULL;
  loc = cm_nssdb_locate (profile);
  if (!loc->exists)
    {
      g_set_error (error, CM_ERROR, CM_ERROR_NOT_FOUND,
                   "the Thunderbird profile %s has no certificate database yet: restart "
                   "Thunderbird once, then import again",
                   profile);
      cm_native_wipe_free (password, -1);
      return NULL;
    }
  ok = cm_nssdb_location_check (loc, CM_NSSDB_CHANGE_OBJECTS, error)
       && (db = cm_nss_db_open_sync (loc->dir, CM_NSS_DB_DEFAULT, cm_native_job_cancellable (job),
                                     error))
            != NULL
       && cm_nssdb_import_p12_sync (db, file, password, &keys, &added,
                                    cm_native_job_cancellable (job), error);
  cm_native_wipe_free (password, -1);
  return ok ? describe (keys, added, loc) : NULL;
}
