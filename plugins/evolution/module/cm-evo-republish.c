/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cm-evo-republish.c: "Republish Certificates to GAL" from the mail window. The settings come
 * from cacmail's config file ([ldap] in $XDG_CONFIG_HOME/cacmail/cacmail.conf, as for
 * `cacmail republish`); the address defaults to Evolution's default mail identity and the NSS
 * database to Evolution's own. libcacmail-ldap does the work in a GTask worker; its progress
 * shows in an EActivity in the window's status bar (with a Cancel button), the PIN and the LDAP
 * password are asked in dialogs, and the outcome is an EAlert in the mail view. */
#include "cm-evo-module.h"
#include <signal.h>
#include <cert.h>
#include <pk11pub.h>
#include <secerr.h>
#include <secmod.h>

/* Republishes running in this process (the menu's and the page's). Main thread. */
static guint running;

typedef struct
{
  EShellView *shell_view;    /* referenced, or NULL when started from the page */
  EAlertSink *sink;          /* referenced, nullable: the mail view, told the outcome */
  GtkWidget *alert_bar;      /* referenced, nullable: the page's alert bar, told too */
  GtkWindow *window;         /* referenced: parent of the dialogs */
  EActivity *activity;       /* referenced */
  GCancellable *cancellable; /* referenced: the activity's */
  char *email;               /* Evolution's default address, or NULL */
  char *address;             /* the address published for (worker) */
  gboolean logged_in;        /* the worker asked for the PIN already */
  GError *login_error;       /* why logging in to the card failed (worker) */
  CmEvoDoneFunc done;
  gpointer done_data;
} Republish;

static void
republish_free (Republish *r)
{
  g_clear_object (&r->shell_view);
  g_clear_object (&r->sink);
  g_clear_object (&r->alert_bar);
  g_clear_object (&r->window);
  g_clear_object (&r->activity);
  g_clear_object (&r->cancellable);
  g_free (r->email);
  g_free (r->address);
  g_clear_error (&r->login_error);
  g_free (r);
}

/* The address of Evolution's default mail identity, else of the first one with an address. */
static char *
default_address (EShell *shell)
{
  ESourceRegistry *registry = e_shell_get_registry (shell);
  g_autoptr (ESource) def = e_source_registry_ref_default_mail_identity (registry);
  GList *all;
  char *address = NULL;

  if (def && e_source_has_extension (def, E_SOURCE_EXTENSION_MAIL_IDENTITY))
    address = e_source_mail_identity_dup_address (
      e_source_get_extension (def, E_SOURCE_EXTENSION_MAIL_IDENTITY));
  if (address && *address)
    return address;
  g_free (address);
  address = NULL;
  all = e_source_registry_list_enabled (registry, E_SOURCE_EXTENSION_MAIL_IDENTITY);
  for (GList *l = all; l && !address; l = l->next)
    {
      address = e_source_mail_identity_dup_address (
        e_source_get_extension (l->data, E_SOURCE_EXTENSION_MAIL_IDENTITY));
      if (address && !*address)
        g_clear_pointer (&address, g_free);
    }
  g_list_free_full (all, g_object_unref);
  return address;
}

/* ---- called by the library in the worker ---- */

static char *
ask_secret (CmLdapSecretKind kind, const char *subject, gpointer data, GError **error)
{
  Republish *r = data;

  return cm_evo_secret_ask_from_thread (
    r->window, kind == CM_LDAP_SECRET_PIN ? CM_EVO_SECRET_PIN : CM_EVO_SECRET_LDAP_PASSWORD,
    subject, r->cancellable, error);
}

typedef struct
{
  EActivity *activity;
  CmLdapStep step;
  gboolean done;
} Progress;

static gboolean
progress_in_main (gpointer data)
{
  Progress *p = data;
  g_autofree char *text
    = g_strdup_printf ("Republishing certificates to GAL: %s (step %d of %d)",
                       cm_ldap_step_to_string (p->step), (int)p->step + 1, (int)CM_LDAP_N_STEPS);

  e_activity_set_text (p->activity, text);
  e_activity_set_percent (p->activity,
                          100.0 * ((int)p->step + (p->done ? 1 : 0)) / (int)CM_LDAP_N_STEPS);
  g_object_unref (p->activity);
  g_free (p);
  return G_SOURCE_REMOVE;
}

static gboolean
log_in_slot (Republish *r, PK11SlotInfo *slot, GError **error)
{
  const char *token = PK11_GetTokenName (slot);
  char *pin = ask_secret (CM_LDAP_SECRET_PIN, token, r, error);
  gboolean ok = FALSE;

  if (pin == NULL)
    return FALSE;
  if (PK11_CheckUserPassword (slot, pin) == SECSuccess)
    ok = TRUE;
  else if (PORT_GetError () == SEC_ERROR_BAD_PASSWORD)
    {
      g_autofree char *msg = cm_nss_pin_refused_message (slot, token);
      g_set_error_literal (error, CM_LDAP_ERROR, CM_LDAP_ERROR_PIN, msg);
    }
  else
    g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_CARD,
                 "cannot log in to the card '%s': check that it is still in the reader", token);
  cm_ldap_secret_free (pin);
  return ok;
}

/* The token of the card that holds the signing cert picked for @email, through core's one
 * NSS reader (each token one card, found by its serial number: a person's persona cards share
 * a label). New reference, or NULL when no card holds one. */
static PK11SlotInfo *
picked_card_token (const char *email, GCancellable *cancellable)
{
  g_autoptr (CmInventory) inv = cm_inventory_new ();
  g_autoptr (GPtrArray) tokens = cm_nss_list_card_tokens ();
  g_autoptr (CmPicks) picks = NULL;
  g_autoptr (GPtrArray) cards = NULL;
  CmCert *sign;

  for (guint i = 0; i < tokens->len; i++)
    cm_nss_add_token_certs_sync (inv, g_ptr_array_index (tokens, i), NULL, cancellable, NULL);
  picks = cm_select_for_email (inv, email, cm_time_now (), NULL);
  if ((sign = cm_picks_get_signing (picks)) == NULL)
    return NULL;
  cards = cm_inventory_cards_of (inv, sign);
  return cards->len ? cm_nss_find_token (cm_card_get_identity (g_ptr_array_index (cards, 0)))
                    : NULL;
}

/* Log in, with our PIN dialog, to the card that holds the certificates for @email. Inside
 * Evolution the NSS password callback is Evolution's: without this, NSS would ask for the PIN
 * through Evolution's generic prompt as soon as the library looks for the card's keys. */
static gboolean
log_in_cards (Republish *r, const char *email, GCancellable *cancellable, GError **error)
{
  PK11SlotInfo *slot = picked_card_token (email, cancellable);
  gboolean ok = TRUE;

  if (slot && PK11_NeedLogin (slot) && !PK11_IsLoggedIn (slot, NULL))
    ok = log_in_slot (r, slot, error) && !g_cancellable_set_error_if_cancelled (cancellable, error);
  if (slot)
    PK11_FreeSlot (slot);
  return ok;
}

/* Called by the library in the worker. When it starts on the card, log in first with our
 * dialog; a failure cancels the library's run and is reported instead. */
static void
progress (CmLdapStep step, gboolean done, double ms, gpointer data)
{
  Republish *r = data;
  Progress *p = g_new0 (Progress, 1);

  p->activity = g_object_ref (r->activity);
  p->step = step;
  p->done = done;
  g_main_context_invoke (NULL, progress_in_main, p);
  if (step == CM_LDAP_STEP_READ_CARD && !done && !r->logged_in)
    {
      r->logged_in = TRUE;
      if (!log_in_cards (r, r->address, r->cancellable, &r->login_error))
        g_cancellable_cancel (r->cancellable);
    }
}

static void
republish_thread (GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
  Republish *r = data;
  g_autoptr (CmLdapConfig) cfg = cm_ldap_config_new ();
  g_autofree char *path = cm_ldap_config_default_path ();
  GError *error = NULL;
  CmLdapResult *result = NULL;

  if (!cm_ldap_config_load_file (cfg, path, FALSE, &error))
    goto out;
  if (cm_ldap_config_get (cfg, "uri") == NULL
      || (cm_ldap_config_get (cfg, "base") == NULL && cm_ldap_config_get (cfg, "entry-dn") == NULL))
    {
      g_set_error (&error, CM_LDAP_ERROR, CM_LDAP_ERROR_CONFIG,
                   "no address list (LDAP) server is set: enter it with Directory Settings on "
                   "the Smart Card page (Edit, Preferences, Smart Card), then try again");
      goto out;
    }
  if (cm_ldap_config_get (cfg, "email") == NULL)
    {
      if (r->email == NULL)
        {
          g_set_error (&error, CM_LDAP_ERROR, CM_LDAP_ERROR_CONFIG,
                       "no address to publish for: add a mail account to Evolution, or set "
                       "email in the [ldap] group of %s",
                       path);
          goto out;
        }
      cm_ldap_config_set (cfg, "email", r->email, NULL);
    }
  /* Evolution's own NSS (its database, its modules, its PIN prompt): with "nssdb" set, the
   * library would install its own NSS password callback for the whole process */
  cm_ldap_config_set (cfg, "nssdb", NULL, NULL);
  r->address = g_strdup (cm_ldap_config_get (cfg, "email"));
  result = cm_ldap_republish_sync (cfg, CM_LDAP_REPUBLISH_DEFAULT, cm_time_now (), ask_secret, r,
                                   progress, r, cancellable, &error);
  if (result == NULL && r->login_error)
    {
      g_clear_error (&error);
      error = g_steal_pointer (&r->login_error);
    }
  else if (result == NULL && g_error_matches (error, CM_LDAP_ERROR, CM_LDAP_ERROR_CARD))
    {
      /* the library's hint names cacmail nss register; in Evolution the Smart Card page's
       * Make Card Certificates Available does it, so point there when no card module is
       * loaded */
      g_autofree char *loaded = cm_evo_card_module_loaded ();
      if (loaded == NULL)
        g_prefix_error (&error, "Evolution cannot see your card: load its module with Make Card "
                                "Certificates Available (Edit, Preferences, Smart Card). ");
    }
out:
  cm_evo_error_to_page_words (error);
  if (result)
    g_task_return_pointer (task, result, (GDestroyNotify)cm_ldap_result_free);
  else
    g_task_return_error (task, error);
}

/* ---- the outcome, in the main thread ---- */

static char *
describe (CmLdapResult *res)
{
  GPtrArray *certs = cm_ldap_result_get_new_certs (res);
  g_autoptr (GString) out = g_string_new (NULL);

  g_string_append_printf (out, "%s (%s) now holds:", cm_ldap_result_get_dn (res),
                          cm_ldap_result_get_email (res));
  for (guint i = 0; i < certs->len; i++)
    {
      CmCert *c = g_ptr_array_index (certs, i);
      g_autofree char *until = cm_time_format_date (cm_cert_get_not_after (c));
      g_string_append_printf (
        out, "\n%u. %s certificate %s, valid until %s", i + 1,
        cm_evo_role_label (cm_cert_get_role (c)),
        cm_cert_get_subject_cn (c) ? cm_cert_get_subject_cn (c) : cm_cert_get_subject (c), until);
    }
  g_string_append_printf (out, "\nuserSMIMECertificate %s, signed by the card.",
                          cm_ldap_result_get_old_smime (res) ? "replaced" : "added");
  if (cm_ldap_result_get_written (res))
    g_string_append (out, "\nVerified: the server holds exactly what was written.");
  if (cm_ldap_result_get_reordered (res))
    g_string_append (out, "\nWarning: the server changed the order of the certificates; "
                          "Evolution and gpgsm read only the first one.");
  if (cm_ldap_result_get_insecure (res))
    g_string_append (out, "\nWarning: no TLS was used (allow-plain-ldap = true in cacmail.conf): "
                          "the password and the certificates crossed the network in clear text.");
  return g_string_free (g_steal_pointer (&out), FALSE);
}

static void
republish_done (GObject *source, GAsyncResult *result, gpointer data)
{
  Republish *r = g_task_get_task_data (G_TASK (result));
  g_autoptr (GError) error = NULL;
  CmLdapResult *res = g_task_propagate_pointer (G_TASK (result), &error);
  EAlert *alert = NULL;

  if (res)
    {
      g_autofree char *text = describe (res);
      e_activity_set_state (r->activity, E_ACTIVITY_COMPLETED);
      alert = cm_evo_alert_new (GTK_MESSAGE_INFO,
                                "Certificates republished to the address list "
                                "(GAL)",
                                text);
      cm_ldap_result_free (res);
    }
  else if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    e_activity_set_state (r->activity, E_ACTIVITY_CANCELLED);
  else
    {
      g_autofree char *text = g_strdup_printf (
        "%s%s", error->message,
        g_error_matches (error, CM_LDAP_ERROR, CM_LDAP_ERROR_VERIFY) ? ""
                                                                     : " (Nothing was written.)");
      e_activity_set_state (r->activity, E_ACTIVITY_COMPLETED);
      alert = cm_evo_alert_new (GTK_MESSAGE_ERROR,
                                "Republishing to the address list (GAL) "
                                "failed",
                                text);
    }
  if (alert)
    {
      if (r->sink)
        e_alert_sink_submit_alert (r->sink, alert);
      if (r->alert_bar)
        {
          e_alert_bar_clear (E_ALERT_BAR (r->alert_bar));
          e_alert_bar_submit_alert (E_ALERT_BAR (r->alert_bar), alert);
        }
      g_object_unref (alert);
    }
  running--;
  if (r->done)
    r->done (r->done_data);
}

gboolean
cm_evo_republish_running (void)
{
  return running > 0;
}

static void
start (Republish *r, EShell *shell, EShellBackend *backend)
{
  g_autoptr (GTask) task = NULL;
  struct sigaction pipe_action;

  /* a server that goes away mid-write must give an error, not end Evolution */
  if (sigaction (SIGPIPE, NULL, &pipe_action) == 0 && pipe_action.sa_handler == SIG_DFL)
    signal (SIGPIPE, SIG_IGN);
  running++;
  r->email = default_address (shell);
  r->cancellable = g_cancellable_new ();
  r->activity = e_activity_new ();
  e_activity_set_text (r->activity, "Republishing certificates to GAL");
  e_activity_set_icon_name (r->activity, "send-to-symbolic");
  e_activity_set_cancellable (r->activity, r->cancellable);
  e_activity_set_alert_sink (r->activity, r->sink);
  if (backend)
    e_shell_backend_add_activity (backend, r->activity);
  task = g_task_new (NULL, r->cancellable, republish_done, NULL);
  g_task_set_source_tag (task, cm_evo_republish_start);
  /* a refused PIN cancels the library's run (progress()) and is then the task's error: GTask
   * must not turn it into "cancelled", which ends the run without a word */
  g_task_set_check_cancellable (task, FALSE);
  g_task_set_task_data (task, r, (GDestroyNotify)republish_free);
  g_task_run_in_thread (task, republish_thread);
}

void
cm_evo_republish_start (EShellView *shell_view, CmEvoDoneFunc done, gpointer done_data)
{
  Republish *r = g_new0 (Republish, 1);
  EShellWindow *window = e_shell_view_get_shell_window (shell_view);

  r->shell_view = g_object_ref (shell_view);
  r->sink = g_object_ref (E_ALERT_SINK (e_shell_view_get_shell_content (shell_view)));
  r->window = GTK_WINDOW (g_object_ref (window));
  r->done = done;
  r->done_data = done_data;
  start (r, e_shell_window_get_shell (window), e_shell_view_get_shell_backend (shell_view));
}

/* The mail view of the first Evolution window that has one, or NULL. */
static EShellView *
mail_view (EShell *shell)
{
  for (GList *l = gtk_application_get_windows (GTK_APPLICATION (shell)); l; l = l->next)
    if (E_IS_SHELL_WINDOW (l->data))
      {
        EShellView *view = e_shell_window_get_shell_view (l->data, "mail");
        if (view)
          return view;
      }
  return NULL;
}

void
cm_evo_republish_start_from_page (EShell *shell, GtkWindow *parent, GtkWidget *alert_bar,
                                  CmEvoDoneFunc done, gpointer done_data)
{
  Republish *r = g_new0 (Republish, 1);
  EShellView *view = mail_view (shell);

  /* the progress in the mail window's status bar, the outcome on the page and in the mail
   * view (the page may be closed by then) */
  r->shell_view = view ? g_object_ref (view) : NULL;
  r->sink = view ? g_object_ref (E_ALERT_SINK (e_shell_view_get_shell_content (view))) : NULL;
  r->alert_bar = g_object_ref (alert_bar);
  r->window = parent ? g_object_ref (parent) : NULL;
  r->done = done;
  r->done_data = done_data;
  start (r, shell,
         view ? e_shell_view_get_shell_backend (view)
              : e_shell_get_backend_by_name (shell, "mail"));
}
