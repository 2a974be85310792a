/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cm-ldap-conn.c: one LDAP connection over libldap: our own TCP connect handed to libldap, TLS
 * (StartTLS or LDAPS, server cert verified unless "insecure"), simple / SASL EXTERNAL / SASL
 * GSSAPI bind. Every network step runs under the connection's watchdog (cm-ldap-watch.c): it ends
 * at the "timeout" deadline or when the caller's GCancellable fires, whatever libldap does. */
#include "cm-ldap-private.h"
#include <fcntl.h>
#include <ldap.h>
#include <sasl/sasl.h>
#include <string.h>
#include <unistd.h>

/* libldap exports ldap_init_fd() (since 2.4) but declares it only in its private ldap_pvt.h */
extern int ldap_init_fd (ber_socket_t fd, int proto, const char *url, LDAP **ldp);
#define CM_LDAP_PROTO_TCP 1
/* the least SASL security layer (bits) that protects a connection without TLS: DES and up */
#define CM_LDAP_MIN_SSF 56

struct _CmLdapConn
{
  LDAP *ld;
  CmLdapWatch *watch;
  char *uri;
  gboolean tls;
  gboolean need_ssf; /* no TLS: the GSSAPI bind must bring a security layer */
  gboolean plain_ok; /* allow-plain-ldap */
  guint ssf;         /* SASL security layer of the bind, bits */
  gboolean cancellable;
  int timeout;
  CmLdapRootDse dse; /* read right after connecting */
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

static void
conn_close (CmLdapConn *conn)
{
  /* the watchdog first: it must never shut down a socket number libldap has closed */
  g_clear_pointer (&conn->watch, cm_ldap_watch_free);
  if (conn->ld)
    ldap_unbind_ext_s (conn->ld, NULL, NULL);
  conn->ld = NULL;
  conn->tls = conn->need_ssf = FALSE;
  conn->ssf = 0;
  cm_ldap_root_dse_clear (&conn->dse);
}

void
cm_ldap_conn_free (CmLdapConn *conn)
{
  if (conn == NULL)
    return;
  conn_close (conn);
  g_free (conn->uri);
  g_free (conn);
}

/* The server's or libldap's extra text for the last error, or "". Caller frees. */
char *
cm_ldap_conn_diagnostic (CmLdapConn *conn)
{
  char *msg = NULL;
  char *out;

  if (conn->ld == NULL
      || ldap_get_option (conn->ld, LDAP_OPT_DIAGNOSTIC_MESSAGE, &msg) != LDAP_OPT_SUCCESS
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

const CmLdapRootDse *
cm_ldap_conn_get_root_dse (CmLdapConn *conn)
{
  return &conn->dse;
}

gboolean
cm_ldap_conn_is_ad (CmLdapConn *conn)
{
  return conn->dse.kind == CM_LDAP_KIND_AD;
}

const char *
cm_ldap_conn_cert_attr (CmLdapConn *conn)
{
  return cm_ldap_conn_is_ad (conn) ? "userCertificate" : CM_LDAP_ATTR_CERT;
}

char *
cm_ldap_conn_sasl_user (CmLdapConn *conn)
{
  char *user = NULL, *out;

  if (conn->ld == NULL || ldap_get_option (conn->ld, LDAP_OPT_X_SASL_USERNAME, &user) != 0
      || user == NULL)
    return NULL;
  out = g_strdup (user);
  ldap_memfree (user);
  return out;
}

int
cm_ldap_conn_get_timeout (CmLdapConn *conn)
{
  return conn->timeout;
}

guint
cm_ldap_conn_get_ssf (CmLdapConn *conn)
{
  return conn->ssf;
}

gboolean
cm_ldap_conn_is_protected (CmLdapConn *conn)
{
  return conn->tls || conn->ssf >= CM_LDAP_MIN_SSF;
}

void
cm_ldap_conn_set_cancellable (CmLdapConn *conn, gboolean cancellable)
{
  conn->cancellable = cancellable;
}

gpointer
cm_ldap_conn_get_ld (CmLdapConn *conn)
{
  return conn->ld;
}

gboolean
cm_ldap_conn_step_begin (CmLdapConn *conn, GError **error)
{
  return cm_ldap_watch_begin (conn->watch, conn->timeout, conn->cancellable, error) != NULL;
}

gboolean
cm_ldap_conn_step_end (CmLdapConn *conn, const char *what, GError **error)
{
  switch (cm_ldap_watch_end (conn->watch))
    {
    case CM_LDAP_WATCH_OK: return TRUE;
    case CM_LDAP_WATCH_CANCELLED:
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED,
                   "cancelled while %s %s: nothing was "
                   "written",
                   what, conn->uri);
      return FALSE;
    case CM_LDAP_WATCH_TIMED_OUT:
    default:
      g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_CONNECT,
                   "%s %s timed out (no answer within %d s): check that the server is up, or "
                   "raise timeout in cacmail.conf",
                   what, conn->uri, conn->timeout);
      return FALSE;
    }
}

static gboolean
set_tls_options (LDAP *ld, CmLdapConfig *cfg, GError **error)
{
  const char *ca = cm_ldap_config_get (cfg, "ca-file");
  g_autofree char *def = cm_ldap_default_ca_file ();
  int verify
    = cm_ldap_config_get_bool (cfg, "insecure") ? LDAP_OPT_X_TLS_NEVER : LDAP_OPT_X_TLS_HARD;
  int zero = 0;
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
  ldap_set_option (ld, LDAP_OPT_X_TLS_REQUIRE_CERT, &verify);
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

/* TCP to the host and port of @desc within the deadline; the socket is blocking (libldap
 * expects that) and close-on-exec. Returns the fd or -1 with @error. */
static int
tcp_connect (CmLdapConn *conn, LDAPURLDesc *desc, gboolean ldaps, GError **error)
{
  g_autoptr (GSocketClient) client = g_socket_client_new ();
  g_autoptr (GSocketConnectable) addr = NULL;
  g_autoptr (GSocketConnection) sc = NULL;
  g_autoptr (GError) local = NULL;
  GCancellable *step;
  int fd, flags;

  addr = g_network_address_new (desc->lud_host ? desc->lud_host : "localhost",
                                (guint16)(desc->lud_port ? desc->lud_port
                                          : ldaps        ? 636
                                                         : 389));
  g_socket_client_set_enable_proxy (client, FALSE);
  step = cm_ldap_watch_begin (conn->watch, conn->timeout, TRUE, error);
  if (step == NULL)
    return -1;
  sc = g_socket_client_connect (client, addr, step, &local);
  if (!cm_ldap_conn_step_end (conn, "connecting to", error))
    return -1;
  if (sc == NULL)
    {
      g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_CONNECT,
                   "cannot reach the LDAP server %s (%s): check the URI and that the server is up",
                   conn->uri, local->message);
      return -1;
    }
  fd = fcntl (g_socket_get_fd (g_socket_connection_get_socket (sc)), F_DUPFD_CLOEXEC, 0);
  if (fd < 0 || (flags = fcntl (fd, F_GETFL)) < 0 || fcntl (fd, F_SETFL, flags & ~O_NONBLOCK) < 0)
    {
      g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_FAILED,
                   "cannot take over the socket to %s (%s): report this bug", conn->uri,
                   g_strerror (errno));
      if (fd >= 0)
        close (fd);
      return -1;
    }
  return fd; /* @sc closes its own copy */
}

/* TCP, then libldap on that socket. */
static gboolean
open_ld (CmLdapConn *conn, CmLdapConfig *cfg, gboolean ldaps, GError **error)
{
  LDAPURLDesc *desc = NULL;
  int v3 = LDAP_VERSION3, rc, fd;

  if (ldap_url_parse (conn->uri, &desc) != LDAP_URL_SUCCESS)
    {
      g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_CONFIG,
                   "uri %s is not a valid LDAP URI: fix --uri or the config file", conn->uri);
      return FALSE;
    }
  fd = tcp_connect (conn, desc, ldaps, error);
  ldap_free_urldesc (desc);
  if (fd < 0)
    return FALSE;
  rc = ldap_init_fd (fd, CM_LDAP_PROTO_TCP, conn->uri, &conn->ld);
  if (rc != LDAP_SUCCESS)
    {
      close (fd);
      g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_CONFIG,
                   "uri %s is not a valid LDAP URI (%s): fix --uri or the config file", conn->uri,
                   ldap_err2string (rc));
      return FALSE;
    }
  cm_ldap_watch_set_fd (conn->watch, fd);
  ldap_set_option (conn->ld, LDAP_OPT_PROTOCOL_VERSION, &v3);
  ldap_set_option (conn->ld, LDAP_OPT_REFERRALS, LDAP_OPT_OFF);
  return set_tls_options (conn->ld, cfg, error);
}

/* The server answered StartTLS with an error: go on without TLS only where that is safe. */
static gboolean
no_starttls (CmLdapConn *conn, CmLdapConfig *cfg, int rc, GError **error)
{
  g_autofree char *diag = cm_ldap_conn_diagnostic (conn);

  if (conn->plain_ok)
    return TRUE;
  if (g_strcmp0 (cm_ldap_config_get (cfg, "bind"), "gssapi") == 0)
    {
      conn->need_ssf = TRUE; /* GSSAPI's own security layer, checked at the bind */
      return TRUE;
    }
  if (cm_ldap_config_get_bool (cfg, "insecure"))
    g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_CONFIG,
                 "the server %s refused StartTLS (%s%s) and insecure no longer allows plain "
                 "LDAP (it only skips checking the server certificate): for a test server "
                 "without TLS set allow-plain-ldap = true (or --allow-plain-ldap)",
                 conn->uri, ldap_err2string (rc), diag);
  else
    g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_TLS,
                 "the server %s refused StartTLS (%s%s): use its ldaps:// URI or ask the "
                 "directory admin to enable TLS; nothing was sent in clear text",
                 conn->uri, ldap_err2string (rc), diag);
  return FALSE;
}

static void
tls_failed (CmLdapConn *conn, CmLdapConfig *cfg, const char *how, GError **error)
{
  g_autofree char *diag = cm_ldap_conn_diagnostic (conn);

  if (cm_ldap_config_get_bool (cfg, "insecure"))
    g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_TLS,
                 "%s with %s failed%s: check that the URI names an LDAP server with TLS", how,
                 conn->uri, diag);
  else
    g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_TLS,
                 "%s with %s failed, the server cert could not be verified%s: pass the CA that "
                 "issued it with --ca-file (or ca-file in cacmail.conf)",
                 how, conn->uri, diag);
}

static gboolean start_tls (CmLdapConn *conn, CmLdapConfig *cfg, gboolean ldaps, GError **error);

/* Active Directory takes GSSAPI only with its own sign and seal, and refuses that inside TLS
 * (Samba refuses GSSAPI over TLS altogether): on an ldap:// URI, connect again without StartTLS;
 * the bind must then bring a SASL security layer (checked after it). */
static gboolean
reconnect_for_sign_and_seal (CmLdapConn *conn, CmLdapConfig *cfg, GCancellable *cancellable,
                             GError **error)
{
  CmLdapRootDse dse = conn->dse;

  memset (&conn->dse, 0, sizeof conn->dse);
  conn_close (conn);
  conn->dse = dse;
  conn->watch = cm_ldap_watch_new (cancellable);
  if (!open_ld (conn, cfg, FALSE, error))
    return FALSE;
  conn->need_ssf = TRUE;
  return TRUE;
}

/* Connect one URI: TCP, then LDAPS or StartTLS; then the root DSE. */
static gboolean
connect_one (CmLdapConn *conn, CmLdapConfig *cfg, const char *uri, GCancellable *cancellable,
             GError **error)
{
  gboolean ldaps = g_str_has_prefix (uri, "ldaps://");

  g_free (conn->uri);
  conn->uri = g_strdup (uri);
  conn->watch = cm_ldap_watch_new (cancellable);
  if (!open_ld (conn, cfg, ldaps, error) || !start_tls (conn, cfg, ldaps, error)
      || !cm_ldap_conn_read_root_dse (conn, &conn->dse, error))
    return FALSE;
  if (conn->dse.kind == CM_LDAP_KIND_AD && conn->tls && !ldaps
      && g_strcmp0 (cm_ldap_config_get (cfg, "bind"), "gssapi") == 0)
    return reconnect_for_sign_and_seal (conn, cfg, cancellable, error);
  return TRUE;
}

/* LDAPS handshake or StartTLS; without TLS only where no_starttls allows it. */
static gboolean
start_tls (CmLdapConn *conn, CmLdapConfig *cfg, gboolean ldaps, GError **error)
{
  int rc;

  if (!cm_ldap_conn_step_begin (conn, error))
    return FALSE;
  rc = ldaps ? ldap_install_tls (conn->ld) : ldap_start_tls_s (conn->ld, NULL, NULL);
  if (!cm_ldap_conn_step_end (conn, ldaps ? "the TLS handshake with" : "StartTLS with", error))
    return FALSE;
  if (rc == LDAP_SUCCESS)
    conn->tls = TRUE;
  else if (!ldaps && rc > 0)
    return no_starttls (conn, cfg, rc, error); /* a result code: the server said no */
  else
    {
      tls_failed (conn, cfg, ldaps ? "TLS" : "StartTLS", error);
      return FALSE;
    }
  return TRUE;
}

CmLdapConn *
cm_ldap_conn_connect_sync (CmLdapConfig *cfg, GCancellable *cancellable, GError **error)
{
  g_autoptr (CmLdapConn) conn = g_new0 (CmLdapConn, 1);
  const char *uris = cm_ldap_config_get (cfg, "uri");
  g_auto (GStrv) list = NULL;
  g_autoptr (GError) last = NULL;

  conn->timeout = cm_ldap_config_get_timeout (cfg);
  conn->plain_ok = cm_ldap_config_get_bool (cfg, "allow-plain-ldap");
  conn->cancellable = TRUE;
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
      if (**u == '\0')
        continue;
      if (g_cancellable_set_error_if_cancelled (cancellable, error))
        return NULL;
      g_clear_error (&last);
      conn_close (conn);
      if (connect_one (conn, cfg, *u, cancellable, &last))
        return g_steal_pointer (&conn);
      /* only a server that cannot be reached or does not answer makes us try the next one */
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

/* The simple-bind password from "password-file" or @ask. NULL with @error. */
static char *
get_password (CmLdapConfig *cfg, const char *dn, CmLdapSecretFunc ask, gpointer ask_data,
              GError **error)
{
  const char *pwfile = cm_ldap_config_get (cfg, "password-file");
  char *pw = NULL;

  if (pwfile)
    pw = cm_ldap_secret_read_file_as (pwfile, "password file", error);
  else if (ask)
    pw = ask (CM_LDAP_SECRET_PASSWORD, dn, ask_data, error);
  else
    g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_CONFIG,
                 "the LDAP password for %s is needed: pass --password-file FILE", dn);
  if (pw && *pw == '\0')
    {
      /* an empty password would be an unauthenticated bind (RFC 4513 5.1.2) */
      g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_AUTH,
                   "the LDAP password for %s is empty: type the password", dn);
      g_clear_pointer (&pw, cm_ldap_secret_free);
    }
  return pw;
}

static gboolean
bind_simple (CmLdapConn *conn, CmLdapConfig *cfg, const char *dn, CmLdapSecretFunc ask,
             gpointer ask_data, GError **error)
{
  char *pw = NULL;
  struct berval cred;
  int rc;
  gboolean ok = FALSE;
  g_autofree char *diag = NULL;

  if (dn == NULL)
    {
      g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_CONFIG,
                   "a simple bind needs a DN: pass --bind-dn or --entry-dn");
      return FALSE;
    }
  pw = get_password (cfg, dn, ask, ask_data, error);
  if (pw == NULL || !cm_ldap_conn_step_begin (conn, error))
    goto out;
  cred.bv_val = pw;
  cred.bv_len = strlen (pw);
  rc = ldap_sasl_bind_s (conn->ld, dn, LDAP_SASL_SIMPLE, &cred, NULL, NULL, NULL);
  if (!cm_ldap_conn_step_end (conn, "binding to", error))
    goto out;
  if (rc == LDAP_INVALID_CREDENTIALS)
    g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_AUTH,
                 "the LDAP server refused the password for %s (invalid credentials): check "
                 "the password and the DN",
                 dn);
  else if (rc != LDAP_SUCCESS)
    {
      diag = cm_ldap_conn_diagnostic (conn);
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

static gboolean
bind_external (CmLdapConn *conn, CmLdapConfig *cfg, GError **error)
{
  g_autofree char *diag = NULL;
  int rc;

  if (!cm_ldap_conn_step_begin (conn, error))
    return FALSE;
  rc = ldap_sasl_interactive_bind_s (conn->ld, NULL, "EXTERNAL", NULL, NULL, LDAP_SASL_QUIET,
                                     sasl_interact, NULL);
  if (!cm_ldap_conn_step_end (conn, "binding to", error))
    return FALSE;
  if (rc != LDAP_SUCCESS)
    {
      diag = cm_ldap_conn_diagnostic (conn);
      g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_AUTH,
                   "SASL EXTERNAL bind to %s failed (%s%s): check that the server maps "
                   "the client cert %s to your entry",
                   conn->uri, ldap_err2string (rc), diag, cm_ldap_config_get (cfg, "client-cert"));
      return FALSE;
    }
  return TRUE;
}

/* GSSAPI with the session's Kerberos ticket (kinit, or PKINIT with the card). Over TLS without
 * a SASL layer (Active Directory refuses one inside TLS); without TLS only with a layer of at
 * least CM_LDAP_MIN_SSF bits, unless allow-plain-ldap. */
static gboolean
bind_gssapi (CmLdapConn *conn, GError **error)
{
  g_autofree char *diag = NULL;
  ber_len_t ssf = 0;
  int rc;

  ldap_set_option (conn->ld, LDAP_OPT_X_SASL_NOCANON, LDAP_OPT_ON);
  if (conn->tls)
    ldap_set_option (conn->ld, LDAP_OPT_X_SASL_SECPROPS, "maxssf=0");
  else if (conn->need_ssf)
    ldap_set_option (conn->ld, LDAP_OPT_X_SASL_SECPROPS, "minssf=56");
  if (!cm_ldap_conn_step_begin (conn, error))
    return FALSE;
  rc = ldap_sasl_interactive_bind_s (conn->ld, NULL, "GSSAPI", NULL, NULL, LDAP_SASL_QUIET,
                                     sasl_interact, NULL);
  if (!cm_ldap_conn_step_end (conn, "binding to", error))
    return FALSE;
  if (rc != LDAP_SUCCESS)
    {
      diag = cm_ldap_conn_diagnostic (conn);
      g_set_error (
        error, CM_LDAP_ERROR, CM_LDAP_ERROR_AUTH, "SASL GSSAPI bind to %s failed (%s%s): %s",
        conn->uri, ldap_err2string (rc), diag,
        conn->tls && cm_ldap_conn_is_ad (conn)
          ? "Active Directory takes GSSAPI with sign and seal, not inside TLS: use "
            "its ldap:// URI (cacmail then signs and seals), or a simple bind over "
            "ldaps://"
        : conn->need_ssf ? "get a Kerberos ticket first (kinit, or log in with the card) and check "
                           "that the server has a keytab and offers a SASL security layer (the "
                           "server has no TLS)"
                         : "get a Kerberos ticket first (kinit, or log in with the card) and check "
                           "that the server has a keytab");
      return FALSE;
    }
  if (ldap_get_option (conn->ld, LDAP_OPT_X_SASL_SSF, &ssf) == LDAP_OPT_SUCCESS)
    conn->ssf = (guint)ssf;
  if (conn->need_ssf && conn->ssf < CM_LDAP_MIN_SSF)
    {
      g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_TLS,
                   "the server %s has no TLS and its GSSAPI bind gave a SASL security layer of "
                   "%u bits (at least %d needed): use its ldaps:// URI or ask the directory "
                   "admin to enable TLS",
                   conn->uri, conn->ssf, CM_LDAP_MIN_SSF);
      return FALSE;
    }
  return TRUE;
}

gboolean
cm_ldap_conn_bind_id_sync (CmLdapConn *conn, CmLdapConfig *cfg, const char *id,
                           CmLdapSecretFunc ask, gpointer ask_data, GCancellable *cancellable,
                           GError **error)
{
  const char *method = cm_ldap_config_get (cfg, "bind");

  if (g_cancellable_set_error_if_cancelled (cancellable, error))
    return FALSE;
  if (method == NULL || strcmp (method, "simple") == 0)
    return bind_simple (conn, cfg, id, ask, ask_data, error);
  if (strcmp (method, "external") == 0)
    return bind_external (conn, cfg, error);
  return bind_gssapi (conn, error);
}

gboolean
cm_ldap_conn_bind_sync (CmLdapConn *conn, CmLdapConfig *cfg, const char *entry_dn,
                        CmLdapSecretFunc ask, gpointer ask_data, GCancellable *cancellable,
                        GError **error)
{
  const char *dn = cm_ldap_config_get (cfg, "bind-dn");

  return cm_ldap_conn_bind_id_sync (conn, cfg, dn ? dn : entry_dn, ask, ask_data, cancellable,
                                    error);
}
