/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cmd-lookup.c: `cacmail lookup ADDR...`: find recipients' encryption certificates in the
 * directory, check them and import the good ones into the mail clients' NSS databases so that
 * Evolution and Thunderbird can encrypt to them; `--configure` sets up the clients' own
 * directory lookup (docs/ldap.md, "Recipient lookup"). */
#include "cm-private.h"
#include "lookup.h"
#include <fcntl.h>
#include <glib-unix.h>
#include <string.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

/* interrupted (128 + SIGINT) */
#define CLI_EXIT_CANCELLED 130

static char *
ask_password (CmLdapSecretKind kind, const char *subject, gpointer data, GError **error)
{
  int tty = open ("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
  g_autofree char *prompt = g_strdup_printf ("LDAP password for %s: ", subject);
  g_autoptr (GError) local = NULL;
  char *out;

  (void)kind;
  if (tty < 0 || !isatty (tty))
    {
      g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_CONFIG,
                   "no terminal to ask for the LDAP password of %s: pass --password-file FILE",
                   subject);
      if (tty >= 0)
        close (tty);
      return NULL;
    }
  /* @data: the run's cancellable (Ctrl-C ends the prompt) */
  out = cm_secret_read_line (tty, tty, prompt, "LDAP password", CM_SECRET_DEFAULT, data, &local);
  close (tty);
  if (out == NULL && local->domain == G_IO_ERROR)
    g_propagate_error (error, g_steal_pointer (&local));
  else if (out == NULL)
    g_set_error_literal (error, CM_LDAP_ERROR,
                         g_error_matches (local, CM_ERROR, CM_ERROR_UNSAFE) ? CM_LDAP_ERROR_REFUSED
                                                                            : CM_LDAP_ERROR_CONFIG,
                         local->message);
  return out;
}

static int
ldap_fail (GError *error)
{
  int code = CLI_EXIT_FAILED;

  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    {
      fprintf (stderr, "cacmail: cancelled: nothing was imported\n");
      return CLI_EXIT_CANCELLED;
    }
  if (error->domain != CM_LDAP_ERROR)
    return cli_fail (error);
  switch ((CmLdapError)error->code)
    {
    case CM_LDAP_ERROR_CONFIG: code = CLI_EXIT_USAGE; break;
    case CM_LDAP_ERROR_CONNECT:
    case CM_LDAP_ERROR_TLS: code = CLI_EXIT_ENVIRONMENT; break;
    case CM_LDAP_ERROR_REFUSED: code = CLI_EXIT_REFUSED; break;
    default: code = CLI_EXIT_FAILED; break;
    }
  g_strdelimit (error->message, "\r\n", ' ');
  fprintf (stderr, "cacmail: error: %s\n", error->message);
  return code;
}

/* {"address", "certs": [{"sha256", "role", "chain", "valid_now", "address_match", "imported",
 * "problems"}]} */
static void
json_lookup (JsonBuilder *b, const char *address, GPtrArray *certs)
{
  json_builder_begin_object (b);
  cm_json_add_string_or_null (b, "address", address);
  json_builder_set_member_name (b, "certs");
  json_builder_begin_array (b);
  for (guint i = 0; i < certs->len; i++)
    {
      LookupCert *lc = g_ptr_array_index (certs, i);
      json_builder_begin_object (b);
      cm_json_add_string_or_null (b, "sha256", lc->sha256);
      cm_json_add_string_or_null (b, "role", lc->role);
      cm_json_add_string_or_null (b, "chain", lc->chain);
      json_builder_set_member_name (b, "valid_now");
      json_builder_add_boolean_value (b, lc->valid_now);
      json_builder_set_member_name (b, "address_match");
      json_builder_add_boolean_value (b, lc->address_match);
      json_builder_set_member_name (b, "imported");
      json_builder_add_boolean_value (b, lc->imported);
      json_builder_set_member_name (b, "problems");
      json_builder_begin_array (b);
      for (guint k = 0; k < lc->problems->len; k++)
        json_builder_add_value (b, cm_json_problem (g_ptr_array_index (lc->problems, k)));
      json_builder_end_array (b);
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
  json_builder_end_object (b);
}

static void
print_lookup (CmLdapFound *f, GPtrArray *certs, gint64 at)
{
  if (f->dns->len == 0)
    {
      printf ("%s: not found in the directory\n", f->address);
      return;
    }
  printf ("%s: %s, %u certificate%s\n", f->address, (char *)g_ptr_array_index (f->dns, 0),
          certs->len, certs->len == 1 ? "" : "s");
  for (guint i = 0; i < certs->len; i++)
    {
      LookupCert *lc = g_ptr_array_index (certs, i);
      g_autofree char *name
        = lc->cert ? cli_short_name (lc->cert) : g_strdup ("(not a certificate)");
      g_autofree char *until
        = lc->cert ? cm_time_format_date (cm_cert_get_not_after (lc->cert)) : g_strdup ("-");
      printf ("  %s %-16s %s, %s %s (sha256 %.16s...)\n", lc->imported ? "imported" : "skipped ",
              lc->role, name,
              lc->cert && cm_cert_get_not_after (lc->cert) < at ? "EXPIRED" : "until", until,
              lc->sha256);
      for (guint k = 0; k < lc->problems->len; k++)
        {
          CmProblem *p = g_ptr_array_index (lc->problems, k);
          printf ("    %s: %s\n      hint: %s\n",
                  cm_severity_to_string (cm_problem_get_severity (p)), cm_problem_get_message (p),
                  cm_problem_get_hint (p));
        }
    }
}

/* Look up, check, import, report. Exit: 0 every address got a certificate imported, 3 nothing
 * was found for an address, 5 an address's certificates were all refused. */
static int
run_lookup (CmLdapConfig *cfg, LookupTargets *t, char **addresses, gint64 at, gboolean json,
            GCancellable *cancellable)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) found = NULL;
  g_autoptr (JsonBuilder) b = json_builder_new ();
  g_autofree char *uri = NULL;
  gboolean missing = FALSE, refused = FALSE;

  found = cm_ldap_lookup_sync (cfg, (const char *const *)addresses, ask_password, cancellable, &uri,
                               cancellable, &error);
  if (found == NULL)
    return ldap_fail (error);
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "lookups");
  json_builder_begin_array (b);
  for (guint i = 0; i < found->len; i++)
    {
      CmLdapFound *f = g_ptr_array_index (found, i);
      g_autoptr (GPtrArray) certs = lookup_check (t, f, at);
      gboolean any = FALSE;
      lookup_import (t, f->address, certs, at);
      for (guint k = 0; k < certs->len; k++)
        any |= ((LookupCert *)g_ptr_array_index (certs, k))->imported;
      missing |= certs->len == 0;
      refused |= certs->len > 0 && !any;
      if (json)
        json_lookup (b, f->address, certs);
      else
        print_lookup (f, certs, at);
    }
  json_builder_end_array (b);
  json_builder_end_object (b);
  if (json)
    {
      g_autoptr (JsonNode) root = json_builder_get_root (b);
      cli_print_json (root);
    }
  else
    for (guint i = 0; i < lookup_targets_get_dirs (t)->len; i++)
      printf ("NSS database: %s\n", (char *)g_ptr_array_index (lookup_targets_get_dirs (t), i));
  return missing ? CLI_EXIT_BAD_INPUT : refused ? CLI_EXIT_REFUSED : CLI_EXIT_OK;
}

static gboolean
on_signal (gpointer data)
{
  g_cancellable_cancel (data);
  return G_SOURCE_REMOVE;
}

static gpointer
signal_thread (gpointer data)
{
  GMainContext *ctx = data;

  for (;;)
    g_main_context_iteration (ctx, TRUE);
  return NULL;
}

int
cmd_lookup (int argc, char **argv)
{
  g_autofree char *config = NULL, *at_text = NULL, *nssdb = NULL, *client = NULL;
  g_autofree char *configure = NULL, *profile = NULL;
  g_auto (GStrv) ca = NULL, orig_argv = NULL;
  gboolean json = FALSE, insecure = FALSE, plain = FALSE;
  const char *keys[]
    = { "uri", "base", "bind", "bind-dn", "password-file", "ca-file", "filter", "timeout" };
  char *vals[G_N_ELEMENTS (keys)] = { NULL };
  GOptionEntry entries[] = {
    { "uri", 0, 0, G_OPTION_ARG_STRING, &vals[0], "LDAP server(s): ldap:// (StartTLS) or ldaps://",
      "URI" },
    { "base", 0, 0, G_OPTION_ARG_STRING, &vals[1], "Search base", "DN" },
    { "bind", 0, 0, G_OPTION_ARG_STRING, &vals[2], "simple (default), external or gssapi",
      "METHOD" },
    { "bind-dn", 0, 0, G_OPTION_ARG_STRING, &vals[3], "Bind as DN (default: anonymous)", "DN" },
    { "password-file", 0, 0, G_OPTION_ARG_FILENAME, &vals[4], "LDAP password in a file", "FILE" },
    { "ca-file", 0, 0, G_OPTION_ARG_FILENAME, &vals[5], "CA certs the server cert must chain to",
      "FILE" },
    { "filter", 0, 0, G_OPTION_ARG_STRING, &vals[6], "Entry filter, %s = the address", "FILTER" },
    { "timeout", 0, 0, G_OPTION_ARG_STRING, &vals[7], "Deadline of each network step (default 15)",
      "SECONDS" },
    { "insecure", 0, 0, G_OPTION_ARG_NONE, &insecure,
      "Do not verify the server certificate (tests)", NULL },
    { "allow-plain-ldap", 0, 0, G_OPTION_ARG_NONE, &plain,
      "Go on without TLS if the server refuses StartTLS (tests)", NULL },
    { "config", 0, 0, G_OPTION_ARG_FILENAME, &config,
      "Config file (default $XDG_CONFIG_HOME/cacmail/cacmail.conf)", "FILE" },
    { "nssdb", 0, 0, G_OPTION_ARG_FILENAME, &nssdb, "Import into this NSS database", "DIR" },
    { "client", 0, 0, G_OPTION_ARG_STRING, &client,
      "Import into this mail client's database: evolution or thunderbird", "CLIENT" },
    { "ca", 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &ca,
      "More CA certificates recipients' certs may chain to (roots are trusted)", "FILE" },
    { "configure", 0, 0, G_OPTION_ARG_STRING, &configure,
      "Set up the directory as an address book of evolution or thunderbird", "CLIENT" },
    { "profile", 0, 0, G_OPTION_ARG_FILENAME, &profile,
      "Thunderbird profile folder for --configure (default: the one it starts with)", "DIR" },
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, "Print JSON (docs/ldap.md)", NULL },
    { "at", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_STRING, &at_text, "Check validity at TIME",
      "TIME" },
    G_OPTION_ENTRY_NULL,
  };
  g_autoptr (GOptionContext) octx
    = g_option_context_new ("ADDR... - find recipients' certificates in the directory");
  g_autoptr (GError) error = NULL;
  g_autoptr (CmLdapConfig) cfg = cm_ldap_config_new ();
  g_autoptr (LookupTargets) targets = NULL;
  g_autoptr (GCancellable) cancellable = g_cancellable_new ();
  g_autoptr (GMainContext) sigctx = g_main_context_new ();
  gint64 at = cm_time_now ();
  int rc = CLI_EXIT_OK;

  signal (SIGPIPE, SIG_IGN);
  orig_argv = g_new0 (char *, argc + 1);
  for (int i = 0; i < argc; i++)
    orig_argv[i] = g_strdup (argv[i]);
  g_option_context_add_main_entries (octx, entries, NULL);
  if (!g_option_context_parse (octx, &argc, &argv, &error))
    rc = cli_usage ("%s", error->message);
  else if (configure && strcmp (configure, "evolution") != 0
           && strcmp (configure, "thunderbird") != 0)
    rc = cli_usage ("--configure '%s': use evolution or thunderbird", configure);
  else if (client && strcmp (client, "evolution") != 0 && strcmp (client, "thunderbird") != 0)
    rc = cli_usage ("--client '%s': use evolution or thunderbird", client);
  else if (nssdb && client)
    rc = cli_usage ("--nssdb and --client exclude each other");
  else if (argc < 2 && configure == NULL)
    rc = cli_usage ("lookup needs at least one address (cacmail lookup ADDR...)");
  else if (argc > 1 && configure)
    rc = cli_usage ("--configure takes no address ('%s')", argv[1]);
  else if (at_text && !cm_time_parse (at_text, &at, &error))
    rc = cli_usage ("--at: %s", error->message);
  if (rc != CLI_EXIT_OK)
    goto out;
  if (!cli_ldap_config_prepare (cfg, config, keys, vals, G_N_ELEMENTS (keys), insecure, plain,
                                &error))
    {
      rc = ldap_fail (error);
      goto out;
    }
  if (configure)
    {
      rc = lookup_configure (cfg, configure, profile, json, orig_argv);
      goto out;
    }
  if ((targets = lookup_targets_open (nssdb, client, ca, &error)) == NULL)
    {
      /* exit 3 says "nothing found in the directory": a missing database is the environment */
      if (g_error_matches (error, CM_ERROR, CM_ERROR_NOT_FOUND))
        error->code = CM_ERROR_ENVIRONMENT;
      rc = cli_fail (error);
      goto out;
    }
  {
    const int sigs[] = { SIGINT, SIGTERM, SIGHUP };
    for (gsize i = 0; i < G_N_ELEMENTS (sigs); i++)
      {
        GSource *src = g_unix_signal_source_new (sigs[i]);
        g_source_set_callback (src, on_signal, cancellable, NULL);
        g_source_attach (src, sigctx);
        g_source_unref (src);
      }
    g_thread_unref (g_thread_new ("cacmail-signals", signal_thread, g_main_context_ref (sigctx)));
  }
  rc = run_lookup (cfg, targets, argv + 1, at, json, cancellable);

out:
  for (gsize i = 0; i < G_N_ELEMENTS (vals); i++)
    g_free (vals[i]);
  return rc;
}
