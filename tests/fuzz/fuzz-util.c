/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* fuzz-util.c: a private temporary folder and file writes for targets whose parser reads a
 * file (the card cache, secret files, the LDAP configuration, the JSON state files). */
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include "fuzz.h"

static char *tmpdir;

static void
remove_tree (const char *path)
{
  GDir *d = g_file_test (path, G_FILE_TEST_IS_SYMLINK) ? NULL : g_dir_open (path, 0, NULL);
  const char *name;

  while (d && (name = g_dir_read_name (d)))
    {
      g_autofree char *child = g_build_filename (path, name, NULL);
      remove_tree (child);
    }
  if (d)
    g_dir_close (d);
  g_remove (path);
}

static void
remove_tmpdir (void)
{
  if (tmpdir)
    remove_tree (tmpdir);
}

const char *
fuzz_tmpdir (void)
{
  if (tmpdir == NULL)
    {
      g_autoptr (GError) error = NULL;
      tmpdir = g_dir_make_tmp ("cacmail-fuzz-XXXXXX", &error);
      if (tmpdir == NULL)
        {
          fprintf (stderr, "fuzz: cannot make a temporary folder: %s\n", error->message);
          abort ();
        }
      atexit (remove_tmpdir);
    }
  return tmpdir;
}

void
fuzz_write_file (const char *path, const uint8_t *data, size_t size)
{
  int fd;
  size_t done = 0;

  g_unlink (path);
  fd = open (path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0)
    {
      fprintf (stderr, "fuzz: cannot write %s: %s\n", path, g_strerror (errno));
      abort ();
    }
  while (done < size)
    {
      ssize_t n = write (fd, data + done, size - done);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        {
          fprintf (stderr, "fuzz: cannot write %s: %s\n", path, g_strerror (errno));
          abort ();
        }
      done += (size_t)n;
    }
  close (fd);
}
