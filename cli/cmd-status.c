/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cmd-status.c: `cacmail status`, readers, cards, personas, certs, picks and problems. No
 * reader, no card and pcscd down are states to report, not failures. */
#include "cli.h"
#include <stdio.h>

typedef struct
{
  char *name;
  char *atr;
  gboolean present;
  CmCard *card; /* borrowed from the inventory, NULL if not read */
  CmCardReport report;
  char *problem; /* code of a reader-level problem, or NULL */
} ReaderRow;

static void
reader_row_free (ReaderRow *r)
{
  g_free (r->name);
  g_free (r->atr);
  g_free (r->problem);
  g_free (r);
}

static JsonNode *
reader_json (CmInventory *inv, ReaderRow *r, gint64 at)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "name");
  json_builder_add_string_value (b, r->name);
  json_builder_set_member_name (b, "card");
  if (r->card == NULL)
    json_builder_add_null_value (b);
  else
    {
      const CmChuid *chuid = cm_card_get_chuid (r->card);
      GPtrArray *certs = cm_card_get_certs (r->card);
      CmPersona *p
        = certs->len ? cm_inventory_persona_of (inv, g_ptr_array_index (certs, 0)) : NULL;
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "atr");
      json_builder_add_string_value (b, r->atr ? r->atr : "");
      json_builder_set_member_name (b, "applets");
      json_builder_begin_array (b);
      json_builder_add_string_value (b, "piv");
      if (cm_card_get_cert (r->card, CM_SLOT_CAC_ID) || cm_card_get_cert (r->card, CM_SLOT_CAC_SIGN)
          || cm_card_get_cert (r->card, CM_SLOT_CAC_ENC))
        json_builder_add_string_value (b, "cac");
      json_builder_end_array (b);
      json_builder_set_member_name (b, "pin_tries_left");
      if (r->report.pin_tries_left >= 0)
        json_builder_add_int_value (b, r->report.pin_tries_left);
      else
        json_builder_add_null_value (b);
      json_builder_set_member_name (b, "from_cache");
      json_builder_add_int_value (b, r->report.from_cache);
      json_builder_set_member_name (b, "fascn");
      if (chuid && cm_chuid_get_fascn (chuid))
        json_builder_add_string_value (b, cm_chuid_get_fascn (chuid)->hex);
      else
        json_builder_add_null_value (b);
      json_builder_set_member_name (b, "guid");
      if (chuid && cm_chuid_get_guid (chuid))
        json_builder_add_string_value (b, cm_chuid_get_guid (chuid));
      else
        json_builder_add_null_value (b);
      json_builder_set_member_name (b, "persona_id");
      if (p && cm_persona_get_persona_id (p))
        json_builder_add_string_value (b, cm_persona_get_persona_id (p));
      else
        json_builder_add_null_value (b);
      json_builder_set_member_name (b, "certs");
      json_builder_begin_array (b);
      for (guint slot = 0; slot <= CM_SLOT_CAC_ENC; slot++)
        {
          CmCert *c
            = cm_slot_to_string ((CmSlot)slot) ? cm_card_get_cert (r->card, (CmSlot)slot) : NULL;
          JsonNode *n;
          if (c == NULL)
            continue;
          n = cm_json_cert (inv, c, at);
          json_object_set_string_member (json_node_get_object (n), "slot",
                                         cm_slot_to_string ((CmSlot)slot));
          json_builder_add_value (b, n);
        }
      json_builder_end_array (b);
      json_builder_end_object (b);
    }
  json_builder_end_object (b);
  return json_builder_get_root (b);
}

int
cmd_status (int argc, char **argv)
{
  CliCommon c = { 0 };
  g_autofree char *only = NULL;
  gboolean all = FALSE, short_only = FALSE, no_cache = FALSE;
  int wait_seconds = -1;
  GOptionEntry entries[] = {
    { "json", 0, 0, G_OPTION_ARG_NONE, &c.json, "Print JSON (docs/cacmail.schema.json)", NULL },
    { "reader", 0, 0, G_OPTION_ARG_STRING, &only, "Only this reader", "NAME" },
    { "all", 0, 0, G_OPTION_ARG_NONE, &all, "Also read Card Auth (9E)", NULL },
    { "at", 0, 0, G_OPTION_ARG_STRING, &c.at_text, "Judge validity at TIME (default now)", "TIME" },
    { "short-only", 0, 0, G_OPTION_ARG_NONE, &short_only, "Never send extended-length APDUs",
      NULL },
    { "no-cache", 0, 0, G_OPTION_ARG_NONE, &no_cache,
      "Read every certificate in full instead of confirming it from the cache", NULL },
    { "wait", 0, 0, G_OPTION_ARG_INT, &wait_seconds,
      "First wait up to SECONDS for a card to be inserted or removed (0: forever)", "SECONDS" },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("- show readers, cards and picks");
  g_autoptr (GError) error = NULL;
  g_autoptr (CmInventory) inv = cm_inventory_new ();
  g_autoptr (CmTrust) trust = NULL;
  g_autoptr (GPtrArray) readers = NULL;
  g_autoptr (GPtrArray) rows = g_ptr_array_new_with_free_func ((GDestroyNotify)reader_row_free);
  g_autoptr (GPtrArray) problems = g_ptr_array_new_with_free_func ((GDestroyNotify)cm_problem_free);
  g_autoptr (GPtrArray) picks = g_ptr_array_new_with_free_func ((GDestroyNotify)cm_picks_free);
  int rc = CLI_EXIT_OK;

  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!g_option_context_parse (ctx, &argc, &argv, &error))
    {
      rc = cli_usage ("%s", error->message);
      goto out;
    }
  if (!cli_common_prepare (&c, &trust, &error))
    {
      rc = cli_fail (error);
      goto out;
    }
  if (wait_seconds >= 0)
    {
      if (!c.json)
        fprintf (stderr, "Waiting for a card to be inserted or removed...\n");
      if (!cm_pcsc_wait_change_sync ((guint)wait_seconds * 1000, NULL, &error) && error)
        {
          rc = cli_fail (error);
          goto out;
        }
    }
  readers = cm_pcsc_list_readers_sync (NULL, &error);
  if (readers == NULL)
    {
      g_ptr_array_add (problems,
                       cm_problem_new_state (CM_STATE_PCSCD_NOT_RUNNING, NULL, error->message));
      g_clear_error (&error);
    }
  else if (readers->len == 0)
    g_ptr_array_add (problems, cm_problem_new_state (CM_STATE_NO_READER, NULL, NULL));
  for (guint i = 0; readers && i < readers->len; i++)
    {
      CmReaderInfo *info = g_ptr_array_index (readers, i);
      ReaderRow *row;
      if (only && strcmp (only, info->name) != 0)
        continue;
      row = g_new0 (ReaderRow, 1);
      row->name = g_strdup (info->name);
      row->atr = g_strdup (info->atr);
      row->present = info->card_present;
      row->report.pin_tries_left = -1; /* an empty reader has no PIN figure */
      g_ptr_array_add (rows, row);
      if (!info->card_present)
        continue;
      {
        GPtrArray *cards = cm_inventory_get_cards (inv);
        guint before = cards->len;
        CmReadFlags flags = (all ? CM_READ_ALL : 0) | (short_only ? CM_READ_SHORT_ONLY : 0)
                            | (no_cache ? CM_READ_NO_CACHE : 0);
        if (!c.json)
          fprintf (stderr, "Reading the card in %s...\n", info->name);
        if (!cm_card_read_sync (inv, info->name, flags, &row->report, NULL, &error))
          {
            g_ptr_array_add (problems, cm_problem_new_state (CM_STATE_CARD_READ_FAILED, info->name,
                                                             error->message));
            g_clear_error (&error);
          }
        else if (cards->len > before)
          row->card = g_ptr_array_index (cards, before);
        if (row->report.pin_tries_left == 0)
          g_ptr_array_add (problems, cm_problem_new_state (CM_STATE_PIN_BLOCKED, info->name, NULL));
        else if (row->report.pin_tries_left == 1)
          g_ptr_array_add (problems,
                           cm_problem_new_state (CM_STATE_PIN_TRIES_LOW, info->name, NULL));
      }
    }
  if (only && rows->len == 0)
    {
      g_set_error (&error, CM_ERROR, CM_ERROR_NOT_FOUND,
                   "reader '%s' is not connected: run 'cacmail status' to list readers", only);
      rc = cli_fail (error);
      goto out;
    }
  if (readers && readers->len && cm_inventory_get_cards (inv)->len == 0 && problems->len == 0)
    g_ptr_array_add (problems, cm_problem_new_state (CM_STATE_NO_CARD, NULL, NULL));
  {
    g_autoptr (GPtrArray) emails = cm_inventory_list_emails (inv);
    g_autoptr (GPtrArray) card_problems = cm_select_check_inventory (inv, c.at, trust);
    for (guint i = 0; i < emails->len; i++)
      g_ptr_array_add (picks,
                       cm_select_for_email (inv, g_ptr_array_index (emails, i), c.at, trust));
    while (card_problems->len)
      g_ptr_array_add (problems, g_ptr_array_steal_index (card_problems, 0));
  }

  if (c.json)
    {
      g_autoptr (JsonBuilder) b = json_builder_new ();
      g_autoptr (JsonNode) root = NULL;
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "readers");
      json_builder_begin_array (b);
      for (guint i = 0; i < rows->len; i++)
        json_builder_add_value (b, reader_json (inv, g_ptr_array_index (rows, i), c.at));
      json_builder_end_array (b);
      json_builder_set_member_name (b, "picks");
      json_builder_begin_array (b);
      for (guint i = 0; i < picks->len; i++)
        json_builder_add_value (b, cm_json_picks (g_ptr_array_index (picks, i)));
      json_builder_end_array (b);
      json_builder_set_member_name (b, "problems");
      json_builder_begin_array (b);
      for (guint i = 0; i < problems->len; i++)
        json_builder_add_value (b, cm_json_problem (g_ptr_array_index (problems, i)));
      json_builder_end_array (b);
      json_builder_end_object (b);
      root = json_builder_get_root (b);
      cli_print_json (root);
    }
  else
    {
      for (guint i = 0; i < rows->len; i++)
        {
          ReaderRow *r = g_ptr_array_index (rows, i);
          GPtrArray *certs = r->card ? cm_card_get_certs (r->card) : NULL;
          CmPersona *p = certs && certs->len
                           ? cm_inventory_persona_of (inv, g_ptr_array_index (certs, 0))
                           : NULL;
          printf ("reader %s: %s", r->name,
                  r->card      ? "card read"
                  : r->present ? "card present, not read"
                               : "empty (no card)");
          if (p)
            printf (", persona %s%s%s%s", cm_persona_get_key (p),
                    cm_persona_get_association (p) ? " (" : "",
                    cm_persona_get_association (p) ? cm_persona_get_association (p) : "",
                    cm_persona_get_association (p) ? ")" : "");
          if (r->present && r->report.pin_tries_left >= 0)
            printf (", %d PIN tr%s left", r->report.pin_tries_left,
                    r->report.pin_tries_left == 1 ? "y" : "ies");
          printf ("\n");
          if (r->card)
            {
              for (guint j = 0; j < certs->len; j++)
                cli_print_cert_line (inv, g_ptr_array_index (certs, j), c.at);
            }
        }
      for (guint i = 0; i < picks->len; i++)
        {
          printf ("\n");
          cli_print_picks (inv, g_ptr_array_index (picks, i));
        }
      if (problems->len)
        printf ("\nproblems:\n");
      for (guint i = 0; i < problems->len; i++)
        cli_print_problem (g_ptr_array_index (problems, i));
    }

out:
  cli_common_clear (&c);
  return rc;
}
