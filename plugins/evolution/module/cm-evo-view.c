/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cm-evo-view.c: what the Smart Card page shows of a state, section by section: the setup
 * steps in the order of `cacmail setup` (each says its state and what its button would change)
 * and the cards, identities and recovered keys. Main thread; the state was read in a worker. */
#include "cm-evo-module.h"

GtkWidget *
cm_evo_add_label (GtkWidget *box, const char *text, gboolean markup)
{
  GtkWidget *label = gtk_label_new (NULL);

  if (markup)
    gtk_label_set_markup (GTK_LABEL (label), text);
  else
    gtk_label_set_text (GTK_LABEL (label), text);
  gtk_label_set_xalign (GTK_LABEL (label), 0);
  gtk_label_set_line_wrap (GTK_LABEL (label), TRUE);
  gtk_label_set_line_wrap_mode (GTK_LABEL (label), PANGO_WRAP_WORD_CHAR);
  gtk_label_set_max_width_chars (GTK_LABEL (label), 80);
  gtk_label_set_selectable (GTK_LABEL (label), TRUE);
  gtk_widget_set_can_focus (label, FALSE);
  gtk_container_add (GTK_CONTAINER (box), label);
  gtk_widget_show (label);
  return label;
}

void
cm_evo_clear (GtkWidget *box)
{
  g_autoptr (GList) children = gtk_container_get_children (GTK_CONTAINER (box));

  for (GList *l = children; l; l = l->next)
    gtk_widget_destroy (l->data);
}

const char *
cm_evo_step_state_word (CmEvoStepState state)
{
  switch (state)
    {
    case CM_EVO_STEP_DONE: return "done";
    case CM_EVO_STEP_TODO: return "to do";
    case CM_EVO_STEP_READY: return "ready";
    case CM_EVO_STEP_WAITING:
    default: return "waiting for an earlier step";
    }
}

static guint
count_stale (CmEvoState *st, guint *fixable, guint *ok)
{
  guint stale = 0;

  *fixable = *ok = 0;
  for (guint i = 0; i < st->identities->len; i++)
    {
      CmEvoIdentity *id = g_ptr_array_index (st->identities, i);
      const CmEvoSettings *cur = cm_evo_identity_get_current (id);
      stale += cm_evo_identity_is_stale (id);
      *fixable += cm_evo_identity_can_fix (id);
      *ok += !cm_evo_identity_is_stale (id) && cur->signing && *cur->signing && cur->encryption
             && *cur->encryption;
    }
  return stale;
}

/* ---- step 1: Evolution and its certificate database ---- */

CmEvoStepState
cm_evo_show_client (GtkWidget *body, CmEvoState *st)
{
  g_autoptr (GString) names = g_string_new (NULL);
  g_autofree char *text = NULL;

  for (guint i = 0; i < st->identities->len; i++)
    g_string_append_printf (names, "%s%s", names->len ? ", " : "",
                            cm_evo_identity_get_address (g_ptr_array_index (st->identities, i)));
  if (!st->nssdb_exists)
    {
      text = g_strdup_printf ("Evolution has not made its certificate database (%s) yet: it "
                              "makes it when the Mail view opens; open it, then Refresh.",
                              st->nssdb);
      cm_evo_add_label (body, text, FALSE);
      return CM_EVO_STEP_TODO;
    }
  text = g_strdup_printf ("Certificate database: %s", st->nssdb);
  cm_evo_add_label (body, text, FALSE);
  if (st->reg && st->identities->len == 0 && !st->recovered_unknown)
    {
      cm_evo_add_label (body,
                        "No mail identity with an address: add your mail account (Edit, "
                        "Accounts), then Refresh.",
                        FALSE);
      return CM_EVO_STEP_TODO;
    }
  if (names->len)
    {
      g_autofree char *ids = g_strdup_printf ("Mail identities: %s", names->str);
      cm_evo_add_label (body, ids, FALSE);
    }
  return st->reg ? CM_EVO_STEP_DONE : CM_EVO_STEP_TODO;
}

/* ---- step 2: the card's certificates ---- */

CmEvoStepState
cm_evo_show_card_module (GtkWidget *body, CmEvoState *st)
{
  g_autofree char *text = NULL;

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
  cm_evo_add_label (body, text, FALSE);
  for (guint i = 0; i < st->locked->len; i++)
    {
      g_autofree char *locked = g_strdup_printf (
        "NSS lists the certificates of the card \342\200\234%s\342\200\235 only after its PIN "
        "is entered (its module was registered without the \342\200\234friendly\342\200\235 "
        "option): until then they show as not visible here, and Evolution asks for the PIN when "
        "it needs them.",
        (char *)g_ptr_array_index (st->locked, i));
      cm_evo_add_label (body, locked, FALSE);
    }
  return st->card_module_loaded ? CM_EVO_STEP_DONE : CM_EVO_STEP_TODO;
}

/* ---- step 3: the DoD trust chain ---- */

CmEvoStepState
cm_evo_show_trust (GtkWidget *body, CmEvoState *st)
{
  g_autofree char *text = NULL;
  const char *what = "Install DoD Trust Chain\342\200\246 reads the PKCS#7 bundle (.p7b) you "
                     "downloaded from DISA, shows its roots with their SHA-256 fingerprints, and "
                     "after you confirm yours trusts that root for email and TLS and adds the "
                     "CAs under it (cross-certificates are skipped).";

  if (st->chains_total && st->chains_ok == st->chains_total)
    {
      text = g_strdup_printf ("The %u email certificate%s of your cards chain to a root "
                              "Evolution trusts.",
                              st->chains_total, st->chains_total == 1 ? "" : "s");
      cm_evo_add_label (body, text, FALSE);
      return CM_EVO_STEP_DONE;
    }
  if (st->chains_total == 0)
    {
      text = g_strdup_printf ("%u trusted root CA%s in Evolution's certificate database; no email "
                              "certificate of a card to check yet (insert your card, make its "
                              "certificates available).",
                              st->trust_anchors, st->trust_anchors == 1 ? "" : "s");
      cm_evo_add_label (body, text, FALSE);
      if (st->trust_anchors == 0)
        cm_evo_add_label (body, what, FALSE);
      return st->trust_anchors ? CM_EVO_STEP_DONE : CM_EVO_STEP_TODO;
    }
  text = g_strdup_printf ("%u of %u email certificates chain to a trusted root: %s. Evolution "
                          "cannot verify signed mail from your organization, nor you the "
                          "address list server.",
                          st->chains_ok, st->chains_total, st->chain_problem);
  cm_evo_add_label (body, text, FALSE);
  cm_evo_add_label (body, what, FALSE);
  return CM_EVO_STEP_TODO;
}

/* ---- step 4: the address list (directory) settings ---- */

CmEvoStepState
cm_evo_show_directory (GtkWidget *body, CmEvoState *st)
{
  CmEvoDirectory *d = st->directory;
  g_autofree char *text = NULL;

  if (d->error)
    text = g_strdup_printf ("%s. Directory Settings\342\200\246 writes them anew.", d->error);
  else if (cm_evo_directory_is_set (d))
    text = g_strdup_printf ("Server: %s\nSearch base: %s\nBind: %s%s%s\n(in %s)", d->uri, d->base,
                            d->bind ? d->bind : "simple", d->ca_file ? "\nServer CA file: " : "",
                            d->ca_file ? d->ca_file : "", d->path);
  else
    text = g_strdup_printf ("No address list (LDAP) server is set. Directory Settings\342\200\246 "
                            "asks for its URI, search base and bind method, tests the "
                            "connection and only then saves them in %s.",
                            d->path);
  cm_evo_add_label (body, text, FALSE);
  return cm_evo_directory_is_set (d) ? CM_EVO_STEP_DONE : CM_EVO_STEP_TODO;
}

/* ---- step 5: the S/MIME settings ---- */

/* The problems of the picks for an identity's address, in the words the CLI uses. */
static void
show_problems (GtkWidget *body, JsonArray *problems)
{
  for (guint i = 0; i < json_array_get_length (problems); i++)
    {
      JsonObject *p = json_array_get_object_element (problems, i);
      g_autofree char *line = g_strdup_printf ("\342\232\240 %s\n    Fix: %s",
                                               json_object_get_string_member (p, "message"),
                                               json_object_get_string_member (p, "hint"));
      cm_evo_add_label (body, line, FALSE);
    }
}

/* "ok" only with both certificates set and right; never without a certificate. */
static char *
identity_head (CmEvoIdentity *id)
{
  const CmEvoSettings *cur = cm_evo_identity_get_current (id);
  gboolean sign = cur->signing && *cur->signing, enc = cur->encryption && *cur->encryption;
  const char *word = cm_evo_identity_is_stale (id) ? "stale"
                     : sign && enc                 ? "ok"
                     : sign                        ? "signing only, no encryption certificate"
                     : enc                         ? "encryption only, no signing certificate"
                                                   : "no certificate";
  const char *color = strcmp (word, "ok") == 0 ? "#26a269" : "#c01c28";

  return g_markup_printf_escaped ("<b>%s &lt;%s&gt;</b>: <span foreground='%s'>%s</span>",
                                  cur->name ? cur->name : "", cur->address, color, word);
}

static void
show_identity (GtkWidget *body, CmEvoIdentity *id)
{
  const CmEvoSettings *cur = cm_evo_identity_get_current (id);
  const char *const *codes = cm_evo_identity_get_reasons (id);
  const char *const *msgs = cm_evo_identity_get_messages (id);
  g_autofree char *head = identity_head (id);
  g_autofree char *now
    = g_strdup_printf ("Signing certificate: %s\nEncryption certificate: %s",
                       cur->signing && *cur->signing ? cur->signing : "(none)",
                       cur->encryption && *cur->encryption ? cur->encryption : "(none)");

  cm_evo_add_label (body, head, TRUE); /* markup made safe above */
  cm_evo_add_label (body, now, FALSE);
  for (guint j = 0; codes[j]; j++)
    {
      g_autofree char *line
        = g_strdup_printf ("\342\200\242 %s", cm_evo_reason_text (codes[j], msgs[j]));
      cm_evo_add_label (body, line, FALSE);
    }
  show_problems (body, cm_evo_identity_get_problems (id));
  if (cm_evo_identity_is_stale (id))
    {
      const char *ps = cm_evo_identity_get_proposed_signing (id);
      const char *pe = cm_evo_identity_get_proposed_encryption (id);
      g_autofree char *fix
        = cm_evo_identity_can_fix (id)
            ? g_strdup_printf ("Fix S/MIME Settings sets: signing %s, encryption %s",
                               ps ? ps : "(unchanged)", pe ? pe : "(unchanged)")
            : g_strdup ("Nothing to set: insert the card of this address, or make its "
                        "certificates available to Evolution.");
      cm_evo_add_label (body, fix, FALSE);
    }
}

CmEvoStepState
cm_evo_show_identities (GtkWidget *body, CmEvoState *st)
{
  guint fixable, ok, stale = count_stale (st, &fixable, &ok);

  if (st->identities->len == 0)
    cm_evo_add_label (body,
                      st->recovered_unknown
                        ? "The record of recovered keys cannot be read, so no setting is judged: "
                          "repair it as \342\200\234Could not be read\342\200\235 below says."
                      : st->reg ? "No mail identity with an address: add a mail account first."
                                : "The mail identities cannot be read (see \342\200\234Could not "
                                  "be read\342\200\235 below).",
                      FALSE);
  for (guint i = 0; i < st->identities->len; i++)
    show_identity (body, g_ptr_array_index (st->identities, i));
  if (st->undo_entries > 0)
    {
      g_autofree char *undo = g_strdup_printf ("Undo Last Fix restores the settings as they were "
                                               "before the last of %d fix%s.",
                                               st->undo_entries, st->undo_entries == 1 ? "" : "es");
      cm_evo_add_label (body, undo, FALSE);
    }
  if (fixable)
    return CM_EVO_STEP_TODO;
  if (stale == 0 && ok > 0)
    return CM_EVO_STEP_DONE;
  return CM_EVO_STEP_WAITING;
}

/* ---- step 6: republish ---- */

CmEvoStepState
cm_evo_show_republish (GtkWidget *body, CmEvoState *st, gboolean running)
{
  const char *why = NULL;
  g_autofree char *text = NULL;

  if (!cm_evo_directory_is_set (st->directory))
    why = "Set the address list server first (step 4, Directory Settings\342\200\246).";
  else if (!st->card_module_loaded)
    why = "Make the card's certificates available first (step 2).";
  else if (st->identities->len == 0)
    why = "Add a mail account first (step 1).";
  if (why)
    {
      cm_evo_add_label (body, why, FALSE);
      return CM_EVO_STEP_WAITING;
    }
  text = g_strdup_printf ("Republish Certificates to GAL publishes your card's email encryption "
                          "and signing certificates to your entry on %s (asking for the "
                          "directory password and the card's PIN), as Outlook's Publish to GAL "
                          "does. It is also in the mail window's File menu.%s",
                          st->directory->uri, running ? " A republish is running now." : "");
  cm_evo_add_label (body, text, FALSE);
  return CM_EVO_STEP_READY;
}

/* ---- the other sections ---- */

void
cm_evo_show_cards (GtkWidget *body, CmEvoState *st)
{
  if (st->readers == NULL)
    {
      cm_evo_add_label (body, "The card readers cannot be listed (see Could not be read below).",
                        FALSE);
      return;
    }
  if (st->readers->len == 0)
    cm_evo_add_label (body, "No card reader is connected.", FALSE);
  for (guint i = 0; i < st->readers->len; i++)
    {
      CmEvoReader *r = g_ptr_array_index (st->readers, i);
      g_autofree char *summary = r->card ? cm_evo_card_summary (st->inv, r->card) : NULL;
      g_autofree char *line = g_strdup_printf ("%s: %s%s", r->name,
                                               summary    ? summary
                                               : r->error ? "the card cannot be read: "
                                                          : "no card",
                                               !summary && r->error ? r->error : "");
      cm_evo_add_label (body, line, FALSE);
    }
}

void
cm_evo_show_certs (GtkWidget *body, CmEvoState *st)
{
  GtkWidget *view = cm_evo_certs_view_new (st);

  if (view == NULL)
    cm_evo_add_label (body, "No personal certificate: insert your card.", FALSE);
  else
    {
      gtk_container_add (GTK_CONTAINER (body), view);
      gtk_widget_show (view);
    }
}

void
cm_evo_show_recovered (GtkWidget *body, CmEvoState *st)
{
  if (st->recovered == NULL || st->recovered->len == 0)
    cm_evo_add_label (body,
                      "None. To read old mail encrypted to an earlier card, import the PKCS#12 "
                      "file your key-recovery agent gave you.",
                      FALSE);
  for (guint i = 0; st->recovered && i < st->recovered->len; i++)
    {
      CmNssdbRecovered *r = g_ptr_array_index (st->recovered, i);
      g_autofree char *until = cm_time_format_date (r->not_after);
      g_autofree char *line = g_strdup_printf ("%s: %s, until %s%s", r->nickname, r->subject, until,
                                               r->present ? "" : " (no longer in the database)");
      cm_evo_add_label (body, line, FALSE);
    }
}

guint
cm_evo_count_fixable (CmEvoState *st)
{
  guint fixable, ok;

  count_stale (st, &fixable, &ok);
  return fixable;
}
