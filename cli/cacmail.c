/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cacmail.c: the `cacmail` command: dispatch to subcommands. */
#include "cli.h"
#include "cm-config.h"
#include <locale.h>
#include <stdio.h>

typedef struct
{
  const char *name;
  int (*run) (int argc, char **argv);
  const char *summary;
  const char *helper; /* run as this program (cli-helper.c) instead, if set */
  const char *feature;
} Command;

static const Command commands[] = {
  { "certs", cmd_certs, "classify certificates and cards (offline)", NULL, NULL },
  { "pick", cmd_pick, "pick the login, signing and encryption certs for an address", NULL, NULL },
  { "status", cmd_status, "readers, cards, personas, certs and picks (PC/SC)", NULL, NULL },
  { "republish", NULL, "publish the card's certificates to the address list (LDAP)",
    "cacmail-republish", "LDAP support" },
  { "setup", NULL, "set up the mail clients for the card, step by step", "cacmail-setup",
    "LDAP support" },
  { "login", NULL, "Kerberos login with the card (PKINIT), and its ticket", "cacmail-login",
    "Kerberos support (libkrb5)" },
  { "lookup", NULL, "find recipients' certificates in the directory, import them", "cacmail-lookup",
    "LDAP support" },
  { "doctor", NULL, "find what stands between you and working S/MIME, with fixes", "cacmail-doctor",
    "LDAP support" },
  { "nss", cmd_nss, "NSS databases of Evolution and Thunderbird: card module, trust", NULL, NULL },
  { "import-p12", cmd_import_p12, "import recovered encryption keys (PKCS#12)", NULL, NULL },
#ifdef CM_HAVE_EVOLUTION
  { "evolution", NULL, "check and fix Evolution's S/MIME settings", "cacmail-evolution",
    "Evolution support (evolution-data-server)" },
#endif
  { "thunderbird", cmd_thunderbird, "check and fix Thunderbird's S/MIME settings, card login", NULL,
    NULL },
  { "demo", cmd_demo, "run the whole flow on a generated test PKI in a sandbox", NULL, NULL },
};

static void
print_help (FILE *f)
{
  fprintf (f, "Usage: cacmail COMMAND [OPTIONS] [ARGS]\n\n"
              "Make CAC and PIV smart cards work for S/MIME mail.\n\nCommands:\n");
  for (gsize i = 0; i < G_N_ELEMENTS (commands); i++)
    fprintf (f, "  %-8s %s\n", commands[i].name, commands[i].summary);
  fprintf (f, "\nRun 'cacmail COMMAND --help' for a command's options; see cacmail(1).\n"
              "Options:\n  --help     show this help\n  --version  show the version\n");
}

int
main (int argc, char **argv)
{
  int rc;

  setlocale (LC_ALL, "");
  if (argc < 2)
    {
      print_help (stderr);
      return CLI_EXIT_USAGE;
    }
  if (strcmp (argv[1], "--help") == 0 || strcmp (argv[1], "-h") == 0
      || strcmp (argv[1], "help") == 0)
    {
      print_help (stdout);
      return CLI_EXIT_OK;
    }
  if (strcmp (argv[1], "--version") == 0)
    {
      printf ("cacmail %s\n", CM_VERSION);
      return CLI_EXIT_OK;
    }
  for (gsize i = 0; i < G_N_ELEMENTS (commands); i++)
    if (strcmp (argv[1], commands[i].name) == 0)
      {
        g_autoptr (GError) error = NULL;
        if (commands[i].helper)
          return cli_run_helper (commands[i].helper, commands[i].feature, argc - 1, argv + 1);
        if (!cm_init (&error))
          return cli_fail (error);
        rc = commands[i].run (argc - 1, argv + 1);
        cm_shutdown ();
        return rc;
      }
  return cli_usage ("unknown command '%s'", argv[1]);
}
