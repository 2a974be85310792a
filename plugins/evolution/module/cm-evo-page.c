/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cm-evo-page.c: CmEvoPage, the "Smart Card" page of Evolution's Preferences window. It reads
 * nothing until it is shown; then a worker gathers the cards, personas, certificates and the
 * S/MIME settings' state (cm-evo-state.c) and the page shows them, with the buttons "Fix
 * S/MIME Settings", "Undo Last Fix", "Make Card Certificates Available" and "Import Recovered
 * Key...". Outcomes go to the page's own alert bar. */
#include "cm-evo-module.h"

typedef struct
{
  GtkBox parent;
  GtkWidget *alert_bar;
  GtkWidget *spinner, *status;
  GtkWidget *cards, *certs, *identities, *module, *recovered, *problems; /* section bodies */
  GtkWidget *problems_section;
  GtkWidget *refresh, *fix, *undo, *make_available, *import;
  GCancellable *cancellable;
  CmEvoWatch *watch; /* referenced */
  gboolean loaded;   /* the page shows a state that is still current */
  gboolean busy;     /* a load or a job runs */
  gboolean stale;    /* something changed while busy: load again when done */
  gboolean card_module_loaded;
} CmEvoPage;

typedef struct
{
  GtkBoxClass parent_class;
} CmEvoPageClass;

GType cm_evo_page_get_type (void);
G_DEFINE_DYNAMIC_TYPE (CmEvoPage, cm_evo_page, GTK_TYPE_BOX)

typedef enum
{
  JOB_LOAD,
  JOB_FIX,
  JOB_UNDO,
  JOB_MAKE_AVAILABLE,
  JOB_IMPORT,
} JobKind;

typedef struct
{
  JobKind kind;
  char *path;     /* JOB_IMPORT */
  char *password; /* JOB_IMPORT; wiped when freed */
} Job;

static void page_load (CmEvoPage *page);

static void
job_free (Job *job)
{
  g_free (job->path);
  cm_ldap_secret_free (job->password);
  g_free (job);
}

/* ---- building blocks ---- */

static GtkWidget *
add_label (GtkWidget *box, const char *text, gboolean markup)
{
  GtkWidget *label = gtk_label_new (NULL);

  if (markup)
    gtk_label_set_markup (GTK_LABEL (label), text);
  else
    gtk_label_set_text (GTK_LABEL (label), text);
  gtk_label_set_xalign (GTK_LABEL (label), 0);
  gtk_label_set_line_wrap (GTK_LABEL (label), TRUE);
  gtk_label_set_max_width_chars (GTK_LABEL (label), 80);
  gtk_label_set_selectable (GTK_LABEL (label), TRUE);
  gtk_widget_set_can_focus (label, FALSE);
  gtk_container_add (GTK_CONTAINER (box), label);
  gtk_widget_show (label);
  return label;
}

static void
clear (GtkWidget *box)
{
  g_autoptr (GList) children = gtk_container_get_children (GTK_CONTAINER (box));

  for (GList *l = children; l; l = l->next)
    gtk_widget_destroy (l->data);
}

/* A titled section; returns its body (rebuilt on every load). */
static GtkWidget *
add_section (GtkWidget *parent, const char *title, GtkWidget **section)
{
  GtkWidget *box = gtk_box_new (GTK_ORIENTATION_VERTICAL, 6);
  GtkWidget *body = gtk_box_new (GTK_ORIENTATION_VERTICAL, 4);
  g_autofree char *markup = g_markup_printf_escaped ("<b>%s</b>", title);

  add_label (box, markup, TRUE);
  gtk_widget_set_margin_start (body, 12);
  gtk_container_add (GTK_CONTAINER (box), body);
  gtk_container_add (GTK_CONTAINER (parent), box);
  if (section)
    *section = box;
  return body;
}

static GtkWidget *
add_button (GtkWidget *box, const char *label, const char *tooltip, GCallback cb, CmEvoPage *page)
{
  GtkWidget *button = gtk_button_new_with_mnemonic (label);

  gtk_widget_set_tooltip_text (button, tooltip);
  g_signal_connect_swapped (button, "clicked", cb, page);
  gtk_container_add (GTK_CONTAINER (box), button);
  return button;
}

static void
set_busy (CmEvoPage *page, gboolean busy, const char *status)
{
  page->busy = busy;
  if (busy)
    gtk_spinner_start (GTK_SPINNER (page->spinner));
  else
    gtk_spinner_stop (GTK_SPINNER (page->spinner));
  gtk_label_set_text (GTK_LABEL (page->status), status);
  gtk_widget_set_sensitive (page->refresh, !busy);
  gtk_widget_set_sensitive (page->fix, !busy);
  gtk_widget_set_sensitive (page->undo, !busy);
  gtk_widget_set_sensitive (page->import, !busy);
  gtk_widget_set_sensitive (page->make_available, !busy && !page->card_module_loaded);
}

static void
show_alert (CmEvoPage *page, GtkMessageType type, const char *primary, const char *secondary)
{
  EAlert *alert = cm_evo_alert_new (type, primary, secondary);

  /* only the outcome of the last action */
  e_alert_bar_clear (E_ALERT_BAR (page->alert_bar));
  e_alert_bar_submit_alert (E_ALERT_BAR (page->alert_bar), alert);
  g_object_unref (alert);
}

/* ---- showing a state ---- */

static void
show_cards (CmEvoPage *page, CmEvoState *st)
{
  if (st->readers == NULL)
    {
      add_label (page->cards, "The card readers cannot be listed (see Problems below).", FALSE);
      return;
    }
  if (st->readers->len == 0)
    add_label (page->cards, "No card reader is connected.", FALSE);
  for (guint i = 0; i < st->readers->len; i++)
    {
      CmEvoReader *r = g_ptr_array_index (st->readers, i);
      g_autofree char *summary = r->card ? cm_evo_card_summary (st->inv, r->card) : NULL;
      g_autofree char *line = g_strdup_printf ("%s: %s%s", r->name,
                                               summary    ? summary
                                               : r->error ? "the card cannot be read: "
                                                          : "no card",
                                               !summary && r->error ? r->error : "");
      add_label (page->cards, line, FALSE);
    }
}

static void
show_certs (CmEvoPage *page, CmEvoState *st)
{
  GtkWidget *view = cm_evo_certs_view_new (st);

  if (view == NULL)
    add_label (page->certs, "No personal certificate: insert your card.", FALSE);
  else
    {
      gtk_container_add (GTK_CONTAINER (page->certs), view);
      gtk_widget_show (view);
    }
}

static const char *
reason_text (const char *code, const char *message)
{
  /* the library names the CLI; inside Evolution the button does it */
  if (g_strcmp0 (code, "picked-cert-not-in-nss") == 0)
    return "the right certificate is on the card but not visible to Evolution: click Make "
           "Card Certificates Available";
  return message;
}

/* The problems of the picks for an identity's address, in the words the CLI uses. */
static void
show_problems (CmEvoPage *page, JsonArray *problems)
{
  for (guint i = 0; i < json_array_get_length (problems); i++)
    {
      JsonObject *p = json_array_get_object_element (problems, i);
      g_autofree char *line = g_strdup_printf ("\342\232\240 %s\n    Fix: %s",
                                               json_object_get_string_member (p, "message"),
                                               json_object_get_string_member (p, "hint"));
      add_label (page->identities, line, FALSE);
    }
}

static void
show_identities (CmEvoPage *page, CmEvoState *st)
{
  if (st->identities->len == 0)
    add_label (page->identities,
               st->recovered_unknown
                 ? "The record of recovered keys cannot be read, so no setting is judged: "
                   "repair it as Problems below says."
               : st->reg ? "No mail identity with an address: add a mail account first."
                         : "The mail identities cannot be read (see Problems below).",
               FALSE);
  for (guint i = 0; i < st->identities->len; i++)
    {
      CmEvoIdentity *id = g_ptr_array_index (st->identities, i);
      const CmEvoSettings *cur = cm_evo_identity_get_current (id);
      const char *const *codes = cm_evo_identity_get_reasons (id);
      const char *const *msgs = cm_evo_identity_get_messages (id);
      gboolean stale = cm_evo_identity_is_stale (id);
      g_autofree char *head
        = stale ? g_markup_printf_escaped ("<b>%s &lt;%s&gt;</b>: <span foreground='#c01c28'>"
                                           "stale</span>",
                                           cur->name ? cur->name : "", cur->address)
                : g_markup_printf_escaped ("<b>%s &lt;%s&gt;</b>: ok", cur->name ? cur->name : "",
                                           cur->address);
      g_autofree char *now
        = g_strdup_printf ("Signing certificate: %s\nEncryption certificate: %s",
                           cur->signing && *cur->signing ? cur->signing : "(none)",
                           cur->encryption && *cur->encryption ? cur->encryption : "(none)");

      /* the head carries markup made safe above */
      add_label (page->identities, head, TRUE);
      add_label (page->identities, now, FALSE);
      for (guint j = 0; codes[j]; j++)
        {
          g_autofree char *line
            = g_strdup_printf ("\342\200\242 %s", reason_text (codes[j], msgs[j]));
          add_label (page->identities, line, FALSE);
        }
      show_problems (page, cm_evo_identity_get_problems (id));
      if (stale)
        {
          const char *ps = cm_evo_identity_get_proposed_signing (id);
          const char *pe = cm_evo_identity_get_proposed_encryption (id);
          g_autofree char *fix
            = cm_evo_identity_can_fix (id)
                ? g_strdup_printf ("Fix S/MIME Settings sets: signing %s, encryption %s",
                                   ps ? ps : "(unchanged)", pe ? pe : "(unchanged)")
                : g_strdup ("Nothing to set: insert the card of this address, or make its "
                            "certificates available to Evolution.");
          add_label (page->identities, fix, FALSE);
        }
    }
}

static void
show_module (CmEvoPage *page, CmEvoState *st)
{
  g_autofree char *text = NULL;

  page->card_module_loaded = st->card_module_loaded != NULL;
  if (st->card_module_loaded)
    text = g_strdup_printf ("The card module \342\200\234%s\342\200\235 is loaded in Evolution: "
                            "the certificates of the card in the reader are available to it.",
                            st->card_module_loaded);
  else if (st->card_module)
    text = g_strdup ("A card module is registered in Evolution's certificate database but is "
                     "not loaded in this Evolution: Make Card Certificates Available loads it "
                     "now.");
  else
    text = g_strdup_printf ("Evolution cannot see the certificates on your card: no card module "
                            "is registered in its certificate database (%s). Make Card "
                            "Certificates Available loads OpenSC now, without a restart, and "
                            "keeps it for the next start.",
                            st->nssdb);
  add_label (page->module, text, FALSE);
  for (guint i = 0; i < st->locked->len; i++)
    {
      g_autofree char *locked = g_strdup_printf (
        "NSS lists the certificates of the card \342\200\234%s\342\200\235 only after its PIN "
        "is entered (its module was registered without the \342\200\234friendly\342\200\235 "
        "option): until then they show as not visible here, and Evolution asks for the PIN when "
        "it needs them.",
        (char *)g_ptr_array_index (st->locked, i));
      add_label (page->module, locked, FALSE);
    }
}

static void
show_recovered (CmEvoPage *page, CmEvoState *st)
{
  if (st->recovered == NULL || st->recovered->len == 0)
    add_label (page->recovered,
               "None. To read old mail encrypted to an earlier card, import the PKCS#12 file "
               "your key-recovery agent gave you.",
               FALSE);
  for (guint i = 0; st->recovered && i < st->recovered->len; i++)
    {
      CmNssdbRecovered *r = g_ptr_array_index (st->recovered, i);
      g_autofree char *until = cm_time_format_date (r->not_after);
      g_autofree char *line = g_strdup_printf ("%s: %s, until %s%s", r->nickname, r->subject, until,
                                               r->present ? "" : " (no longer in the database)");
      add_label (page->recovered, line, FALSE);
    }
}

static void
show_state (CmEvoPage *page, CmEvoState *st)
{
  guint stale = 0, cards = 0;
  g_autofree char *when = NULL, *status = NULL;
  g_autoptr (GDateTime) now = g_date_time_new_now_local ();

  clear (page->cards);
  clear (page->certs);
  clear (page->identities);
  clear (page->module);
  clear (page->recovered);
  clear (page->problems);
  show_cards (page, st);
  show_certs (page, st);
  show_identities (page, st);
  show_module (page, st);
  show_recovered (page, st);
  for (guint i = 0; i < st->problems->len; i++)
    add_label (page->problems, g_ptr_array_index (st->problems, i), FALSE);
  gtk_widget_set_visible (page->problems_section, st->problems->len > 0);
  for (guint i = 0; i < st->identities->len; i++)
    stale += cm_evo_identity_is_stale (g_ptr_array_index (st->identities, i));
  for (guint i = 0; st->readers && i < st->readers->len; i++)
    cards += ((CmEvoReader *)g_ptr_array_index (st->readers, i))->card != NULL;
  when = g_date_time_format (now, "%H:%M:%S");
  status = g_strdup_printf ("Checked at %s: %u card%s read, %u of %u S/MIME settings stale.", when,
                            cards, cards == 1 ? "" : "s", stale, st->identities->len);
  page->loaded = TRUE;
  set_busy (page, FALSE, status);
}

/* ---- jobs ---- */

static void
job_thread (GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
  Job *job = data;
  GError *error = NULL;
  char *report = NULL;
  gboolean ok = FALSE;

  switch (job->kind)
    {
    case JOB_LOAD:
      {
        CmEvoState *st = cm_evo_state_load_sync (TRUE, cancellable, &error);
        if (st)
          g_task_return_pointer (task, st, (GDestroyNotify)cm_evo_state_free);
        else
          g_task_return_error (task, error);
        return;
      }
    case JOB_FIX: ok = cm_evo_job_fix_sync (&report, cancellable, &error); break;
    case JOB_UNDO: ok = cm_evo_job_undo_sync (&report, cancellable, &error); break;
    case JOB_MAKE_AVAILABLE:
      ok = cm_evo_job_make_available_sync (&report, cancellable, &error);
      break;
    case JOB_IMPORT:
      ok = cm_evo_job_import_sync (job->path, job->password, &report, cancellable, &error);
      break;
    default: g_assert_not_reached ();
    }
  if (ok)
    g_task_return_pointer (task, report, g_free);
  else
    g_task_return_error (task, error);
}

static const char *
job_title (JobKind kind, gboolean ok)
{
  switch (kind)
    {
    case JOB_FIX: return ok ? "Fix S/MIME Settings" : "The S/MIME settings were not fixed";
    case JOB_UNDO: return ok ? "Last fix undone" : "The last fix was not undone";
    case JOB_MAKE_AVAILABLE:
      return ok ? "Card certificates available" : "The card module could not be loaded";
    case JOB_IMPORT: return ok ? "Recovered keys imported" : "Nothing was imported";
    case JOB_LOAD:
    default: return ok ? "" : "The smart card state could not be read";
    }
}

static void
job_done (GObject *source, GAsyncResult *result, gpointer data)
{
  CmEvoPage *page = (CmEvoPage *)source;
  Job *job = g_task_get_task_data (G_TASK (result));
  g_autoptr (GError) error = NULL;

  if (page->cancellable == NULL) /* disposed: the widgets are gone */
    return;
  if (job->kind == JOB_LOAD)
    {
      CmEvoState *st = g_task_propagate_pointer (G_TASK (result), &error);
      if (st)
        show_state (page, st);
      if (st && page->watch)
        cm_evo_watch_learn (page->watch, st);
      else if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        {
          show_alert (page, GTK_MESSAGE_ERROR, job_title (job->kind, FALSE), error->message);
          set_busy (page, FALSE, "");
        }
      cm_evo_state_free (st);
      if (page->stale)
        {
          page->stale = FALSE;
          page_load (page);
        }
      return;
    }
  {
    g_autofree char *report = g_task_propagate_pointer (G_TASK (result), &error);
    if (error && g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
      return;
    show_alert (page, report ? GTK_MESSAGE_INFO : GTK_MESSAGE_ERROR,
                job_title (job->kind, report != NULL), report ? report : error->message);
  }
  page->busy = FALSE;
  page->stale = FALSE;
  /* the settings or the database changed: show what they are now */
  if (page->watch)
    cm_evo_watch_notify_changed (page->watch);
  page_load (page);
}

static void
run_job (CmEvoPage *page, Job *job, const char *status)
{
  g_autoptr (GTask) task = g_task_new (page, page->cancellable, job_done, NULL);

  g_task_set_source_tag (task, run_job);
  g_task_set_task_data (task, job, (GDestroyNotify)job_free);
  set_busy (page, TRUE, status);
  g_task_run_in_thread (task, job_thread);
}

static void
start (CmEvoPage *page, JobKind kind, const char *status)
{
  Job *job = g_new0 (Job, 1);

  if (page->busy)
    {
      job_free (job);
      return;
    }
  job->kind = kind;
  run_job (page, job, status);
}

static void
page_load (CmEvoPage *page)
{
  start (page, JOB_LOAD, "Reading the cards in the readers and Evolution's settings\342\200\246");
}

static void
on_fix (CmEvoPage *page)
{
  start (page, JOB_FIX, "Fixing the S/MIME settings\342\200\246");
}

static void
on_undo (CmEvoPage *page)
{
  start (page, JOB_UNDO, "Restoring the S/MIME settings\342\200\246");
}

static void
on_make_available (CmEvoPage *page)
{
  start (page, JOB_MAKE_AVAILABLE, "Loading the card module\342\200\246");
}

typedef struct
{
  CmEvoPage *page; /* referenced */
  char *path;
} Import;

static void
import_password (char *secret, GError *error, gpointer data)
{
  Import *imp = data;

  if (secret && imp->page->cancellable == NULL)
    ; /* the page is gone */
  else if (secret && imp->page->busy)
    show_alert (imp->page, GTK_MESSAGE_WARNING, "Nothing was imported",
                "Another action was still running: try Import Recovered Key again.");
  else if (secret)
    {
      Job *job = g_new0 (Job, 1);
      job->kind = JOB_IMPORT;
      job->path = g_steal_pointer (&imp->path);
      job->password = g_steal_pointer (&secret);
      run_job (imp->page, job, "Importing the recovered keys\342\200\246");
    }
  cm_ldap_secret_free (secret);
  g_clear_error (&error);
  g_object_unref (imp->page);
  g_free (imp->path);
  g_free (imp);
}

static void
import_file_chosen (GtkDialog *chooser, gint response, CmEvoPage *page)
{
  if (response == GTK_RESPONSE_ACCEPT)
    {
      Import *imp = g_new0 (Import, 1);
      g_autofree char *base = NULL;

      imp->page = g_object_ref (page);
      imp->path = gtk_file_chooser_get_filename (GTK_FILE_CHOOSER (chooser));
      base = g_path_get_basename (imp->path);
      cm_evo_secret_ask (GTK_WINDOW (gtk_widget_get_toplevel (GTK_WIDGET (page))),
                         CM_EVO_SECRET_P12_PASSWORD, base, NULL, import_password, imp);
    }
  gtk_widget_destroy (GTK_WIDGET (chooser));
}

static void
on_import (CmEvoPage *page)
{
  GtkWidget *toplevel = gtk_widget_get_toplevel (GTK_WIDGET (page));
  GtkWidget *chooser = gtk_file_chooser_dialog_new (
    "Import Recovered Key", GTK_IS_WINDOW (toplevel) ? GTK_WINDOW (toplevel) : NULL,
    GTK_FILE_CHOOSER_ACTION_OPEN, "_Cancel", GTK_RESPONSE_CANCEL, "_Import", GTK_RESPONSE_ACCEPT,
    NULL);
  GtkFileFilter *filter = gtk_file_filter_new ();

  gtk_file_filter_set_name (filter, "Recovered keys (PKCS#12: *.p12, *.pfx)");
  gtk_file_filter_add_pattern (filter, "*.p12");
  gtk_file_filter_add_pattern (filter, "*.pfx");
  gtk_file_filter_add_pattern (filter, "*.P12");
  gtk_file_filter_add_pattern (filter, "*.PFX");
  gtk_file_chooser_add_filter (GTK_FILE_CHOOSER (chooser), filter);
  gtk_file_chooser_set_current_folder (GTK_FILE_CHOOSER (chooser), g_get_home_dir ());
  gtk_window_set_modal (GTK_WINDOW (chooser), TRUE);
  g_signal_connect (chooser, "response", G_CALLBACK (import_file_chosen), page);
  gtk_widget_show (chooser);
}

/* ---- the widget ---- */

static void
page_map (GtkWidget *widget)
{
  CmEvoPage *page = (CmEvoPage *)widget;

  GTK_WIDGET_CLASS (cm_evo_page_parent_class)->map (widget);
  if (!page->loaded && !page->busy)
    page_load (page);
}

static void
watch_changed (CmEvoWatch *watch, CmEvoPage *page)
{
  page->loaded = FALSE;
  if (page->busy)
    page->stale = TRUE;
  else if (gtk_widget_get_mapped (GTK_WIDGET (page)))
    page_load (page);
}

GtkWidget *
cm_evo_page_new (EShell *shell)
{
  return g_object_new (cm_evo_page_get_type (), "orientation", GTK_ORIENTATION_VERTICAL, "spacing",
                       6, NULL);
}

static void
page_constructed (GObject *object)
{
  CmEvoPage *page = (CmEvoPage *)object;
  GtkWidget *scroll, *content, *row, *buttons;

  G_OBJECT_CLASS (cm_evo_page_parent_class)->constructed (object);
  page->alert_bar = e_alert_bar_new ();
  gtk_container_add (GTK_CONTAINER (page), page->alert_bar);

  row = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 6);
  g_object_set (row, "margin-start", 12, "margin-end", 12, "margin-top", 6, NULL);
  page->spinner = gtk_spinner_new ();
  page->status = gtk_label_new ("");
  gtk_label_set_xalign (GTK_LABEL (page->status), 0);
  gtk_widget_set_hexpand (page->status, TRUE);
  gtk_container_add (GTK_CONTAINER (row), page->spinner);
  gtk_container_add (GTK_CONTAINER (row), page->status);
  page->refresh = add_button (row, "_Refresh", "Read the cards and the settings again",
                              G_CALLBACK (page_load), page);
  gtk_container_add (GTK_CONTAINER (page), row);

  scroll = gtk_scrolled_window_new (NULL, NULL);
  gtk_scrolled_window_set_policy (GTK_SCROLLED_WINDOW (scroll), GTK_POLICY_NEVER,
                                  GTK_POLICY_AUTOMATIC);
  gtk_widget_set_vexpand (scroll, TRUE);
  content = gtk_box_new (GTK_ORIENTATION_VERTICAL, 18);
  g_object_set (content, "margin", 12, NULL);
  gtk_container_add (GTK_CONTAINER (scroll), content);
  gtk_container_add (GTK_CONTAINER (page), scroll);

  page->cards = add_section (content, "Cards in the readers", NULL);
  page->certs = add_section (content, "Personas and certificates", NULL);
  page->identities = add_section (content, "S/MIME settings of the mail identities", NULL);
  buttons = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 6);
  g_object_set (buttons, "margin-start", 12, NULL);
  page->fix = add_button (buttons, "_Fix S/MIME Settings",
                          "Point every stale identity at the right certificates of your card",
                          G_CALLBACK (on_fix), page);
  page->undo = add_button (buttons, "_Undo Last Fix",
                           "Restore the S/MIME settings as they were before the last fix",
                           G_CALLBACK (on_undo), page);
  gtk_container_add (GTK_CONTAINER (gtk_widget_get_parent (page->identities)), buttons);
  page->module = add_section (content, "Card certificates in Evolution", NULL);
  buttons = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 6);
  g_object_set (buttons, "margin-start", 12, NULL);
  page->make_available = add_button (
    buttons, "_Make Card Certificates Available",
    "Load the card's PKCS#11 module (OpenSC) into Evolution now and keep it for the next start",
    G_CALLBACK (on_make_available), page);
  gtk_container_add (GTK_CONTAINER (gtk_widget_get_parent (page->module)), buttons);
  page->recovered = add_section (content, "Recovered keys (decrypt only)", NULL);
  buttons = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 6);
  g_object_set (buttons, "margin-start", 12, NULL);
  page->import = add_button (buttons, "_Import Recovered Key\342\200\246",
                             "Import a PKCS#12 file from your key-recovery agent to read old "
                             "encrypted mail",
                             G_CALLBACK (on_import), page);
  gtk_container_add (GTK_CONTAINER (gtk_widget_get_parent (page->recovered)), buttons);
  page->problems = add_section (content, "Problems", &page->problems_section);
  gtk_widget_show_all (GTK_WIDGET (page));
  /* the alert bar shows itself when an alert comes */
  gtk_widget_hide (page->alert_bar);
  gtk_widget_hide (page->problems_section);
  gtk_widget_set_no_show_all (page->problems_section, TRUE);
  set_busy (page, FALSE, "");

  if ((page->watch = cm_evo_watch_get_default ()))
    {
      g_object_ref (page->watch);
      g_signal_connect_object (page->watch, "changed", G_CALLBACK (watch_changed), page, 0);
    }
}

static void
page_dispose (GObject *object)
{
  CmEvoPage *page = (CmEvoPage *)object;

  if (page->cancellable)
    g_cancellable_cancel (page->cancellable);
  g_clear_object (&page->cancellable);
  g_clear_object (&page->watch);
  G_OBJECT_CLASS (cm_evo_page_parent_class)->dispose (object);
}

static void
cm_evo_page_class_init (CmEvoPageClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->constructed = page_constructed;
  object_class->dispose = page_dispose;
  GTK_WIDGET_CLASS (klass)->map = page_map;
}

static void
cm_evo_page_class_finalize (CmEvoPageClass *klass)
{
}

static void
cm_evo_page_init (CmEvoPage *page)
{
  page->cancellable = g_cancellable_new ();
}

void
cm_evo_page_type_register (GTypeModule *module)
{
  cm_evo_page_register_type (module);
}
