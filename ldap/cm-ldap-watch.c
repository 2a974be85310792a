/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cm-ldap-watch.c: the deadline of each network step of one LDAP connection, and its
 * cancellation. libldap does not bound every step (an LDAPS handshake against a server that
 * never answers waits forever) and knows nothing of GCancellable: a watchdog thread shuts the
 * connection's socket down when a step's deadline passes or the caller's cancellable fires,
 * which ends any blocked read or poll in libldap or GnuTLS at once. The connection is then dead
 * and the caller gives it up. */
#include "cm-ldap-private.h"
#include <sys/socket.h>

struct _CmLdapWatch
{
  GMutex lock;
  GCond cond;
  GThread *thread;
  GCancellable *parent; /* the caller's, or NULL */
  gulong parent_id;
  GCancellable *step; /* cancelled when the step ends early (connect: GSocketClient) */
  int fd;             /* shut down when the step ends early; -1: none yet */
  gint64 deadline;    /* monotonic time; 0: no step running */
  gboolean cancellable_step;
  CmLdapWatchState fired;
  gboolean quit;
};

/* With the lock held: end the running step. */
static void
fire_locked (CmLdapWatch *w, CmLdapWatchState why)
{
  if (w->fired != CM_LDAP_WATCH_OK)
    return;
  w->fired = why;
  if (w->fd >= 0)
    shutdown (w->fd, SHUT_RDWR);
}

static gpointer
watch_thread (gpointer data)
{
  CmLdapWatch *w = data;
  gboolean cancel_step = FALSE;

  g_mutex_lock (&w->lock);
  while (!w->quit)
    {
      if (w->deadline == 0 || w->fired != CM_LDAP_WATCH_OK)
        g_cond_wait (&w->cond, &w->lock);
      else if (g_get_monotonic_time () >= w->deadline)
        {
          fire_locked (w, CM_LDAP_WATCH_TIMED_OUT);
          cancel_step = TRUE;
        }
      else
        g_cond_wait_until (&w->cond, &w->lock, w->deadline);
      if (cancel_step)
        {
          /* GCancellable runs its handlers in this thread: not under our lock */
          g_mutex_unlock (&w->lock);
          g_cancellable_cancel (w->step);
          g_mutex_lock (&w->lock);
          cancel_step = FALSE;
        }
    }
  g_mutex_unlock (&w->lock);
  return NULL;
}

static void
on_parent_cancelled (GCancellable *parent, gpointer data)
{
  CmLdapWatch *w = data;
  gboolean running;

  g_mutex_lock (&w->lock);
  running = w->deadline != 0 && w->cancellable_step;
  if (running)
    fire_locked (w, CM_LDAP_WATCH_CANCELLED);
  g_mutex_unlock (&w->lock);
  if (running)
    g_cancellable_cancel (w->step);
}

CmLdapWatch *
cm_ldap_watch_new (GCancellable *cancellable)
{
  CmLdapWatch *w = g_new0 (CmLdapWatch, 1);

  g_mutex_init (&w->lock);
  g_cond_init (&w->cond);
  w->fd = -1;
  w->step = g_cancellable_new ();
  w->thread = g_thread_new ("cm-ldap-watch", watch_thread, w);
  if (cancellable)
    {
      w->parent = g_object_ref (cancellable);
      /* runs at once if already cancelled: no step runs yet, so it only records nothing */
      w->parent_id = g_cancellable_connect (cancellable, G_CALLBACK (on_parent_cancelled), w, NULL);
    }
  return w;
}

void
cm_ldap_watch_set_fd (CmLdapWatch *w, int fd)
{
  g_mutex_lock (&w->lock);
  w->fd = fd;
  if (fd >= 0 && w->fired != CM_LDAP_WATCH_OK)
    shutdown (fd, SHUT_RDWR);
  g_mutex_unlock (&w->lock);
}

GCancellable *
cm_ldap_watch_begin (CmLdapWatch *w, int seconds, gboolean cancellable_step, GError **error)
{
  if (g_cancellable_set_error_if_cancelled (w->parent, error))
    return NULL;
  g_mutex_lock (&w->lock);
  if (w->fired != CM_LDAP_WATCH_OK)
    {
      /* a step that ended early left the connection dead */
      g_mutex_unlock (&w->lock);
      g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_CONNECT,
                   "the LDAP connection was given up after a time-out: run cacmail republish "
                   "again");
      return NULL;
    }
  w->deadline = g_get_monotonic_time () + (gint64)seconds * G_USEC_PER_SEC;
  w->cancellable_step = cancellable_step;
  g_cond_signal (&w->cond);
  g_mutex_unlock (&w->lock);
  /* cancelled between the check above and now: act as if it came during the step */
  if (cancellable_step && g_cancellable_is_cancelled (w->parent))
    on_parent_cancelled (w->parent, w);
  return w->step;
}

CmLdapWatchState
cm_ldap_watch_end (CmLdapWatch *w)
{
  CmLdapWatchState state;

  g_mutex_lock (&w->lock);
  state = w->fired;
  w->deadline = 0;
  g_mutex_unlock (&w->lock);
  return state;
}

void
cm_ldap_watch_free (CmLdapWatch *w)
{
  if (w == NULL)
    return;
  if (w->parent)
    {
      g_cancellable_disconnect (w->parent, w->parent_id); /* waits for a running handler */
      g_object_unref (w->parent);
    }
  g_mutex_lock (&w->lock);
  w->quit = TRUE;
  w->fd = -1; /* the caller closes it next: never shut down a number the system reuses */
  g_cond_signal (&w->cond);
  g_mutex_unlock (&w->lock);
  g_thread_join (w->thread);
  g_object_unref (w->step);
  g_mutex_clear (&w->lock);
  g_cond_clear (&w->cond);
  g_free (w);
}
