/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cm-tb-profile.c: one Thunderbird profile: where it is, whether Thunderbird runs on it, the
 * certificates it sees, and fix and undo of its prefs.js while Thunderbird is closed. */
#include "cm-tb-private.h"
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

G_DEFINE_QUARK (cm - tb - error - quark, cm_tb_error)

struct _CmTbProfile
{
  char *dir;
  char *prefs_path;
  CmNssdbLocation *loc;
  CmTbPrefs *prefs;
  CmNssDb *db;
  int lock_fd; /* Thunderbird's .parentlock while we write, or -1 */
};

char *
cm_tb_default_profile (GError **error)
{
  g_autoptr (GPtrArray) locs = cm_nssdb_find_locations ();
  CmNssdbLocation *any = NULL;

  for (guint i = 0; i < locs->len; i++)
    {
      CmNssdbLocation *loc = g_ptr_array_index (locs, i);
      if (loc->client != CM_NSSDB_CLIENT_THUNDERBIRD)
        continue;
      if (loc->is_default)
        return g_strdup (loc->dir);
      if (any == NULL)
        any = loc;
    }
  if (any)
    return g_strdup (any->dir);
  g_set_error (error, CM_ERROR, CM_ERROR_NOT_FOUND,
               "no Thunderbird profile found under %s (profiles.ini of ~/.thunderbird, Snap or "
               "Flatpak): start Thunderbird once, or name the profile folder with --profile DIR",
               g_get_home_dir ());
  return NULL;
}

CmTbProfile *
cm_tb_profile_open (const char *dir, GError **error)
{
  g_autoptr (CmTbProfile) p = g_new0 (CmTbProfile, 1);
  g_autofree char *def = NULL;

  if (dir == NULL && (dir = def = cm_tb_default_profile (error)) == NULL)
    return NULL;
  p->lock_fd = -1;
  p->dir = g_canonicalize_filename (dir, NULL);
  if (!g_file_test (p->dir, G_FILE_TEST_IS_DIR))
    {
      g_set_error (error, CM_ERROR, CM_ERROR_NOT_FOUND,
                   "no Thunderbird profile folder %s: name the folder that holds prefs.js (see "
                   "'cacmail nss list --client thunderbird')",
                   p->dir);
      return NULL;
    }
  p->prefs_path = g_build_filename (p->dir, "prefs.js", NULL);
  p->loc = cm_nssdb_locate (p->dir);
  if ((p->prefs = cm_tb_prefs_load (p->prefs_path, error)) == NULL)
    return NULL;
  return g_steal_pointer (&p);
}

void
cm_tb_profile_free (CmTbProfile *p)
{
  if (p == NULL)
    return;
  g_free (p->dir);
  g_free (p->prefs_path);
  cm_nssdb_location_free (p->loc);
  cm_tb_prefs_free (p->prefs);
  if (p->db)
    cm_nss_db_free (p->db);
  cm_tb_profile_unlock (p);
  g_free (p);
}

const char *
cm_tb_profile_get_dir (CmTbProfile *p)
{
  return p->dir;
}

CmNssdbLocation *
cm_tb_profile_get_location (CmTbProfile *p)
{
  return p->loc;
}

CmTbPrefs *
cm_tb_profile_get_prefs (CmTbProfile *p)
{
  return p->prefs;
}

gboolean
cm_tb_profile_add_certs_sync (CmTbProfile *p, CmInventory *inv, GCancellable *cancellable,
                              GError **error)
{
  g_autofree char *cert9 = g_build_filename (p->dir, "cert9.db", NULL);

  if (!g_file_test (cert9, G_FILE_TEST_EXISTS))
    {
      g_set_error (error, CM_ERROR, CM_ERROR_NOT_FOUND,
                   "the Thunderbird profile %s has no certificate database yet: start "
                   "Thunderbird with it once, close it, then run this again",
                   p->dir);
      return FALSE;
    }
  if (p->db == NULL
      && (p->db = cm_nss_db_open_sync (p->dir, CM_NSS_DB_READ_ONLY | CM_NSS_DB_LOAD_MODULES,
                                       cancellable, error))
           == NULL)
    return FALSE;
  if (!cm_nss_db_add_certs_sync (p->db, inv, cancellable, error))
    return FALSE;
  /* recovered keys decrypt old mail only: never proposed, stale where set */
  return cm_nssdb_mark_recovered_checked (inv, NULL, error);
}

GPtrArray *
cm_tb_profile_check (CmTbProfile *p, CmInventory *inv, GPtrArray *inserted, gint64 at,
                     const char *only, GError **error)
{
  g_autoptr (GPtrArray) settings = cm_tb_prefs_list_identities (p->prefs);
  GPtrArray *out = g_ptr_array_new_with_free_func ((GDestroyNotify)cm_tb_identity_free);

  for (guint i = 0; i < settings->len; i++)
    {
      CmTbSettings *s = g_ptr_array_index (settings, i);
      if (only == NULL || strcmp (only, s->id) == 0)
        g_ptr_array_add (out, cm_tb_identity_check (s, inv, inserted, at));
    }
  if (only && out->len == 0)
    {
      g_set_error (error, CM_ERROR, CM_ERROR_NOT_FOUND,
                   "no mail identity %s with an address in %s: run 'cacmail thunderbird check' "
                   "to list them",
                   only, p->prefs_path);
      g_clear_pointer (&out, g_ptr_array_unref);
    }
  return out;
}

gboolean
cm_tb_profile_check_closed (CmTbProfile *p, GError **error)
{
  /* look again: Thunderbird may have started since the profile was opened */
  cm_nssdb_location_free (p->loc);
  p->loc = cm_nssdb_locate (p->dir);
  if (p->loc->pid <= 0)
    return TRUE;
  g_set_error (error, CM_ERROR, CM_ERROR_UNSAFE,
               "Thunderbird is running on %s (%s) and rewrites prefs.js when it exits, so nothing "
               "was changed: close Thunderbird and run this again, or let the cacmail add-on "
               "make the same change inside Thunderbird (docs/thunderbird.md)",
               p->dir, p->loc->state);
  return FALSE;
}

gboolean
cm_tb_profile_lock (CmTbProfile *p, GError **error)
{
  g_autofree char *path = g_build_filename (p->dir, ".parentlock", NULL);
  struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };

  if (!cm_tb_profile_check_closed (p, error))
    return FALSE;
  if (p->lock_fd >= 0)
    return TRUE;
  p->lock_fd = open (path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (p->lock_fd >= 0 && fcntl (p->lock_fd, F_SETLK, &fl) == 0)
    return TRUE;
  g_set_error (error, CM_ERROR,
               errno == EACCES || errno == EAGAIN ? CM_ERROR_UNSAFE : CM_ERROR_ENVIRONMENT,
               "cannot take Thunderbird's profile lock %s (%s): nothing was changed; close "
               "Thunderbird and run this again",
               path, g_strerror (errno));
  cm_tb_profile_unlock (p);
  return FALSE;
}

void
cm_tb_profile_unlock (CmTbProfile *p)
{
  if (p->lock_fd >= 0)
    close (p->lock_fd); /* releases the fcntl lock */
  p->lock_fd = -1;
}

/* prefs.js still holds what was read: nobody (a Thunderbird that just exited) rewrote it. */
static gboolean
prefs_unchanged (CmTbProfile *p, const char *text, gsize len, GError **error)
{
  g_autofree char *now = NULL;
  gsize now_len = 0;
  gboolean same;

  if (!g_file_get_contents (p->prefs_path, &now, &now_len, NULL))
    same = len == 0;
  else
    same = now_len == len && memcmp (now, text, len) == 0;
  if (!same)
    g_set_error (error, CM_TB_ERROR, CM_TB_ERROR_CONFLICT,
                 "%s changed while cacmail worked (did Thunderbird just start or exit?): nothing "
                 "was written; run this again",
                 p->prefs_path);
  return same;
}

/* Back up prefs.js (and @also, a second profile file, nullable), note @changes, write the new
 * prefs.js. The backup is on disk before anything changes. */
gboolean
cm_tb_profile_write_prefs (CmTbProfile *p, CmTbBackup *b, GPtrArray *changes, GError **error)
{
  g_autofree char *orig = NULL;
  gsize orig_len = 0, len = 0;
  const char *text = cm_tb_prefs_get_text (p->prefs, &orig_len);
  g_autoptr (CmTbPrefs) fresh = NULL;

  orig = g_memdup2 (text, orig_len);
  if (!prefs_unchanged (p, orig, orig_len, error))
    return FALSE;
  for (guint i = 0; i < changes->len; i++)
    {
      CmTbPrefChange *c = g_ptr_array_index (changes, i);
      cm_tb_backup_add_pref (b, c);
      cm_tb_prefs_set (p->prefs, c->name, &c->new_value);
    }
  if (!cm_tb_backup_add_file (b, "prefs.js", error) || !cm_tb_backup_commit (b, error))
    return FALSE;
  text = cm_tb_prefs_get_text (p->prefs, &len);
  /* what we write must read back: never hand Thunderbird a file it would skip parts of */
  if ((fresh = cm_tb_prefs_parse (text, len, p->prefs_path, error)) == NULL)
    return FALSE;
  return cm_tb_write_file_atomic (p->prefs_path, text, len, error);
}

gint
cm_tb_profile_fix_sync (CmTbProfile *p, GPtrArray *identities, GError **error)
{
  g_autoptr (GPtrArray) changes = g_ptr_array_new ();
  g_autoptr (CmTbBackup) b = NULL;
  gint n = 0;

  for (guint i = 0; i < identities->len; i++)
    {
      GPtrArray *c = cm_tb_identity_get_changes (g_ptr_array_index (identities, i));
      if (c->len)
        n++;
      g_ptr_array_extend (changes, c, NULL, NULL);
    }
  if (!cm_tb_profile_check_closed (p, error))
    return -1;
  if (n == 0)
    return 0;
  if (!cm_tb_profile_lock (p, error) || (b = cm_tb_backup_begin (p->dir, "fix", error)) == NULL
      || !cm_tb_profile_write_prefs (p, b, changes, error))
    {
      cm_tb_profile_unlock (p);
      return -1;
    }
  cm_tb_profile_unlock (p);
  if (!cm_tb_backup_finish (b, error))
    g_clear_error (error); /* written; undo then reverts pref by pref */
  return n;
}
