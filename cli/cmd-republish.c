/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cmd-republish.c: `cacmail republish`, the card's certificates to the address list (GAL) over
 * LDAP in one command (docs/ldap.md), and the LDAP step of `cacmail demo`. */
#include "cli-ldap.h"
#include "cm-config.h"
#include "cm-private.h"
#include <cm-ldap.h>
#include <fcntl.h>
#include <glib-unix.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

/* interrupted (128 + SIGINT) before anything was written */
#define CLI_EXIT_CANCELLED 130

/* libldap copies the bind password into the BER buffer of the bind request and frees that
 * without wiping it: this process has freed memory overwritten. glibc does it (M_PERTURB, in
 * cmd_republish) for all but its smallest chunks; in the ASan build, whose allocator ignores
 * M_PERTURB, this option does it. */
#if defined(__SANITIZE_ADDRESS__)
const char *__asan_default_options (void);
const char *
__asan_default_options (void)
{
  return "max_free_fill_size=1048576";
}
#endif

typedef struct
{
  char *pin_file;
  gboolean json;
  gboolean in_step;          /* a progress line is open */
  GCancellable *cancellable; /* cancelled by Ctrl-C (SIGINT), SIGTERM or SIGHUP */
} Ctx;

/* Secrets as libcacmail-ldap reports them: a file others may read is a refusal (exit 5), any
 * other problem a configuration error (exit 2); cancelling stays cancelling. */
static void
secret_error (GError *local, GError **error)
{
  if (local->domain == G_IO_ERROR)
    g_propagate_error (error, local);
  else
    {
      g_set_error_literal (error, CM_LDAP_ERROR,
                           g_error_matches (local, CM_ERROR, CM_ERROR_UNSAFE)
                             ? CM_LDAP_ERROR_REFUSED
                             : CM_LDAP_ERROR_CONFIG,
                           local->message);
      g_error_free (local);
    }
}

/* Ask on the terminal (/dev/tty) without echo; Ctrl-C cancels. Caller frees with
 * cm_secret_free. */
static char *
prompt_tty (const char *prompt, const char *what, GCancellable *cancellable, GError **error)
{
  int tty = open ("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
  g_autofree char *text = g_strdup_printf ("%s: ", prompt);
  GError *local = NULL;
  char *out;

  if (tty < 0 || !isatty (tty))
    {
      g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_CONFIG,
                   "no terminal to ask for the %s: pass it in a file (--password-file or "
                   "--pin-file)",
                   prompt);
      if (tty >= 0)
        close (tty);
      return NULL;
    }
  out = cm_secret_read_line (tty, tty, text, what, CM_SECRET_DEFAULT, cancellable, &local);
  close (tty);
  if (out == NULL)
    secret_error (local, error);
  return out;
}

static char *
ask_secret (CmLdapSecretKind kind, const char *subject, gpointer data, GError **error)
{
  Ctx *ctx = data;
  g_autofree char *prompt = NULL;
  GError *local = NULL;
  char *secret;

  if (kind == CM_LDAP_SECRET_PIN && ctx->pin_file)
    {
      secret = cm_secret_read_file (ctx->pin_file, "PIN file", CM_SECRET_DEFAULT, &local);
      if (secret == NULL)
        secret_error (local, error);
      return secret;
    }
  prompt = kind == CM_LDAP_SECRET_PIN ? g_strdup_printf ("PIN of the card '%s'", subject)
                                      : g_strdup_printf ("LDAP password for %s", subject);
  return prompt_tty (prompt, kind == CM_LDAP_SECRET_PIN ? "PIN" : "LDAP password", ctx->cancellable,
                     error);
}

/* ---- signals: the first one cancels the run (the library stops at once, even in a TLS
 * handshake, and writes nothing), a second one ends the process ---- */
typedef struct
{
  GMainContext *context;
  GMainLoop *loop;
  GThread *thread;
  GCancellable *cancellable;
} Signals;

static gboolean
on_signal (gpointer data)
{
  Signals *s = data;

  if (g_cancellable_is_cancelled (s->cancellable))
    _exit (128 + SIGINT);
  g_cancellable_cancel (s->cancellable);
  return G_SOURCE_CONTINUE;
}

static gpointer
signal_thread (gpointer data)
{
  Signals *s = data;

  g_main_context_push_thread_default (s->context);
  g_main_loop_run (s->loop);
  g_main_context_pop_thread_default (s->context);
  return NULL;
}

static void
signals_start (Signals *s, GCancellable *cancellable)
{
  const int sigs[] = { SIGINT, SIGTERM, SIGHUP };

  s->cancellable = cancellable;
  s->context = g_main_context_new ();
  s->loop = g_main_loop_new (s->context, FALSE);
  for (gsize i = 0; i < G_N_ELEMENTS (sigs); i++)
    {
      GSource *src = g_unix_signal_source_new (sigs[i]);
      g_source_set_callback (src, on_signal, s, NULL);
      g_source_attach (src, s->context);
      g_source_unref (src);
    }
  s->thread = g_thread_new ("cacmail-signals", signal_thread, s);
}

static gboolean
quit_loop (gpointer data)
{
  g_main_loop_quit (data);
  return G_SOURCE_REMOVE;
}

static void
signals_stop (Signals *s)
{
  GSource *src = g_idle_source_new ();

  /* an idle in the loop's own context: it runs even if the loop had not started yet */
  g_source_set_callback (src, quit_loop, s->loop, NULL);
  g_source_attach (src, s->context);
  g_source_unref (src);
  g_thread_join (s->thread);
  g_main_loop_unref (s->loop);
  g_main_context_unref (s->context); /* destroys the signal sources */
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

  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    {
      fprintf (stderr, "cacmail: cancelled: nothing was written\n");
      return CLI_EXIT_CANCELLED;
    }
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
  printf ("  server: %s\n", cm_ldap_result_get_rules (r));
  if (cm_ldap_result_get_foreign (r))
    printf ("  note: %u userCertificate value(s) someone else added meanwhile stay, behind "
            "yours\n",
            cm_ldap_result_get_foreign (r));
  if (cm_ldap_result_get_written (r))
    printf ("  verified: the server holds exactly what was written%s\n",
            cm_ldap_result_get_reordered (r) ? ", but in another ORDER" : ", in this order");
  if (cm_ldap_result_get_reordered (r))
    printf ("  warning: the server reordered userCertificate: gpgsm and Evolution read only "
            "the first value and may now see the signing cert\n");
  if (cm_ldap_result_get_insecure (r))
    printf ("  warning: no TLS was used (allow-plain-ldap): the password and the certificates "
            "crossed the network in clear text\n");
}

static gboolean
config_bool (CmLdapConfig *cfg, const char *key)
{
  const char *v = cm_ldap_config_get (cfg, key);

  return v && strchr ("tTyY1", v[0]) != NULL;
}

/* Loud, on every run: settings that weaken the connection. */
static void
warn_settings (CmLdapConfig *cfg)
{
  if (config_bool (cfg, "insecure"))
    fprintf (stderr, "cacmail: WARNING: insecure: the server certificate is not verified; "
                     "anyone on the way can pose as the server and read the password; use this "
                     "only for tests\n");
  if (config_bool (cfg, "allow-plain-ldap"))
    fprintf (stderr, "cacmail: WARNING: allow-plain-ldap: a server that refuses StartTLS gets "
                     "the password and the certificates in clear text; use this only for "
                     "tests\n");
}

int
cmd_republish (int argc, char **argv)
{
  Ctx ctx = { NULL, FALSE, FALSE, NULL };
  Signals sigs = { 0 };
  g_autofree char *config = NULL, *at_text = NULL;
  gboolean dry_run = FALSE, unpublish = FALSE, insecure = FALSE, plain = FALSE;
  const char *keys[] = { "uri",     "base",  "entry-dn", "bind",   "bind-dn",     "password-file",
                         "ca-file", "nssdb", "email",    "token",  "client-cert", "client-key",
                         "filter",  "guard", "timeout",  "domain", "realm" };
  char *vals[G_N_ELEMENTS (keys)] = { NULL };
  G_STATIC_ASSERT (G_N_ELEMENTS (keys) == 17);
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
    STR_OPT ("timeout", 14, "Deadline of each network step (default 15)", "SECONDS"),
    STR_OPT ("domain", 15, "Find the servers by DNS SRV _ldap._tcp.DOMAIN (Active Directory)",
             "DOMAIN"),
    STR_OPT ("realm", 16, "Realm for a bare --bind-dn user name (default: DOMAIN)", "REALM"),
    { "insecure", 0, 0, G_OPTION_ARG_NONE, &insecure,
      "Do not verify the server certificate (tests; TLS is still required)", NULL },
    { "allow-plain-ldap", 0, 0, G_OPTION_ARG_NONE, &plain,
      "Go on without TLS if the server refuses StartTLS (tests)", NULL },
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
  g_autofree char *home_db = g_build_filename (g_get_home_dir (), ".pki", "nssdb", NULL);
  gint64 at = cm_time_now ();
  int rc = CLI_EXIT_OK;

  signal (SIGPIPE, SIG_IGN); /* a server killed mid-write must give an error, not kill us */
  mallopt (M_PERTURB, 0x5a); /* freed memory is overwritten: see __asan_default_options */
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
  if (!cli_ldap_config_prepare (cfg, config, keys, vals, G_N_ELEMENTS (keys), insecure, plain,
                                &error))
    {
      rc = ldap_fail (error);
      goto out;
    }
  if (!cm_ldap_config_get (cfg, "nssdb") && g_file_test (home_db, G_FILE_TEST_IS_DIR))
    cm_ldap_config_set (cfg, "nssdb", home_db, NULL);
  warn_settings (cfg);
  ctx.cancellable = g_cancellable_new ();
  signals_start (&sigs, ctx.cancellable);
  result = cm_ldap_republish_sync (
    cfg, (dry_run ? CM_LDAP_REPUBLISH_DRY_RUN : 0) | (unpublish ? CM_LDAP_REPUBLISH_UNPUBLISH : 0),
    at, ask_secret, &ctx, show_progress, &ctx, ctx.cancellable, &error);
  signals_stop (&sigs);
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
  g_clear_object (&ctx.cancellable);
  return rc;
}
