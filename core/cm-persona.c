/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cm-persona.c: which certificates belong to one persona (one card of a person: contractor,
 * reservist, ...), by union-find over the person certificates.
 *
 * 1. Strong links: the same card (where the cert was read), FASC-N credential, card UUID or
 *    16-digit persona ID.
 * 2. A cert on no card (a file, an NSS database's own token) that carries an address joins
 *    every cert with the same EDIPI, the same exact subject DN and that address (real DoD
 *    email certs carry no card GUID: name and address are all they share with their card).
 * 3. A cert on no card without an address (PIV Auth, CAC ID) joins the one persona whose certs
 *    carry its EDIPI and subject DN and were valid at some time it was; when several do (two
 *    persona cards with one OU), the data cannot tell: it stays apart, marked unknown.
 * Two different persona IDs are never merged: the union is refused and recorded as a conflict.
 */
#include "cm-inventory-private.h"

typedef struct
{
  CmInventory *inv;
  GHashTable *parent; /* sha -> sha */
  GHashTable *pid;    /* root sha -> persona ID (borrowed from a cert) */
} Dsu;

/* The root of @x's set: the cert's own sha256 string (never a caller's copy of it). */
static const char *
find (Dsu *d, const char *x)
{
  const char *p;
  while ((p = g_hash_table_lookup (d->parent, x)) && strcmp (p, x) != 0)
    x = p;
  return p ? p : x;
}

static void
conflict_free (CmPersonaConflict *c)
{
  g_free (c->persona_ids[0]);
  g_free (c->persona_ids[1]);
  g_ptr_array_unref (c->certs);
  g_free (c);
}

/* Record that @a and @b (persona IDs) were kept apart; @sha1 and @sha2 are certs involved. */
static void
add_conflict (CmInventory *inv, const char *a, const char *b, const char *sha1, const char *sha2)
{
  const char *lo = strcmp (a, b) < 0 ? a : b, *hi = lo == a ? b : a;
  CmPersonaConflict *c = NULL;
  const char *shas[] = { sha1, sha2 };

  for (guint i = 0; i < inv->conflicts->len && !c; i++)
    {
      CmPersonaConflict *o = g_ptr_array_index (inv->conflicts, i);
      if (strcmp (o->persona_ids[0], lo) == 0 && strcmp (o->persona_ids[1], hi) == 0)
        c = o;
    }
  if (c == NULL)
    {
      c = g_new0 (CmPersonaConflict, 1);
      c->persona_ids[0] = g_strdup (lo);
      c->persona_ids[1] = g_strdup (hi);
      c->certs = g_ptr_array_new_with_free_func (g_free);
      g_ptr_array_add (inv->conflicts, c);
    }
  for (gsize i = 0; i < G_N_ELEMENTS (shas); i++)
    if (shas[i] && !g_ptr_array_find_with_equal_func (c->certs, shas[i], g_str_equal, NULL))
      g_ptr_array_add (c->certs, g_strdup (shas[i]));
}

/* Join the sets of @a and @b unless they hold different persona IDs (then record the
 * conflict). Returns FALSE when refused. */
static gboolean
unite (Dsu *d, const char *a, const char *b)
{
  const char *ra = find (d, a), *rb = find (d, b);
  const char *pa, *pb;

  if (strcmp (ra, rb) == 0)
    return TRUE;
  pa = g_hash_table_lookup (d->pid, ra);
  pb = g_hash_table_lookup (d->pid, rb);
  if (pa && pb && strcmp (pa, pb) != 0)
    {
      add_conflict (d->inv, pa, pb, a, b);
      return FALSE;
    }
  g_hash_table_insert (d->parent, (gpointer)rb, (gpointer)ra);
  if (pa == NULL && pb)
    g_hash_table_insert (d->pid, (gpointer)ra, (gpointer)pb);
  return TRUE;
}

/* Link every cert that shares @key (a card, FASC-N credential, card UUID, persona ID). */
static void
link_by (Dsu *d, GHashTable *first, const char *key, const char *sha)
{
  const char *seen;
  if (key == NULL)
    return;
  seen = g_hash_table_lookup (first, key);
  if (seen)
    unite (d, seen, sha);
  else
    g_hash_table_insert (first, g_strdup (key), (gpointer)sha);
}

static gboolean
is_person_cert (CmCert *c)
{
  return !cm_cert_is_ca (c) && cm_cert_get_role (c) != CM_ROLE_OTHER;
}

static gboolean
on_a_card (CmCert *c)
{
  GPtrArray *sources = cm_cert_get_sources (c);
  for (guint i = 0; i < sources->len; i++)
    if (((CmSource *)g_ptr_array_index (sources, i))->card)
      return TRUE;
  return FALSE;
}

/* "EDIPI|subject DN", or NULL for a cert without an EDIPI. Caller frees. */
static char *
name_key (CmCert *c)
{
  const char *edipi = cm_cert_get_edipi (c);
  return edipi ? g_strdup_printf ("%s|%s", edipi, cm_cert_get_subject (c)) : NULL;
}

static void
strong_links (Dsu *d, GPtrArray *certs)
{
  g_autoptr (GHashTable) first = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);

  for (guint i = 0; i < certs->len; i++)
    {
      CmCert *c = g_ptr_array_index (certs, i);
      const char *sha = cm_cert_get_sha256 (c);
      GPtrArray *sources = cm_cert_get_sources (c);
      g_autofree char *fascn = NULL, *uuid = NULL, *pid = NULL;

      for (guint j = 0; j < sources->len; j++)
        {
          const char *card = ((CmSource *)g_ptr_array_index (sources, j))->card;
          g_autofree char *k = card ? g_strdup_printf ("card:%s", card) : NULL;
          link_by (d, first, k, sha);
        }
      if (cm_cert_get_fascn (c))
        fascn = cm_fascn_credential_key (cm_cert_get_fascn (c));
      if (cm_cert_get_uuid (c))
        uuid = g_strdup_printf ("uuid:%s", cm_cert_get_uuid (c));
      if (cm_cert_get_persona_id (c))
        pid = g_strdup_printf ("persona:%s", cm_cert_get_persona_id (c));
      link_by (d, first, fascn, sha);
      link_by (d, first, uuid, sha);
      link_by (d, first, pid, sha);
    }
}

/* Step 2: certs on no card with an address join the certs of the same name and address. */
static void
address_links (Dsu *d, GPtrArray *certs)
{
  g_autoptr (GHashTable) groups
    = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify)g_ptr_array_unref);
  GHashTableIter it;
  gpointer value;

  for (guint i = 0; i < certs->len; i++)
    {
      CmCert *c = g_ptr_array_index (certs, i);
      g_autofree char *name = name_key (c);
      for (const char *const *e = cm_cert_get_emails (c); name && *e; e++)
        {
          g_autofree char *low = g_ascii_strdown (*e, -1);
          char *key = g_strdup_printf ("%s|%s", name, low);
          GPtrArray *list = g_hash_table_lookup (groups, key);
          if (list == NULL)
            g_hash_table_insert (groups, key, list = g_ptr_array_new ());
          else
            g_free (key);
          if (!g_ptr_array_find (list, c, NULL))
            g_ptr_array_add (list, c);
        }
    }
  g_hash_table_iter_init (&it, groups);
  while (g_hash_table_iter_next (&it, NULL, &value))
    {
      GPtrArray *list = value;
      CmCert *loose = NULL;
      for (guint i = 0; i < list->len && !loose; i++)
        if (!on_a_card (g_ptr_array_index (list, i)))
          loose = g_ptr_array_index (list, i);
      for (guint i = 0; loose && i < list->len; i++)
        unite (d, cm_cert_get_sha256 (loose), cm_cert_get_sha256 (g_ptr_array_index (list, i)));
    }
}

static gboolean
placed_by_name (CmCert *c)
{
  return !on_a_card (c) && cm_cert_get_emails (c)[0] == NULL && cm_cert_get_edipi (c) != NULL;
}

static gboolean
periods_overlap (CmCert *a, CmCert *b)
{
  return cm_cert_get_not_before (a) <= cm_cert_get_not_after (b)
         && cm_cert_get_not_before (b) <= cm_cert_get_not_after (a);
}

/* The roots of the certs named like @c (@name) that are not themselves placed by name and were
 * valid at some time @c was: a card's login and email certs are issued together, so an older
 * generation under the same name (the address before a migration, a retired key) is no
 * candidate. */
static GPtrArray *
targets_of (Dsu *d, GPtrArray *certs, CmCert *c, const char *name)
{
  GPtrArray *roots = g_ptr_array_new ();

  for (guint i = 0; i < certs->len; i++)
    {
      CmCert *o = g_ptr_array_index (certs, i);
      g_autofree char *k = placed_by_name (o) ? NULL : name_key (o);
      const char *r;
      if (k == NULL || strcmp (k, name) != 0 || !periods_overlap (c, o))
        continue;
      r = find (d, cm_cert_get_sha256 (o));
      if (!g_ptr_array_find_with_equal_func (roots, r, g_str_equal, NULL))
        g_ptr_array_add (roots, (gpointer)r);
    }
  return roots;
}

/* Join @planned (certs placed by name, all aimed at the set of @root; or, with @root NULL,
 * named alike with no other cert of that name) unless their persona IDs disagree: then every
 * cert carrying an ID stays apart, unknown, and the disagreement is a conflict. */
static void
place_group (Dsu *d, const char *root, GPtrArray *planned)
{
  const char *want = root ? g_hash_table_lookup (d->pid, find (d, root)) : NULL;
  const char *other = NULL, *anchor = root;

  for (guint i = 0; i < planned->len; i++)
    {
      const char *p = cm_cert_get_persona_id (g_ptr_array_index (planned, i));
      if (p && want == NULL)
        want = p;
      else if (p && strcmp (p, want) != 0 && other == NULL)
        other = p;
    }
  for (guint i = 0; i < planned->len && anchor == NULL; i++)
    if (other == NULL || cm_cert_get_persona_id (g_ptr_array_index (planned, i)) == NULL)
      anchor = cm_cert_get_sha256 (g_ptr_array_index (planned, i));
  for (guint i = 0; i < planned->len; i++)
    {
      CmCert *c = g_ptr_array_index (planned, i);
      const char *p = cm_cert_get_persona_id (c), *sha = cm_cert_get_sha256 (c);
      if (other && p)
        {
          add_conflict (d->inv, want, strcmp (p, want) == 0 ? other : p, sha, anchor);
          g_hash_table_add (d->inv->unknown, g_strdup (sha));
        }
      else if (anchor && strcmp (sha, anchor) != 0)
        unite (d, anchor, sha);
    }
}

/* Step 3: certs on no card without an address, by name. */
static void
name_links (Dsu *d, GPtrArray *certs)
{
  g_autoptr (GHashTable) plans
    = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify)g_ptr_array_unref);
  GHashTableIter it;
  gpointer key, value;

  for (guint i = 0; i < certs->len; i++)
    {
      CmCert *c = g_ptr_array_index (certs, i);
      g_autofree char *name = placed_by_name (c) ? name_key (c) : NULL;
      g_autoptr (GPtrArray) roots = name ? targets_of (d, certs, c, name) : NULL;
      char *plan;
      GPtrArray *list;

      if (roots == NULL)
        continue;
      if (roots->len > 1)
        {
          g_hash_table_add (d->inv->unknown, g_strdup (cm_cert_get_sha256 (c)));
          continue;
        }
      /* one target: join it; none: join the others of the same name */
      plan = roots->len ? g_strdup_printf ("root:%s", (char *)g_ptr_array_index (roots, 0))
                        : g_strdup_printf ("name:%s", name);
      if ((list = g_hash_table_lookup (plans, plan)) == NULL)
        g_hash_table_insert (plans, plan, list = g_ptr_array_new ());
      else
        g_free (plan);
      g_ptr_array_add (list, c);
    }
  g_hash_table_iter_init (&it, plans);
  while (g_hash_table_iter_next (&it, &key, &value))
    place_group (d, g_str_has_prefix (key, "root:") ? (char *)key + 5 : NULL, value);
}

/* "edipi:EDIPI/OU" for a persona known only by name: the OU tells a person's cards apart. */
static char *
name_persona_key (CmCert *c)
{
  const char *subject = cm_cert_get_subject (c), *ou = strstr (subject, ",OU=");
  g_autofree char *unit = ou ? g_strndup (ou + 4, strcspn (ou + 4, ",")) : NULL;

  return g_strdup_printf ("edipi:%s%s%s", cm_cert_get_edipi (c), unit ? "/" : "", unit ? unit : "");
}

static char *
persona_key (CmPersona *p)
{
  CmCert *c0 = g_ptr_array_index (p->certs, 0);

  if (p->persona_id)
    return g_strdup (p->persona_id);
  if (p->cards->len)
    return g_strdup (((CmCard *)g_ptr_array_index (p->cards, 0))->identity);
  if (cm_cert_get_fascn (c0))
    return cm_fascn_credential_key (cm_cert_get_fascn (c0));
  if (cm_cert_get_uuid (c0))
    return g_strdup_printf ("uuid:%s", cm_cert_get_uuid (c0));
  if (cm_cert_get_edipi (c0))
    return name_persona_key (c0);
  return g_strdup_printf ("cert:%.16s", cm_cert_get_sha256 (c0));
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

/* Fill @p's cards and association from its certs. */
static void
finish_persona (CmInventory *inv, CmPersona *p)
{
  for (guint i = 0; i < p->certs->len; i++)
    {
      CmCert *c = g_ptr_array_index (p->certs, i);
      g_autoptr (GPtrArray) cards = cm_inventory_cards_of (inv, c);
      for (guint j = 0; j < cards->len; j++)
        {
          CmCard *card = g_ptr_array_index (cards, j);
          if (!g_ptr_array_find (p->cards, card, NULL))
            g_ptr_array_add (p->cards, card);
          if (!p->association && card->chuid && cm_chuid_get_fascn (card->chuid))
            p->association = cm_fascn_poa_name (cm_chuid_get_fascn (card->chuid));
        }
      if (!p->association && cm_cert_get_fascn (c))
        p->association = cm_fascn_poa_name (cm_cert_get_fascn (c));
    }
  p->key = persona_key (p);
}

static void
group (CmInventory *inv, Dsu *d, GPtrArray *certs)
{
  g_autoptr (GHashTable) by_root = g_hash_table_new (g_str_hash, g_str_equal);

  for (guint i = 0; i < certs->len; i++)
    {
      CmCert *c = g_ptr_array_index (certs, i);
      const char *root = find (d, cm_cert_get_sha256 (c));
      CmPersona *p = g_hash_table_lookup (by_root, root);
      if (p == NULL)
        {
          p = g_new0 (CmPersona, 1);
          p->certs = g_ptr_array_new ();
          p->cards = g_ptr_array_new ();
          g_hash_table_insert (by_root, (gpointer)root, p);
          g_ptr_array_add (inv->personas, p);
        }
      g_ptr_array_add (p->certs, c);
      g_hash_table_insert (inv->persona_of, (gpointer)cm_cert_get_sha256 (c), p);
      if (!p->persona_id && cm_cert_get_persona_id (c))
        p->persona_id = g_strdup (cm_cert_get_persona_id (c));
      if (!p->edipi && cm_cert_get_edipi (c))
        p->edipi = g_strdup (cm_cert_get_edipi (c));
    }
  for (guint i = 0; i < inv->personas->len; i++)
    finish_persona (inv, g_ptr_array_index (inv->personas, i));
}

void
cm_persona_build (CmInventory *inv)
{
  GPtrArray *all = cm_inventory_get_certs (inv);
  g_autoptr (GPtrArray) certs = g_ptr_array_new ();
  Dsu d = { inv, g_hash_table_new (g_str_hash, g_str_equal),
            g_hash_table_new (g_str_hash, g_str_equal) };

  inv->personas = g_ptr_array_new_with_free_func ((GDestroyNotify)persona_free);
  inv->persona_of = g_hash_table_new (g_str_hash, g_str_equal);
  inv->conflicts = g_ptr_array_new_with_free_func ((GDestroyNotify)conflict_free);
  inv->unknown = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  for (guint i = 0; i < all->len; i++)
    {
      CmCert *c = g_ptr_array_index (all, i);
      const char *sha = cm_cert_get_sha256 (c);
      if (!is_person_cert (c))
        continue;
      g_ptr_array_add (certs, c);
      g_hash_table_insert (d.parent, (gpointer)sha, (gpointer)sha);
      if (cm_cert_get_persona_id (c))
        g_hash_table_insert (d.pid, (gpointer)sha, (gpointer)cm_cert_get_persona_id (c));
    }
  strong_links (&d, certs);
  address_links (&d, certs);
  name_links (&d, certs);
  group (inv, &d, certs);
  g_hash_table_unref (d.parent);
  g_hash_table_unref (d.pid);
}

void
cm_persona_clear (CmInventory *inv)
{
  g_clear_pointer (&inv->personas, g_ptr_array_unref);
  g_clear_pointer (&inv->persona_of, g_hash_table_unref);
  g_clear_pointer (&inv->conflicts, g_ptr_array_unref);
  g_clear_pointer (&inv->unknown, g_hash_table_unref);
}
