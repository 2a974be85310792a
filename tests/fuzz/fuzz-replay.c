/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* fuzz-replay.c: runs a fuzz target over files and folders (the seed corpus: the GSA cards)
 * in ordinary builds, so the fuzz entry points are tested even without clang's libFuzzer. */
#include <glib.h>
#include <stdio.h>
#include "fuzz.h"

static guint count;

static void
replay (const char *path)
{
  if (g_file_test (path, G_FILE_TEST_IS_DIR))
    {
      g_autoptr (GDir) d = g_dir_open (path, 0, NULL);
      const char *name;
      while (d && (name = g_dir_read_name (d)))
        {
          g_autofree char *child = g_build_filename (path, name, NULL);
          replay (child);
        }
      return;
    }
  {
    g_autofree char *data = NULL;
    gsize len = 0;
    if (!g_file_get_contents (path, &data, &len, NULL))
      return;
    /* An exact-size copy so ASan catches any read past the end. */
    g_autofree guint8 *exact = g_memdup2 (data, len);
    LLVMFuzzerTestOneInput (exact, len);
    /* Every prefix of small inputs too: truncation is the commonest corruption. */
    for (gsize n = 0; len <= 4096 && n < len; n += 13)
      {
        g_autofree guint8 *cut = g_memdup2 (data, n);
        LLVMFuzzerTestOneInput (cut, n);
      }
    count++;
  }
}

int
main (int argc, char **argv)
{
  for (int i = 1; i < argc; i++)
    replay (argv[i]);
  printf ("replayed %u inputs\n", count);
  return count > 0 ? 0 : 1;
}
