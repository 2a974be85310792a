/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cm-evo-certs.c: the Smart Card page's tree of personas and certificates: per persona each
 * certificate with its role, validity and the name Evolution knows it by (its NSS nickname),
 * then the personal certificates of no persona. CAs and roots are left out. */
#include "cm-evo-module.h"

enum
{
  COL_NAME,
  COL_ROLE,
  COL_VALIDITY,
  COL_WHERE,
  N_COLS
};

static char *
cert_where (CmCert *c)
{
  GPtrArray *sources = cm_cert_get_sources (c);
  const char *nick = cm_nss_cert_nickname (c);
  const char *reader = NULL;

  for (guint i = 0; i < sources->len; i++)
    {
      CmSource *s = g_ptr_array_index (sources, i);
      if (s->kind == CM_SOURCE_CARD)
        reader = s->path;
    }
  if (cm_nssdb_is_recovered (cm_cert_get_sha256 (c)))
    return g_strdup_printf ("%s (recovered key: decrypt only)", nick ? nick : "");
  if (nick)
    return g_strdup (nick);
  return g_strdup_printf ("on the card in %s; not visible to Evolution", reader ? reader : "?");
}

static void
add_cert_row (GtkTreeStore *store, GtkTreeIter *parent, CmCert *c, gint64 at)
{
  GtkTreeIter it;
  g_autofree char *validity = cm_evo_cert_validity (c, at);
  g_autofree char *where = cert_where (c);
  const char *cn = cm_cert_get_subject_cn (c);

  gtk_tree_store_append (store, &it, parent);
  gtk_tree_store_set (store, &it, COL_NAME, cn ? cn : cm_cert_get_subject (c), COL_ROLE,
                      cm_evo_role_label (cm_cert_get_role (c)), COL_VALIDITY, validity, COL_WHERE,
                      where, -1);
}

/* A persona known by its key only (no persona ID, no FASC-N association): the certificates of
 * an earlier card, such as a retired key on the card or a recovered key. */
static gboolean
key_only (CmPersona *p)
{
  return cm_persona_get_persona_id (p) == NULL && cm_persona_get_association (p) == NULL;
}

/* The one named persona of @p's person (same EDIPI) to show @p's certs under, or NULL. */
static CmPersona *
owner_of (GPtrArray *personas, CmPersona *p)
{
  const char *edipi = cm_persona_get_edipi (p);
  CmPersona *owner = NULL;

  if (!key_only (p) || edipi == NULL)
    return NULL;
  for (guint i = 0; i < personas->len; i++)
    {
      CmPersona *o = g_ptr_array_index (personas, i);
      if (o == p || key_only (o) || g_strcmp0 (cm_persona_get_edipi (o), edipi) != 0)
        continue;
      if (owner)
        return NULL; /* two personas of that person: which one is not known */
      owner = o;
    }
  return owner;
}

static void
add_persona (GtkTreeStore *store, GPtrArray *personas, CmPersona *p, gint64 at)
{
  const char *id = cm_persona_get_persona_id (p), *label = cm_evo_persona_label (p);
  g_autofree char *title = NULL;
  GtkTreeIter top;

  if (key_only (p) && cm_persona_get_edipi (p))
    title = g_strdup_printf ("%s of %s", label, cm_persona_get_edipi (p));
  else
    title = g_strdup_printf ("%s%s%s", label, id && strcmp (id, label) ? ", " : "",
                             id && strcmp (id, label) ? id : "");
  gtk_tree_store_append (store, &top, NULL);
  gtk_tree_store_set (store, &top, COL_NAME, title, -1);
  /* its own certs, then those of its earlier cards */
  for (guint k = 0; k < personas->len; k++)
    {
      CmPersona *q = g_ptr_array_index (personas, k);
      GPtrArray *pc;
      if (q != p && owner_of (personas, q) != p)
        continue;
      pc = cm_persona_get_certs (q);
      for (guint j = 0; j < pc->len; j++)
        add_cert_row (store, &top, g_ptr_array_index (pc, j), at);
    }
}

GtkWidget *
cm_evo_certs_view_new (CmEvoState *st)
{
  g_autoptr (GtkTreeStore) store
    = gtk_tree_store_new (N_COLS, G_TYPE_STRING, G_TYPE_STRING, G_TYPE_STRING, G_TYPE_STRING);
  GPtrArray *personas = cm_inventory_get_personas (st->inv);
  GPtrArray *certs = cm_inventory_get_certs (st->inv);
  const char *titles[] = { "Persona / certificate", "Role", "Validity", "Name in Evolution" };
  GtkTreeIter other;
  gboolean have_other = FALSE;
  GtkWidget *view;

  for (guint i = 0; i < personas->len; i++)
    if (owner_of (personas, g_ptr_array_index (personas, i)) == NULL)
      add_persona (store, personas, g_ptr_array_index (personas, i), st->at);
  for (guint i = 0; i < certs->len; i++)
    {
      CmCert *c = g_ptr_array_index (certs, i);
      /* personal certificates only: not the CAs and roots NSS knows */
      if (cm_cert_is_ca (c) || cm_cert_is_self_issued (c) || cm_inventory_persona_of (st->inv, c)
          || (cm_cert_get_role (c) == CM_ROLE_OTHER && !cm_cert_get_emails (c)[0]))
        continue;
      if (!have_other)
        {
          gtk_tree_store_append (store, &other, NULL);
          gtk_tree_store_set (store, &other, COL_NAME, "Other certificates", -1);
          have_other = TRUE;
        }
      add_cert_row (store, &other, c, st->at);
    }
  if (personas->len == 0 && !have_other)
    return NULL;
  view = gtk_tree_view_new_with_model (GTK_TREE_MODEL (store));
  for (int i = 0; i < N_COLS; i++)
    {
      GtkCellRenderer *cell = gtk_cell_renderer_text_new ();
      /* whole names, wrapped: long subjects (a Card Authentication cert has no CN) and
       * nicknames must not widen the window, nor lose their middle */
      if (i == COL_NAME || i == COL_WHERE)
        g_object_set (cell, "wrap-mode", PANGO_WRAP_WORD_CHAR, "wrap-width",
                      i == COL_NAME ? 240 : 300, NULL);
      gtk_tree_view_insert_column_with_attributes (GTK_TREE_VIEW (view), -1, titles[i], cell,
                                                   "text", i, NULL);
      gtk_tree_view_column_set_resizable (gtk_tree_view_get_column (GTK_TREE_VIEW (view), i), TRUE);
    }
  gtk_tree_view_set_tooltip_column (GTK_TREE_VIEW (view), COL_WHERE);
  gtk_tree_view_expand_all (GTK_TREE_VIEW (view));
  return view;
}
