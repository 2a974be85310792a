/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cm-evo-state.c: what the Smart Card page shows and the card watcher checks, gathered in a
 * worker thread: the cards in the readers, Evolution's NSS database (its certs, registered
 * modules and recovered keys) and the mail identities' S/MIME settings judged against them.
 * Nothing here touches GTK. */
#include "cm-evo-module.h"
#include <nss.h>
#include <cert.h>
#include <pk11pub.h>
#include <secmod.h>

char *
cm_evo_nssdb_dir (void)
{
  /* Camel (camel_init) opens sql:$HOME/.pki/nssdb */
  return g_build_filename (g_get_home_dir (), ".pki", "nssdb", NULL);
}

static void
reader_free (CmEvoReader *r)
{
  g_free (r->name);
  g_free (r->error);
  g_free (r);
}

void
cm_evo_state_free (CmEvoState *st)
{
  if (st == NULL)
    return;
  g_clear_pointer (&st->readers, g_ptr_array_unref);
  g_clear_pointer (&st->inserted, g_ptr_array_unref);
  g_clear_pointer (&st->identities, g_ptr_array_unref);
  g_clear_pointer (&st->modules, g_ptr_array_unref);
  g_clear_pointer (&st->recovered, g_ptr_array_unref);
  g_clear_pointer (&st->problems, g_ptr_array_unref);
  g_clear_pointer (&st->locked, g_ptr_array_unref);
  g_clear_pointer (&st->reg, cm_evo_registry_free);
  g_clear_pointer (&st->inv, cm_inventory_free);
  g_clear_pointer (&st->directory, cm_evo_directory_free);
  g_free (st->card_module_loaded);
  g_free (st->chain_problem);
  g_free (st->nssdb);
  g_free (st);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (CmEvoState, cm_evo_state_free)

static gboolean
is_card_module (const char *library)
{
  g_autofree char *base = library ? g_path_get_basename (library) : NULL;

  if (base == NULL)
    return FALSE;
  if (strstr (base, "opensc-pkcs11"))
    return TRUE;
  return strstr (base, "p11-kit-proxy") && cm_nssdb_p11kit_has_opensc (NULL);
}

char *
cm_evo_card_module_loaded (void)
{
  SECMODListLock *lock;
  char *name = NULL;

  if (!NSS_IsInitialized () || (lock = SECMOD_GetDefaultModuleListLock ()) == NULL)
    return NULL;
  SECMOD_GetReadLock (lock);
  for (SECMODModuleList *l = SECMOD_GetDefaultModuleList (); l && !name; l = l->next)
    if (l->module->loaded && is_card_module (l->module->dllName))
      name = g_strdup (l->module->commonName);
  SECMOD_ReleaseReadLock (lock);
  return name;
}

static void
read_cards (CmEvoState *st, GCancellable *cancellable)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) infos = cm_pcsc_list_readers_sync (cancellable, &error);

  if (infos == NULL)
    {
      g_ptr_array_add (st->problems, g_strdup_printf ("Card readers: %s", error->message));
      return;
    }
  st->readers = g_ptr_array_new_with_free_func ((GDestroyNotify)reader_free);
  for (guint i = 0; i < infos->len; i++)
    {
      CmReaderInfo *info = g_ptr_array_index (infos, i);
      CmEvoReader *r = g_new0 (CmEvoReader, 1);
      g_autoptr (GError) local = NULL;

      r->name = g_strdup (info->name);
      r->present = info->card_present;
      g_ptr_array_add (st->readers, r);
      if (!r->present || g_cancellable_is_cancelled (cancellable))
        continue;
      if (cm_card_read_sync (st->inv, r->name, CM_READ_DEFAULT | CM_READ_NO_CACHE, NULL,
                             cancellable, &local))
        {
          GPtrArray *cards = cm_inventory_get_cards (st->inv);
          GPtrArray *certs;

          r->card = g_ptr_array_index (cards, cards->len - 1);
          certs = cm_card_get_certs (r->card);
          if (st->inserted == NULL)
            st->inserted = g_ptr_array_new_with_free_func (g_free);
          for (guint j = 0; j < certs->len; j++)
            g_ptr_array_add (st->inserted,
                             g_strdup (cm_cert_get_sha256 (g_ptr_array_index (certs, j))));
        }
      else
        r->error = g_strdup (local->message);
    }
}

/* The certificates of the cards NSS sees in this process, through core's one NSS reader
 * (each token one card, named by its serial number; nicknames "token:label" as Evolution
 * names them). No login: a token registered without the "friendly" flag is listed as locked. */
static void
add_card_certs (CmEvoState *st, GCancellable *cancellable)
{
  g_autoptr (GPtrArray) slots = cm_nss_list_card_tokens ();

  for (guint i = 0; i < slots->len && !g_cancellable_is_cancelled (cancellable); i++)
    {
      PK11SlotInfo *slot = g_ptr_array_index (slots, i);
      g_autoptr (GError) error = NULL;

      if (!PK11_IsFriendly (slot) && PK11_NeedLogin (slot) && !PK11_IsLoggedIn (slot, NULL))
        g_ptr_array_add (st->locked, g_strdup (PK11_GetTokenName (slot)));
      if (!cm_nss_add_token_certs_sync (st->inv, slot, st->nssdb, cancellable, &error))
        g_ptr_array_add (st->problems, g_strdup_printf ("Card '%s': %s", PK11_GetTokenName (slot),
                                                        error->message));
    }
}

/* Do the personas' valid email certificates chain to a root Evolution's database trusts? */
static void
check_chains (CmEvoState *st, CmNssDb *db)
{
  g_autoptr (CmTrust) trust = cm_nssdb_trust_from_db (db, NULL);
  GPtrArray *personas = cm_inventory_get_personas (st->inv);

  st->trust_anchors = cm_trust_count_anchors (trust);
  for (guint i = 0; i < personas->len; i++)
    {
      GPtrArray *certs = cm_persona_get_certs (g_ptr_array_index (personas, i));
      for (guint j = 0; j < certs->len; j++)
        {
          CmCert *c = g_ptr_array_index (certs, j);
          CmRole role = cm_cert_get_role (c);
          CmChainStatus status;

          if ((role != CM_ROLE_EMAIL_SIGNING && role != CM_ROLE_EMAIL_ENCRYPTION)
              || !cm_cert_is_valid_at (c, st->at))
            continue;
          st->chains_total++;
          if ((status = cm_trust_build_chain (trust, c, st->at, NULL)) == CM_CHAIN_OK)
            st->chains_ok++;
          else if (st->chain_problem == NULL)
            st->chain_problem = g_strdup_printf (
              "the %s certificate of %s does not chain to a trusted root (%s)",
              cm_evo_role_label (role),
              cm_cert_get_subject_cn (c) ? cm_cert_get_subject_cn (c) : cm_cert_get_subject (c),
              status == CM_CHAIN_NO_ISSUER        ? "an issuing CA is missing"
              : status == CM_CHAIN_UNTRUSTED_ROOT ? "its root is not trusted"
                                                  : cm_chain_status_to_string (status));
        }
    }
}

static void
read_nssdb (CmEvoState *st, GCancellable *cancellable)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (CmNssDb) db = NULL;

  st->card_module_loaded = cm_evo_card_module_loaded ();
  {
    g_autofree char *cert9 = g_build_filename (st->nssdb, "cert9.db", NULL);
    st->nssdb_exists = g_file_test (cert9, G_FILE_TEST_EXISTS);
  }
  /* the database's own token here; the cards' tokens below */
  db = cm_nss_db_open_sync (st->nssdb, CM_NSS_DB_READ_ONLY, cancellable, &error);
  if (db == NULL || !cm_nss_db_add_certs_sync (db, st->inv, cancellable, &error))
    {
      g_ptr_array_add (st->problems,
                       g_strdup_printf ("Evolution's certificate database: %s", error->message));
      return;
    }
  add_card_certs (st, cancellable);
  /* recovered escrow keys only decrypt: without the record, no setting can be judged */
  if (!cm_nssdb_mark_recovered_checked (st->inv, NULL, &error))
    {
      g_ptr_array_add (st->problems, g_strdup_printf ("Recovered keys: %s", error->message));
      g_clear_error (&error);
      st->recovered_unknown = TRUE;
    }
  if ((st->modules = cm_nssdb_list_modules (db, &error)) == NULL)
    {
      g_ptr_array_add (st->problems, g_strdup (error->message));
      g_clear_error (&error);
    }
  for (guint i = 0; st->modules && i < st->modules->len; i++)
    {
      CmNssdbModule *m = g_ptr_array_index (st->modules, i);
      if (m->kind == CM_NSSDB_MODULE_OPENSC
          || (m->kind == CM_NSSDB_MODULE_P11KIT_PROXY && cm_nssdb_p11kit_has_opensc (NULL)))
        st->card_module = TRUE;
    }
  if ((st->recovered = cm_nssdb_recovered_list (db, &error)) == NULL)
    g_ptr_array_add (st->problems, g_strdup_printf ("Recovered keys: %s", error->message));
  check_chains (st, db);
}

static void
read_identities (CmEvoState *st, GCancellable *cancellable)
{
  g_autoptr (GError) error = NULL;
  GPtrArray *settings;

  st->identities = g_ptr_array_new_with_free_func ((GDestroyNotify)cm_evo_identity_free);
  if ((st->reg = cm_evo_registry_new_sync (cancellable, &error)) == NULL)
    {
      g_ptr_array_add (st->problems, g_strdup (error->message));
      return;
    }
  {
    g_autoptr (GError) local = NULL;
    g_autoptr (JsonNode) backups = cm_evo_backups_load (&local);
    JsonArray *entries
      = backups ? json_object_get_array_member (json_node_get_object (backups), "entries") : NULL;
    st->undo_entries = backups ? (entries ? (gint)json_array_get_length (entries) : 0) : -1;
    if (backups == NULL)
      g_ptr_array_add (st->problems, g_strdup (local->message));
  }
  settings = cm_evo_registry_list_identities (st->reg);
  for (guint i = 0; i < settings->len && !st->recovered_unknown; i++)
    g_ptr_array_add (st->identities, cm_evo_identity_check (g_ptr_array_index (settings, i),
                                                            st->inv, st->inserted, st->at));
}

CmEvoState *
cm_evo_state_load_sync (gboolean with_cards, GCancellable *cancellable, GError **error)
{
  g_autoptr (CmEvoState) st = g_new0 (CmEvoState, 1);

  st->at = cm_time_now ();
  st->nssdb = cm_evo_nssdb_dir ();
  st->inv = cm_inventory_new ();
  st->problems = g_ptr_array_new_with_free_func (g_free);
  st->locked = g_ptr_array_new_with_free_func (g_free);
  st->directory = cm_evo_directory_read ();
  if (with_cards)
    read_cards (st, cancellable);
  if (g_cancellable_set_error_if_cancelled (cancellable, error))
    return NULL;
  read_nssdb (st, cancellable);
  if (g_cancellable_set_error_if_cancelled (cancellable, error))
    return NULL;
  read_identities (st, cancellable);
  if (g_cancellable_set_error_if_cancelled (cancellable, error))
    return NULL;
  return g_steal_pointer (&st);
}

/* ---- directory settings ---- */

CmEvoDirectory *
cm_evo_directory_read (void)
{
  CmEvoDirectory *dir = g_new0 (CmEvoDirectory, 1);
  g_autoptr (CmLdapConfig) cfg = cm_ldap_config_new ();
  g_autoptr (GError) error = NULL;

  dir->path = cm_ldap_config_default_path ();
  if (!cm_ldap_config_load_file (cfg, dir->path, FALSE, &error))
    {
      dir->error = g_strdup (error->message);
      return dir;
    }
  dir->uri = g_strdup (cm_ldap_config_get (cfg, "uri"));
  dir->base = g_strdup (cm_ldap_config_get (cfg, "base") ? cm_ldap_config_get (cfg, "base")
                                                         : cm_ldap_config_get (cfg, "entry-dn"));
  dir->bind = g_strdup (cm_ldap_config_get (cfg, "bind"));
  dir->ca_file = g_strdup (cm_ldap_config_get (cfg, "ca-file"));
  return dir;
}

void
cm_evo_directory_free (CmEvoDirectory *dir)
{
  if (dir == NULL)
    return;
  g_free (dir->path);
  g_free (dir->uri);
  g_free (dir->base);
  g_free (dir->bind);
  g_free (dir->ca_file);
  g_free (dir->error);
  g_free (dir);
}

gboolean
cm_evo_directory_is_set (const CmEvoDirectory *dir)
{
  return dir && dir->uri && *dir->uri && dir->base && *dir->base;
}

/* ---- descriptions ---- */

void
cm_evo_error_to_page_words (GError *error)
{
  /* the library's fix for an unverified server names the command line's option */
  static const char cli_fix[] = ": pass the CA that issued it with --ca-file";
  char *at;

  if (error == NULL || !g_error_matches (error, CM_LDAP_ERROR, CM_LDAP_ERROR_TLS)
      || (at = strstr (error->message, cli_fix)) == NULL)
    return;
  *at = '\0';
  {
    char *msg = g_strconcat (error->message,
                             ": install the DoD trust chain, or give the CA that issued the "
                             "server's certificate as Server CA file in Directory Settings (Edit, "
                             "Preferences, Smart Card)",
                             NULL);
    g_free (error->message);
    error->message = msg;
  }
}

const char *
cm_evo_reason_text (const char *code, const char *message)
{
  /* the library names the CLI; inside Evolution the page's button does it */
  if (g_strcmp0 (code, "picked-cert-not-in-nss") == 0)
    return "the right certificate is on the card but not visible to Evolution: Make Card "
           "Certificates Available (Smart Card page) loads it";
  return message;
}

const char *
cm_evo_persona_label (CmPersona *p)
{
  if (p == NULL)
    return "no persona";
  if (cm_persona_get_association (p))
    {
      /* the FASC-N's person/organization association, as a person would say it */
      static const char *const words[][2] = { { "executive-staff", "executive staff" },
                                              { "uniformed-service", "uniformed service" } };
      for (gsize i = 0; i < G_N_ELEMENTS (words); i++)
        if (strcmp (cm_persona_get_association (p), words[i][0]) == 0)
          return words[i][1];
      return cm_persona_get_association (p);
    }
  if (cm_persona_get_persona_id (p))
    return cm_persona_get_persona_id (p);
  /* certificates of a card that is not here (an earlier card, a retired or recovered key):
   * its key is a card UUID, no name for a person */
  return "earlier card";
}

static gboolean
has_string_nocase (GPtrArray *strings, const char *s)
{
  for (guint i = 0; i < strings->len; i++)
    if (g_ascii_strcasecmp (g_ptr_array_index (strings, i), s) == 0)
      return TRUE;
  return FALSE;
}

char *
cm_evo_card_summary (CmInventory *inv, CmCard *card)
{
  GPtrArray *certs = cm_card_get_certs (card);
  g_autoptr (GPtrArray) emails = g_ptr_array_new ();
  CmCert *first = cm_card_get_cert (card, CM_SLOT_9A);
  const char *cn;
  g_autofree char *list = NULL;

  for (guint i = 0; i < certs->len; i++)
    {
      const char *const *e = cm_cert_get_emails (g_ptr_array_index (certs, i));
      for (; e && *e; e++)
        if (!has_string_nocase (emails, *e))
          g_ptr_array_add (emails, (gpointer)*e);
    }
  g_ptr_array_add (emails, NULL);
  if (first == NULL && certs->len)
    first = g_ptr_array_index (certs, 0);
  cn = first ? cm_cert_get_subject_cn (first) : NULL;
  list = g_strjoinv (", ", (char **)emails->pdata);
  return g_strdup_printf (
    "%s (%s)%s%s", cn ? cn : cm_card_get_label (card),
    cm_evo_persona_label (first ? cm_inventory_persona_of (inv, first) : NULL), *list ? ": " : "",
    list);
}

char *
cm_evo_cert_validity (CmCert *cert, gint64 at)
{
  g_autofree char *until = cm_time_format_date (cm_cert_get_not_after (cert));
  g_autofree char *from = cm_time_format_date (cm_cert_get_not_before (cert));

  if (cm_cert_is_valid_at (cert, at))
    return g_strdup_printf ("valid until %s", until);
  if (cm_cert_get_not_after (cert) < at)
    return g_strdup_printf ("EXPIRED %s", until);
  return g_strdup_printf ("not valid before %s", from);
}

const char *
cm_evo_role_label (CmRole role)
{
  switch (role)
    {
    case CM_ROLE_PIV_AUTH: return "PIV authentication (login)";
    case CM_ROLE_CAC_ID: return "CAC identity";
    case CM_ROLE_EMAIL_SIGNING: return "email signing";
    case CM_ROLE_EMAIL_ENCRYPTION: return "email encryption";
    case CM_ROLE_CARD_AUTH: return "card authentication";
    case CM_ROLE_OTHER:
    default: return "other";
    }
}
