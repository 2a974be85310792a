/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* fuzz-recovered-keys.c: the record of recovered, decrypt-only keys
 * ($CACMAIL_STATE_DIR/recovered-keys.json, cm-nssdb-state.c) as an import and selection read
 * it: loaded under its lock; what loads is saved and must load again to the same record, and
 * every recorded certificate is then known as recovered. */
#include "cm-nssdb-private.h"
#include "fuzz.h"
#include <glib/gstdio.h>
#include <stdio.h>
#include <stdlib.h>

static char *record;

static void
init (void)
{
  g_autofree char *dir = NULL;

  if (record)
    return;
  dir = g_build_filename (fuzz_tmpdir (), "state", NULL);
  if (g_mkdir (dir, 0700) != 0 || !cm_init (NULL))
    abort ();
  g_setenv ("CACMAIL_STATE_DIR", dir, TRUE);
  record = cm_nssdb_state_path ();
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  g_autoptr (CmNssdbState) st = NULL;
  g_autoptr (CmNssdbState) again = NULL;
  g_autoptr (GError) error = NULL;

  init ();
  fuzz_write_file (record, data, size);
  if ((st = cm_nssdb_state_open (TRUE, NULL)) == NULL)
    return 0;
  if (!cm_nssdb_state_save (st, FALSE, &error)
      || (again = cm_nssdb_state_open (FALSE, &error)) == NULL || again->keys->len != st->keys->len
      || again->pending->len != st->pending->len)
    {
      fprintf (stderr, "fuzz-recovered-keys: a record cacmail saved does not load the same: %s\n",
               error ? error->message : "other counts");
      abort ();
    }
  for (guint i = 0; i < st->keys->len; i++)
    {
      CmNssdbRecovered *r = g_ptr_array_index (st->keys, i);
      if (!cm_nssdb_is_recovered (r->sha256))
        abort (); /* a recorded key must stay decrypt-only */
    }
  return 0;
}
