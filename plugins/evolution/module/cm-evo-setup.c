/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cm-evo-setup.c: the Smart Card page's setup dialogs, the steps of `cacmail setup` that need
 * the user's input:
 * - Install DoD Trust Chain...: choose the PKCS#7 bundle downloaded from DISA; the dialog lists
 *   its roots with their SHA-256 fingerprints and the user confirms one; then it shows what
 *   would change (core/cm-bundle.h analysis, cm_nssdb_chain_plan) and installs it into
 *   Evolution's database and cacmail's CA bundle (trust C,C, on that root only; intermediates
 *   without trust; cross-certificates skipped).
 * - Directory Settings...: URI, search base, bind method and the server's CA file; the
 *   connection is tested (verified TLS, the base read) and only then the settings are saved
 *   in cacmail.conf (cm_ldap_config_test_sync, cm_ldap_config_save).
 * The work runs in the page's worker (cm_evo_page_run); the outcome is in its alert bar. */
#include "cm-evo-module.h"

GtkWidget *
cm_evo_file_chooser_new (GtkWidget *page, const char *title, const char *accept)
{
  GtkWidget *toplevel = gtk_widget_get_toplevel (page);
  GtkWidget *chooser = gtk_file_chooser_dialog_new (
    title, GTK_IS_WINDOW (toplevel) ? GTK_WINDOW (toplevel) : NULL, GTK_FILE_CHOOSER_ACTION_OPEN,
    "_Cancel", GTK_RESPONSE_CANCEL, accept, GTK_RESPONSE_ACCEPT, NULL);

  gtk_file_chooser_set_current_folder (GTK_FILE_CHOOSER (chooser), g_get_home_dir ());
  gtk_window_set_modal (GTK_WINDOW (chooser), TRUE);
  return chooser;
}

/* A dialog over @page's window with Cancel and @accept, its content area a vertical box. */
static GtkWidget *
dialog_new (GtkWidget *page, const char *title, const char *accept, GtkWidget **content)
{
  GtkWidget *toplevel = gtk_widget_get_toplevel (page);
  GtkWidget *dialog
    = gtk_dialog_new_with_buttons (title, GTK_IS_WINDOW (toplevel) ? GTK_WINDOW (toplevel) : NULL,
                                   GTK_DIALOG_MODAL | GTK_DIALOG_DESTROY_WITH_PARENT, "_Cancel",
                                   GTK_RESPONSE_CANCEL, accept, GTK_RESPONSE_ACCEPT, NULL);

  *content = gtk_dialog_get_content_area (GTK_DIALOG (dialog));
  g_object_set (*content, "margin", 12, "spacing", 8, NULL);
  gtk_dialog_set_default_response (GTK_DIALOG (dialog), GTK_RESPONSE_ACCEPT);
  return dialog;
}

/* ---- Install DoD Trust Chain... ---- */

typedef struct
{
  GtkWidget *page;   /* referenced */
  GtkWidget *dialog; /* destroyed with the trust step */
  GtkWidget *plan, *install;
  CmBundle *bundle;
  CmBundleAnalysis *analysis; /* of the chosen root, or NULL */
  GtkWidget *none;            /* the hidden radio button that is active until one is chosen */
} Trust;

static void
trust_free (Trust *t)
{
  g_clear_pointer (&t->analysis, cm_bundle_analysis_free);
  g_clear_pointer (&t->bundle, cm_bundle_free);
  g_clear_object (&t->page);
  g_free (t);
}

/* "AB:CD:..." as DISA publishes fingerprints. Caller frees. */
static char *
colon_hex (const char *hex)
{
  GString *out = g_string_new (NULL);

  for (gsize i = 0; hex[i] && hex[i + 1]; i += 2)
    g_string_append_printf (out, "%s%c%c", i ? ":" : "", g_ascii_toupper (hex[i]),
                            g_ascii_toupper (hex[i + 1]));
  return g_string_free (out, FALSE);
}

static const char *
cert_name (CmCert *c)
{
  return cm_cert_get_subject_cn (c) ? cm_cert_get_subject_cn (c) : cm_cert_get_subject (c);
}

/* What installing the analysis would do, for the dialog and the report. Caller frees. */
static char *
trust_plan_text (CmBundleAnalysis *a, GError **error)
{
  g_autofree char *dir = cm_evo_nssdb_dir ();
  g_autofree char *bundle_path = cm_nssdb_default_bundle_path ();
  g_autoptr (CmNssDb) db = cm_nss_db_open_sync (dir, CM_NSS_DB_READ_ONLY, NULL, error);
  g_autoptr (GPtrArray) plan = db ? cm_nssdb_chain_plan (db, a, bundle_path, error) : NULL;
  GPtrArray *items = cm_bundle_analysis_get_items (a);
  GString *out;

  if (plan == NULL)
    return NULL;
  out = g_string_new (NULL);
  g_string_append_printf (out,
                          "Trust %s for email and TLS; %u intermediate CA%s under it; %u "
                          "skipped.",
                          cert_name (cm_bundle_analysis_get_root (a)),
                          cm_bundle_analysis_count (a, CM_BUNDLE_INTERMEDIATE),
                          cm_bundle_analysis_count (a, CM_BUNDLE_INTERMEDIATE) == 1 ? "" : "s",
                          cm_bundle_analysis_count (a, CM_BUNDLE_SKIPPED));
  for (guint i = 0; i < items->len; i++)
    {
      CmBundleItem *it = g_ptr_array_index (items, i);
      if (it->role == CM_BUNDLE_SKIPPED)
        g_string_append_printf (out, "\nSkipped: %s: %s", cert_name (it->cert), it->reason);
    }
  if (plan->len == 0)
    g_string_append (out, "\nNothing would change: Evolution has this chain already.");
  else
    g_string_append (out, "\nWhat would change:");
  for (guint i = 0; i < plan->len; i++)
    g_string_append_printf (out, "\n\342\200\242 %s", (char *)g_ptr_array_index (plan, i));
  return g_string_free (out, FALSE);
}

static void
trust_gone (gpointer data, GObject *dialog)
{
  trust_free (data);
}

static void
root_toggled (GtkToggleButton *button, Trust *t)
{
  const char *sha = g_object_get_data (G_OBJECT (button), "sha256");
  g_autoptr (GError) error = NULL;
  g_autofree char *text = NULL;

  if (!gtk_toggle_button_get_active (button) || sha == NULL)
    return;
  g_clear_pointer (&t->analysis, cm_bundle_analysis_free);
  t->analysis = cm_bundle_analyse (t->bundle, sha, cm_time_now (), &error);
  text = t->analysis ? trust_plan_text (t->analysis, &error) : NULL;
  gtk_label_set_text (GTK_LABEL (t->plan), text ? text : error->message);
  if (text == NULL)
    g_clear_pointer (&t->analysis, cm_bundle_analysis_free);
  gtk_widget_set_sensitive (t->install, t->analysis != NULL);
}

typedef struct
{
  CmBundle *bundle;
  CmBundleAnalysis *analysis;
  char *plan;
} TrustJob;

static void
trust_job_free (TrustJob *j)
{
  cm_bundle_analysis_free (j->analysis);
  cm_bundle_free (j->bundle);
  g_free (j->plan);
  g_free (j);
}

static gboolean
trust_job (gpointer data, char **report, GCancellable *cancellable, GError **error)
{
  TrustJob *j = data;
  g_autofree char *dir = cm_evo_nssdb_dir ();
  g_autofree char *bundle_path = cm_nssdb_default_bundle_path ();
  g_autoptr (CmNssDb) db = cm_nss_db_open_sync (dir, CM_NSS_DB_DEFAULT, cancellable, error);

  if (db == NULL || !cm_nssdb_chain_install_sync (db, j->analysis, bundle_path, cancellable, error))
    return FALSE;
  *report = g_strdup_printf ("%s\nThe CAs are in Evolution's certificate database and in %s "
                             "(which cacmail uses to verify the address list server).",
                             j->plan, bundle_path);
  return TRUE;
}

static void
trust_response (GtkDialog *dialog, gint response, Trust *t)
{
  if (response == GTK_RESPONSE_ACCEPT && t->analysis)
    {
      TrustJob *j = g_new0 (TrustJob, 1);
      g_autoptr (GError) error = NULL;

      j->plan = trust_plan_text (t->analysis, &error);
      j->bundle = g_steal_pointer (&t->bundle);
      j->analysis = g_steal_pointer (&t->analysis);
      if (j->plan == NULL)
        j->plan = g_strdup ("");
      cm_evo_page_run (t->page, "Installing the DoD trust chain\342\200\246",
                       "DoD trust chain installed", "The DoD trust chain was not installed",
                       trust_job, j, (GDestroyNotify)trust_job_free);
    }
  gtk_widget_destroy (GTK_WIDGET (dialog));
}

static void
trust_confirm (GtkWidget *page, CmBundle *bundle)
{
  Trust *t = g_new0 (Trust, 1);
  GPtrArray *roots = cm_bundle_get_roots (bundle);
  GtkWidget *content, *label;
  g_autofree char *intro = NULL;

  t->page = g_object_ref (page);
  t->bundle = bundle;
  t->dialog = dialog_new (page, "Confirm the DoD Root", "_Install", &content);
  t->install = gtk_dialog_get_widget_for_response (GTK_DIALOG (t->dialog), GTK_RESPONSE_ACCEPT);
  gtk_widget_set_sensitive (t->install, FALSE);
  intro
    = g_strdup_printf ("%s holds %u CA certificates, %u of them roots. Compare each "
                       "root's SHA-256 fingerprint with the one DISA publishes, and choose "
                       "the root to trust:",
                       cm_bundle_get_name (bundle), cm_bundle_get_certs (bundle)->len, roots->len);
  label = cm_evo_add_label (content, intro, FALSE);
  gtk_label_set_selectable (GTK_LABEL (label), FALSE);
  t->none = gtk_radio_button_new (NULL);
  gtk_widget_set_no_show_all (t->none, TRUE);
  gtk_container_add (GTK_CONTAINER (content), t->none);
  for (guint i = 0; i < roots->len; i++)
    {
      CmCert *root = g_ptr_array_index (roots, i);
      g_autofree char *fp = colon_hex (cm_cert_get_sha256 (root));
      g_autofree char *text = g_strdup_printf ("%s\nSHA-256 %s", cert_name (root), fp);
      GtkWidget *radio
        = gtk_radio_button_new_with_label_from_widget (GTK_RADIO_BUTTON (t->none), text);
      gtk_label_set_line_wrap (GTK_LABEL (gtk_bin_get_child (GTK_BIN (radio))), TRUE);
      gtk_label_set_max_width_chars (GTK_LABEL (gtk_bin_get_child (GTK_BIN (radio))), 70);
      g_object_set_data_full (G_OBJECT (radio), "sha256", g_strdup (cm_cert_get_sha256 (root)),
                              g_free);
      g_signal_connect (radio, "toggled", G_CALLBACK (root_toggled), t);
      gtk_container_add (GTK_CONTAINER (content), radio);
    }
  t->plan
    = cm_evo_add_label (content, "Nothing is changed until you choose a root and Install.", FALSE);
  g_signal_connect (t->dialog, "response", G_CALLBACK (trust_response), t);
  g_object_weak_ref (G_OBJECT (t->dialog), trust_gone, t);
  gtk_widget_show_all (t->dialog);
}

static void
trust_file_chosen (GtkDialog *chooser, gint response, GtkWidget *page)
{
  g_autofree char *path = NULL;
  g_autoptr (GError) error = NULL;
  CmBundle *bundle;

  if (response == GTK_RESPONSE_ACCEPT)
    path = gtk_file_chooser_get_filename (GTK_FILE_CHOOSER (chooser));
  gtk_widget_destroy (GTK_WIDGET (chooser));
  if (path && (bundle = cm_bundle_load_file (path, &error)))
    trust_confirm (page, bundle);
  else if (path)
    {
      EAlert *alert = cm_evo_alert_new (GTK_MESSAGE_ERROR, "The DoD trust chain was not installed",
                                        error->message);
      cm_evo_page_show_alert (page, alert);
      g_object_unref (alert);
    }
  g_object_unref (page);
}

void
cm_evo_setup_trust_start (GtkWidget *page)
{
  GtkWidget *chooser
    = cm_evo_file_chooser_new (page, "Choose the DoD PKI Bundle from DISA", "_Open");
  GtkFileFilter *filter = gtk_file_filter_new ();

  gtk_file_filter_set_name (filter, "PKCS#7 certificate bundles (*.p7b, *.p7c, *.pem)");
  gtk_file_filter_add_pattern (filter, "*.p7b");
  gtk_file_filter_add_pattern (filter, "*.p7c");
  gtk_file_filter_add_pattern (filter, "*.pem");
  gtk_file_filter_add_pattern (filter, "*.P7B");
  gtk_file_chooser_add_filter (GTK_FILE_CHOOSER (chooser), filter);
  g_signal_connect (chooser, "response", G_CALLBACK (trust_file_chosen), g_object_ref (page));
  gtk_widget_show (chooser);
}

/* ---- Directory Settings... ---- */

static const char *const binds[] = { "simple", "gssapi", "external" };
static const char *const bind_labels[]
  = { "Password (simple bind; the password is asked when you republish)",
      "Kerberos (GSSAPI, after logging in with the card)", "TLS client certificate (EXTERNAL)" };

/* What was typed last, so that a failed test does not lose it. */
static CmEvoDirectory *typed;

typedef struct
{
  GtkWidget *page; /* referenced */
  GtkWidget *uri, *base, *ca;
  GtkWidget *bind[G_N_ELEMENTS (binds)];
} Directory;

static void
directory_free (Directory *d)
{
  g_clear_object (&d->page);
  g_free (d);
}

static void
directory_gone (gpointer data, GObject *dialog)
{
  directory_free (data);
}

static gboolean
directory_job (gpointer data, char **report, GCancellable *cancellable, GError **error)
{
  CmLdapConfig *cfg = data;
  g_autofree char *path = cm_ldap_config_default_path ();
  g_autofree char *tested = NULL, *backup = NULL;
  g_autoptr (GPtrArray) plan = NULL;
  g_autoptr (GString) out = g_string_new (NULL);

  if (!cm_ldap_config_test_sync (cfg, &tested, cancellable, error))
    {
      cm_evo_error_to_page_words (error ? *error : NULL);
      g_prefix_error (error, "Nothing was saved: ");
      return FALSE;
    }
  if ((plan = cm_ldap_config_plan_save (cfg, path, NULL, error)) == NULL
      || !cm_ldap_config_save (cfg, path, NULL, &backup, error))
    return FALSE;
  g_string_append_printf (out, "Tested: %s.", tested);
  if (plan->len == 0)
    g_string_append_printf (out, "\n%s holds these settings already.", path);
  else
    {
      g_string_append_printf (out, "\nSaved in %s", path);
      if (backup)
        g_string_append_printf (out, " (the previous file is %s)", backup);
      g_string_append_c (out, ':');
    }
  for (guint i = 0; i < plan->len; i++)
    g_string_append_printf (out, "\n\342\200\242 %s", (char *)g_ptr_array_index (plan, i));
  *report = g_string_free (g_steal_pointer (&out), FALSE);
  return TRUE;
}

/* The file's other settings (timeout, email, ...) with what was typed: they apply to the test
 * as they will later. NULL with @error. */
static CmLdapConfig *
typed_config (GError **error)
{
  g_autoptr (CmLdapConfig) cfg = cm_ldap_config_new ();
  g_autofree char *path = cm_ldap_config_default_path ();

  if (!cm_ldap_config_load_file (cfg, path, FALSE, NULL))
    {
      cm_ldap_config_free (cfg);
      cfg = cm_ldap_config_new ();
    }
  if (*typed->uri == '\0')
    {
      g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_CONFIG,
                   "no server URI: type the address list server's URI, e.g. "
                   "ldaps://gal.example.mil");
      return NULL;
    }
  if (!cm_ldap_config_set (cfg, "uri", typed->uri, error)
      || !cm_ldap_config_set (cfg, "base", *typed->base ? typed->base : NULL, error)
      || !cm_ldap_config_set (cfg, "bind", typed->bind, error)
      || (*typed->ca_file && !cm_ldap_config_set (cfg, "ca-file", typed->ca_file, error)))
    return NULL;
  return g_steal_pointer (&cfg);
}

static void
directory_response (GtkDialog *dialog, gint response, Directory *d)
{
  g_autoptr (CmLdapConfig) cfg = NULL;
  g_autoptr (GError) error = NULL;

  if (response != GTK_RESPONSE_ACCEPT)
    {
      gtk_widget_destroy (GTK_WIDGET (dialog));
      return;
    }
  cm_evo_directory_free (typed);
  typed = g_new0 (CmEvoDirectory, 1);
  typed->uri = g_strstrip (g_strdup (gtk_entry_get_text (GTK_ENTRY (d->uri))));
  typed->base = g_strstrip (g_strdup (gtk_entry_get_text (GTK_ENTRY (d->base))));
  typed->ca_file = g_strstrip (g_strdup (gtk_entry_get_text (GTK_ENTRY (d->ca))));
  typed->bind = g_strdup (binds[0]);
  for (gsize i = 0; i < G_N_ELEMENTS (binds); i++)
    if (gtk_toggle_button_get_active (GTK_TOGGLE_BUTTON (d->bind[i])))
      {
        g_free (typed->bind);
        typed->bind = g_strdup (binds[i]);
      }
  if ((cfg = typed_config (&error)) == NULL)
    {
      EAlert *alert = cm_evo_alert_new (GTK_MESSAGE_ERROR, "The directory settings were not saved",
                                        error->message);
      cm_evo_page_show_alert (d->page, alert);
      g_object_unref (alert);
    }
  else
    {
      g_autofree char *status
        = g_strdup_printf ("Testing the connection to %s\342\200\246", typed->uri);
      cm_evo_page_run (d->page, status, "Directory settings saved",
                       "The directory settings were not saved", directory_job,
                       g_steal_pointer (&cfg), (GDestroyNotify)cm_ldap_config_free);
    }
  gtk_widget_destroy (GTK_WIDGET (dialog));
}

static GtkWidget *
add_entry (GtkWidget *grid, int row, const char *label, const char *value, const char *hint)
{
  GtkWidget *l = gtk_label_new_with_mnemonic (label);
  GtkWidget *e = gtk_entry_new ();
  g_autofree char *name = g_strdup (gtk_label_get_text (GTK_LABEL (l)));

  /* the entry's accessible name is its label's text (screen readers, the GUI test) */
  atk_object_set_name (gtk_widget_get_accessible (e), name);
  gtk_label_set_xalign (GTK_LABEL (l), 1);
  gtk_label_set_mnemonic_widget (GTK_LABEL (l), e);
  gtk_entry_set_text (GTK_ENTRY (e), value ? value : "");
  gtk_entry_set_placeholder_text (GTK_ENTRY (e), hint);
  gtk_entry_set_width_chars (GTK_ENTRY (e), 48);
  gtk_entry_set_activates_default (GTK_ENTRY (e), TRUE);
  gtk_widget_set_hexpand (e, TRUE);
  gtk_grid_attach (GTK_GRID (grid), l, 0, row, 1, 1);
  gtk_grid_attach (GTK_GRID (grid), e, 1, row, 1, 1);
  return e;
}

void
cm_evo_setup_directory_start (GtkWidget *page, const CmEvoDirectory *current)
{
  Directory *d = g_new0 (Directory, 1);
  const CmEvoDirectory *fill = typed ? typed : current;
  GtkWidget *content, *grid, *dialog, *label;
  g_autofree char *path = cm_ldap_config_default_path ();
  g_autofree char *intro = NULL;

  d->page = g_object_ref (page);
  dialog = dialog_new (page, "Directory Settings", "_Test and Save", &content);
  intro = g_strdup_printf ("The address list (LDAP) server that holds your entry. The connection "
                           "is tested (TLS with the server certificate verified, the search base "
                           "read) before anything is saved in %s.",
                           path);
  label = cm_evo_add_label (content, intro, FALSE);
  gtk_label_set_selectable (GTK_LABEL (label), FALSE);
  grid = gtk_grid_new ();
  gtk_grid_set_row_spacing (GTK_GRID (grid), 6);
  gtk_grid_set_column_spacing (GTK_GRID (grid), 8);
  gtk_container_add (GTK_CONTAINER (content), grid);
  d->uri = add_entry (grid, 0, "Server _URI", fill ? fill->uri : NULL, "ldaps://gal.example.mil");
  d->base
    = add_entry (grid, 1, "Search _base", fill ? fill->base : NULL, "ou=people,dc=example,dc=mil");
  d->ca = add_entry (grid, 2, "Server _CA file", fill ? fill->ca_file : NULL,
                     "only when the DoD trust chain does not cover the server");
  label = cm_evo_add_label (content, "Bind method:", FALSE);
  gtk_label_set_selectable (GTK_LABEL (label), FALSE);
  for (gsize i = 0; i < G_N_ELEMENTS (binds); i++)
    {
      d->bind[i] = gtk_radio_button_new_with_label_from_widget (
        i ? GTK_RADIO_BUTTON (d->bind[0]) : NULL, bind_labels[i]);
      gtk_toggle_button_set_active (GTK_TOGGLE_BUTTON (d->bind[i]),
                                    fill && g_strcmp0 (fill->bind, binds[i]) == 0);
      gtk_container_add (GTK_CONTAINER (content), d->bind[i]);
    }
  g_signal_connect (dialog, "response", G_CALLBACK (directory_response), d);
  g_object_weak_ref (G_OBJECT (dialog), directory_gone, d);
  gtk_widget_show_all (dialog);
}
