/* cmd-import-p12.c: `cacmail import-p12`, recovered (escrowed) encryption keys into the mail
 * clients' NSS databases, so old encrypted mail stays readable. The password comes from a
 * prompt without echo, a file, or a pipe; never from the command line. */
#include "cli.h"
#include <cm-nssdb.h>
#include <errno.h>
#include <stdio.h>
#include <termios.h>
#include <unistd.h>

/* Drop one trailing newline (\n or \r\n). */
static void
chomp (char *s)
{
  gsize n = strlen (s);
  if (n && s[n - 1] == '\n')
    s[--n] = '\0';
  if (n && s[n - 1] == '\r')
    s[--n] = '\0';
}

static char *
read_password_file (const char *path, GError **error)
{
  g_autoptr (GError) local = NULL;
  char *text = NULL;
  gsize len = 0;

  if (!g_file_get_contents (path, &text, &len, &local))
    {
      g_set_error (error, CM_ERROR, CM_ERROR_NOT_FOUND,
                   "cannot read the password file %s (%s): check the name", path, local->message);
      return NULL;
    }
  if (strlen (text) != len)
    {
      explicit_bzero (text, len);
      g_free (text);
      g_set_error (error, CM_ERROR, CM_ERROR_BAD_INPUT,
                   "the password file %s holds a NUL byte: write the password as text", path);
      return NULL;
    }
  chomp (text);
  return text;
}

/* From the terminal without echo, else one line of standard input. */
static char *
prompt_password (const char *what, GError **error)
{
  char buf[1024];
  struct termios old, quiet;
  gboolean tty = isatty (STDIN_FILENO) && tcgetattr (STDIN_FILENO, &old) == 0;
  char *got;

  if (tty)
    {
      fprintf (stderr, "Password for %s: ", what);
      fflush (stderr);
      quiet = old;
      quiet.c_lflag &= ~(ECHO | ECHONL);
      tcsetattr (STDIN_FILENO, TCSAFLUSH, &quiet);
    }
  got = fgets (buf, sizeof buf, stdin);
  if (tty)
    {
      tcsetattr (STDIN_FILENO, TCSAFLUSH, &old);
      fputc ('\n', stderr);
    }
  if (got == NULL)
    {
      explicit_bzero (buf, sizeof buf);
      g_set_error (error, CM_ERROR, CM_ERROR_BAD_INPUT,
                   "no password given for %s: type it at the prompt or use --password-file FILE",
                   what);
      return NULL;
    }
  chomp (buf);
  got = g_strdup (buf);
  explicit_bzero (buf, sizeof buf);
  return got;
}

static void
password_free (char *pw)
{
  if (pw)
    {
      explicit_bzero (pw, strlen (pw));
      g_free (pw);
    }
}

typedef char *CliSecret;
G_DEFINE_AUTO_CLEANUP_FREE_FUNC (CliSecret, password_free, NULL)

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
  password = pwfile ? read_password_file (pwfile, &error)
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
