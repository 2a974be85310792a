/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cm-evo-page.c: CmEvoPage, the "Smart Card" page of Evolution's Preferences window. It reads
 * nothing until it is shown; then a worker gathers the cards, personas, certificates and the
 * S/MIME settings' state (cm-evo-state.c) and the page shows the setup steps in the order of
 * `cacmail setup` (cm-evo-view.c): 1 Evolution and its certificate database, 2 Make Card
 * Certificates Available, 3 Install DoD Trust Chain..., 4 Directory Settings..., 5 Fix S/MIME
 * Settings / Undo Last Fix, 6 Republish Certificates to GAL; each step says its state and what
 * its button would change, and a button with nothing to do is disabled. Below: the report of
 * `cacmail doctor` (cm-evo-doctor.c), the cards, personas and certificates, and the recovered
 * keys (Import Recovered Key...). Outcomes go to the page's own alert bar. */
#include "cm-evo-module.h"

/* `cacmail doctor` gets this long before it is killed. */
#define DOCTOR_TIMEOUT_S 30

typedef struct
{
  GtkWidget *title; /* "3. DoD trust chain: to do" */
  GtkWidget *body;  /* rebuilt on every load */
  const char *name;
} Step;

typedef struct
{
  GtkBox parent;
  EShell *shell; /* weak */
  GtkWidget *alert_bar;
  GtkWidget *spinner, *status;
  Step steps[CM_EVO_N_STEPS];
  GtkWidget *doctor, *cards, *certs, *recovered, *problems; /* section bodies */
  GtkWidget *problems_section;
  GtkWidget *refresh, *make_available, *trust, *directory, *fix, *undo, *republish, *import;
  GCancellable *cancellable;
  GCancellable *doctor_cancellable; /* the running doctor, or NULL */
  CmEvoWatch *watch;                /* referenced */
  CmEvoDirectory *dir;              /* as last read */
  gboolean loaded;                  /* the page shows a state that is still current */
  gboolean busy;                    /* a load or a job runs */
  gboolean stale;                   /* something changed while busy: load again when done */
  gboolean can_make_available, can_fix, can_undo, can_republish;
} CmEvoPage;

typedef struct
{
  GtkBoxClass parent_class;
} CmEvoPageClass;

GType cm_evo_page_get_type (void);
G_DEFINE_DYNAMIC_TYPE (CmEvoPage, cm_evo_page, GTK_TYPE_BOX)

/* A job of a button: @func runs in a worker; its report or error goes to the alert bar. */
typedef struct
{
  CmEvoJobFunc func; /* NULL: a load */
  gpointer data;
  GDestroyNotify free_data;
  char *ok_title, *fail_title;
} Job;

static void page_load (CmEvoPage *page);

static void
job_free (Job *job)
{
  if (job->free_data)
    job->free_data (job->data);
  g_free (job->ok_title);
  g_free (job->fail_title);
  g_free (job);
}

/* ---- building blocks ---- */

/* A titled section; returns its body (rebuilt on every load). */
static GtkWidget *
add_section (GtkWidget *parent, const char *title, GtkWidget **section, GtkWidget **title_label)
{
  GtkWidget *box = gtk_box_new (GTK_ORIENTATION_VERTICAL, 6);
  GtkWidget *body = gtk_box_new (GTK_ORIENTATION_VERTICAL, 4);
  g_autofree char *markup = g_markup_printf_escaped ("<b>%s</b>", title);
  GtkWidget *label = cm_evo_add_label (box, markup, TRUE);

  gtk_widget_set_margin_start (body, 12);
  gtk_container_add (GTK_CONTAINER (box), body);
  gtk_container_add (GTK_CONTAINER (parent), box);
  if (section)
    *section = box;
  if (title_label)
    *title_label = label;
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

/* A row of buttons under the section whose body is @body. */
static GtkWidget *
add_buttons (GtkWidget *body)
{
  GtkWidget *buttons = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 6);

  g_object_set (buttons, "margin-start", 12, NULL);
  gtk_container_add (GTK_CONTAINER (gtk_widget_get_parent (body)), buttons);
  return buttons;
}

static void
update_sensitive (CmEvoPage *page)
{
  gboolean idle = !page->busy;

  gtk_widget_set_sensitive (page->refresh, idle);
  gtk_widget_set_sensitive (page->make_available, idle && page->can_make_available);
  gtk_widget_set_sensitive (page->trust, idle && page->loaded);
  gtk_widget_set_sensitive (page->directory, idle && page->loaded);
  gtk_widget_set_sensitive (page->fix, idle && page->can_fix);
  gtk_widget_set_sensitive (page->undo, idle && page->can_undo);
  gtk_widget_set_sensitive (page->republish,
                            idle && page->can_republish && !cm_evo_republish_running ());
  gtk_widget_set_sensitive (page->import, idle);
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
  update_sensitive (page);
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

void
cm_evo_page_show_alert (GtkWidget *widget, EAlert *alert)
{
  CmEvoPage *page = (CmEvoPage *)widget;

  if (page->cancellable == NULL)
    return;
  e_alert_bar_clear (E_ALERT_BAR (page->alert_bar));
  e_alert_bar_submit_alert (E_ALERT_BAR (page->alert_bar), alert);
}

/* ---- the doctor report ---- */

static void
doctor_done (GObject *source, GAsyncResult *result, gpointer data)
{
  CmEvoPage *page = data;
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonArray) problems = cm_evo_doctor_run_finish (result, &error);

  if (page->cancellable == NULL || g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    {
      g_object_unref (page);
      return;
    }
  g_clear_object (&page->doctor_cancellable);
  cm_evo_clear (page->doctor);
  if (problems == NULL)
    {
      g_autofree char *line = g_strdup_printf ("The report could not be made: %s", error->message);
      cm_evo_add_label (page->doctor, line, FALSE);
    }
  else if (json_array_get_length (problems) == 0)
    cm_evo_add_label (page->doctor, "cacmail doctor found no problem.", FALSE);
  for (guint i = 0; problems && i < json_array_get_length (problems); i++)
    {
      JsonObject *p = json_array_get_object_element (problems, i);
      const char *hint = json_object_get_string_member_with_default (p, "hint", NULL);
      g_autofree char *line
        = g_strdup_printf ("\342\232\240 %s%s%s", json_object_get_string_member (p, "message"),
                           hint && *hint ? "\n    Fix: " : "", hint && *hint ? hint : "");
      cm_evo_add_label (page->doctor, line, FALSE);
    }
  g_object_unref (page);
}

static void
doctor_start (CmEvoPage *page)
{
  if (page->doctor_cancellable)
    g_cancellable_cancel (page->doctor_cancellable);
  g_clear_object (&page->doctor_cancellable);
  page->doctor_cancellable = g_cancellable_new ();
  cm_evo_clear (page->doctor);
  cm_evo_add_label (page->doctor, "Running cacmail doctor\342\200\246", FALSE);
  cm_evo_doctor_run_async (DOCTOR_TIMEOUT_S, page->doctor_cancellable, doctor_done,
                           g_object_ref (page));
}

/* ---- showing a state ---- */

static void
show_step (CmEvoPage *page, int i, CmEvoStepState state)
{
  const char *color = state == CM_EVO_STEP_DONE    ? "#26a269"
                      : state == CM_EVO_STEP_READY ? "#1c71d8"
                      : state == CM_EVO_STEP_TODO  ? "#c01c28"
                                                   : "#77767b";
  g_autofree char *markup
    = g_markup_printf_escaped ("<b>%d. %s</b>: <span foreground='%s'>%s</span>", i + 1,
                               page->steps[i].name, color, cm_evo_step_state_word (state));

  gtk_label_set_markup (GTK_LABEL (page->steps[i].title), markup);
}

static void
show_state (CmEvoPage *page, CmEvoState *st)
{
  guint stale = 0, cards = 0;
  g_autofree char *when = NULL, *status = NULL;
  g_autoptr (GDateTime) now = g_date_time_new_now_local ();
  CmEvoStepState republish;

  for (int i = 0; i < CM_EVO_N_STEPS; i++)
    cm_evo_clear (page->steps[i].body);
  cm_evo_clear (page->cards);
  cm_evo_clear (page->certs);
  cm_evo_clear (page->recovered);
  cm_evo_clear (page->problems);
  show_step (page, CM_EVO_STEP_CLIENT, cm_evo_show_client (page->steps[0].body, st));
  show_step (page, CM_EVO_STEP_CARD,
             cm_evo_show_card_module (page->steps[CM_EVO_STEP_CARD].body, st));
  show_step (page, CM_EVO_STEP_TRUST, cm_evo_show_trust (page->steps[CM_EVO_STEP_TRUST].body, st));
  show_step (page, CM_EVO_STEP_DIRECTORY,
             cm_evo_show_directory (page->steps[CM_EVO_STEP_DIRECTORY].body, st));
  show_step (page, CM_EVO_STEP_SMIME,
             cm_evo_show_identities (page->steps[CM_EVO_STEP_SMIME].body, st));
  republish = cm_evo_show_republish (page->steps[CM_EVO_STEP_REPUBLISH].body, st,
                                     cm_evo_republish_running ());
  show_step (page, CM_EVO_STEP_REPUBLISH, republish);
  cm_evo_show_cards (page->cards, st);
  cm_evo_show_certs (page->certs, st);
  cm_evo_show_recovered (page->recovered, st);
  for (guint i = 0; i < st->problems->len; i++)
    cm_evo_add_label (page->problems, g_ptr_array_index (st->problems, i), FALSE);
  gtk_widget_set_visible (page->problems_section, st->problems->len > 0);
  page->can_make_available = st->card_module_loaded == NULL;
  page->can_fix = cm_evo_count_fixable (st) > 0;
  page->can_undo = st->undo_entries > 0;
  page->can_republish = republish == CM_EVO_STEP_READY;
  cm_evo_directory_free (page->dir);
  page->dir = g_steal_pointer (&st->directory);
  for (guint i = 0; i < st->identities->len; i++)
    stale += cm_evo_identity_is_stale (g_ptr_array_index (st->identities, i));
  for (guint i = 0; st->readers && i < st->readers->len; i++)
    cards += ((CmEvoReader *)g_ptr_array_index (st->readers, i))->card != NULL;
  when = g_date_time_format (now, "%H:%M:%S");
  status = g_strdup_printf ("Checked at %s: %u card%s read, %u of %u S/MIME settings stale.", when,
                            cards, cards == 1 ? "" : "s", stale, st->identities->len);
  page->loaded = TRUE;
  set_busy (page, FALSE, status);
  doctor_start (page);
}

/* ---- jobs ---- */

static void
job_thread (GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
  Job *job = data;
  GError *error = NULL;
  char *report = NULL;

  if (job->func == NULL)
    {
      CmEvoState *st = cm_evo_state_load_sync (TRUE, cancellable, &error);
      if (st)
        g_task_return_pointer (task, st, (GDestroyNotify)cm_evo_state_free);
      else
        g_task_return_error (task, error);
      return;
    }
  if (job->func (job->data, &report, cancellable, &error))
    g_task_return_pointer (task, report, g_free);
  else
    g_task_return_error (task, error);
}

static void
load_done (CmEvoPage *page, GAsyncResult *result)
{
  g_autoptr (GError) error = NULL;
  CmEvoState *st = g_task_propagate_pointer (G_TASK (result), &error);

  if (st)
    show_state (page, st);
  if (st && page->watch)
    cm_evo_watch_learn (page->watch, st);
  else if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    {
      show_alert (page, GTK_MESSAGE_ERROR, "The smart card state could not be read",
                  error->message);
      set_busy (page, FALSE, "");
    }
  cm_evo_state_free (st);
  if (page->stale)
    {
      page->stale = FALSE;
      page_load (page);
    }
}

static void
job_done (GObject *source, GAsyncResult *result, gpointer data)
{
  CmEvoPage *page = (CmEvoPage *)source;
  Job *job = g_task_get_task_data (G_TASK (result));
  g_autoptr (GError) error = NULL;
  g_autofree char *report = NULL;

  if (page->cancellable == NULL) /* disposed: the widgets are gone */
    return;
  if (job->func == NULL)
    {
      load_done (page, result);
      return;
    }
  report = g_task_propagate_pointer (G_TASK (result), &error);
  if (error && g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return;
  show_alert (page, report ? GTK_MESSAGE_INFO : GTK_MESSAGE_ERROR,
              report ? job->ok_title : job->fail_title, report ? report : error->message);
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

gboolean
cm_evo_page_run (GtkWidget *widget, const char *status, const char *ok_title,
                 const char *fail_title, CmEvoJobFunc func, gpointer data, GDestroyNotify free_data)
{
  CmEvoPage *page = (CmEvoPage *)widget;
  Job *job = g_new0 (Job, 1);

  job->func = func;
  job->data = data;
  job->free_data = free_data;
  job->ok_title = g_strdup (ok_title);
  job->fail_title = g_strdup (fail_title);
  if (page->busy || page->cancellable == NULL)
    {
      if (page->cancellable)
        show_alert (page, GTK_MESSAGE_WARNING, fail_title,
                    "Another action was still running: try again when it has ended.");
      job_free (job);
      return FALSE;
    }
  run_job (page, job, status);
  return TRUE;
}

static void
page_load (CmEvoPage *page)
{
  Job *job;

  if (page->busy)
    return;
  job = g_new0 (Job, 1);
  run_job (page, job, "Reading the cards in the readers and Evolution's settings\342\200\246");
}

static gboolean
fix_job (gpointer data, char **report, GCancellable *cancellable, GError **error)
{
  return cm_evo_job_fix_sync (report, cancellable, error);
}

static gboolean
undo_job (gpointer data, char **report, GCancellable *cancellable, GError **error)
{
  return cm_evo_job_undo_sync (report, cancellable, error);
}

static gboolean
make_available_job (gpointer data, char **report, GCancellable *cancellable, GError **error)
{
  return cm_evo_job_make_available_sync (report, cancellable, error);
}

static void
on_fix (CmEvoPage *page)
{
  cm_evo_page_run (GTK_WIDGET (page), "Fixing the S/MIME settings\342\200\246",
                   "Fix S/MIME Settings", "The S/MIME settings were not fixed", fix_job, NULL,
                   NULL);
}

static void
on_undo (CmEvoPage *page)
{
  cm_evo_page_run (GTK_WIDGET (page), "Restoring the S/MIME settings\342\200\246",
                   "Last fix undone", "The last fix was not undone", undo_job, NULL, NULL);
}

static void
on_make_available (CmEvoPage *page)
{
  cm_evo_page_run (GTK_WIDGET (page), "Loading the card module\342\200\246",
                   "Card certificates available", "The card module could not be loaded",
                   make_available_job, NULL, NULL);
}

static void
on_trust (CmEvoPage *page)
{
  cm_evo_setup_trust_start (GTK_WIDGET (page));
}

static void
on_directory (CmEvoPage *page)
{
  cm_evo_setup_directory_start (GTK_WIDGET (page), page->dir);
}

static void
republish_done (gpointer data)
{
  CmEvoPage *page = data;

  if (page->cancellable)
    update_sensitive (page);
  g_object_unref (page);
}

static void
on_republish (CmEvoPage *page)
{
  GtkWidget *toplevel = gtk_widget_get_toplevel (GTK_WIDGET (page));

  if (cm_evo_republish_running () || page->shell == NULL)
    return;
  cm_evo_republish_start_from_page (page->shell,
                                    GTK_IS_WINDOW (toplevel) ? GTK_WINDOW (toplevel) : NULL,
                                    page->alert_bar, republish_done, g_object_ref (page));
  update_sensitive (page);
}

/* ---- Import Recovered Key... ---- */

typedef struct
{
  char *path;
  char *password; /* wiped when freed */
} Import;

static void
import_free (Import *imp)
{
  g_free (imp->path);
  cm_ldap_secret_free (imp->password);
  g_free (imp);
}

static gboolean
import_job (gpointer data, char **report, GCancellable *cancellable, GError **error)
{
  Import *imp = data;

  return cm_evo_job_import_sync (imp->path, imp->password, report, cancellable, error);
}

typedef struct
{
  CmEvoPage *page; /* referenced */
  char *path;
} ImportAsk;

static void
import_password (char *secret, GError *error, gpointer data)
{
  ImportAsk *ask = data;

  if (secret && ask->page->cancellable)
    {
      Import *imp = g_new0 (Import, 1);
      imp->path = g_steal_pointer (&ask->path);
      imp->password = g_steal_pointer (&secret);
      cm_evo_page_run (GTK_WIDGET (ask->page), "Importing the recovered keys\342\200\246",
                       "Recovered keys imported", "Nothing was imported", import_job, imp,
                       (GDestroyNotify)import_free);
    }
  cm_ldap_secret_free (secret);
  g_clear_error (&error);
  g_object_unref (ask->page);
  g_free (ask->path);
  g_free (ask);
}

static void
import_file_chosen (GtkDialog *chooser, gint response, CmEvoPage *page)
{
  if (response == GTK_RESPONSE_ACCEPT)
    {
      ImportAsk *ask = g_new0 (ImportAsk, 1);
      g_autofree char *base = NULL;

      ask->page = g_object_ref (page);
      ask->path = gtk_file_chooser_get_filename (GTK_FILE_CHOOSER (chooser));
      base = g_path_get_basename (ask->path);
      cm_evo_secret_ask (GTK_WINDOW (gtk_widget_get_toplevel (GTK_WIDGET (page))),
                         CM_EVO_SECRET_P12_PASSWORD, base, NULL, import_password, ask);
    }
  gtk_widget_destroy (GTK_WIDGET (chooser));
}

static void
on_import (CmEvoPage *page)
{
  GtkWidget *chooser
    = cm_evo_file_chooser_new (GTK_WIDGET (page), "Import Recovered Key", "_Import");
  GtkFileFilter *filter = gtk_file_filter_new ();

  gtk_file_filter_set_name (filter, "Recovered keys (PKCS#12: *.p12, *.pfx)");
  gtk_file_filter_add_pattern (filter, "*.p12");
  gtk_file_filter_add_pattern (filter, "*.pfx");
  gtk_file_filter_add_pattern (filter, "*.P12");
  gtk_file_filter_add_pattern (filter, "*.PFX");
  gtk_file_chooser_add_filter (GTK_FILE_CHOOSER (chooser), filter);
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
  CmEvoPage *page = g_object_new (cm_evo_page_get_type (), "orientation", GTK_ORIENTATION_VERTICAL,
                                  "spacing", 6, NULL);

  page->shell = shell;
  g_object_add_weak_pointer (G_OBJECT (shell), (gpointer *)&page->shell);
  return GTK_WIDGET (page);
}

/* The setup steps, each with its buttons. */
static void
build_steps (CmEvoPage *page, GtkWidget *content)
{
  static const char *const names[CM_EVO_N_STEPS]
    = { "Evolution and its certificate database",
        "Card certificates in Evolution",
        "DoD trust chain",
        "Address list (directory) settings",
        "S/MIME settings of the mail identities",
        "Publish your certificates to the address list" };
  GtkWidget *buttons;

  for (int i = 0; i < CM_EVO_N_STEPS; i++)
    {
      g_autofree char *title = g_strdup_printf ("%d. %s", i + 1, names[i]);
      page->steps[i].name = names[i];
      page->steps[i].body = add_section (content, title, NULL, &page->steps[i].title);
    }
  buttons = add_buttons (page->steps[CM_EVO_STEP_CARD].body);
  page->make_available = add_button (
    buttons, "_Make Card Certificates Available",
    "Load the card's PKCS#11 module (OpenSC) into Evolution now and keep it for the next start",
    G_CALLBACK (on_make_available), page);
  buttons = add_buttons (page->steps[CM_EVO_STEP_TRUST].body);
  page->trust = add_button (buttons, "Install DoD _Trust Chain\342\200\246",
                            "Trust the DoD root you confirm from the PKCS#7 bundle downloaded "
                            "from DISA, and add its CAs",
                            G_CALLBACK (on_trust), page);
  buttons = add_buttons (page->steps[CM_EVO_STEP_DIRECTORY].body);
  page->directory = add_button (buttons, "_Directory Settings\342\200\246",
                                "The address list (LDAP) server to publish your certificates "
                                "to: tested, then saved",
                                G_CALLBACK (on_directory), page);
  buttons = add_buttons (page->steps[CM_EVO_STEP_SMIME].body);
  page->fix = add_button (buttons, "_Fix S/MIME Settings",
                          "Point every stale identity at the right certificates of your card",
                          G_CALLBACK (on_fix), page);
  page->undo = add_button (buttons, "_Undo Last Fix",
                           "Restore the S/MIME settings as they were before the last fix",
                           G_CALLBACK (on_undo), page);
  buttons = add_buttons (page->steps[CM_EVO_STEP_REPUBLISH].body);
  page->republish = add_button (buttons, "Re_publish Certificates to GAL",
                                "Publish the email certificates of your card to your entry in the "
                                "address list (GAL)",
                                G_CALLBACK (on_republish), page);
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

  build_steps (page, content);
  page->doctor = add_section (content, "Problems found by cacmail doctor", NULL, NULL);
  page->cards = add_section (content, "Cards in the readers", NULL, NULL);
  page->certs = add_section (content, "Personas and certificates", NULL, NULL);
  page->recovered = add_section (content, "Recovered keys (decrypt only)", NULL, NULL);
  buttons = add_buttons (page->recovered);
  page->import = add_button (buttons, "_Import Recovered Key\342\200\246",
                             "Import a PKCS#12 file from your key-recovery agent to read old "
                             "encrypted mail",
                             G_CALLBACK (on_import), page);
  page->problems = add_section (content, "Could not be read", &page->problems_section, NULL);
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
  if (page->doctor_cancellable)
    g_cancellable_cancel (page->doctor_cancellable);
  g_clear_object (&page->cancellable);
  g_clear_object (&page->doctor_cancellable);
  g_clear_object (&page->watch);
  g_clear_pointer (&page->dir, cm_evo_directory_free);
  if (page->shell)
    {
      g_object_remove_weak_pointer (G_OBJECT (page->shell), (gpointer *)&page->shell);
      page->shell = NULL;
    }
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
