/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cm-nssdb-modules.c: the card's PKCS#11 module in a database's pkcs11.txt (what ActivClient
 * does on Windows). The p11-kit proxy is preferred when p11-kit has OpenSC configured; a card
 * must never be reachable through two entries (the client would show it twice). */
#include "cm-nssdb.h"
#include "cm-nssdb-config.h"
#include <nss.h>
#include <prerror.h>
#include <utilpars.h>

#define OPENSC_NAME "OpenSC"
#define P11KIT_NAME "p11-kit-proxy"

void
cm_nssdb_module_free (CmNssdbModule *m)
{
  if (m == NULL)
    return;
  g_free (m->name);
  g_free (m->library);
  g_free (m);
}

static CmNssdbModuleKind
library_kind (const char *library)
{
  g_autofree char *real = realpath (library, NULL);
  g_autofree char *base = g_path_get_basename (library);
  g_autofree char *proxy = cm_nssdb_find_p11kit_proxy ();
  g_autofree char *proxy_real = proxy ? realpath (proxy, NULL) : NULL;

  if (strstr (base, "opensc-pkcs11"))
    return CM_NSSDB_MODULE_OPENSC;
  if (strstr (base, "p11-kit-proxy") || (real && proxy_real && strcmp (real, proxy_real) == 0))
    return CM_NSSDB_MODULE_P11KIT_PROXY;
  return CM_NSSDB_MODULE_OTHER;
}

GPtrArray *
cm_nssdb_list_modules (CmNssDb *db, GError **error)
{
  g_auto (GStrv) specs = cm_nss_db_list_module_specs (db, error);
  GPtrArray *out;

  if (specs == NULL)
    return NULL;
  out = g_ptr_array_new_with_free_func ((GDestroyNotify)cm_nssdb_module_free);
  for (char **s = specs; *s; s++)
    {
      char *lib = NULL, *name = NULL, *params = NULL, *nss = NULL;

      if (NSSUTIL_ArgParseModuleSpec (*s, &lib, &name, &params, &nss) == SECSuccess && lib && *lib
          && !NSSUTIL_ArgHasFlag ("flags", "internal", nss))
        {
          CmNssdbModule *m = g_new0 (CmNssdbModule, 1);
          m->name = g_strdup (name ? name : "");
          m->library = g_strdup (lib);
          m->kind = library_kind (lib);
          /* NSS loads a bare name through the linker's search path */
          m->library_exists = strchr (lib, '/') ? g_file_test (lib, G_FILE_TEST_EXISTS) : TRUE;
          m->friendly = nss && strstr (nss, "PublicCerts") != NULL;
          g_ptr_array_add (out, m);
        }
      PORT_Free (lib);
      PORT_Free (name);
      PORT_Free (params);
      PORT_Free (nss);
    }
  return out;
}

static char *
first_existing (const char *const *dirs, const char *base)
{
  for (; *dirs; dirs++)
    {
      g_autofree char *p = g_build_filename (*dirs, base, NULL);
      if (g_file_test (p, G_FILE_TEST_EXISTS))
        return g_steal_pointer (&p);
    }
  return NULL;
}

char *
cm_nssdb_find_opensc_module (void)
{
  const char *env = g_getenv ("CACMAIL_OPENSC_MODULE");
  const char *const dirs[]
    = { CM_NSSDB_LIBDIR, CM_NSSDB_LIBDIR "/pkcs11", "/usr/lib64", "/usr/lib64/pkcs11",
        "/usr/lib",      "/usr/lib/pkcs11",         NULL };

  if (env && *env)
    return g_file_test (env, G_FILE_TEST_EXISTS) ? g_strdup (env) : NULL;
  return first_existing (dirs, "opensc-pkcs11.so");
}

char *
cm_nssdb_find_p11kit_proxy (void)
{
  const char *env = g_getenv ("CACMAIL_P11KIT_PROXY");
  const char *const dirs[] = { CM_NSSDB_LIBDIR, "/usr/lib64", "/usr/lib", NULL };

  if (env && *env)
    return g_file_test (env, G_FILE_TEST_EXISTS) ? g_strdup (env) : NULL;
  if (g_file_test (CM_NSSDB_P11KIT_PROXY, G_FILE_TEST_EXISTS))
    return g_strdup (CM_NSSDB_P11KIT_PROXY);
  return first_existing (dirs, "p11-kit-proxy.so");
}

/* One p11-kit .module file: does it give the proxy OpenSC? */
static gboolean
module_file_gives_opensc (const char *path)
{
  g_autofree char *text = NULL;
  g_auto (GStrv) lines = NULL;
  gboolean opensc = FALSE, enabled = TRUE;

  if (!g_file_get_contents (path, &text, NULL, NULL))
    return FALSE;
  lines = g_strsplit (text, "\n", -1);
  for (char **l = lines; *l; l++)
    {
      char *colon = strchr (*l, ':');
      const char *key, *value;

      if (colon == NULL || **l == '#')
        continue;
      *colon = '\0';
      key = g_strstrip (*l);
      value = g_strstrip (colon + 1);
      if (strcmp (key, "module") == 0)
        opensc = strstr (value, "opensc-pkcs11") != NULL;
      else if (strcmp (key, "enable-in") == 0)
        enabled = strstr (value, "p11-kit-proxy") != NULL;
      else if (strcmp (key, "disable-in") == 0 && strstr (value, "p11-kit-proxy"))
        enabled = FALSE;
    }
  return opensc && enabled;
}

gboolean
cm_nssdb_p11kit_has_opensc (char **where)
{
  const char *env = g_getenv ("CACMAIL_P11KIT_MODULE_DIRS");
  g_autofree char *user = g_build_filename (g_get_user_config_dir (), "pkcs11", "modules", NULL);
  const char *const defaults[] = { user, CM_NSSDB_P11KIT_SYSCONF, CM_NSSDB_P11KIT_CONFIGS, NULL };
  g_auto (GStrv) from_env = env ? g_strsplit (env, ":", -1) : NULL;
  const char *const *dirs = from_env ? (const char *const *)from_env : defaults;
  g_autoptr (GHashTable) seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);

  /* user configuration overrides system configuration file by file */
  for (const char *const *d = dirs; *d; d++)
    {
      g_autoptr (GDir) dir = g_dir_open (*d, 0, NULL);
      const char *name;

      while (dir && (name = g_dir_read_name (dir)))
        {
          g_autofree char *path = NULL;
          if (!g_str_has_suffix (name, ".module") || g_hash_table_contains (seen, name))
            continue;
          g_hash_table_add (seen, g_strdup (name));
          path = g_build_filename (*d, name, NULL);
          if (module_file_gives_opensc (path))
            {
              if (where)
                *where = g_steal_pointer (&path);
              return TRUE;
            }
        }
    }
  return FALSE;
}

/* NSS's slot parameters that make the card's slots "friendly" (modutil -mechanisms FRIENDLY,
 * what SECMOD_AddNewModuleEx writes for PUBLIC_MECH_FRIENDLY_FLAG): the card's certificates are
 * public objects, so without this NSS asks for the PIN before it lists them (Evolution's
 * Certificates page, Thunderbird's S/MIME settings). NSS keys the flag by slot ID and only
 * writes the slots present when it loads the module; we write the IDs the module hands out
 * instead, with no card needed: OpenSC 4 per reader (readers 0..7), the p11-kit proxy from
 * 0x11 up. */
static char *
friendly_slots (CmNssdbModuleKind kind)
{
  GString *s = g_string_new ("slotParams={");
  gulong first = kind == CM_NSSDB_MODULE_P11KIT_PROXY ? 0x11 : 0;

  for (gulong id = first; id < first + 32; id++)
    g_string_append_printf (s, "0x%08lx=[slotFlags=PublicCerts] ", id);
  g_string_append (s, "}");
  return g_string_free (s, FALSE);
}

static gboolean
db_func (CmNssDb *db, unsigned long fn, const char *name, const char *library,
         const char *nss_params, GError **error)
{
  SECMODModule *m = cm_nss_db_get_module_db (db, error);
  g_autofree char *spec = NULL;
  char **ret;

  if (m == NULL)
    return FALSE;
  spec = g_strdup_printf ("library=\"%s\" name=\"%s\"%s%s%s", library, name,
                          nss_params ? " NSS=\"" : "", nss_params ? nss_params : "",
                          nss_params ? "\"" : "");
  ret = ((SECMODModuleDBFunc)m->moduleDBFunc) (fn, m->libraryParams, spec);
  if (ret == NULL)
    {
      g_set_error (error, CM_ERROR, CM_ERROR_ENVIRONMENT,
                   "NSS could not %s %s/pkcs11.txt (%s): check that the folder is writable",
                   fn == SECMOD_MODULE_DB_FUNCTION_ADD ? "add a module to" : "remove a module from",
                   cm_nss_db_get_dir (db), cm_nss_error_text ());
      return FALSE;
    }
  return TRUE;
}

static CmNssdbModule *
find_entry (GPtrArray *mods, CmNssdbModuleKind kind, const char *library)
{
  for (guint i = 0; i < mods->len; i++)
    {
      CmNssdbModule *m = g_ptr_array_index (mods, i);
      if (m->kind == kind || (library && strcmp (m->library, library) == 0))
        return m;
    }
  return NULL;
}

static gboolean
has_entry (GPtrArray *mods, CmNssdbModuleKind kind, const char *library)
{
  return find_entry (mods, kind, library) != NULL;
}

/* An entry of the card's module registered without the friendly slot flags (by hand, by
 * modutil, or by cacmail before 0.1): rewritten with them, same name and library, so the
 * clients stop asking for the PIN just to list the card's certificates. */
static gboolean
make_friendly (CmNssDb *db, CmNssdbModule *m, char **report, GError **error)
{
  g_autofree char *params = friendly_slots (m->kind);

  /* NSS's module database replaces an entry of the same name in the one write of an add: no
   * moment without the entry */
  if (!db_func (db, SECMOD_MODULE_DB_FUNCTION_ADD, m->name, m->library, params, error))
    return FALSE;
  *report = g_strdup_printf ("updated: \"%s\" (%s) now lets the mail clients list the card's "
                             "certificates without the PIN",
                             m->name, m->library);
  return TRUE;
}

guint
cm_nssdb_count_card_entries (GPtrArray *mods, gboolean p11kit_opensc)
{
  guint n = 0;

  for (guint i = 0; i < mods->len; i++)
    {
      CmNssdbModule *m = g_ptr_array_index (mods, i);
      if (m->library_exists
          && (m->kind == CM_NSSDB_MODULE_OPENSC
              || (m->kind == CM_NSSDB_MODULE_P11KIT_PROXY && p11kit_opensc)))
        n++;
    }
  return n;
}

/* Remove every OpenSC and p11-kit-proxy entry of @mods from @db, one line per entry appended
 * to @out ("removed: ..."). NSS deletes the first entry with that name or library, one per
 * call: as many calls as entries (the callers check what is left). */
static gboolean
remove_card_entries (CmNssDb *db, GPtrArray *mods, GString *out, GError **error)
{
  for (guint i = 0; i < mods->len; i++)
    {
      CmNssdbModule *m = g_ptr_array_index (mods, i);
      if (m->kind == CM_NSSDB_MODULE_OTHER)
        continue;
      if (!db_func (db, SECMOD_MODULE_DB_FUNCTION_DEL, m->name, m->library, NULL, error))
        return FALSE;
      g_string_append_printf (out, "%sremoved: \"%s\" (%s)", out->len ? "\n" : "", m->name,
                              m->library);
    }
  return TRUE;
}

/* The module to add: @kind, or (CM_NSSDB_MODULE_OTHER) the p11-kit proxy when p11-kit loads
 * OpenSC, else OpenSC; its library in *@lib (borrowed from @opensc or @proxy). */
static gboolean
choose_module (CmNssdbModuleKind *kind, const char *opensc, const char *proxy,
               gboolean p11kit_opensc, const char **lib, GError **error)
{
  if (*kind == CM_NSSDB_MODULE_OTHER)
    *kind = (p11kit_opensc && proxy) ? CM_NSSDB_MODULE_P11KIT_PROXY : CM_NSSDB_MODULE_OPENSC;
  if (*kind == CM_NSSDB_MODULE_P11KIT_PROXY && (proxy == NULL || !p11kit_opensc))
    {
      g_set_error (error, CM_ERROR, CM_ERROR_ENVIRONMENT,
                   proxy ? "p11-kit has no OpenSC module configured, so its proxy would not "
                           "reach the card: install opensc-pkcs11 or use --module opensc"
                         : "the p11-kit proxy (p11-kit-proxy.so) is not installed: install "
                           "p11-kit-modules or use --module opensc");
      return FALSE;
    }
  if (*kind == CM_NSSDB_MODULE_OPENSC && opensc == NULL)
    {
      g_set_error (error, CM_ERROR, CM_ERROR_ENVIRONMENT,
                   "the OpenSC PKCS#11 module (opensc-pkcs11.so) is not installed: install it "
                   "with apt-get install opensc-pkcs11");
      return FALSE;
    }
  *lib = *kind == CM_NSSDB_MODULE_OPENSC ? opensc : proxy;
  return TRUE;
}

gboolean
cm_nssdb_register_card_sync (CmNssDb *db, CmNssdbModuleKind kind, char **report,
                             GCancellable *cancellable, GError **error)
{
  g_autoptr (GPtrArray) mods = cm_nssdb_list_modules (db, error);
  g_autofree char *opensc = cm_nssdb_find_opensc_module ();
  g_autofree char *proxy = cm_nssdb_find_p11kit_proxy ();
  g_autofree char *conf = NULL, *friendly = NULL;
  gboolean p11kit_opensc = cm_nssdb_p11kit_has_opensc (&conf);
  g_autoptr (GPtrArray) after = NULL;
  g_autoptr (GString) removed = g_string_new (NULL);
  CmNssdbModule *there;
  const char *lib, *name;
  guint reach;

  *report = NULL;
  if (mods == NULL || g_cancellable_set_error_if_cancelled (cancellable, error))
    return FALSE;
  reach = cm_nssdb_count_card_entries (mods, p11kit_opensc);
  if (reach <= 1 && (there = find_entry (mods, CM_NSSDB_MODULE_OPENSC, NULL)))
    {
      if (!there->friendly)
        return make_friendly (db, there, report, error);
      *report = g_strdup ("unchanged: OpenSC is already registered (the card is available)");
      return TRUE;
    }
  if (reach <= 1 && (there = find_entry (mods, CM_NSSDB_MODULE_P11KIT_PROXY, NULL))
      && p11kit_opensc)
    {
      if (!there->friendly)
        return make_friendly (db, there, report, error);
      *report = g_strdup_printf ("unchanged: the p11-kit proxy is already registered and p11-kit "
                                 "loads OpenSC (%s)",
                                 conf);
      return TRUE;
    }
  /* the card reachable through several entries (the clients show it twice): keep one, OpenSC
   * where it is among them; everything is checked before anything is removed */
  if (reach > 1 && kind == CM_NSSDB_MODULE_OTHER)
    kind = find_entry (mods, CM_NSSDB_MODULE_OPENSC, NULL) ? CM_NSSDB_MODULE_OPENSC
                                                           : CM_NSSDB_MODULE_P11KIT_PROXY;
  if (!choose_module (&kind, opensc, proxy, p11kit_opensc, &lib, error))
    return FALSE;
  if (reach > 1 && !remove_card_entries (db, mods, removed, error))
    return FALSE;
  name = kind == CM_NSSDB_MODULE_OPENSC ? OPENSC_NAME : P11KIT_NAME;
  friendly = friendly_slots (kind);
  if (!db_func (db, SECMOD_MODULE_DB_FUNCTION_ADD, name, lib, friendly, error))
    return FALSE;
  after = cm_nssdb_list_modules (db, error);
  if (after == NULL)
    return FALSE;
  if (!has_entry (after, kind, lib) || cm_nssdb_count_card_entries (after, p11kit_opensc) > 1)
    {
      g_set_error (error, CM_ERROR, CM_ERROR_ENVIRONMENT,
                   "NSS did not keep the module once in %s/pkcs11.txt: check that the file is "
                   "writable, then run cacmail nss register again",
                   cm_nss_db_get_dir (db));
      return FALSE;
    }
  *report = g_strdup_printf (
    "%s%s%sadded: \"%s\" (%s)%s",
    reach > 1 ? "repaired: the card was reachable through several entries (the clients showed "
                "it twice), now through one\n"
              : "",
    removed->str, removed->len ? "\n" : "", name, lib,
    kind == CM_NSSDB_MODULE_P11KIT_PROXY ? ", which loads OpenSC through p11-kit" : "");
  return TRUE;
}

gboolean
cm_nssdb_unregister_card_sync (CmNssDb *db, char **report, GCancellable *cancellable,
                               GError **error)
{
  g_autoptr (GPtrArray) mods = cm_nssdb_list_modules (db, error);
  g_autoptr (GString) out = g_string_new (NULL);
  g_autoptr (GPtrArray) after = NULL;

  *report = NULL;
  if (mods == NULL || g_cancellable_set_error_if_cancelled (cancellable, error)
      || !remove_card_entries (db, mods, out, error))
    return FALSE;
  after = cm_nssdb_list_modules (db, error);
  if (after == NULL)
    return FALSE;
  if (has_entry (after, CM_NSSDB_MODULE_OPENSC, NULL)
      || has_entry (after, CM_NSSDB_MODULE_P11KIT_PROXY, NULL))
    {
      g_set_error (error, CM_ERROR, CM_ERROR_ENVIRONMENT,
                   "a card module is still listed in %s/pkcs11.txt: check that the file is "
                   "writable",
                   cm_nss_db_get_dir (db));
      return FALSE;
    }
  *report = out->len ? g_string_free (g_steal_pointer (&out), FALSE)
                     : g_strdup ("unchanged: no card module was registered");
  return TRUE;
}
