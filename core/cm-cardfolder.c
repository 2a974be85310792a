/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cm-cardfolder.c: read a card folder (docs/card-folder.md) all-or-nothing. */
#include "cm-private.h"
#include "cm-cardfolder.h"

static CmSlot
slot_for_prefix (const char *name, gboolean *is_chuid)
{
  char *end = NULL;
  guint64 n;

  *is_chuid = FALSE;
  if (g_str_has_prefix (name, "CAC0 - "))
    return CM_SLOT_CAC_ID;
  if (g_str_has_prefix (name, "CAC1 - "))
    return CM_SLOT_CAC_SIGN;
  if (g_str_has_prefix (name, "CAC2 - "))
    return CM_SLOT_CAC_ENC;
  if (!g_ascii_isdigit (name[0]))
    return CM_SLOT_NONE;
  n = g_ascii_strtoull (name, &end, 10);
  if (end == NULL || !g_str_has_prefix (end, " - "))
    return CM_SLOT_NONE;
  switch (n)
    {
    case 3: return CM_SLOT_9A;
    case 4: return CM_SLOT_9C;
    case 5: return CM_SLOT_9D;
    case 6: return CM_SLOT_9E;
    case 8: *is_chuid = TRUE; return CM_SLOT_NONE;
    default:
      if (n >= 13 && n <= 32)
        return (CmSlot)(CM_SLOT_RETIRED_FIRST + (n - 13));
      return CM_SLOT_NONE;
    }
}

gboolean
cm_card_folder_probe (const char *dir)
{
  g_autoptr (GDir) d = g_dir_open (dir, 0, NULL);
  const char *name;

  while (d && (name = g_dir_read_name (d)))
    {
      gboolean is_chuid;
      CmSlot slot = slot_for_prefix (name, &is_chuid);
      if (is_chuid || (slot != CM_SLOT_NONE && g_str_has_suffix (name, ".crt")))
        return TRUE;
    }
  return FALSE;
}

/* g_ptr_array_sort passes pointers to the elements */
static gint
compare_names (gconstpointer a, gconstpointer b)
{
  return strcmp (*(const char *const *)a, *(const char *const *)b);
}

CmCardFolder *
cm_card_folder_read (const char *dir, GError **error)
{
  g_autoptr (GError) local = NULL;
  g_autoptr (GDir) d = g_dir_open (dir, 0, &local);
  g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  CmCardFolder *cf;
  const char *name;

  if (d == NULL)
    {
      g_set_error (error, CM_ERROR, CM_ERROR_BAD_INPUT, "%s: cannot open the folder (%s)", dir,
                   local->message);
      return NULL;
    }
  while ((name = g_dir_read_name (d)))
    g_ptr_array_add (names, g_strdup (name));
  g_ptr_array_sort (names, compare_names);

  cf = g_new0 (CmCardFolder, 1);
  cf->slot_certs
    = g_hash_table_new_full (g_direct_hash, g_direct_equal, NULL, (GDestroyNotify)g_bytes_unref);
  cf->slot_files = g_hash_table_new_full (g_direct_hash, g_direct_equal, NULL, g_free);
  for (guint i = 0; i < names->len; i++)
    {
      const char *n = g_ptr_array_index (names, i);
      g_autofree char *path = g_build_filename (dir, n, NULL);
      gboolean is_chuid;
      CmSlot slot = slot_for_prefix (n, &is_chuid);
      g_autoptr (GBytes) bytes = NULL;

      if (is_chuid)
        {
          gsize len;
          const guint8 *p;
          if ((bytes = cm_read_file (path, error)) == NULL)
            goto fail;
          p = g_bytes_get_data (bytes, &len);
          cm_chuid_free (cf->chuid);
          if ((cf->chuid = cm_chuid_parse (p, len, &local)) == NULL)
            {
              g_set_error (error, CM_ERROR, CM_ERROR_BAD_INPUT,
                           "%s: corrupt CHUID: %s; re-read the card or replace the file", path,
                           local->message);
              goto fail;
            }
          continue;
        }
      if (slot == CM_SLOT_NONE || !g_str_has_suffix (n, ".crt"))
        continue;
      {
        g_autoptr (GPtrArray) blobs = NULL;
        GBytes *prev;
        if ((bytes = cm_read_file (path, error)) == NULL
            || (blobs = cm_load_cert_blobs (bytes, path, error)) == NULL)
          goto fail;
        if (blobs->len != 1)
          {
            g_set_error (error, CM_ERROR, CM_ERROR_BAD_INPUT,
                         "%s: holds %u certificates; a card object holds exactly one", path,
                         blobs->len);
            goto fail;
          }
        prev = g_hash_table_lookup (cf->slot_certs, GUINT_TO_POINTER (slot));
        if (prev && !g_bytes_equal (prev, g_ptr_array_index (blobs, 0)))
          {
            g_set_error (error, CM_ERROR, CM_ERROR_BAD_INPUT,
                         "%s: differs from %s, but both name slot %s; keep one", path,
                         (char *)g_hash_table_lookup (cf->slot_files, GUINT_TO_POINTER (slot)),
                         cm_slot_to_string (slot));
            goto fail;
          }
        if (prev == NULL)
          {
            g_hash_table_insert (cf->slot_certs, GUINT_TO_POINTER (slot),
                                 g_bytes_ref (g_ptr_array_index (blobs, 0)));
            g_hash_table_insert (cf->slot_files, GUINT_TO_POINTER (slot), g_strdup (path));
          }
      }
    }
  if (cf->chuid == NULL && g_hash_table_size (cf->slot_certs) == 0)
    {
      g_set_error (error, CM_ERROR, CM_ERROR_BAD_INPUT,
                   "%s: is a directory but not a card folder (no '8 - CHUID' file and no .crt "
                   "file named with an object prefix such as '3 - '); give certificate files "
                   "or a card folder (docs/card-folder.md)",
                   dir);
      goto fail;
    }
  return cf;

fail:
  cm_card_folder_free (cf);
  return NULL;
}

void
cm_card_folder_free (CmCardFolder *cf)
{
  if (cf == NULL)
    return;
  cm_chuid_free (cf->chuid);
  g_hash_table_unref (cf->slot_certs);
  g_hash_table_unref (cf->slot_files);
  g_free (cf);
}
