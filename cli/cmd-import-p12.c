/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cmd-import-p12.c: `cacmail import-p12`, recovered (escrowed) encryption keys into the mail
 * clients' NSS databases, so old encrypted mail stays readable. The password comes from a
 * prompt without echo, the first line of a file (mode 600), or a pipe; never from the command
 * line. */
#include "cli.h"
#include "cm-private.h"
#include <cm-nssdb.h>
#include <stdio.h>
#include <unistd.h>

/* From the terminal without echo, else the first line of standard input (a pipe); read with
 * read(2), so no stdio buffer keeps a copy. Caller frees with cm_secret_free. */
static char *
prompt_password (const char *what, GError **error)
{
  g_autofree char *prompt = g_strdup_printf ("Password for %s: ", what);
  g_autoptr (GError) local = NULL;
  char *pw = cm_secret_read_line (STDIN_FILENO, isatty (STDIN_FILENO) ? STDERR_FILENO : -1, prompt,
                                  "PKCS#12 password", CM_SECRET_ALLOW_EMPTY, NULL, &local);

  if (pw == NULL)
    g_set_error (error, CM_ERROR, CM_ERROR_BAD_INPUT,
                 "no password given for %s (%s): type it at the prompt or use --password-file "
                 "FILE",
                 what, local->message);
  return pw;
}

typedef char *CliSecret;
G_DEFINE_AUTO_CLEANUP_FREE_FUNC (CliSecret, cm_secret_free, NULL)

static int
list_recovered (GPtrArray *targets)
{
  gint64 now = cm_time_now ();

  for (guint i = 0; i < targets->len; i++)
    {
      CmNssdbLocation *loc = g_ptr_array_index (targets, i);
      g_autoptr (GError) error = NULL;
      g_autoptr (CmNssDb) db = cm_nss_db_open_sync (loc->dir, CM_NSS_DB_READ_ONLY, NULL, &error);
      g_autoptr (GPtrArray) rec = db ? cm_nssdb_recovered_list (db, &error) : NULL;

      if (rec == NULL)
        return cli_fail (error);
      printf ("sql:%s (%s): %u recovered key%s, most recent Not After first\n", loc->dir,
              cm_nssdb_client_name (loc->client), rec->len, rec->len == 1 ? "" : "s");
      for (guint j = 0; j < rec->len; j++)
        {
          CmNssdbRecovered *r = g_ptr_array_index (rec, j);
          g_autofree char *from = cm_time_format_date (r->not_before);
          g_autofree char *to = cm_time_format_date (r->not_after);
          printf ("  %s\n    not before %s, not after %s%s; %s\n    sha256 %s%s\n", r->nickname,
                  from, to, r->not_after < now ? " (expired)" : "", r->subject, r->sha256,
                  r->present ? "" : "; MISSING from the database: import it again");
        }
    }
  return CLI_EXIT_OK;
}

int
cmd_import_p12 (int argc, char **argv)
{
  g_autofree char *nssdb = NULL, *pwfile = NULL;
  g_auto (GStrv) files = NULL;
  g_auto (CliSecret) password = NULL;
  gboolean list = FALSE;
  GOptionEntry entries[] = {
    { "nssdb", 0, 0, G_OPTION_ARG_FILENAME, &nssdb,
      "The NSS database folder (default: Evolution's and every Thunderbird profile's)", "DIR" },
    { "password-file", 0, 0, G_OPTION_ARG_FILENAME, &pwfile,
      "Read the PKCS#12 password from FILE (first line)", "FILE" },
    { "list", 0, 0, G_OPTION_ARG_NONE, &list, "List the recovered keys instead", NULL },
    { G_OPTION_REMAINING, 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &files, NULL, NULL },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx
    = g_option_context_new ("FILE... - import recovered encryption keys (PKCS#12)");
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) targets = NULL;

  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!g_option_context_parse (ctx, &argc, &argv, &error))
    return cli_usage ("%s", error->message);
  if (list && files && files[0])
    return cli_usage ("import-p12 --list takes no FILE");
  if (!list && (files == NULL || files[0] == NULL))
    return cli_usage ("import-p12 needs a FILE: the .p12/.pfx the key recovery service sent");
  if ((targets = cli_nss_targets (nssdb, !list, &error)) == NULL)
    return cli_fail (error);
  if (list)
    return list_recovered (targets);
  for (guint i = 0; i < targets->len; i++)
    if (!cm_nssdb_location_check (g_ptr_array_index (targets, i), CM_NSSDB_CHANGE_OBJECTS, &error))
      return cli_fail (error);
  /* an empty password is a real PKCS#12 password (an empty first line or an empty file) */
  password = pwfile ? cm_secret_read_file (pwfile, "password file", CM_SECRET_ALLOW_EMPTY, &error)
                    : prompt_password (files[1] ? "the PKCS#12 files" : files[0], &error);
  if (password == NULL)
    return cli_fail (error);
  for (char **f = files; *f; f++)
    for (guint i = 0; i < targets->len; i++)
      {
        CmNssdbLocation *loc = g_ptr_array_index (targets, i);
        g_autoptr (CmNssDb) db = cm_nss_db_open_sync (loc->dir, CM_NSS_DB_DEFAULT, NULL, &error);
        g_autoptr (GPtrArray) keys = NULL;
        guint added = 0;

        if (db == NULL || !cm_nssdb_import_p12_sync (db, *f, password, &keys, &added, NULL, &error))
          return cli_fail (error);
        for (guint k = 0; k < keys->len; k++)
          {
            CmNssdbRecovered *r = g_ptr_array_index (keys, k);
            printf ("%s: \"%s\" in sql:%s (%s)\n", added ? "imported" : "unchanged, already there",
                    r->nickname, loc->dir, cm_nssdb_client_name (loc->client));
          }
        if (loc->pid > 0)
          printf ("  note: %s is running; it sees the key when it next looks it up\n",
                  cm_nssdb_client_name (loc->client));
      }
  return CLI_EXIT_OK;
}
