/* cm-evo-registry.c: read and write mail identities' S/MIME settings through
 * evolution-source-registry, never behind its back, with a backup for undo. */
#include "cm-evo.h"
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

/* ---- backups: $XDG_DATA_HOME/cacmail/evolution-backups.json, newest entry last ---- */

static char *
backup_path (void)
{
  return g_build_filename (g_get_user_data_dir (), "cacmail", "evolution-backups.json", NULL);
}

static JsonNode *
load_backups (void)
{
  g_autofree char *path = backup_path ();
  g_autoptr (JsonParser) parser = json_parser_new ();

  if (json_parser_load_from_file (parser, path, NULL)
      && JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser))
      && json_object_has_member (json_node_get_object (json_parser_get_root (parser)), "entries"))
    return json_node_copy (json_parser_get_root (parser));
  {
    JsonObject *o = json_object_new ();
    JsonNode *n = json_node_new (JSON_NODE_OBJECT);
    json_object_set_array_member (o, "entries", json_array_new ());
    json_node_take_object (n, o);
    return n;
  }
}

static gboolean
save_backups (JsonNode *root, GError **error)
{
  g_autofree char *path = backup_path ();
  g_autofree char *dir = g_path_get_dirname (path);
  g_autofree char *text = cm_json_to_string (root);

  if (g_mkdir_with_parents (dir, 0700) != 0)
    {
      g_set_error (error, CM_EVO_ERROR, CM_EVO_ERROR_FAILED,
                   "cannot create %s for the settings backup: %s; nothing was changed", dir,
                   g_strerror (errno));
      return FALSE;
    }
  if (!g_file_set_contents_full (path, text, -1, G_FILE_SET_CONTENTS_CONSISTENT, 0600, error))
    {
      g_prefix_error (error, "cannot save the settings backup (nothing was changed): ");
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
  g_autoptr (JsonNode) root = load_backups ();
  JsonArray *entries = json_object_get_array_member (json_node_get_object (root), "entries");
  JsonObject *entry = json_object_new ();
  JsonArray *saved = json_array_new ();
  g_autofree char *now = cm_time_format (cm_time_now ());
  gint written = 0;

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
  if (!save_backups (root, error))
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

gint
cm_evo_registry_undo_sync (CmEvoRegistry *reg, GCancellable *cancellable, GError **error)
{
  g_autoptr (JsonNode) root = load_backups ();
  JsonArray *entries = json_object_get_array_member (json_node_get_object (root), "entries");
  guint n = json_array_get_length (entries);
  JsonArray *saved;
  gint restored = 0;

  if (n == 0)
    {
      g_set_error (error, CM_EVO_ERROR, CM_EVO_ERROR_NO_BACKUP,
                   "there is no earlier fix to undo (no backup in %s)", g_get_user_data_dir ());
      return -1;
    }
  saved
    = json_object_get_array_member (json_array_get_object_element (entries, n - 1), "identities");
  for (guint i = 0; saved && i < json_array_get_length (saved); i++)
    {
      JsonObject *o = json_array_get_object_element (saved, i);
      const char *uid = json_object_get_string_member (o, "uid");
      const char *sig = json_object_get_string_member_with_default (o, "signing", NULL);
      const char *enc = json_object_get_string_member_with_default (o, "encryption", NULL);
      const char *alg = json_object_get_string_member_with_default (o, "signing_algorithm", NULL);
      if (!write_smime (reg, uid, sig, enc, alg, cancellable, error))
        return -1;
      restored++;
    }
  json_array_remove_element (entries, n - 1);
  if (!save_backups (root, error))
    return -1;
  return restored;
}
