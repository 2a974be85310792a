/* cm-ldap-conn.c: one LDAP connection over libldap: TLS (StartTLS or LDAPS, server cert
 * verified), simple / SASL EXTERNAL / SASL GSSAPI bind, reading entries, the one modify. */
#include "cm-ldap-private.h"
#include <ldap.h>
#include <sasl/sasl.h>
#include <string.h>

struct _CmLdapConn
{
  LDAP *ld;
  char *uri;
  gboolean tls;
  int timeout;
};

void
cm_ldap_entry_free (CmLdapEntry *e)
{
  if (e == NULL)
    return;
  g_free (e->dn);
  g_strfreev (e->mails);
  g_ptr_array_unref (e->certs);
  g_clear_pointer (&e->smime, g_bytes_unref);
  g_free (e->csn);
  g_free (e);
}

void
cm_ldap_conn_free (CmLdapConn *conn)
{
  if (conn == NULL)
    return;
  if (conn->ld)
    ldap_unbind_ext_s (conn->ld, NULL, NULL);
  g_free (conn->uri);
  g_free (conn);
}

/* The server's or libldap's extra text for the last error, or "". Caller frees. */
static char *
diagnostic (LDAP *ld)
{
  char *msg = NULL;
  char *out;

  if (ld == NULL || ldap_get_option (ld, LDAP_OPT_DIAGNOSTIC_MESSAGE, &msg) != LDAP_OPT_SUCCESS
      || msg == NULL || *msg == '\0' || strcmp (msg, "(unknown error code)") == 0)
    {
      ldap_memfree (msg);
      return g_strdup ("");
    }
  out = g_strdup_printf (": %s", msg);
  ldap_memfree (msg);
  return out;
}

const char *
cm_ldap_conn_get_uri (CmLdapConn *conn)
{
  return conn->uri;
}

gboolean
cm_ldap_conn_is_tls (CmLdapConn *conn)
{
  return conn->tls;
}

static gboolean
set_tls_options (LDAP *ld, CmLdapConfig *cfg, GError **error)
{
  const char *ca = cm_ldap_config_get (cfg, "ca-file");
  g_autofree char *def = cm_ldap_default_ca_file ();
  int hard = LDAP_OPT_X_TLS_HARD, zero = 0;
  const char *files[] = { "ca-file", "client-cert", "client-key" };

  if (ca == NULL && g_file_test (def, G_FILE_TEST_EXISTS))
    ca = def;
  for (gsize i = 0; i < G_N_ELEMENTS (files); i++)
    {
      const char *f = i == 0 ? ca : cm_ldap_config_get (cfg, files[i]);
      if (f && !g_file_test (f, G_FILE_TEST_IS_REGULAR))
        {
          g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_CONFIG,
                       "%s %s does not exist or is not a file: fix --%s or the config file",
                       files[i], f, files[i]);
          return FALSE;
        }
    }
  ldap_set_option (ld, LDAP_OPT_X_TLS_REQUIRE_CERT, &hard);
  if (ca)
    ldap_set_option (ld, LDAP_OPT_X_TLS_CACERTFILE, ca);
  if (g_strcmp0 (cm_ldap_config_get (cfg, "bind"), "external") == 0)
    {
      if (!cm_ldap_config_get (cfg, "client-cert") || !cm_ldap_config_get (cfg, "client-key"))
        {
          g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_CONFIG,
                       "bind external needs client-cert and client-key files (PEM); the card's "
                       "key cannot be used here: use gssapi after a PKINIT login instead");
          return FALSE;
        }
      ldap_set_option (ld, LDAP_OPT_X_TLS_CERTFILE, cm_ldap_config_get (cfg, "client-cert"));
      ldap_set_option (ld, LDAP_OPT_X_TLS_KEYFILE, cm_ldap_config_get (cfg, "client-key"));
    }
  if (ldap_set_option (ld, LDAP_OPT_X_TLS_NEWCTX, &zero) != LDAP_OPT_SUCCESS)
    {
      g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_TLS,
                   "cannot set up TLS with CA file %s and the client cert: check that they are "
                   "PEM files",
                   ca ? ca : "(system default)");
      return FALSE;
    }
  return TRUE;
}

/* Whether a TCP connection to the host and port of @uri opens (to tell a TLS failure from a
 * server that is down when libldap says only "Can't contact LDAP server"). */
static gboolean
tcp_reachable (const char *uri, int timeout)
{
  LDAPURLDesc *desc = NULL;
  g_autoptr (GSocketClient) client = g_socket_client_new ();
  g_autoptr (GSocketConnection) sc = NULL;
  gboolean ok = FALSE;

  if (ldap_url_parse (uri, &desc) != LDAP_URL_SUCCESS || desc->lud_host == NULL)
    goto out;
  g_socket_client_set_timeout (client, (guint)timeout);
  sc = g_socket_client_connect_to_host (
    client, desc->lud_host, (guint16)(desc->lud_port ? desc->lud_port : 636), NULL, NULL);
  ok = sc != NULL;
out:
  if (desc)
    ldap_free_urldesc (desc);
  return ok;
}

/* Connect one URI. Returns LDAP_SUCCESS, or the failing code with @error set. */
static int
connect_one (CmLdapConn *conn, CmLdapConfig *cfg, const char *uri, GError **error)
{
  gboolean ldaps = g_str_has_prefix (uri, "ldaps://");
  gboolean insecure = cm_ldap_config_get_bool (cfg, "insecure");
  struct timeval tv = { conn->timeout, 0 };
  int v3 = LDAP_VERSION3, rc;
  g_autofree char *diag = NULL;

  rc = ldap_initialize (&conn->ld, uri);
  if (rc != LDAP_SUCCESS)
    {
      g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_CONFIG,
                   "uri %s is not a valid LDAP URI (%s): fix --uri or the config file", uri,
                   ldap_err2string (rc));
      return rc;
    }
  ldap_set_option (conn->ld, LDAP_OPT_PROTOCOL_VERSION, &v3);
  ldap_set_option (conn->ld, LDAP_OPT_REFERRALS, LDAP_OPT_OFF);
  ldap_set_option (conn->ld, LDAP_OPT_NETWORK_TIMEOUT, &tv);
  ldap_set_option (conn->ld, LDAP_OPT_TIMEOUT, &tv);
  if ((ldaps || !insecure) && !set_tls_options (conn->ld, cfg, error))
    return LDAP_PARAM_ERROR;
  rc = ldap_connect (conn->ld);
  if (rc != LDAP_SUCCESS)
    {
      diag = diagnostic (conn->ld);
      if (ldaps && (rc == LDAP_CONNECT_ERROR || tcp_reachable (uri, conn->timeout)))
        g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_TLS,
                     "TLS with %s failed, the server cert could not be verified%s: pass the "
                     "CA that issued it with --ca-file (or ca-file in cacmail.conf)",
                     uri, diag);
      else
        g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_CONNECT,
                     "cannot reach the LDAP server %s (%s%s): check the URI and that the server "
                     "is up",
                     uri, ldap_err2string (rc), diag);
      return rc;
    }
  if (ldaps)
    conn->tls = TRUE;
  else if (!insecure)
    {
      rc = ldap_start_tls_s (conn->ld, NULL, NULL);
      if (rc != LDAP_SUCCESS)
        {
          diag = diagnostic (conn->ld);
          if (rc == LDAP_CONNECT_ERROR || rc == LDAP_SERVER_DOWN)
            g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_TLS,
                         "StartTLS with %s failed, the server cert could not be verified%s: "
                         "pass the CA that issued it with --ca-file (or ca-file in "
                         "cacmail.conf)",
                         uri, diag);
          else
            g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_TLS,
                         "the server %s refused StartTLS (%s%s): use its ldaps:// URI or ask "
                         "the directory admin to enable TLS; nothing was sent in clear text",
                         uri, ldap_err2string (rc), diag);
          return rc;
        }
      conn->tls = TRUE;
    }
  conn->uri = g_strdup (uri);
  return LDAP_SUCCESS;
}

CmLdapConn *
cm_ldap_conn_connect_sync (CmLdapConfig *cfg, GCancellable *cancellable, GError **error)
{
  g_autoptr (CmLdapConn) conn = g_new0 (CmLdapConn, 1);
  const char *uris = cm_ldap_config_get (cfg, "uri");
  g_auto (GStrv) list = NULL;
  g_autoptr (GError) last = NULL;

  conn->timeout = cm_ldap_config_get_timeout (cfg);
  if (uris == NULL)
    {
      g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_CONFIG,
                   "no LDAP server is set: pass --uri ldaps://HOST or set uri in the [ldap] "
                   "group of %s",
                   "cacmail.conf");
      return NULL;
    }
  list = g_strsplit_set (uris, " ,", -1);
  for (char **u = list; *u; u++)
    {
      int rc;
      if (**u == '\0')
        continue;
      if (g_cancellable_set_error_if_cancelled (cancellable, error))
        return NULL;
      g_clear_error (&last);
      if (conn->ld)
        {
          ldap_unbind_ext_s (conn->ld, NULL, NULL);
          conn->ld = NULL;
        }
      rc = connect_one (conn, cfg, *u, &last);
      if (rc == LDAP_SUCCESS)
        return g_steal_pointer (&conn);
      /* only an unreachable server makes us try the next one */
      if (!g_error_matches (last, CM_LDAP_ERROR, CM_LDAP_ERROR_CONNECT))
        break;
    }
  g_propagate_error (error, g_steal_pointer (&last));
  return NULL;
}

static int
sasl_interact (LDAP *ld, unsigned flags, void *defaults, void *in)
{
  for (sasl_interact_t *i = in; i->id != SASL_CB_LIST_END; i++)
    {
      i->result = i->defresult ? i->defresult : "";
      i->len = (unsigned)strlen (i->result);
    }
  return LDAP_SUCCESS;
}

static gboolean
bind_simple (CmLdapConn *conn, CmLdapConfig *cfg, const char *dn, CmLdapSecretFunc ask,
             gpointer ask_data, GError **error)
{
  const char *pwfile = cm_ldap_config_get (cfg, "password-file");
  char *pw = NULL;
  struct berval cred;
  int rc;
  gboolean ok = FALSE;
  g_autofree char *diag = NULL;

  if (dn == NULL)
    {
      g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_CONFIG,
                   "a simple bind needs a DN: pass --bind-dn or --entry-dn");
      goto out;
    }
  if (pwfile)
    pw = cm_ldap_secret_read_file (pwfile, error);
  else if (ask)
    pw = ask (CM_LDAP_SECRET_PASSWORD, dn, ask_data, error);
  else
    g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_CONFIG,
                 "the LDAP password for %s is needed: pass --password-file FILE", dn);
  if (pw == NULL)
    goto out;
  if (*pw == '\0')
    {
      /* an empty password would be an unauthenticated bind (RFC 4513 5.1.2) */
      g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_AUTH,
                   "the LDAP password for %s is empty: type the password", dn);
      goto out;
    }
  cred.bv_val = pw;
  cred.bv_len = strlen (pw);
  rc = ldap_sasl_bind_s (conn->ld, dn, LDAP_SASL_SIMPLE, &cred, NULL, NULL, NULL);
  if (rc == LDAP_INVALID_CREDENTIALS)
    g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_AUTH,
                 "the LDAP server refused the password for %s (invalid credentials): check "
                 "the password and the DN",
                 dn);
  else if (rc != LDAP_SUCCESS)
    {
      diag = diagnostic (conn->ld);
      g_set_error (error, CM_LDAP_ERROR,
                   rc == LDAP_SERVER_DOWN ? CM_LDAP_ERROR_CONNECT : CM_LDAP_ERROR_AUTH,
                   "simple bind as %s to %s failed (%s%s): check the DN and the server", dn,
                   conn->uri, ldap_err2string (rc), diag);
    }
  else
    ok = TRUE;
out:
  cm_ldap_secret_free (pw);
  return ok;
}

gboolean
cm_ldap_conn_bind_sync (CmLdapConn *conn, CmLdapConfig *cfg, const char *entry_dn,
                        CmLdapSecretFunc ask, gpointer ask_data, GCancellable *cancellable,
                        GError **error)
{
  const char *method = cm_ldap_config_get (cfg, "bind");
  const char *dn = cm_ldap_config_get (cfg, "bind-dn");
  g_autofree char *diag = NULL;
  int rc;

  if (g_cancellable_set_error_if_cancelled (cancellable, error))
    return FALSE;
  if (method == NULL || strcmp (method, "simple") == 0)
    return bind_simple (conn, cfg, dn ? dn : entry_dn, ask, ask_data, error);
  if (strcmp (method, "external") == 0)
    {
      rc = ldap_sasl_interactive_bind_s (conn->ld, NULL, "EXTERNAL", NULL, NULL, LDAP_SASL_QUIET,
                                         sasl_interact, NULL);
      if (rc != LDAP_SUCCESS)
        {
          diag = diagnostic (conn->ld);
          g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_AUTH,
                       "SASL EXTERNAL bind to %s failed (%s%s): check that the server maps "
                       "the client cert %s to your entry",
                       conn->uri, ldap_err2string (rc), diag,
                       cm_ldap_config_get (cfg, "client-cert"));
          return FALSE;
        }
      return TRUE;
    }
  /* gssapi: the Kerberos ticket of the session (kinit, or PKINIT with the card) */
  ldap_set_option (conn->ld, LDAP_OPT_X_SASL_NOCANON, LDAP_OPT_ON);
  if (conn->tls)
    ldap_set_option (conn->ld, LDAP_OPT_X_SASL_SECPROPS, "maxssf=0"); /* AD over TLS */
  rc = ldap_sasl_interactive_bind_s (conn->ld, NULL, "GSSAPI", NULL, NULL, LDAP_SASL_QUIET,
                                     sasl_interact, NULL);
  if (rc != LDAP_SUCCESS)
    {
      diag = diagnostic (conn->ld);
      g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_AUTH,
                   "SASL GSSAPI bind to %s failed (%s%s): get a Kerberos ticket first (kinit, "
                   "or log in with the card) and check that the server has a keytab",
                   conn->uri, ldap_err2string (rc), diag);
      return FALSE;
    }
  return TRUE;
}

char *
cm_ldap_conn_whoami (CmLdapConn *conn)
{
  struct berval *id = NULL;
  char *out = NULL;

  if (ldap_whoami_s (conn->ld, &id, NULL, NULL) == LDAP_SUCCESS && id)
    out = g_strndup (id->bv_val, id->bv_len);
  ber_bvfree (id);
  return out;
}

gboolean
cm_ldap_conn_has_assertion (CmLdapConn *conn)
{
  char *attrs[] = { "supportedControl", NULL };
  LDAPMessage *res = NULL, *e;
  struct berval **vals = NULL;
  gboolean found = FALSE;
  struct timeval tv = { conn->timeout, 0 };

  if (ldap_search_ext_s (conn->ld, "", LDAP_SCOPE_BASE, "(objectClass=*)", attrs, 0, NULL, NULL,
                         &tv, 1, &res)
        == LDAP_SUCCESS
      && (e = ldap_first_entry (conn->ld, res)) != NULL
      && (vals = ldap_get_values_len (conn->ld, e, "supportedControl")) != NULL)
    for (int i = 0; vals[i]; i++)
      if (vals[i]->bv_len == strlen (LDAP_CONTROL_ASSERT)
          && memcmp (vals[i]->bv_val, LDAP_CONTROL_ASSERT, vals[i]->bv_len) == 0)
        found = TRUE;
  ldap_value_free_len (vals);
  ldap_msgfree (res);
  return found;
}

/* "userCertificate;binary" -> "userCertificate" compared without case. */
static gboolean
attr_is (const char *attr, const char *name)
{
  gsize n = strlen (name);

  return g_ascii_strncasecmp (attr, name, n) == 0 && (attr[n] == '\0' || attr[n] == ';');
}

static CmLdapEntry *
entry_from_message (LDAP *ld, LDAPMessage *msg)
{
  CmLdapEntry *e = g_new0 (CmLdapEntry, 1);
  g_autoptr (GPtrArray) mails = g_ptr_array_new ();
  BerElement *ber = NULL;
  char *dn = ldap_get_dn (ld, msg);

  e->dn = g_strdup (dn ? dn : "");
  ldap_memfree (dn);
  e->certs = g_ptr_array_new_with_free_func ((GDestroyNotify)g_bytes_unref);
  for (char *a = ldap_first_attribute (ld, msg, &ber); a; a = ldap_next_attribute (ld, msg, ber))
    {
      struct berval **v = ldap_get_values_len (ld, msg, a);
      for (int i = 0; v && v[i]; i++)
        {
          if (attr_is (a, "mail"))
            g_ptr_array_add (mails, g_strndup (v[i]->bv_val, v[i]->bv_len));
          else if (attr_is (a, "userCertificate"))
            g_ptr_array_add (e->certs, g_bytes_new (v[i]->bv_val, v[i]->bv_len));
          else if (attr_is (a, "userSMIMECertificate"))
            {
              if (e->smime == NULL)
                e->smime = g_bytes_new (v[i]->bv_val, v[i]->bv_len);
              e->n_smime++;
            }
          else if (attr_is (a, "entryCSN") && e->csn == NULL)
            e->csn = g_strndup (v[i]->bv_val, v[i]->bv_len);
        }
      ldap_value_free_len (v);
      ldap_memfree (a);
    }
  ber_free (ber, 0);
  g_ptr_array_add (mails, NULL);
  e->mails = (char **)g_ptr_array_free (g_steal_pointer (&mails), FALSE);
  return e;
}

GPtrArray *
cm_ldap_conn_read_entries (CmLdapConn *conn, CmLdapConfig *cfg, const char *dn, const char *filter,
                           GError **error)
{
  char *attrs[] = { "mail", CM_LDAP_ATTR_CERT, CM_LDAP_ATTR_SMIME, "entryCSN", NULL };
  const char *base = dn ? dn : cm_ldap_config_get (cfg, "base");
  struct timeval tv = { conn->timeout, 0 };
  LDAPMessage *res = NULL;
  GPtrArray *out = NULL;
  g_autofree char *diag = NULL;
  int rc;

  if (base == NULL)
    {
      g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_CONFIG,
                   "no search base is set: pass --base DN (or --entry-dn DN), or set base in "
                   "cacmail.conf");
      return NULL;
    }
  rc = ldap_search_ext_s (conn->ld, base, dn ? LDAP_SCOPE_BASE : LDAP_SCOPE_SUBTREE,
                          dn ? "(objectClass=*)" : filter, attrs, 0, NULL, NULL, &tv, 10, &res);
  if (rc == LDAP_NO_SUCH_OBJECT && dn)
    rc = LDAP_SUCCESS;
  if (rc != LDAP_SUCCESS && rc != LDAP_SIZELIMIT_EXCEEDED)
    {
      diag = diagnostic (conn->ld);
      g_set_error (error, CM_LDAP_ERROR,
                   rc == LDAP_SERVER_DOWN || rc == LDAP_TIMEOUT ? CM_LDAP_ERROR_CONNECT
                   : rc == LDAP_NO_SUCH_OBJECT                  ? CM_LDAP_ERROR_CONFIG
                                                                : CM_LDAP_ERROR_SERVER,
                   "reading %s from %s failed (%s%s): %s", dn ? dn : base, conn->uri,
                   ldap_err2string (rc), diag,
                   rc == LDAP_NO_SUCH_OBJECT ? "check --base" : "check the server and retry");
      ldap_msgfree (res);
      return NULL;
    }
  out = g_ptr_array_new_with_free_func ((GDestroyNotify)cm_ldap_entry_free);
  for (LDAPMessage *m = ldap_first_entry (conn->ld, res); m; m = ldap_next_entry (conn->ld, m))
    g_ptr_array_add (out, entry_from_message (conn->ld, m));
  ldap_msgfree (res);
  return out;
}

static struct berval **
to_bervals (GPtrArray *values, struct berval *storage)
{
  struct berval **v = g_new0 (struct berval *, values->len + 1);

  for (guint i = 0; i < values->len; i++)
    {
      gsize n = 0;
      storage[i].bv_val = (char *)g_bytes_get_data (g_ptr_array_index (values, i), &n);
      storage[i].bv_len = n;
      v[i] = &storage[i];
    }
  return v;
}

gboolean
cm_ldap_conn_modify (CmLdapConn *conn, const char *dn, GPtrArray *old_certs, GPtrArray *new_certs,
                     GBytes *smime, gboolean delete_smime, const char *csn, GError **error)
{
  struct berval *old_bv = g_new0 (struct berval, old_certs->len + 1);
  struct berval *new_bv = g_new0 (struct berval, new_certs->len + 1);
  struct berval smime_bv = { 0, NULL }, *smime_v[] = { &smime_bv, NULL };
  LDAPMod del = { 0 }, add = { 0 }, rep = { 0 };
  LDAPMod *mods[4] = { NULL };
  LDAPControl *ctrl = NULL, *ctrls[2] = { NULL, NULL };
  g_autofree char *assertion = NULL, *diag = NULL;
  gboolean ok = FALSE;
  int n = 0, rc;

  del.mod_op = LDAP_MOD_DELETE | LDAP_MOD_BVALUES;
  del.mod_type = CM_LDAP_ATTR_CERT;
  del.mod_bvalues = to_bervals (old_certs, old_bv);
  add.mod_op = LDAP_MOD_ADD | LDAP_MOD_BVALUES;
  add.mod_type = CM_LDAP_ATTR_CERT;
  add.mod_bvalues = to_bervals (new_certs, new_bv);
  rep.mod_type = CM_LDAP_ATTR_SMIME;
  if (old_certs->len)
    mods[n++] = &del;
  if (new_certs->len)
    mods[n++] = &add;
  if (smime)
    {
      gsize len = 0;
      smime_bv.bv_val = (char *)g_bytes_get_data (smime, &len);
      smime_bv.bv_len = len;
      rep.mod_op = LDAP_MOD_REPLACE | LDAP_MOD_BVALUES;
      rep.mod_bvalues = smime_v;
      mods[n++] = &rep;
    }
  else if (delete_smime)
    {
      rep.mod_op = LDAP_MOD_DELETE | LDAP_MOD_BVALUES;
      mods[n++] = &rep;
    }
  if (csn)
    {
      assertion = g_strdup_printf ("(entryCSN=%s)", csn);
      rc = ldap_create_assertion_control (conn->ld, assertion, 1, &ctrl);
      if (rc != LDAP_SUCCESS)
        {
          g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_FAILED,
                       "cannot build the assertion control for %s (%s): report this bug", dn,
                       ldap_err2string (rc));
          goto out;
        }
      ctrls[0] = ctrl;
    }
  rc = ldap_modify_ext_s (conn->ld, dn, mods, csn ? ctrls : NULL, NULL);
  diag = diagnostic (conn->ld);
  switch (rc)
    {
    case LDAP_SUCCESS: ok = TRUE; break;
    case LDAP_ASSERTION_FAILED:
    case LDAP_NO_SUCH_ATTRIBUTE:
    case LDAP_TYPE_OR_VALUE_EXISTS:
      g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_CONFLICT,
                   "%s changed on the server since cacmail read it (%s): nothing was written; "
                   "run cacmail republish again",
                   dn, ldap_err2string (rc));
      break;
    case LDAP_INSUFFICIENT_ACCESS:
      g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_SERVER,
                   "the server does not let you write the certificates of %s (insufficient "
                   "access%s): ask the directory admin to let you (self) write userCertificate "
                   "and userSMIMECertificate",
                   dn, diag);
      break;
    case LDAP_SERVER_DOWN:
    case LDAP_UNAVAILABLE:
    case LDAP_BUSY:
    case LDAP_TIMEOUT:
      g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_CONNECT,
                   "the connection to %s was lost during the write (%s): the entry is either "
                   "unchanged or fully updated; run cacmail republish again",
                   conn->uri, ldap_err2string (rc));
      break;
    default:
      g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_SERVER,
                   "the server refused the change to %s (%s%s): nothing was written; show this "
                   "message to the directory admin",
                   dn, ldap_err2string (rc), diag);
      break;
    }
out:
  if (ctrl)
    ldap_control_free (ctrl);
  g_free (del.mod_bvalues);
  g_free (add.mod_bvalues);
  g_free (old_bv);
  g_free (new_bv);
  return ok;
}
