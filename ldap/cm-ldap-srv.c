/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cm-ldap-srv.c: "domain" (--domain example.mil): the domain's LDAP servers from its DNS SRV
 * records _ldap._tcp.DOMAIN (as Active Directory publishes them), within a deadline, and its
 * Kerberos realm (the domain in upper case); both overridable ("uri", "realm"). */
#include "cm-ldap-private.h"
#include <string.h>

typedef struct
{
  GList *targets; /* GSrvTarget* */
  GError *error;
  gboolean done, timed_out;
  GCancellable *step;
} SrvWait;

static void
srv_done (GObject *source, GAsyncResult *res, gpointer data)
{
  SrvWait *w = data;

  w->targets = g_resolver_lookup_service_finish (G_RESOLVER (source), res, &w->error);
  w->done = TRUE;
}

static gboolean
srv_timeout (gpointer data)
{
  SrvWait *w = data;

  w->timed_out = TRUE;
  g_cancellable_cancel (w->step);
  return G_SOURCE_REMOVE;
}

static void
srv_cancel (GCancellable *caller, gpointer data)
{
  g_cancellable_cancel (data);
}

/* "ldap://HOST:PORT ..." of the targets, in the order GResolver sorted them (RFC 2782). */
static char *
targets_to_uris (GList *targets)
{
  g_autoptr (GString) out = g_string_new (NULL);

  for (GList *l = targets; l; l = l->next)
    {
      g_autofree char *host = g_strdup (g_srv_target_get_hostname (l->data));
      gsize n = strlen (host);
      if (n && host[n - 1] == '.')
        host[n - 1] = '\0';
      if (*host == '\0')
        continue; /* "." says: no service here */
      g_string_append_printf (out, "%sldap://%s:%u", out->len ? " " : "", host,
                              (guint)g_srv_target_get_port (l->data));
    }
  return out->len ? g_string_free (g_steal_pointer (&out), FALSE) : NULL;
}

char *
cm_ldap_srv_uris (const char *domain, int timeout, GCancellable *cancellable, GError **error)
{
  g_autoptr (GMainContext) ctx = g_main_context_new ();
  g_autoptr (GResolver) resolver = g_resolver_get_default ();
  g_autoptr (GSource) timer = g_timeout_source_new_seconds ((guint)timeout);
  SrvWait w = { NULL, NULL, FALSE, FALSE, g_cancellable_new () };
  gulong handler = 0;
  char *uris = NULL;

  g_main_context_push_thread_default (ctx);
  g_source_set_callback (timer, srv_timeout, &w, NULL);
  g_source_attach (timer, ctx);
  if (cancellable)
    handler = g_cancellable_connect (cancellable, G_CALLBACK (srv_cancel), w.step, NULL);
  g_resolver_lookup_service_async (resolver, "ldap", "tcp", domain, w.step, srv_done, &w);
  while (!w.done)
    g_main_context_iteration (ctx, TRUE);
  g_source_destroy (timer);
  if (cancellable)
    g_cancellable_disconnect (cancellable, handler);
  g_main_context_pop_thread_default (ctx);

  if (w.targets)
    uris = targets_to_uris (w.targets);
  if (uris == NULL)
    {
      if (cancellable && g_cancellable_is_cancelled (cancellable))
        g_set_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED,
                     "cancelled while looking up the LDAP servers of %s: nothing was written",
                     domain);
      else if (w.timed_out)
        g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_CONNECT,
                     "the DNS lookup of _ldap._tcp.%s timed out (no answer within %d s): check "
                     "the network and DNS, or pass --uri ldaps://HOST",
                     domain, timeout);
      else
        g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_CONNECT,
                     "no LDAP server found for the domain %s (DNS SRV _ldap._tcp.%s: %s): check "
                     "--domain, or pass --uri ldaps://HOST",
                     domain, domain, w.error ? w.error->message : "no usable record");
    }
  g_list_free_full (w.targets, (GDestroyNotify)g_srv_target_free);
  g_clear_error (&w.error);
  g_object_unref (w.step);
  return uris;
}

gboolean
cm_ldap_config_apply_domain (CmLdapConfig *cfg, GCancellable *cancellable, GError **error)
{
  const char *domain = cm_ldap_config_get (cfg, "domain");
  g_autofree char *uris = NULL, *realm = NULL;

  if (domain == NULL)
    return TRUE;
  if (cm_ldap_config_get (cfg, "realm") == NULL)
    {
      realm = g_ascii_strup (domain, -1);
      if (!cm_ldap_config_set (cfg, "realm", realm, error))
        return FALSE;
    }
  if (cm_ldap_config_get (cfg, "uri") != NULL)
    return TRUE;
  uris = cm_ldap_srv_uris (domain, cm_ldap_config_get_timeout (cfg), cancellable, error);
  return uris != NULL && cm_ldap_config_set (cfg, "uri", uris, error);
}
