/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cm-card-cache.c: public data of cards seen before, so a warm read confirms each certificate
 * from the first chunk of its container instead of reading it whole. One key file per card in
 * $XDG_CACHE_HOME/cacmail/cards/, named by a hash of the card identity; only certificates and
 * the container prefixes are stored, never a PIN or key.
 *
 * Nothing in the file is believed on its own word: an entry is used only when the card's
 * first chunk is byte-equal to the stored one AND the stored certificate agrees with that
 * chunk (the certificate's first bytes, and its length where the chunk tells it). A file that
 * is not ours, is writable by group or others, sits in such a folder, is over the size cap or
 * does not parse is ignored: the card is read in full and the file rewritten (0600, in a 0700
 * folder). */
#include "cm-pcsc-private.h"
#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <sys/stat.h>
#include <unistd.h>

/* 4 cached containers of at most 64 KiB, in base64, with their first chunks. */
#define CM_CARD_CACHE_MAX (512 * 1024)

struct _CmCardCache
{
  char *path;
  GKeyFile *kf;
  gboolean dirty;
};

/* A folder or file only we can write. */
static gboolean
ours (const struct stat *st)
{
  return st->st_uid == getuid () && (st->st_mode & (S_IWGRP | S_IWOTH)) == 0;
}

/* The file's bytes if it may be trusted (ours, regular, not group/other writable, under the
 * cap, in a folder only we can write), else NULL. */
static char *
read_trusted (const char *path, gsize *len)
{
  g_autofree char *dir = g_path_get_dirname (path);
  g_autofree char *data = NULL;
  struct stat st;
  gsize got = 0;
  int fd;

  if (lstat (dir, &st) != 0 || !S_ISDIR (st.st_mode) || !ours (&st))
    return NULL;
  if ((fd = open (path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0)
    return NULL;
  if (fstat (fd, &st) != 0 || !S_ISREG (st.st_mode) || !ours (&st)
      || st.st_size > CM_CARD_CACHE_MAX)
    {
      close (fd);
      return NULL;
    }
  data = g_malloc ((gsize)st.st_size + 1);
  while (got < (gsize)st.st_size)
    {
      ssize_t n = read (fd, data + got, (gsize)st.st_size - got);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        break;
      got += (gsize)n;
    }
  close (fd);
  if (got != (gsize)st.st_size)
    return NULL;
  data[got] = '\0';
  *len = got;
  return g_steal_pointer (&data);
}

CmCardCache *
cm_card_cache_load (const char *identity)
{
  CmCardCache *c = g_new0 (CmCardCache, 1);
  g_autofree char *hash = g_compute_checksum_for_string (G_CHECKSUM_SHA256, identity, -1);
  g_autofree char *name = g_strdup_printf ("%.32s.cache", hash);
  g_autofree char *data = NULL;
  gsize len = 0;

  c->path = g_build_filename (g_get_user_cache_dir (), "cacmail", "cards", name, NULL);
  c->kf = g_key_file_new ();
  if ((data = read_trusted (c->path, &len)) == NULL
      || !g_key_file_load_from_data (c->kf, data, len, G_KEY_FILE_NONE, NULL))
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

/* A stored base64 value, decoded; NULL when missing, empty or over 64 KiB. */
static GBytes *
get_bytes (CmCardCache *c, const char *tag, const char *key)
{
  g_autofree char *b64 = g_key_file_get_string (c->kf, tag, key, NULL);
  guchar *p;
  gsize len = 0;

  if (b64 == NULL || strlen (b64) > CM_MAX_OBJECT * 4 / 3 + 4)
    return NULL;
  p = g_base64_decode (b64, &len);
  if (len == 0)
    {
      g_free (p);
      return NULL;
    }
  return g_bytes_new_take (p, len);
}

/* The outline of an X.509 certificate: SEQUENCE { SEQUENCE, SEQUENCE, BIT STRING }, filling
 * exactly @len bytes. */
static gboolean
looks_like_cert (const guint8 *p, gsize len)
{
  CmDer cur = cm_der_init (p, len), body, v;

  return cm_der_expect (&cur, 0x30, &body) && cur.len == 0 && cm_der_expect (&body, 0x30, &v)
         && cm_der_expect (&body, 0x30, &v) && cm_der_expect (&body, 0x03, &v) && body.len == 0;
}

/* Read a BER-TLV header (1-byte tag, definite length) whose contents may be cut short by the
 * end of the chunk (cm_ber_header): the value's declared length and where it starts. */
static gboolean
tlv_header (const guint8 **p, const guint8 *end, guint8 tag, gsize *len)
{
  CmBerHeader h;

  if (!cm_ber_header (*p, (gsize)(end - *p), CM_BER_DEFINITE, &h) || h.id != tag)
    return FALSE;
  *p += h.hdr_len;
  *len = h.len;
  return TRUE;
}

/* Inflate what there is of a compressed certificate (the rest of the stream is not in the
 * chunk) and compare it with the stored certificate's first bytes. */
static gboolean
inflated_prefix_matches (const guint8 *p, gsize len, const guint8 *der, gsize der_len)
{
  z_stream zs = { 0 };
  g_autofree guint8 *out = g_malloc (der_len);
  gsize produced;
  int zr;

  if (inflateInit2 (&zs, 15 + 32) != Z_OK)
    return FALSE;
  zs.next_in = (Bytef *)p;
  zs.avail_in = (uInt)len;
  zs.next_out = out;
  zs.avail_out = (uInt)der_len;
  zr = inflate (&zs, Z_SYNC_FLUSH);
  produced = der_len - zs.avail_out;
  inflateEnd (&zs);
  if (zr != Z_OK && zr != Z_BUF_ERROR && zr != Z_STREAM_END)
    return FALSE;
  if (zr == Z_STREAM_END && produced != der_len)
    return FALSE;
  return produced > 0 && memcmp (out, der, produced) == 0;
}

/* Does the stored certificate agree with the container's first chunk as the card sent it? */
static gboolean
der_agrees_with_chunk (const guint8 *chunk, gsize len, const guint8 *der, gsize der_len)
{
  const guint8 *p = chunk, *end = chunk + len;
  gsize outer, cert_len, avail;

  if (!tlv_header (&p, end, 0x53, &outer) || !tlv_header (&p, end, 0x70, &cert_len) || cert_len == 0
      || cert_len > outer)
    return FALSE;
  avail = MIN ((gsize)(end - p), cert_len);
  if (avail == 0)
    return FALSE;
  if (p[0] == 0x30) /* stored as is: same length, same first bytes */
    return cert_len == der_len && memcmp (p, der, avail) == 0;
  return inflated_prefix_matches (p, avail, der, der_len); /* CertInfo 01: gzip */
}

GBytes *
cm_card_cache_match (CmCardCache *c, const char *tag, const guint8 *first, gsize len)
{
  g_autoptr (GBytes) stored_first = get_bytes (c, tag, "first");
  g_autoptr (GBytes) der = get_bytes (c, tag, "der");
  gsize der_len = 0, first_len = 0;
  const guint8 *d, *f;

  if (stored_first == NULL || der == NULL || first == NULL || len == 0)
    return NULL;
  f = g_bytes_get_data (stored_first, &first_len);
  d = g_bytes_get_data (der, &der_len);
  if (first_len != len || memcmp (f, first, len) != 0 || !looks_like_cert (d, der_len)
      || !der_agrees_with_chunk (first, len, d, der_len))
    return NULL;
  return g_steal_pointer (&der);
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

/* The cards folder, made 0700 if it is ours and more open; FALSE if it is not ours. */
static gboolean
prepare_dir (const char *dir)
{
  struct stat st;

  if (g_mkdir_with_parents (dir, 0700) != 0 || lstat (dir, &st) != 0 || !S_ISDIR (st.st_mode)
      || st.st_uid != getuid ())
    return FALSE;
  return (st.st_mode & 077) == 0 || chmod (dir, 0700) == 0;
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
  /* A cache that cannot be written only costs APDUs next time: no error for the user. The
   * file is replaced (a new file, 0600), never written through, whoever owned the old one. */
  if (len <= CM_CARD_CACHE_MAX && prepare_dir (dir))
    g_file_set_contents_full (c->path, data, (gssize)len, G_FILE_SET_CONTENTS_CONSISTENT, 0600,
                              NULL);
  c->dirty = FALSE;
}
