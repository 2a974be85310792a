/* cmd-republish.c: `cacmail republish`, the card's certificates to the address list (GAL) over
 * LDAP in one command (docs/ldap.md), and the LDAP step of `cacmail demo`. */
#include "cli.h"
#include "cm-config.h"
#include <cm-ldap.h>
#include <signal.h>
#include <stdio.h>
#include <termios.h>
#include <unistd.h>

typedef struct
{
  char *pin_file;
  gboolean json;
  gboolean in_step; /* a progress line is open */
} Ctx;

/* Read a line from /dev/tty without echo. Caller frees with cm_ldap_secret_free. */
static char *
prompt_tty (const char *prompt, GError **error)
{
  FILE *tty = fopen ("/dev/tty", "r+");
  struct termios old, quiet;
  char buf[256];
  char *out = NULL;

  if (tty == NULL || tcgetattr (fileno (tty), &old) != 0)
    {
      g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_CONFIG,
                   "no terminal to ask for the %s: pass it in a file (--password-file or "
                   "--pin-file)",
                   prompt);
      goto out;
    }
  quiet = old;
  quiet.c_lflag &= ~(tcflag_t)ECHO;
  fprintf (tty, "%s: ", prompt);
  fflush (tty);
  tcsetattr (fileno (tty), TCSAFLUSH, &quiet);
  if (fgets (buf, sizeof buf, tty))
    {
      buf[strcspn (buf, "\r\n")] = '\0';
      out = g_strdup (buf);
    }
  tcsetattr (fileno (tty), TCSAFLUSH, &old);
  fprintf (tty, "\n");
  if (out == NULL)
    g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_CONFIG, "no %s was typed", prompt);
out:
  explicit_bzero (buf, sizeof buf);
  if (tty)
    fclose (tty);
  return out;
}

static char *
ask_secret (CmLdapSecretKind kind, const char *subject, gpointer data, GError **error)
{
  Ctx *ctx = data;
  g_autofree char *prompt = NULL;

  if (kind == CM_LDAP_SECRET_PIN && ctx->pin_file)
    return cm_ldap_secret_read_file (ctx->pin_file, error);
  prompt = kind == CM_LDAP_SECRET_PIN ? g_strdup_printf ("PIN of the card '%s'", subject)
                                      : g_strdup_printf ("LDAP password for %s", subject);
  return prompt_tty (prompt, error);
}

static void
show_progress (CmLdapStep step, gboolean done, double ms, gpointer data)
{
  Ctx *ctx = data;

  if (ctx->json)
    return;
  ctx->in_step = !done;
  if (!done)
    printf ("[%d/%d] %s ...", (int)step + 1, (int)CM_LDAP_N_STEPS, cm_ldap_step_to_string (step));
  else
    printf (" done (%.0f ms)\n", ms);
  fflush (stdout);
}

static int
ldap_fail (GError *error)
{
  int code = CLI_EXIT_FAILED;

  if (error->domain == CM_LDAP_ERROR)
    switch ((CmLdapError)error->code)
      {
      case CM_LDAP_ERROR_CONFIG: code = CLI_EXIT_USAGE; break;
      case CM_LDAP_ERROR_NOT_FOUND: code = CLI_EXIT_BAD_INPUT; break;
      case CM_LDAP_ERROR_CONNECT:
      case CM_LDAP_ERROR_TLS:
      case CM_LDAP_ERROR_CARD: code = CLI_EXIT_ENVIRONMENT; break;
      case CM_LDAP_ERROR_REFUSED:
      case CM_LDAP_ERROR_NOT_UNIQUE: code = CLI_EXIT_REFUSED; break;
      case CM_LDAP_ERROR_CONFLICT: code = CLI_EXIT_CONFLICT; break;
      case CM_LDAP_ERROR_AUTH:
      case CM_LDAP_ERROR_PIN:
      case CM_LDAP_ERROR_SERVER:
      case CM_LDAP_ERROR_VERIFY:
      case CM_LDAP_ERROR_FAILED:
      default: code = CLI_EXIT_FAILED; break;
      }
  else
    return cli_fail (error);
  /* the message is one line; a newline from a server text would break that */
  g_strdelimit (error->message, "\r\n", ' ');
  fprintf (stderr, "cacmail: error: %s\n", error->message);
  return code;
}

static void
print_certs (const char *label, GPtrArray *certs, gint64 at)
{
  for (guint i = 0; i < certs->len; i++)
    {
      CmCert *c = g_ptr_array_index (certs, i);
      g_autofree char *name = cli_short_name (c);
      g_autofree char *until = cm_time_format_date (cm_cert_get_not_after (c));
      const char *const *emails = cm_cert_get_emails (c);
      printf ("  %-8s %u. %-16s %s, %s %s, %s (sha256 %.16s...)\n", i ? "" : label, i + 1,
              cm_role_to_string (cm_cert_get_role (c)), name,
              cm_cert_get_not_after (c) < at ? "EXPIRED" : "until", until,
              emails && emails[0] ? emails[0] : "no email", cm_cert_get_sha256 (c));
    }
  if (certs->len == 0)
    printf ("  %-8s none\n", label);
}

static void
print_result (CmLdapResult *r, gboolean dry_run, gboolean unpublish, gint64 at)
{
  GBytes *blob = cm_ldap_result_get_new_smime (r);

  if (cm_ldap_result_get_unchanged (r))
    printf ("Nothing to remove: %s holds no certificate for %s.\n", cm_ldap_result_get_dn (r),
            cm_ldap_result_get_email (r));
  else if (dry_run)
    printf ("Planned change to %s (dry run: nothing written):\n", cm_ldap_result_get_dn (r));
  else
    printf ("%s %s:\n", unpublish ? "Unpublished from" : "Republished to",
            cm_ldap_result_get_dn (r));
  if (cm_ldap_result_get_unchanged (r))
    return;
  print_certs (unpublish ? "remove:" : "old:", cm_ldap_result_get_old_certs (r), at);
  if (!unpublish)
    print_certs ("new:", cm_ldap_result_get_new_certs (r), at);
  if (unpublish)
    printf ("  userSMIMECertificate: %s\n", cm_ldap_result_get_old_smime (r) ? "removed" : "none");
  else if (blob)
    printf ("  userSMIMECertificate: %s (%zu bytes, signed with your signing key)\n",
            cm_ldap_result_get_old_smime (r) ? "replaced" : "added", g_bytes_get_size (blob));
  else
    printf ("  userSMIMECertificate: %s by a new one signed with your signing key\n",
            cm_ldap_result_get_old_smime (r) ? "to be replaced" : "to be added");
  if (cm_ldap_result_get_written (r))
    printf ("  verified: the server holds exactly what was written%s\n",
            cm_ldap_result_get_reordered (r) ? ", but in another ORDER" : ", in this order");
  if (cm_ldap_result_get_reordered (r))
    printf ("  warning: the server reordered userCertificate: gpgsm and Evolution read only "
            "the first value and may now see the signing cert\n");
}

int
cmd_republish (int argc, char **argv)
{
  Ctx ctx = { NULL, FALSE, FALSE };
  g_autofree char *config = NULL, *at_text = NULL;
  gboolean dry_run = FALSE, unpublish = FALSE, insecure = FALSE;
  const char *keys[]
    = { "uri",   "base",  "entry-dn", "bind",        "bind-dn",    "password-file", "ca-file",
        "nssdb", "email", "token",    "client-cert", "client-key", "filter",        "guard" };
  char *vals[G_N_ELEMENTS (keys)] = { NULL };
  G_STATIC_ASSERT (G_N_ELEMENTS (keys) == 14);
#define STR_OPT(n, i, help, arg) { n, 0, 0, G_OPTION_ARG_STRING, &vals[i], help, arg }
#define FILE_OPT(n, i, help, arg)                                                                  \
  {                                                                                                \
    n, 0, 0, G_OPTION_ARG_FILENAME, &vals[i], help, arg                                            \
  }
  GOptionEntry entries[] = {
    STR_OPT ("uri", 0, "LDAP server(s): ldap:// (StartTLS) or ldaps://", "URI"),
    STR_OPT ("base", 1, "Search base", "DN"),
    STR_OPT ("entry-dn", 2, "Your entry (else found by --email)", "DN"),
    STR_OPT ("bind", 3, "simple (default), external or gssapi", "METHOD"),
    STR_OPT ("bind-dn", 4, "DN for a simple bind (default: your entry)", "DN"),
    FILE_OPT ("password-file", 5, "LDAP password in a file (else asked)", "FILE"),
    FILE_OPT ("ca-file", 6, "CA certs the server cert must chain to", "FILE"),
    FILE_OPT ("nssdb", 7, "NSS database with the card's module and CAs", "DIR"),
    STR_OPT ("email", 8, "The address to publish for", "ADDR"),
    STR_OPT ("token", 9, "NSS token label of the card", "LABEL"),
    FILE_OPT ("client-cert", 10, "Client cert for --bind external", "FILE"),
    FILE_OPT ("client-key", 11, "Its key file", "FILE"),
    STR_OPT ("filter", 12, "Entry filter, %s = the address", "FILTER"),
    { "guard", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_STRING, &vals[13], "auto or values", "HOW" },
    { "insecure", 0, 0, G_OPTION_ARG_NONE, &insecure, "Allow plain LDAP without TLS (tests)",
      NULL },
    { "pin-file", 0, 0, G_OPTION_ARG_FILENAME, &ctx.pin_file, "Card PIN in a file (else asked)",
      "FILE" },
    { "dry-run", 0, 0, G_OPTION_ARG_NONE, &dry_run, "Print the planned change, write nothing",
      NULL },
    { "unpublish", 0, 0, G_OPTION_ARG_NONE, &unpublish, "Remove what cacmail published", NULL },
    { "json", 0, 0, G_OPTION_ARG_NONE, &ctx.json, "Print JSON (docs/ldap.md)", NULL },
    { "config", 0, 0, G_OPTION_ARG_FILENAME, &config,
      "Config file (default $XDG_CONFIG_HOME/cacmail/cacmail.conf)", "FILE" },
    { "at", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_STRING, &at_text,
      "Check validity at TIME (tests)", "TIME" },
    { NULL },
  };
  g_autoptr (GOptionContext) octx
    = g_option_context_new ("- publish the card's certificates to the address list");
  g_autoptr (GError) error = NULL;
  g_autoptr (CmLdapConfig) cfg = cm_ldap_config_new ();
  g_autoptr (CmLdapResult) result = NULL;
  g_autofree char *def = cm_ldap_config_default_path ();
  g_autofree char *home_db = g_build_filename (g_get_home_dir (), ".pki", "nssdb", NULL);
  gint64 at = cm_time_now ();
  int rc = CLI_EXIT_OK;

  signal (SIGPIPE, SIG_IGN); /* a server killed mid-write must give an error, not kill us */
  g_option_context_add_main_entries (octx, entries, NULL);
  if (!g_option_context_parse (octx, &argc, &argv, &error))
    {
      rc = cli_usage ("%s", error->message);
      goto out;
    }
  if (argc > 1)
    {
      rc = cli_usage ("republish takes no arguments ('%s'): use --email ADDR", argv[1]);
      goto out;
    }
  if (at_text && !cm_time_parse (at_text, &at, &error))
    {
      rc = cli_usage ("--at: %s", error->message);
      goto out;
    }
  if (!cm_ldap_config_load_file (cfg, config ? config : def, config != NULL, &error))
    {
      rc = ldap_fail (error);
      goto out;
    }
  for (gsize i = 0; i < G_N_ELEMENTS (keys); i++)
    if (vals[i] && !cm_ldap_config_set (cfg, keys[i], vals[i], &error))
      {
        rc = ldap_fail (error);
        goto out;
      }
  if (insecure)
    cm_ldap_config_set (cfg, "insecure", "true", NULL);
  if (!cm_ldap_config_get (cfg, "nssdb") && g_file_test (home_db, G_FILE_TEST_IS_DIR))
    cm_ldap_config_set (cfg, "nssdb", home_db, NULL);
  if (cm_ldap_config_get (cfg, "insecure")
      && strchr ("tTyY1", cm_ldap_config_get (cfg, "insecure")[0]))
    fprintf (stderr, "cacmail: WARNING: insecure: plain LDAP without TLS; the password and the "
                     "certificates cross the network in clear text; use this only for tests\n");
  result = cm_ldap_republish_sync (
    cfg, (dry_run ? CM_LDAP_REPUBLISH_DRY_RUN : 0) | (unpublish ? CM_LDAP_REPUBLISH_UNPUBLISH : 0),
    at, ask_secret, &ctx, show_progress, &ctx, NULL, &error);
  if (result == NULL)
    {
      if (ctx.in_step)
        printf (" failed\n");
      fflush (stdout);
      rc = ldap_fail (error);
      goto out;
    }
  if (ctx.json)
    {
      g_autoptr (JsonNode) node = cm_ldap_result_to_json (result);
      cli_print_json (node);
    }
  else
    print_result (result, dry_run, unpublish, at);

out:
  for (gsize i = 0; i < G_N_ELEMENTS (vals); i++)
    g_free (vals[i]);
  g_free (ctx.pin_file);
  return rc;
}
