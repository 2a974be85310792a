/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* doctor-nss.c: `cacmail doctor`'s checks of each mail client's NSS database: the card module
 * registered exactly once, the picked certificates chaining to a root trusted there; and a
 * Thunderbird or Evolution from a Snap or Flatpak that cannot reach pcscd (facts.md 6). */
#include "doctor.h"
#include <cm-nssdb.h>
#include <stdio.h>

/* "--client evolution" or "--nssdb DIR": the databases an nss command should change. */
static char *
target_option (CmNssdbLocation *loc)
{
  if (loc->client == CM_NSSDB_CLIENT_EVOLUTION)
    return g_strdup ("--client evolution");
  return g_strdup_printf ("--nssdb %s", loc->dir);
}

static char *
client_label (CmNssdbLocation *loc)
{
  if (loc->client == CM_NSSDB_CLIENT_THUNDERBIRD)
    return g_strdup_printf ("Thunderbird profile %s", loc->profile ? loc->profile : loc->dir);
  return g_strdup (cm_nssdb_client_name (loc->client));
}

/* How many registered modules reach the card: OpenSC, and the p11-kit proxy when p11-kit loads
 * OpenSC. -1 when the module list cannot be read. */
static int
card_modules (CmNssDb *db)
{
  g_autoptr (GPtrArray) mods = cm_nssdb_list_modules (db, NULL);
  gboolean kit_has_opensc = cm_nssdb_p11kit_has_opensc (NULL);

  return mods ? (int)cm_nssdb_count_card_entries (mods, kit_has_opensc) : -1;
}

static void
check_modules (Doctor *d, CmNssdbLocation *loc, CmNssDb *db)
{
  g_autofree char *label = client_label (loc), *opt = target_option (loc);
  const char *client = cm_nssdb_client_name (loc->client);
  g_autofree char *hint = NULL;
  int n = db ? card_modules (db) : 0;

  if (n == 0)
    {
      hint = g_strdup_printf ("With %s closed, run cacmail nss register %s", client, opt);
      doctor_problem (d, "card-module-not-registered", CM_SEVERITY_ERROR, hint,
                      "the card module is not registered in the NSS database of %s (%s): %s "
                      "cannot see the card",
                      label, loc->dir, client);
    }
  else if (n > 1)
    {
      hint = g_strdup_printf ("With %s closed, run cacmail nss register %s (it keeps one "
                              "entry)",
                              client, opt);
      doctor_problem (d, "card-module-registered-twice", CM_SEVERITY_ERROR, hint,
                      "the card module is registered %d times in the NSS database of %s (%s): "
                      "%s shows the card twice and may pick the wrong copy",
                      n, label, loc->dir, client);
    }
}

/* The picked certificates that do not chain to a root trusted in @db: one problem per
 * database, naming each certificate. */
static void
check_chains (Doctor *d, CmNssdbLocation *loc, CmNssDb *db)
{
  g_autoptr (CmTrust) trust = cm_nssdb_trust_from_db (db, NULL);
  g_autoptr (GPtrArray) bad = g_ptr_array_new ();
  g_autofree char *label = client_label (loc), *opt = target_option (loc), *hint = NULL;
  const char *reason = NULL;
  CmProblem *p;

  for (guint i = 0; i < d->picks->len; i++)
    {
      CmPicks *pk = g_ptr_array_index (d->picks, i);
      CmCert *certs[]
        = { cm_picks_get_login (pk), cm_picks_get_signing (pk), cm_picks_get_encryption (pk) };
      for (gsize j = 0; j < G_N_ELEMENTS (certs); j++)
        {
          CmChainStatus st;
          if (certs[j] == NULL || g_ptr_array_find (bad, certs[j], NULL))
            continue;
          st = cm_trust_build_chain (trust, certs[j], d->at, NULL);
          if (st == CM_CHAIN_OK)
            continue;
          g_ptr_array_add (bad, certs[j]);
          reason = reason ? reason : cm_chain_status_to_string (st);
        }
    }
  if (bad->len == 0)
    return;
  hint = g_strdup_printf ("Install the DoD certificates there: cacmail nss trust %s "
                          "DOD-PKI-BUNDLE.p7b (the PKCS#7 bundle from DISA), or run cacmail setup",
                          opt);
  p = doctor_problem (d, "client-chain-untrusted", CM_SEVERITY_ERROR, hint,
                      "%u of the card's picked certificates do not chain to a root trusted in the "
                      "NSS database of %s (%s; first: %s): it cannot verify your signatures",
                      bad->len, label, loc->dir, reason);
  for (guint i = 0; p && i < bad->len; i++)
    cm_problem_add_cert (p, cm_cert_get_sha256 (g_ptr_array_index (bad, i)));
}

/* ---- sandboxed clients ---- */

/* TRUE when a Flatpak override or the app's own metadata for @app_id grants the pcsc socket. */
static gboolean
flatpak_has_pcsc (const char *app_id)
{
  g_autofree char *user = g_build_filename (g_get_user_data_dir (), "flatpak", NULL);
  const char *roots[] = { user, "/var/lib/flatpak" };

  for (gsize i = 0; i < G_N_ELEMENTS (roots); i++)
    {
      g_autofree char *override = g_build_filename (roots[i], "overrides", app_id, NULL);
      g_autofree char *meta
        = g_build_filename (roots[i], "app", app_id, "current", "active", "metadata", NULL);
      const char *files[] = { override, meta };
      for (gsize j = 0; j < G_N_ELEMENTS (files); j++)
        {
          g_autoptr (GKeyFile) kf = g_key_file_new ();
          g_auto (GStrv) sockets = NULL;
          if (!g_key_file_load_from_file (kf, files[j], G_KEY_FILE_NONE, NULL))
            continue;
          sockets = g_key_file_get_string_list (kf, "Context", "sockets", NULL, NULL);
          if (sockets && g_strv_contains ((const char *const *)sockets, "pcsc"))
            return TRUE;
        }
    }
  return FALSE;
}

/* TRUE when `snap connections SNAP` shows its pcscd plug connected to a slot. */
static gboolean
snap_has_pcscd (const char *snap)
{
  g_autofree char *out = NULL;
  g_auto (GStrv) lines = NULL;
  const char *argv[] = { "snap", "connections", snap, NULL };
  int status = 0;

  if (!g_spawn_sync (NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH | G_SPAWN_STDERR_TO_DEV_NULL,
                     NULL, NULL, &out, NULL, &status, NULL)
      || !g_spawn_check_wait_status (status, NULL))
    return FALSE;
  lines = g_strsplit (out, "\n", -1);
  for (char **it = lines; *it; it++)
    {
      /* Interface Plug Slot Notes: "pcscd thunderbird:pcscd :pcscd manual" */
      g_auto (GStrv) col = g_strsplit_set (g_strstrip (*it), " \t", -1);
      g_autoptr (GPtrArray) words = g_ptr_array_new ();
      for (char **w = col; *w; w++)
        if (**w)
          g_ptr_array_add (words, *w);
      if (words->len >= 3 && strcmp (g_ptr_array_index (words, 0), "pcscd") == 0
          && strcmp (g_ptr_array_index (words, 2), "-") != 0)
        return TRUE;
    }
  return FALSE;
}

static void
check_sandbox (Doctor *d, const char *client, const char *kind, const char *where, const char *app)
{
  g_autofree char *hint = NULL, *package = g_ascii_strdown (client, -1);
  gboolean flatpak = strcmp (kind, "Flatpak") == 0;

  if (flatpak ? flatpak_has_pcsc (app) : snap_has_pcscd (app))
    return;
  hint = flatpak ? g_strdup_printf ("Run flatpak override --user --socket=pcsc %s, or use "
                                    "Debian's package (apt install %s)",
                                    app, package)
                 : g_strdup_printf ("Run snap connect %s:pcscd, or use Debian's package (apt "
                                    "install %s)",
                                    app, package);
  doctor_problem (d, "sandboxed-client-no-pcscd", CM_SEVERITY_WARNING, hint,
                  "%s from the %s (%s) cannot reach pcscd: it will not see the card", client, kind,
                  where);
}

static void
check_sandboxes (Doctor *d, GPtrArray *locs)
{
  g_autofree char *evo
    = g_build_filename (g_get_home_dir (), ".var", "app", "org.gnome.Evolution", NULL);

  for (guint i = 0; i < locs->len; i++)
    {
      CmNssdbLocation *loc = g_ptr_array_index (locs, i);
      if (loc->sandbox == NULL)
        continue;
      check_sandbox (d, "Thunderbird", loc->sandbox, loc->dir,
                     strcmp (loc->sandbox, "Flatpak") == 0 ? "org.mozilla.Thunderbird"
                                                           : "thunderbird");
    }
  if (g_file_test (evo, G_FILE_TEST_IS_DIR))
    check_sandbox (d, "Evolution", "Flatpak", evo, "org.gnome.Evolution");
}

void
doctor_check_nss (Doctor *d)
{
  g_autoptr (GPtrArray) locs = cm_nssdb_find_locations ();
  g_autofree char *evolution = g_find_program_in_path ("evolution");

  for (guint i = 0; i < locs->len; i++)
    {
      CmNssdbLocation *loc = g_ptr_array_index (locs, i);
      g_autoptr (GError) error = NULL;
      g_autoptr (CmNssDb) db = NULL;
      g_autofree char *label = client_label (loc);

      if (!loc->exists)
        {
          /* Evolution is installed: `nss register` creates its database; a Thunderbird
           * profile gets one when Thunderbird first runs with it */
          if (loc->client == CM_NSSDB_CLIENT_EVOLUTION && evolution)
            check_modules (d, loc, NULL);
          continue;
        }
      db = cm_nss_db_open_sync (loc->dir, CM_NSS_DB_READ_ONLY, NULL, &error);
      if (db == NULL)
        {
          doctor_problem (d, "client-nssdb-unreadable", CM_SEVERITY_ERROR,
                          "Fix what the message says, then run cacmail doctor again", "%s",
                          error->message);
          continue;
        }
      check_modules (d, loc, db);
      check_chains (d, loc, db);
      doctor_checked (d, "%s: NSS database %s (%s)", label, loc->dir, loc->state);
    }
  check_sandboxes (d, locs);
}
