/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cm-tb-undo.c: undo of the last fix or login of a profile. A file nobody touched since gets
 * its bytes back; a file Thunderbird (or anyone) rewrote since gets back only what cacmail
 * changed, where it still holds cacmail's value. */
#include "cm-tb-private.h"
#include <errno.h>
#include <unistd.h>

static char *
value_text (const CmTbPrefValue *v)
{
  return v->type == CM_TB_PREF_UNSET ? g_strdup ("unset") : cm_tb_pref_value_to_js (v);
}

/* Each pref of @changes back to its old value where it still has the new one. */
static gboolean
revert_prefs (const char *path, GPtrArray *changes, GPtrArray *left, GError **error)
{
  g_autoptr (CmTbPrefs) prefs = cm_tb_prefs_load (path, error);
  gboolean changed = FALSE;
  const char *text;
  gsize len;

  if (prefs == NULL)
    return FALSE;
  for (guint i = 0; i < changes->len; i++)
    {
      CmTbPrefChange *c = g_ptr_array_index (changes, i);
      const CmTbPrefValue *cur = cm_tb_prefs_get (prefs, c->name);
      if (cm_tb_pref_value_equal (cur, &c->new_value))
        {
          cm_tb_prefs_set (prefs, c->name, &c->old_value);
          changed = TRUE;
        }
      else if (!cm_tb_pref_value_equal (cur, &c->old_value))
        {
          g_autofree char *v = value_text (cur);
          g_ptr_array_add (left, g_strdup_printf ("%s (now %s)", c->name, v));
        }
    }
  if (!changed)
    return TRUE;
  text = cm_tb_prefs_get_text (prefs, &len);
  return cm_tb_write_file_atomic (path, text, len, error);
}

/* Each remembered decision of @changes back where it still names cacmail's certificate. */
static gboolean
revert_client_auth (const char *dir, GPtrArray *changes, GPtrArray *left, GError **error)
{
  g_autoptr (CmTbClientAuth) ca = cm_tb_client_auth_load (dir, error);
  gboolean changed = FALSE;

  if (ca == NULL)
    return FALSE;
  for (guint i = 0; i < changes->len; i++)
    {
      CmTbPrefChange *c = g_ptr_array_index (changes, i);
      const char *cur = cm_tb_client_auth_get (ca, c->name);
      if (g_strcmp0 (cur, c->new_value.string) == 0)
        {
          cm_tb_client_auth_set (ca, c->name, c->old_value.string);
          changed = TRUE;
        }
      else if (g_strcmp0 (cur, c->old_value.string) != 0)
        g_ptr_array_add (left, g_strdup_printf ("the certificate remembered for %s", c->name));
    }
  return !changed || cm_tb_client_auth_write (ca, dir, error);
}

/* @f back: its bytes when it holds what cacmail wrote, else change by change. */
static gboolean
restore_file (const char *dir, CmTbBackupEntry *e, CmTbBackupFile *f, GPtrArray *left,
              GError **error)
{
  g_autofree char *path = g_build_filename (dir, f->name, NULL);
  g_autofree char *now = NULL;
  g_autofree char *sum = NULL;
  gsize len = 0;

  if (g_file_get_contents (path, &now, &len, NULL))
    sum = cm_tb_sha256_hex (now, len);
  if (f->sha256_after && g_strcmp0 (sum, f->sha256_after) == 0)
    {
      if (f->before)
        return cm_tb_write_file_atomic (path, g_bytes_get_data (f->before, NULL),
                                        g_bytes_get_size (f->before), error);
      if (unlink (path) == 0 || errno == ENOENT)
        return TRUE;
      g_set_error (error, CM_ERROR, CM_ERROR_ENVIRONMENT, "cannot remove %s (%s)", path,
                   g_strerror (errno));
      return FALSE;
    }
  if (strcmp (f->name, "prefs.js") == 0)
    return revert_prefs (path, e->prefs, left, error);
  if (strcmp (f->name, "ClientAuthRememberList.bin") == 0)
    return revert_client_auth (dir, e->client_auth, left, error);
  return TRUE;
}

static gboolean
undo_locked (CmTbProfile *p, char **report, GError **error)
{
  g_autoptr (CmTbBackup) handle = NULL;
  g_autoptr (CmTbBackupEntry) e = NULL;
  g_autoptr (GPtrArray) left = g_ptr_array_new_with_free_func (g_free);
  const char *dir = cm_tb_profile_get_dir (p);
  g_autofree char *prefs_path = g_build_filename (dir, "prefs.js", NULL);

  if ((e = cm_tb_backup_last (dir, &handle, error)) == NULL)
    return FALSE;
  for (guint i = 0; i < e->files->len; i++)
    if (!restore_file (dir, e, g_ptr_array_index (e->files, i), left, error))
      return FALSE;
  /* changes the add-on made live have no file copy: Thunderbird saved them in prefs.js */
  if (e->files->len == 0 && !revert_prefs (prefs_path, e->prefs, left, error))
    return FALSE;
  if (!cm_tb_backup_mark_undone (handle, error))
    return FALSE;
  g_ptr_array_add (left, NULL);
  {
    g_autofree char *names = g_strjoinv (", ", (char **)left->pdata);
    *report
      = g_strdup_printf ("undid the %s of %s%s%s", e->kind, e->time,
                         *names ? "; left as they are, since they changed after it: " : "", names);
  }
  return TRUE;
}

gboolean
cm_tb_profile_undo_sync (CmTbProfile *p, char **report, GError **error)
{
  gboolean ok;

  *report = NULL;
  if (!cm_tb_profile_lock (p, error))
    return FALSE;
  ok = undo_locked (p, report, error);
  cm_tb_profile_unlock (p);
  return ok;
}
