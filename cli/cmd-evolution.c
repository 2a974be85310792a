/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cmd-evolution.c: `cacmail evolution check|fix|undo`: Evolution's S/MIME settings against
 * the picks, fixed through evolution-data-server's registry; `login`: mail accounts set to log
 * in with the Kerberos ticket where the server offers GSSAPI (cm-evo-login.h). */
#include "cli.h"
#include <cm-evo-login.h>
#include <cm-evo.h>
#include <cm-nssdb.h>
#include <stdio.h>

static void
print_identity (CmEvoIdentity *id)
{
  const CmEvoSettings *cur = cm_evo_identity_get_current (id);
  const char *const *m = cm_evo_identity_get_messages (id);
  JsonArray *problems = cm_evo_identity_get_problems (id);

  printf ("%s <%s> (%s): %s\n", cur->name ? cur->name : "", cur->address, cur->uid,
          cm_evo_identity_is_stale (id) ? "STALE" : "ok");
  printf ("  signing:    %s\n", cur->signing && *cur->signing ? cur->signing : "(none)");
  printf ("  encryption: %s\n", cur->encryption && *cur->encryption ? cur->encryption : "(none)");
  cli_print_identity_findings (m, problems);
  if (cm_evo_identity_is_stale (id))
    {
      const char *ps = cm_evo_identity_get_proposed_signing (id);
      const char *pe = cm_evo_identity_get_proposed_encryption (id);
      printf ("  proposed signing:    %s\n", ps ? ps : "(none available)");
      printf ("  proposed encryption: %s\n", pe ? pe : "(none available)");
    }
}

/* `login`: probe, refuse (exit 5, nothing written) when an incoming server has no GSSAPI,
 * else write GSSAPI where offered. */
static int
do_login (const char *only, gboolean json, GError **error)
{
  g_autoptr (CmEvoLogin) login = cm_evo_login_new_sync (only, NULL, error);
  GPtrArray *servers;
  gint n;

  if (login == NULL)
    return -1;
  cm_evo_login_probe_sync (login, 10000, NULL);
  if ((n = cm_evo_login_apply_sync (login, NULL, error)) < 0)
    return -1;
  if (json)
    {
      g_autoptr (JsonNode) doc = cm_evo_login_to_json (login);
      cli_print_json (doc);
      return CLI_EXIT_OK;
    }
  servers = cm_evo_login_get_servers (login);
  if (servers->len == 0)
    printf ("No IMAP, POP3 or SMTP server in Evolution's mail accounts.\n");
  for (guint i = 0; i < servers->len; i++)
    {
      CmEvoLoginServer *s = g_ptr_array_index (servers, i);
      printf ("%s %s:%u (%s): %s\n", s->probe->kind, s->probe->host, s->probe->port,
              s->probe->address, s->message);
    }
  printf ("Changed %d server%s.\n", n, n == 1 ? "" : "s");
  if (servers->len)
    printf ("Evolution logs in with your Kerberos ticket: get one with the card by "
            "'cacmail login'.\n");
  return CLI_EXIT_OK;
}

int
cmd_evolution (int argc, char **argv)
{
  g_autofree char *nssdb = NULL, *at_text = NULL, *only = NULL;
  gboolean json = FALSE, no_card = FALSE;
  GOptionEntry entries[] = {
    { "identity", 0, 0, G_OPTION_ARG_STRING, &only, "Only this mail identity (its UID)", "UID" },
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, "Print JSON", NULL },
    { "nssdb", 0, 0, G_OPTION_ARG_FILENAME, &nssdb,
      "Evolution's NSS database (default ~/.pki/nssdb)", "DIR" },
    { "at", 0, 0, G_OPTION_ARG_STRING, &at_text, "Judge validity at TIME (default now)", "TIME" },
    { "no-card", 0, 0, G_OPTION_ARG_NONE, &no_card,
      "Do not read the card readers (skip the inserted-card check)", NULL },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx
    = g_option_context_new ("check|fix|undo|login - Evolution's S/MIME settings and mail login");
  g_autoptr (GError) error = NULL;
  g_autoptr (CmInventory) inv = cm_inventory_new ();
  g_autoptr (CmNssDb) db = NULL;
  g_autoptr (CmEvoRegistry) reg = NULL;
  g_autoptr (GPtrArray) inserted = NULL;
  g_autoptr (GPtrArray) ids = g_ptr_array_new_with_free_func ((GDestroyNotify)cm_evo_identity_free);
  g_autofree char *default_db = g_build_filename (g_get_home_dir (), ".pki", "nssdb", NULL);
  GPtrArray *settings;
  const char *verb;
  gint64 at = cm_time_now ();

  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!g_option_context_parse (ctx, &argc, &argv, &error))
    return cli_usage ("%s", error->message);
  if (argc != 2
      || (strcmp (argv[1], "check") && strcmp (argv[1], "fix") && strcmp (argv[1], "undo")
          && strcmp (argv[1], "login")))
    return cli_usage ("evolution needs one of: check, fix, undo, login");
  verb = argv[1];
  if (at_text && !cm_time_parse (at_text, &at, &error))
    return cli_usage ("--at: %s", error->message);
  if (strcmp (verb, "login") == 0)
    {
      int rc = do_login (only, json, &error);
      if (rc >= 0)
        return rc;
      goto fail;
    }

  if ((reg = cm_evo_registry_new_sync (NULL, &error)) == NULL)
    goto fail;
  if (strcmp (verb, "undo") == 0)
    {
      gint n = cm_evo_registry_undo_sync (reg, NULL, &error);
      if (n < 0)
        goto fail;
      printf ("Restored the previous S/MIME settings of %d identit%s.\n", n, n == 1 ? "y" : "ies");
      return CLI_EXIT_OK;
    }
  db = cm_nss_db_open_sync (nssdb ? nssdb : default_db,
                            CM_NSS_DB_READ_ONLY | CM_NSS_DB_LOAD_MODULES, NULL, &error);
  /* an unreadable record of recovered keys stops here: they must never be proposed */
  if (db == NULL || !cm_nss_db_add_certs_sync (db, inv, NULL, &error)
      || !cm_nssdb_mark_recovered_checked (inv, NULL, &error))
    goto fail;
  if (!no_card)
    inserted = cli_inserted_certs (inv, CM_READ_DEFAULT);
  settings = cm_evo_registry_list_identities (reg);
  for (guint i = 0; i < settings->len; i++)
    {
      CmEvoSettings *s = g_ptr_array_index (settings, i);
      if (only && strcmp (only, s->uid) != 0)
        continue;
      g_ptr_array_add (ids, cm_evo_identity_check (s, inv, inserted, at));
    }
  if (only && ids->len == 0)
    {
      g_set_error (&error, CM_ERROR, CM_ERROR_NOT_FOUND,
                   "no mail identity with UID %s: run 'cacmail evolution check' to list them",
                   only);
      goto fail;
    }
  if (strcmp (verb, "fix") == 0)
    {
      gint n = cm_evo_registry_fix_sync (reg, ids, NULL, &error);
      if (n < 0)
        goto fail;
      if (!json)
        printf ("Fixed %d identit%s%s\n", n, n == 1 ? "y" : "ies",
                n ? " (undo with 'cacmail evolution undo')." : ".");
    }
  if (json)
    {
      g_autoptr (JsonBuilder) b = json_builder_new ();
      g_autoptr (JsonNode) root = NULL;
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "identities");
      json_builder_begin_array (b);
      for (guint i = 0; i < ids->len; i++)
        json_builder_add_value (b, cm_evo_identity_to_json (g_ptr_array_index (ids, i)));
      json_builder_end_array (b);
      json_builder_end_object (b);
      root = json_builder_get_root (b);
      cli_print_json (root);
    }
  else if (strcmp (verb, "check") == 0)
    {
      if (ids->len == 0)
        printf ("No Evolution mail identity with an address.\n");
      for (guint i = 0; i < ids->len; i++)
        print_identity (g_ptr_array_index (ids, i));
    }
  return CLI_EXIT_OK;

fail:
  if (error->domain == CM_EVO_ERROR)
    {
      /* The registry missing is the environment; nothing to undo or no such identity is
       * the user's input. */
      g_autoptr (GError) mapped
        = g_error_new_literal (CM_ERROR,
                               error->code == CM_EVO_ERROR_REGISTRY ? CM_ERROR_ENVIRONMENT
                               : error->code == CM_EVO_ERROR_FAILED ? CM_ERROR_FAILED
                                                                    : CM_ERROR_NOT_FOUND,
                               error->message);
      return cli_fail (mapped);
    }
  return cli_fail (error);
}
