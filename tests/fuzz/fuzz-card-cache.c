/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* fuzz-card-cache.c: the card cache file ($XDG_CACHE_HOME/cacmail/cards/HASH.cache, a key
 * file of base64 certificates and container first chunks) as cm-card-cache.c loads it, then
 * each cached container confirmed from a first chunk equal to the stored one (the only way
 * the stored certificate is believed), then a put and a save. */
#include "cm-pcsc-private.h"
#include "fuzz.h"
#include <glib/gstdio.h>

#define IDENTITY "fuzz-card/-"

static char *cache_file;

static gboolean
init (void)
{
  if (cache_file == NULL)
    {
      g_autofree char *cache = g_build_filename (fuzz_tmpdir (), "cache", NULL);
      g_autofree char *cards = g_build_filename (cache, "cacmail", "cards", NULL);
      g_autofree char *hash = g_compute_checksum_for_string (G_CHECKSUM_SHA256, IDENTITY, -1);
      g_autofree char *name = g_strdup_printf ("%.32s.cache", hash);

      /* before anything asks GLib for the cache folder: it is read once */
      g_setenv ("XDG_CACHE_HOME", cache, TRUE);
      if (g_mkdir_with_parents (cards, 0700) != 0)
        return FALSE;
      cache_file = g_build_filename (cards, name, NULL);
    }
  return cm_init (NULL);
}

/* The chunk the card would send if it were the card cached under @tag: the stored one. */
static GBytes *
stored_first (const uint8_t *data, size_t size, const char *tag)
{
  g_autoptr (GKeyFile) kf = g_key_file_new ();
  g_autofree char *b64 = NULL;
  gsize len = 0;
  guchar *p;

  if (!g_key_file_load_from_data (kf, (const char *)data, size, G_KEY_FILE_NONE, NULL)
      || (b64 = g_key_file_get_string (kf, tag, "first", NULL)) == NULL)
    return NULL;
  p = g_base64_decode (b64, &len);
  return g_bytes_new_take (p, len);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  static const char *const tags[] = { "5fc105", "5fc10a", "5fc10b", "5fc101" };
  static const guint8 chunk[] = { 0x53, 0x04, 0x70, 0x02, 0x30, 0x00 };
  g_autoptr (CmCardCache) cache = NULL;

  if (!init ())
    return 0;
  fuzz_write_file (cache_file, data, size);
  cache = cm_card_cache_load (IDENTITY);
  for (gsize i = 0; i < G_N_ELEMENTS (tags); i++)
    {
      g_autoptr (GBytes) first = stored_first (data, size, tags[i]);
      g_autoptr (GBytes) der = NULL;
      gsize len = 0;
      const guint8 *p;

      if (!cm_card_cache_has (cache, tags[i]) || first == NULL)
        continue;
      p = g_bytes_get_data (first, &len);
      der = cm_card_cache_match (cache, tags[i], p, len);
      if (der == NULL)
        {
          g_autoptr (GBytes) fresh = g_bytes_new_static (chunk + 4, 2);
          cm_card_cache_put (cache, tags[i], chunk, sizeof chunk, fresh);
        }
    }
  cm_card_cache_save (cache);
  return 0;
}
