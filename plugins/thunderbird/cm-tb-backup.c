/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cm-tb-backup.c: backups of what fix and login change in a Thunderbird profile, for undo.
 *
 * One folder, 0700: index.json (0600) lists every entry ever made, newest last; each entry
 * names its profile, its kind (fix, login, live), the profile files it copied (N-prefs.js,
 * 0600, with their sha256 before and after the change) and each pref and remembered decision it
 * changed. Undo marks an entry undone instead of dropping it, and nothing is ever deleted: the
 * history stays. An index that does not parse, or a copy that is missing or altered, stops
 * every change with an error and is never written over. The index and the copies are handled
 * like keys (cm_nssdb_state_file_*: the user's own, no one else may change them). A lock file
 * serialises cacmail runs. */
#include "cm-tb-private.h"
#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

struct _CmTbBackup
{
  char *dir;
  char *index;
  char *profile;
  int lock_fd;
  JsonNode *root;     /* the whole index */
  JsonObject *entry;  /* the entry being made or undone (inside root, or not yet) */
  gboolean committed; /* entry is in root */
  gint64 id;
};

char *
cm_tb_backup_dir (void)
{
  const char *state = g_getenv ("CACMAIL_STATE_DIR");

  if (state && *state)
    return g_build_filename (state, "thunderbird-backups", NULL);
  return g_build_filename (g_get_user_data_dir (), "cacmail", "thunderbird-backups", NULL);
}

void
cm_tb_backup_free (CmTbBackup *b)
{
  if (b == NULL)
    return;
  if (b->lock_fd >= 0)
    close (b->lock_fd); /* releases the flock */
  if (b->entry && !b->committed)
    json_object_unref (b->entry);
  if (b->root)
    json_node_unref (b->root);
  g_free (b->dir);
  g_free (b->index);
  g_free (b->profile);
  g_free (b);
}

static gboolean
damaged (CmTbBackup *b, const char *why, GError **error)
{
  g_set_error (error, CM_ERROR, CM_ERROR_BAD_INPUT,
               "the Thunderbird backup index %s is damaged (%s): cacmail changes nothing and "
               "keeps it as it is; move it aside (mv %s %s.damaged) to start a new history, or "
               "repair it",
               b->index, why, b->index, b->index);
  return FALSE;
}

/* The folder (0700), its lock, and the index as it is on disk. */
static CmTbBackup *
open_backups (const char *profile_dir, GError **error)
{
  g_autoptr (CmTbBackup) b = g_new0 (CmTbBackup, 1);
  g_autofree char *lock = NULL;
  g_autofree char *why = NULL;
  g_autoptr (GError) local = NULL;
  JsonObject *o;

  b->lock_fd = -1;
  b->dir = cm_tb_backup_dir ();
  b->index = g_build_filename (b->dir, "index.json", NULL);
  b->profile = g_strdup (profile_dir);
  if (g_mkdir_with_parents (b->dir, 0700) != 0 || chmod (b->dir, 0700) != 0)
    {
      g_set_error (error, CM_ERROR, CM_ERROR_ENVIRONMENT,
                   "cannot create the backup folder %s (%s): nothing was changed; check its "
                   "parent's owner and permissions",
                   b->dir, g_strerror (errno));
      return NULL;
    }
  lock = g_build_filename (b->dir, ".lock", NULL);
  b->lock_fd = open (lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (b->lock_fd < 0 || flock (b->lock_fd, LOCK_EX) != 0)
    {
      g_set_error (error, CM_ERROR, CM_ERROR_ENVIRONMENT,
                   "cannot lock %s (%s): nothing was changed", lock, g_strerror (errno));
      return NULL;
    }
  if ((o = cm_nssdb_state_file_load (b->index, &why, &local)) == NULL)
    {
      if (why)
        return damaged (b, why, error), NULL;
      if (local)
        {
          g_propagate_prefixed_error (error, g_steal_pointer (&local),
                                      "cannot read the Thunderbird backup index, so nothing was "
                                      "changed: ");
          return NULL;
        }
      b->root = json_node_new (JSON_NODE_OBJECT);
      json_node_take_object (b->root, json_object_new ());
      json_object_set_int_member (json_node_get_object (b->root), "version", 1);
      json_object_set_array_member (json_node_get_object (b->root), "entries", json_array_new ());
      return g_steal_pointer (&b);
    }
  b->root = json_node_new (JSON_NODE_OBJECT);
  json_node_take_object (b->root, o);
  if (json_object_get_int_member_with_default (o, "version", 0) != 1
      || !json_object_has_member (o, "entries")
      || !JSON_NODE_HOLDS_ARRAY (json_object_get_member (o, "entries")))
    return damaged (b, "not a version 1 index with entries", error), NULL;
  return g_steal_pointer (&b);
}

static JsonArray *
entries (CmTbBackup *b)
{
  return json_object_get_array_member (json_node_get_object (b->root), "entries");
}

static gboolean
save_index (CmTbBackup *b, GError **error)
{
  g_autofree char *text = cm_json_to_string (b->root);
  return cm_nssdb_state_file_write (b->index, text, TRUE, error);
}

CmTbBackup *
cm_tb_backup_begin (const char *profile_dir, const char *kind, GError **error)
{
  CmTbBackup *b = open_backups (profile_dir, error);
  JsonArray *all;
  g_autofree char *now = cm_time_format (cm_time_now ());

  if (b == NULL)
    return NULL;
  all = entries (b);
  for (guint i = 0; i < json_array_get_length (all); i++)
    {
      JsonNode *n = json_array_get_element (all, i);
      if (!JSON_NODE_HOLDS_OBJECT (n))
        {
          damaged (b, "an entry is not an object", error);
          cm_tb_backup_free (b);
          return NULL;
        }
      b->id
        = MAX (b->id, json_object_get_int_member_with_default (json_node_get_object (n), "id", 0));
    }
  b->id++;
  b->entry = json_object_new ();
  json_object_set_int_member (b->entry, "id", b->id);
  json_object_set_string_member (b->entry, "time", now);
  json_object_set_string_member (b->entry, "profile", profile_dir);
  json_object_set_string_member (b->entry, "kind", kind);
  json_object_set_null_member (b->entry, "undone");
  json_object_set_array_member (b->entry, "files", json_array_new ());
  json_object_set_array_member (b->entry, "prefs", json_array_new ());
  json_object_set_array_member (b->entry, "client_auth", json_array_new ());
  return b;
}

gboolean
cm_tb_backup_add_file (CmTbBackup *b, const char *name, GError **error)
{
  g_autofree char *src = g_build_filename (b->profile, name, NULL);
  g_autofree char *copy_name = g_strdup_printf ("%" G_GINT64_FORMAT "-%s", b->id, name);
  g_autofree char *copy = g_build_filename (b->dir, copy_name, NULL);
  g_autofree char *data = NULL;
  g_autoptr (GError) local = NULL;
  JsonObject *f = json_object_new ();
  gsize len = 0;

  json_object_set_string_member (f, "name", name);
  json_array_add_object_element (json_object_get_array_member (b->entry, "files"), f);
  json_object_set_null_member (f, "sha256_after");
  if (!g_file_get_contents (src, &data, &len, &local))
    {
      if (!g_error_matches (local, G_FILE_ERROR, G_FILE_ERROR_NOENT))
        {
          g_set_error (error, CM_ERROR, CM_ERROR_ENVIRONMENT,
                       "cannot read %s for the backup (%s): nothing was changed", src,
                       local->message);
          return FALSE;
        }
      json_object_set_boolean_member (f, "existed", FALSE);
      json_object_set_null_member (f, "copy");
      json_object_set_null_member (f, "sha256");
      return TRUE;
    }
  {
    g_autofree char *sum = cm_tb_sha256_hex (data, len);
    json_object_set_boolean_member (f, "existed", TRUE);
    json_object_set_string_member (f, "copy", copy_name);
    json_object_set_string_member (f, "sha256", sum);
  }
  unlink (copy); /* a leftover of a run that died before its index entry: not history */
  if (!cm_tb_write_file_atomic (copy, data, len, error))
    {
      g_prefix_error (error, "cannot save the backup (nothing was changed): ");
      return FALSE;
    }
  return TRUE;
}

void
cm_tb_backup_add_pref (CmTbBackup *b, const CmTbPrefChange *change)
{
  JsonObject *o = json_object_new ();

  json_object_set_string_member (o, "name", change->name);
  json_object_set_member (o, "old", cm_tb_pref_value_to_json (&change->old_value));
  json_object_set_member (o, "new", cm_tb_pref_value_to_json (&change->new_value));
  json_array_add_object_element (json_object_get_array_member (b->entry, "prefs"), o);
}

void
cm_tb_backup_add_client_auth (CmTbBackup *b, const char *host, const char *old_dbkey,
                              const char *new_dbkey)
{
  JsonObject *o = json_object_new ();

  json_object_set_string_member (o, "host", host);
  if (old_dbkey)
    json_object_set_string_member (o, "old", old_dbkey);
  else
    json_object_set_null_member (o, "old");
  if (new_dbkey)
    json_object_set_string_member (o, "new", new_dbkey);
  else
    json_object_set_null_member (o, "new");
  json_array_add_object_element (json_object_get_array_member (b->entry, "client_auth"), o);
}

gboolean
cm_tb_backup_commit (CmTbBackup *b, GError **error)
{
  if (!b->committed)
    {
      json_array_add_object_element (entries (b), b->entry);
      b->committed = TRUE;
    }
  if (!save_index (b, error))
    {
      g_prefix_error (error, "cannot save the backup (nothing was changed): ");
      return FALSE;
    }
  return TRUE;
}

gboolean
cm_tb_backup_finish (CmTbBackup *b, GError **error)
{
  JsonArray *files = json_object_get_array_member (b->entry, "files");

  for (guint i = 0; i < json_array_get_length (files); i++)
    {
      JsonObject *f = json_array_get_object_element (files, i);
      g_autofree char *path
        = g_build_filename (b->profile, json_object_get_string_member (f, "name"), NULL);
      g_autofree char *data = NULL;
      gsize len = 0;
      if (g_file_get_contents (path, &data, &len, NULL))
        {
          g_autofree char *sum = cm_tb_sha256_hex (data, len);
          json_object_set_string_member (f, "sha256_after", sum);
        }
    }
  return cm_tb_backup_commit (b, error);
}

/* ---- reading an entry back ---- */

void
cm_tb_backup_entry_free (CmTbBackupEntry *e)
{
  if (e == NULL)
    return;
  g_free (e->kind);
  g_free (e->time);
  g_ptr_array_unref (e->files);
  g_ptr_array_unref (e->prefs);
  g_ptr_array_unref (e->client_auth);
  g_free (e);
}

static void
backup_file_free (CmTbBackupFile *f)
{
  g_free (f->name);
  if (f->before)
    g_bytes_unref (f->before);
  g_free (f->sha256_after);
  g_free (f);
}

static const char *
str_member (JsonObject *o, const char *name)
{
  JsonNode *n = json_object_get_member (o, name);
  return n && JSON_NODE_HOLDS_VALUE (n) && json_node_get_value_type (n) == G_TYPE_STRING
           ? json_node_get_string (n)
           : NULL;
}

/* One file of an entry, its copy read and checked against the sha256 noted at backup time. */
static CmTbBackupFile *
read_file (CmTbBackup *b, JsonObject *o, GError **error)
{
  g_autoptr (GError) local = NULL;
  const char *name = str_member (o, "name"), *copy = str_member (o, "copy");
  const char *sum = str_member (o, "sha256");
  CmTbBackupFile *f;

  if (name == NULL || strchr (name, '/') || (copy && strchr (copy, '/')))
    return damaged (b, "a file entry without a plain name", error), NULL;
  f = g_new0 (CmTbBackupFile, 1);
  f->name = g_strdup (name);
  f->existed = json_object_get_boolean_member_with_default (o, "existed", FALSE);
  f->sha256_after = g_strdup (str_member (o, "sha256_after"));
  if (f->existed)
    {
      g_autofree char *path = copy ? g_build_filename (b->dir, copy, NULL) : NULL;
      g_autofree char *data = NULL;
      g_autofree char *got = NULL;
      gsize len = 0;
      if (path && !cm_nssdb_state_file_read (path, &data, &len, &local)
          && !g_error_matches (local, CM_ERROR, CM_ERROR_BAD_INPUT))
        {
          g_propagate_error (error, g_steal_pointer (&local));
          backup_file_free (f);
          return NULL;
        }
      if (path == NULL || sum == NULL || data == NULL
          || strcmp (got = cm_tb_sha256_hex (data, len), sum) != 0)
        {
          g_set_error (error, CM_ERROR, CM_ERROR_BAD_INPUT,
                       "the backup copy %s of %s is %s: cacmail changes nothing; restore it from "
                       "your own backup of %s, or move the index %s aside to start a new "
                       "history",
                       path ? path : "(none)", name, data ? "altered" : "missing", b->dir,
                       b->index);
          backup_file_free (f);
          return NULL;
        }
      f->before = g_bytes_new_take (g_steal_pointer (&data), len);
    }
  return f;
}

static gboolean
read_changes (JsonArray *a, const char *key, GPtrArray *out)
{
  for (guint i = 0; a && i < json_array_get_length (a); i++)
    {
      JsonNode *n = json_array_get_element (a, i);
      JsonObject *o = JSON_NODE_HOLDS_OBJECT (n) ? json_node_get_object (n) : NULL;
      CmTbPrefValue ov, nv;
      const char *name = o ? str_member (o, key) : NULL;
      if (name == NULL || !cm_tb_pref_value_from_json (json_object_get_member (o, "old"), &ov))
        return FALSE;
      if (!cm_tb_pref_value_from_json (json_object_get_member (o, "new"), &nv))
        {
          cm_tb_pref_value_clear (&ov);
          return FALSE;
        }
      g_ptr_array_add (out, cm_tb_pref_change_new (name, &ov, &nv));
      cm_tb_pref_value_clear (&ov);
      cm_tb_pref_value_clear (&nv);
    }
  return TRUE;
}

CmTbBackupEntry *
cm_tb_backup_last (const char *profile_dir, CmTbBackup **handle, GError **error)
{
  g_autoptr (CmTbBackup) b = open_backups (profile_dir, error);
  g_autoptr (CmTbBackupEntry) e = NULL;
  JsonArray *all, *files;
  JsonObject *o = NULL;

  if (b == NULL)
    return NULL;
  all = entries (b);
  for (guint i = json_array_get_length (all); i-- > 0 && o == NULL;)
    {
      JsonNode *n = json_array_get_element (all, i);
      JsonObject *c = JSON_NODE_HOLDS_OBJECT (n) ? json_node_get_object (n) : NULL;
      if (c == NULL)
        return damaged (b, "an entry is not an object", error), NULL;
      if (g_strcmp0 (str_member (c, "profile"), profile_dir) == 0
          && json_object_has_member (c, "undone") && json_object_get_null_member (c, "undone"))
        o = c;
    }
  if (o == NULL)
    {
      g_set_error (error, CM_ERROR, CM_ERROR_NOT_FOUND,
                   "there is no fix or login of the Thunderbird profile %s left to undo "
                   "(backups in %s)",
                   profile_dir, b->dir);
      return NULL;
    }
  e = g_new0 (CmTbBackupEntry, 1);
  e->kind = g_strdup (str_member (o, "kind"));
  e->time = g_strdup (str_member (o, "time"));
  e->files = g_ptr_array_new_with_free_func ((GDestroyNotify)backup_file_free);
  e->prefs = g_ptr_array_new_with_free_func ((GDestroyNotify)cm_tb_pref_change_free);
  e->client_auth = g_ptr_array_new_with_free_func ((GDestroyNotify)cm_tb_pref_change_free);
  files = json_object_get_array_member (o, "files");
  for (guint i = 0; files && i < json_array_get_length (files); i++)
    {
      JsonNode *n = json_array_get_element (files, i);
      CmTbBackupFile *f;
      if (!JSON_NODE_HOLDS_OBJECT (n))
        return damaged (b, "a file entry is not an object", error), NULL;
      if ((f = read_file (b, json_node_get_object (n), error)) == NULL)
        return NULL;
      g_ptr_array_add (e->files, f);
    }
  if (e->kind == NULL || !read_changes (json_object_get_array_member (o, "prefs"), "name", e->prefs)
      || !read_changes (json_object_get_array_member (o, "client_auth"), "host", e->client_auth))
    return damaged (b, "an entry's changes cannot be read", error), NULL;
  b->entry = json_object_ref (o);
  b->committed = FALSE; /* a reference of ours, freed with the handle */
  *handle = g_steal_pointer (&b);
  return g_steal_pointer (&e);
}

gboolean
cm_tb_backup_mark_undone (CmTbBackup *b, GError **error)
{
  g_autofree char *now = cm_time_format (cm_time_now ());

  json_object_set_string_member (b->entry, "undone", now);
  if (!save_index (b, error))
    {
      g_prefix_error (error, "the profile was restored but the backup index could not note it: ");
      return FALSE;
    }
  return TRUE;
}

/* ---- changes the add-on made while Thunderbird ran ---- */

gboolean
cm_tb_backup_record_live (const char *profile_dir, GPtrArray *changes, GError **error)
{
  g_autoptr (CmTbBackup) b = cm_tb_backup_begin (profile_dir, "live", error);

  if (b == NULL)
    return FALSE;
  for (guint i = 0; i < changes->len; i++)
    cm_tb_backup_add_pref (b, g_ptr_array_index (changes, i));
  return cm_tb_backup_commit (b, error);
}

GPtrArray *
cm_tb_backup_pending_live_undo (const char *profile_dir, GError **error)
{
  g_autoptr (CmTbBackup) handle = NULL;
  g_autoptr (CmTbBackupEntry) e = cm_tb_backup_last (profile_dir, &handle, error);
  GPtrArray *out;

  if (e == NULL)
    return NULL;
  if (strcmp (e->kind, "live") != 0)
    {
      g_set_error (error, CM_ERROR, CM_ERROR_NOT_FOUND,
                   "the last change to the profile %s (%s, %s) was made while Thunderbird was "
                   "closed: close Thunderbird and run 'cacmail thunderbird undo'",
                   profile_dir, e->kind, e->time);
      return NULL;
    }
  out = g_ptr_array_new_with_free_func ((GDestroyNotify)cm_tb_pref_change_free);
  for (guint i = 0; i < e->prefs->len; i++)
    {
      CmTbPrefChange *c = g_ptr_array_index (e->prefs, i);
      g_ptr_array_add (out, cm_tb_pref_change_new (c->name, &c->new_value, &c->old_value));
    }
  if (!cm_tb_backup_mark_undone (handle, error))
    g_clear_pointer (&out, g_ptr_array_unref);
  return out;
}
