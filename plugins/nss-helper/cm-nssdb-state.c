/* cm-nssdb-state.c: the record of recovered (decrypt-only) keys, a small JSON file in
 * $XDG_DATA_HOME/cacmail, so that selection never picks them for signing or encryption. */
#include "cm-nssdb.h"
#include "cm-nssdb-private.h"
#include <glib/gstdio.h>

void
cm_nssdb_recovered_free (CmNssdbRecovered *r)
{
  if (r == NULL)
    return;
  g_free (r->sha256);
  g_free (r->nssdb);
  g_free (r->nickname);
  g_free (r->subject);
  g_free (r->file);
  g_free (r);
}

char *
cm_nssdb_state_path (void)
{
  const char *dir = g_getenv ("CACMAIL_STATE_DIR");

  if (dir && *dir)
    return g_build_filename (dir, "recovered-keys.json", NULL);
  return g_build_filename (g_get_user_data_dir (), "cacmail", "recovered-keys.json", NULL);
}

static gint64
get_time (JsonObject *o, const char *member)
{
  const char *s = json_object_get_string_member_with_default (o, member, NULL);
  gint64 t = 0;

  if (s == NULL || !cm_time_parse (s, &t, NULL))
    return 0;
  return t;
}

static void
set_time (JsonBuilder *b, const char *member, gint64 t)
{
  g_autofree char *s = cm_time_format (t);
  json_builder_set_member_name (b, member);
  json_builder_add_string_value (b, s);
}

/* Every record (CmNssdbRecovered*). A missing file is an empty list. */
GPtrArray *
cm_nssdb_state_load (GError **error)
{
  g_autofree char *path = cm_nssdb_state_path ();
  g_autoptr (JsonParser) parser = json_parser_new ();
  GPtrArray *out = g_ptr_array_new_with_free_func ((GDestroyNotify)cm_nssdb_recovered_free);
  JsonNode *root;
  JsonArray *keys;
  g_autoptr (GError) local = NULL;

  if (!g_file_test (path, G_FILE_TEST_EXISTS))
    return out;
  if (!json_parser_load_from_file (parser, path, &local)
      || (root = json_parser_get_root (parser)) == NULL || !JSON_NODE_HOLDS_OBJECT (root)
      || !json_object_has_member (json_node_get_object (root), "keys"))
    {
      g_set_error (error, CM_ERROR, CM_ERROR_BAD_INPUT,
                   "%s is damaged (%s): move it away and import the recovered keys again", path,
                   local ? local->message : "no \"keys\" list");
      g_ptr_array_unref (out);
      return NULL;
    }
  keys = json_object_get_array_member (json_node_get_object (root), "keys");
  for (guint i = 0; keys && i < json_array_get_length (keys); i++)
    {
      JsonObject *o = json_array_get_object_element (keys, i);
      CmNssdbRecovered *r;

      if (o == NULL || !json_object_has_member (o, "sha256"))
        continue;
      r = g_new0 (CmNssdbRecovered, 1);
      r->sha256 = g_strdup (json_object_get_string_member_with_default (o, "sha256", ""));
      r->nssdb = g_strdup (json_object_get_string_member_with_default (o, "nssdb", ""));
      r->nickname = g_strdup (json_object_get_string_member_with_default (o, "nickname", ""));
      r->subject = g_strdup (json_object_get_string_member_with_default (o, "subject", ""));
      r->file = g_strdup (json_object_get_string_member_with_default (o, "file", ""));
      r->not_before = get_time (o, "not_before");
      r->not_after = get_time (o, "not_after");
      r->imported = get_time (o, "imported");
      g_ptr_array_add (out, r);
    }
  return out;
}

gboolean
cm_nssdb_state_save (GPtrArray *records, GError **error)
{
  g_autofree char *path = cm_nssdb_state_path ();
  g_autofree char *dir = g_path_get_dirname (path);
  g_autoptr (JsonBuilder) b = json_builder_new ();
  g_autoptr (JsonNode) root = NULL;
  g_autofree char *text = NULL;
  g_autoptr (GError) local = NULL;

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "version");
  json_builder_add_int_value (b, 1);
  json_builder_set_member_name (b, "keys");
  json_builder_begin_array (b);
  for (guint i = 0; i < records->len; i++)
    {
      CmNssdbRecovered *r = g_ptr_array_index (records, i);
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "sha256");
      json_builder_add_string_value (b, r->sha256);
      json_builder_set_member_name (b, "nssdb");
      json_builder_add_string_value (b, r->nssdb);
      json_builder_set_member_name (b, "nickname");
      json_builder_add_string_value (b, r->nickname);
      json_builder_set_member_name (b, "subject");
      json_builder_add_string_value (b, r->subject);
      json_builder_set_member_name (b, "file");
      json_builder_add_string_value (b, r->file);
      set_time (b, "not_before", r->not_before);
      set_time (b, "not_after", r->not_after);
      set_time (b, "imported", r->imported);
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
  json_builder_end_object (b);
  root = json_builder_get_root (b);
  text = cm_json_to_string (root);
  if (g_mkdir_with_parents (dir, 0700) != 0
      || !g_file_set_contents_full (path, text, -1, G_FILE_SET_CONTENTS_CONSISTENT, 0600, &local))
    {
      g_set_error (error, CM_ERROR, CM_ERROR_ENVIRONMENT, "cannot write %s (%s): make %s writable",
                   path, local ? local->message : g_strerror (errno), dir);
      return FALSE;
    }
  return TRUE;
}

gboolean
cm_nssdb_is_recovered (const char *sha256)
{
  g_autoptr (GPtrArray) all = cm_nssdb_state_load (NULL);

  for (guint i = 0; all && i < all->len; i++)
    if (g_ascii_strcasecmp (((CmNssdbRecovered *)g_ptr_array_index (all, i))->sha256, sha256) == 0)
      return TRUE;
  return FALSE;
}

static gint
newest_first (gconstpointer a, gconstpointer b)
{
  const CmNssdbRecovered *x = *(CmNssdbRecovered **)a, *y = *(CmNssdbRecovered **)b;

  if (x->not_after != y->not_after)
    return x->not_after > y->not_after ? -1 : 1;
  return strcmp (x->sha256, y->sha256);
}

GPtrArray *
cm_nssdb_recovered_list (CmNssDb *db, GError **error)
{
  g_autoptr (GPtrArray) all = cm_nssdb_state_load (error);
  GPtrArray *out;

  if (all == NULL)
    return NULL;
  out = g_ptr_array_new_with_free_func ((GDestroyNotify)cm_nssdb_recovered_free);
  for (guint i = 0; i < all->len; i++)
    {
      CmNssdbRecovered *r = g_ptr_array_index (all, i);
      if (db && strcmp (r->nssdb, cm_nss_db_get_dir (db)) != 0)
        continue;
      if (db)
        r->present = cm_nssdb_db_has_cert_and_key (db, r->sha256);
      g_ptr_array_add (out, g_ptr_array_steal_index (all, i--));
    }
  g_ptr_array_sort (out, newest_first);
  return out;
}

guint
cm_nssdb_mark_recovered (CmInventory *inv)
{
  GPtrArray *certs = cm_inventory_get_certs (inv);
  guint n = 0;

  for (guint i = 0; i < certs->len; i++)
    {
      const char *sha = cm_cert_get_sha256 (g_ptr_array_index (certs, i));
      if (cm_nssdb_is_recovered (sha))
        {
          cm_inventory_mark_decrypt_only (inv, sha);
          n++;
        }
    }
  return n;
}
