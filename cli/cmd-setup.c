/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cmd-setup.c: `cacmail setup`, run as the helper program cacmail-setup (it links libldap):
 * from a new profile to working S/MIME in six steps, each showing what it will change, skipped
 * when already done, rerunnable. Everything the options name is checked before the first step
 * changes anything (a wrong fingerprint or a bundle with an end-entity cert changes nothing). */
#include "setup.h"
#include "cm-config.h"
#include <stdarg.h>
#include <sys/wait.h>
#include <stdio.h>
#include <unistd.h>

SetupStatus
setup_not_done (Setup *s, int code, const char *fmt, ...)
{
  va_list ap;
  g_autofree char *msg = NULL;

  va_start (ap, fmt);
  msg = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  printf ("  NOT DONE: %s\n", msg);
  fprintf (stderr, "cacmail: error: %s\n", msg);
  if (code == CLI_EXIT_OK)
    code = CLI_EXIT_FAILED;
  if (s->exit_code == CLI_EXIT_OK || (code != CLI_EXIT_FAILED && code > s->exit_code))
    s->exit_code = code;
  return SETUP_NOT_DONE;
}

/* One line from the terminal, without its newline; NULL at end of input. Caller frees. */
static char *
read_answer (void)
{
  char buf[512];

  fflush (stdout);
  if (fgets (buf, sizeof buf, stdin) == NULL)
    return NULL;
  return g_strstrip (g_strdup (buf));
}

gboolean
setup_confirm (Setup *s, const char *question)
{
  g_autofree char *answer = NULL;

  if (s->yes)
    return TRUE;
  if (!s->interactive)
    {
      printf ("  (not applied: pass --yes, or run cacmail setup in a terminal to be asked)\n");
      return FALSE;
    }
  printf ("  %s [y/N] ", question);
  answer = read_answer ();
  return answer
         && (g_ascii_strcasecmp (answer, "y") == 0 || g_ascii_strcasecmp (answer, "yes") == 0);
}

const char *
setup_client_label (CmNssdbLocation *loc, char *buf, gsize n)
{
  if (loc->client == CM_NSSDB_CLIENT_THUNDERBIRD)
    g_snprintf (buf, n, "Thunderbird profile %s%s", loc->profile ? loc->profile : loc->dir,
                loc->is_default ? " (default)" : "");
  else if (loc->client == CM_NSSDB_CLIENT_EVOLUTION)
    g_snprintf (buf, n, "Evolution");
  else
    g_snprintf (buf, n, "sql:%s", loc->dir);
  return buf;
}

/* The main `cacmail` program: beside this helper (build tree) or installed. Caller frees. */
static char *
cacmail_path (void)
{
  g_autofree char *self = g_file_read_link ("/proc/self/exe", NULL);
  g_autofree char *dir = self ? g_path_get_dirname (self) : NULL;
  g_autofree char *beside = dir ? g_build_filename (dir, "cacmail", NULL) : NULL;

  if (beside && g_file_test (beside, G_FILE_TEST_IS_EXECUTABLE))
    return g_steal_pointer (&beside);
  return g_build_filename (CM_BINDIR, "cacmail", NULL);
}

int
setup_run_cacmail (const char *const *args, char **out, char **err)
{
  g_autofree char *exe = cacmail_path ();
  g_autoptr (GPtrArray) argv = g_ptr_array_new ();
  g_autoptr (GError) error = NULL;
  int status = 0;

  g_ptr_array_add (argv, exe);
  for (const char *const *a = args; *a; a++)
    g_ptr_array_add (argv, (char *)*a);
  g_ptr_array_add (argv, NULL);
  if (!g_spawn_sync (NULL, (char **)argv->pdata, NULL, G_SPAWN_DEFAULT, NULL, NULL, out, err,
                     &status, &error))
    {
      g_free (*err);
      *err = g_strdup_printf ("cacmail: error: cannot run %s (%s): reinstall cacmail", exe,
                              error->message);
      return -1;
    }
  return WIFEXITED (status) ? WEXITSTATUS (status) : CLI_EXIT_FAILED;
}

int
setup_ldap_exit_code (const GError *error)
{
  if (error->domain != CM_LDAP_ERROR)
    return CLI_EXIT_FAILED;
  switch ((CmLdapError)error->code)
    {
    case CM_LDAP_ERROR_CONFIG: return CLI_EXIT_USAGE;
    case CM_LDAP_ERROR_CONNECT:
    case CM_LDAP_ERROR_TLS: return CLI_EXIT_ENVIRONMENT;
    case CM_LDAP_ERROR_REFUSED: return CLI_EXIT_REFUSED;
    default: return CLI_EXIT_FAILED;
    }
}

/* ---- before the first change ------------------------------------------------------------- */

/* The root's fingerprint from the terminal, the bundle's roots shown to compare with DISA's. */
static char *
ask_fingerprint (CmBundle *bundle)
{
  GPtrArray *roots = cm_bundle_get_roots (bundle);

  printf ("Roots in %s (compare with the SHA-256 fingerprint DISA publishes):\n",
          cm_bundle_get_name (bundle));
  for (guint i = 0; i < roots->len; i++)
    printf ("  %s\n    SHA-256 %s\n", cm_cert_get_subject (g_ptr_array_index (roots, i)),
            cm_cert_get_sha256 (g_ptr_array_index (roots, i)));
  printf ("SHA-256 fingerprint of the DoD root you trust: ");
  return read_answer ();
}

static int
load_bundle (Setup *s)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (CmBundle) bundle = NULL;

  if (s->bundle == NULL)
    return s->root_sha256 ? cli_usage ("--root-sha256 goes with --bundle FILE") : CLI_EXIT_OK;
  if ((bundle = cm_bundle_load_file (s->bundle, &error)) == NULL)
    return cli_fail (error);
  if (s->root_sha256 == NULL && s->interactive)
    s->root_sha256 = ask_fingerprint (bundle);
  if (s->root_sha256 == NULL)
    return cli_usage ("--bundle needs --root-sha256 HEX: the DoD root's SHA-256 fingerprint as "
                      "DISA publishes it");
  s->analysis = cm_bundle_analyse (bundle, s->root_sha256, cm_time_now (), &error);
  if (s->analysis == NULL)
    return cli_fail (error);
  return CLI_EXIT_OK;
}

static int
load_config (Setup *s)
{
  g_autoptr (GError) error = NULL;
  const char *opts[][2] = { { "uri", s->uri },
                            { "base", s->base },
                            { "bind", s->bind },
                            { "ca-file", s->ca_file },
                            { "email", s->email } };

  s->config_path = s->config ? g_strdup (s->config) : cm_ldap_config_default_path ();
  s->cfg = cm_ldap_config_new ();
  if (!cm_ldap_config_load_file (s->cfg, s->config_path, FALSE, &error))
    {
      fprintf (stderr, "cacmail: error: %s\n", error->message);
      return CLI_EXIT_USAGE;
    }
  for (gsize i = 0; i < G_N_ELEMENTS (opts); i++)
    {
      if (opts[i][1] == NULL)
        continue;
      s->config_given = TRUE;
      if (!cm_ldap_config_set (s->cfg, opts[i][0], opts[i][1], &error))
        return cli_usage ("--%s: %s", opts[i][0], error->message);
    }
  if (s->config_given
      && (!cm_ldap_config_get (s->cfg, "uri") || !cm_ldap_config_get (s->cfg, "base")))
    return cli_usage ("the directory settings need both --uri URI and --base DN");
  return CLI_EXIT_OK;
}

static void
setup_clear (Setup *s)
{
  g_free (s->bundle);
  g_free (s->root_sha256);
  g_free (s->uri);
  g_free (s->base);
  g_free (s->bind);
  g_free (s->ca_file);
  g_free (s->email);
  g_free (s->config);
  g_free (s->config_path);
  g_clear_pointer (&s->targets, g_ptr_array_unref);
  g_clear_pointer (&s->analysis, cm_bundle_analysis_free);
  g_clear_pointer (&s->cfg, cm_ldap_config_free);
}

/* ---- the steps ------------------------------------------------------------------------------ */

static const struct
{
  const char *title;
  SetupStatus (*run) (Setup *s);
} steps[SETUP_STEPS] = {
  { "Mail clients and their NSS databases", setup_step_clients },
  { "The card's certificates (card module)", setup_step_module },
  { "DoD trust chain", setup_step_chain },
  { "Directory settings", setup_step_directory },
  { "S/MIME settings", setup_step_smime },
  { "Republish to the address list", setup_step_republish },
};

static int
run_steps (Setup *s)
{
  guint not_done = 0;

  for (guint i = 0; i < SETUP_STEPS; i++)
    {
      SetupStatus st;

      printf ("[%u/%u] %s\n", i + 1, SETUP_STEPS, steps[i].title);
      fflush (stdout);
      st = steps[i].run (s);
      if (st == SETUP_ALREADY)
        printf ("  => already done\n");
      else if (st == SETUP_DONE)
        printf ("  => done\n");
      else if (st == SETUP_OFFERED)
        printf ("  => offered\n");
      else
        not_done++;
      fflush (stdout);
      if (st == SETUP_NOT_DONE && i == 0)
        return s->exit_code; /* without a database there is nothing to set up */
    }
  if (not_done)
    printf ("Setup: %u step%s not done (see above); run cacmail setup again after the fix.\n",
            not_done, not_done == 1 ? "" : "s");
  else
    printf ("Setup: every step is done.\n");
  return not_done ? s->exit_code : CLI_EXIT_OK;
}

int
cmd_setup (int argc, char **argv)
{
  Setup s = { 0 };
  GOptionEntry entries[] = {
    { "bundle", 0, 0, G_OPTION_ARG_FILENAME, &s.bundle,
      "The DoD PKI bundle downloaded from DISA (.p7b, DER or PEM)", "FILE" },
    { "root-sha256", 0, 0, G_OPTION_ARG_STRING, &s.root_sha256,
      "SHA-256 fingerprint of the DoD root you trust (as DISA publishes it)", "HEX" },
    { "uri", 0, 0, G_OPTION_ARG_STRING, &s.uri, "LDAP server(s) of the address list", "URI" },
    { "base", 0, 0, G_OPTION_ARG_STRING, &s.base, "Search base of the address list", "DN" },
    { "bind", 0, 0, G_OPTION_ARG_STRING, &s.bind, "simple (default), gssapi or external",
      "METHOD" },
    { "ca-file", 0, 0, G_OPTION_ARG_FILENAME, &s.ca_file,
      "CA certificates (PEM) of the LDAP server (default: the DoD chain installed by step 3)",
      "FILE" },
    { "email", 0, 0, G_OPTION_ARG_STRING, &s.email, "Your address, for republish", "ADDR" },
    { "config", 0, 0, G_OPTION_ARG_FILENAME, &s.config,
      "The config file (default $XDG_CONFIG_HOME/cacmail/cacmail.conf)", "FILE" },
    { "yes", 'y', 0, G_OPTION_ARG_NONE, &s.yes, "Make every change without asking", NULL },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx
    = g_option_context_new ("- set up the mail clients for the card, step by step");
  g_autoptr (GError) error = NULL;
  int rc;

  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!g_option_context_parse (ctx, &argc, &argv, &error))
    rc = cli_usage ("%s", error->message);
  else if (argc > 1)
    rc = cli_usage ("setup takes no arguments ('%s')", argv[1]);
  else
    {
      s.interactive = !s.yes && isatty (STDIN_FILENO) && isatty (STDOUT_FILENO);
      if ((rc = load_config (&s)) == CLI_EXIT_OK && (rc = load_bundle (&s)) == CLI_EXIT_OK)
        rc = run_steps (&s);
    }
  setup_clear (&s);
  return rc;
}
