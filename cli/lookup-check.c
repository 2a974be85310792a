/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* lookup-check.c: `cacmail lookup`'s target NSS databases, the checks of each certificate found
 * for a recipient (role, chain, validity, address) and its import (docs/ldap.md, "Recipient
 * lookup"). */
#include "lookup.h"
#include <cert.h>
#include <certdb.h>
#include <pk11pub.h>
#include <string.h>

typedef struct
{
  CmNssdbLocation *loc;
  CmTrust *trust;    /* the database's CAs, cacmail's bundle, --ca */
  CmTrust *ca_trust; /* --ca first (its roots are anchors even where the database holds them
                        untrusted), then the database's CAs as intermediates; or NULL */
} Target;

struct _LookupTargets
{
  GPtrArray *targets; /* Target* */
  GPtrArray *dirs;    /* char* */
};

static void
target_free (Target *t)
{
  cm_nssdb_location_free (t->loc);
  cm_trust_free (t->trust);
  if (t->ca_trust)
    cm_trust_free (t->ca_trust);
  g_free (t);
}

void
lookup_targets_free (LookupTargets *t)
{
  if (t == NULL)
    return;
  g_ptr_array_unref (t->targets);
  g_ptr_array_unref (t->dirs);
  g_free (t);
}

GPtrArray *
lookup_targets_get_dirs (LookupTargets *t)
{
  return t->dirs;
}

void
lookup_cert_free (LookupCert *lc)
{
  if (lc == NULL)
    return;
  g_free (lc->sha256);
  if (lc->cert)
    cm_cert_unref (lc->cert);
  g_ptr_array_unref (lc->problems);
  g_free (lc);
}

/* The locations to import into (see lookup_targets_open). */
static GPtrArray *
find_locations (const char *nssdb, const char *client, GError **error)
{
  GPtrArray *out = g_ptr_array_new_with_free_func ((GDestroyNotify)cm_nssdb_location_free);
  g_autoptr (GPtrArray) all = NULL;
  gboolean evo = g_strcmp0 (client, "evolution") == 0;

  if (nssdb)
    {
      g_ptr_array_add (out, cm_nssdb_locate (nssdb));
      return out;
    }
  all = cm_nssdb_find_locations ();
  for (guint i = 0; i < all->len; i++)
    {
      CmNssdbLocation *loc = g_ptr_array_index (all, i);
      gboolean want = client == NULL
                      || (evo ? loc->client == CM_NSSDB_CLIENT_EVOLUTION
                              : loc->client == CM_NSSDB_CLIENT_THUNDERBIRD && loc->is_default);
      /* Evolution's database is made when asked for by name (NSS creates it in the folder) */
      if (want && (loc->exists || (evo && g_mkdir_with_parents (loc->dir, 0700) == 0)))
        g_ptr_array_add (out, g_steal_pointer (&g_ptr_array_index (all, i)));
    }
  g_ptr_array_set_free_func (all, (GDestroyNotify)cm_nssdb_location_free);
  if (out->len == 0)
    {
      g_set_error (error, CM_ERROR, CM_ERROR_NOT_FOUND,
                   "no NSS database of %s found: start the mail client once, or name a database "
                   "with --nssdb DIR",
                   client ? client : "Evolution or Thunderbird");
      g_clear_pointer (&out, g_ptr_array_unref);
    }
  return out;
}

/* --ca, then every CA of @db as an intermediate (the files were read once already). */
static CmTrust *
ca_trust_new (CmNssDb *db, char **ca_files)
{
  CmTrust *trust = cm_trust_new ();
  g_autoptr (CmInventory) inv = cm_inventory_new ();
  GPtrArray *certs;

  for (char **f = ca_files; *f; f++)
    cm_trust_add_file (trust, *f, NULL);
  cm_nss_add_token_certs_sync (inv, cm_nss_db_get_slot (db), cm_nss_db_get_dir (db), NULL, NULL);
  certs = cm_inventory_get_certs (inv);
  for (guint i = 0; i < certs->len; i++)
    if (cm_cert_is_ca (g_ptr_array_index (certs, i)))
      cm_trust_add_intermediate (trust, g_ptr_array_index (certs, i));
  return trust;
}

LookupTargets *
lookup_targets_open (const char *nssdb, const char *client, char **ca_files, GError **error)
{
  g_autoptr (LookupTargets) t = g_new0 (LookupTargets, 1);
  g_autoptr (GPtrArray) locs = find_locations (nssdb, client, error);
  g_autofree char *bundle = cm_nssdb_default_bundle_path ();

  if (locs == NULL)
    return NULL;
  t->targets = g_ptr_array_new_with_free_func ((GDestroyNotify)target_free);
  t->dirs = g_ptr_array_new_with_free_func (g_free);
  for (guint i = 0; i < locs->len; i++)
    {
      CmNssdbLocation *loc = g_ptr_array_index (locs, i);
      g_autoptr (CmNssDb) db = NULL;
      Target *tg;

      if (!cm_nssdb_location_check (loc, CM_NSSDB_CHANGE_OBJECTS, error)
          || (db = cm_nss_db_open_sync (loc->dir, CM_NSS_DB_DEFAULT, NULL, error)) == NULL)
        return NULL;
      if (cm_nss_db_is_read_only (db))
        {
          g_set_error (error, CM_ERROR, CM_ERROR_ENVIRONMENT,
                       "the NSS database in %s is read-only: make it writable by you", loc->dir);
          return NULL;
        }
      tg = g_new0 (Target, 1);
      tg->trust = cm_nssdb_trust_from_db (db, bundle);
      g_ptr_array_add (t->targets, tg);
      for (char **f = ca_files; f && *f; f++)
        if (!cm_trust_add_file (tg->trust, *f, error))
          return NULL;
      if (ca_files && ca_files[0])
        tg->ca_trust = ca_trust_new (db, ca_files);
      tg->loc = g_steal_pointer (&g_ptr_array_index (locs, i));
      g_ptr_array_add (t->dirs, g_strdup_printf ("sql:%s", tg->loc->dir));
    }
  g_ptr_array_set_free_func (locs, (GDestroyNotify)cm_nssdb_location_free);
  return g_steal_pointer (&t);
}

static void add_problem (LookupCert *lc, const char *code, CmSeverity sev, const char *hint,
                         const char *fmt, ...) G_GNUC_PRINTF (5, 6);

static void
add_problem (LookupCert *lc, const char *code, CmSeverity sev, const char *hint, const char *fmt,
             ...)
{
  va_list ap;
  g_autofree char *msg = NULL;
  CmProblem *p;

  va_start (ap, fmt);
  msg = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  p = cm_problem_new (code, sev, msg, hint);
  cm_problem_add_cert (p, lc->sha256);
  g_ptr_array_add (lc->problems, p);
}

/* An email encryption certificate: classified so, or a dual-use email certificate (key
 * encipherment or agreement, emailProtection or no extended key usage) that is no login or
 * card certificate. */
static gboolean
encrypts (CmCert *c)
{
  CmRole role = cm_cert_get_role (c);
  const char *const *ekus = cm_cert_get_ekus (c);
  guint ku = cm_cert_get_key_usage (c);

  if (role == CM_ROLE_EMAIL_ENCRYPTION)
    return TRUE;
  if (role != CM_ROLE_OTHER && role != CM_ROLE_EMAIL_SIGNING)
    return FALSE;
  if (cm_cert_is_ca (c)
      || (cm_cert_has_key_usage (c) && !(ku & (CM_KU_KEY_ENCIPHERMENT | CM_KU_KEY_AGREEMENT))))
    return FALSE;
  return ekus == NULL || ekus[0] == NULL || g_strv_contains (ekus, "1.3.6.1.5.5.7.3.4");
}

static const char *
chain_reason (CmChainStatus st)
{
  switch (st)
    {
    case CM_CHAIN_NO_ISSUER: return "an issuing CA certificate is missing";
    case CM_CHAIN_UNTRUSTED_ROOT: return "it ends at a root that is not trusted";
    case CM_CHAIN_CA_NOT_VALID: return "a CA on the path is expired or not yet valid";
    case CM_CHAIN_BAD_SIGNATURE: return "a signature on the path does not verify";
    case CM_CHAIN_OK:
    default: return "ok";
    }
}

/* The path from @c to an anchor of @tg (or of --ca), leaf first (*@chain, nullable). */
static CmChainStatus
target_chain (Target *tg, CmCert *c, gint64 at, GPtrArray **chain)
{
  CmChainStatus st = cm_trust_build_chain (tg->trust, c, at, chain);

  if (st != CM_CHAIN_OK && tg->ca_trust)
    {
      CmChainStatus ca = cm_trust_build_chain (tg->ca_trust, c, at, chain);
      if (ca == CM_CHAIN_OK)
        return ca;
    }
  return st;
}

/* The chain status against every target (the first that fails). */
static CmChainStatus
check_chain (LookupTargets *t, CmCert *c, gint64 at)
{
  for (guint i = 0; i < t->targets->len; i++)
    {
      CmChainStatus st = target_chain (g_ptr_array_index (t->targets, i), c, at, NULL);
      if (st != CM_CHAIN_OK)
        return st;
    }
  return CM_CHAIN_OK;
}

static void
check_cert (LookupTargets *t, LookupCert *lc, const char *address, gint64 at)
{
  CmCert *c = lc->cert;
  const char *name = cm_cert_get_subject (c);
  CmChainStatus st;

  lc->role = cm_role_to_string (cm_cert_get_role (c));
  lc->valid_now = cm_cert_is_valid_at (c, at);
  lc->address_match = cm_cert_has_email (c, address);
  st = check_chain (t, c, at);
  lc->chain = cm_chain_status_to_string (st);
  if (!encrypts (c))
    add_problem (lc, "recipient-not-encryption", CM_SEVERITY_INFO,
                 "Nothing to do: mail to this address is encrypted to its encryption certificate",
                 "'%s' is not an encryption certificate (role %s): not imported", name, lc->role);
  if (!lc->valid_now)
    add_problem (
      lc, cm_cert_get_not_after (c) < at ? "recipient-expired" : "recipient-not-yet-valid",
      CM_SEVERITY_ERROR, "Ask the recipient to publish a current certificate (cacmail republish)",
      "the certificate '%s' for %s is %s: not imported", name, address,
      cm_cert_get_not_after (c) < at ? "expired" : "not valid yet");
  if (!lc->address_match)
    add_problem (lc, "recipient-address-mismatch", CM_SEVERITY_ERROR,
                 "Ask the directory admin why the entry of this address holds another person's "
                 "certificate",
                 "the certificate '%s' found for %s does not carry that address: not imported",
                 name, address);
  if (st != CM_CHAIN_OK)
    add_problem (lc, "chain-untrusted", CM_SEVERITY_ERROR,
                 "Trust the issuing root CA in the mail client's database (cacmail nss trust "
                 "ROOT.crt INTERMEDIATES...) or pass the CAs with --ca",
                 "the encryption certificate '%s' does not chain to a trusted root: %s; not "
                 "imported",
                 name, chain_reason (st));
  lc->usable = lc->problems->len == 0;
}

GPtrArray *
lookup_check (LookupTargets *t, CmLdapFound *found, gint64 at)
{
  GPtrArray *out = g_ptr_array_new_with_free_func ((GDestroyNotify)lookup_cert_free);

  for (guint j = 0; j < found->cas->len; j++)
    {
      g_autoptr (CmCert) ca = cm_cert_new_from_der (g_ptr_array_index (found->cas, j), NULL, NULL);
      for (guint i = 0; ca && i < t->targets->len; i++)
        {
          Target *tg = g_ptr_array_index (t->targets, i);
          cm_trust_add_intermediate (tg->trust, ca);
          if (tg->ca_trust)
            cm_trust_add_intermediate (tg->ca_trust, ca);
        }
    }
  for (guint i = 0; i < found->certs->len; i++)
    {
      GBytes *der = g_ptr_array_index (found->certs, i);
      LookupCert *lc = g_new0 (LookupCert, 1);
      g_autoptr (GError) bad = NULL;

      lc->problems = g_ptr_array_new_with_free_func ((GDestroyNotify)cm_problem_free);
      lc->sha256 = g_compute_checksum_for_bytes (G_CHECKSUM_SHA256, der);
      lc->cert = cm_cert_new_from_der (der, NULL, &bad);
      g_ptr_array_add (out, lc);
      if (lc->cert == NULL)
        {
          lc->role = "other";
          lc->chain = "not-a-certificate";
          add_problem (lc, "recipient-bad-cert", CM_SEVERITY_ERROR,
                       "Ask the directory admin to remove the damaged value",
                       "a userCertificate value for %s is not a certificate (%s): not imported",
                       found->address, bad->message);
          continue;
        }
      check_cert (t, lc, found->address, at);
    }
  return out;
}

/* ---- import ---- */

/* The nickname for @c in @db: the one its subject already has there, else its CN (or
 * subject), with " #N" when another subject holds that name. */
static char *
pick_nickname (CmInventory *have, CmCert *c)
{
  GPtrArray *certs = cm_inventory_get_certs (have);
  const char *cn = cm_cert_get_subject_cn (c);
  const char *base = cn ? cn : cm_cert_get_subject (c);
  g_autofree char *nick = g_strdup (base);

  for (guint i = 0; i < certs->len; i++)
    {
      CmCert *o = g_ptr_array_index (certs, i);
      const char *on = cm_nss_cert_nickname (o);
      if (on && strcmp (cm_cert_get_subject (o), cm_cert_get_subject (c)) == 0)
        return g_strdup (on);
    }
  for (int n = 2; n < 100; n++)
    {
      gboolean clash = FALSE;
      for (guint i = 0; i < certs->len && !clash; i++)
        clash = g_strcmp0 (cm_nss_cert_nickname (g_ptr_array_index (certs, i)), nick) == 0;
      if (!clash)
        break;
      g_free (nick);
      nick = g_strdup_printf ("%s #%d", base, n);
    }
  return g_steal_pointer (&nick);
}

static gboolean
store (PK11SlotInfo *slot, CmCert *c, const char *nick)
{
  GBytes *der = cm_cert_get_der (c);
  SECItem it = { siBuffer, (unsigned char *)g_bytes_get_data (der, NULL),
                 (unsigned int)g_bytes_get_size (der) };
  CERTCertificate *back;

  if (PK11_ImportDERCert (slot, &it, CK_INVALID_HANDLE, (char *)nick, PR_FALSE) != SECSuccess)
    return FALSE;
  /* it must read back from the database */
  back = PK11_FindCertFromDERCertItem (slot, &it, NULL);
  if (back)
    CERT_DestroyCertificate (back);
  return back != NULL;
}

static void
unstore (PK11SlotInfo *slot, CmCert *c)
{
  GBytes *der = cm_cert_get_der (c);
  SECItem it = { siBuffer, (unsigned char *)g_bytes_get_data (der, NULL),
                 (unsigned int)g_bytes_get_size (der) };
  CERTCertificate *nss = PK11_FindCertFromDERCertItem (slot, &it, NULL);

  if (nss)
    {
      SEC_DeletePermCertificate (nss);
      CERT_DestroyCertificate (nss);
    }
}

/* @lc's cert and the intermediates of its chain that @db lacks: all stored, or none. */
static gboolean
import_into (LookupTargets *t, Target *tg, CmNssDb *db, CmInventory *have, LookupCert *lc,
             gint64 at, GError **error)
{
  PK11SlotInfo *slot = cm_nss_db_get_slot (db);
  g_autoptr (GPtrArray) chain = NULL;
  g_autoptr (GPtrArray) added = g_ptr_array_new ();
  gboolean ok = TRUE;

  if (target_chain (tg, lc->cert, at, &chain) != CM_CHAIN_OK)
    chain = g_ptr_array_new ();
  /* leaf and intermediates; the anchor is trusted there already (or came with --ca) */
  for (guint i = 0; ok && i + 1 < MAX (chain->len, 2u); i++)
    {
      CmCert *c = chain->len ? g_ptr_array_index (chain, i) : lc->cert;
      g_autofree char *nick = NULL;
      if (cm_inventory_lookup (have, cm_cert_get_sha256 (c)))
        continue;
      nick = pick_nickname (have, c);
      ok = store (slot, c, nick);
      /* a failed store may still have left the object (a write that failed after the commit) */
      g_ptr_array_add (added, c);
      if (!ok)
        g_set_error (error, CM_ERROR, CM_ERROR_ENVIRONMENT,
                     "NSS could not store '%s' in %s (%s): check that cert9.db is writable; "
                     "nothing of it was kept",
                     cm_cert_get_subject (c), cm_nss_db_get_dir (db), cm_nss_error_text ());
    }
  if (!ok)
    for (guint i = added->len; i > 0; i--)
      unstore (slot, g_ptr_array_index (added, i - 1));
  return ok;
}

void
lookup_import (LookupTargets *t, const char *address, GPtrArray *certs, gint64 at)
{
  for (guint k = 0; k < certs->len; k++)
    ((LookupCert *)g_ptr_array_index (certs, k))->imported = TRUE;
  for (guint i = 0; i < t->targets->len; i++)
    {
      Target *tg = g_ptr_array_index (t->targets, i);
      g_autoptr (GError) error = NULL;
      g_autoptr (CmNssDb) db = cm_nss_db_open_sync (tg->loc->dir, CM_NSS_DB_DEFAULT, NULL, &error);
      g_autoptr (CmInventory) have = cm_inventory_new ();

      if (db)
        cm_nss_add_token_certs_sync (have, cm_nss_db_get_slot (db), cm_nss_db_get_dir (db), NULL,
                                     NULL);
      for (guint k = 0; k < certs->len; k++)
        {
          LookupCert *lc = g_ptr_array_index (certs, k);
          g_autoptr (GError) local = NULL;
          if (!lc->usable)
            {
              lc->imported = FALSE;
              continue;
            }
          if (db == NULL || !import_into (t, tg, db, have, lc, at, &local))
            {
              lc->imported = FALSE;
              add_problem (lc, "recipient-import-failed", CM_SEVERITY_ERROR,
                           "Check that the mail client's NSS database is writable by you",
                           "the certificate for %s was not imported: %s", address,
                           (local ? local : error)->message);
            }
        }
    }
}
