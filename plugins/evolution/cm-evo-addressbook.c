/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cm-evo-addressbook.c: the directory as an Evolution LDAP address book, through
 * evolution-source-registry (never by writing .source files behind its back). */
#include "cm-evo-addressbook.h"
#include <libedataserver/libedataserver.h>

void
cm_evo_addressbook_free (CmEvoAddressbook *ab)
{
  if (ab == NULL)
    return;
  g_free (ab->uid);
  g_free (ab->display_name);
  g_free (ab->backend);
  g_free (ab->host);
  g_free (ab->security);
  g_free (ab->root_dn);
  g_free (ab->scope);
  g_free (ab->auth);
  g_free (ab->user);
  g_free (ab);
}

JsonNode *
cm_evo_addressbook_to_json (CmEvoAddressbook *ab)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();

  json_builder_begin_object (b);
  cm_json_add_string_or_null (b, "uid", ab->uid);
  cm_json_add_string_or_null (b, "display_name", ab->display_name);
  cm_json_add_string_or_null (b, "backend", ab->backend);
  cm_json_add_string_or_null (b, "host", ab->host);
  json_builder_set_member_name (b, "port");
  json_builder_add_int_value (b, ab->port);
  cm_json_add_string_or_null (b, "security", ab->security);
  cm_json_add_string_or_null (b, "root_dn", ab->root_dn);
  cm_json_add_string_or_null (b, "scope", ab->scope);
  cm_json_add_string_or_null (b, "auth", ab->auth);
  cm_json_add_string_or_null (b, "user", ab->user);
  json_builder_set_member_name (b, "autocomplete");
  json_builder_add_boolean_value (b, ab->autocomplete);
  json_builder_set_member_name (b, "created");
  json_builder_add_boolean_value (b, ab->created);
  json_builder_end_object (b);
  return json_builder_get_root (b);
}

static ESourceRegistry *
registry_new (GCancellable *cancellable, GError **error)
{
  g_autoptr (GError) local = NULL;
  ESourceRegistry *r = e_source_registry_new_sync (cancellable, &local);

  if (r == NULL)
    g_set_error (error, CM_EVO_ERROR, CM_EVO_ERROR_REGISTRY,
                 "cannot reach Evolution's source registry (%s): log in to a desktop session or "
                 "start evolution-source-registry",
                 local->message);
  g_type_ensure (E_TYPE_SOURCE_LDAP);
  return r;
}

static CmEvoAddressbook *
from_source (ESource *src)
{
  CmEvoAddressbook *ab = g_new0 (CmEvoAddressbook, 1);
  ESourceBackend *be = e_source_get_extension (src, E_SOURCE_EXTENSION_ADDRESS_BOOK);
  ESourceAuthentication *au = e_source_get_extension (src, E_SOURCE_EXTENSION_AUTHENTICATION);
  ESourceLDAP *ld = e_source_get_extension (src, E_SOURCE_EXTENSION_LDAP_BACKEND);
  ESourceAutocomplete *ac = e_source_get_extension (src, E_SOURCE_EXTENSION_AUTOCOMPLETE);
  const char *sec[] = { "none", "ldaps", "starttls" };
  const char *auth[] = { "none", "email", "binddn" };
  guint s = e_source_ldap_get_security (ld), a = e_source_ldap_get_authentication (ld);

  ab->uid = g_strdup (e_source_get_uid (src));
  ab->display_name = e_source_dup_display_name (src);
  ab->backend = e_source_backend_dup_backend_name (be);
  ab->host = e_source_authentication_dup_host (au);
  ab->port = e_source_authentication_get_port (au);
  ab->user = e_source_authentication_dup_user (au);
  ab->security = g_strdup (s < G_N_ELEMENTS (sec) ? sec[s] : "?");
  ab->auth = g_strdup (a < G_N_ELEMENTS (auth) ? auth[a] : "?");
  ab->root_dn = e_source_ldap_dup_root_dn (ld);
  ab->scope = g_strdup (e_source_ldap_get_scope (ld) == E_SOURCE_LDAP_SCOPE_SUBTREE ? "subtree"
                                                                                    : "onelevel");
  ab->autocomplete = e_source_autocomplete_get_include_me (ac);
  return ab;
}

/* Put the directory's settings into @src. */
static gboolean
fill (ESource *src, const char *uri, const char *base, const char *bind_dn, GError **error)
{
  g_auto (GStrv) uris = g_strsplit_set (uri, " ,", -1);
  g_autoptr (GUri) u = g_uri_parse (uris[0], G_URI_FLAGS_NONE, NULL);
  const char *scheme = u ? g_uri_get_scheme (u) : NULL;
  gboolean ldaps = g_strcmp0 (scheme, "ldaps") == 0;
  ESourceAuthentication *au = e_source_get_extension (src, E_SOURCE_EXTENSION_AUTHENTICATION);
  ESourceLDAP *ld = e_source_get_extension (src, E_SOURCE_EXTENSION_LDAP_BACKEND);
  g_autofree char *name = NULL;

  if (u == NULL || (!ldaps && g_strcmp0 (scheme, "ldap") != 0) || g_uri_get_host (u) == NULL
      || !*g_uri_get_host (u))
    {
      g_set_error (error, CM_EVO_ERROR, CM_EVO_ERROR_FAILED,
                   "'%s' is not an ldap:// or ldaps:// URI: set uri in cacmail.conf or pass --uri",
                   uris[0]);
      return FALSE;
    }
  name = g_strdup_printf ("Directory (cacmail, %s)", g_uri_get_host (u));
  e_source_set_display_name (src, name);
  e_source_set_parent (src, "ldap-stub");
  e_source_backend_set_backend_name (e_source_get_extension (src, E_SOURCE_EXTENSION_ADDRESS_BOOK),
                                     "ldap");
  e_source_authentication_set_host (au, g_uri_get_host (u));
  e_source_authentication_set_port (au, g_uri_get_port (u) > 0 ? g_uri_get_port (u)
                                        : ldaps                ? 636
                                                               : 389);
  e_source_authentication_set_user (au, bind_dn);
  e_source_ldap_set_authentication (ld, bind_dn ? E_SOURCE_LDAP_AUTHENTICATION_BINDDN
                                                : E_SOURCE_LDAP_AUTHENTICATION_NONE);
  e_source_ldap_set_security (ld, ldaps ? E_SOURCE_LDAP_SECURITY_LDAPS
                                        : E_SOURCE_LDAP_SECURITY_STARTTLS);
  e_source_ldap_set_root_dn (ld, base);
  e_source_ldap_set_scope (ld, E_SOURCE_LDAP_SCOPE_SUBTREE);
  e_source_ldap_set_limit (ld, 100);
  e_source_ldap_set_can_browse (ld, FALSE);
  e_source_autocomplete_set_include_me (
    e_source_get_extension (src, E_SOURCE_EXTENSION_AUTOCOMPLETE), TRUE);
  e_source_offline_set_stay_synchronized (e_source_get_extension (src, E_SOURCE_EXTENSION_OFFLINE),
                                          FALSE);
  return TRUE;
}

CmEvoAddressbook *
cm_evo_addressbook_configure_sync (const char *uri, const char *base, const char *bind_dn,
                                   GCancellable *cancellable, GError **error)
{
  g_autoptr (ESourceRegistry) reg = NULL;
  g_autoptr (ESource) src = NULL;
  g_autoptr (GError) local = NULL;
  gboolean created = FALSE, ok;
  CmEvoAddressbook *ab;

  if (uri == NULL || base == NULL)
    {
      g_set_error (error, CM_EVO_ERROR, CM_EVO_ERROR_FAILED,
                   "the directory needs %s: set it in cacmail.conf or pass --%s",
                   uri ? "a search base" : "a server URI", uri ? "base" : "uri");
      return NULL;
    }
  if ((reg = registry_new (cancellable, error)) == NULL)
    return NULL;
  src = e_source_registry_ref_source (reg, CM_EVO_ADDRESSBOOK_UID);
  if (src == NULL)
    {
      if ((src = e_source_new_with_uid (CM_EVO_ADDRESSBOOK_UID, NULL, &local)) == NULL)
        goto failed;
      created = TRUE;
    }
  if (!fill (src, uri, base, bind_dn, error))
    return NULL;
  ok = created ? e_source_registry_commit_source_sync (reg, src, cancellable, &local)
               : e_source_write_sync (src, cancellable, &local);
  if (!ok)
    goto failed;
  ab = from_source (src);
  ab->created = created;
  return ab;
failed:
  g_set_error (error, CM_EVO_ERROR, CM_EVO_ERROR_FAILED,
               "Evolution's source registry refused the address book %s (%s): check "
               "evolution-source-registry and try again",
               CM_EVO_ADDRESSBOOK_UID, local ? local->message : "unknown error");
  return NULL;
}

CmEvoAddressbook *
cm_evo_addressbook_read_sync (GCancellable *cancellable, GError **error)
{
  g_autoptr (ESourceRegistry) reg = registry_new (cancellable, error);
  g_autoptr (ESource) src = NULL;

  if (reg == NULL)
    return NULL;
  src = e_source_registry_ref_source (reg, CM_EVO_ADDRESSBOOK_UID);
  if (src == NULL || !e_source_has_extension (src, E_SOURCE_EXTENSION_LDAP_BACKEND))
    {
      g_set_error (error, CM_EVO_ERROR, CM_EVO_ERROR_NOT_FOUND,
                   "Evolution has no cacmail directory address book: run cacmail lookup "
                   "--configure evolution");
      return NULL;
    }
  return from_source (src);
}
