/* cm-card-cache.c: public data of cards seen before, so a warm read confirms each certificate
 * from the first chunk of its container instead of reading it whole. One key file per card in
 * $XDG_CACHE_HOME/cacmail/cards/, named by a hash of the card identity; only certificates and
 * the container prefixes are stored, never a PIN or key. A damaged file is ignored. */
#include "cm-pcsc-private.h"
#include <glib/gstdio.h>

struct _CmCardCache
{
  char *path;
  GKeyFile *kf;
  gboolean dirty;
};

CmCardCache *
cm_card_cache_load (const char *identity)
{
  CmCardCache *c = g_new0 (CmCardCache, 1);
  g_autofree char *hash = g_compute_checksum_for_string (G_CHECKSUM_SHA256, identity, -1);
  g_autofree char *name = g_strdup_printf ("%.32s.cache", hash);

  c->path = g_build_filename (g_get_user_cache_dir (), "cacmail", "cards", name, NULL);
  c->kf = g_key_file_new ();
  if (!g_key_file_load_from_file (c->kf, c->path, G_KEY_FILE_NONE, NULL))
    {
      g_key_file_unref (c->kf);
      c->kf = g_key_file_new ();
    }
  return c;
}

void
cm_card_cache_free (CmCardCache *c)
{
  if (c == NULL)
    return;
  g_free (c->path);
  g_key_file_unref (c->kf);
  g_free (c);
}

gboolean
cm_card_cache_has (CmCardCache *c, const char *tag)
{
  return g_key_file_has_key (c->kf, tag, "der", NULL)
         && g_key_file_has_key (c->kf, tag, "first", NULL);
}

GBytes *
cm_card_cache_match (CmCardCache *c, const char *tag, const guint8 *first, gsize len)
{
  g_autofree char *first_b64 = g_key_file_get_string (c->kf, tag, "first", NULL);
  g_autofree char *der_b64 = g_key_file_get_string (c->kf, tag, "der", NULL);
  g_autofree char *now = NULL;
  guchar *der;
  gsize der_len = 0;

  if (first_b64 == NULL || der_b64 == NULL || first == NULL)
    return NULL;
  now = g_base64_encode (first, len);
  if (strcmp (now, first_b64) != 0)
    return NULL;
  der = g_base64_decode (der_b64, &der_len);
  if (der_len == 0)
    {
      g_free (der);
      return NULL;
    }
  return g_bytes_new_take (der, der_len);
}

void
cm_card_cache_put (CmCardCache *c, const char *tag, const guint8 *first, gsize len, GBytes *der)
{
  g_autofree char *first_b64 = g_base64_encode (first, len);
  gsize der_len = 0;
  const guint8 *p = g_bytes_get_data (der, &der_len);
  g_autofree char *der_b64 = g_base64_encode (p, der_len);

  g_key_file_set_string (c->kf, tag, "first", first_b64);
  g_key_file_set_string (c->kf, tag, "der", der_b64);
  c->dirty = TRUE;
}

void
cm_card_cache_save (CmCardCache *c)
{
  g_autofree char *dir = g_path_get_dirname (c->path);
  g_autofree char *data = NULL;
  gsize len = 0;

  if (!c->dirty)
    return;
  data = g_key_file_to_data (c->kf, &len, NULL);
  /* A cache that cannot be written only costs APDUs next time: no error for the user. */
  if (g_mkdir_with_parents (dir, 0700) == 0)
    g_file_set_contents_full (c->path, data, (gssize)len, G_FILE_SET_CONTENTS_CONSISTENT, 0600,
                              NULL);
  c->dirty = FALSE;
}
