/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cacmail-native.c: main() of the native messaging host: reads the add-on's requests, answers
 * the quick ones at once and runs the others (the jobs) one at a time in a worker thread, hands
 * the answers to the add-on's questions (PIN, LDAP password) to the waiting job, and stops
 * the job when Thunderbird closes the port. See cm-native.h for the protocol. */
#include "cm-native.h"
#include "cm-config.h"
#include <cm-ldap.h>
#include <fcntl.h>
#include <locale.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* How long a job waits for the user to answer a question. */
#define ASK_TIMEOUT_S (10 * 60)
/* Deeper JSON is refused before parsing (the parser recurses). */
#define MAX_DEPTH 64

struct _CmNativeJob
{
  CmNative *host;
  JsonNode *id;      /* the request's "id" (any JSON value; null when absent) */
  JsonNode *request; /* the whole request (an object) */
  CmNativeJobFunc func;
  GCancellable *cancellable;
  /* under host->lock */
  gboolean done;
  gboolean asking;   /* a question is out */
  gboolean answered; /* ... and its answer came: @answer, or NULL when cancelled */
  char *answer;
};

struct _CmNative
{
  int in_fd, out_fd;
  GMutex write_lock;
  GMutex lock; /* the fields below and the job's */
  GCond cond;
  CmNativeJob *job; /* the running job, or the last one until joined */
  GThread *thread;
  gboolean gone;      /* Thunderbird closed the port (or cannot be written to) */
  GError *init_error; /* cm_init() failed: every request is answered with it */
};

static const struct
{
  const char *name;
  CmNativeJobFunc func;
} job_commands[] = {
  { "check", cm_native_cmd_check },         { "fix", cm_native_cmd_fix },
  { "fixed", cm_native_cmd_fixed },         { "undo", cm_native_cmd_undo },
  { "republish", cm_native_cmd_republish }, { "import-p12", cm_native_cmd_import_p12 },
};

G_DEFINE_QUARK (cm - native - error - quark, cm_native_error)

/* ---- messages ------------------------------------------------------------------------------ */

static JsonNode *
id_or_null (JsonNode *id)
{
  return id ? json_node_copy (id) : json_node_new (JSON_NODE_NULL);
}

JsonNode *
cm_native_error_message (JsonNode *id, const char *code, const char *message)
{
  JsonObject *o = json_object_new ();
  JsonObject *e = json_object_new ();
  JsonNode *node = json_node_new (JSON_NODE_OBJECT);
  g_autofree char *line = g_strdup (message);

  g_strdelimit (line, "\r\n", ' '); /* one line, even when a server's text had several */
  json_object_set_string_member (e, "code", code);
  json_object_set_string_member (e, "message", line);
  json_object_set_member (o, "id", id_or_null (id));
  json_object_set_boolean_member (o, "ok", FALSE);
  json_object_set_object_member (o, "error", e);
  json_node_take_object (node, o);
  return node;
}

static JsonNode *
ok_message (JsonNode *id, JsonNode *result)
{
  JsonObject *o = json_object_new ();
  JsonNode *node = json_node_new (JSON_NODE_OBJECT);

  json_object_set_member (o, "id", id_or_null (id));
  json_object_set_boolean_member (o, "ok", TRUE);
  json_object_set_member (o, "result", result ? result : json_node_new (JSON_NODE_NULL));
  json_node_take_object (node, o);
  return node;
}

const char *
cm_native_error_code (const GError *error)
{
  static const char *const ldap_codes[] = {
    [CM_LDAP_ERROR_FAILED] = "ldap-failed",
    [CM_LDAP_ERROR_CONFIG] = "ldap-config",
    [CM_LDAP_ERROR_CONNECT] = "ldap-connect",
    [CM_LDAP_ERROR_TLS] = "ldap-tls",
    [CM_LDAP_ERROR_AUTH] = "ldap-auth",
    [CM_LDAP_ERROR_NOT_FOUND] = "ldap-not-found",
    [CM_LDAP_ERROR_NOT_UNIQUE] = "ldap-not-unique",
    [CM_LDAP_ERROR_REFUSED] = "ldap-refused",
    [CM_LDAP_ERROR_CONFLICT] = "ldap-conflict",
    [CM_LDAP_ERROR_CARD] = "card",
    [CM_LDAP_ERROR_PIN] = "pin",
    [CM_LDAP_ERROR_SERVER] = "ldap-server",
    [CM_LDAP_ERROR_VERIFY] = "ldap-verify",
  };
  static const char *const cm_codes[] = {
    [CM_ERROR_FAILED] = "failed",       [CM_ERROR_BAD_INPUT] = "bad-input",
    [CM_ERROR_NOT_FOUND] = "not-found", [CM_ERROR_ENVIRONMENT] = "environment",
    [CM_ERROR_UNSAFE] = "unsafe",
  };
  static const char *const native_codes[] = {
    [CM_NATIVE_ERROR_BAD_REQUEST] = "bad-request",
    [CM_NATIVE_ERROR_TIMEOUT] = "timeout",
  };

  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return "cancelled";
  if (error->domain == CM_LDAP_ERROR && error->code >= 0
      && error->code < (int)G_N_ELEMENTS (ldap_codes) && ldap_codes[error->code])
    return ldap_codes[error->code];
  if (error->domain == CM_ERROR && error->code >= 0 && error->code < (int)G_N_ELEMENTS (cm_codes)
      && cm_codes[error->code])
    return cm_codes[error->code];
  if (error->domain == CM_NATIVE_ERROR && error->code >= 0
      && error->code < (int)G_N_ELEMENTS (native_codes) && native_codes[error->code])
    return native_codes[error->code];
  return "failed";
}

static JsonNode *
gerror_message (JsonNode *id, const GError *error)
{
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return cm_native_error_message (id, "cancelled", "cancelled: nothing was changed");
  return cm_native_error_message (id, cm_native_error_code (error), error->message);
}

gboolean
cm_native_send (CmNative *host, JsonNode *message)
{
  g_autoptr (JsonGenerator) gen = json_generator_new ();
  g_autoptr (GError) error = NULL;
  g_autofree char *text = NULL;
  gsize len = 0;
  gboolean ok;

  json_generator_set_root (gen, message);
  text = json_generator_to_data (gen, &len);
  if (len > CM_NATIVE_MAX_MESSAGE)
    {
      JsonObject *o = json_node_get_object (message);
      g_autoptr (JsonNode) err = cm_native_error_message (
        o ? json_object_get_member (o, "id") : NULL, "too-large",
        "the answer is over 1 MiB, more than Thunderbird takes: report this to cacmail with "
        "the output of the same cacmail command in a terminal");
      g_clear_pointer (&text, g_free);
      json_generator_set_root (gen, err);
      text = json_generator_to_data (gen, &len);
    }
  g_mutex_lock (&host->write_lock);
  ok = !host->gone && cm_native_write_frame (host->out_fd, text, len, &error);
  if (!ok && error)
    {
      /* Thunderbird is gone: the job stops, the reader sees the end of its stdin */
      g_printerr ("cacmail-native: %s\n", error->message);
      host->gone = TRUE;
    }
  g_mutex_unlock (&host->write_lock);
  return ok;
}

static void
send_and_free (CmNative *host, JsonNode *message)
{
  cm_native_send (host, message);
  json_node_unref (message);
}

/* ---- jobs ---------------------------------------------------------------------------------- */

GCancellable *
cm_native_job_cancellable (CmNativeJob *job)
{
  return job->cancellable;
}

void
cm_native_job_progress (CmNativeJob *job, JsonNode *progress)
{
  JsonObject *o = json_object_new ();
  JsonNode *node = json_node_new (JSON_NODE_OBJECT);

  json_object_set_member (o, "id", id_or_null (job->id));
  json_object_set_member (o, "progress", progress);
  json_node_take_object (node, o);
  send_and_free (job->host, node);
}

static void
wake (GCancellable *cancellable, gpointer data)
{
  CmNative *host = data;

  g_mutex_lock (&host->lock);
  g_cond_broadcast (&host->cond);
  g_mutex_unlock (&host->lock);
}

char *
cm_native_job_ask (CmNativeJob *job, const char *kind, const char *subject, const char *prompt,
                   GError **error)
{
  CmNative *host = job->host;
  JsonObject *o = json_object_new ();
  JsonObject *ask = json_object_new ();
  JsonNode *node = json_node_new (JSON_NODE_OBJECT);
  gint64 end = g_get_monotonic_time () + ASK_TIMEOUT_S * G_TIME_SPAN_SECOND;
  gulong handler = g_cancellable_connect (job->cancellable, G_CALLBACK (wake), host, NULL);
  gboolean timed_out = FALSE;
  char *secret = NULL;

  json_object_set_string_member (ask, "kind", kind);
  json_object_set_string_member (ask, "subject", subject ? subject : "");
  json_object_set_string_member (ask, "prompt", prompt);
  json_object_set_member (o, "id", id_or_null (job->id));
  json_object_set_object_member (o, "ask", ask);
  json_node_take_object (node, o);
  g_mutex_lock (&host->lock);
  job->asking = TRUE; /* before sending: the answer may come back at once */
  job->answered = FALSE;
  g_mutex_unlock (&host->lock);
  send_and_free (host, node);
  g_mutex_lock (&host->lock);
  while (!job->answered && !host->gone && !g_cancellable_is_cancelled (job->cancellable))
    if (!g_cond_wait_until (&host->cond, &host->lock, end))
      {
        timed_out = !job->answered;
        break;
      }
  job->asking = FALSE;
  if (job->answered)
    secret = g_steal_pointer (&job->answer);
  g_mutex_unlock (&host->lock);
  g_cancellable_disconnect (job->cancellable, handler);
  if (secret)
    return secret;
  if (timed_out)
    g_set_error (error, CM_NATIVE_ERROR, CM_NATIVE_ERROR_TIMEOUT,
                 "nobody entered the %s in %d minutes: start again and enter it in the cacmail "
                 "window",
                 strcmp (kind, "pin") == 0 ? "PIN" : "password", ASK_TIMEOUT_S / 60);
  else
    g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_CANCELLED, "cancelled");
  return NULL;
}

static gpointer
job_thread (gpointer data)
{
  CmNativeJob *job = data;
  GError *error = NULL;
  JsonNode *result = job->func (job, json_node_get_object (job->request), &error);
  JsonNode *answer = result ? ok_message (job->id, result) : gerror_message (job->id, error);

  /* done before the answer goes out: the add-on may send its next request at once, and the
   * reader then joins this thread (after the send) instead of answering "busy" */
  g_mutex_lock (&job->host->lock);
  job->done = TRUE;
  g_mutex_unlock (&job->host->lock);
  send_and_free (job->host, answer);
  g_clear_error (&error);
  return NULL;
}

/* Wipe every string member called "secret" or "password" of @req. */
static void
wipe_secrets (JsonObject *req)
{
  static const char *const names[] = { "secret", "password" };

  for (gsize i = 0; i < G_N_ELEMENTS (names); i++)
    {
      JsonNode *n = json_object_get_member (req, names[i]);
      if (n && json_node_get_value_type (n) == G_TYPE_STRING)
        {
          char *s = (char *)json_node_get_string (n);
          explicit_bzero (s, strlen (s));
        }
    }
}

static void
job_free (CmNativeJob *job)
{
  wipe_secrets (json_node_get_object (job->request));
  json_node_unref (job->request);
  g_clear_pointer (&job->id, json_node_unref);
  g_object_unref (job->cancellable);
  cm_native_wipe_free (job->answer, -1);
  g_free (job);
}

/* Join the previous job's thread if it has ended. FALSE while one runs. */
static gboolean
reap_job (CmNative *host)
{
  gboolean done;

  g_mutex_lock (&host->lock);
  done = host->job == NULL || host->job->done;
  g_mutex_unlock (&host->lock);
  if (done && host->thread)
    {
      g_thread_join (host->thread);
      host->thread = NULL;
      g_clear_pointer (&host->job, job_free);
    }
  return done;
}

static void
start_job (CmNative *host, CmNativeJobFunc func, JsonNode *id, JsonNode *request)
{
  CmNativeJob *job;

  if (!reap_job (host))
    {
      send_and_free (host, cm_native_error_message (
                             id, "busy",
                             "cacmail is still busy with the previous task: wait for it to "
                             "finish or cancel it in the cacmail window, then try again"));
      return;
    }
  job = g_new0 (CmNativeJob, 1);
  job->host = host;
  job->id = id ? json_node_copy (id) : NULL;
  job->request = json_node_ref (request);
  job->func = func;
  job->cancellable = g_cancellable_new ();
  g_mutex_lock (&host->lock);
  host->job = job;
  g_mutex_unlock (&host->lock);
  host->thread = g_thread_new ("cacmail-job", job_thread, job);
}

/* The running job whose id is @job_id, under host->lock, or NULL. */
static CmNativeJob *
running_job (CmNative *host, JsonNode *job_id)
{
  CmNativeJob *job = host->job;

  if (job == NULL || job->done || job_id == NULL || job->id == NULL)
    return NULL;
  return json_node_equal (job->id, job_id) ? job : NULL;
}

/* {"command": "answer", "job": ID, "secret": S} or {..., "cancel": true} */
static void
cmd_answer (CmNative *host, JsonNode *id, JsonObject *req)
{
  JsonNode *secret_node = json_object_get_member (req, "secret");
  gboolean cancel = json_object_get_boolean_member_with_default (req, "cancel", FALSE);
  CmNativeJob *job;
  gboolean taken = FALSE;

  if (!cancel && (secret_node == NULL || json_node_get_value_type (secret_node) != G_TYPE_STRING))
    {
      send_and_free (host, cm_native_error_message (id, "bad-request",
                                                    "an answer needs \"secret\" (a string) or "
                                                    "\"cancel\": true: update the add-on"));
      return;
    }
  g_mutex_lock (&host->lock);
  job = running_job (host, json_object_get_member (req, "job"));
  if (job && job->asking && !job->answered)
    {
      job->answer = cancel ? NULL : g_strdup (json_node_get_string (secret_node));
      job->answered = TRUE;
      taken = TRUE;
      g_cond_broadcast (&host->cond);
    }
  g_mutex_unlock (&host->lock);
  if (taken)
    send_and_free (host, ok_message (id, NULL));
  else
    send_and_free (host, cm_native_error_message (
                           id, "no-question",
                           "no question of that task is waiting for an answer (it ended or "
                           "was cancelled): start the task again"));
}

/* {"command": "cancel", "job": ID} */
static void
cmd_cancel (CmNative *host, JsonNode *id, JsonObject *req)
{
  JsonObject *o = json_object_new ();
  JsonNode *result = json_node_new (JSON_NODE_OBJECT);
  g_autoptr (GCancellable) cancellable = NULL;
  CmNativeJob *job;

  g_mutex_lock (&host->lock);
  job = running_job (host, json_object_get_member (req, "job"));
  if (job)
    cancellable = g_object_ref (job->cancellable);
  g_mutex_unlock (&host->lock);
  /* not under the lock: cancelling runs wake(), which takes it */
  if (cancellable)
    g_cancellable_cancel (cancellable);
  json_object_set_boolean_member (o, "cancelled", cancellable != NULL);
  json_node_take_object (result, o);
  send_and_free (host, ok_message (id, result));
}

static void
cmd_hello (CmNative *host, JsonNode *id)
{
  JsonObject *o = json_object_new ();
  JsonArray *cmds = json_array_new ();
  JsonNode *result = json_node_new (JSON_NODE_OBJECT);

  json_object_set_string_member (o, "name", "cacmail-native");
  json_object_set_string_member (o, "version", CM_VERSION);
  json_array_add_string_element (cmds, "hello");
  for (gsize i = 0; i < G_N_ELEMENTS (job_commands); i++)
    json_array_add_string_element (cmds, job_commands[i].name);
  json_array_add_string_element (cmds, "answer");
  json_array_add_string_element (cmds, "cancel");
  json_object_set_array_member (o, "commands", cmds);
  json_node_take_object (result, o);
  send_and_free (host, ok_message (id, result));
}

/* ---- reading requests ---------------------------------------------------------------------- */

/* TRUE when @text nests arrays and objects at most MAX_DEPTH deep (strings skipped). */
static gboolean
depth_ok (const char *text, gsize len)
{
  int depth = 0;
  gboolean in_string = FALSE;

  for (gsize i = 0; i < len; i++)
    {
      char c = text[i];
      if (in_string)
        {
          if (c == '\\')
            i++;
          else if (c == '"')
            in_string = FALSE;
        }
      else if (c == '"')
        in_string = TRUE;
      else if ((c == '[' || c == '{') && ++depth > MAX_DEPTH)
        return FALSE;
      else if (c == ']' || c == '}')
        depth--;
    }
  return TRUE;
}

/* Parse @text into a request object, or answer with an error and return NULL. */
static JsonNode *
parse_request (CmNative *host, const char *text, gsize len)
{
  g_autoptr (JsonParser) parser = json_parser_new_immutable ();
  g_autoptr (GError) error = NULL;
  JsonNode *root;

  if (len == 0)
    {
      send_and_free (host, cm_native_error_message (
                             NULL, "bad-json",
                             "the message is empty, not a JSON request: the add-on and "
                             "cacmail-native do not match; reinstall both (meson install)"));
      return NULL;
    }
  if (!g_utf8_validate (text, (gssize)len, NULL))
    {
      send_and_free (host, cm_native_error_message (
                             NULL, "bad-json",
                             "the message is not UTF-8 text: the add-on and cacmail-native do "
                             "not match; reinstall both (meson install)"));
      return NULL;
    }
  if (!depth_ok (text, len))
    {
      send_and_free (host, cm_native_error_message (
                             NULL, "bad-json",
                             "the message nests deeper than 64 levels, which no cacmail request "
                             "does: update the add-on"));
      return NULL;
    }
  if (!json_parser_load_from_data (parser, text, (gssize)len, &error))
    {
      g_autofree char *msg = g_strdup_printf (
        "the message is not JSON (%s): the add-on and cacmail-native do not match; "
        "reinstall both (meson install)",
        error->message);
      send_and_free (host, cm_native_error_message (NULL, "bad-json", msg));
      return NULL;
    }
  root = json_parser_get_root (parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    {
      send_and_free (host, cm_native_error_message (
                             NULL, "bad-request",
                             "the message is not a JSON object with \"command\": update the "
                             "add-on"));
      return NULL;
    }
  return json_node_ref (root);
}

static void
handle (CmNative *host, char *text, guint32 len)
{
  g_autoptr (JsonNode) root = parse_request (host, text, len);
  JsonObject *req;
  JsonNode *id;
  const char *command;

  explicit_bzero (text, len); /* it may hold a secret; the parsed copy is wiped below */
  if (root == NULL)
    return;
  req = json_node_get_object (root);
  id = json_object_get_member (req, "id");
  command = json_object_get_string_member_with_default (req, "command", NULL);
  if (command == NULL)
    send_and_free (host, cm_native_error_message (id, "bad-request",
                                                  "the message has no \"command\" string: "
                                                  "update the add-on"));
  else if (host->init_error)
    send_and_free (host, gerror_message (id, host->init_error));
  else if (strcmp (command, "hello") == 0)
    cmd_hello (host, id);
  else if (strcmp (command, "answer") == 0)
    cmd_answer (host, id, req);
  else if (strcmp (command, "cancel") == 0)
    cmd_cancel (host, id, req);
  else
    {
      gsize i;
      for (i = 0; i < G_N_ELEMENTS (job_commands); i++)
        if (strcmp (command, job_commands[i].name) == 0)
          break;
      if (i < G_N_ELEMENTS (job_commands))
        {
          start_job (host, job_commands[i].func, id, root);
          return; /* the job wipes the request's secrets when it is done with them */
        }
      g_autofree char *msg = g_strdup_printf (
        "unknown command \"%.64s\": this cacmail-native (%s) knows hello, check, fix, "
        "fixed, undo, republish, import-p12, answer and cancel; install the add-on and cacmail of "
        "the same "
        "version",
        command, CM_VERSION);
      send_and_free (host, cm_native_error_message (id, "unknown-command", msg));
    }
  wipe_secrets (req);
}

/* Serve requests until Thunderbird closes our stdin. Returns the exit status. */
static int
serve (CmNative *host)
{
  for (;;)
    {
      g_autoptr (GError) error = NULL;
      char *payload = NULL;
      guint32 size = 0;
      CmNativeFrame r = cm_native_read_frame (host->in_fd, &payload, &size, &error);

      switch (r)
        {
        case CM_NATIVE_FRAME_OK:
          handle (host, payload, size);
          cm_native_wipe_free (payload, size);
          reap_job (host);
          break;
        case CM_NATIVE_FRAME_TOO_LARGE:
          {
            g_autofree char *msg = g_strdup_printf (
              "a message of %u bytes is over the 1 MiB limit and was ignored: pick a smaller "
              "file or update the add-on",
              size);
            send_and_free (host, cm_native_error_message (NULL, "too-large", msg));
          }
          break;
        case CM_NATIVE_FRAME_EOF: return 0;
        case CM_NATIVE_FRAME_TRUNCATED:
          g_printerr ("cacmail-native: the last message was cut short; stopping\n");
          return 1;
        case CM_NATIVE_FRAME_IO:
        default: g_printerr ("cacmail-native: %s\n", error->message); return 1;
        }
    }
}

/* Stop: cancel the running job, release a question it waits on, join it. */
static void
shut_down (CmNative *host)
{
  g_autoptr (GCancellable) cancellable = NULL;

  g_mutex_lock (&host->lock);
  host->gone = TRUE;
  if (host->job && !host->job->done)
    cancellable = g_object_ref (host->job->cancellable);
  g_cond_broadcast (&host->cond);
  g_mutex_unlock (&host->lock);
  if (cancellable)
    g_cancellable_cancel (cancellable); /* not under the lock: wake() takes it */
  if (host->thread)
    g_thread_join (host->thread);
  host->thread = NULL;
  g_clear_pointer (&host->job, job_free);
}

/* Keep the protocol's pipes to ourselves: fd 0 becomes /dev/null and fd 1 stderr, so neither
 * a library that prints nor a child program can write into a frame. */
static gboolean
take_stdio (CmNative *host)
{
  int null_fd;

  host->in_fd = fcntl (STDIN_FILENO, F_DUPFD_CLOEXEC, 3);
  host->out_fd = fcntl (STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);
  null_fd = open ("/dev/null", O_RDONLY | O_CLOEXEC);
  if (host->in_fd < 0 || host->out_fd < 0 || null_fd < 0)
    return FALSE;
  if (dup2 (null_fd, STDIN_FILENO) < 0 || dup2 (STDERR_FILENO, STDOUT_FILENO) < 0)
    return FALSE;
  close (null_fd);
  return TRUE;
}

int
main (int argc, char **argv)
{
  CmNative host = { 0 };
  int rc;

  setlocale (LC_ALL, "");
  /* Thunderbird gone mid-write must be an error, not the end of the process */
  signal (SIGPIPE, SIG_IGN);
  if (isatty (STDIN_FILENO) || (argc > 1 && strcmp (argv[1], "--help") == 0))
    {
      fprintf (stderr,
               "cacmail-native %s: Thunderbird starts this program for cacmail's add-on "
               "(native messaging host cacmail_native); it is not run by hand: see "
               "docs/thunderbird.md\n",
               CM_VERSION);
      return 2;
    }
  if (!take_stdio (&host))
    {
      perror ("cacmail-native: cannot set up stdin/stdout");
      return 1;
    }
  g_mutex_init (&host.lock);
  g_mutex_init (&host.write_lock);
  g_cond_init (&host.cond);
  if (!cm_init (&host.init_error))
    g_printerr ("cacmail-native: %s\n", host.init_error->message);
  rc = serve (&host);
  shut_down (&host);
  if (host.init_error == NULL)
    cm_shutdown ();
  g_clear_error (&host.init_error);
  g_cond_clear (&host.cond);
  g_mutex_clear (&host.lock);
  g_mutex_clear (&host.write_lock);
  return rc;
}
