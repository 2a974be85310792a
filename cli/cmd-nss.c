/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cmd-nss.c: `cacmail nss list|register|unregister|trust`, the NSS databases of Evolution and
 * Thunderbird (plugins/nss-helper), and the NSS step of `cacmail demo`. */
#include "cli.h"
#include <cm-nssdb.h>
#include <stdarg.h>
#include <stdio.h>

static const char *
client_label (CmNssdbLocation *loc, char *buf, gsize n)
{
  if (loc->client == CM_NSSDB_CLIENT_THUNDERBIRD)
    g_snprintf (buf, n, "Thunderbird profile %s%s", loc->profile ? loc->profile : "(unlisted)",
                loc->is_default ? " (default)" : "");
  else if (loc->client == CM_NSSDB_CLIENT_EVOLUTION)
    g_snprintf (buf, n, "Evolution");
  else
    g_snprintf (buf, n, "no mail client");
  return buf;
}

static void
print_location (CmNssdbLocation *loc)
{
  char label[256];
  printf ("%s: sql:%s\n  client %s%s\n", client_label (loc, label, sizeof label), loc->dir,
          loc->state, loc->exists ? "" : "; no database yet");
  if (loc->note)
    printf ("  note: %s\n", loc->note);
}

/* --client: CM_NSSDB_CLIENT_OTHER means every client. */
static gboolean
client_wanted (CmNssdbClient only, CmNssdbLocation *loc)
{
  return only == CM_NSSDB_CLIENT_OTHER || loc->client == only;
}

/* The databases to act on: --nssdb DIR, else the existing ones of the client --client names
 * (every client's without it). Evolution's is created only for Evolution. */
static GPtrArray *
nss_targets (const char *nssdb, CmNssdbClient only, gboolean create_evolution, GError **error)
{
  g_autoptr (GPtrArray) all = NULL;
  g_autofree char *evolution = NULL;
  GPtrArray *out = g_ptr_array_new_with_free_func ((GDestroyNotify)cm_nssdb_location_free);

  if (nssdb)
    {
      g_ptr_array_add (out, cm_nssdb_locate (nssdb));
      return out;
    }
  all = cm_nssdb_find_locations ();
  evolution = g_find_program_in_path ("evolution");
  for (guint i = 0; i < all->len; i++)
    {
      CmNssdbLocation *loc = g_ptr_array_index (all, i);
      if (!client_wanted (only, loc))
        continue;
      if (loc->note)
        fprintf (stderr, "cacmail: note: %s\n", loc->note);
      if (!loc->exists && loc->client == CM_NSSDB_CLIENT_EVOLUTION && create_evolution && evolution
          && g_mkdir_with_parents (loc->dir, 0700) == 0)
        loc->exists = TRUE; /* Evolution would create the same database on its first start */
      if (loc->exists)
        g_ptr_array_add (out, g_ptr_array_steal_index (all, i--));
      else if (loc->client == CM_NSSDB_CLIENT_THUNDERBIRD)
        fprintf (stderr,
                 "cacmail: note: Thunderbird profile %s has no NSS database yet: start "
                 "Thunderbird with it once\n",
                 loc->profile ? loc->profile : loc->dir);
    }
  if (out->len == 0)
    {
      g_set_error (error, CM_ERROR, CM_ERROR_NOT_FOUND,
                   "no NSS database of %s found under %s: start the mail client once, or name a "
                   "database with --nssdb DIR",
                   only == CM_NSSDB_CLIENT_OTHER ? "Evolution or Thunderbird"
                                                 : cm_nssdb_client_name (only),
                   g_get_home_dir ());
      g_clear_pointer (&out, g_ptr_array_unref);
    }
  return out;
}

GPtrArray *
cli_nss_targets (const char *nssdb, gboolean create_evolution, GError **error)
{
  return nss_targets (nssdb, CM_NSSDB_CLIENT_OTHER, create_evolution, error);
}

/* Refuse before changing anything when one of @targets' clients forbids @change now. */
static gboolean
check_all (GPtrArray *targets, CmNssdbChange change, GError **error)
{
  for (guint i = 0; i < targets->len; i++)
    if (!cm_nssdb_location_check (g_ptr_array_index (targets, i), change, error))
      return FALSE;
  return TRUE;
}

static const char *
module_kind (CmNssdbModuleKind kind)
{
  switch (kind)
    {
    case CM_NSSDB_MODULE_OPENSC: return "opensc";
    case CM_NSSDB_MODULE_P11KIT_PROXY: return "p11-kit-proxy";
    default: return "other";
    }
}

/* A warning: a line of text, or a member of the database's "warnings" (@jb). */
static void warn (JsonBuilder *jb, GPtrArray *warnings, const char *fmt, ...) G_GNUC_PRINTF (3, 4);
static void
warn (JsonBuilder *jb, GPtrArray *warnings, const char *fmt, ...)
{
  va_list ap;
  char *text;

  va_start (ap, fmt);
  text = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  if (jb)
    g_ptr_array_add (warnings, text);
  else
    {
      printf ("  warning: %s\n", text);
      g_free (text);
    }
}

/* The registered modules (text, or the "modules" member of @jb). */
static void
list_modules (CmNssDb *db, JsonBuilder *jb, GPtrArray *warnings)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) mods = cm_nssdb_list_modules (db, &error);
  gboolean opensc = FALSE, proxy = FALSE;

  if (mods == NULL)
    {
      if (!jb)
        printf ("  modules: unreadable (%s)\n", error->message);
      else
        warn (jb, warnings, "modules unreadable (%s)", error->message);
      return;
    }
  if (jb)
    {
      json_builder_set_member_name (jb, "modules");
      json_builder_begin_array (jb);
    }
  else
    printf ("  modules:%s\n",
            mods->len ? "" : " none (no card reachable: run cacmail nss register)");
  for (guint i = 0; i < mods->len; i++)
    {
      CmNssdbModule *m = g_ptr_array_index (mods, i);
      opensc |= m->kind == CM_NSSDB_MODULE_OPENSC;
      proxy |= m->kind == CM_NSSDB_MODULE_P11KIT_PROXY;
      if (jb)
        {
          json_builder_begin_object (jb);
          cm_json_add_string_or_null (jb, "name", m->name);
          cm_json_add_string_or_null (jb, "library", m->library);
          cm_json_add_string_or_null (jb, "kind", module_kind (m->kind));
          json_builder_set_member_name (jb, "library_exists");
          json_builder_add_boolean_value (jb, m->library_exists);
          json_builder_set_member_name (jb, "friendly");
          json_builder_add_boolean_value (jb, m->friendly);
          json_builder_end_object (jb);
        }
      else
        printf ("    \"%s\" %s%s%s\n", m->name, m->library,
                m->kind == CM_NSSDB_MODULE_OPENSC         ? " (OpenSC: the card)"
                : m->kind == CM_NSSDB_MODULE_P11KIT_PROXY ? " (p11-kit proxy)"
                                                          : "",
                m->library_exists ? "" : " MISSING: reinstall it or run cacmail nss unregister");
    }
  if (jb)
    json_builder_end_array (jb);
  for (guint i = 0; i < mods->len; i++)
    {
      CmNssdbModule *m = g_ptr_array_index (mods, i);
      if (m->kind != CM_NSSDB_MODULE_OTHER && !m->friendly)
        warn (jb, warnings,
              "\"%s\" makes the mail clients ask for the PIN just to list the card's "
              "certificates; fix: cacmail nss register (it marks the entry's slots friendly)",
              m->name);
    }
  if (opensc && proxy && cm_nssdb_p11kit_has_opensc (NULL))
    warn (jb, warnings,
          "OpenSC and the p11-kit proxy (which loads OpenSC) are both registered, so the card "
          "shows twice; fix: cacmail nss register (it keeps one of them)");
}

/* Card certs with the names mail clients use, and nicknames two different certs share (text,
 * or the "card_certs" member of @jb). */
static void
list_token_certs (CmNssDb *db, gint64 now, JsonBuilder *jb, GPtrArray *warnings)
{
  g_autoptr (CmInventory) inv = cm_inventory_new ();
  g_autoptr (GError) error = NULL;
  g_autoptr (GHashTable) by_nick = g_hash_table_new (g_str_hash, g_str_equal);
  GPtrArray *certs;
  GPtrArray *problems = cm_nss_db_get_module_problems (db);
  guint shown = 0, dup = 0;
  const char *first_dup = NULL;

  for (guint i = 0; i < problems->len; i++)
    warn (jb, warnings, "%s", (char *)g_ptr_array_index (problems, i));
  if (!cm_nss_db_add_certs_sync (db, inv, NULL, &error))
    {
      if (!jb)
        printf ("  certificates: unreadable (%s)\n", error->message);
      else
        warn (jb, warnings, "certificates unreadable (%s)", error->message);
      return;
    }
  if (jb)
    {
      json_builder_set_member_name (jb, "card_certs");
      json_builder_begin_array (jb);
    }
  certs = cm_inventory_get_certs (inv);
  for (guint i = 0; i < certs->len; i++)
    {
      CmCert *c = g_ptr_array_index (certs, i);
      GPtrArray *srcs = cm_cert_get_sources (c);
      g_autofree char *key = cm_nss_cert_dbkey (c);
      g_autofree char *until = cm_time_format_date (cm_cert_get_not_after (c));
      gboolean valid = cm_cert_is_valid_at (c, now);
      gboolean recovered = cm_nssdb_is_recovered (cm_cert_get_sha256 (c));

      for (guint j = 0; j < srcs->len; j++)
        {
          CmSource *s = g_ptr_array_index (srcs, j);
          CmCert *other;
          /* a card's certs: not the database's own, not a root list's CAs */
          if (s->kind != CM_SOURCE_NSS || s->card == NULL || cm_cert_is_ca (c))
            continue;
          if (jb)
            {
              json_builder_begin_object (jb);
              cm_json_add_string_or_null (jb, "sha256", cm_cert_get_sha256 (c));
              cm_json_add_string_or_null (jb, "nickname", s->nickname);
              cm_json_add_string_or_null (jb, "token", s->token);
              cm_json_add_string_or_null (jb, "role", cm_role_to_string (cm_cert_get_role (c)));
              cm_json_add_time (jb, "not_after", cm_cert_get_not_after (c));
              json_builder_set_member_name (jb, "valid_now");
              json_builder_add_boolean_value (jb, valid);
              json_builder_set_member_name (jb, "decrypt_only");
              json_builder_add_boolean_value (jb, recovered);
              cm_json_add_string_or_null (jb, "dbkey", key);
              json_builder_end_object (jb);
            }
          else
            {
              if (shown == 0)
                printf ("  card certificates (nickname, role, dbKey):\n");
              printf ("    %s\n      %s, %s %s%s, dbKey %s\n", s->nickname,
                      cm_role_to_string (cm_cert_get_role (c)),
                      valid ? "valid until" : "NOT VALID NOW, until", until,
                      recovered ? ", decrypt only" : "", key);
            }
          shown++;
          other = g_hash_table_lookup (by_nick, s->nickname);
          if (other && other != c && dup++ == 0)
            first_dup = s->nickname;
          g_hash_table_insert (by_nick, s->nickname, c);
        }
    }
  if (jb)
    json_builder_end_array (jb);
  else if (shown == 0)
    printf ("  card certificates: none (insert the card; is its module registered?)\n");
  if (dup)
    warn (jb, warnings,
          "two inserted cards give %u certificates the same nickname, e.g. \"%s\" (OpenSC names "
          "a token after the first cert's CN): a mail client may pick the wrong card; keep one "
          "card inserted while you set up S/MIME, or pick by dbKey",
          dup, first_dup);
}

/* The recovered keys recorded for @db (text, or the "recovered_keys" member of @jb). */
static void
list_recovered (CmNssDb *db, gint64 now, JsonBuilder *jb, GPtrArray *warnings)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) rec = cm_nssdb_recovered_list (db, &error);

  if (rec == NULL)
    {
      if (!jb)
        printf ("  recovered keys: unreadable (%s)\n", error->message);
      else
        warn (jb, warnings, "recovered keys unreadable (%s)", error->message);
      return;
    }
  if (jb)
    {
      json_builder_set_member_name (jb, "recovered_keys");
      json_builder_begin_array (jb);
    }
  else if (rec->len)
    printf ("  recovered keys (decrypt only, most recent Not After first):\n");
  for (guint i = 0; i < rec->len; i++)
    {
      CmNssdbRecovered *r = g_ptr_array_index (rec, i);
      g_autofree char *from = cm_time_format_date (r->not_before);
      g_autofree char *to = cm_time_format_date (r->not_after);

      if (jb)
        {
          json_builder_begin_object (jb);
          cm_json_add_string_or_null (jb, "sha256", r->sha256);
          cm_json_add_string_or_null (jb, "nickname", r->nickname);
          cm_json_add_string_or_null (jb, "subject", r->subject);
          cm_json_add_time (jb, "not_before", r->not_before);
          cm_json_add_time (jb, "not_after", r->not_after);
          json_builder_set_member_name (jb, "expired");
          json_builder_add_boolean_value (jb, r->not_after < now);
          json_builder_set_member_name (jb, "present");
          json_builder_add_boolean_value (jb, r->present);
          json_builder_end_object (jb);
        }
      else
        printf ("    %s\n      %s; valid %s .. %s%s%s\n", r->nickname, r->subject, from, to,
                r->not_after < now ? " (expired)" : "",
                r->present ? "" : "; MISSING from the database: import the file again");
    }
  if (jb)
    json_builder_end_array (jb);
}

static const char *
client_code (CmNssdbClient client)
{
  switch (client)
    {
    case CM_NSSDB_CLIENT_EVOLUTION: return "evolution";
    case CM_NSSDB_CLIENT_THUNDERBIRD: return "thunderbird";
    default: return "other";
    }
}

/* One database of `nss list --json`: where, whose, and what list_*() found. */
static void
json_location (JsonBuilder *jb, CmNssdbLocation *loc, CmNssDb *db, const char *error, gint64 now)
{
  g_autoptr (GPtrArray) warnings = g_ptr_array_new_with_free_func (g_free);

  json_builder_begin_object (jb);
  cm_json_add_string_or_null (jb, "dir", loc->dir);
  cm_json_add_string_or_null (jb, "client", client_code (loc->client));
  cm_json_add_string_or_null (jb, "profile", loc->profile);
  json_builder_set_member_name (jb, "default");
  json_builder_add_boolean_value (jb, loc->is_default);
  json_builder_set_member_name (jb, "exists");
  json_builder_add_boolean_value (jb, loc->exists);
  json_builder_set_member_name (jb, "client_pid");
  if (loc->pid > 0)
    json_builder_add_int_value (jb, loc->pid);
  else
    json_builder_add_null_value (jb);
  cm_json_add_string_or_null (jb, "state", loc->state);
  cm_json_add_string_or_null (jb, "error", error);
  if (loc->note)
    g_ptr_array_add (warnings, g_strdup (loc->note));
  if (db)
    {
      list_modules (db, jb, warnings);
      list_token_certs (db, now, jb, warnings);
      list_recovered (db, now, jb, warnings);
    }
  json_builder_set_member_name (jb, "warnings");
  json_builder_begin_array (jb);
  for (guint i = 0; i < warnings->len; i++)
    json_builder_add_string_value (jb, g_ptr_array_index (warnings, i));
  json_builder_end_array (jb);
  json_builder_end_object (jb);
}

static int
nss_list (const char *nssdb, CmNssdbClient only, gboolean json)
{
  g_autoptr (GPtrArray) locs = NULL;
  g_autoptr (JsonBuilder) jb = json ? json_builder_new () : NULL;
  gint64 now = cm_time_now ();

  if (nssdb)
    {
      locs = g_ptr_array_new_with_free_func ((GDestroyNotify)cm_nssdb_location_free);
      g_ptr_array_add (locs, cm_nssdb_locate (nssdb));
    }
  else
    locs = cm_nssdb_find_locations ();
  for (guint i = 0; i < locs->len; i++)
    if (!client_wanted (only, g_ptr_array_index (locs, i)))
      g_ptr_array_remove_index (locs, i--);
  if (jb)
    {
      json_builder_begin_object (jb);
      json_builder_set_member_name (jb, "databases");
      json_builder_begin_array (jb);
    }
  for (guint i = 0; i < locs->len; i++)
    {
      CmNssdbLocation *loc = g_ptr_array_index (locs, i);
      g_autoptr (GError) error = NULL;
      g_autoptr (CmNssDb) db = NULL;

      if (!jb)
        print_location (loc);
      if (loc->exists)
        db = cm_nss_db_open_sync (loc->dir, CM_NSS_DB_READ_ONLY | CM_NSS_DB_LOAD_MODULES, NULL,
                                  &error);
      if (jb)
        json_location (jb, loc, db, error ? error->message : NULL, now);
      else if (error)
        printf ("  error: %s\n", error->message);
      else if (db)
        {
          list_modules (db, NULL, NULL);
          list_token_certs (db, now, NULL, NULL);
          list_recovered (db, now, NULL, NULL);
        }
    }
  if (jb)
    {
      g_autoptr (JsonNode) root = NULL;
      json_builder_end_array (jb);
      json_builder_end_object (jb);
      root = json_builder_get_root (jb);
      cli_print_json (root);
    }
  return CLI_EXIT_OK;
}

static int
nss_register (const char *nssdb, CmNssdbClient only, const char *module, gboolean unregister)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) targets = NULL;
  CmNssdbModuleKind kind = CM_NSSDB_MODULE_OTHER;

  if (module && strcmp (module, "opensc") == 0)
    kind = CM_NSSDB_MODULE_OPENSC;
  else if (module && strcmp (module, "p11-kit") == 0)
    kind = CM_NSSDB_MODULE_P11KIT_PROXY;
  else if (module && strcmp (module, "auto") != 0)
    return cli_usage ("--module is auto, opensc or p11-kit, not '%s'", module);
  if ((targets = nss_targets (nssdb, only, !unregister, &error)) == NULL
      || !check_all (targets, CM_NSSDB_CHANGE_MODULES, &error))
    return cli_fail (error);
  for (guint i = 0; i < targets->len; i++)
    {
      CmNssdbLocation *loc = g_ptr_array_index (targets, i);
      g_autoptr (CmNssDb) db = cm_nss_db_open_sync (loc->dir, CM_NSS_DB_DEFAULT, NULL, &error);
      g_autofree char *report = NULL;
      char label[256];

      if (db == NULL
          || !(unregister ? cm_nssdb_unregister_card_sync (db, &report, NULL, &error)
                          : cm_nssdb_register_card_sync (db, kind, &report, NULL, &error)))
        return cli_fail (error);
      printf ("%s (sql:%s): %s\n", client_label (loc, label, sizeof label), loc->dir, report);
    }
  return CLI_EXIT_OK;
}

/* The chain status of every card certificate reachable through @db. */
static void
print_chains (CmNssDb *db, const char *bundle, gint64 now)
{
  g_autoptr (CmTrust) trust = cm_nssdb_trust_from_db (db, bundle);
  g_autoptr (CmInventory) inv = cm_inventory_new ();
  GPtrArray *certs;
  guint n = 0;

  if (!cm_nss_db_add_certs_sync (db, inv, NULL, NULL))
    return;
  certs = cm_inventory_get_certs (inv);
  for (guint i = 0; i < certs->len; i++)
    {
      CmCert *c = g_ptr_array_index (certs, i);
      const char *nick = NULL;
      CmChainStatus st;
      GPtrArray *srcs = cm_cert_get_sources (c);

      for (guint j = 0; j < srcs->len && !nick; j++)
        {
          CmSource *s = g_ptr_array_index (srcs, j);
          if (s->kind == CM_SOURCE_NSS && s->card)
            nick = s->nickname;
        }
      if (nick == NULL || cm_cert_is_ca (c))
        continue;
      if (n++ == 0)
        printf ("  card certificate chains:\n");
      st = cm_trust_build_chain (trust, c, now, NULL);
      printf ("    %-9s %s%s\n", cm_chain_status_to_string (st), nick,
              st == CM_CHAIN_NO_ISSUER ? " (fix: add the issuing CA: cacmail nss trust the DoD "
                                         "PKI bundle)"
              : st == CM_CHAIN_UNTRUSTED_ROOT ? " (fix: trust its root with cacmail nss trust)"
                                              : "");
    }
  if (n == 0)
    printf ("  card certificate chains: no card certificate found (insert the card; "
            "cacmail nss register)\n");
}

/* Open @loc's database and import @cas into it (the bundle too when @bundle is set). A client
 * running on the database may hold a read lock on cert9.db for a moment (SQLite then turns
 * writers away), so a failure to open or write is retried for about 3 s: trust changes are safe
 * live (docs/nss.md). NULL with @error when it still fails: CM_ERROR_UNSAFE naming the client
 * when one runs on it (then closing it is the fix), else NSS's own error. Caller frees the
 * database and unrefs *@items. */
static CmNssDb *
trust_into (CmNssdbLocation *loc, GPtrArray *cas, const char *bundle, GPtrArray **items,
            GError **error)
{
  gint64 deadline = g_get_monotonic_time () + 3 * G_USEC_PER_SEC;

  for (;;)
    {
      g_autoptr (GError) local = NULL;
      g_autoptr (CmNssDb) db = cm_nss_db_open_sync (loc->dir, CM_NSS_DB_LOAD_MODULES, NULL, &local);
      const char *client = cm_nssdb_client_name (loc->client);

      if (db && cm_nssdb_trust_import_sync (db, cas, bundle, items, NULL, &local))
        return g_steal_pointer (&db);
      if (!g_error_matches (local, CM_ERROR, CM_ERROR_ENVIRONMENT)
          && !g_error_matches (local, CM_ERROR, CM_ERROR_FAILED))
        {
          g_propagate_error (error, g_steal_pointer (&local));
          return NULL;
        }
      if (g_get_monotonic_time () < deadline)
        {
          g_usleep (200 * 1000);
          continue;
        }
      if (loc->pid <= 0)
        g_propagate_error (error, g_steal_pointer (&local));
      else
        g_set_error (error, CM_ERROR, CM_ERROR_UNSAFE,
                     "NSS cannot write to the database in %s while %s (PID %d) keeps it locked: "
                     "close %s, then run cacmail nss trust again",
                     loc->dir, client, loc->pid, client);
      return NULL;
    }
}

static int
nss_trust (const char *nssdb, CmNssdbClient only, const char *bundle_opt, char **files)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) targets = NULL, cas = NULL;
  g_autofree char *bundle = bundle_opt ? g_strdup (bundle_opt) : cm_nssdb_default_bundle_path ();
  gint64 now = cm_time_now ();

  if (files == NULL || files[0] == NULL)
    return cli_usage ("nss trust needs at least one FILE (PEM, DER or PKCS#7 CA certificates)");
  if ((cas = cm_nssdb_read_ca_files (files, &error)) == NULL
      || (targets = nss_targets (nssdb, only, TRUE, &error)) == NULL
      || !check_all (targets, CM_NSSDB_CHANGE_OBJECTS, &error))
    return cli_fail (error);
  for (guint i = 0; i < targets->len; i++)
    {
      CmNssdbLocation *loc = g_ptr_array_index (targets, i);
      g_autoptr (GPtrArray) items = NULL;
      g_autoptr (CmNssDb) db = trust_into (loc, cas, i == 0 ? bundle : NULL, &items, &error);
      guint added = 0, roots = 0;
      char label[256];

      if (db == NULL)
        return cli_fail (error);
      for (guint j = 0; j < items->len; j++)
        {
          CmNssdbTrustItem *it = g_ptr_array_index (items, j);
          added += it->added;
          roots += it->root;
        }
      printf ("%s (sql:%s): %u CA certificates (%u roots trusted C,C,; %u intermediates), %u "
              "new\n",
              client_label (loc, label, sizeof label), loc->dir, items->len, roots,
              items->len - roots, added);
      print_chains (db, bundle, now);
    }
  printf ("CA bundle for LDAP: %s\n", bundle);
  return CLI_EXIT_OK;
}

int
cmd_nss (int argc, char **argv)
{
  g_autofree char *nssdb = NULL, *module = NULL, *bundle = NULL, *client = NULL;
  g_auto (GStrv) rest = NULL;
  gboolean json = FALSE;
  CmNssdbClient only = CM_NSSDB_CLIENT_OTHER;
  GOptionEntry entries[] = {
    { "nssdb", 0, 0, G_OPTION_ARG_FILENAME, &nssdb,
      "The NSS database folder (default: Evolution's and every Thunderbird profile's)", "DIR" },
    { "client", 0, 0, G_OPTION_ARG_STRING, &client,
      "Only the databases of this mail client: thunderbird or evolution", "CLIENT" },
    { "module", 0, 0, G_OPTION_ARG_STRING, &module, "register: auto (default), opensc or p11-kit",
      "KIND" },
    { "bundle", 0, 0, G_OPTION_ARG_FILENAME, &bundle,
      "trust: the PEM bundle to write (default $XDG_DATA_HOME/cacmail/ca-bundle.pem)", "FILE" },
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, "list: print JSON (docs/json.md)", NULL },
    { G_OPTION_REMAINING, 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &rest, NULL, NULL },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx
    = g_option_context_new ("list|register|unregister|trust [FILE...] - the mail clients' NSS "
                            "databases");
  g_autoptr (GError) error = NULL;
  const char *sub;

  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!g_option_context_parse (ctx, &argc, &argv, &error))
    return cli_usage ("%s", error->message);
  if (rest == NULL || rest[0] == NULL)
    return cli_usage ("nss needs a subcommand: list, register, unregister or trust");
  sub = rest[0];
  if (client && strcmp (client, "thunderbird") == 0)
    only = CM_NSSDB_CLIENT_THUNDERBIRD;
  else if (client && strcmp (client, "evolution") == 0)
    only = CM_NSSDB_CLIENT_EVOLUTION;
  else if (client)
    return cli_usage ("--client is thunderbird or evolution, not '%s'", client);
  if (client && nssdb)
    return cli_usage ("--client and --nssdb both choose the databases: give one of them");
  if (strcmp (sub, "trust") != 0 && rest[1])
    return cli_usage ("nss %s takes no arguments ('%s')", sub, rest[1]);
  if (json && strcmp (sub, "list") != 0)
    return cli_usage ("--json is for nss list only");
  if (strcmp (sub, "list") == 0)
    return nss_list (nssdb, only, json);
  if (strcmp (sub, "register") == 0)
    return nss_register (nssdb, only, module, FALSE);
  if (strcmp (sub, "unregister") == 0)
    return nss_register (nssdb, only, NULL, TRUE);
  if (strcmp (sub, "trust") == 0)
    return nss_trust (nssdb, only, bundle, rest + 1);
  return cli_usage ("unknown nss subcommand '%s' (list, register, unregister, trust)", sub);
}

int
cli_demo_nss_step (const char *pki_dir)
{
  g_autofree char *dir = g_build_filename (pki_dir, "nssdb", NULL);
  g_autofree char *state = g_build_filename (pki_dir, "state", NULL);
  g_autofree char *p12
    = g_build_filename (pki_dir, "escrow", "contractor-encryption-old-3des.p12", NULL);
  g_autofree char *root = g_build_filename (pki_dir, "ca", "root.crt", NULL);
  g_autofree char *report = NULL;
  char *ca_files[] = { root, NULL };
  g_autoptr (GError) error = NULL;
  g_autoptr (CmNssDb) db = NULL;
  g_autoptr (GPtrArray) cas = NULL, items = NULL, keys = NULL;
  guint added = 0;

  /* everything stays in the sandbox: database, recovered-key record and CA bundle */
  g_setenv ("CACMAIL_STATE_DIR", state, TRUE);
  printf ("NSS: a sandbox database sql:%s (as Evolution's or a Thunderbird profile's)\n", dir);
  if (g_mkdir_with_parents (dir, 0700) != 0
      || (db = cm_nss_db_open_sync (dir, CM_NSS_DB_DEFAULT, NULL, &error)) == NULL
      || !cm_nssdb_register_card_sync (db, CM_NSSDB_MODULE_OTHER, &report, NULL, &error))
    return cli_fail (error);
  printf ("  card module: %s\n", report);
  if ((cas = cm_nssdb_read_ca_files (ca_files, &error)) == NULL
      || !cm_nssdb_trust_import_sync (db, cas, NULL, &items, NULL, &error))
    return cli_fail (error);
  printf ("  trust: the test root CA, as C,C, (TLS and email)\n");
  if (!cm_nssdb_import_p12_sync (db, p12, "escrow-pass", &keys, &added, NULL, &error))
    return cli_fail (error);
  printf ("  recovered key from %s (3DES, as old escrow files are): %u added\n", p12, added);
  list_recovered (db, cm_time_now (), NULL, NULL);
  printf ("  A recovered key decrypts old mail only: selection never signs or encrypts with it.\n");
  return CLI_EXIT_OK;
}
