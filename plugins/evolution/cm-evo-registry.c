/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cm-evo-registry.c: read and write mail identities' S/MIME settings through
 * evolution-source-registry, never behind its back, with a backup for undo. */
#include "cm-evo.h"
#include <cm-nssdb.h>
#include <libedataserver/libedataserver.h>

struct _CmEvoRegistry
{
  ESourceRegistry *registry;
  GPtrArray *settings; /* CmEvoSettings*, strings in @strings */
  GStringChunk *strings;
};

CmEvoRegistry *
cm_evo_registry_new_sync (GCancellable *cancellable, GError **error)
{
  g_autoptr (GError) local = NULL;
  ESourceRegistry *r = e_source_registry_new_sync (cancellable, &local);
  CmEvoRegistry *reg;

  if (r == NULL)
    {
      g_set_error (error, CM_EVO_ERROR, CM_EVO_ERROR_REGISTRY,
                   "cannot reach Evolution's source registry (%s): log in to a desktop session "
                   "or start evolution-source-registry",
                   local->message);
      return NULL;
    }
  reg = g_new0 (CmEvoRegistry, 1);
  reg->registry = r;
  return reg;
}

void
cm_evo_registry_free (CmEvoRegistry *reg)
{
  if (reg == NULL)
    return;
  g_clear_object (&reg->registry);
  if (reg->settings)
    g_ptr_array_unref (reg->settings);
  if (reg->strings)
    g_string_chunk_free (reg->strings);
  g_free (reg);
}

static gint
by_uid (gconstpointer a, gconstpointer b)
{
  return g_strcmp0 ((*(CmEvoSettings **)a)->uid, (*(CmEvoSettings **)b)->uid);
}

GPtrArray *
cm_evo_registry_list_identities (CmEvoRegistry *reg)
{
  GList *sources = e_source_registry_list_sources (reg->registry, E_SOURCE_EXTENSION_MAIL_IDENTITY);

  if (reg->settings)
    g_ptr_array_unref (reg->settings);
  if (reg->strings)
    g_string_chunk_free (reg->strings);
  reg->settings = g_ptr_array_new_with_free_func (g_free);
  reg->strings = g_string_chunk_new (1024);
  for (GList *l = sources; l; l = l->next)
    {
      ESource *src = l->data;
      ESourceMailIdentity *mi = e_source_get_extension (src, E_SOURCE_EXTENSION_MAIL_IDENTITY);
      ESourceSMIME *sm = e_source_get_extension (src, E_SOURCE_EXTENSION_SMIME);
      g_autofree char *address = e_source_mail_identity_dup_address (mi);
      g_autofree char *sig = e_source_smime_dup_signing_certificate (sm);
      g_autofree char *encr = e_source_smime_dup_encryption_certificate (sm);
      g_autofree char *alg = e_source_smime_dup_signing_algorithm (sm);
      CmEvoSettings *s;

      if (address == NULL || *address == '\0')
        continue;
      s = g_new0 (CmEvoSettings, 1);
      s->uid = g_string_chunk_insert (reg->strings, e_source_get_uid (src));
      s->name = g_string_chunk_insert (reg->strings, e_source_get_display_name (src));
      s->address = g_string_chunk_insert (reg->strings, address);
      s->signing = sig ? g_string_chunk_insert (reg->strings, sig) : NULL;
      s->encryption = encr ? g_string_chunk_insert (reg->strings, encr) : NULL;
      s->signing_algorithm = alg ? g_string_chunk_insert (reg->strings, alg) : NULL;
      s->sign_by_default = e_source_smime_get_sign_by_default (sm);
      s->encrypt_by_default = e_source_smime_get_encrypt_by_default (sm);
      s->encrypt_to_self = e_source_smime_get_encrypt_to_self (sm);
      g_ptr_array_add (reg->settings, s);
    }
  g_list_free_full (sources, g_object_unref);
  g_ptr_array_sort (reg->settings, by_uid);
  return reg->settings;
}

/* ---- backups: $XDG_DATA_HOME/cacmail/evolution-backups.json, newest entry last ----
 * The undo history is handled like keys (cm_nssdb_state_file_*: the user's own, 0600, replaced
 * whole) and never lost: a damaged file stops fix and undo, and is never overwritten. */

static char *
backup_path (void)
{
  return g_build_filename (g_get_user_data_dir (), "cacmail", "evolution-backups.json", NULL);
}

static gboolean
backups_damaged (const char *path, const char *why, GError **error)
{
  g_set_error (error, CM_ERROR, CM_ERROR_BAD_INPUT,
               "the settings backups %s are damaged (%s), so fix and undo would lose the undo "
               "history: repair the file, or move it aside (mv %s %s.damaged) to start a new "
               "one; nothing was changed",
               path, why, path, path);
  return FALSE;
}

JsonNode *
cm_evo_backups_load (GError **error)
{
  g_autofree char *path = backup_path ();
  g_autofree char *damaged = NULL;
  g_autoptr (GError) local = NULL;
  JsonObject *o = cm_nssdb_state_file_load (path, &damaged, &local);
  JsonNode *entries = o ? json_object_get_member (o, "entries") : NULL;
  JsonNode *n;

  if (local) /* another user's, or others may change it: the message says the fix */
    return g_propagate_error (error, g_steal_pointer (&local)), NULL;
  if (damaged)
    return backups_damaged (path, damaged, error), NULL;
  if (o && (entries == NULL || !JSON_NODE_HOLDS_ARRAY (entries)))
    {
      json_object_unref (o);
      return backups_damaged (path, "no \"entries\" list", error), NULL;
    }
  if (o == NULL)
    {
      o = json_object_new ();
      json_object_set_array_member (o, "entries", json_array_new ());
    }
  n = json_node_new (JSON_NODE_OBJECT);
  json_node_take_object (n, o);
  return n;
}

gboolean
cm_evo_backups_save (JsonNode *root, GError **error)
{
  g_autofree char *path = backup_path ();
  g_autofree char *text = cm_json_to_string (root);

  if (!cm_nssdb_state_file_write (path, text, TRUE, error))
    {
      g_prefix_error (error, "cannot save the settings backup, so nothing was changed: ");
      return FALSE;
    }
  return TRUE;
}

static void
set_or_null (JsonObject *o, const char *name, const char *v)
{
  if (v)
    json_object_set_string_member (o, name, v);
  else
    json_object_set_null_member (o, name);
}

static gboolean
write_smime (CmEvoRegistry *reg, const char *uid, const char *sig, const char *enc, const char *alg,
             GCancellable *cancellable, GError **error)
{
  g_autoptr (ESource) src = e_source_registry_ref_source (reg->registry, uid);
  ESourceSMIME *sm;

  if (src == NULL)
    {
      g_set_error (error, CM_EVO_ERROR, CM_EVO_ERROR_NOT_FOUND,
                   "mail identity %s no longer exists: run the check again", uid);
      return FALSE;
    }
  sm = e_source_get_extension (src, E_SOURCE_EXTENSION_SMIME);
  e_source_smime_set_signing_certificate (sm, sig);
  e_source_smime_set_encryption_certificate (sm, enc);
  e_source_smime_set_signing_algorithm (sm, alg);
  return e_source_write_sync (src, cancellable, error);
}

gint
cm_evo_registry_fix_sync (CmEvoRegistry *reg, GPtrArray *identities, GCancellable *cancellable,
                          GError **error)
{
  g_autoptr (JsonNode) root = cm_evo_backups_load (error);
  JsonArray *entries;
  JsonObject *entry;
  JsonArray *saved;
  g_autofree char *now = cm_time_format (cm_time_now ());
  gint written = 0;

  if (root == NULL)
    return -1; /* a damaged history is never overwritten */
  entries = json_object_get_array_member (json_node_get_object (root), "entries");
  entry = json_object_new ();
  saved = json_array_new ();
  json_object_set_string_member (entry, "time", now);
  json_object_set_array_member (entry, "identities", saved);
  for (guint i = 0; i < identities->len; i++)
    {
      CmEvoIdentity *id = g_ptr_array_index (identities, i);
      const CmEvoSettings *cur = cm_evo_identity_get_current (id);
      JsonObject *o;
      if (!cm_evo_identity_can_fix (id))
        continue;
      o = json_object_new ();
      json_object_set_string_member (o, "uid", cur->uid);
      set_or_null (o, "signing", cur->signing);
      set_or_null (o, "encryption", cur->encryption);
      set_or_null (o, "signing_algorithm", cur->signing_algorithm);
      json_array_add_object_element (saved, o);
    }
  if (json_array_get_length (saved) == 0)
    {
      json_object_unref (entry);
      return 0;
    }
  json_array_add_object_element (entries, entry);
  /* The backup is on disk before anything changes. */
  if (!cm_evo_backups_save (root, error))
    return -1;
  for (guint i = 0; i < identities->len; i++)
    {
      CmEvoIdentity *id = g_ptr_array_index (identities, i);
      const CmEvoSettings *cur = cm_evo_identity_get_current (id);
      const char *sig, *enc, *alg;
      if (!cm_evo_identity_can_fix (id))
        continue;
      sig = cm_evo_identity_get_proposed_signing (id) ? cm_evo_identity_get_proposed_signing (id)
                                                      : cur->signing;
      enc = cm_evo_identity_get_proposed_encryption (id)
              ? cm_evo_identity_get_proposed_encryption (id)
              : cur->encryption;
      alg = (cur->signing_algorithm && *cur->signing_algorithm) ? cur->signing_algorithm : "sha256";
      if (!write_smime (reg, cur->uid, sig, enc, alg, cancellable, error))
        {
          g_prefix_error (error, "%s (%s): ", cur->address, cur->uid);
          return -1;
        }
      written++;
    }
  return written;
}

/* The string member @name of @o, or NULL: FALSE when it is missing or neither a string nor
 * null (a backup entry names every setting it saved). */
static gboolean
saved_value (JsonObject *o, const char *name, const char **value)
{
  JsonNode *n = json_object_get_member (o, name);

  *value = NULL;
  if (n && JSON_NODE_HOLDS_NULL (n))
    return TRUE;
  if (n == NULL || !JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_STRING)
    return FALSE;
  *value = json_node_get_string (n);
  return TRUE;
}

JsonArray *
cm_evo_backups_last_entry (CmEvoRegistry *reg, JsonArray *entries, GError **error)
{
  g_autofree char *path = backup_path ();
  guint n = json_array_get_length (entries);
  JsonNode *last = n ? json_array_get_element (entries, n - 1) : NULL;
  JsonObject *o = last && JSON_NODE_HOLDS_OBJECT (last) ? json_node_get_object (last) : NULL;
  JsonNode *ids = o ? json_object_get_member (o, "identities") : NULL;
  JsonArray *saved = ids && JSON_NODE_HOLDS_ARRAY (ids) ? json_node_get_array (ids) : NULL;

  if (saved == NULL)
    return backups_damaged (path, "the last entry lists no identities", error), NULL;
  for (guint i = 0; i < json_array_get_length (saved); i++)
    {
      JsonNode *e = json_array_get_element (saved, i);
      JsonObject *id = JSON_NODE_HOLDS_OBJECT (e) ? json_node_get_object (e) : NULL;
      const char *uid = NULL, *v;
      g_autoptr (ESource) src = NULL;

      if (id == NULL || !saved_value (id, "uid", &uid) || uid == NULL || *uid == '\0'
          || !saved_value (id, "signing", &v) || !saved_value (id, "encryption", &v)
          || !saved_value (id, "signing_algorithm", &v))
        return backups_damaged (path, "an identity of the last entry is malformed", error), NULL;
      if (reg && (src = e_source_registry_ref_source (reg->registry, uid)) == NULL)
        return g_set_error (error, CM_EVO_ERROR, CM_EVO_ERROR_NOT_FOUND,
                            "mail identity %s of the last fix no longer exists, so the fix "
                            "cannot be undone whole; nothing was changed",
                            uid),
               NULL;
    }
  return saved;
}

gint
cm_evo_registry_undo_sync (CmEvoRegistry *reg, GCancellable *cancellable, GError **error)
{
  g_autoptr (JsonNode) root = cm_evo_backups_load (error);
  JsonArray *entries, *saved;
  gint restored = 0;

  if (root == NULL)
    return -1;
  entries = json_object_get_array_member (json_node_get_object (root), "entries");
  if (json_array_get_length (entries) == 0)
    {
      g_set_error (error, CM_EVO_ERROR, CM_EVO_ERROR_NO_BACKUP,
                   "there is no earlier fix to undo (no backup in %s)", g_get_user_data_dir ());
      return -1;
    }
  if ((saved = cm_evo_backups_last_entry (reg, entries, error)) == NULL)
    return -1;
  for (guint i = 0; i < json_array_get_length (saved); i++)
    {
      JsonObject *o = json_array_get_object_element (saved, i);
      const char *uid, *sig, *enc, *alg;

      saved_value (o, "uid", &uid);
      saved_value (o, "signing", &sig);
      saved_value (o, "encryption", &enc);
      saved_value (o, "signing_algorithm", &alg);
      if (!write_smime (reg, uid, sig, enc, alg, cancellable, error))
        return -1;
      restored++;
    }
  json_array_remove_element (entries, json_array_get_length (entries) - 1);
  if (!cm_evo_backups_save (root, error))
    return -1;
  return restored;
}
