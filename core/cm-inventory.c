/* cm-inventory.c: the certificates and cards we were given, deduplicated by DER, and the
 * personas they form. */
#include "cm-private.h"
#include "cm-cardfolder.h"

struct _CmCard
{
  CmInventory *inv;
  char *label;
  CmChuid *chuid;
  char *identity;
  GHashTable *slots; /* CmSlot -> sha256 (char*) */
  GPtrArray *certs;  /* CmCert*, refreshed by cm_card_get_certs */
};

struct _CmPersona
{
  char *key;
  char *persona_id;
  char *edipi;
  const char *association;
  GPtrArray *certs; /* CmCert* (borrowed from the inventory) */
  GPtrArray *cards; /* CmCard* */
};

struct _CmInventory
{
  GHashTable *by_sha; /* sha256 -> CmCert* (owned) */
  GPtrArray *order;   /* sha256 (owned strings), insertion order */
  GPtrArray *certs;   /* CmCert*, rebuilt on demand */
  GPtrArray *cards;   /* CmCard* */
  GPtrArray *personas;
  GHashTable *persona_of;   /* sha256 -> CmPersona* */
  GHashTable *decrypt_only; /* sha256 set */
};

static gint
compare_slots (gconstpointer a, gconstpointer b)
{
  return (gint)GPOINTER_TO_UINT (a) - (gint)GPOINTER_TO_UINT (b);
}

static void
card_free (CmCard *card)
{
  g_free (card->label);
  cm_chuid_free (card->chuid);
  g_free (card->identity);
  g_hash_table_unref (card->slots);
  if (card->certs)
    g_ptr_array_unref (card->certs);
  g_free (card);
}

static void
persona_free (CmPersona *p)
{
  g_free (p->key);
  g_free (p->persona_id);
  g_free (p->edipi);
  g_ptr_array_unref (p->certs);
  g_ptr_array_unref (p->cards);
  g_free (p);
}

static void
invalidate (CmInventory *inv)
{
  g_clear_pointer (&inv->certs, g_ptr_array_unref);
  g_clear_pointer (&inv->personas, g_ptr_array_unref);
  g_clear_pointer (&inv->persona_of, g_hash_table_unref);
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
  g_autoptr (CmCert) cert = decode_with_source (der, source, error);

  if (cert == NULL)
    return FALSE;
  insert_cert (inv, cert, source);
  return TRUE;
}

gboolean
cm_inventory_add_card (CmInventory *inv, CmSourceKind kind, const char *label, CmChuid *chuid,
                       GHashTable *slot_certs, GError **error)
{
  g_autoptr (GPtrArray) decoded = g_ptr_array_new_with_free_func ((GDestroyNotify)cm_cert_unref);
  g_autoptr (GPtrArray) sources = g_ptr_array_new_with_free_func ((GDestroyNotify)cm_source_free);
  g_autoptr (GArray) slots = g_array_new (FALSE, FALSE, sizeof (CmSlot));
  CmCard *card;

  /* Decode everything first: a bad object adds nothing. Slot order keeps output stable. */
  g_autoptr (GList) keys = g_list_sort (g_hash_table_get_keys (slot_certs), compare_slots);
  for (GList *l = keys; l; l = l->next)
    {
      g_autoptr (GError) local = NULL;
      CmSlot slot = GPOINTER_TO_UINT (l->data);
      GBytes *v = g_hash_table_lookup (slot_certs, l->data);
      CmSource *src = cm_source_new (kind, label, slot);
      CmCert *c = decode_with_source (v, src, &local);

      g_ptr_array_add (sources, src);
      if (c == NULL)
        {
          g_set_error (error, CM_ERROR, CM_ERROR_BAD_INPUT, "%s: slot %s: %s", label,
                       cm_slot_to_string (slot), local->message);
          cm_chuid_free (chuid);
          return FALSE;
        }
      g_ptr_array_add (decoded, c);
      g_array_append_val (slots, slot);
    }
  card = g_new0 (CmCard, 1);
  card->inv = inv;
  card->label = g_strdup (label);
  card->chuid = chuid;
  card->identity = chuid ? cm_chuid_identity (chuid) : g_strdup_printf ("card:%s", label);
  card->slots = g_hash_table_new_full (g_direct_hash, g_direct_equal, NULL, g_free);
  for (guint i = 0; i < decoded->len; i++)
    {
      CmCert *c = g_ptr_array_index (decoded, i);
      CmSlot slot = g_array_index (slots, CmSlot, i);
      insert_cert (inv, c, g_ptr_array_index (sources, i));
      g_hash_table_insert (card->slots, GUINT_TO_POINTER (slot), g_strdup (cm_cert_get_sha256 (c)));
    }
  g_ptr_array_add (inv->cards, card);
  invalidate (inv);
  return TRUE;
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

/* ---- personas: union-find over certificates ---- */

typedef struct
{
  GHashTable *parent; /* sha -> sha */
} Dsu;

static const char *
dsu_find (Dsu *d, const char *x)
{
  const char *p;
  while ((p = g_hash_table_lookup (d->parent, x)) && strcmp (p, x) != 0)
    x = p;
  return x;
}

static void
dsu_union (Dsu *d, const char *a, const char *b)
{
  const char *ra = dsu_find (d, a), *rb = dsu_find (d, b);
  if (strcmp (ra, rb) != 0)
    g_hash_table_insert (d->parent, (gpointer)rb, (gpointer)ra);
}

/* Link every cert that shares @key (a FASC-N credential, card UUID, persona ID, card). */
static void
link_by (Dsu *d, GHashTable *first, const char *key, const char *sha)
{
  const char *seen;
  if (key == NULL)
    return;
  seen = g_hash_table_lookup (first, key);
  if (seen)
    dsu_union (d, seen, sha);
  else
    g_hash_table_insert (first, g_strdup (key), (gpointer)sha);
}

static gboolean
is_person_cert (CmCert *c)
{
  return !cm_cert_is_ca (c) && cm_cert_get_role (c) != CM_ROLE_OTHER;
}

static void
build_personas (CmInventory *inv)
{
  GPtrArray *certs = cm_inventory_get_certs (inv);
  Dsu d = { g_hash_table_new (g_str_hash, g_str_equal) };
  g_autoptr (GHashTable) first = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_autoptr (GHashTable) by_root = g_hash_table_new (g_str_hash, g_str_equal);

  inv->personas = g_ptr_array_new_with_free_func ((GDestroyNotify)persona_free);
  inv->persona_of = g_hash_table_new (g_str_hash, g_str_equal);
  for (guint i = 0; i < certs->len; i++)
    {
      CmCert *c = g_ptr_array_index (certs, i);
      const char *sha = cm_cert_get_sha256 (c);
      if (!is_person_cert (c))
        continue;
      g_hash_table_insert (d.parent, (gpointer)sha, (gpointer)sha);
      if (cm_cert_get_fascn (c))
        {
          g_autofree char *k = cm_fascn_credential_key (cm_cert_get_fascn (c));
          link_by (&d, first, k, sha);
        }
      if (cm_cert_get_uuid (c))
        {
          g_autofree char *k = g_strdup_printf ("uuid:%s", cm_cert_get_uuid (c));
          link_by (&d, first, k, sha);
        }
      if (cm_cert_get_persona_id (c))
        {
          g_autofree char *k = g_strdup_printf ("persona:%s", cm_cert_get_persona_id (c));
          link_by (&d, first, k, sha);
        }
    }
  for (guint i = 0; i < inv->cards->len; i++)
    {
      CmCard *card = g_ptr_array_index (inv->cards, i);
      GHashTableIter it;
      gpointer sha;
      g_hash_table_iter_init (&it, card->slots);
      while (g_hash_table_iter_next (&it, NULL, &sha))
        if (g_hash_table_contains (d.parent, sha))
          {
            link_by (&d, first, card->identity, sha);
            link_by (&d, first, card->label, sha);
          }
    }

  for (guint i = 0; i < certs->len; i++)
    {
      CmCert *c = g_ptr_array_index (certs, i);
      const char *sha = cm_cert_get_sha256 (c);
      const char *root;
      CmPersona *p;
      if (!g_hash_table_contains (d.parent, sha))
        continue;
      root = dsu_find (&d, sha);
      p = g_hash_table_lookup (by_root, root);
      if (p == NULL)
        {
          p = g_new0 (CmPersona, 1);
          p->certs = g_ptr_array_new ();
          p->cards = g_ptr_array_new ();
          g_hash_table_insert (by_root, (gpointer)root, p);
          g_ptr_array_add (inv->personas, p);
        }
      g_ptr_array_add (p->certs, c);
      g_hash_table_insert (inv->persona_of, (gpointer)sha, p);
      if (!p->persona_id && cm_cert_get_persona_id (c))
        p->persona_id = g_strdup (cm_cert_get_persona_id (c));
      if (!p->edipi && cm_cert_get_edipi (c))
        p->edipi = g_strdup (cm_cert_get_edipi (c));
      if (!p->association && cm_cert_get_fascn (c))
        p->association = cm_fascn_poa_name (cm_cert_get_fascn (c));
    }
  for (guint i = 0; i < inv->cards->len; i++)
    {
      CmCard *card = g_ptr_array_index (inv->cards, i);
      GHashTableIter it;
      gpointer sha;
      g_hash_table_iter_init (&it, card->slots);
      while (g_hash_table_iter_next (&it, NULL, &sha))
        {
          CmPersona *p = g_hash_table_lookup (inv->persona_of, sha);
          if (p && !g_ptr_array_find (p->cards, card, NULL))
            g_ptr_array_add (p->cards, card);
          if (p && !p->association && card->chuid && cm_chuid_get_fascn (card->chuid))
            p->association = cm_fascn_poa_name (cm_chuid_get_fascn (card->chuid));
        }
    }
  for (guint i = 0; i < inv->personas->len; i++)
    {
      CmPersona *p = g_ptr_array_index (inv->personas, i);
      CmCert *c0 = g_ptr_array_index (p->certs, 0);
      if (p->persona_id)
        p->key = g_strdup (p->persona_id);
      else if (p->cards->len)
        p->key = g_strdup (((CmCard *)g_ptr_array_index (p->cards, 0))->identity);
      else if (cm_cert_get_fascn (c0))
        p->key = cm_fascn_credential_key (cm_cert_get_fascn (c0));
      else if (cm_cert_get_uuid (c0))
        p->key = g_strdup_printf ("uuid:%s", cm_cert_get_uuid (c0));
      else
        p->key = g_strdup_printf ("cert:%.16s", cm_cert_get_sha256 (c0));
    }
  g_hash_table_unref (d.parent);
}

GPtrArray *
cm_inventory_get_personas (CmInventory *inv)
{
  if (inv->personas == NULL)
    build_personas (inv);
  return inv->personas;
}

CmPersona *
cm_inventory_persona_of (CmInventory *inv, CmCert *cert)
{
  cm_inventory_get_personas (inv);
  return g_hash_table_lookup (inv->persona_of, cm_cert_get_sha256 (cert));
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
  g_ptr_array_sort (out, (GCompareFunc)g_strcmp0);
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

GPtrArray *
cm_card_get_certs (CmCard *card)
{
  g_autoptr (GList) keys = g_hash_table_get_keys (card->slots);

  if (card->certs)
    g_ptr_array_unref (card->certs);
  card->certs = g_ptr_array_new ();
  keys = g_list_sort (keys, compare_slots);
  for (GList *l = keys; l; l = l->next)
    g_ptr_array_add (card->certs, cm_card_get_cert (card, GPOINTER_TO_UINT (l->data)));
  return card->certs;
}

CmCert *
cm_card_get_cert (CmCard *card, CmSlot slot)
{
  const char *sha = g_hash_table_lookup (card->slots, GUINT_TO_POINTER (slot));
  return sha ? cm_inventory_lookup (card->inv, sha) : NULL;
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
