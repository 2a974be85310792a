/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* setup-mail.c: steps 4-6 of `cacmail setup`: the directory settings (saved only after a
 * connection test with TLS verified), the mail clients' S/MIME settings (through `cacmail
 * evolution` and `cacmail thunderbird`, while the client is closed), and republish. */
#include "setup.h"
#include <stdio.h>

/* ---- 4. directory settings ------------------------------------------------------------------ */

SetupStatus
setup_step_directory (Setup *s)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) plan = NULL;
  g_autofree char *report = NULL, *backup = NULL;
  gint64 t0;

  if (!s->config_given)
    {
      if (cm_ldap_config_get (s->cfg, "uri") && cm_ldap_config_get (s->cfg, "base"))
        {
          printf ("  %s: uri %s, base %s\n", s->config_path, cm_ldap_config_get (s->cfg, "uri"),
                  cm_ldap_config_get (s->cfg, "base"));
          return SETUP_ALREADY;
        }
      return setup_not_done (s, CLI_EXIT_USAGE,
                             "no directory settings in %s: pass --uri URI --base DN (and --bind "
                             "simple|gssapi|external) as your directory admin gives them",
                             s->config_path);
    }
  if ((plan = cm_ldap_config_plan_save (s->cfg, s->config_path, NULL, &error)) == NULL)
    return setup_not_done (s, setup_ldap_exit_code (error), "%s", error->message);
  if (plan->len == 0)
    {
      printf ("  %s holds these settings\n", s->config_path);
      return SETUP_ALREADY;
    }
  for (guint i = 0; i < plan->len; i++)
    printf ("  %s: will set %s\n", s->config_path, (char *)g_ptr_array_index (plan, i));
  printf ("  testing the connection to %s ...\n", cm_ldap_config_get (s->cfg, "uri"));
  fflush (stdout);
  t0 = g_get_monotonic_time ();
  if (!cm_ldap_config_test_sync (s->cfg, &report, NULL, &error))
    return setup_not_done (s, setup_ldap_exit_code (error), "%s (nothing was written to %s)",
                           error->message, s->config_path);
  printf ("  connection test passed in %.1f s: %s\n", (g_get_monotonic_time () - t0) / 1e6, report);
  if (!setup_confirm (s, "Save these directory settings?"))
    return setup_not_done (s, CLI_EXIT_FAILED, "the directory settings were not saved");
  if (!cm_ldap_config_save (s->cfg, s->config_path, NULL, &backup, &error))
    return setup_not_done (s, setup_ldap_exit_code (error), "%s", error->message);
  printf ("  saved %s%s%s\n", s->config_path, backup ? " (the previous file: " : "",
          backup ? backup : "");
  if (backup)
    printf (")\n");
  return SETUP_DONE;
}

/* ---- 5. S/MIME settings ------------------------------------------------------------------- */

/* The last "cacmail: error: " line of a command's standard error without that prefix, or
 * @fallback (borrowed from @err or @fallback). */
static const char *
last_error (char *err, const char *fallback)
{
  const char *prefix = "cacmail: error: ";
  char *found = NULL;

  for (char *line = err ? strtok (err, "\n") : NULL; line; line = strtok (NULL, "\n"))
    if (g_str_has_prefix (line, prefix))
      found = line + strlen (prefix);
  return found ? found : fallback;
}

/* The stale identities of a `cacmail evolution|thunderbird check --json` document, or -1 with
 * *@why when the check failed. */
static int
count_stale (const char *const *args, char **why)
{
  g_autofree char *out = NULL, *err = NULL;
  g_autoptr (JsonParser) p = json_parser_new ();
  int rc = setup_run_cacmail (args, &out, &err);
  JsonObject *doc;
  JsonArray *ids;
  int n = 0;

  if (rc != 0 || !json_parser_load_from_data (p, out ? out : "", -1, NULL)
      || !JSON_NODE_HOLDS_OBJECT (json_parser_get_root (p)))
    {
      *why = g_strdup (last_error (err, "its check failed"));
      return -1;
    }
  doc = json_node_get_object (json_parser_get_root (p));
  ids = json_object_has_member (doc, "identities")
          ? json_object_get_array_member (doc, "identities")
          : NULL;
  for (guint i = 0; ids && i < json_array_get_length (ids); i++)
    n += g_strcmp0 (json_object_get_string_member_with_default (
                      json_array_get_object_element (ids, i), "state", ""),
                    "stale")
         == 0;
  return n;
}

/* TRUE when Evolution has a mail identity: a .source file with a [Mail Identity] group in its
 * sources folder. Without one there is nothing to fix, and the registry (a D-Bus service that a
 * session without Evolution may lack) need not be asked. */
static gboolean
evolution_has_identities (void)
{
  g_autofree char *dir = g_build_filename (g_get_user_config_dir (), "evolution", "sources", NULL);
  g_autoptr (GDir) d = g_dir_open (dir, 0, NULL);
  const char *name;

  while (d && (name = g_dir_read_name (d)))
    {
      g_autofree char *path = g_build_filename (dir, name, NULL);
      g_autoptr (GKeyFile) kf = g_key_file_new ();

      if (g_str_has_suffix (name, ".source")
          && g_key_file_load_from_file (kf, path, G_KEY_FILE_NONE, NULL)
          && g_key_file_has_group (kf, "Mail Identity"))
        return TRUE;
    }
  return FALSE;
}

/* Check, then fix one client's identities: @check and @fix are cacmail's arguments. */
static gboolean
smime_one (Setup *s, CmNssdbLocation *loc, const char *const *check, const char *const *fix,
           gboolean *changed)
{
  g_autofree char *why = NULL, *out = NULL, *err = NULL, *question = NULL;
  char label[256];
  int stale, rc;

  setup_client_label (loc, label, sizeof label);
  printf ("  %s: checking the identities against the card ...\n", label);
  fflush (stdout);
  if ((stale = count_stale (check, &why)) < 0)
    return setup_not_done (s, CLI_EXIT_ENVIRONMENT, "%s: %s", label, why), FALSE;
  if (stale == 0)
    {
      printf ("  %s: the S/MIME settings are right\n", label);
      return TRUE;
    }
  printf ("  %s: will fix the S/MIME settings of %d identit%s (undo: cacmail %s undo)\n", label,
          stale, stale == 1 ? "y" : "ies", fix[0]);
  if (loc->pid > 0)
    return setup_not_done (s, CLI_EXIT_REFUSED,
                           "%s is running (PID %d): close it, then run cacmail setup again", label,
                           loc->pid),
           FALSE;
  question = g_strdup_printf ("Fix the S/MIME settings for %s?", label);
  if (!setup_confirm (s, question))
    return setup_not_done (s, CLI_EXIT_FAILED, "%s: not fixed", label), FALSE;
  if ((rc = setup_run_cacmail (fix, &out, &err)) != 0)
    return setup_not_done (s, rc < 0 ? CLI_EXIT_ENVIRONMENT : rc, "%s: %s", label,
                           last_error (err, "the fix failed")),
           FALSE;
  printf ("  %s: %s\n", label, g_strstrip (out));
  g_clear_pointer (&why, g_free);
  if ((stale = count_stale (check, &why)) != 0)
    return setup_not_done (s, CLI_EXIT_FAILED,
                           "%s: %d identit%s still need%s attention: run cacmail %s check", label,
                           stale, stale == 1 ? "y" : "ies", stale == 1 ? "s" : "", fix[0]),
           FALSE;
  *changed = TRUE;
  return TRUE;
}

SetupStatus
setup_step_smime (Setup *s)
{
  gboolean changed = FALSE, all = TRUE;

  for (guint i = 0; i < s->targets->len; i++)
    {
      CmNssdbLocation *loc = g_ptr_array_index (s->targets, i);

      if (loc->client == CM_NSSDB_CLIENT_EVOLUTION && !evolution_has_identities ())
        printf ("  Evolution: no mail identity yet: nothing to fix (run cacmail setup again "
                "after adding your mail account)\n");
      else if (loc->client == CM_NSSDB_CLIENT_EVOLUTION)
        {
          const char *check[] = { "evolution", "--nssdb", loc->dir, "--json", "check", NULL };
          const char *fix[] = { "evolution", "--nssdb", loc->dir, "fix", NULL };
          all &= smime_one (s, loc, check, fix, &changed);
        }
      else if (loc->client == CM_NSSDB_CLIENT_THUNDERBIRD)
        {
          const char *check[] = { "thunderbird", "--profile", loc->dir, "--json", "check", NULL };
          const char *fix[] = { "thunderbird", "--profile", loc->dir, "fix", NULL };
          all &= smime_one (s, loc, check, fix, &changed);
        }
    }
  if (!all)
    return SETUP_NOT_DONE;
  return changed ? SETUP_DONE : SETUP_ALREADY;
}

/* ---- 6. republish ------------------------------------------------------------------------- */

SetupStatus
setup_step_republish (Setup *s)
{
  g_autofree char *default_config = cm_ldap_config_default_path ();
  const char *email = cm_ldap_config_get (s->cfg, "email");
  g_autoptr (GPtrArray) argv = g_ptr_array_new ();
  g_autoptr (GString) line = g_string_new ("cacmail republish");
  g_autoptr (GError) error = NULL;
  g_autofree char *self = NULL;
  int status = 0;

  g_ptr_array_add (argv, (char *)"republish");
  if (strcmp (s->config_path, default_config) != 0)
    {
      g_ptr_array_add (argv, (char *)"--config");
      g_ptr_array_add (argv, s->config_path);
      g_string_append_printf (line, " --config %s", s->config_path);
    }
  if (email == NULL)
    g_string_append (line, " --email ADDRESS (the address on your card)");
  if (!cm_ldap_config_get (s->cfg, "uri"))
    {
      printf ("  set the directory first (step 4), then: %s\n", line->str);
      return SETUP_OFFERED;
    }
  if (!s->interactive)
    {
      printf ("  to publish your certificates to the address list, run: %s\n", line->str);
      return SETUP_OFFERED;
    }
  if (email == NULL)
    {
      printf ("  to publish your certificates to the address list, run: %s\n", line->str);
      return SETUP_OFFERED;
    }
  if (!setup_confirm (s, "Publish your card's certificates to the address list now (asks the "
                         "directory password and the PIN)?"))
    {
      printf ("  later: %s\n", line->str);
      return SETUP_OFFERED;
    }
  g_ptr_array_add (argv, NULL);
  self = cli_helper_path ("cacmail-republish");
  if (self == NULL)
    return setup_not_done (s, CLI_EXIT_ENVIRONMENT,
                           "cacmail-republish is not installed: install cacmail's LDAP support");
  g_ptr_array_insert (argv, 0, self); /* the file, then argv[0] = "republish" */
  fflush (stdout);
  if (!g_spawn_sync (NULL, (char **)argv->pdata, NULL,
                     G_SPAWN_CHILD_INHERITS_STDIN | G_SPAWN_FILE_AND_ARGV_ZERO, NULL, NULL, NULL,
                     NULL, &status, &error)
      || !g_spawn_check_wait_status (status, NULL))
    return setup_not_done (s, CLI_EXIT_FAILED, "republish did not finish%s%s: run %s again",
                           error ? ": " : "", error ? error->message : "", line->str);
  return SETUP_DONE;
}
