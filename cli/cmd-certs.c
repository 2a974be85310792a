/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cmd-certs.c: `cacmail certs`, classify certificates and cards offline. */
#include "cli.h"
#include <stdio.h>

static void
write_stdout (const char *text, gpointer data)
{
  fputs (text, stdout);
}

int
cmd_certs (int argc, char **argv)
{
  CliCommon c = { 0 };
  GOptionEntry entries[] = {
    { "json", 0, 0, G_OPTION_ARG_NONE, &c.json, "Print JSON (docs/cacmail.schema.json)", NULL },
    { "at", 0, 0, G_OPTION_ARG_STRING, &c.at_text, "Judge validity at TIME (default now)", "TIME" },
    { "ca", 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &c.ca_files,
      "Trust anchors and intermediates to check chains against", "FILE" },
    { G_OPTION_REMAINING, 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &c.inputs, NULL, NULL },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("INPUT... - classify certificates");
  g_autoptr (GError) error = NULL;
  g_autoptr (CmInventory) inv = cm_inventory_new ();
  g_autoptr (CmTrust) trust = NULL;
  int rc = CLI_EXIT_OK;

  g_option_context_add_main_entries (ctx, entries, NULL);
  g_option_context_set_description (ctx,
                                    "INPUT is a certificate file (PEM or DER) or a card folder "
                                    "(docs/card-folder.md).");
  if (!g_option_context_parse (ctx, &argc, &argv, &error))
    {
      rc = cli_usage ("%s", error->message);
      goto out;
    }
  if (c.inputs == NULL || c.inputs[0] == NULL)
    {
      rc = cli_usage ("certs needs at least one INPUT (a certificate file or card folder)");
      goto out;
    }
  if (!cli_common_prepare (&c, &trust, &error) || !cli_load_inputs (inv, c.inputs, &error))
    {
      rc = cli_fail (error);
      goto out;
    }
  if (c.json)
    {
      /* streamed: thousands of certs never make one tree in memory */
      cm_json_certs_report_write (inv, c.at, trust, write_stdout, NULL);
    }
  else
    {
      GPtrArray *certs = cm_inventory_get_certs (inv);
      GPtrArray *cards = cm_inventory_get_cards (inv);
      g_autoptr (GPtrArray) problems = cm_select_check_inventory (inv, c.at, trust);
      g_autofree char *at = cm_time_format (c.at);

      printf ("%u certificate(s), %u card(s), at %s\n", certs->len, cards->len, at);
      for (guint i = 0; i < cards->len; i++)
        {
          CmCard *card = g_ptr_array_index (cards, i);
          const CmChuid *chuid = cm_card_get_chuid (card);
          printf ("card %s\n  identity %s", cm_card_get_label (card), cm_card_get_identity (card));
          if (chuid && cm_chuid_get_expiry (chuid))
            printf (", CHUID expires %s", cm_chuid_get_expiry (chuid));
          printf ("\n");
        }
      for (guint i = 0; i < certs->len; i++)
        {
          CmCert *cert = g_ptr_array_index (certs, i);
          cli_print_cert_line (inv, cert, c.at);
          if (trust)
            printf ("  %-16s  chain: %s\n", "",
                    cm_chain_status_to_string (cm_trust_build_chain (trust, cert, c.at, NULL)));
        }
      if (problems->len)
        printf ("problems:\n");
      for (guint i = 0; i < problems->len; i++)
        cli_print_problem (g_ptr_array_index (problems, i));
    }

out:
  cli_common_clear (&c);
  return rc;
}
