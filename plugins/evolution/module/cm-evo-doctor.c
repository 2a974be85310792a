/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cm-evo-doctor.c: the Smart Card page's doctor report. It runs `cacmail doctor --json` as a
 * child process (GSubprocess: Evolution never waits on it; killed at a deadline), so that the
 * page says exactly what the command line says: {"problems": [{code, message, hint, ...}]},
 * exit 0 (none) or 7 (some). */
#include "cm-evo-module.h"

/* The doctor's exit status when it found a problem (docs/cacmail.1). */
#define DOCTOR_EXIT_PROBLEMS 7

typedef struct
{
  GSubprocess *proc;
  guint deadline_id;
  gboolean timed_out;
  guint timeout_s;
} Run;

static void
run_free (Run *run)
{
  if (run->deadline_id)
    g_source_remove (run->deadline_id);
  g_clear_object (&run->proc);
  g_free (run);
}

/* `cacmail` on PATH, else the one of this module's prefix. Caller frees; NULL when neither. */
static char *
cacmail_path (void)
{
  char *path = g_find_program_in_path ("cacmail");

  if (path == NULL && g_file_test (CM_BINDIR "/cacmail", G_FILE_TEST_IS_EXECUTABLE))
    path = g_strdup (CM_BINDIR "/cacmail");
  return path;
}

static gboolean
deadline (gpointer data)
{
  GTask *task = data;
  Run *run = g_task_get_task_data (task);

  run->deadline_id = 0;
  run->timed_out = TRUE;
  g_subprocess_force_exit (run->proc);
  return G_SOURCE_REMOVE;
}

/* The first line of @text (nullable), or @fallback. Caller frees. */
static char *
first_line (const char *text, const char *fallback)
{
  if (text == NULL || *text == '\0')
    return g_strdup (fallback);
  return g_strndup (text, strcspn (text, "\n"));
}

static JsonArray *
parse (const char *out, GError **error)
{
  g_autoptr (JsonParser) parser = json_parser_new ();
  JsonNode *root;
  JsonObject *obj;
  JsonArray *problems;

  if (out == NULL || !json_parser_load_from_data (parser, out, -1, NULL)
      || (root = json_parser_get_root (parser)) == NULL || !JSON_NODE_HOLDS_OBJECT (root)
      || (obj = json_node_get_object (root)) == NULL || !json_object_has_member (obj, "problems")
      || !JSON_NODE_HOLDS_ARRAY (json_object_get_member (obj, "problems")))
    {
      g_set_error (error, CM_ERROR, CM_ERROR_ENVIRONMENT,
                   "cacmail doctor printed no report (no \"problems\" list): install the "
                   "cacmail of this Evolution module");
      return NULL;
    }
  problems = json_object_get_array_member (obj, "problems");
  for (guint i = 0; i < json_array_get_length (problems); i++)
    {
      JsonNode *n = json_array_get_element (problems, i);
      if (!JSON_NODE_HOLDS_OBJECT (n)
          || !json_object_get_string_member_with_default (json_node_get_object (n), "message",
                                                          NULL))
        {
          g_set_error (error, CM_ERROR, CM_ERROR_ENVIRONMENT,
                       "cacmail doctor printed a problem without a message: install the "
                       "cacmail of this Evolution module");
          return NULL;
        }
    }
  return json_array_ref (problems);
}

static void
communicated (GObject *source, GAsyncResult *result, gpointer data)
{
  g_autoptr (GTask) task = data;
  Run *run = g_task_get_task_data (task);
  g_autofree char *out = NULL, *err = NULL;
  GError *error = NULL;
  JsonArray *problems;
  int status;

  if (!g_subprocess_communicate_utf8_finish (run->proc, result, &out, &err, &error))
    {
      g_subprocess_force_exit (run->proc); /* cancelled: the page went away */
      g_task_return_error (task, error);
      return;
    }
  if (run->timed_out)
    {
      g_task_return_new_error (task, CM_ERROR, CM_ERROR_ENVIRONMENT,
                               "cacmail doctor did not finish within %u s (a card reader or "
                               "server that does not answer?): run cacmail doctor in a terminal",
                               run->timeout_s);
      return;
    }
  status = g_subprocess_get_if_exited (run->proc) ? g_subprocess_get_exit_status (run->proc) : -1;
  if (status != 0 && status != DOCTOR_EXIT_PROBLEMS)
    {
      g_autofree char *line = first_line (err, "no message");
      g_task_return_new_error (task, CM_ERROR, CM_ERROR_ENVIRONMENT,
                               "cacmail doctor failed (exit %d): %s", status, line);
      return;
    }
  if ((problems = parse (out, &error)) == NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, problems, (GDestroyNotify)json_array_unref);
}

void
cm_evo_doctor_run_async (guint timeout_s, GCancellable *cancellable, GAsyncReadyCallback callback,
                         gpointer user_data)
{
  GTask *task = g_task_new (NULL, cancellable, callback, user_data);
  Run *run = g_new0 (Run, 1);
  g_autofree char *path = cacmail_path ();
  GError *error = NULL;

  g_task_set_source_tag (task, cm_evo_doctor_run_async);
  g_task_set_task_data (task, run, (GDestroyNotify)run_free);
  run->timeout_s = timeout_s;
  if (path == NULL)
    {
      g_task_return_new_error (task, CM_ERROR, CM_ERROR_ENVIRONMENT,
                               "the cacmail command is not installed (not on PATH, nor in %s): "
                               "install the cacmail package",
                               CM_BINDIR);
      g_object_unref (task);
      return;
    }
  run->proc = g_subprocess_new (G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE
                                  | G_SUBPROCESS_FLAGS_STDERR_PIPE,
                                &error, path, "doctor", "--json", NULL);
  if (run->proc == NULL)
    {
      g_task_return_error (task, error);
      g_object_unref (task);
      return;
    }
  run->deadline_id = g_timeout_add_seconds (timeout_s, deadline, task);
  /* stdin closed at once: the doctor never asks anything */
  g_subprocess_communicate_utf8_async (run->proc, NULL, cancellable, communicated, task);
}

JsonArray *
cm_evo_doctor_run_finish (GAsyncResult *result, GError **error)
{
  return g_task_propagate_pointer (G_TASK (result), error);
}
