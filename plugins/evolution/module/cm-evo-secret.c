/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cm-evo-secret.c: the PIN and password dialogs. The secret goes from the entry to the caller
 * once; the entry is cleared (GTK wipes the buffer's freed bytes) and we never log it. Worker
 * threads ask through cm_evo_secret_ask_from_thread, which shows the dialog in the main thread
 * and waits for the answer. */
#include "cm-evo-module.h"

typedef struct
{
  GtkWidget *dialog;
  GtkWidget *entry;
  CmEvoSecretKind kind;
  CmEvoSecretDone done;
  gpointer user_data;
  GCancellable *cancellable; /* nullable, referenced */
  gulong cancel_id;
} Ask;

static gboolean
ask_cancel_in_main (gpointer data)
{
  GtkWidget *dialog = data;

  gtk_dialog_response (GTK_DIALOG (dialog), GTK_RESPONSE_CANCEL);
  g_object_unref (dialog);
  return G_SOURCE_REMOVE;
}

/* The cancellable may fire in any thread: answer "cancel" in the main thread. */
static void
ask_cancelled (GCancellable *cancellable, gpointer data)
{
  Ask *ask = data;

  g_main_context_invoke (NULL, ask_cancel_in_main, g_object_ref (ask->dialog));
}

static void
ask_response (GtkDialog *dialog, gint response, Ask *ask)
{
  char *secret = NULL;
  GError *error = NULL;

  if (ask->done == NULL)
    return; /* answered already: a late cancel */
  if (response == GTK_RESPONSE_OK)
    secret = g_strdup (gtk_entry_get_text (GTK_ENTRY (ask->entry)));
  else
    error = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                 ask->kind <= CM_EVO_SECRET_LOGIN_PIN ? "no PIN was entered"
                                                                      : "no password was entered");
  gtk_entry_set_text (GTK_ENTRY (ask->entry), "");
  if (ask->cancellable && ask->cancel_id)
    g_cancellable_disconnect (ask->cancellable, ask->cancel_id);
  ask->cancel_id = 0;
  ask->done (secret, error, ask->user_data);
  ask->done = NULL;
  gtk_widget_destroy (GTK_WIDGET (dialog));
}

static void
ask_free (gpointer data, GClosure *closure)
{
  Ask *ask = data;

  g_clear_object (&ask->cancellable);
  g_free (ask);
}

static void
entry_changed (GtkEntry *entry, GtkDialog *dialog)
{
  gtk_dialog_set_response_sensitive (dialog, GTK_RESPONSE_OK,
                                     gtk_entry_get_text_length (entry) > 0);
}

void
cm_evo_secret_ask (GtkWindow *parent, CmEvoSecretKind kind, const char *subject,
                   GCancellable *cancellable, CmEvoSecretDone done, gpointer user_data)
{
  Ask *ask = g_new0 (Ask, 1);
  const char *title, *primary, *label;
  g_autofree char *secondary = NULL, *markup = NULL;
  GtkWidget *area, *grid, *heading, *text, *prompt;

  switch (kind)
    {
    case CM_EVO_SECRET_PIN:
      title = "Smart Card PIN";
      primary = "Enter the PIN of your smart card";
      label = "_PIN:";
      secondary = g_strdup_printf ("The card \342\200\234%s\342\200\235 signs the certificates "
                                   "published to the address list. The PIN goes to the card "
                                   "only; it is not stored.",
                                   subject);
      break;
    case CM_EVO_SECRET_LOGIN_PIN:
      title = "Smart Card PIN";
      primary = "Enter the PIN of your smart card to log in";
      label = "_PIN:";
      secondary = g_strdup (subject);
      break;
    case CM_EVO_SECRET_LDAP_PASSWORD:
      title = "Address List Password";
      primary = "Enter your password for the address list (LDAP)";
      label = "_Password:";
      secondary = g_strdup_printf ("To change the entry %s. The password is not stored.", subject);
      break;
    case CM_EVO_SECRET_P12_PASSWORD:
    default:
      title = "Recovered Key Password";
      primary = "Enter the password of the recovered-key file";
      label = "_Password:";
      secondary = g_strdup_printf ("\342\200\234%s\342\200\235, as your key-recovery agent gave "
                                   "it to you. The password is not stored.",
                                   subject);
      break;
    }
  ask->kind = kind;
  ask->done = done;
  ask->user_data = user_data;
  ask->cancellable = cancellable ? g_object_ref (cancellable) : NULL;
  ask->dialog
    = gtk_dialog_new_with_buttons (title, parent, GTK_DIALOG_MODAL | GTK_DIALOG_DESTROY_WITH_PARENT,
                                   "_Cancel", GTK_RESPONSE_CANCEL, "_OK", GTK_RESPONSE_OK, NULL);
  gtk_dialog_set_default_response (GTK_DIALOG (ask->dialog), GTK_RESPONSE_OK);
  gtk_window_set_resizable (GTK_WINDOW (ask->dialog), FALSE);
  area = gtk_dialog_get_content_area (GTK_DIALOG (ask->dialog));
  grid = gtk_grid_new ();
  g_object_set (grid, "margin", 12, "row-spacing", 8, "column-spacing", 8, NULL);
  markup = g_markup_printf_escaped ("<b>%s</b>", primary);
  heading = gtk_label_new (NULL);
  gtk_label_set_markup (GTK_LABEL (heading), markup);
  gtk_label_set_xalign (GTK_LABEL (heading), 0);
  text = gtk_label_new (secondary);
  gtk_label_set_line_wrap (GTK_LABEL (text), TRUE);
  gtk_label_set_max_width_chars (GTK_LABEL (text), 50);
  gtk_label_set_xalign (GTK_LABEL (text), 0);
  prompt = gtk_label_new_with_mnemonic (label);
  ask->entry = gtk_entry_new ();
  gtk_entry_set_visibility (GTK_ENTRY (ask->entry), FALSE);
  gtk_entry_set_activates_default (GTK_ENTRY (ask->entry), TRUE);
  gtk_entry_set_input_purpose (GTK_ENTRY (ask->entry), kind <= CM_EVO_SECRET_LOGIN_PIN
                                                         ? GTK_INPUT_PURPOSE_PIN
                                                         : GTK_INPUT_PURPOSE_PASSWORD);
  gtk_widget_set_hexpand (ask->entry, TRUE);
  gtk_label_set_mnemonic_widget (GTK_LABEL (prompt), ask->entry);
  gtk_grid_attach (GTK_GRID (grid), heading, 0, 0, 2, 1);
  gtk_grid_attach (GTK_GRID (grid), text, 0, 1, 2, 1);
  gtk_grid_attach (GTK_GRID (grid), prompt, 0, 2, 1, 1);
  gtk_grid_attach (GTK_GRID (grid), ask->entry, 1, 2, 1, 1);
  gtk_container_add (GTK_CONTAINER (area), grid);
  /* a PIN is never empty; a PKCS#12 password may be */
  if (kind != CM_EVO_SECRET_P12_PASSWORD)
    {
      g_signal_connect (ask->entry, "changed", G_CALLBACK (entry_changed), ask->dialog);
      gtk_dialog_set_response_sensitive (GTK_DIALOG (ask->dialog), GTK_RESPONSE_OK, FALSE);
    }
  g_signal_connect_data (ask->dialog, "response", G_CALLBACK (ask_response), ask, ask_free, 0);
  if (ask->cancellable)
    ask->cancel_id
      = g_cancellable_connect (ask->cancellable, G_CALLBACK (ask_cancelled), ask, NULL);
  gtk_widget_show_all (ask->dialog);
  gtk_widget_grab_focus (ask->entry);
}

/* ---- from a worker thread ---- */

typedef struct
{
  GMutex lock;
  GCond cond;
  gboolean answered;
  char *secret;
  GError *error;
  GtkWindow *parent; /* referenced, nullable */
  CmEvoSecretKind kind;
  const char *subject;
  GCancellable *cancellable;
} ThreadAsk;

static void
thread_answered (char *secret, GError *error, gpointer data)
{
  ThreadAsk *ta = data;

  g_mutex_lock (&ta->lock);
  ta->secret = secret;
  ta->error = error;
  ta->answered = TRUE;
  g_cond_signal (&ta->cond);
  g_mutex_unlock (&ta->lock);
}

static gboolean
unref_in_main (gpointer object)
{
  g_object_unref (object);
  return G_SOURCE_REMOVE;
}

static gboolean
thread_ask_in_main (gpointer data)
{
  ThreadAsk *ta = data;

  cm_evo_secret_ask (ta->parent, ta->kind, ta->subject, ta->cancellable, thread_answered, ta);
  return G_SOURCE_REMOVE;
}

char *
cm_evo_secret_ask_from_thread (GtkWindow *parent, CmEvoSecretKind kind, const char *subject,
                               GCancellable *cancellable, GError **error)
{
  ThreadAsk ta = { 0 };
  char *secret;

  /* the main thread would wait for itself */
  g_return_val_if_fail (!g_main_context_is_owner (g_main_context_default ()), NULL);
  if (g_cancellable_set_error_if_cancelled (cancellable, error))
    return NULL;
  g_mutex_init (&ta.lock);
  g_cond_init (&ta.cond);
  ta.parent = parent ? g_object_ref (parent) : NULL;
  ta.kind = kind;
  ta.subject = subject;
  ta.cancellable = cancellable;
  g_main_context_invoke (NULL, thread_ask_in_main, &ta);
  g_mutex_lock (&ta.lock);
  while (!ta.answered)
    g_cond_wait (&ta.cond, &ta.lock);
  g_mutex_unlock (&ta.lock);
  secret = ta.secret;
  if (ta.error)
    g_propagate_error (error, ta.error);
  if (ta.parent)
    g_main_context_invoke (NULL, unref_in_main, ta.parent);
  g_mutex_clear (&ta.lock);
  g_cond_clear (&ta.cond);
  return secret;
}
