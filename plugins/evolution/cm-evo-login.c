/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cm-evo-login.c: Evolution's mail accounts set to log in with the Kerberos ticket (GSSAPI)
 * where the server offers it, through evolution-source-registry (cm-evo-login.h). The probe is
 * libcacmail-thunderbird's (cm-tb-probe.c): the same IMAP/POP3/SMTP dialogue, no secret sent. */
#include "cm-evo-login.h"
#include <libedataserver/libedataserver.h>

struct _CmEvoLogin
{
  ESourceRegistry *registry;
  GPtrArray *servers; /* CmEvoLoginServer* */
};

static void
server_free (CmEvoLoginServer *s)
{
  if (s == NULL)
    return;
  g_free (s->identity_uid);
  g_free (s->source_uid);
  g_free (s->method);
  cm_tb_server_probe_free (s->probe);
  g_free (s->message);
  g_free (s);
}

void
cm_evo_login_free (CmEvoLogin *login)
{
  if (login == NULL)
    return;
  g_clear_object (&login->registry);
  g_ptr_array_unref (login->servers);
  g_free (login);
}

GPtrArray *
cm_evo_login_get_servers (CmEvoLogin *login)
{
  return login->servers;
}

/* Evolution's ESourceSecurity method as Thunderbird's socketType (what the probe takes). */
static gint32
socket_type (const char *security)
{
  if (g_strcmp0 (security, "ssl-on-alternate-port") == 0)
    return 3;
  if (g_strcmp0 (security, "starttls-on-standard-port") == 0)
    return 2;
  return 0;
}

/* The server of @src (a mail account or transport) as one entry, or NULL when its backend is
 * not IMAP, POP3 or SMTP or it has no host. */
static CmEvoLoginServer *
server_new (ESource *src, const char *ext_name, const char *identity_uid, const char *address)
{
  ESourceBackend *be = e_source_get_extension (src, ext_name);
  g_autofree char *backend = e_source_backend_dup_backend_name (be);
  const char *kind = g_strcmp0 (backend, "imapx") == 0  ? "imap"
                     : g_strcmp0 (backend, "pop") == 0  ? "pop3"
                     : g_strcmp0 (backend, "smtp") == 0 ? "smtp"
                                                        : NULL;
  ESourceAuthentication *auth;
  ESourceSecurity *sec;
  g_autofree char *host = NULL, *security = NULL;
  CmEvoLoginServer *s;

  if (kind == NULL || !e_source_has_extension (src, E_SOURCE_EXTENSION_AUTHENTICATION))
    return NULL;
  auth = e_source_get_extension (src, E_SOURCE_EXTENSION_AUTHENTICATION);
  sec = e_source_get_extension (src, E_SOURCE_EXTENSION_SECURITY);
  host = e_source_authentication_dup_host (auth);
  if (host == NULL || *host == '\0')
    return NULL;
  security = e_source_security_dup_method (sec);
  s = g_new0 (CmEvoLoginServer, 1);
  s->identity_uid = g_strdup (identity_uid);
  s->source_uid = g_strdup (e_source_get_uid (src));
  s->method = e_source_authentication_dup_method (auth);
  s->incoming = strcmp (kind, "smtp") != 0;
  s->probe = g_new0 (CmTbServerProbe, 1);
  s->probe->kind = g_strdup (kind);
  s->probe->key = g_strdup (s->source_uid);
  s->probe->host = g_steal_pointer (&host);
  s->probe->socket_type = socket_type (security);
  s->probe->address = g_strdup (address);
  s->probe->port = e_source_authentication_get_port (auth);
  if (s->probe->port == 0)
    s->probe->port = strcmp (kind, "imap") == 0   ? (s->probe->socket_type == 3 ? 993 : 143)
                     : strcmp (kind, "pop3") == 0 ? (s->probe->socket_type == 3 ? 995 : 110)
                                                  : (s->probe->socket_type == 3 ? 465 : 587);
  return s;
}

/* The incoming server of the account whose identity is @id, then @id's SMTP server. */
static void
add_identity (CmEvoLogin *login, ESource *id, const char *address)
{
  const char *uid = e_source_get_uid (id);
  GList *accounts
    = e_source_registry_list_sources (login->registry, E_SOURCE_EXTENSION_MAIL_ACCOUNT);
  CmEvoLoginServer *s;

  for (GList *l = accounts; l; l = l->next)
    {
      ESourceMailAccount *ma = e_source_get_extension (l->data, E_SOURCE_EXTENSION_MAIL_ACCOUNT);
      g_autofree char *id_uid = e_source_mail_account_dup_identity_uid (ma);
      if (g_strcmp0 (id_uid, uid) == 0
          && (s = server_new (l->data, E_SOURCE_EXTENSION_MAIL_ACCOUNT, uid, address)))
        g_ptr_array_add (login->servers, s);
    }
  g_list_free_full (accounts, g_object_unref);
  if (e_source_has_extension (id, E_SOURCE_EXTENSION_MAIL_SUBMISSION))
    {
      ESourceMailSubmission *ms = e_source_get_extension (id, E_SOURCE_EXTENSION_MAIL_SUBMISSION);
      g_autofree char *tuid = e_source_mail_submission_dup_transport_uid (ms);
      g_autoptr (ESource) t = tuid ? e_source_registry_ref_source (login->registry, tuid) : NULL;
      if (t && e_source_has_extension (t, E_SOURCE_EXTENSION_MAIL_TRANSPORT)
          && (s = server_new (t, E_SOURCE_EXTENSION_MAIL_TRANSPORT, uid, address)))
        g_ptr_array_add (login->servers, s);
    }
}

static gint
by_uid (gconstpointer a, gconstpointer b)
{
  return g_strcmp0 (e_source_get_uid ((ESource *)a), e_source_get_uid ((ESource *)b));
}

CmEvoLogin *
cm_evo_login_new_sync (const char *identity_uid, GCancellable *cancellable, GError **error)
{
  g_autoptr (GError) local = NULL;
  ESourceRegistry *r = e_source_registry_new_sync (cancellable, &local);
  CmEvoLogin *login;
  GList *ids;
  gboolean found = FALSE;

  if (r == NULL)
    {
      g_set_error (error, CM_EVO_ERROR, CM_EVO_ERROR_REGISTRY,
                   "cannot reach Evolution's source registry (%s): log in to a desktop session "
                   "or start evolution-source-registry",
                   local->message);
      return NULL;
    }
  login = g_new0 (CmEvoLogin, 1);
  login->registry = r;
  login->servers = g_ptr_array_new_with_free_func ((GDestroyNotify)server_free);
  ids = g_list_sort (e_source_registry_list_sources (r, E_SOURCE_EXTENSION_MAIL_IDENTITY), by_uid);
  for (GList *l = ids; l; l = l->next)
    {
      ESourceMailIdentity *mi = e_source_get_extension (l->data, E_SOURCE_EXTENSION_MAIL_IDENTITY);
      g_autofree char *address = e_source_mail_identity_dup_address (mi);
      if (address == NULL || *address == '\0'
          || (identity_uid && strcmp (identity_uid, e_source_get_uid (l->data)) != 0))
        continue;
      found = TRUE;
      add_identity (login, l->data, address);
    }
  g_list_free_full (ids, g_object_unref);
  if (identity_uid && !found)
    {
      g_set_error (error, CM_EVO_ERROR, CM_EVO_ERROR_NOT_FOUND,
                   "no mail identity with UID %s: run 'cacmail evolution check' to list them",
                   identity_uid);
      cm_evo_login_free (login);
      return NULL;
    }
  return login;
}

/* What login does for @s once probed. */
static void
plan (CmEvoLoginServer *s)
{
  CmTbServerProbe *p = s->probe;

  g_clear_pointer (&s->message, g_free);
  s->set = p->error == NULL && p->offers_gssapi;
  s->refused = s->incoming && !s->set;
  if (s->set)
    s->message = g_strdup (g_strcmp0 (s->method, "GSSAPI") == 0
                             ? "offers Kerberos (GSSAPI) login and already uses it"
                             : "offers Kerberos (GSSAPI) login: the authentication method "
                               "becomes Kerberos (GSSAPI), and Evolution logs in with your "
                               "ticket");
  else if (p->error)
    s->message
      = g_strdup_printf ("%s:%u not checked: %s; nothing changed", p->host, p->port, p->error);
  else if (s->incoming)
    s->message = g_strdup_printf ("%s:%u does not offer Kerberos (GSSAPI) login: ask your mail "
                                  "administrator to enable it; nothing changed",
                                  p->host, p->port);
  else
    s->message = g_strdup ("does not offer Kerberos (GSSAPI) login: its authentication method "
                           "is left as it is");
}

void
cm_evo_login_probe_sync (CmEvoLogin *login, guint timeout_ms, GCancellable *cancellable)
{
  for (guint i = 0; i < login->servers->len; i++)
    {
      CmEvoLoginServer *s = g_ptr_array_index (login->servers, i);
      if (g_cancellable_is_cancelled (cancellable))
        return;
      cm_tb_probe_server_sync (s->probe, timeout_ms, cancellable);
      plan (s);
    }
}

CmEvoLoginServer *
cm_evo_login_get_refused (CmEvoLogin *login)
{
  for (guint i = 0; i < login->servers->len; i++)
    if (((CmEvoLoginServer *)g_ptr_array_index (login->servers, i))->refused)
      return g_ptr_array_index (login->servers, i);
  return NULL;
}

gint
cm_evo_login_apply_sync (CmEvoLogin *login, GCancellable *cancellable, GError **error)
{
  CmEvoLoginServer *refused = cm_evo_login_get_refused (login);
  gint n = 0;

  if (refused)
    {
      g_set_error (error, CM_ERROR, CM_ERROR_UNSAFE, "%s", refused->message);
      return -1;
    }
  for (guint i = 0; i < login->servers->len; i++)
    {
      CmEvoLoginServer *s = g_ptr_array_index (login->servers, i);
      g_autoptr (ESource) src = NULL;
      if (!s->set || g_strcmp0 (s->method, "GSSAPI") == 0)
        continue;
      src = e_source_registry_ref_source (login->registry, s->source_uid);
      if (src == NULL)
        {
          g_set_error (error, CM_EVO_ERROR, CM_EVO_ERROR_NOT_FOUND,
                       "the mail account %s went away meanwhile: run this again", s->source_uid);
          return -1;
        }
      e_source_authentication_set_method (
        e_source_get_extension (src, E_SOURCE_EXTENSION_AUTHENTICATION), "GSSAPI");
      if (!e_source_write_sync (src, cancellable, error))
        return -1;
      g_free (s->method);
      s->method = g_strdup ("GSSAPI");
      n++;
    }
  return n;
}

static const char *
security_name (gint32 socket_type)
{
  return socket_type == 3 ? "tls" : socket_type == 2 ? "starttls" : "none";
}

JsonNode *
cm_evo_login_to_json (CmEvoLogin *login)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "servers");
  json_builder_begin_array (b);
  for (guint i = 0; i < login->servers->len; i++)
    {
      CmEvoLoginServer *s = g_ptr_array_index (login->servers, i);
      json_builder_begin_object (b);
      cm_json_add_string_or_null (b, "identity", s->identity_uid);
      cm_json_add_string_or_null (b, "source", s->source_uid);
      cm_json_add_string_or_null (b, "kind", s->probe->kind);
      cm_json_add_string_or_null (b, "host", s->probe->host);
      json_builder_set_member_name (b, "port");
      json_builder_add_int_value (b, s->probe->port);
      cm_json_add_string_or_null (b, "security", security_name (s->probe->socket_type));
      cm_json_add_string_or_null (b, "method", s->method);
      json_builder_set_member_name (b, "offers_gssapi");
      json_builder_add_boolean_value (b, s->probe->offers_gssapi);
      cm_json_add_string_or_null (b, "error", s->probe->error);
      json_builder_set_member_name (b, "kerberos_auth");
      json_builder_add_boolean_value (b, s->set);
      json_builder_set_member_name (b, "refused");
      json_builder_add_boolean_value (b, s->refused);
      cm_json_add_string_or_null (b, "message", s->message);
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
  json_builder_end_object (b);
  return json_builder_get_root (b);
}
