/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cm-tb-value.c: pref values and changes, and writing a profile file safely. */
#include "cm-tb-private.h"
#include "cm-private.h"
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

void
cm_tb_pref_value_clear (CmTbPrefValue *value)
{
  g_clear_pointer (&value->string, g_free);
  value->type = CM_TB_PREF_UNSET;
  value->integer = 0;
  value->boolean = FALSE;
}

void
cm_tb_pref_value_copy (CmTbPrefValue *dst, const CmTbPrefValue *src)
{
  *dst = *src;
  dst->string = g_strdup (src->string);
}

gboolean
cm_tb_pref_value_equal (const CmTbPrefValue *a, const CmTbPrefValue *b)
{
  if (a->type != b->type)
    return FALSE;
  switch (a->type)
    {
    case CM_TB_PREF_STRING: return g_strcmp0 (a->string, b->string) == 0;
    case CM_TB_PREF_INT: return a->integer == b->integer;
    case CM_TB_PREF_BOOL: return !a->boolean == !b->boolean;
    default: return TRUE;
    }
}

/* As Thunderbird's Preferences.cpp writes a string: ", \, LF and CR escaped, the rest raw. */
static void
append_js_string (GString *out, const char *s)
{
  g_string_append_c (out, '"');
  for (; *s; s++)
    switch (*s)
      {
      case '\n': g_string_append (out, "\\n"); break;
      case '\r': g_string_append (out, "\\r"); break;
      case '\\': g_string_append (out, "\\\\"); break;
      case '"': g_string_append (out, "\\\""); break;
      default: g_string_append_c (out, *s); break;
      }
  g_string_append_c (out, '"');
}

char *
cm_tb_pref_value_to_js (const CmTbPrefValue *value)
{
  GString *out;

  switch (value->type)
    {
    case CM_TB_PREF_STRING:
      out = g_string_new (NULL);
      append_js_string (out, value->string ? value->string : "");
      return g_string_free (out, FALSE);
    case CM_TB_PREF_INT: return g_strdup_printf ("%" G_GINT32_FORMAT, value->integer);
    case CM_TB_PREF_BOOL: return g_strdup (value->boolean ? "true" : "false");
    default: return NULL;
    }
}

JsonNode *
cm_tb_pref_value_to_json (const CmTbPrefValue *value)
{
  JsonNode *n = json_node_new (JSON_NODE_VALUE);

  switch (value->type)
    {
    case CM_TB_PREF_STRING: json_node_set_string (n, value->string ? value->string : ""); break;
    case CM_TB_PREF_INT: json_node_set_int (n, value->integer); break;
    case CM_TB_PREF_BOOL: json_node_set_boolean (n, value->boolean); break;
    default: json_node_init_null (n); break;
    }
  return n;
}

gboolean
cm_tb_pref_value_from_json (JsonNode *node, CmTbPrefValue *value)
{
  memset (value, 0, sizeof *value);
  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    return TRUE;
  if (!JSON_NODE_HOLDS_VALUE (node))
    return FALSE;
  switch (json_node_get_value_type (node))
    {
    case G_TYPE_STRING:
      value->type = CM_TB_PREF_STRING;
      value->string = g_strdup (json_node_get_string (node));
      return TRUE;
    case G_TYPE_BOOLEAN:
      value->type = CM_TB_PREF_BOOL;
      value->boolean = json_node_get_boolean (node);
      return TRUE;
    case G_TYPE_INT64:
      {
        gint64 v = json_node_get_int (node);
        if (v < G_MININT32 || v > G_MAXINT32)
          return FALSE;
        value->type = CM_TB_PREF_INT;
        value->integer = (gint32)v;
        return TRUE;
      }
    default: return FALSE;
    }
}

CmTbPrefChange *
cm_tb_pref_change_new (const char *name, const CmTbPrefValue *old_value,
                       const CmTbPrefValue *new_value)
{
  CmTbPrefChange *c = g_new0 (CmTbPrefChange, 1);

  c->name = g_strdup (name);
  cm_tb_pref_value_copy (&c->old_value, old_value);
  cm_tb_pref_value_copy (&c->new_value, new_value);
  return c;
}

void
cm_tb_pref_change_free (CmTbPrefChange *change)
{
  if (change == NULL)
    return;
  g_free (change->name);
  cm_tb_pref_value_clear (&change->old_value);
  cm_tb_pref_value_clear (&change->new_value);
  g_free (change);
}

JsonNode *
cm_tb_pref_changes_to_json (GPtrArray *changes)
{
  JsonArray *a = json_array_new ();
  JsonNode *n = json_node_new (JSON_NODE_ARRAY);

  for (guint i = 0; changes && i < changes->len; i++)
    {
      CmTbPrefChange *c = g_ptr_array_index (changes, i);
      JsonObject *o = json_object_new ();
      json_object_set_string_member (o, "name", c->name);
      json_object_set_member (o, "value", cm_tb_pref_value_to_json (&c->new_value));
      json_object_set_member (o, "previous", cm_tb_pref_value_to_json (&c->old_value));
      json_array_add_object_element (a, o);
    }
  json_node_take_array (n, a);
  return n;
}

char *
cm_tb_sha256_hex (const void *data, gsize len)
{
  return g_compute_checksum_for_data (G_CHECKSUM_SHA256, data, len);
}

/* The file a path names, following symlinks (a user may link prefs.js elsewhere). */
static char *
real_target (const char *path)
{
  char *real = realpath (path, NULL);
  char *out;

  if (real == NULL)
    return g_strdup (path);
  out = g_strdup (real);
  free (real);
  return out;
}

gboolean
cm_tb_write_file_atomic (const char *path, const char *data, gsize len, GError **error)
{
  g_autofree char *target = real_target (path);
  g_autofree char *dir = g_path_get_dirname (target);
  g_autofree char *base = g_path_get_basename (target);
  g_autofree char *tmp = g_strdup_printf ("%s/.%s.cacmail-XXXXXX", dir, base);
  struct stat st;
  gboolean had = stat (target, &st) == 0;
  int fd = g_mkstemp_full (tmp, O_RDWR | O_CLOEXEC, 0600);
  int saved, dfd;

  if (fd < 0)
    {
      g_set_error (error, CM_ERROR, CM_ERROR_ENVIRONMENT,
                   "cannot create a file in %s (%s): nothing was changed; check the folder's "
                   "owner and free space",
                   dir, g_strerror (errno));
      return FALSE;
    }
  if (!cm_write_all (fd, data, len) || fchmod (fd, had ? (st.st_mode & 07777) : 0600) != 0
      || (had && geteuid () == 0 && fchown (fd, st.st_uid, st.st_gid) != 0) || fsync (fd) != 0)
    goto fail;
  if (close (fd) != 0)
    {
      fd = -1;
      goto fail;
    }
  fd = -1;
  if (rename (tmp, target) != 0)
    goto fail;
  if ((dfd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0)
    {
      fsync (dfd);
      close (dfd);
    }
  return TRUE;

fail:
  saved = errno;
  if (fd >= 0)
    close (fd);
  unlink (tmp);
  g_set_error (error, CM_ERROR, CM_ERROR_ENVIRONMENT,
               "cannot write %s (%s): it was left as it was; check the disk and the folder's "
               "permissions",
               target, g_strerror (saved));
  return FALSE;
}
