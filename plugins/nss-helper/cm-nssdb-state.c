/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cm-nssdb-state.c: cacmail's own state files (here the record of recovered, decrypt-only
 * keys, $XDG_DATA_HOME/cacmail/recovered-keys.json, so that selection never picks them for
 * signing or encryption; Evolution's settings backups use the same reads and writes). They are
 * handled like keys: read only when the user owns them and nobody else may change them, with a
 * bound, written whole (a temporary file renamed over the old one) with mode 0600 in a 0700
 * folder, and a damaged one stops whatever depends on it: it is never read as empty. */
#include "cm-nssdb.h"
#include "cm-nssdb-private.h"
#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

void
cm_nssdb_recovered_free (CmNssdbRecovered *r)
{
  if (r == NULL)
    return;
  g_free (r->sha256);
  g_free (r->nssdb);
  g_free (r->nickname);
  g_free (r->subject);
  g_free (r->file);
  g_free (r);
}

char *
cm_nssdb_state_path (void)
{
  const char *dir = g_getenv ("CACMAIL_STATE_DIR");

  if (dir && *dir)
    return g_build_filename (dir, "recovered-keys.json", NULL);
  return g_build_filename (g_get_user_data_dir (), "cacmail", "recovered-keys.json", NULL);
}

/* ---- any state file ---- */

/* @st (of @path, a @what) is the user's and nobody else may change it. */
static gboolean
check_owner (const char *path, const char *what, const struct stat *st, GError **error)
{
  if (st->st_uid != geteuid ())
    return g_set_error (error, CM_ERROR, CM_ERROR_UNSAFE,
                        "%s %s belongs to another user (uid %u), who could change what cacmail "
                        "does: run chown %u %s, or move it aside",
                        what, path, (guint)st->st_uid, (guint)geteuid (), path),
           FALSE;
  if (st->st_mode & (S_IWGRP | S_IWOTH))
    return g_set_error (error, CM_ERROR, CM_ERROR_UNSAFE,
                        "%s %s can be changed by other users (mode %04o): run chmod %s %s", what,
                        path, (guint)(st->st_mode & 07777), S_ISDIR (st->st_mode) ? "700" : "600",
                        path),
           FALSE;
  return TRUE;
}

/* The folder @dir, if it exists, is the user's alone to change. */
static gboolean
check_folder (const char *dir, GError **error)
{
  struct stat st;

  if (g_stat (dir, &st) != 0)
    return TRUE;
  if (!S_ISDIR (st.st_mode))
    return g_set_error (error, CM_ERROR, CM_ERROR_ENVIRONMENT,
                        "%s is not a folder: move it aside so that cacmail can keep its state "
                        "there",
                        dir),
           FALSE;
  return check_owner (dir, "the state folder", &st, error);
}

gboolean
cm_nssdb_state_file_read (const char *path, char **contents, gsize *len, GError **error)
{
  g_autofree char *dir = g_path_get_dirname (path);
  struct stat st;
  gsize got = 0;
  ssize_t n = 1;
  char *buf;
  int fd;

  *contents = NULL;
  *len = 0;
  if (!check_folder (dir, error))
    return FALSE;
  if ((fd = open (path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)) < 0)
    return errno == ENOENT ? TRUE
                           : (g_set_error (error, CM_ERROR, CM_ERROR_ENVIRONMENT,
                                           "cannot read %s (%s): make it readable by you", path,
                                           g_strerror (errno)),
                              FALSE);
  if (fstat (fd, &st) != 0 || !S_ISREG (st.st_mode) || st.st_size > CM_NSSDB_STATE_MAX)
    {
      close (fd);
      return g_set_error (error, CM_ERROR, CM_ERROR_BAD_INPUT,
                          "%s is not a regular file of at most %u MiB, so not cacmail's: move "
                          "it aside",
                          path, CM_NSSDB_STATE_MAX >> 20),
             FALSE;
    }
  if (!check_owner (path, "the state file", &st, error))
    return close (fd), FALSE;
  buf = g_malloc (CM_NSSDB_STATE_MAX + 1);
  while (
    got <= CM_NSSDB_STATE_MAX
    && ((n = read (fd, buf + got, CM_NSSDB_STATE_MAX + 1 - got)) > 0 || (n < 0 && errno == EINTR)))
    got += n > 0 ? n : 0;
  close (fd);
  if (n < 0 || got > CM_NSSDB_STATE_MAX)
    {
      g_free (buf);
      return g_set_error (error, CM_ERROR, CM_ERROR_BAD_INPUT,
                          "cannot read %s whole (%s): move it aside", path,
                          n < 0 ? g_strerror (errno) : "it grew too large"),
             FALSE;
    }
  buf[got] = '\0';
  *contents = g_realloc (buf, got + 1);
  *len = got;
  return TRUE;
}

/* Write @len bytes of @text to the new file @fd whole, and with @durable to the disk. */
static gboolean
write_whole (int fd, const char *text, gsize len, gboolean durable)
{
  while (len)
    {
      ssize_t n = write (fd, text, len);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        return FALSE;
      text += n;
      len -= n;
    }
  return !durable || fsync (fd) == 0;
}

gboolean
cm_nssdb_state_file_write (const char *path, const char *text, gboolean durable, GError **error)
{
  g_autofree char *dir = g_path_get_dirname (path);
  g_autofree char *tmp = g_strconcat (path, ".XXXXXX", NULL);
  int fd, saved = 0, dfd;
  gboolean ok;

  if (g_mkdir_with_parents (dir, 0700) != 0)
    return g_set_error (error, CM_ERROR, CM_ERROR_ENVIRONMENT,
                        "cannot create the folder %s (%s): make its parent writable by you", dir,
                        g_strerror (errno)),
           FALSE;
  if (!check_folder (dir, error))
    return FALSE;
  /* a new file beside it, mode 0600, renamed over the old one: readers see one or the other */
  if ((fd = g_mkstemp_full (tmp, O_RDWR | O_CLOEXEC, 0600)) < 0)
    saved = errno;
  else
    {
      ok = write_whole (fd, text, strlen (text), durable);
      saved = ok ? 0 : (errno ? errno : EIO);
      if (close (fd) != 0 && !saved)
        saved = errno;
      if (!saved && rename (tmp, path) != 0)
        saved = errno;
      if (saved)
        g_unlink (tmp);
    }
  if (saved)
    return g_set_error (error, CM_ERROR, CM_ERROR_ENVIRONMENT,
                        "cannot write %s (%s): check free space and that %s is writable by you",
                        path, g_strerror (saved), dir),
           FALSE;
  /* and the rename itself on the disk */
  if (durable && (dfd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0)
    {
      fsync (dfd);
      close (dfd);
    }
  return TRUE;
}

/* The JSON object in the state file @path; NULL with @error when the file cannot be read
 * safely, or with *@damaged (caller frees) saying why it is not one JSON object, or with
 * neither when there is no file. */
/* Every member name and string value below @node is valid UTF-8 (nesting bounded). */
static gboolean
utf8_everywhere (JsonNode *node, int depth)
{
  if (depth > 64)
    return FALSE;
  if (JSON_NODE_HOLDS_VALUE (node))
    return json_node_get_value_type (node) != G_TYPE_STRING
           || g_utf8_validate (json_node_get_string (node), -1, NULL);
  if (JSON_NODE_HOLDS_ARRAY (node))
    {
      JsonArray *a = json_node_get_array (node);
      for (guint i = 0; i < json_array_get_length (a); i++)
        if (!utf8_everywhere (json_array_get_element (a, i), depth + 1))
          return FALSE;
    }
  if (JSON_NODE_HOLDS_OBJECT (node))
    {
      JsonObjectIter it;
      const char *name;
      JsonNode *member;
      json_object_iter_init (&it, json_node_get_object (node));
      while (json_object_iter_next (&it, &name, &member))
        if (!g_utf8_validate (name, -1, NULL) || !utf8_everywhere (member, depth + 1))
          return FALSE;
    }
  return TRUE;
}

JsonObject *
cm_nssdb_state_file_load (const char *path, char **damaged, GError **error)
{
  g_autofree char *text = NULL;
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (GError) local = NULL;
  gsize len = 0;
  JsonNode *root;

  *damaged = NULL;
  if (!cm_nssdb_state_file_read (path, &text, &len, error) || text == NULL)
    return NULL;
  if (!json_parser_load_from_data (parser, text, len, &local)
      || (root = json_parser_get_root (parser)) == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    {
      *damaged = g_strdup (local ? local->message : "it is not one JSON object");
      return NULL;
    }
  /* json-glib lets some bad escapes through as bytes that are not UTF-8: such a file would be
   * written back as one nobody can read, so it is damaged now */
  if (!utf8_everywhere (root, 0))
    {
      *damaged = g_strdup ("a name or value in it is not valid UTF-8");
      return NULL;
    }
  return json_object_ref (json_node_get_object (root));
}

/* ---- the record of recovered keys ---- */

void
cm_nssdb_pending_free (CmNssdbPending *p)
{
  if (p == NULL)
    return;
  g_free (p->nssdb);
  g_bytes_unref (p->cert);
  g_free (p);
}

void
cm_nssdb_state_free (CmNssdbState *st)
{
  if (st == NULL)
    return;
  g_ptr_array_unref (st->keys);
  g_ptr_array_unref (st->pending);
  if (st->lock >= 0)
    close (st->lock); /* and with it the lock */
  g_free (st);
}

/* The string member @name of @o: NULL (with *@bad) when it is there but no string, or
 * missing and @required. */
static const char *
text_of (JsonObject *o, const char *name, gboolean required, gboolean *bad)
{
  JsonNode *n = json_object_get_member (o, name);

  if (n == NULL)
    return *bad |= required, NULL;
  if (!JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_STRING)
    return *bad = TRUE, NULL;
  return json_node_get_string (n);
}

static gint64
time_of (JsonObject *o, const char *name, gboolean *bad)
{
  const char *s = text_of (o, name, FALSE, bad);
  gint64 t = 0;

  if (s && !cm_time_parse (s, &t, NULL))
    *bad = TRUE;
  return t;
}

static gboolean
flag_of (JsonObject *o, const char *name, gboolean *bad)
{
  JsonNode *n = json_object_get_member (o, name);

  if (n == NULL || !JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_BOOLEAN)
    return *bad = TRUE, FALSE;
  return json_node_get_boolean (n);
}

static gboolean
is_sha256 (const char *s)
{
  gsize n = 0;

  while (s && g_ascii_isxdigit (s[n]))
    n++;
  return s && n == 64 && s[n] == '\0';
}

static CmNssdbRecovered *
key_of (JsonNode *node, gboolean *bad)
{
  JsonObject *o = JSON_NODE_HOLDS_OBJECT (node) ? json_node_get_object (node) : NULL;
  CmNssdbRecovered *r;

  if (o == NULL || !is_sha256 (text_of (o, "sha256", TRUE, bad)))
    return *bad = TRUE, NULL;
  r = g_new0 (CmNssdbRecovered, 1);
  r->sha256 = g_ascii_strdown (text_of (o, "sha256", TRUE, bad), -1);
  r->nssdb = g_strdup (text_of (o, "nssdb", TRUE, bad));
  r->nickname = g_strdup (text_of (o, "nickname", FALSE, bad));
  r->subject = g_strdup (text_of (o, "subject", FALSE, bad));
  r->file = g_strdup (text_of (o, "file", FALSE, bad));
  r->not_before = time_of (o, "not_before", bad);
  r->not_after = time_of (o, "not_after", bad);
  r->imported = time_of (o, "imported", bad);
  return r;
}

static CmNssdbPending *
pending_of (JsonNode *node, gboolean *bad)
{
  JsonObject *o = JSON_NODE_HOLDS_OBJECT (node) ? json_node_get_object (node) : NULL;
  const char *cert = o ? text_of (o, "cert", TRUE, bad) : NULL;
  gsize n = 0;
  guchar *der = cert ? g_base64_decode (cert, &n) : NULL;
  CmNssdbPending *p;

  if (o == NULL || der == NULL || n == 0)
    return g_free (der), *bad = TRUE, NULL;
  p = g_new0 (CmNssdbPending, 1);
  p->cert = g_bytes_new_take (der, n);
  p->nssdb = g_strdup (text_of (o, "nssdb", TRUE, bad));
  p->had_cert = flag_of (o, "had_cert", bad);
  p->had_key = flag_of (o, "had_key", bad);
  p->recorded = flag_of (o, "recorded", bad);
  return p;
}

/* The members "keys" and (optional) "pending" of @root into @st; FALSE when malformed. */
static gboolean
fill (CmNssdbState *st, JsonObject *root)
{
  JsonNode *keys = json_object_get_member (root, "keys");
  JsonNode *pending = json_object_get_member (root, "pending");
  gboolean bad = keys == NULL || !JSON_NODE_HOLDS_ARRAY (keys)
                 || (pending && !JSON_NODE_HOLDS_ARRAY (pending));

  for (guint i = 0; !bad && i < json_array_get_length (json_node_get_array (keys)); i++)
    {
      CmNssdbRecovered *r = key_of (json_array_get_element (json_node_get_array (keys), i), &bad);
      if (r)
        g_ptr_array_add (st->keys, r);
    }
  for (guint i = 0; !bad && pending && i < json_array_get_length (json_node_get_array (pending));
       i++)
    {
      CmNssdbPending *p
        = pending_of (json_array_get_element (json_node_get_array (pending), i), &bad);
      if (p)
        g_ptr_array_add (st->pending, p);
    }
  return !bad;
}

/* Hold the lock of the record (a lock file beside it) until @st is freed. */
static gboolean
take_lock (CmNssdbState *st, const char *path, GError **error)
{
  g_autofree char *lock = g_strconcat (path, ".lock", NULL);
  g_autofree char *dir = g_path_get_dirname (path);

  if (g_mkdir_with_parents (dir, 0700) != 0 || !check_folder (dir, error)
      || (st->lock = open (lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600)) < 0)
    return (error && *error) ? FALSE
                             : (g_set_error (error, CM_ERROR, CM_ERROR_ENVIRONMENT,
                                             "cannot create %s (%s): make %s writable by you", lock,
                                             g_strerror (errno), dir),
                                FALSE);
  while (flock (st->lock, LOCK_EX) != 0)
    if (errno != EINTR)
      return g_set_error (error, CM_ERROR, CM_ERROR_ENVIRONMENT, "cannot lock %s (%s)", lock,
                          g_strerror (errno)),
             FALSE;
  return TRUE;
}

CmNssdbState *
cm_nssdb_state_open (gboolean lock, GError **error)
{
  g_autofree char *path = cm_nssdb_state_path ();
  g_autofree char *damaged = NULL;
  g_autoptr (GError) local = NULL;
  CmNssdbState *st = g_new0 (CmNssdbState, 1);
  JsonObject *root = NULL;

  st->keys = g_ptr_array_new_with_free_func ((GDestroyNotify)cm_nssdb_recovered_free);
  st->pending = g_ptr_array_new_with_free_func ((GDestroyNotify)cm_nssdb_pending_free);
  st->lock = -1;
  if (lock && !take_lock (st, path, error))
    return cm_nssdb_state_free (st), NULL;
  root = cm_nssdb_state_file_load (path, &damaged, &local);
  if (root && !fill (st, root))
    damaged = g_strdup ("an entry is malformed");
  if (root)
    json_object_unref (root);
  if (local == NULL && damaged == NULL)
    return st;
  cm_nssdb_state_free (st);
  if (local) /* not the user's, or not a file: the message says the fix */
    g_propagate_error (error, g_steal_pointer (&local));
  else
    g_set_error (error, CM_ERROR, CM_ERROR_BAD_INPUT,
                 "the record of recovered keys %s is damaged (%s), so cacmail cannot tell which "
                 "keys are decrypt-only: restore it from a backup, or move it aside (mv %s "
                 "%s.damaged) and import the recovered-key files again",
                 path, damaged, path, path);
  return NULL;
}

static void
set_time (JsonBuilder *b, const char *member, gint64 t)
{
  g_autofree char *s = cm_time_format (t);
  json_builder_set_member_name (b, member);
  json_builder_add_string_value (b, s);
}

static void
set_text (JsonBuilder *b, const char *member, const char *value)
{
  json_builder_set_member_name (b, member);
  json_builder_add_string_value (b, value ? value : "");
}

static void
add_pending (JsonBuilder *b, CmNssdbPending *p)
{
  g_autofree char *cert
    = g_base64_encode (g_bytes_get_data (p->cert, NULL), g_bytes_get_size (p->cert));

  json_builder_begin_object (b);
  set_text (b, "nssdb", p->nssdb);
  set_text (b, "cert", cert);
  json_builder_set_member_name (b, "had_cert");
  json_builder_add_boolean_value (b, p->had_cert);
  json_builder_set_member_name (b, "had_key");
  json_builder_add_boolean_value (b, p->had_key);
  json_builder_set_member_name (b, "recorded");
  json_builder_add_boolean_value (b, p->recorded);
  json_builder_end_object (b);
}

gboolean
cm_nssdb_state_save (CmNssdbState *st, gboolean durable, GError **error)
{
  g_autofree char *path = cm_nssdb_state_path ();
  g_autoptr (JsonBuilder) b = json_builder_new ();
  g_autoptr (JsonNode) root = NULL;
  g_autofree char *text = NULL;

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "version");
  json_builder_add_int_value (b, 1);
  json_builder_set_member_name (b, "keys");
  json_builder_begin_array (b);
  for (guint i = 0; i < st->keys->len; i++)
    {
      CmNssdbRecovered *r = g_ptr_array_index (st->keys, i);
      json_builder_begin_object (b);
      set_text (b, "sha256", r->sha256);
      set_text (b, "nssdb", r->nssdb);
      set_text (b, "nickname", r->nickname);
      set_text (b, "subject", r->subject);
      set_text (b, "file", r->file);
      set_time (b, "not_before", r->not_before);
      set_time (b, "not_after", r->not_after);
      set_time (b, "imported", r->imported);
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
  if (st->pending->len)
    {
      json_builder_set_member_name (b, "pending");
      json_builder_begin_array (b);
      for (guint i = 0; i < st->pending->len; i++)
        add_pending (b, g_ptr_array_index (st->pending, i));
      json_builder_end_array (b);
    }
  json_builder_end_object (b);
  root = json_builder_get_root (b);
  text = cm_json_to_string (root);
  return cm_nssdb_state_file_write (path, text, durable, error);
}

gboolean
cm_nssdb_is_recovered (const char *sha256)
{
  g_autoptr (CmNssdbState) st = cm_nssdb_state_open (FALSE, NULL);

  if (st == NULL)
    return TRUE; /* fail closed: an unreadable record makes every key decrypt-only */
  for (guint i = 0; i < st->keys->len; i++)
    if (g_ascii_strcasecmp (((CmNssdbRecovered *)g_ptr_array_index (st->keys, i))->sha256, sha256)
        == 0)
      return TRUE;
  return FALSE;
}

static gint
newest_first (gconstpointer a, gconstpointer b)
{
  const CmNssdbRecovered *x = *(CmNssdbRecovered **)a, *y = *(CmNssdbRecovered **)b;

  if (x->not_after != y->not_after)
    return x->not_after > y->not_after ? -1 : 1;
  return strcmp (x->sha256, y->sha256);
}

GPtrArray *
cm_nssdb_recovered_list (CmNssDb *db, GError **error)
{
  g_autoptr (CmNssdbState) st = cm_nssdb_state_open (FALSE, error);
  GPtrArray *out;

  if (st == NULL)
    return NULL;
  out = g_ptr_array_new_with_free_func ((GDestroyNotify)cm_nssdb_recovered_free);
  for (guint i = 0; i < st->keys->len; i++)
    {
      CmNssdbRecovered *r = g_ptr_array_index (st->keys, i);
      if (db && strcmp (r->nssdb, cm_nss_db_get_dir (db)) != 0)
        continue;
      if (db)
        r->present = cm_nssdb_db_has_cert_and_key (db, r->sha256);
      g_ptr_array_add (out, g_ptr_array_steal_index (st->keys, i--));
    }
  g_ptr_array_sort (out, newest_first);
  return out;
}

gboolean
cm_nssdb_mark_recovered_checked (CmInventory *inv, guint *marked, GError **error)
{
  g_autoptr (CmNssdbState) st = cm_nssdb_state_open (FALSE, error);
  g_autoptr (GHashTable) shas = g_hash_table_new (g_str_hash, g_str_equal);
  GPtrArray *certs = cm_inventory_get_certs (inv);
  guint n = 0;

  if (st == NULL)
    return FALSE;
  for (guint i = 0; i < st->keys->len; i++)
    g_hash_table_add (shas, ((CmNssdbRecovered *)g_ptr_array_index (st->keys, i))->sha256);
  for (guint i = 0; i < certs->len; i++)
    {
      const char *sha = cm_cert_get_sha256 (g_ptr_array_index (certs, i));
      g_autofree char *lower = g_ascii_strdown (sha, -1);
      if (g_hash_table_contains (shas, lower))
        {
          cm_inventory_mark_decrypt_only (inv, sha);
          n++;
        }
    }
  if (marked)
    *marked = n;
  return TRUE;
}

guint
cm_nssdb_mark_recovered (CmInventory *inv)
{
  GPtrArray *certs = cm_inventory_get_certs (inv);
  guint n = 0;

  if (cm_nssdb_mark_recovered_checked (inv, &n, NULL))
    return n;
  for (guint i = 0; i < certs->len; i++) /* fail closed */
    cm_inventory_mark_decrypt_only (inv, cm_cert_get_sha256 (g_ptr_array_index (certs, i)));
  return certs->len;
}
