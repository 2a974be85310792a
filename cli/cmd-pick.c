/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cmd-pick.c: `cacmail pick`, the login, signing and encryption certs for one address. */
#include "cli.h"

int
cmd_pick (int argc, char **argv)
{
  CliCommon c = { 0 };
  g_autofree char *email = NULL;
  GOptionEntry entries[] = {
    { "email", 0, 0, G_OPTION_ARG_STRING, &email, "The mail identity's address", "ADDR" },
    { "json", 0, 0, G_OPTION_ARG_NONE, &c.json, "Print JSON (docs/cacmail.schema.json)", NULL },
    { "at", 0, 0, G_OPTION_ARG_STRING, &c.at_text, "Pick for TIME (default now)", "TIME" },
    { "ca", 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &c.ca_files,
      "Require chains to these trust anchors (intermediates allowed too)", "FILE" },
    { G_OPTION_REMAINING, 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &c.inputs, NULL, NULL },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("INPUT... - pick certs for an address");
  g_autoptr (GError) error = NULL;
  g_autoptr (CmInventory) inv = cm_inventory_new ();
  g_autoptr (CmTrust) trust = NULL;
  g_autoptr (CmPicks) picks = NULL;
  int rc = CLI_EXIT_OK;

  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!g_option_context_parse (ctx, &argc, &argv, &error))
    {
      rc = cli_usage ("%s", error->message);
      goto out;
    }
  if (email == NULL || strchr (email, '@') == NULL)
    {
      rc = cli_usage ("pick needs --email ADDR, a full address such as john.doe@mail.mil");
      goto out;
    }
  if (c.inputs == NULL || c.inputs[0] == NULL)
    {
      rc = cli_usage ("pick needs at least one INPUT (a certificate file or card folder)");
      goto out;
    }
  if (!cli_common_prepare (&c, &trust, &error) || !cli_load_inputs (inv, c.inputs, &error))
    {
      rc = cli_fail (error);
      goto out;
    }
  picks = cm_select_for_email (inv, email, c.at, trust);
  if (c.json)
    {
      g_autoptr (JsonNode) node = cm_json_picks (picks);
      cli_print_json (node);
    }
  else
    cli_print_picks (inv, picks);

out:
  cli_common_clear (&c);
  return rc;
}
