/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cm-inventory.c: the one intake of certificates (with their card, or explicitly without
 * one), deduplicated by DER, and the cards they sit on. Personas: cm-persona.c. */
#include "cm-inventory-private.h"
#include "cm-cardfolder.h"

struct _CmCardSource
{
  CmSourceKind kind;
  char *label;
  char *path;
  char *identity;
  CmChuid *chuid;
  GPtrArray *ders;               /* GBytes* */
  GArray *slots;                 /* CmSlot */
  GPtrArray *tokens, *nicknames; /* char*, may hold NULL */
};

static void
card_free (CmCard *card)
{
  g_free (card->label);
  cm_chuid_free (card->chuid);
  g_free (card->identity);
  for (guint i = 0; i < card->entries->len; i++)
    g_free (g_array_index (card->entries, CmCardEntry, i).sha);
  g_array_unref (card->entries);
  if (card->certs)
    g_ptr_array_unref (card->certs);
  g_free (card);
}

static void
invalidate (CmInventory *inv)
{
  g_clear_pointer (&inv->certs, g_ptr_array_unref);
  cm_persona_clear (inv);
}

CmInventory *
cm_inventory_new (void)
{
  CmInventory *inv = g_new0 (CmInventory, 1);
  inv->by_sha
    = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, (GDestroyNotify)cm_cert_unref);
  inv->order = g_ptr_array_new_with_free_func (g_free);
  inv->cards = g_ptr_array_new_with_free_func ((GDestroyNotify)card_free);
  inv->decrypt_only = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  return inv;
}

void
cm_inventory_free (CmInventory *inv)
{
  if (inv == NULL)
    return;
  invalidate (inv);
  g_ptr_array_unref (inv->cards);
  g_hash_table_unref (inv->by_sha);
  g_ptr_array_unref (inv->order);
  g_hash_table_unref (inv->decrypt_only);
  g_free (inv);
}

/* Decode @der once, with @source as its only source; NULL with @error when it is not a
 * certificate. */
static CmCert *
decode_with_source (GBytes *der, const CmSource *source, GError **error)
{
  g_autoptr (GPtrArray) sources = g_ptr_array_new ();

  g_ptr_array_add (sources, (gpointer)source);
  return cm_cert_new_from_der (der, sources, error);
}

/* Add @cert, decoded by decode_with_source() with @source (takes a reference): a new cert is
 * kept as it is; a cert already there gets @source added to its sources. */
static void
insert_cert (CmInventory *inv, CmCert *cert, const CmSource *source)
{
  const char *sha = cm_cert_get_sha256 (cert);
  CmCert *old = g_hash_table_lookup (inv->by_sha, sha);

  if (old)
    {
      CmCert *merged = cm_cert_new_with_source (old, source);
      /* the key string belongs to the value: replace both together */
      g_hash_table_steal (inv->by_sha, sha);
      g_hash_table_insert (inv->by_sha, (gpointer)cm_cert_get_sha256 (merged), merged);
      cm_cert_unref (old);
    }
  else
    {
      g_hash_table_insert (inv->by_sha, (gpointer)sha, cm_cert_ref (cert));
      g_ptr_array_add (inv->order, g_strdup (sha));
    }
  invalidate (inv);
}

gboolean
cm_inventory_add_der (CmInventory *inv, GBytes *der, const CmSource *source, GError **error)
{
  g_autoptr (CmCert) cert = NULL;

  g_return_val_if_fail (source != NULL && source->card == NULL, FALSE);
  if ((cert = decode_with_source (der, source, error)) == NULL)
    return FALSE;
  insert_cert (inv, cert, source);
  return TRUE;
}

/* ---- the card intake ---- */

/* (cm_inventory_find_card returns the first card of an identity: two folders of one card, or a
 * card read over PC/SC and as an NSS token, are separate CmCards with certs in common.) */

CmCardSource *
cm_card_source_new (CmSourceKind kind, const char *label, const char *path, const char *identity,
                    CmChuid *chuid)
{
  CmCardSource *cs = g_new0 (CmCardSource, 1);

  cs->kind = kind;
  cs->label = g_strdup (label);
  cs->path = g_strdup (path);
  cs->identity = g_strdup (identity);
  cs->chuid = chuid;
  cs->ders = g_ptr_array_new_with_free_func ((GDestroyNotify)g_bytes_unref);
  cs->slots = g_array_new (FALSE, FALSE, sizeof (CmSlot));
  cs->tokens = g_ptr_array_new_with_free_func (g_free);
  cs->nicknames = g_ptr_array_new_with_free_func (g_free);
  return cs;
}

void
cm_card_source_add (CmCardSource *cs, GBytes *der, CmSlot slot, const char *token,
                    const char *nickname)
{
  g_ptr_array_add (cs->ders, g_bytes_ref (der));
  g_array_append_val (cs->slots, slot);
  g_ptr_array_add (cs->tokens, g_strdup (token));
  g_ptr_array_add (cs->nicknames, g_strdup (nickname));
}

void
cm_card_source_free (CmCardSource *cs)
{
  if (cs == NULL)
    return;
  g_free (cs->label);
  g_free (cs->path);
  g_free (cs->identity);
  cm_chuid_free (cs->chuid);
  g_ptr_array_unref (cs->ders);
  g_array_unref (cs->slots);
  g_ptr_array_unref (cs->tokens);
  g_ptr_array_unref (cs->nicknames);
  g_free (cs);
}

static char *
card_identity (CmCardSource *cs)
{
  if (cs->identity)
    return g_strdup (cs->identity);
  if (cs->chuid)
    return cm_chuid_identity (cs->chuid);
  return g_strdup_printf ("card:%s", cs->label);
}

CmCard *
cm_inventory_find_card (CmInventory *inv, const char *identity)
{
  for (guint i = 0; identity && i < inv->cards->len; i++)
    {
      CmCard *card = g_ptr_array_index (inv->cards, i);
      if (strcmp (card->identity, identity) == 0)
        return card;
    }
  return NULL;
}

/* The card @cs reads again (same identity, same reader, folder or token), or a new one. */
static CmCard *
card_for (CmInventory *inv, CmCardSource *cs, const char *identity)
{
  CmCard *card;

  for (guint i = 0; i < inv->cards->len; i++)
    {
      card = g_ptr_array_index (inv->cards, i);
      if (card->kind == cs->kind && strcmp (card->identity, identity) == 0
          && g_strcmp0 (card->label, cs->label) == 0)
        {
          if (card->chuid == NULL)
            card->chuid = g_steal_pointer (&cs->chuid);
          return card;
        }
    }
  card = g_new0 (CmCard, 1);
  card->inv = inv;
  card->kind = cs->kind;
  card->label = g_strdup (cs->label);
  card->chuid = g_steal_pointer (&cs->chuid);
  card->identity = g_strdup (identity);
  card->entries = g_array_new (FALSE, FALSE, sizeof (CmCardEntry));
  g_ptr_array_add (inv->cards, card);
  return card;
}

static void
card_add_entry (CmCard *card, CmSlot slot, const char *sha)
{
  CmCardEntry e = { slot, NULL };

  for (guint i = 0; i < card->entries->len; i++)
    {
      CmCardEntry *o = &g_array_index (card->entries, CmCardEntry, i);
      if (o->slot == slot && strcmp (o->sha, sha) == 0)
        return;
      if (o->slot == slot && slot != CM_SLOT_NONE)
        {
          g_free (o->sha); /* the object was re-read: it holds another cert now */
          o->sha = g_strdup (sha);
          return;
        }
    }
  e.sha = g_strdup (sha);
  g_array_append_val (card->entries, e);
}

gboolean
cm_inventory_add_card_source (CmInventory *inv, CmCardSource *cs, GError **error)
{
  G_GNUC_UNUSED g_autoptr (CmCardSource) owned = cs; /* frees @cs on return */
  g_autoptr (GPtrArray) decoded = g_ptr_array_new_with_free_func ((GDestroyNotify)cm_cert_unref);
  g_autoptr (GPtrArray) sources = g_ptr_array_new_with_free_func ((GDestroyNotify)cm_source_free);
  g_autofree char *identity = card_identity (cs);
  CmCard *card;

  /* Decode everything first: a bad object adds nothing. */
  for (guint i = 0; i < cs->ders->len; i++)
    {
      g_autoptr (GError) local = NULL;
      CmSlot slot = g_array_index (cs->slots, CmSlot, i);
      CmSource *src = cm_source_new (cs->kind, cs->path ? cs->path : cs->label, slot);
      CmCert *c;

      src->token = g_strdup (g_ptr_array_index (cs->tokens, i));
      src->nickname = g_strdup (g_ptr_array_index (cs->nicknames, i));
      src->card = g_strdup (identity);
      g_ptr_array_add (sources, src);
      if ((c = decode_with_source (g_ptr_array_index (cs->ders, i), src, &local)) == NULL)
        {
          const char *where = cm_slot_to_string (slot);
          g_set_error (error, CM_ERROR, CM_ERROR_BAD_INPUT, "%s: %s%s%s%s", cs->label,
                       where ? "slot " : "", where ? where : "", where ? ": " : "", local->message);
          return FALSE;
        }
      g_ptr_array_add (decoded, c);
    }
  card = card_for (inv, cs, identity);
  for (guint i = 0; i < decoded->len; i++)
    {
      CmCert *c = g_ptr_array_index (decoded, i);
      insert_cert (inv, c, g_ptr_array_index (sources, i));
      card_add_entry (card, g_array_index (cs->slots, CmSlot, i), cm_cert_get_sha256 (c));
    }
  invalidate (inv);
  return TRUE;
}

static gint
compare_slots (gconstpointer a, gconstpointer b)
{
  return (gint)GPOINTER_TO_UINT (a) - (gint)GPOINTER_TO_UINT (b);
}

gboolean
cm_inventory_add_card (CmInventory *inv, CmSourceKind kind, const char *label, CmChuid *chuid,
                       GHashTable *slot_certs, GError **error)
{
  CmCardSource *cs = cm_card_source_new (kind, label, NULL, NULL, chuid);
  g_autoptr (GList) keys = g_list_sort (g_hash_table_get_keys (slot_certs), compare_slots);

  /* slot order keeps the output stable */
  for (GList *l = keys; l; l = l->next)
    cm_card_source_add (cs, g_hash_table_lookup (slot_certs, l->data), GPOINTER_TO_UINT (l->data),
                        NULL, NULL);
  return cm_inventory_add_card_source (inv, cs, error);
}

gboolean
cm_inventory_add_path (CmInventory *inv, const char *path, GError **error)
{
  g_autoptr (GBytes) bytes = NULL;
  g_autoptr (GPtrArray) blobs = NULL;
  g_autoptr (GPtrArray) certs = g_ptr_array_new_with_free_func ((GDestroyNotify)cm_cert_unref);
  g_autoptr (CmSource) src = NULL;

  if (!g_file_test (path, G_FILE_TEST_EXISTS))
    {
      g_set_error (error, CM_ERROR, CM_ERROR_BAD_INPUT, "%s: no such file or folder", path);
      return FALSE;
    }
  if (g_file_test (path, G_FILE_TEST_IS_DIR))
    {
      CmCardFolder *cf;
      gboolean ok;
      if (!cm_card_folder_probe (path))
        {
          g_set_error (error, CM_ERROR, CM_ERROR_BAD_INPUT,
                       "%s: is a directory but not a card folder (no '8 - CHUID' file and no "
                       ".crt file named with an object prefix such as '3 - '); give "
                       "certificate files or a card folder (docs/card-folder.md)",
                       path);
          return FALSE;
        }
      if ((cf = cm_card_folder_read (path, error)) == NULL)
        return FALSE;
      ok = cm_inventory_add_card (inv, CM_SOURCE_CARD_FOLDER, path, g_steal_pointer (&cf->chuid),
                                  cf->slot_certs, error);
      cm_card_folder_free (cf);
      return ok;
    }
  if ((bytes = cm_read_file (path, error)) == NULL
      || (blobs = cm_load_cert_blobs (bytes, path, error)) == NULL)
    return FALSE;
  src = cm_source_new (CM_SOURCE_FILE, path, CM_SLOT_NONE);
  for (guint i = 0; i < blobs->len; i++)
    {
      g_autoptr (GError) local = NULL;
      CmCert *c = decode_with_source (g_ptr_array_index (blobs, i), src, &local);
      if (c == NULL)
        {
          if (blobs->len > 1)
            g_set_error (error, CM_ERROR, CM_ERROR_BAD_INPUT,
                         "%s: certificate %u: %s (truncated or corrupt)", path, i + 1,
                         local->message);
          else
            g_set_error (error, CM_ERROR, CM_ERROR_BAD_INPUT, "%s: %s (truncated or corrupt)", path,
                         local->message);
          return FALSE;
        }
      g_ptr_array_add (certs, c);
    }
  for (guint i = 0; i < certs->len; i++)
    insert_cert (inv, g_ptr_array_index (certs, i), src);
  return TRUE;
}

void
cm_inventory_mark_decrypt_only (CmInventory *inv, const char *sha256)
{
  g_hash_table_add (inv->decrypt_only, g_ascii_strdown (sha256, -1));
}

gboolean
cm_inventory_is_decrypt_only (CmInventory *inv, const char *sha256)
{
  return g_hash_table_contains (inv->decrypt_only, sha256);
}

GPtrArray *
cm_inventory_get_certs (CmInventory *inv)
{
  if (inv->certs == NULL)
    {
      inv->certs = g_ptr_array_new ();
      for (guint i = 0; i < inv->order->len; i++)
        g_ptr_array_add (inv->certs,
                         g_hash_table_lookup (inv->by_sha, g_ptr_array_index (inv->order, i)));
    }
  return inv->certs;
}

CmCert *
cm_inventory_lookup (CmInventory *inv, const char *sha256)
{
  return g_hash_table_lookup (inv->by_sha, sha256);
}

GPtrArray *
cm_inventory_get_cards (CmInventory *inv)
{
  return inv->cards;
}

GPtrArray *
cm_inventory_get_personas (CmInventory *inv)
{
  if (inv->personas == NULL)
    cm_persona_build (inv);
  return inv->personas;
}

CmPersona *
cm_inventory_persona_of (CmInventory *inv, CmCert *cert)
{
  cm_inventory_get_personas (inv);
  return g_hash_table_lookup (inv->persona_of, cm_cert_get_sha256 (cert));
}

GPtrArray *
cm_inventory_get_persona_conflicts (CmInventory *inv)
{
  cm_inventory_get_personas (inv);
  return inv->conflicts;
}

gboolean
cm_inventory_persona_unknown (CmInventory *inv, CmCert *cert)
{
  cm_inventory_get_personas (inv);
  return g_hash_table_contains (inv->unknown, cm_cert_get_sha256 (cert));
}

GPtrArray *
cm_inventory_cards_of (CmInventory *inv, CmCert *cert)
{
  GPtrArray *out = g_ptr_array_new ();
  GPtrArray *sources = cm_cert_get_sources (cert);

  for (guint i = 0; i < sources->len; i++)
    {
      CmSource *s = g_ptr_array_index (sources, i);
      CmCard *card = s->card ? cm_inventory_find_card (inv, s->card) : NULL;
      if (card && !g_ptr_array_find (out, card, NULL))
        g_ptr_array_add (out, card);
    }
  return out;
}

static gint
compare_strings (gconstpointer a, gconstpointer b)
{
  return strcmp (*(const char *const *)a, *(const char *const *)b);
}

GPtrArray *
cm_inventory_list_emails (CmInventory *inv)
{
  GPtrArray *certs = cm_inventory_get_certs (inv);
  g_autoptr (GHashTable) seen = g_hash_table_new (g_str_hash, g_str_equal);
  GPtrArray *out = g_ptr_array_new_with_free_func (g_free);

  for (guint i = 0; i < certs->len; i++)
    {
      CmCert *c = g_ptr_array_index (certs, i);
      CmRole r = cm_cert_get_role (c);
      if (r != CM_ROLE_EMAIL_SIGNING && r != CM_ROLE_EMAIL_ENCRYPTION)
        continue;
      for (const char *const *e = cm_cert_get_emails (c); *e; e++)
        {
          char *low = g_ascii_strdown (*e, -1);
          if (g_hash_table_contains (seen, low))
            {
              g_free (low);
              continue;
            }
          g_hash_table_add (seen, low);
          g_ptr_array_add (out, low);
        }
    }
  g_ptr_array_sort (out, compare_strings);
  return out;
}

const char *
cm_card_get_label (CmCard *card)
{
  return card->label;
}
const CmChuid *
cm_card_get_chuid (CmCard *card)
{
  return card->chuid;
}
const char *
cm_card_get_identity (CmCard *card)
{
  return card->identity;
}

CmSourceKind
cm_card_get_kind (CmCard *card)
{
  return card->kind;
}

static gint
compare_entries (gconstpointer a, gconstpointer b)
{
  const CmCardEntry *x = a, *y = b;
  /* known slots in slot order, then objects whose slot the source did not say */
  guint sx = x->slot == CM_SLOT_NONE ? G_MAXUINT : x->slot;
  guint sy = y->slot == CM_SLOT_NONE ? G_MAXUINT : y->slot;
  return sx != sy ? (sx < sy ? -1 : 1) : 0;
}

GPtrArray *
cm_card_get_certs (CmCard *card)
{
  g_autoptr (GArray) sorted = g_array_copy (card->entries);

  if (card->certs)
    g_ptr_array_unref (card->certs);
  card->certs = g_ptr_array_new ();
  g_array_sort (sorted, compare_entries);
  for (guint i = 0; i < sorted->len; i++)
    {
      CmCert *c = cm_inventory_lookup (card->inv, g_array_index (sorted, CmCardEntry, i).sha);
      if (c && !g_ptr_array_find (card->certs, c, NULL))
        g_ptr_array_add (card->certs, c);
    }
  return card->certs;
}

CmCert *
cm_card_get_cert (CmCard *card, CmSlot slot)
{
  for (guint i = 0; slot != CM_SLOT_NONE && i < card->entries->len; i++)
    if (g_array_index (card->entries, CmCardEntry, i).slot == slot)
      return cm_inventory_lookup (card->inv, g_array_index (card->entries, CmCardEntry, i).sha);
  return NULL;
}

CmSlot
cm_card_get_slot_of (CmCard *card, CmCert *cert)
{
  for (guint i = 0; i < card->entries->len; i++)
    {
      CmCardEntry *e = &g_array_index (card->entries, CmCardEntry, i);
      if (e->slot != CM_SLOT_NONE && strcmp (e->sha, cm_cert_get_sha256 (cert)) == 0)
        return e->slot;
    }
  return CM_SLOT_NONE;
}

const char *
cm_persona_get_key (CmPersona *p)
{
  return p->key;
}
const char *
cm_persona_get_persona_id (CmPersona *p)
{
  return p->persona_id;
}
const char *
cm_persona_get_edipi (CmPersona *p)
{
  return p->edipi;
}
const char *
cm_persona_get_association (CmPersona *p)
{
  return p->association;
}
GPtrArray *
cm_persona_get_certs (CmPersona *p)
{
  return p->certs;
}
GPtrArray *
cm_persona_get_cards (CmPersona *p)
{
  return p->cards;
}
