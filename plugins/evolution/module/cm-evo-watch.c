/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cm-evo-watch.c: CmEvoWatch, the card watcher. A thread of its own waits on pcscd for a card
 * to be inserted or removed (cm_pcsc_wait_change_sync: no card access while waiting). After a
 * change has settled, a worker re-reads the cards and re-checks every identity's S/MIME
 * settings: identities whose right certificates are on an inserted card are pointed at it
 * (through the registry, with a backup for undo), and an EAlert says what changed and which
 * identities now reach a card that is not theirs. That matters because two persona cards of
 * one person give the same NSS nicknames (OpenSC names the token after the first cert's CN)
 * and Evolution finds certificates by nickname only. */
#include "cm-evo-module.h"

/* Let pcscd and NSS see the whole change (insert, power-up, token) before reading. */
#define SETTLE_MS 1500
/* At most one wait per this long, in case pcscd reports changes in a loop. */
#define MIN_WAIT_GAP_MS 250
/* pcscd not running: try again after this long, doubling up to the maximum. */
#define RETRY_FIRST_S 2
#define RETRY_MAX_S 60

struct _CmEvoWatch
{
  GObject parent;
  EShell *shell; /* weak pointer */
  GThread *thread;
  GCancellable *cancellable; /* stops the thread and a running check */
  guint settle_id;
  gboolean checking; /* a re-check runs */
  gboolean pending;  /* a change came while it ran */
  GHashTable *last;  /* reader name -> card summary as last seen ("" empty, "?" unread) */
};

enum
{
  SIGNAL_CHANGED,
  N_SIGNALS
};
static guint signals[N_SIGNALS];
static CmEvoWatch *default_watch; /* weak: the one made by the shell extension */

G_DEFINE_DYNAMIC_TYPE (CmEvoWatch, cm_evo_watch, G_TYPE_OBJECT)

/* ---- the waiting thread ---- */

/* What the thread shares with the main thread; freed by whoever drops the last reference. */
typedef struct
{
  gint refs;
  GWeakRef watch;
  GCancellable *cancellable;
} Link;

typedef struct
{
  Link *link;
  GPtrArray *present; /* CmReaderInfo* of the first listing, or NULL for a change */
} Post;

static Link *
link_ref (Link *l)
{
  g_atomic_int_inc (&l->refs);
  return l;
}

static void
link_unref (Link *l)
{
  if (!g_atomic_int_dec_and_test (&l->refs))
    return;
  g_weak_ref_clear (&l->watch);
  g_object_unref (l->cancellable);
  g_free (l);
}

static void watch_changed_in_main (CmEvoWatch *w);

static gboolean
post_in_main (gpointer data)
{
  Post *p = data;
  CmEvoWatch *w = g_weak_ref_get (&p->link->watch);

  if (w && p->present)
    for (guint i = 0; i < p->present->len; i++)
      {
        CmReaderInfo *r = g_ptr_array_index (p->present, i);
        if (!g_hash_table_contains (w->last, r->name))
          g_hash_table_insert (w->last, g_strdup (r->name), g_strdup (r->card_present ? "?" : ""));
      }
  else if (w && !g_cancellable_is_cancelled (p->link->cancellable))
    watch_changed_in_main (w);
  g_clear_object (&w);
  g_clear_pointer (&p->present, g_ptr_array_unref);
  link_unref (p->link);
  g_free (p);
  return G_SOURCE_REMOVE;
}

static void
post (Link *link, GPtrArray *present)
{
  Post *p = g_new0 (Post, 1);

  p->link = link_ref (link);
  p->present = present;
  g_main_context_invoke (NULL, post_in_main, p);
}

/* Sleep @ms, or less when cancelled. */
static void
nap (GCancellable *cancellable, guint ms)
{
  for (guint slept = 0; slept < ms && !g_cancellable_is_cancelled (cancellable); slept += 50)
    g_usleep (50 * 1000);
}

static gpointer
watch_thread (gpointer data)
{
  Link *link = data;
  guint retry = RETRY_FIRST_S;
  gboolean listed = FALSE;

  while (!g_cancellable_is_cancelled (link->cancellable))
    {
      g_autoptr (GError) error = NULL;

      /* which readers hold a card now (pcscd's view; the cards are not read) */
      if (!listed)
        {
          GPtrArray *present = cm_pcsc_list_readers_sync (link->cancellable, NULL);
          if (present)
            {
              post (link, present);
              listed = TRUE;
            }
        }
      if (cm_pcsc_wait_change_sync (0, link->cancellable, &error))
        {
          retry = RETRY_FIRST_S;
          post (link, NULL);
          nap (link->cancellable, MIN_WAIT_GAP_MS);
        }
      else if (error && !g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        {
          g_debug ("waiting for card changes: %s; trying again in %u s", error->message, retry);
          nap (link->cancellable, retry * 1000);
          retry = MIN (retry * 2, RETRY_MAX_S);
        }
    }
  link_unref (link);
  return NULL;
}

/* ---- the re-check, in a worker ---- */

typedef struct
{
  GHashTable *now;     /* reader -> card summary ("" empty) */
  GPtrArray *fixed;    /* char* addresses pointed at an inserted card */
  GPtrArray *warnings; /* char* one per identity still stale */
  gboolean offer_load; /* a card is in a reader that Evolution cannot see: offer to load it */
} Check;

static void
check_free (Check *c)
{
  g_hash_table_unref (c->now);
  g_ptr_array_unref (c->fixed);
  g_ptr_array_unref (c->warnings);
  g_free (c);
}

static gboolean
on_inserted_card (CmEvoState *st, CmCert *c)
{
  return c && st->inserted
         && g_ptr_array_find_with_equal_func (st->inserted, cm_cert_get_sha256 (c), g_str_equal,
                                              NULL);
}

/* The identity's reasons in the page's words; *@offer_load set when one is that the card's
 * certificates are not visible. Caller frees. */
static char *
reasons_text (CmEvoIdentity *id, gboolean *offer_load)
{
  const char *const *codes = cm_evo_identity_get_reasons (id);
  const char *const *msgs = cm_evo_identity_get_messages (id);
  GString *out = g_string_new (NULL);

  for (guint i = 0; codes[i]; i++)
    {
      g_string_append_printf (out, "%s%s", i ? "; " : "", cm_evo_reason_text (codes[i], msgs[i]));
      if (strcmp (codes[i], "picked-cert-not-in-nss") == 0)
        *offer_load = TRUE;
    }
  return g_string_free (out, FALSE);
}

static void
check_thread (GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) to_fix = g_ptr_array_new ();
  CmEvoState *st = cm_evo_state_load_sync (TRUE, cancellable, &error);
  Check *c;

  if (st == NULL)
    {
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  c = g_new0 (Check, 1);
  c->now = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  c->fixed = g_ptr_array_new_with_free_func (g_free);
  c->warnings = g_ptr_array_new_with_free_func (g_free);
  for (guint i = 0; st->readers && i < st->readers->len; i++)
    {
      CmEvoReader *r = g_ptr_array_index (st->readers, i);
      char *summary = r->card    ? cm_evo_card_summary (st->inv, r->card)
                      : r->error ? g_strdup_printf ("a card that cannot be read (%s)", r->error)
                                 : g_strdup ("");
      g_hash_table_insert (c->now, g_strdup (r->name), summary);
    }
  for (guint i = 0; i < st->identities->len; i++)
    {
      CmEvoIdentity *id = g_ptr_array_index (st->identities, i);
      g_autoptr (CmPicks) picks = NULL;
      g_autofree char *why = NULL;

      if (!cm_evo_identity_is_stale (id))
        continue;
      picks = cm_select_for_email (st->inv, cm_evo_identity_get_address (id), st->at, NULL);
      if (cm_evo_identity_can_fix (id)
          && (on_inserted_card (st, cm_picks_get_signing (picks))
              || on_inserted_card (st, cm_picks_get_encryption (picks))))
        {
          g_ptr_array_add (to_fix, id);
          g_ptr_array_add (c->fixed, g_strdup (cm_evo_identity_get_address (id)));
          continue;
        }
      why = reasons_text (id, &c->offer_load);
      g_ptr_array_add (c->warnings,
                       g_strdup_printf ("%s: %s.", cm_evo_identity_get_address (id), why));
    }
  if (st->inserted && st->card_module_loaded == NULL)
    c->offer_load = TRUE;
  if (to_fix->len && st->reg && cm_evo_fix_locked (st->reg, to_fix, cancellable, &error) < 0)
    {
      g_ptr_array_set_size (c->fixed, 0);
      g_ptr_array_add (c->warnings, g_strdup_printf ("The S/MIME settings could not be "
                                                     "changed: %s",
                                                     error->message));
    }
  cm_evo_state_free (st);
  g_task_return_pointer (task, c, (GDestroyNotify)check_free);
}

/* ---- in the main thread ---- */

static void make_available (GtkAction *action, CmEvoWatch *w);

static void
submit (CmEvoWatch *w, GtkMessageType type, const char *primary, const char *secondary,
        guint timeout_s, gboolean offer_load)
{
  EAlert *alert = cm_evo_alert_new (type, primary, secondary);

  if (offer_load)
    {
      /* the page's live button, here too: no restart, no terminal */
      GtkAction *action
        = gtk_action_new ("cacmail-make-available", "_Make Card Certificates Available",
                          "Load the card's PKCS#11 module into Evolution now and keep it for "
                          "the next start",
                          NULL);
      g_signal_connect_object (action, "activate", G_CALLBACK (make_available), w, 0);
      e_alert_add_action (alert, action, GTK_RESPONSE_APPLY, FALSE);
      g_object_unref (action);
    }
  if (timeout_s)
    e_alert_start_timer (alert, timeout_s);
  if (w->shell)
    e_shell_submit_alert (w->shell, alert);
  g_object_unref (alert);
}

static void
announce (CmEvoWatch *w, Check *c)
{
  g_autoptr (GString) inserted = g_string_new (NULL), removed = g_string_new (NULL);
  g_autoptr (GString) text = g_string_new (NULL);
  GHashTableIter it;
  gpointer key, value;
  g_autofree char *primary = NULL;

  g_hash_table_iter_init (&it, c->now);
  while (g_hash_table_iter_next (&it, &key, &value))
    {
      const char *before = g_hash_table_lookup (w->last, key);
      if (*(char *)value && g_strcmp0 (before, "?") != 0 && g_strcmp0 (before, value) != 0)
        g_string_append_printf (inserted, "%s%s", inserted->len ? "; " : "", (char *)value);
      else if (!*(char *)value && before && *before)
        g_string_append_printf (removed, "%s%s%s", removed->len ? "; " : "",
                                strcmp (before, "?") ? before : "the card in ",
                                strcmp (before, "?") ? "" : (char *)key);
    }
  for (guint i = 0; i < c->fixed->len; i++)
    g_string_append_printf (text,
                            "%sMail from %s is now signed and encrypted with the "
                            "inserted card: its S/MIME settings point at it (Undo Last "
                            "Fix on the Smart Card page of the Preferences restores them).",
                            text->len ? "\n" : "", (char *)g_ptr_array_index (c->fixed, i));
  for (guint i = 0; i < c->warnings->len; i++)
    g_string_append_printf (text, "%s%s", text->len ? "\n" : "",
                            (char *)g_ptr_array_index (c->warnings, i));
  if (inserted->len && removed->len)
    {
      g_autofree char *gone
        = g_strdup_printf ("Removed: %s.%s", removed->str, text->len ? "\n" : "");
      g_string_prepend (text, gone);
    }
  if (inserted->len)
    primary = g_strdup_printf ("Smart card inserted: %s", inserted->str);
  else if (removed->len)
    primary = g_strdup_printf ("Smart card removed: %s", removed->str);
  else if (c->fixed->len)
    primary = g_strdup ("S/MIME settings pointed at the card in the reader");
  if (primary)
    submit (w, c->warnings->len || c->offer_load ? GTK_MESSAGE_WARNING : GTK_MESSAGE_INFO, primary,
            text->len       ? text->str
            : c->offer_load ? "Evolution cannot see the certificates on the card yet."
                            : "The S/MIME settings are right for the cards in the readers.",
            c->warnings->len || c->fixed->len || c->offer_load ? 0 : 30, c->offer_load);
  g_hash_table_remove_all (w->last);
  g_hash_table_iter_init (&it, c->now);
  while (g_hash_table_iter_next (&it, &key, &value))
    g_hash_table_insert (w->last, g_strdup (key), g_strdup (value));
}

static void schedule_check (CmEvoWatch *w);

static void
make_available_thread (GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
  GError *error = NULL;
  char *report = NULL;

  if (cm_evo_job_make_available_sync (&report, cancellable, &error))
    g_task_return_pointer (task, report, g_free);
  else
    g_task_return_error (task, error);
}

static void
make_available_done (GObject *source, GAsyncResult *result, gpointer data)
{
  CmEvoWatch *w = CM_EVO_WATCH (source);
  g_autoptr (GError) error = NULL;
  g_autofree char *report = g_task_propagate_pointer (G_TASK (result), &error);

  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return;
  submit (w, report ? GTK_MESSAGE_INFO : GTK_MESSAGE_ERROR,
          report ? "Card certificates available" : "The card module could not be loaded",
          report ? report : error->message, report ? 30 : 0, FALSE);
  /* the page shows it; the identities may now be pointed at the card */
  cm_evo_watch_notify_changed (w);
  schedule_check (w);
}

/* The alert's "Make Card Certificates Available", as on the page. */
static void
make_available (GtkAction *action, CmEvoWatch *w)
{
  g_autoptr (GTask) task = g_task_new (w, w->cancellable, make_available_done, NULL);

  g_task_set_source_tag (task, make_available);
  g_task_run_in_thread (task, make_available_thread);
}

static void
check_done (GObject *source, GAsyncResult *result, gpointer data)
{
  CmEvoWatch *w = CM_EVO_WATCH (source);
  g_autoptr (GError) error = NULL;
  Check *c = g_task_propagate_pointer (G_TASK (result), &error);

  w->checking = FALSE;
  if (c)
    {
      announce (w, c);
      check_free (c);
      cm_evo_watch_notify_changed (w);
    }
  else if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    g_warning ("re-checking the S/MIME settings after a card change: %s", error->message);
  if (w->pending && !g_cancellable_is_cancelled (w->cancellable))
    {
      w->pending = FALSE;
      schedule_check (w);
    }
}

static gboolean
settled (gpointer data)
{
  CmEvoWatch *w = data;
  g_autoptr (GTask) task = NULL;

  w->settle_id = 0;
  if (w->checking)
    {
      w->pending = TRUE;
      return G_SOURCE_REMOVE;
    }
  w->checking = TRUE;
  task = g_task_new (w, w->cancellable, check_done, NULL);
  g_task_set_source_tag (task, settled);
  g_task_run_in_thread (task, check_thread);
  return G_SOURCE_REMOVE;
}

static void
schedule_check (CmEvoWatch *w)
{
  if (w->settle_id)
    g_source_remove (w->settle_id);
  w->settle_id = g_timeout_add (SETTLE_MS, settled, w);
}

static void
watch_changed_in_main (CmEvoWatch *w)
{
  schedule_check (w);
}

/* ---- the object ---- */

CmEvoWatch *
cm_evo_watch_new (EShell *shell)
{
  CmEvoWatch *w = g_object_new (CM_EVO_TYPE_WATCH, NULL);

  w->shell = shell;
  g_object_add_weak_pointer (G_OBJECT (shell), (gpointer *)&w->shell);
  if (default_watch == NULL)
    {
      default_watch = w;
      g_object_add_weak_pointer (G_OBJECT (w), (gpointer *)&default_watch);
    }
  return w;
}

CmEvoWatch *
cm_evo_watch_get_default (void)
{
  return default_watch;
}

void
cm_evo_watch_start (CmEvoWatch *w)
{
  Link *link;
  g_autoptr (GError) error = NULL;

  if (w->thread)
    return;
  link = g_new0 (Link, 1);
  link->refs = 1;
  g_weak_ref_init (&link->watch, w);
  link->cancellable = g_object_ref (w->cancellable);
  w->thread = g_thread_try_new ("cacmail-cards", watch_thread, link, &error);
  if (w->thread == NULL)
    {
      g_warning ("cannot start the smart card watcher: %s", error->message);
      link_unref (link);
    }
}

void
cm_evo_watch_learn (CmEvoWatch *w, CmEvoState *st)
{
  for (guint i = 0; st->readers && i < st->readers->len; i++)
    {
      CmEvoReader *r = g_ptr_array_index (st->readers, i);
      if (r->card && g_strcmp0 (g_hash_table_lookup (w->last, r->name), "?") == 0)
        g_hash_table_insert (w->last, g_strdup (r->name), cm_evo_card_summary (st->inv, r->card));
    }
}

void
cm_evo_watch_notify_changed (CmEvoWatch *w)
{
  g_signal_emit (w, signals[SIGNAL_CHANGED], 0);
}

static void
watch_dispose (GObject *object)
{
  CmEvoWatch *w = CM_EVO_WATCH (object);

  g_cancellable_cancel (w->cancellable);
  if (w->thread)
    g_thread_join (g_steal_pointer (&w->thread));
  if (w->settle_id)
    {
      g_source_remove (w->settle_id);
      w->settle_id = 0;
    }
  if (w->shell)
    {
      g_object_remove_weak_pointer (G_OBJECT (w->shell), (gpointer *)&w->shell);
      w->shell = NULL;
    }
  G_OBJECT_CLASS (cm_evo_watch_parent_class)->dispose (object);
}

static void
watch_finalize (GObject *object)
{
  CmEvoWatch *w = CM_EVO_WATCH (object);

  g_object_unref (w->cancellable);
  g_hash_table_unref (w->last);
  G_OBJECT_CLASS (cm_evo_watch_parent_class)->finalize (object);
}

static void
cm_evo_watch_class_init (CmEvoWatchClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = watch_dispose;
  object_class->finalize = watch_finalize;
  /* The S/MIME settings, the cards or the NSS database changed: an open page reloads. */
  signals[SIGNAL_CHANGED] = g_signal_new ("changed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                                          0, NULL, NULL, NULL, G_TYPE_NONE, 0);
}

static void
cm_evo_watch_class_finalize (CmEvoWatchClass *klass)
{
}

static void
cm_evo_watch_init (CmEvoWatch *w)
{
  w->cancellable = g_cancellable_new ();
  w->last = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
}

void
cm_evo_watch_type_register (GTypeModule *module)
{
  cm_evo_watch_register_type (module);
}
