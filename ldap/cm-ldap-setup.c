/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cm-ldap-setup.c: the directory settings of `cacmail setup` (and the Evolution page): test a
 * connection with TLS verified, then save uri, base and bind into cacmail.conf atomically,
 * keeping the rest of the file and a backup of the old one. */
#include "cm-ldap-private.h"
#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <unistd.h>

static const char *const setup_keys[] = { "uri", "base", "bind", "ca-file", "email", NULL };

const char *const *
cm_ldap_config_setup_keys (void)
{
  return setup_keys;
}

/* ---- the connection test ------------------------------------------------------------------ */

static gboolean
refuse_unverified (CmLdapConfig *cfg, GError **error)
{
  const char *bad = cm_ldap_config_get_bool (cfg, "insecure")           ? "insecure"
                    : cm_ldap_config_get_bool (cfg, "allow-plain-ldap") ? "allow-plain-ldap"
                                                                        : NULL;

  if (bad == NULL)
    return TRUE;
  g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_CONFIG,
               "%s is set: the directory settings are tested with the server certificate "
               "verified; remove %s from cacmail.conf and give the server's CA with --ca-file",
               bad, bad);
  return FALSE;
}

/* Read the base entry: found, or hidden from an anonymous reader by a server that refuses
 * anonymous reads (it answered over TLS: good enough for a test without a password). */
static gboolean
read_base (CmLdapConn *conn, CmLdapConfig *cfg, const char *base, gboolean bound, char **note,
           GError **error)
{
  g_autoptr (GError) local = NULL;
  g_autoptr (GPtrArray) entries = cm_ldap_conn_read_entries (conn, cfg, base, NULL, &local);

  if (entries == NULL)
    {
      if (!bound && g_error_matches (local, CM_LDAP_ERROR, CM_LDAP_ERROR_SERVER))
        {
          *note = g_strdup ("base not checked (the server refuses anonymous reads)");
          return TRUE;
        }
      g_propagate_error (error, g_steal_pointer (&local));
      return FALSE;
    }
  if (entries->len == 0)
    {
      g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_CONFIG,
                   "the base %s does not exist on %s%s: check --base (ask the directory admin "
                   "for the search base of the address list)",
                   base, cm_ldap_conn_get_uri (conn),
                   bound ? "" : " (or is hidden from anonymous reads)");
      return FALSE;
    }
  *note = g_strdup ("base found");
  return TRUE;
}

gboolean
cm_ldap_config_test_sync (CmLdapConfig *cfg, char **report, GCancellable *cancellable,
                          GError **error)
{
  const char *method = cm_ldap_config_get (cfg, "bind");
  const char *base = cm_ldap_config_get (cfg, "base");
  gboolean bind_now = method && strcmp (method, "simple") != 0;
  g_autoptr (CmLdapConn) conn = NULL;
  g_autofree char *note = NULL;

  if (report)
    *report = NULL;
  if (!refuse_unverified (cfg, error))
    return FALSE;
  if (base == NULL)
    {
      g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_CONFIG,
                   "no search base is set: pass --base DN (e.g. ou=people,dc=example,dc=mil)");
      return FALSE;
    }
  if ((conn = cm_ldap_conn_connect_sync (cfg, cancellable, error)) == NULL)
    return FALSE;
  if (bind_now && !cm_ldap_conn_bind_sync (conn, cfg, NULL, NULL, NULL, cancellable, error))
    return FALSE;
  if (!cm_ldap_conn_is_protected (conn))
    {
      g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_TLS,
                   "%s answered without TLS: use its ldaps:// URI or ask the directory admin to "
                   "enable StartTLS",
                   cm_ldap_conn_get_uri (conn));
      return FALSE;
    }
  if (!read_base (conn, cfg, base, bind_now, &note, error))
    return FALSE;
  if (report)
    *report = g_strdup_printf ("%s answered over %s%s, %s bind %s; %s", cm_ldap_conn_get_uri (conn),
                               cm_ldap_conn_is_tls (conn) ? "TLS" : "a SASL security layer",
                               cm_ldap_conn_is_tls (conn) ? " (server certificate verified)" : "",
                               method ? method : "simple",
                               bind_now ? "ok" : "left for republish (it asks the password)", note);
  return TRUE;
}

/* ---- saving --------------------------------------------------------------------------------- */

/* The file as a key file (empty when it does not exist). */
static GKeyFile *
load_for_edit (const char *path, gboolean *existed, GError **error)
{
  g_autoptr (GKeyFile) kf = g_key_file_new ();
  g_autoptr (GError) local = NULL;

  *existed = FALSE;
  if (g_key_file_load_from_file (kf, path, G_KEY_FILE_KEEP_COMMENTS, &local))
    *existed = TRUE;
  else if (!g_error_matches (local, G_FILE_ERROR, G_FILE_ERROR_NOENT))
    {
      g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_CONFIG,
                   "%s cannot be read (%s): fix or move the file, then run cacmail setup again",
                   path, local->message);
      return NULL;
    }
  return g_steal_pointer (&kf);
}

static GPtrArray *
plan (CmLdapConfig *cfg, GKeyFile *kf, const char *const *keys)
{
  GPtrArray *out = g_ptr_array_new_with_free_func (g_free);

  for (const char *const *k = keys; *k; k++)
    {
      const char *want = cm_ldap_config_get (cfg, *k);
      g_autofree char *old = g_key_file_get_string (kf, "ldap", *k, NULL);

      if (want == NULL || g_strcmp0 (old, want) == 0)
        continue;
      g_ptr_array_add (out, old ? g_strdup_printf ("%s: %s -> %s", *k, old, want)
                                : g_strdup_printf ("%s: %s", *k, want));
    }
  return out;
}

GPtrArray *
cm_ldap_config_plan_save (CmLdapConfig *cfg, const char *path, const char *const *keys,
                          GError **error)
{
  g_autofree char *def = path ? NULL : cm_ldap_config_default_path ();
  g_autoptr (GKeyFile) kf = NULL;
  gboolean existed;

  if ((kf = load_for_edit (path ? path : def, &existed, error)) == NULL)
    return NULL;
  return plan (cfg, kf, keys ? keys : setup_keys);
}

/* Write @text to @path through a temporary file in its folder, fsync'd, renamed over it. */
static gboolean
write_atomic (const char *path, const char *text, gsize len, GError **error)
{
  g_autofree char *tmp = g_strconcat (path, ".XXXXXX", NULL);
  int fd = g_mkstemp_full (tmp, O_WRONLY | O_CLOEXEC, 0600);
  gsize off = 0;
  int err = 0;

  if (fd < 0)
    err = errno;
  while (fd >= 0 && off < len && err == 0)
    {
      ssize_t n = write (fd, text + off, len - off);
      if (n < 0 && errno != EINTR)
        err = errno;
      else if (n > 0)
        off += (gsize)n;
    }
  if (fd >= 0 && err == 0 && fsync (fd) != 0)
    err = errno;
  if (fd >= 0 && close (fd) != 0 && err == 0)
    err = errno;
  if (err == 0 && g_rename (tmp, path) != 0)
    err = errno;
  if (err != 0)
    {
      if (fd >= 0)
        g_unlink (tmp);
      g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_CONFIG,
                   "cannot write %s (%s): make its folder writable by you", path, g_strerror (err));
      return FALSE;
    }
  return TRUE;
}

static gboolean
backup (const char *path, char **backup_path, GError **error)
{
  g_autofree char *old = NULL;
  g_autofree char *bak = g_strconcat (path, ".bak", NULL);
  gsize len = 0;
  g_autoptr (GError) local = NULL;

  if (!g_file_get_contents (path, &old, &len, &local) || !write_atomic (bak, old, len, error))
    {
      if (local)
        g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_CONFIG,
                     "cannot back up %s (%s): make it readable by you", path, local->message);
      return FALSE;
    }
  if (backup_path)
    *backup_path = g_steal_pointer (&bak);
  return TRUE;
}

gboolean
cm_ldap_config_save (CmLdapConfig *cfg, const char *path, const char *const *keys,
                     char **backup_path, GError **error)
{
  g_autofree char *def = path ? NULL : cm_ldap_config_default_path ();
  const char *file = path ? path : def;
  g_autofree char *dir = g_path_get_dirname (file);
  g_autoptr (GKeyFile) kf = NULL;
  g_autoptr (GPtrArray) changes = NULL;
  g_autofree char *text = NULL;
  gboolean existed;
  gsize len = 0;

  if (backup_path)
    *backup_path = NULL;
  keys = keys ? keys : setup_keys;
  if ((kf = load_for_edit (file, &existed, error)) == NULL)
    return FALSE;
  if ((changes = plan (cfg, kf, keys))->len == 0)
    return TRUE;
  if (g_mkdir_with_parents (dir, 0700) != 0)
    {
      g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_CONFIG,
                   "cannot make the folder %s (%s): make its parent writable by you", dir,
                   g_strerror (errno));
      return FALSE;
    }
  for (const char *const *k = keys; *k; k++)
    if (cm_ldap_config_get (cfg, *k))
      g_key_file_set_string (kf, "ldap", *k, cm_ldap_config_get (cfg, *k));
  text = g_key_file_to_data (kf, &len, NULL);
  if (existed && !backup (file, backup_path, error))
    return FALSE;
  return write_atomic (file, text, len, error);
}
