/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cm-ldap-config.c: settings from $XDG_CONFIG_HOME/cacmail/cacmail.conf and options; secrets. */
#include "cm-ldap-private.h"
#include "cm-private.h"
#include <errno.h>
#include <string.h>

G_DEFINE_QUARK (cm - ldap - error - quark, cm_ldap_error)

struct _CmLdapConfig
{
  GHashTable *values; /* key -> value, both owned */
};

static const char *const known_keys[] = {
  "uri",           "base",        "entry-dn",   "filter",  "bind",     "bind-dn",
  "password-file", "client-cert", "client-key", "ca-file", "insecure", "allow-plain-ldap",
  "nssdb",         "token",       "email",      "timeout", "guard",    "domain",
  "realm",         NULL,
};

CmLdapConfig *
cm_ldap_config_new (void)
{
  CmLdapConfig *cfg = g_new0 (CmLdapConfig, 1);

  cfg->values = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  return cfg;
}

void
cm_ldap_config_free (CmLdapConfig *cfg)
{
  if (cfg == NULL)
    return;
  g_hash_table_unref (cfg->values);
  g_free (cfg);
}

char *
cm_ldap_config_default_path (void)
{
  return g_build_filename (g_get_user_config_dir (), "cacmail", "cacmail.conf", NULL);
}

char *
cm_ldap_default_ca_file (void)
{
  const char *state = g_getenv ("CACMAIL_STATE_DIR"); /* as the NSS helper writes it */

  if (state && *state)
    return g_build_filename (state, "ca-bundle.pem", NULL);
  return g_build_filename (g_get_user_data_dir (), "cacmail", "ca-bundle.pem", NULL);
}

static gboolean
is_bool_text (const char *v)
{
  const char *ok[] = { "true", "false", "yes", "no", "1", "0" };

  for (gsize i = 0; i < G_N_ELEMENTS (ok); i++)
    if (g_ascii_strcasecmp (v, ok[i]) == 0)
      return TRUE;
  return FALSE;
}

static gboolean
check_value (const char *key, const char *value, GError **error)
{
  if (strcmp (key, "bind") == 0 && strcmp (value, "simple") != 0 && strcmp (value, "external") != 0
      && strcmp (value, "gssapi") != 0)
    {
      g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_CONFIG,
                   "bind '%s' is unknown: use simple, external or gssapi", value);
      return FALSE;
    }
  if (strcmp (key, "guard") == 0 && strcmp (value, "auto") != 0 && strcmp (value, "values") != 0)
    {
      g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_CONFIG,
                   "guard '%s' is unknown: use auto or values", value);
      return FALSE;
    }
  if ((strcmp (key, "insecure") == 0 || strcmp (key, "allow-plain-ldap") == 0)
      && !is_bool_text (value))
    {
      g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_CONFIG,
                   "%s '%s' is not a boolean: use true or false", key, value);
      return FALSE;
    }
  if (strcmp (key, "filter") == 0)
    {
      const char *p = strstr (value, "%s");
      if (p == NULL || strstr (p + 2, "%s") || strchr (value, '%') != p)
        {
          g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_CONFIG,
                       "filter '%s' must hold exactly one %%s (the address), e.g. (mail=%%s)",
                       value);
          return FALSE;
        }
    }
  if ((strcmp (key, "domain") == 0 || strcmp (key, "realm") == 0)
      && (*value == '\0'
          || value[strspn (value, "abcdefghijklmnopqrstuvwxyz"
                                  "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-")]
          || *value == '.' || *value == '-'))
    {
      g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_CONFIG,
                   "%s '%s' is not a DNS domain name: use letters, digits, dots and hyphens, "
                   "e.g. example.mil",
                   key, value);
      return FALSE;
    }
  if (strcmp (key, "timeout") == 0)
    {
      guint64 n = 0;
      if (!g_ascii_string_to_unsigned (value, 10, 1, 3600, &n, NULL))
        {
          g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_CONFIG,
                       "timeout '%s' is not a number of seconds between 1 and 3600", value);
          return FALSE;
        }
    }
  if (strcmp (key, "uri") == 0)
    {
      g_auto (GStrv) uris = g_strsplit_set (value, " ,", -1);
      for (char **u = uris; *u; u++)
        if (**u && !g_str_has_prefix (*u, "ldap://") && !g_str_has_prefix (*u, "ldaps://"))
          {
            g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_CONFIG,
                         "uri '%s' is not an ldap:// or ldaps:// URI, e.g. "
                         "ldaps://gal.example.mil",
                         *u);
            return FALSE;
          }
    }
  return TRUE;
}

gboolean
cm_ldap_config_set (CmLdapConfig *cfg, const char *key, const char *value, GError **error)
{
  if (!g_strv_contains (known_keys, key))
    {
      g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_CONFIG,
                   "setting '%s' is unknown: see docs/ldap.md for the keys", key);
      return FALSE;
    }
  if (value == NULL)
    {
      g_hash_table_remove (cfg->values, key);
      return TRUE;
    }
  if (!check_value (key, value, error))
    return FALSE;
  g_hash_table_replace (cfg->values, g_strdup (key), g_strdup (value));
  return TRUE;
}

const char *
cm_ldap_config_get (CmLdapConfig *cfg, const char *key)
{
  const char *v = g_hash_table_lookup (cfg->values, key);

  return v && *v ? v : NULL;
}

gboolean
cm_ldap_config_get_bool (CmLdapConfig *cfg, const char *key)
{
  const char *v = cm_ldap_config_get (cfg, key);

  return v
         && (g_ascii_strcasecmp (v, "true") == 0 || g_ascii_strcasecmp (v, "yes") == 0
             || strcmp (v, "1") == 0);
}

int
cm_ldap_config_get_timeout (CmLdapConfig *cfg)
{
  const char *v = cm_ldap_config_get (cfg, "timeout");

  return v ? atoi (v) : 15;
}

gboolean
cm_ldap_config_load_file (CmLdapConfig *cfg, const char *path, gboolean must_exist, GError **error)
{
  g_autoptr (GKeyFile) kf = g_key_file_new ();
  g_autoptr (GError) local = NULL;
  g_auto (GStrv) keys = NULL;

  if (!g_key_file_load_from_file (kf, path, G_KEY_FILE_NONE, &local))
    {
      if (!must_exist && g_error_matches (local, G_FILE_ERROR, G_FILE_ERROR_NOENT))
        return TRUE;
      g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_CONFIG,
                   "%s: %s; fix the file (docs/ldap.md)", path, local->message);
      return FALSE;
    }
  if (!g_key_file_has_group (kf, "ldap"))
    return TRUE;
  keys = g_key_file_get_keys (kf, "ldap", NULL, NULL);
  for (char **k = keys; k && *k; k++)
    {
      g_autofree char *v = g_key_file_get_string (kf, "ldap", *k, &local);
      if (v == NULL || !cm_ldap_config_set (cfg, *k, v, &local))
        {
          g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_CONFIG, "%s, key %s: %s", path, *k,
                       local->message);
          return FALSE;
        }
    }
  return TRUE;
}

void
cm_ldap_secret_free (char *secret)
{
  cm_secret_free (secret);
}

char *
cm_ldap_secret_read_file_as (const char *path, const char *what, GError **error)
{
  g_autoptr (GError) local = NULL;
  char *secret = cm_secret_read_file (path, what, CM_SECRET_DEFAULT, &local);

  if (secret == NULL)
    g_set_error_literal (error, CM_LDAP_ERROR,
                         g_error_matches (local, CM_ERROR, CM_ERROR_UNSAFE) ? CM_LDAP_ERROR_REFUSED
                                                                            : CM_LDAP_ERROR_CONFIG,
                         local->message);
  return secret;
}

char *
cm_ldap_secret_read_file (const char *path, GError **error)
{
  return cm_ldap_secret_read_file_as (path, "secret file", error);
}

const char *
cm_ldap_step_to_string (CmLdapStep step)
{
  switch (step)
    {
    case CM_LDAP_STEP_FIND_ENTRY: return "find entry";
    case CM_LDAP_STEP_READ_CARD: return "read card";
    case CM_LDAP_STEP_SIGN: return "sign";
    case CM_LDAP_STEP_WRITE: return "write";
    case CM_LDAP_STEP_VERIFY: return "verify";
    case CM_LDAP_N_STEPS:
    default: return "?";
    }
}
