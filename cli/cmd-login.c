/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cmd-login.c: `cacmail login`: a Kerberos ticket by PKINIT with the card's PIV
 * Authentication certificate (docs/login.md), and `login --status`. Every step has a deadline;
 * the certificate that made a ticket is remembered next to it in cacmail's state folder. */
#include "login.h"
#include "cm-private.h"
#include <errno.h>
#include <fcntl.h>
#include <krb5.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEFAULT_TIMEOUT 30 /* seconds per step */
#define NO_PIN_FD G_MININT
#define NO_WAY_TO_ASK                                                                              \
  "no terminal to ask for the PIN: pass it in a file only you can read (--pin-file FILE, chmod "   \
  "600) or on a pipe (--pin-fd N)"

typedef struct
{
  char *reader;
  char *pin_file;
  int pin_fd; /* --pin-fd, or NO_PIN_FD */
  char *pin;  /* read from --pin-file or --pin-fd before anything else, wiped at the end */
  char *realm;
  gboolean status;
  gboolean json;
  int timeout;
} Options;

/* ---- deadlines: a watchdog thread ends the process when a step overruns ---- */
static struct
{
  GMutex lock;
  GCond cond;
  gint64 deadline; /* monotonic µs; 0 = no step running */
  const char *step, *fix;
  int seconds;
} wd;

static gpointer
watchdog (gpointer unused)
{
  (void)unused;
  g_mutex_lock (&wd.lock);
  for (;;)
    {
      if (wd.deadline == 0)
        g_cond_wait (&wd.cond, &wd.lock);
      else if (!g_cond_wait_until (&wd.cond, &wd.lock, wd.deadline) && wd.deadline
               && g_get_monotonic_time () >= wd.deadline)
        {
          fprintf (stderr, "cacmail: error: %s did not finish within %d s: %s\n", wd.step,
                   wd.seconds, wd.fix);
          fflush (stderr);
          _exit (CLI_EXIT_ENVIRONMENT);
        }
    }
  return NULL;
}

static void
step (const char *what, int seconds, const char *fix)
{
  g_mutex_lock (&wd.lock);
  wd.step = what;
  wd.fix = fix;
  wd.seconds = seconds;
  wd.deadline = what ? g_get_monotonic_time () + (gint64)seconds * G_USEC_PER_SEC : 0;
  g_cond_signal (&wd.cond);
  g_mutex_unlock (&wd.lock);
}

/* ---- the PIN ---- */
static gboolean
have_tty (void)
{
  int tty = open ("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
  gboolean ok = tty >= 0 && isatty (tty);

  if (tty >= 0)
    close (tty);
  return ok;
}

static char *
ask_pin (const LoginCard *card, guint flags, gpointer data, GError **error)
{
  Options *o = data;
  const char *step_name = wd.step, *fix = wd.fix;
  int seconds = wd.seconds;
  g_autofree char *prompt = NULL;
  char *pin;
  int tty;

  if (flags & KRB5_RESPONDER_PKINIT_FLAGS_TOKEN_USER_PIN_FINAL_TRY)
    fprintf (stderr, "cacmail: warning: the card in '%s' says one more wrong PIN locks it\n",
             card->reader);
  else if (flags & KRB5_RESPONDER_PKINIT_FLAGS_TOKEN_USER_PIN_COUNT_LOW)
    fprintf (stderr,
             "cacmail: warning: the card in '%s' says a wrong PIN was entered before (PIN "
             "count low): type it carefully\n",
             card->reader);
  if (o->pin)
    return g_strdup (o->pin); /* the caller wipes this copy */
  tty = open ("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (tty < 0 || !isatty (tty))
    {
      g_set_error_literal (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, NO_WAY_TO_ASK);
      if (tty >= 0)
        close (tty);
      return NULL;
    }
  step (NULL, 0, NULL); /* no deadline while the user types */
  prompt = g_strdup_printf ("PIN of the card '%s' in '%s': ", card->token, card->reader);
  pin = cm_secret_read_line (tty, tty, prompt, "PIN", CM_SECRET_DEFAULT, NULL, error);
  close (tty);
  step (step_name, seconds, fix);
  return pin;
}

/* The PIN on descriptor @fd (--pin-fd: a pipe the caller made, or a file only the user may
 * read): one line, within the step's deadline; @fd is closed after (unless it is 0-2). Checked
 * like a PIN file: not open or empty is CM_ERROR_BAD_INPUT, a file others may read
 * CM_ERROR_UNSAFE. Caller frees with cm_secret_free. */
static char *
read_pin_fd (int fd, int timeout, GError **error)
{
  struct stat st;
  char *pin = NULL;

  if (fstat (fd, &st) != 0)
    {
      g_set_error (error, CM_ERROR, CM_ERROR_BAD_INPUT,
                   "--pin-fd %d: that file descriptor is not open (%s): give cacmail login the "
                   "read end of the pipe that carries the PIN as that descriptor",
                   fd, g_strerror (errno));
      return NULL;
    }
  if (S_ISDIR (st.st_mode))
    g_set_error (error, CM_ERROR, CM_ERROR_BAD_INPUT,
                 "--pin-fd %d: that file descriptor is a directory: pass the PIN on a pipe", fd);
  else if (S_ISREG (st.st_mode) && (st.st_mode & (S_IRWXG | S_IRWXO)) != 0)
    g_set_error (error, CM_ERROR, CM_ERROR_UNSAFE,
                 "--pin-fd %d: the PIN file there can be read or changed by other users (mode "
                 "%04o): run chmod 600 on it",
                 fd, (unsigned)(st.st_mode & 07777));
  else
    {
      step ("reading the PIN from --pin-fd", timeout,
            "write the PIN and a newline to the descriptor, or close it");
      pin = cm_secret_read_line (fd, -1, NULL, "PIN", CM_SECRET_DEFAULT, NULL, error);
      step (NULL, 0, NULL);
      if (pin == NULL)
        g_prefix_error (error, "--pin-fd %d: ", fd);
    }
  if (fd > 2)
    close (fd);
  return pin;
}

/* ---- which certificate made which ticket: $XDG_STATE_HOME/cacmail/login.json ---- */
static char *
state_path (void)
{
  return g_build_filename (g_get_user_state_dir (), "cacmail", "login.json", NULL);
}

static JsonObject *
state_load (void)
{
  g_autofree char *path = state_path ();
  g_autoptr (JsonParser) parser = json_parser_new ();
  JsonNode *root;

  if (!json_parser_load_from_file (parser, path, NULL))
    return json_object_new ();
  root = json_parser_get_root (parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    return json_object_new ();
  return json_object_ref (json_node_get_object (root));
}

static gboolean
state_save (const LoginTicket *t, const LoginCard *card, GError **error)
{
  g_autofree char *path = state_path ();
  g_autofree char *dir = g_path_get_dirname (path);
  g_autoptr (JsonObject) all = state_load ();
  g_autoptr (JsonNode) root = json_node_new (JSON_NODE_OBJECT);
  g_autoptr (JsonGenerator) gen = json_generator_new ();
  JsonObject *rec = json_object_new ();
  g_autofree char *text = NULL;

  json_object_set_string_member (rec, "principal", t->principal);
  json_object_set_int_member (rec, "authtime", t->authtime);
  json_object_set_string_member (rec, "sha256", card->sha256);
  json_object_set_string_member (rec, "subject", card->subject);
  json_object_set_string_member (rec, "upn", card->upn);
  json_object_set_string_member (rec, "reader", card->reader);
  json_object_set_string_member (rec, "token", card->token);
  if (card->identity)
    json_object_set_string_member (rec, "card", card->identity);
  json_object_set_object_member (all, t->ccache, rec);
  json_node_set_object (root, all);
  json_generator_set_root (gen, root);
  json_generator_set_pretty (gen, TRUE);
  text = json_generator_to_data (gen, NULL);
  if (g_mkdir_with_parents (dir, 0700) != 0)
    {
      g_set_error (error, CM_ERROR, CM_ERROR_ENVIRONMENT,
                   "cannot create %s: check its permissions (or set XDG_STATE_HOME)", dir);
      return FALSE;
    }
  return g_file_set_contents_full (path, text, -1, G_FILE_SET_CONTENTS_CONSISTENT, 0600, error);
}

/* The record of the card login that made @t, or NULL (a ticket from a password, or older). */
static JsonObject *
state_find (const LoginTicket *t)
{
  g_autoptr (JsonObject) all = state_load ();
  JsonObject *rec;

  if (t->ccache == NULL || !json_object_has_member (all, t->ccache))
    return NULL;
  rec = json_object_get_object_member (all, t->ccache);
  if (rec == NULL
      || g_strcmp0 (json_object_get_string_member_with_default (rec, "principal", ""), t->principal)
           != 0
      || json_object_get_int_member_with_default (rec, "authtime", -1) != t->authtime)
    return NULL;
  return json_object_ref (rec);
}

/* ---- output ---- */
static void
print_ticket (const LoginTicket *t, JsonObject *rec, gboolean json, gint64 now)
{
  g_autofree char *until = cm_time_format (t->endtime);
  g_autofree char *from = cm_time_format (t->starttime);

  if (json)
    {
      g_autoptr (JsonBuilder) b = json_builder_new ();
      g_autoptr (JsonNode) node = NULL;

      json_builder_begin_object (b);
      json_builder_set_member_name (b, "ticket");
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "principal");
      json_builder_add_string_value (b, t->principal);
      json_builder_set_member_name (b, "realm");
      json_builder_add_string_value (b, t->realm);
      json_builder_set_member_name (b, "ccache");
      json_builder_add_string_value (b, t->ccache);
      json_builder_set_member_name (b, "starts");
      json_builder_add_string_value (b, from);
      json_builder_set_member_name (b, "expires");
      json_builder_add_string_value (b, until);
      json_builder_set_member_name (b, "valid");
      json_builder_add_boolean_value (b, t->endtime > now);
      json_builder_end_object (b);
      json_builder_set_member_name (b, "cert");
      if (rec)
        {
          g_autoptr (JsonNode) copy = json_node_new (JSON_NODE_OBJECT);
          json_node_set_object (copy, rec);
          json_object_remove_member (rec, "authtime");
          json_object_remove_member (rec, "principal");
          json_builder_add_value (b, g_steal_pointer (&copy));
        }
      else
        json_builder_add_null_value (b);
      json_builder_end_object (b);
      node = json_builder_get_root (b);
      cli_print_json (node);
      return;
    }
  printf ("Ticket: %s, %s %s (cache %s)\n", t->principal,
          t->endtime > now ? "valid until" : "EXPIRED at", until, t->ccache);
  if (rec)
    printf ("Made by: the PIV Authentication certificate %s (sha256 %s) of the card '%s' in "
            "'%s'\n",
            json_object_get_string_member_with_default (rec, "subject", "?"),
            json_object_get_string_member_with_default (rec, "sha256", "?"),
            json_object_get_string_member_with_default (rec, "token", "?"),
            json_object_get_string_member_with_default (rec, "reader", "?"));
  else
    printf ("Made by: not a cacmail card login (a password, or another program)\n");
}

static int
do_status (Options *o)
{
  g_autoptr (GError) error = NULL;
  LoginTicket t = { 0 };
  g_autoptr (JsonObject) rec = NULL;
  gint64 now = g_get_real_time () / G_USEC_PER_SEC;
  int rc;

  step ("reading the credential cache", o->timeout, "check KRB5CCNAME and the cache's storage");
  if (!login_krb5_status (&t, &error))
    {
      step (NULL, 0, NULL);
      if (o->json)
        {
          printf ("{\n  \"ticket\" : null,\n  \"cert\" : null\n}\n");
          fflush (stdout);
        }
      fprintf (stderr, "cacmail: error: %s\n", error->message);
      return CLI_EXIT_FAILED;
    }
  step (NULL, 0, NULL);
  rec = state_find (&t);
  print_ticket (&t, rec, o->json, now);
  rc = t.endtime > now ? CLI_EXIT_OK : CLI_EXIT_FAILED;
  login_ticket_clear (&t);
  return rc;
}

static int
do_login (Options *o)
{
  g_autoptr (GError) error = NULL;
  LoginCard card = { 0 };
  LoginTicket t = { 0 };
  g_autoptr (JsonObject) rec = NULL;
  const char *upn;
  int rc = CLI_EXIT_OK;

  /* a PIN file that cannot be used, or no way to ask, stops here: before the card or the KDC
   * is asked for anything */
  if (o->pin_file
      && (o->pin = cm_secret_read_file (o->pin_file, "PIN file", CM_SECRET_DEFAULT, &error))
           == NULL)
    return cli_fail (error);
  if (o->pin_fd != NO_PIN_FD && (o->pin = read_pin_fd (o->pin_fd, o->timeout, &error)) == NULL)
    return cli_fail (error);
  if (o->pin == NULL && !have_tty ())
    return cli_usage (NO_WAY_TO_ASK);
  step ("reading the card", o->timeout,
        "check the card and the reader (cacmail status), then try again");
  if (!login_card_find (o->reader, cm_time_now (), &card, &error))
    {
      login_card_clear (&card);
      return cli_fail (error);
    }
  upn = card.upn;
  if (upn == NULL)
    {
      login_card_clear (&card);
      fprintf (stderr, "cacmail: error: the card's PIV Authentication certificate names no user "
                       "principal (UPN): ask the domain administrators to map the certificate "
                       "to your account, then log in with kinit\n");
      return CLI_EXIT_REFUSED;
    }
  step ("the Kerberos login (KDC and card)", o->timeout,
        "check the KDC in krb5.conf and the network, and the card (cacmail status)");
  if (!login_krb5_pkinit (&card, upn, o->realm, ask_pin, o, &t, &error))
    rc = cli_fail (error);
  else
    {
      step ("remembering the login", o->timeout, "check the state folder's disk");
      if (!state_save (&t, &card, &error))
        fprintf (stderr, "cacmail: warning: %s\n", error->message);
      rec = state_find (&t);
      print_ticket (&t, rec, o->json, g_get_real_time () / G_USEC_PER_SEC);
    }
  step (NULL, 0, NULL);
  login_ticket_clear (&t);
  login_card_clear (&card);
  return rc;
}

int
cmd_login (int argc, char **argv)
{
  Options o = { .timeout = DEFAULT_TIMEOUT, .pin_fd = NO_PIN_FD };
  g_autoptr (GError) error = NULL;
  g_autoptr (GOptionContext) oc = g_option_context_new ("- Kerberos login with the card (PKINIT)");
  GOptionEntry entries[] = {
    { "reader", 0, 0, G_OPTION_ARG_STRING, &o.reader, "The reader of the card to log in with",
      "NAME" },
    { "pin-file", 0, 0, G_OPTION_ARG_FILENAME, &o.pin_file, "Card PIN in a file (else asked)",
      "FILE" },
    { "pin-fd", 0, 0, G_OPTION_ARG_INT, &o.pin_fd,
      "Card PIN on this file descriptor (one line; a pipe)", "N" },
    { "realm", 0, 0, G_OPTION_ARG_STRING, &o.realm, "Kerberos realm (default: krb5.conf's)",
      "REALM" },
    { "status", 0, 0, G_OPTION_ARG_NONE, &o.status, "Show the ticket and which cert made it",
      NULL },
    { "json", 0, 0, G_OPTION_ARG_NONE, &o.json, "JSON output", NULL },
    { "timeout", 0, 0, G_OPTION_ARG_INT, &o.timeout, "Seconds each step may take (30)", "SECONDS" },
    G_OPTION_ENTRY_NULL,
  };
  int rc;

  g_option_context_add_main_entries (oc, entries, NULL);
  if (!g_option_context_parse (oc, &argc, &argv, &error))
    rc = cli_usage ("%s", error->message);
  else if (argc > 1)
    rc = cli_usage ("login takes no arguments ('%s')", argv[1]);
  else if (o.timeout <= 0 || o.timeout > 3600)
    rc = cli_usage ("--timeout must be 1 to 3600 seconds");
  else if (o.pin_fd != NO_PIN_FD && (o.pin_fd < 0 || o.pin_file))
    rc = cli_usage (o.pin_file ? "give the PIN with --pin-file or --pin-fd, not both"
                               : "--pin-fd takes a file descriptor number (0 or more)");
  else
    {
      g_thread_unref (g_thread_new ("deadline", watchdog, NULL));
      rc = o.status ? do_status (&o) : do_login (&o);
    }
  g_free (o.reader);
  g_free (o.pin_file);
  cm_secret_free (o.pin);
  g_free (o.realm);
  return rc;
}
