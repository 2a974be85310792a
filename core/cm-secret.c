/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cm-secret.c: the one way cacmail reads a secret (PIN, LDAP password, PKCS#12 password), from
 * a file or typed: checked like an SSH key file, read with read(2) into our own buffer (no stdio
 * buffer keeps a copy), only the first line, wiped when freed. */
#include "cm-private.h"
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

gboolean
cm_write_all (int fd, const void *data, gsize len)
{
  const char *p = data;

  while (len > 0)
    {
      ssize_t n = write (fd, p, len);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        {
          if (n == 0)
            errno = EIO;
          return FALSE;
        }
      p += n;
      len -= (gsize)n;
    }
  return TRUE;
}

void
cm_secret_free (char *secret)
{
  if (secret == NULL)
    return;
  explicit_bzero (secret, strlen (secret));
  g_free (secret);
}

static const char *
file_kind (mode_t mode)
{
  if (S_ISDIR (mode))
    return "a directory";
  if (S_ISFIFO (mode))
    return "a FIFO";
  if (S_ISCHR (mode) || S_ISBLK (mode))
    return "a device";
  if (S_ISSOCK (mode))
    return "a socket";
  return "not a regular file";
}

/* Open @path without blocking (a FIFO would wait for a writer) and check it. Returns the fd or
 * -1 with @error. */
static int
open_checked (const char *path, const char *what, GError **error)
{
  struct stat st;
  int fd = open (path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);

  if (fd < 0)
    {
      int e = errno;
      g_set_error (error, CM_ERROR, e == ENOENT ? CM_ERROR_NOT_FOUND : CM_ERROR_BAD_INPUT,
                   "cannot read the %s %s (%s): check the path and that it is yours", what, path,
                   g_strerror (e));
      return -1;
    }
  if (fstat (fd, &st) != 0 || !S_ISREG (st.st_mode))
    g_set_error (error, CM_ERROR, CM_ERROR_BAD_INPUT,
                 "the %s %s is %s: put the secret in a regular file (chmod 600)", what, path,
                 file_kind (st.st_mode));
  else if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0)
    g_set_error (error, CM_ERROR, CM_ERROR_UNSAFE,
                 "the %s %s can be read or changed by other users (mode %04o): run chmod 600 %s",
                 what, path, (unsigned)(st.st_mode & 07777), path);
  else if (st.st_size > CM_SECRET_FILE_MAX)
    g_set_error (error, CM_ERROR, CM_ERROR_BAD_INPUT,
                 "the %s %s is %lld bytes, too big for a secret (at most %d): write the secret "
                 "alone on its first line",
                 what, path, (long long)st.st_size, CM_SECRET_FILE_MAX);
  else
    return fd;
  close (fd);
  return -1;
}

/* Drop a trailing CR; refuse a NUL inside and, unless allowed, an empty line. */
static gboolean
finish_line (char *line, gsize *len, const char *what, const char *path, CmSecretFlags flags,
             GError **error)
{
  if (*len > 0 && line[*len - 1] == '\r')
    line[--*len] = '\0';
  if (strlen (line) != *len)
    {
      g_set_error (error, CM_ERROR, CM_ERROR_BAD_INPUT,
                   "the %s%s%s holds a NUL byte: write the secret as text", what, path ? " " : "",
                   path ? path : "");
      return FALSE;
    }
  if (*len == 0 && !(flags & CM_SECRET_ALLOW_EMPTY))
    {
      g_set_error (error, CM_ERROR, CM_ERROR_BAD_INPUT,
                   "the %s%s%s is empty: write the secret on its first line", what, path ? " " : "",
                   path ? path : "");
      return FALSE;
    }
  return TRUE;
}

char *
cm_secret_read_file (const char *path, const char *what, CmSecretFlags flags, GError **error)
{
  int fd = open_checked (path, what, error);
  char *buf, *nl;
  gsize len = 0;
  ssize_t n = 0;

  if (fd < 0)
    return NULL;
  /* the file was checked to hold at most CM_SECRET_FILE_MAX bytes: one more read tells if it
   * grew since */
  buf = g_malloc0 (CM_SECRET_FILE_MAX + 2);
  while (
    len <= CM_SECRET_FILE_MAX && memchr (buf, '\n', len) == NULL
    && ((n = read (fd, buf + len, CM_SECRET_FILE_MAX + 1 - len)) > 0 || (n < 0 && errno == EINTR)))
    len += n > 0 ? (gsize)n : 0;
  close (fd);
  nl = memchr (buf, '\n', len);
  if (n < 0 || (nl == NULL && len > CM_SECRET_FILE_MAX))
    {
      g_set_error (error, CM_ERROR, CM_ERROR_BAD_INPUT,
                   n < 0 ? "cannot read the %s %s: check the file"
                         : "the %s %s grew past %d bytes while it was read: write the secret "
                           "alone on its first line",
                   what, path, CM_SECRET_FILE_MAX);
      cm_secret_free_sized (buf, CM_SECRET_FILE_MAX + 2);
      return NULL;
    }
  if (nl)
    {
      explicit_bzero (nl, len - (gsize)(nl - buf)); /* only the first line is the secret */
      len = (gsize)(nl - buf);
    }
  if (!finish_line (buf, &len, what, path, flags, error))
    {
      cm_secret_free_sized (buf, CM_SECRET_FILE_MAX + 2);
      return NULL;
    }
  return buf;
}

void
cm_secret_free_sized (char *secret, gsize size)
{
  if (secret == NULL)
    return;
  explicit_bzero (secret, size);
  g_free (secret);
}

/* Wait until @fd can be read or @cancellable is cancelled. */
static gboolean
wait_readable (int fd, GCancellable *cancellable, GError **error)
{
  GPollFD fds[2] = { { fd, G_IO_IN | G_IO_HUP | G_IO_ERR, 0 } };
  int n = 1;

  if (cancellable && g_cancellable_make_pollfd (cancellable, &fds[1]))
    n = 2;
  while (g_poll (fds, n, -1) < 0 && errno == EINTR)
    if (g_cancellable_is_cancelled (cancellable))
      break;
  if (n == 2)
    g_cancellable_release_fd (cancellable);
  return !g_cancellable_set_error_if_cancelled (cancellable, error);
}

/* One line from @fd, one byte per read(2): nothing after the line is consumed and no buffer
 * but @buf ever holds the secret. Returns its length or -1 with @error. */
static gssize
read_line_raw (int fd, char *buf, const char *what, GCancellable *cancellable, GError **error)
{
  gsize len = 0;

  for (;;)
    {
      char ch;
      ssize_t n;

      if (!wait_readable (fd, cancellable, error))
        return -1;
      n = read (fd, &ch, 1);
      if (n < 0 && (errno == EINTR || errno == EAGAIN))
        continue;
      if (n < 0)
        {
          g_set_error (error, CM_ERROR, CM_ERROR_FAILED, "cannot read the %s (%s): type it again",
                       what, g_strerror (errno));
          return -1;
        }
      if (n == 0 && len == 0)
        {
          g_set_error (error, CM_ERROR, CM_ERROR_BAD_INPUT,
                       "no %s was given (end of input): type it, or give it in a file", what);
          return -1;
        }
      if (n == 0 || ch == '\n')
        return (gssize)len;
      if (len >= CM_SECRET_LINE_MAX)
        {
          g_set_error (error, CM_ERROR, CM_ERROR_BAD_INPUT,
                       "the %s is longer than %d characters: check what you typed", what,
                       CM_SECRET_LINE_MAX);
          return -1;
        }
      buf[len++] = ch;
      ch = 0;
    }
}

char *
cm_secret_read_line (int fd, int prompt_fd, const char *prompt, const char *what,
                     CmSecretFlags flags, GCancellable *cancellable, GError **error)
{
  struct termios old, quiet;
  gboolean tty = isatty (fd) && tcgetattr (fd, &old) == 0;
  char *buf = g_malloc0 (CM_SECRET_LINE_MAX + 1);
  gssize len;
  gsize ulen;

  if (tty)
    {
      /* echo off BEFORE the prompt shows: what is typed after it is kept */
      quiet = old;
      quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
      tcsetattr (fd, TCSAFLUSH, &quiet);
    }
  if (prompt && prompt_fd >= 0 && write (prompt_fd, prompt, strlen (prompt)) < 0)
    g_debug ("cannot write the prompt: %s", g_strerror (errno));
  len = read_line_raw (fd, buf, what, cancellable, error);
  if (tty)
    {
      tcsetattr (fd, TCSAFLUSH, &old);
      if (prompt_fd >= 0 && write (prompt_fd, "\n", 1) < 0)
        g_debug ("cannot end the prompt line: %s", g_strerror (errno));
    }
  ulen = len < 0 ? 0 : (gsize)len;
  if (len < 0 || !finish_line (buf, &ulen, what, NULL, flags, error))
    {
      cm_secret_free_sized (buf, CM_SECRET_LINE_MAX + 1);
      return NULL;
    }
  return buf;
}
