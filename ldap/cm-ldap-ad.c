/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cm-ldap-ad.c: who the server sees you as, for every bind and both kinds of server (docs/ldap.md,
 * "Active Directory"): Who am I? where the server answers it ("dn:" as is; Active Directory's
 * "u:DOMAIN\user" found by sAMAccountName), else the simple bind's DN, UPN or DOMAIN\user, or
 * GSSAPI's Kerberos principal, found in the directory. Samba AD has no Who am I? at all. */
#include "cm-ldap-private.h"
#include <ldap.h>
#include <string.h>

const char *
cm_ldap_kind_rules (CmLdapKind kind)
{
  if (kind == CM_LDAP_KIND_AD)
    return "Active Directory: userCertificate (no ;binary) and userSMIMECertificate on your own "
           "object, found after the bind; no assertion control: exact-value deletes guard the "
           "write, a value added meanwhile is moved behind yours";
  return "LDAP: userCertificate;binary and userSMIMECertificate; the write is guarded by the "
         "assertion control where the server offers it, else by exact-value deletes";
}

const char *
cm_ldap_search_base (CmLdapConn *conn, CmLdapConfig *cfg)
{
  const char *base = cm_ldap_config_get (cfg, "base");

  return base ? base : cm_ldap_conn_get_root_dse (conn)->default_nc;
}

/* "DC=ad,DC=example,DC=mil" -> "ad.example.mil", or NULL. Caller frees. */
static char *
dns_domain_of (const char *dn)
{
  g_auto (GStrv) parts = dn ? g_strsplit (dn, ",", -1) : NULL;
  g_autoptr (GString) out = g_string_new (NULL);

  for (char **p = parts; p && *p; p++)
    {
      const char *rdn = g_strstrip (*p);
      if (g_ascii_strncasecmp (rdn, "DC=", 3) == 0 && rdn[3])
        g_string_append_printf (out, "%s%s", out->len ? "." : "", rdn + 3);
    }
  return out->len ? g_ascii_strdown (out->str, -1) : NULL;
}

char *
cm_ldap_ad_bind_id (CmLdapConn *conn, CmLdapConfig *cfg, GError **error)
{
  const char *bdn = cm_ldap_config_get (cfg, "bind-dn");
  const char *realm = cm_ldap_config_get (cfg, "realm");
  g_autofree char *domain = NULL;

  if (bdn && (strpbrk (bdn, "=@\\") != NULL))
    return g_strdup (bdn);
  if (bdn)
    {
      /* a bare user name: its implicit UPN, NAME@DNS-DOMAIN (AD takes the realm too) */
      domain = realm ? g_ascii_strdown (realm, -1)
                     : dns_domain_of (cm_ldap_conn_get_root_dse (conn)->default_nc);
      return domain ? g_strdup_printf ("%s@%s", bdn, domain) : g_strdup (bdn);
    }
  if (cm_ldap_config_get (cfg, "entry-dn"))
    return g_strdup (cm_ldap_config_get (cfg, "entry-dn"));
  g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_CONFIG,
               "%s is Active Directory, which refuses anonymous searches: pass --bind-dn with "
               "your user name (jdoe@example.mil or EXAMPLE\\jdoe), or --bind gssapi after kinit "
               "or cacmail login",
               cm_ldap_conn_get_uri (conn));
  return NULL;
}

/* The one entry @filter (one %s, the escaped @value) finds under the base; NULL and no error
 * when none; NULL with @error when several or the search failed. */
static char *
find_one (CmLdapConn *conn, CmLdapConfig *cfg, const char *fmt, const char *value, const char *who,
          GError **error)
{
  struct berval in = { strlen (value), (char *)value }, esc = { 0, NULL };
  g_autofree char *filter = NULL;
  g_auto (GStrv) dns = NULL;
  const char *base = cm_ldap_search_base (conn, cfg);

  if (base == NULL || ldap_bv2escaped_filter_value (&in, &esc) != 0)
    {
      g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_REFUSED,
                   "nothing published: cannot tell which entry is %s's (no search base): pass "
                   "--base DN",
                   who);
      return NULL;
    }
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
  filter = g_strdup_printf (fmt, esc.bv_val);
#pragma GCC diagnostic pop
  ber_memfree (esc.bv_val);
  dns = cm_ldap_conn_find_dns (conn, base, filter, error);
  if (dns == NULL || dns[0] == NULL)
    return NULL;
  if (dns[1] != NULL)
    {
      g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_REFUSED,
                   "nothing published: cannot tell which entry is yours, %s matches several "
                   "(%s; %s): bind with your DN (--bind-dn)",
                   filter, dns[0], dns[1]);
      return NULL;
    }
  return g_strdup (dns[0]);
}

/* NAME@SUFFIX (a UPN, or a principal NAME@REALM): by userPrincipalName, else, where SUFFIX is
 * the domain's own, by sAMAccountName. NULL without error when none. */
static char *
find_upn (CmLdapConn *conn, CmLdapConfig *cfg, const char *upn, GError **error)
{
  const char *at = strrchr (upn, '@');
  g_autofree char *domain = dns_domain_of (cm_ldap_conn_get_root_dse (conn)->default_nc);
  const char *realm = cm_ldap_config_get (cfg, "realm");
  g_autofree char *name = NULL;
  GError *local = NULL;
  char *dn;

  dn = find_one (conn, cfg, "(&(objectClass=user)(userPrincipalName=%s))", upn, upn, &local);
  if (local)
    {
      g_propagate_error (error, local);
      return NULL;
    }
  if (dn || at == NULL)
    return dn;
  if ((domain && g_ascii_strcasecmp (at + 1, domain) == 0)
      || (realm && g_ascii_strcasecmp (at + 1, realm) == 0))
    {
      name = g_strndup (upn, at - upn);
      return find_one (conn, cfg, "(&(objectClass=user)(sAMAccountName=%s))", name, upn, error);
    }
  return NULL;
}

/* A name AD binds (UPN, DOMAIN\user) or a Kerberos principal: its entry's DN. */
static char *
resolve_name (CmLdapConn *conn, CmLdapConfig *cfg, const char *id, gboolean principal,
              GError **error)
{
  const char *bs = strchr (id, '\\');
  g_autofree char *upn = NULL;
  GError *local = NULL;
  char *dn = NULL;

  if (!cm_ldap_conn_is_ad (conn))
    {
      g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_REFUSED,
                   "nothing published: the server knows you as %s, which names no directory "
                   "entry, so cacmail cannot check that the entry is yours: ask the directory "
                   "admin to map this identity to your entry",
                   id);
      return NULL;
    }
  if (principal && strstr (id, "\\@"))
    {
      /* an enterprise principal (a card login's UPN): NAME\@SUFFIX@REALM */
      upn = g_strndup (id, strrchr (id, '@') - id);
      for (char *p = upn; (p = strstr (p, "\\@")) != NULL;)
        memmove (p, p + 1, strlen (p));
      dn = find_upn (conn, cfg, upn, &local);
    }
  else if (!principal && bs)
    dn = find_one (conn, cfg, "(&(objectClass=user)(sAMAccountName=%s))", bs + 1, id, &local);
  else
    dn = find_upn (conn, cfg, id, &local);
  if (local)
    g_propagate_error (error, local);
  else if (dn == NULL)
    g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_REFUSED,
                 "nothing published: you are bound as %s, but no entry under %s is that user, "
                 "so cacmail cannot check that the entry is yours: bind as yourself",
                 id, cm_ldap_search_base (conn, cfg));
  return dn;
}

char *
cm_ldap_bound_dn (CmLdapConn *conn, CmLdapConfig *cfg, const char *bind_id, GError **error)
{
  const char *method = cm_ldap_config_get (cfg, "bind");
  gboolean simple = method == NULL || strcmp (method, "simple") == 0;
  g_autofree char *whoami = NULL, *user = NULL;

  if (!cm_ldap_conn_whoami (conn, &whoami, error))
    return NULL;
  if (whoami && g_str_has_prefix (whoami, "dn:") && whoami[3])
    return g_strdup (whoami + 3);
  if (whoami && g_str_has_prefix (whoami, "u:") && whoami[2])
    return resolve_name (conn, cfg, whoami + 2, FALSE, error);
  if (whoami && *whoami)
    {
      g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_REFUSED,
                   "nothing published: the server says you are '%s', which cacmail cannot "
                   "match to an entry: bind with your DN",
                   whoami);
      return NULL;
    }
  if (whoami)
    {
      g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_REFUSED,
                   "nothing published: the server says you are anonymous after the bind: "
                   "check the bind settings");
      return NULL;
    }
  /* no Who am I? (Samba AD): the identity of the bind itself */
  if (simple && bind_id)
    {
      LDAPDN parsed = NULL;
      gboolean is_dn = strchr (bind_id, '=') != NULL
                       && ldap_str2dn (bind_id, &parsed, LDAP_DN_FORMAT_LDAPV3) == LDAP_SUCCESS;
      ldap_dnfree (parsed);
      return is_dn ? g_strdup (bind_id) : resolve_name (conn, cfg, bind_id, FALSE, error);
    }
  user = cm_ldap_conn_sasl_user (conn);
  if (user && *user)
    return resolve_name (conn, cfg, user, TRUE, error);
  g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_REFUSED,
               "nothing published: %s cannot say who you are bound as (no Who am I?), so "
               "cacmail cannot check that the entry is yours: use a simple bind or GSSAPI",
               cm_ldap_conn_get_uri (conn));
  return NULL;
}
