/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* helper-main.c: main() of a helper program (cacmail-republish, cacmail-evolution), run by
 * `cacmail COMMAND` with argv[0] = COMMAND (cli-helper.c). CM_HELPER_COMMAND names the cmd_*
 * function, set by cli/meson.build. */
#include "cli.h"
#include <locale.h>

int
main (int argc, char **argv)
{
  g_autoptr (GError) error = NULL;
  int rc;

  setlocale (LC_ALL, "");
  if (!cm_init (&error))
    return cli_fail (error);
  rc = CM_HELPER_COMMAND (argc, argv);
  cm_shutdown ();
  return rc;
}
