/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cm-tb-ldap.c: Thunderbird's LDAP directory for recipients' certificates and address
 * completion (facts.md section 6: it fetches `usercertificate;binary` with (mail=...)). */
#include "cm-tb-ldap.h"
#include "cm-tb-private.h"
#include <string.h>

/* ldaps://HOST[:PORT] from @uri (its path, if any, dropped), or NULL. */
static char *
server_part (const char *uri)
{
  g_autoptr (GUri) u = g_uri_parse (uri, G_URI_FLAGS_NONE, NULL);
  const char *host = u ? g_uri_get_host (u) : NULL;
  g_autofree char *h = NULL;

  if (u == NULL || g_strcmp0 (g_uri_get_scheme (u), "ldaps") != 0 || host == NULL || !*host)
    return NULL;
  h = strchr (host, ':') ? g_strdup_printf ("[%s]", host) : g_strdup (host);
  if (g_uri_get_port (u) > 0)
    return g_strdup_printf ("ldaps://%s:%d", h, g_uri_get_port (u));
  return g_strdup_printf ("ldaps://%s", h);
}

static void
plan_string (GPtrArray *out, CmTbPrefs *prefs, const char *name, const char *value)
{
  const CmTbPrefValue *old = cm_tb_prefs_get (prefs, name);
  CmTbPrefValue v
    = { .type = value ? CM_TB_PREF_STRING : CM_TB_PREF_UNSET, .string = (char *)value };

  if (!cm_tb_pref_value_equal (old, &v))
    g_ptr_array_add (out, cm_tb_pref_change_new (name, old, &v));
}

static void
plan_value (GPtrArray *out, CmTbPrefs *prefs, const char *name, const CmTbPrefValue *v)
{
  const CmTbPrefValue *old = cm_tb_prefs_get (prefs, name);

  if (!cm_tb_pref_value_equal (old, v))
    g_ptr_array_add (out, cm_tb_pref_change_new (name, old, v));
}

GPtrArray *
cm_tb_ldap_plan (CmTbPrefs *prefs, const char *uri, const char *base, const char *bind_dn,
                 gboolean gssapi, GError **error)
{
  g_autofree char *server = uri ? server_part (uri) : NULL;
  g_autofree char *esc = NULL, *url = NULL, *desc = NULL;
  GPtrArray *out;
  CmTbPrefValue yes = { .type = CM_TB_PREF_BOOL, .boolean = TRUE };
  CmTbPrefValue hits = { .type = CM_TB_PREF_INT, .integer = 100 };

  if (server == NULL)
    {
      g_set_error (error, CM_ERROR, CM_ERROR_BAD_INPUT,
                   "Thunderbird needs the directory's ldaps:// URI ('%s' is not one): its LDAP "
                   "client has no StartTLS and would send the password and the certificates in "
                   "clear text; set uri to ldaps://HOST in cacmail.conf or pass --uri",
                   uri ? uri : "none");
      return NULL;
    }
  if (base == NULL || *base == '\0')
    {
      g_set_error (error, CM_ERROR, CM_ERROR_BAD_INPUT,
                   "no search base for Thunderbird's directory: pass --base DN or set base in "
                   "cacmail.conf");
      return NULL;
    }
  /* an LDAP URL: the DN keeps = , + ; the rest (spaces, ?, #, %) is escaped */
  esc = g_uri_escape_string (base, "=,+;", FALSE);
  url = g_strdup_printf ("%s/%s??sub?(objectclass=*)", server, esc);
  desc = g_strdup_printf ("Directory (cacmail, %s)", server + strlen ("ldaps://"));
  out = g_ptr_array_new_with_free_func ((GDestroyNotify)cm_tb_pref_change_free);
  plan_string (out, prefs, CM_TB_LDAP_BRANCH ".description", desc);
  plan_string (out, prefs, CM_TB_LDAP_BRANCH ".uri", url);
  plan_string (out, prefs, CM_TB_LDAP_BRANCH ".auth.dn", gssapi ? NULL : bind_dn);
  plan_string (out, prefs, CM_TB_LDAP_BRANCH ".auth.saslmech", gssapi ? "GSSAPI" : NULL);
  plan_value (out, prefs, CM_TB_LDAP_BRANCH ".maxHits", &hits);
  plan_value (out, prefs, "ldap_2.autoComplete.useDirectory", &yes);
  plan_string (out, prefs, "ldap_2.autoComplete.directoryServer", CM_TB_LDAP_BRANCH);
  return out;
}

gboolean
cm_tb_profile_ldap_sync (CmTbProfile *p, GPtrArray *changes, GError **error)
{
  g_autoptr (CmTbBackup) b = NULL;

  if (!cm_tb_profile_check_closed (p, error))
    return FALSE;
  if (changes->len == 0)
    return TRUE;
  if (!cm_tb_profile_lock (p, error)
      || (b = cm_tb_backup_begin (cm_tb_profile_get_dir (p), "ldap", error)) == NULL
      || !cm_tb_profile_write_prefs (p, b, changes, error))
    {
      cm_tb_profile_unlock (p);
      return FALSE;
    }
  cm_tb_profile_unlock (p);
  if (!cm_tb_backup_finish (b, error))
    g_clear_error (error); /* written; undo then reverts pref by pref */
  return TRUE;
}
