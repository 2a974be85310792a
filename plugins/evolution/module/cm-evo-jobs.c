/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cm-evo-jobs.c: the work behind the Smart Card page's buttons, run in worker threads: fix
 * and undo the S/MIME settings (libcacmail-evolution), load the card's PKCS#11 module into the
 * running Evolution (NSS SECMOD_AddNewModuleEx: no restart, saved for the next start), import
 * recovered keys (libcacmail-nss). Each returns a report for the page to show. */
#include "cm-evo-module.h"
#include <nss.h>
#include <pk11pub.h>
#include <prerror.h>
#include <secmod.h>

/* The names `cacmail nss register` gives the entries (plugins/nss-helper). */
#define OPENSC_NAME "OpenSC"
#define P11KIT_NAME "p11-kit-proxy"

/* fix and undo read, change and write the backup file: one at a time */
G_LOCK_DEFINE_STATIC (settings);

gint
cm_evo_fix_locked (CmEvoRegistry *reg, GPtrArray *identities, GCancellable *cancellable,
                   GError **error)
{
  gint n;

  G_LOCK (settings);
  n = cm_evo_registry_fix_sync (reg, identities, cancellable, error);
  G_UNLOCK (settings);
  return n;
}

static gboolean
registry_error (CmEvoState *st, GError **error)
{
  g_set_error (error, CM_EVO_ERROR, CM_EVO_ERROR_REGISTRY, "%s",
               st->problems->len ? (char *)g_ptr_array_index (st->problems, st->problems->len - 1)
                                 : "the source registry cannot be reached");
  return FALSE;
}

gboolean
cm_evo_job_fix_sync (char **report, GCancellable *cancellable, GError **error)
{
  g_autoptr (GString) out = g_string_new (NULL), fixed = g_string_new (NULL);
  CmEvoState *st = cm_evo_state_load_sync (TRUE, cancellable, error);
  gboolean ok = FALSE;
  gint n;

  if (st == NULL)
    return FALSE;
  if (st->reg == NULL)
    {
      registry_error (st, error);
      goto out;
    }
  for (guint i = 0; i < st->identities->len; i++)
    {
      CmEvoIdentity *id = g_ptr_array_index (st->identities, i);

      if (cm_evo_identity_can_fix (id))
        g_string_append_printf (fixed, "%s%s", fixed->len ? ", " : "",
                                cm_evo_identity_get_address (id));
      else if (cm_evo_identity_is_stale (id))
        g_string_append_printf (out, "\nNothing to set for %s: %s.",
                                cm_evo_identity_get_address (id),
                                cm_evo_identity_get_messages (id)[0]);
    }
  if ((n = cm_evo_fix_locked (st->reg, st->identities, cancellable, error)) < 0)
    goto out;
  {
    g_autofree char *head
      = n == 0 ? g_strdup ("No S/MIME setting needed a change.")
               : g_strdup_printf ("Fixed the S/MIME settings of %d identit%s: %s. Undo Last Fix "
                                  "restores them.",
                                  n, n == 1 ? "y" : "ies", fixed->str);
    g_string_prepend (out, head);
  }
  *report = g_string_free (g_steal_pointer (&out), FALSE);
  ok = TRUE;
out:
  cm_evo_state_free (st);
  return ok;
}

gboolean
cm_evo_job_undo_sync (char **report, GCancellable *cancellable, GError **error)
{
  g_autoptr (CmEvoRegistry) reg = cm_evo_registry_new_sync (cancellable, error);
  gint n;

  if (reg == NULL)
    return FALSE;
  G_LOCK (settings);
  n = cm_evo_registry_undo_sync (reg, cancellable, error);
  G_UNLOCK (settings);
  if (n < 0)
    return FALSE;
  *report = g_strdup_printf ("The S/MIME settings of %d identit%s are back to what they were "
                             "before the last fix.",
                             n, n == 1 ? "y" : "ies");
  return TRUE;
}

/* The entry to load: one already registered that reaches the card, else the p11-kit proxy
 * when p11-kit has OpenSC, else OpenSC. */
static gboolean
choose_module (CmNssDb *db, char **name, char **library, gboolean *registered, GError **error)
{
  g_autoptr (GPtrArray) mods = cm_nssdb_list_modules (db, error);
  gboolean p11kit_opensc = cm_nssdb_p11kit_has_opensc (NULL);
  g_autofree char *proxy = NULL, *opensc = NULL;

  if (mods == NULL)
    return FALSE;
  for (guint i = 0; i < mods->len; i++)
    {
      CmNssdbModule *m = g_ptr_array_index (mods, i);
      if (m->kind == CM_NSSDB_MODULE_OPENSC
          || (m->kind == CM_NSSDB_MODULE_P11KIT_PROXY && p11kit_opensc))
        {
          *name = g_strdup (m->name);
          *library = g_strdup (m->library);
          *registered = TRUE;
          return TRUE;
        }
    }
  *registered = FALSE;
  proxy = cm_nssdb_find_p11kit_proxy ();
  if (p11kit_opensc && proxy)
    {
      *name = g_strdup (P11KIT_NAME);
      *library = g_steal_pointer (&proxy);
      return TRUE;
    }
  if ((opensc = cm_nssdb_find_opensc_module ()) == NULL)
    {
      g_set_error (error, CM_ERROR, CM_ERROR_ENVIRONMENT,
                   "the OpenSC PKCS#11 module (opensc-pkcs11.so) is not installed: install it "
                   "with apt-get install opensc-pkcs11, then try again");
      return FALSE;
    }
  *name = g_strdup (OPENSC_NAME);
  *library = g_steal_pointer (&opensc);
  return TRUE;
}

/* "DOE.JOHN.Q.1234567890, ..." for the module's present tokens. Caller frees. */
static char *
module_tokens (const char *name, guint *count)
{
  SECMODModule *mod = SECMOD_FindModule (name);
  SECMODListLock *lock = SECMOD_GetDefaultModuleListLock ();
  g_autoptr (GPtrArray) labels = g_ptr_array_new ();

  *count = 0;
  if (mod == NULL)
    return g_strdup ("");
  SECMOD_GetReadLock (lock);
  for (int i = 0; i < mod->slotCount; i++)
    if (PK11_IsPresent (mod->slots[i]))
      g_ptr_array_add (labels, (gpointer)PK11_GetTokenName (mod->slots[i]));
  SECMOD_ReleaseReadLock (lock);
  *count = labels->len;
  g_ptr_array_add (labels, NULL);
  {
    char *out = g_strjoinv (", ", (char **)labels->pdata);
    SECMOD_DestroyModule (mod);
    return out;
  }
}

gboolean
cm_evo_job_make_available_sync (char **report, GCancellable *cancellable, GError **error)
{
  g_autofree char *dir = cm_evo_nssdb_dir ();
  g_autofree char *loaded = NULL, *name = NULL, *library = NULL, *tokens = NULL;
  g_autoptr (CmNssDb) db = NULL;
  g_autoptr (GPtrArray) after = NULL;
  gboolean registered = FALSE, saved = FALSE;
  guint count = 0;
  SECStatus rv;

  if (!NSS_IsInitialized ())
    {
      g_set_error (error, CM_ERROR, CM_ERROR_ENVIRONMENT,
                   "Evolution has not opened its certificate database yet: open the Mail "
                   "view once, then try again");
      return FALSE;
    }
  if ((loaded = cm_evo_card_module_loaded ()))
    {
      tokens = module_tokens (loaded, &count);
      *report = g_strdup_printf ("The card module \342\200\234%s\342\200\235 is already loaded "
                                 "in Evolution (cards visible now: %s).",
                                 loaded, count ? tokens : "none; insert your card");
      return TRUE;
    }
  db = cm_nss_db_open_sync (dir, CM_NSS_DB_READ_ONLY, cancellable, error);
  if (db == NULL || !choose_module (db, &name, &library, &registered, error))
    return FALSE;
  /* Loads the module into the running NSS and writes it to the module database Evolution's
   * NSS was opened with ($HOME/.pki/nssdb/pkcs11.txt). "Friendly": the card's certificates
   * are public, so listing them never makes NSS ask for the PIN (modutil's FRIENDLY). */
  rv = SECMOD_AddNewModuleEx (name, library, PUBLIC_MECH_FRIENDLY_FLAG, 0, NULL, NULL);
  if (rv != SECSuccess && !(rv == SECWouldBlock && cm_evo_card_module_loaded ()))
    {
      g_set_error (error, CM_ERROR, CM_ERROR_ENVIRONMENT,
                   "NSS could not load the card module %s (%s): check that the file exists "
                   "and pcscd is installed",
                   library, cm_nss_error_text ());
      return FALSE;
    }
  if ((after = cm_nssdb_list_modules (db, NULL)))
    for (guint i = 0; i < after->len; i++)
      saved |= g_strcmp0 (((CmNssdbModule *)g_ptr_array_index (after, i))->library, library) == 0;
  tokens = module_tokens (name, &count);
  *report = g_strdup_printf (
    "Loaded the card module \342\200\234%s\342\200\235 (%s) into Evolution: its certificates "
    "are available now, no restart needed. Cards visible now: %s.%s",
    name, library, count ? tokens : "none; insert your card",
    saved ? (registered ? ""
                        : " It is saved in the certificate database, so Evolution loads "
                          "it at every start.")
          : " It could not be saved in the certificate database (pkcs11.txt not writable?): "
            "run 'cacmail nss register' while Evolution is closed to keep it.");
  return TRUE;
}

gboolean
cm_evo_job_import_sync (const char *path, const char *password, char **report,
                        GCancellable *cancellable, GError **error)
{
  g_autofree char *dir = cm_evo_nssdb_dir ();
  g_autofree char *base = g_path_get_basename (path);
  g_autoptr (CmNssDb) db = NULL;
  g_autoptr (GPtrArray) results = NULL;
  g_autoptr (GString) out = g_string_new (NULL);
  guint added = 0;

  db = cm_nss_db_open_sync (dir, CM_NSS_DB_DEFAULT, cancellable, error);
  if (db == NULL
      || !cm_nssdb_import_p12_sync (db, path, password, &results, &added, cancellable, error))
    return FALSE;
  g_string_append_printf (out,
                          "%s: %u recovered key%s imported%s (decrypt only: old mail "
                          "encrypted to %s opens again; it is never used to sign or "
                          "encrypt new mail).",
                          base, added, added == 1 ? "" : "s",
                          added < results->len ? ", the others were there already" : "",
                          results->len == 1 ? "it" : "them");
  for (guint i = 0; i < results->len; i++)
    {
      CmNssdbRecovered *r = g_ptr_array_index (results, i);
      g_autofree char *until = cm_time_format_date (r->not_after);
      g_string_append_printf (out, "\n%s (%s, until %s)", r->nickname ? r->nickname : "?",
                              r->subject ? r->subject : "?", until);
    }
  *report = g_string_free (g_steal_pointer (&out), FALSE);
  return TRUE;
}
