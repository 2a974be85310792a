/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cm-native-frame.c: native messaging frames, a 4-byte length in native byte order followed by
 * that many bytes of UTF-8 JSON. */
#include "cm-native.h"
#include "cm-private.h"
#include <errno.h>
#include <string.h>
#include <unistd.h>

void
cm_native_wipe_free (char *buf, gssize len)
{
  if (buf == NULL)
    return;
  explicit_bzero (buf, len < 0 ? strlen (buf) : (gsize)len);
  g_free (buf);
}

/* Read exactly @len bytes into @buf (NULL: read and drop them). Returns the bytes read before
 * end of stream (< @len at the end), or -1 with @error. */
static gssize
read_full (int fd, char *buf, gsize len, GError **error)
{
  char sink[65536];
  gsize got = 0;

  while (got < len)
    {
      gsize want = buf ? len - got : MIN (len - got, sizeof sink);
      ssize_t n = read (fd, buf ? buf + got : sink, want);

      if (n == 0)
        break;
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        {
          int e = errno;
          g_set_error (error, G_IO_ERROR, g_io_error_from_errno (e),
                       "cannot read from Thunderbird: %s", g_strerror (e));
          return -1;
        }
      got += (gsize)n;
    }
  explicit_bzero (sink, sizeof sink);
  return (gssize)got;
}

CmNativeFrame
cm_native_read_frame (int fd, char **payload, guint32 *size, GError **error)
{
  guint32 len = 0;
  gssize n = read_full (fd, (char *)&len, sizeof len, error);
  char *buf;

  *payload = NULL;
  *size = 0;
  if (n < 0)
    return CM_NATIVE_FRAME_IO;
  if (n == 0)
    return CM_NATIVE_FRAME_EOF;
  if (n < (gssize)sizeof len)
    return CM_NATIVE_FRAME_TRUNCATED;
  *size = len;
  if (len > CM_NATIVE_MAX_MESSAGE)
    {
      n = read_full (fd, NULL, len, error);
      if (n < 0)
        return CM_NATIVE_FRAME_IO;
      return n < (gssize)len ? CM_NATIVE_FRAME_TRUNCATED : CM_NATIVE_FRAME_TOO_LARGE;
    }
  buf = g_malloc (len + 1);
  n = read_full (fd, buf, len, error);
  if (n < 0 || n < (gssize)len)
    {
      cm_native_wipe_free (buf, len);
      return n < 0 ? CM_NATIVE_FRAME_IO : CM_NATIVE_FRAME_TRUNCATED;
    }
  buf[len] = '\0';
  *payload = buf;
  return CM_NATIVE_FRAME_OK;
}

static gboolean
write_full (int fd, const char *buf, gsize len, GError **error)
{
  int e;

  if (cm_write_all (fd, buf, len))
    return TRUE;
  e = errno;
  g_set_error (error, G_IO_ERROR, g_io_error_from_errno (e), "cannot write to Thunderbird: %s",
               g_strerror (e));
  return FALSE;
}

gboolean
cm_native_write_frame (int fd, const char *data, gsize len, GError **error)
{
  guint32 n = (guint32)len;

  g_return_val_if_fail (len <= CM_NATIVE_MAX_MESSAGE, FALSE);
  return write_full (fd, (const char *)&n, sizeof n, error) && write_full (fd, data, len, error);
}
