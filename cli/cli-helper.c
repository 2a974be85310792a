/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cli-helper.c: `cacmail republish` and `cacmail evolution` run helper programs, as git runs
 * git-* from its exec path: they link libldap, GnuTLS, SASL, Kerberos and
 * evolution-data-server, which would cost every other command (import-p12 runs once per
 * recovered key file) about 20 ms of dynamic linking and start-up. */
#include "cli.h"
#include "cm-config.h"
#include <errno.h>
#include <stdio.h>
#include <unistd.h>

char *
cli_helper_path (const char *program)
{
  g_autofree char *self = g_file_read_link ("/proc/self/exe", NULL);
  g_autofree char *dir = self ? g_path_get_dirname (self) : NULL;
  g_autofree char *beside = dir ? g_build_filename (dir, program, NULL) : NULL;
  g_autofree char *installed = g_build_filename (CM_LIBEXECDIR, "cacmail", program, NULL);

  /* beside us: the build tree (tests, benchmarks, the demo run from a checkout) */
  if (beside && g_file_test (beside, G_FILE_TEST_IS_EXECUTABLE))
    return g_steal_pointer (&beside);
  if (g_file_test (installed, G_FILE_TEST_IS_EXECUTABLE))
    return g_steal_pointer (&installed);
  return NULL;
}

int
cli_run_helper (const char *program, const char *feature, int argc, char **argv)
{
  g_autofree char *path = cli_helper_path (program);

  (void)argc;
  if (path == NULL)
    {
      fprintf (stderr,
               "cacmail: error: '%s' is not installed (%s/cacmail/%s): this cacmail was built "
               "without %s; install the package that has it, or rebuild with its "
               "development files (scripts/install-deps)\n",
               argv[0], CM_LIBEXECDIR, program, feature);
      return CLI_EXIT_ENVIRONMENT;
    }
  fflush (stdout);
  execv (path, argv); /* argv[0] stays the command's name: its --help says "republish" */
  fprintf (stderr, "cacmail: error: cannot run %s (%s): reinstall cacmail\n", path,
           g_strerror (errno));
  return CLI_EXIT_ENVIRONMENT;
}
