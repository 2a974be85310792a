/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* fuzz-evo-backups.c: Evolution's settings backups ($XDG_DATA_HOME/cacmail/
 * evolution-backups.json, cm-evo-registry.c) as fix and undo read them: loaded, the last
 * entry checked whole (without the registry), then written back the way undo leaves it (the
 * last entry dropped) and the way fix does (an entry added); each must load again. */
#include "cm-evo.h"
#include "fuzz.h"
#include <glib/gstdio.h>
#include <stdio.h>
#include <stdlib.h>

static char *backups;

static void
init (void)
{
  g_autofree char *data = NULL;
  g_autofree char *dir = NULL;

  if (backups)
    return;
  data = g_build_filename (fuzz_tmpdir (), "data", NULL);
  dir = g_build_filename (data, "cacmail", NULL);
  /* before anything asks GLib for the data folder: it is read once */
  g_setenv ("XDG_DATA_HOME", data, TRUE);
  if (g_mkdir_with_parents (dir, 0700) != 0 || !cm_init (NULL))
    abort ();
  backups = g_build_filename (dir, "evolution-backups.json", NULL);
}

/* Save @root; it must load again with @n entries. */
static void
save_and_reload (JsonNode *root, guint n)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonNode) again = NULL;

  if (!cm_evo_backups_save (root, &error) || (again = cm_evo_backups_load (&error)) == NULL
      || json_array_get_length (
           json_object_get_array_member (json_node_get_object (again), "entries"))
           != n)
    {
      fprintf (stderr, "fuzz-evo-backups: backups cacmail wrote do not load again: %s\n",
               error ? error->message : "another number of entries");
      abort ();
    }
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  g_autoptr (JsonNode) root = NULL;
  JsonArray *entries;
  JsonObject *entry;
  guint n;

  init ();
  fuzz_write_file (backups, data, size);
  if ((root = cm_evo_backups_load (NULL)) == NULL)
    return 0;
  entries = json_object_get_array_member (json_node_get_object (root), "entries");
  n = json_array_get_length (entries);
  if (n > 0 && cm_evo_backups_last_entry (NULL, entries, NULL) != NULL)
    {
      /* undo: the last entry dropped */
      json_array_remove_element (entries, n - 1);
      save_and_reload (root, --n);
    }
  /* fix: one entry more */
  entry = json_object_new ();
  json_object_set_string_member (entry, "time", "2026-12-03T00:00:00Z");
  json_object_set_array_member (entry, "identities", json_array_new ());
  json_array_add_object_element (entries, entry);
  save_and_reload (root, n + 1);
  return 0;
}
