/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* setup-nss.c: steps 1-3 of `cacmail setup`, the mail clients' NSS databases: find them, make
 * the card's certificates available (the card module), install the DoD chain of the bundle. */
#include "setup.h"
#include <stdio.h>

/* ---- 1. the mail clients and their databases ----------------------------------------------- */

SetupStatus
setup_step_clients (Setup *s)
{
  g_autoptr (GPtrArray) all = cm_nssdb_find_locations ();
  g_autofree char *evolution = g_find_program_in_path ("evolution");
  gboolean created = FALSE;
  char label[256];

  s->targets = g_ptr_array_new_with_free_func ((GDestroyNotify)cm_nssdb_location_free);
  for (guint i = 0; i < all->len; i++)
    {
      CmNssdbLocation *loc = g_ptr_array_index (all, i);

      if (!loc->exists && loc->client == CM_NSSDB_CLIENT_EVOLUTION && evolution)
        {
          printf ("  Evolution: sql:%s will be created (Evolution makes the same on its first "
                  "start)\n",
                  loc->dir);
          if (!setup_confirm (s, "Create Evolution's NSS database folder?"))
            continue;
          if (g_mkdir_with_parents (loc->dir, 0700) == 0)
            loc->exists = created = TRUE;
        }
      if (!loc->exists)
        {
          if (loc->client == CM_NSSDB_CLIENT_THUNDERBIRD)
            printf ("  %s: no NSS database yet: start Thunderbird with it once\n",
                    setup_client_label (loc, label, sizeof label));
          continue;
        }
      printf ("  %s: sql:%s (%s)\n", setup_client_label (loc, label, sizeof label), loc->dir,
              loc->state);
      if (loc->note)
        printf ("    note: %s\n", loc->note);
      g_ptr_array_add (s->targets, g_ptr_array_steal_index (all, i--));
    }
  if (s->targets->len == 0)
    return setup_not_done (s, CLI_EXIT_ENVIRONMENT,
                           "no NSS database of Evolution or Thunderbird under %s: start the mail "
                           "client once, then run cacmail setup again",
                           g_get_home_dir ());
  return created ? SETUP_DONE : SETUP_ALREADY;
}

/* ---- 2. the card's certificates: the card module ------------------------------------------ */

/* TRUE when @db already reaches the card through a friendly OpenSC or p11-kit proxy entry. */
static gboolean
has_card_module (CmNssDb *db, GError **error)
{
  g_autoptr (GPtrArray) mods = cm_nssdb_list_modules (db, error);

  for (guint i = 0; mods && i < mods->len; i++)
    {
      CmNssdbModule *m = g_ptr_array_index (mods, i);
      if (m->kind != CM_NSSDB_MODULE_OTHER && m->friendly && m->library_exists)
        return TRUE;
    }
  return FALSE;
}

static gboolean
register_one (Setup *s, CmNssdbLocation *loc, gboolean *changed)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (CmNssDb) db = cm_nss_db_open_sync (loc->dir, CM_NSS_DB_DEFAULT, NULL, &error);
  g_autofree char *report = NULL;
  g_autofree char *question = NULL;
  char label[256];

  setup_client_label (loc, label, sizeof label);
  if (db == NULL)
    return setup_not_done (s, cli_fail (error), "%s: fix the database above", label), FALSE;
  if (has_card_module (db, &error))
    {
      printf ("  %s: the card module is registered\n", label);
      return TRUE;
    }
  if (error)
    return setup_not_done (s, CLI_EXIT_ENVIRONMENT, "%s: %s", label, error->message), FALSE;
  printf ("  %s: will register the card module (%s) in sql:%s\n", label,
          cm_nssdb_p11kit_has_opensc (NULL) ? "the p11-kit proxy, which loads OpenSC" : "OpenSC",
          loc->dir);
  if (!cm_nssdb_location_check (loc, CM_NSSDB_CHANGE_MODULES, &error))
    return setup_not_done (s, CLI_EXIT_REFUSED, "%s", error->message), FALSE;
  question = g_strdup_printf ("Register the card module for %s?", label);
  if (!setup_confirm (s, question))
    return setup_not_done (s, CLI_EXIT_FAILED, "%s: not registered", label), FALSE;
  if (!cm_nssdb_register_card_sync (db, CM_NSSDB_MODULE_OTHER, &report, NULL, &error))
    return setup_not_done (s, cli_fail (error), "%s: the card module was not registered", label),
           FALSE;
  printf ("  %s: %s\n", label, report);
  *changed = TRUE;
  return TRUE;
}

SetupStatus
setup_step_module (Setup *s)
{
  gboolean changed = FALSE, all = TRUE;

  for (guint i = 0; i < s->targets->len; i++)
    all &= register_one (s, g_ptr_array_index (s->targets, i), &changed);
  if (!all)
    return SETUP_NOT_DONE;
  return changed ? SETUP_DONE : SETUP_ALREADY;
}

/* ---- 3. the DoD chain ------------------------------------------------------------------- */

static void
print_analysis (CmBundleAnalysis *a)
{
  GPtrArray *items = cm_bundle_analysis_get_items (a);

  for (guint i = 0; i < items->len; i++)
    {
      CmBundleItem *it = g_ptr_array_index (items, i);
      const char *cn = cm_cert_get_subject_cn (it->cert);

      printf ("  %-12s %s: %s\n", cm_bundle_role_to_string (it->role),
              cn ? cn : cm_cert_get_subject (it->cert), it->reason);
    }
}

static gboolean
chain_one (Setup *s, CmNssdbLocation *loc, const char *bundle_path, gboolean *changed)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (CmNssDb) db = cm_nss_db_open_sync (loc->dir, CM_NSS_DB_DEFAULT, NULL, &error);
  g_autoptr (GPtrArray) plan = NULL;
  g_autofree char *question = NULL;
  char label[256];

  setup_client_label (loc, label, sizeof label);
  if (db == NULL || (plan = cm_nssdb_chain_plan (db, s->analysis, bundle_path, &error)) == NULL)
    return setup_not_done (s, cli_fail (error), "%s: the chain was not installed", label), FALSE;
  if (plan->len == 0)
    {
      printf ("  %s: the chain is installed\n", label);
      return TRUE;
    }
  for (guint i = 0; i < plan->len; i++)
    printf ("  %s: will %s\n", label, (char *)g_ptr_array_index (plan, i));
  question = g_strdup_printf ("Install the DoD chain for %s?", label);
  if (!setup_confirm (s, question))
    return setup_not_done (s, CLI_EXIT_FAILED, "%s: the chain was not installed", label), FALSE;
  if (!cm_nssdb_chain_install_sync (db, s->analysis, bundle_path, NULL, &error))
    return setup_not_done (s, cli_fail (error), "%s: the chain was not installed", label), FALSE;
  printf ("  %s: installed (%u CA certificates; only the root is trusted)\n", label,
          cm_bundle_analysis_count (s->analysis, CM_BUNDLE_INTERMEDIATE) + 1);
  *changed = TRUE;
  return TRUE;
}

/* No --bundle: done when every database already trusts a root CA (an earlier run, or `cacmail
 * nss trust`); a new bundle is installed by passing it. */
static SetupStatus
chain_without_bundle (Setup *s)
{
  guint missing = 0;
  char label[256];

  for (guint i = 0; i < s->targets->len; i++)
    {
      CmNssdbLocation *loc = g_ptr_array_index (s->targets, i);
      g_autoptr (CmNssDb) db = cm_nss_db_open_sync (loc->dir, CM_NSS_DB_READ_ONLY, NULL, NULL);
      g_autoptr (CmTrust) trust = db ? cm_nssdb_trust_from_db (db, NULL) : NULL;
      guint roots = trust ? cm_trust_count_anchors (trust) : 0;

      setup_client_label (loc, label, sizeof label);
      if (roots)
        printf ("  %s: %u trusted root CA%s installed (pass --bundle FILE --root-sha256 HEX for "
                "a newer DoD bundle)\n",
                label, roots, roots == 1 ? "" : "s");
      else
        missing++;
    }
  if (missing == 0)
    return SETUP_ALREADY;
  return setup_not_done (s, CLI_EXIT_USAGE,
                         "no trusted root CA yet: download the DoD PKI bundle (.p7b) from DISA "
                         "and pass --bundle FILE --root-sha256 HEX");
}

SetupStatus
setup_step_chain (Setup *s)
{
  g_autofree char *bundle_path = cm_nssdb_default_bundle_path ();
  gboolean changed = FALSE, all = TRUE;

  if (s->analysis == NULL)
    return chain_without_bundle (s);
  print_analysis (s->analysis);
  for (guint i = 0; i < s->targets->len; i++)
    all &= chain_one (s, g_ptr_array_index (s->targets, i), i == 0 ? bundle_path : NULL, &changed);
  if (!all)
    return SETUP_NOT_DONE;
  return changed ? SETUP_DONE : SETUP_ALREADY;
}
