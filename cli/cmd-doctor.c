/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cmd-doctor.c: `cacmail doctor [--json] [--forget]`, run as the helper program cacmail-doctor
 * (it links libldap and the mail-client libraries): one report of everything between the user
 * and working S/MIME and card login, each problem with its fix. Collect first (doctor-*.c),
 * render after. Exit 7 when it found a problem. */
#include "doctor.h"
#include <glib/gstdio.h>
#include <stdarg.h>
#include <stdio.h>

enum
{
  DOCTOR_EXIT_PROBLEMS = 7, /* docs/cacmail.1 */
};

void
doctor_add (Doctor *d, CmProblem *problem)
{
  for (guint i = 0; i < d->problems->len; i++)
    {
      CmProblem *p = g_ptr_array_index (d->problems, i);
      if (strcmp (cm_problem_get_code (p), cm_problem_get_code (problem)) == 0
          && strcmp (cm_problem_get_message (p), cm_problem_get_message (problem)) == 0)
        {
          GPtrArray *certs = cm_problem_get_certs (problem);
          for (guint j = 0; j < certs->len; j++)
            cm_problem_add_cert (p, g_ptr_array_index (certs, j));
          cm_problem_free (problem);
          return;
        }
    }
  g_ptr_array_add (d->problems, problem);
}

CmProblem *
doctor_problem (Doctor *d, const char *code, CmSeverity severity, const char *hint, const char *fmt,
                ...)
{
  va_list ap;
  g_autofree char *msg = NULL;
  guint before = d->problems->len;

  va_start (ap, fmt);
  msg = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  doctor_add (d, cm_problem_new (code, severity, msg, hint));
  return d->problems->len > before ? g_ptr_array_index (d->problems, before) : NULL;
}

void
doctor_checked (Doctor *d, const char *fmt, ...)
{
  va_list ap;

  va_start (ap, fmt);
  g_ptr_array_add (d->checked, g_strdup_vprintf (fmt, ap));
  va_end (ap);
}

/* ---- --forget ---- */

/* Remove @path (a file or a folder with everything in it), adding each removed file to @out. */
static void
remove_tree (const char *path, GPtrArray *out)
{
  if (g_file_test (path, G_FILE_TEST_IS_DIR) && !g_file_test (path, G_FILE_TEST_IS_SYMLINK))
    {
      g_autoptr (GDir) dir = g_dir_open (path, 0, NULL);
      const char *name;
      while (dir && (name = g_dir_read_name (dir)))
        {
          g_autofree char *child = g_build_filename (path, name, NULL);
          remove_tree (child, out);
        }
      g_rmdir (path);
    }
  else if (g_unlink (path) == 0)
    g_ptr_array_add (out, g_strdup (path));
}

/* cacmail's caches: everything under $XDG_CACHE_HOME/cacmail (the card cache of
 * core/cm-card-cache.c). The settings, backups and recovered-key record are state, not cache:
 * they stay. */
static int
forget (gboolean json)
{
  g_autofree char *dir = g_build_filename (g_get_user_cache_dir (), "cacmail", NULL);
  g_autoptr (GPtrArray) removed = g_ptr_array_new_with_free_func (g_free);

  remove_tree (dir, removed);
  if (g_file_test (dir, G_FILE_TEST_EXISTS))
    {
      fprintf (stderr,
               "cacmail: error: could not remove everything in %s: check its permissions, or "
               "remove it by hand\n",
               dir);
      return CLI_EXIT_ENVIRONMENT;
    }
  if (json)
    {
      g_autoptr (JsonBuilder) b = json_builder_new ();
      g_autoptr (JsonNode) root = NULL;
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "removed");
      json_builder_begin_array (b);
      for (guint i = 0; i < removed->len; i++)
        json_builder_add_string_value (b, g_ptr_array_index (removed, i));
      json_builder_end_array (b);
      json_builder_end_object (b);
      root = json_builder_get_root (b);
      cli_print_json (root);
      return CLI_EXIT_OK;
    }
  if (removed->len == 0)
    printf ("Nothing to forget: %s holds no cache.\n", dir);
  else
    printf ("Forgot %u cached file%s (the next read of each card reads it in full):\n",
            removed->len, removed->len == 1 ? "" : "s");
  for (guint i = 0; i < removed->len; i++)
    printf ("  removed %s\n", (char *)g_ptr_array_index (removed, i));
  return CLI_EXIT_OK;
}

/* ---- the report ---- */

static void
render (Doctor *d, gboolean json)
{
  if (json)
    {
      g_autoptr (JsonBuilder) b = json_builder_new ();
      g_autoptr (JsonNode) root = NULL;
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "problems");
      json_builder_begin_array (b);
      for (guint i = 0; i < d->problems->len; i++)
        json_builder_add_value (b, cm_json_problem (g_ptr_array_index (d->problems, i)));
      json_builder_end_array (b);
      json_builder_end_object (b);
      root = json_builder_get_root (b);
      cli_print_json (root);
      return;
    }
  printf ("checked:\n");
  for (guint i = 0; i < d->checked->len; i++)
    printf ("  %s\n", (char *)g_ptr_array_index (d->checked, i));
  if (d->problems->len == 0)
    {
      printf ("\nNo problem found.\n");
      return;
    }
  printf ("\n%u problem%s:\n", d->problems->len, d->problems->len == 1 ? "" : "s");
  for (guint i = 0; i < d->problems->len; i++)
    cli_print_problem (g_ptr_array_index (d->problems, i));
}

int
cmd_doctor (int argc, char **argv)
{
  g_autofree char *at_text = NULL;
  gboolean json = FALSE, forget_caches = FALSE;
  Doctor d = { 0 };
  GOptionEntry entries[] = {
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, "Print JSON: {\"problems\": [problem...]}", NULL },
    { "forget", 0, 0, G_OPTION_ARG_NONE, &forget_caches,
      "Clear cacmail's caches (the card cache) and list what was removed", NULL },
    { "at", 0, 0, G_OPTION_ARG_STRING, &at_text, "Judge validity at TIME (default now)", "TIME" },
    { "timeout", 0, 0, G_OPTION_ARG_INT, &d.timeout,
      "Deadline in seconds of each step of the directory test (default 10)", "SECONDS" },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx
    = g_option_context_new ("- find what stands between you and working S/MIME, with fixes");
  g_autoptr (GError) error = NULL;
  int rc;

  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!g_option_context_parse (ctx, &argc, &argv, &error))
    return cli_usage ("%s", error->message);
  if (argc > 1)
    return cli_usage ("doctor takes no arguments ('%s')", argv[1]);
  if (forget_caches)
    return forget (json);
  d.at = cm_time_now ();
  if (at_text && !cm_time_parse (at_text, &d.at, &error))
    return cli_usage ("--at: %s", error->message);
  if (d.timeout <= 0)
    d.timeout = 10;
  d.inv = cm_inventory_new ();
  d.picks = g_ptr_array_new_with_free_func ((GDestroyNotify)cm_picks_free);
  d.problems = g_ptr_array_new_with_free_func ((GDestroyNotify)cm_problem_free);
  d.checked = g_ptr_array_new_with_free_func (g_free);

  if (!json)
    fprintf (stderr, "Checking cards, mail clients and the directory...\n");
  doctor_check_cards (&d);
  doctor_check_nss (&d);
  doctor_check_evolution (&d);
  doctor_check_thunderbird (&d);
  doctor_check_directory (&d);
  render (&d, json);
  rc = d.problems->len ? DOCTOR_EXIT_PROBLEMS : CLI_EXIT_OK;

  g_ptr_array_unref (d.checked);
  g_ptr_array_unref (d.problems);
  g_ptr_array_unref (d.picks);
  g_clear_pointer (&d.inserted, g_ptr_array_unref);
  cm_inventory_free (d.inv);
  return rc;
}
