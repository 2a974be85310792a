/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cacmail-failwrite.so: an LD_PRELOAD fault injector for tests. Not a mock: the real NSS and
 * SQLite run; only the kernel's answer to some writes changes, as a full disk would.
 *
 *   CACMAIL_FAULT_FILE=FILE       the file whose writes may fail: its absolute path, or
 *                                 (without a slash) its base name
 *   CACMAIL_FAULT_AFTER=N         let N writes to it through, then fail
 *   CACMAIL_FAULT_COUNT=M         this many writes in a row (default 1: a transient error)
 *   CACMAIL_FAULT_MARK=PATH       created when a write was failed (so a test knows it fired)
 *
 * Failed writes return -1 with errno ENOSPC. pwrite64/pwrite/write are wrapped (SQLite's unix
 * VFS writes with pwrite64).
 *
 *   CACMAIL_FAULT_KILL=N          SIGKILL the process at its Nth step (0 the first), a step
 *                                 being a call that ends or makes durable one operation on any
 *                                 file: fsync, fdatasync, rename, unlink (SQLite commits with
 *                                 fdatasync and drops its journal with unlink; state files are
 *                                 renamed into place). The mark is created just before. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

static long seen, failed;

static int
is_target (int fd)
{
  const char *want = getenv ("CACMAIL_FAULT_FILE");
  char link[64], path[PATH_MAX];
  ssize_t n;
  const char *base;

  if (want == NULL || *want == '\0')
    return 0;
  snprintf (link, sizeof link, "/proc/self/fd/%d", fd);
  n = readlink (link, path, sizeof path - 1);
  if (n <= 0)
    return 0;
  path[n] = '\0';
  if (strchr (want, '/'))
    return strcmp (path, want) == 0;
  base = strrchr (path, '/');
  return strcmp (base ? base + 1 : path, want) == 0;
}

/* 1 when this write must fail (counted only for the target file). */
static int
must_fail (int fd)
{
  const char *after = getenv ("CACMAIL_FAULT_AFTER");
  const char *count = getenv ("CACMAIL_FAULT_COUNT");
  const char *mark = getenv ("CACMAIL_FAULT_MARK");
  long a = after ? atol (after) : 0, c = count ? atol (count) : 1;

  if (!is_target (fd))
    return 0;
  if (seen++ < a || failed >= c)
    return 0;
  failed++;
  if (mark && *mark)
    {
      int m = open (mark, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
      if (m >= 0)
        close (m);
    }
  errno = ENOSPC;
  return 1;
}

ssize_t
pwrite64 (int fd, const void *buf, size_t n, off64_t off)
{
  static ssize_t (*real) (int, const void *, size_t, off64_t);
  if (real == NULL)
    real = (ssize_t (*) (int, const void *, size_t, off64_t))dlsym (RTLD_NEXT, "pwrite64");
  return must_fail (fd) ? -1 : real (fd, buf, n, off);
}

ssize_t
pwrite (int fd, const void *buf, size_t n, off_t off)
{
  static ssize_t (*real) (int, const void *, size_t, off_t);
  if (real == NULL)
    real = (ssize_t (*) (int, const void *, size_t, off_t))dlsym (RTLD_NEXT, "pwrite");
  return must_fail (fd) ? -1 : real (fd, buf, n, off);
}

ssize_t
write (int fd, const void *buf, size_t n)
{
  static ssize_t (*real) (int, const void *, size_t);
  if (real == NULL)
    real = (ssize_t (*) (int, const void *, size_t))dlsym (RTLD_NEXT, "write");
  return must_fail (fd) ? -1 : real (fd, buf, n);
}

/* ---- CACMAIL_FAULT_KILL ---- */

static long steps;

static void
step (void)
{
  const char *kill_at = getenv ("CACMAIL_FAULT_KILL");
  const char *mark = getenv ("CACMAIL_FAULT_MARK");

  if (kill_at == NULL || *kill_at == '\0' || steps++ != atol (kill_at))
    return;
  if (mark && *mark)
    {
      int m = open (mark, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
      if (m >= 0)
        close (m);
    }
  raise (SIGKILL);
}

typedef int (*FdFn) (int);
typedef int (*RenameFn) (const char *, const char *);
typedef int (*UnlinkFn) (const char *);
typedef int (*UnlinkatFn) (int, const char *, int);

int
fsync (int fd)
{
  static FdFn real;
  if (real == NULL)
    real = (FdFn)dlsym (RTLD_NEXT, "fsync");
  step ();
  return real (fd);
}

int
fdatasync (int fd)
{
  static FdFn real;
  if (real == NULL)
    real = (FdFn)dlsym (RTLD_NEXT, "fdatasync");
  step ();
  return real (fd);
}

int
rename (const char *from, const char *to)
{
  static RenameFn real;
  if (real == NULL)
    real = (RenameFn)dlsym (RTLD_NEXT, "rename");
  step ();
  return real (from, to);
}

int
unlink (const char *path)
{
  static UnlinkFn real;
  if (real == NULL)
    real = (UnlinkFn)dlsym (RTLD_NEXT, "unlink");
  step ();
  return real (path);
}

int
unlinkat (int dfd, const char *path, int flags)
{
  static UnlinkatFn real;
  if (real == NULL)
    real = (UnlinkatFn)dlsym (RTLD_NEXT, "unlinkat");
  step ();
  return real (dfd, path, flags);
}
