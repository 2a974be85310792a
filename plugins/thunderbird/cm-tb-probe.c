/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cm-tb-probe.c: does a mail server ask for a client certificate, and does it offer to log in
 * with one? A TLS handshake (STARTTLS or TLS, as the account is set up) that offers no
 * certificate answers the first; the server's capabilities after TLS (IMAP AUTH=EXTERNAL,
 * POP3 SASL EXTERNAL, SMTP AUTH EXTERNAL) the second, and whether it takes a Kerberos ticket
 * (GSSAPI) instead. Nothing secret is ever sent, so the
 * server's certificate is not verified here: Thunderbird verifies it when it connects. */
#include "cm-tb-private.h"
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <private/pprio.h>
#include <prerror.h>
#include <prio.h>
#include <ssl.h>
#include <sslerr.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct
{
  int fd;          /* before TLS */
  PRFileDesc *ssl; /* after */
  guint timeout_ms;
  GString *buf;   /* bytes read, not yet a line */
  gboolean asked; /* the client-auth hook ran */
} Conn;

static int
connect_tcp (const char *host, guint16 port, guint timeout_ms, GError **error)
{
  struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res = NULL;
  char service[8];
  int rc, fd = -1;

  g_snprintf (service, sizeof service, "%u", port);
  if ((rc = getaddrinfo (host, service, &hints, &res)) != 0)
    {
      g_set_error (error, CM_ERROR, CM_ERROR_ENVIRONMENT, "cannot resolve %s (%s)", host,
                   gai_strerror (rc));
      return -1;
    }
  for (struct addrinfo *a = res; a && fd < 0; a = a->ai_next)
    {
      struct pollfd pfd;
      int err = 0;
      socklen_t elen = sizeof err;
      fd = socket (a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
      if (fd < 0)
        continue;
      if (connect (fd, a->ai_addr, a->ai_addrlen) != 0 && errno != EINPROGRESS)
        goto next;
      pfd = (struct pollfd){ .fd = fd, .events = POLLOUT };
      if (poll (&pfd, 1, (int)timeout_ms) != 1
          || getsockopt (fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0 || err != 0)
        {
          errno = err ? err : ETIMEDOUT;
          goto next;
        }
      /* back to blocking: NSPR and our reads use timeouts of their own */
      fcntl (fd, F_SETFL, fcntl (fd, F_GETFL) & ~O_NONBLOCK);
      continue;
    next:
      rc = errno;
      close (fd);
      fd = -1;
      errno = rc;
    }
  if (fd < 0)
    g_set_error (error, CM_ERROR, CM_ERROR_ENVIRONMENT, "cannot connect to %s port %u (%s)", host,
                 port, g_strerror (errno));
  freeaddrinfo (res);
  return fd;
}

/* Send @line (with CRLF) in the clear or over TLS. */
static gboolean
conn_send (Conn *c, const char *line)
{
  g_autofree char *data = g_strdup_printf ("%s\r\n", line);
  gsize len = strlen (data), off = 0;

  while (off < len)
    {
      ssize_t n = c->ssl ? PR_Send (c->ssl, data + off, (PRInt32)(len - off), 0,
                                    PR_MillisecondsToInterval (c->timeout_ms))
                         : send (c->fd, data + off, len - off, MSG_NOSIGNAL);
      if (n <= 0)
        return FALSE;
      off += (gsize)n;
    }
  return TRUE;
}

/* One line (without CRLF) into *@line (caller frees); FALSE when the connection ends, fails or
 * times out. */
static gboolean
conn_line (Conn *c, char **line)
{
  for (;;)
    {
      char *nl = memchr (c->buf->str, '\n', c->buf->len);
      char chunk[2048];
      ssize_t n;
      if (nl)
        {
          gsize len = (gsize)(nl - c->buf->str);
          *line = g_strndup (c->buf->str, len > 0 && nl[-1] == '\r' ? len - 1 : len);
          g_string_erase (c->buf, 0, (gssize)len + 1);
          return TRUE;
        }
      if (c->buf->len > 65536)
        return FALSE;
      if (c->ssl)
        n = PR_Recv (c->ssl, chunk, sizeof chunk, 0, PR_MillisecondsToInterval (c->timeout_ms));
      else
        {
          struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
          if (poll (&pfd, 1, (int)c->timeout_ms) != 1)
            return FALSE;
          n = recv (c->fd, chunk, sizeof chunk, 0);
        }
      if (n <= 0)
        return FALSE;
      g_string_append_len (c->buf, chunk, (gssize)n);
    }
}

/* An SMTP reply: its lines until the one without '-' after the code. Lines appended to @all
 * (nullable); FALSE unless the code starts with @want. */
static gboolean
smtp_reply (Conn *c, char want, GString *all)
{
  for (;;)
    {
      g_autofree char *l = NULL;
      if (!conn_line (c, &l) || strlen (l) < 3)
        return FALSE;
      if (all)
        g_string_append_printf (all, "%s\n", l);
      if (l[3] != '-')
        return l[0] == want;
    }
}

/* IMAP: lines until the tagged reply of @tag; untagged lines appended to @all. */
static gboolean
imap_reply (Conn *c, const char *tag, GString *all)
{
  for (;;)
    {
      g_autofree char *l = NULL;
      if (!conn_line (c, &l))
        return FALSE;
      if (all)
        g_string_append_printf (all, "%s\n", l);
      if (g_str_has_prefix (l, tag) && l[strlen (tag)] == ' ')
        return g_str_has_prefix (l + strlen (tag) + 1, "OK");
    }
}

/* The greeting: "* OK ..." (or PREAUTH); its capabilities appended to @all (nullable). */
static gboolean
imap_greeting (Conn *c, GString *all)
{
  g_autofree char *l = NULL;

  if (!conn_line (c, &l) || !(g_str_has_prefix (l, "* OK") || g_str_has_prefix (l, "* PREAUTH")))
    return FALSE;
  if (all)
    g_string_append_printf (all, "%s\n", l);
  return TRUE;
}

static gboolean
pop3_ok (Conn *c)
{
  g_autofree char *l = NULL;
  return conn_line (c, &l) && g_str_has_prefix (l, "+OK");
}

/* The plain-text part of STARTTLS, up to where TLS starts. */
static gboolean
starttls (Conn *c, const char *kind)
{
  if (strcmp (kind, "imap") == 0)
    return imap_greeting (c, NULL) && conn_send (c, "a1 STARTTLS") && imap_reply (c, "a1", NULL);
  if (strcmp (kind, "pop3") == 0)
    return pop3_ok (c) && conn_send (c, "STLS") && pop3_ok (c);
  return smtp_reply (c, '2', NULL) && conn_send (c, "EHLO cacmail.invalid")
         && smtp_reply (c, '2', NULL) && conn_send (c, "STARTTLS") && smtp_reply (c, '2', NULL);
}

static SECStatus
accept_any (void *arg, PRFileDesc *fd, PRBool check_sig, PRBool is_server)
{
  return SECSuccess; /* nothing secret is sent: see the top of the file */
}

static SECStatus
no_cert (void *arg, PRFileDesc *fd, CERTDistNames *ca_names, CERTCertificate **cert,
         SECKEYPrivateKey **key)
{
  ((Conn *)arg)->asked = TRUE;
  return SECFailure; /* decline: an empty Certificate message */
}

static gboolean
start_tls (Conn *c, const char *host)
{
  PRFileDesc *tcp = PR_ImportTCPSocket (c->fd);

  if (tcp == NULL)
    return FALSE;
  c->fd = -1; /* NSPR owns it now */
  if ((c->ssl = SSL_ImportFD (NULL, tcp)) == NULL)
    {
      PR_Close (tcp);
      return FALSE;
    }
  return SSL_OptionSet (c->ssl, SSL_SECURITY, PR_TRUE) == SECSuccess
         && SSL_OptionSet (c->ssl, SSL_HANDSHAKE_AS_CLIENT, PR_TRUE) == SECSuccess
         && SSL_SetURL (c->ssl, host) == SECSuccess
         && SSL_AuthCertificateHook (c->ssl, accept_any, NULL) == SECSuccess
         && SSL_GetClientAuthDataHook (c->ssl, no_cert, c) == SECSuccess
         && SSL_ResetHandshake (c->ssl, PR_FALSE) == SECSuccess
         && SSL_ForceHandshakeWithTimeout (c->ssl, PR_MillisecondsToInterval (c->timeout_ms))
              == SECSuccess;
}

/* The capabilities after TLS, as text; FALSE when the server ended the connection. */
static gboolean
capabilities (Conn *c, const char *kind, gboolean implicit, GString *caps)
{
  if (strcmp (kind, "imap") == 0)
    return (!implicit || imap_greeting (c, caps)) && conn_send (c, "a2 CAPABILITY")
           && imap_reply (c, "a2", caps) && (conn_send (c, "a3 LOGOUT"), TRUE);
  if (strcmp (kind, "pop3") == 0)
    {
      if ((implicit && !pop3_ok (c)) || !conn_send (c, "CAPA"))
        return FALSE;
      for (;;)
        {
          g_autofree char *l = NULL;
          if (!conn_line (c, &l))
            return FALSE;
          if (strcmp (l, ".") == 0)
            return conn_send (c, "QUIT"), TRUE;
          g_string_append_printf (caps, "%s\n", l);
        }
    }
  return (!implicit || smtp_reply (c, '2', NULL)) && conn_send (c, "EHLO cacmail.invalid")
         && smtp_reply (c, '2', caps) && (conn_send (c, "QUIT"), TRUE);
}

/* EXTERNAL among the login methods; for SMTP also no AUTH at all (the server accepts mail by
 * the certificate alone, and Thunderbird's "TLS certificate" then sends no AUTH). */
static gboolean
offers_external (const char *kind, const char *caps)
{
  g_autofree char *up = g_ascii_strup (caps, -1);

  if (strcmp (kind, "imap") == 0)
    return strstr (up, "AUTH=EXTERNAL") != NULL;
  if (strcmp (kind, "pop3") == 0)
    return strstr (up, "SASL") && strstr (up, "EXTERNAL");
  {
    g_auto (GStrv) lines = g_strsplit (up, "\n", -1);
    gboolean any_auth = FALSE;
    for (char **l = lines; *l; l++)
      if (g_str_has_prefix (*l, "250-AUTH") || g_str_has_prefix (*l, "250 AUTH"))
        {
          any_auth = TRUE;
          if (strstr (*l, "EXTERNAL"))
            return TRUE;
        }
    return !any_auth;
  }
}

/* GSSAPI among the login methods (Kerberos with the user's ticket). */
static gboolean
offers_gssapi (const char *kind, const char *caps)
{
  g_autofree char *up = g_ascii_strup (caps, -1);
  g_auto (GStrv) lines = g_strsplit (up, "\n", -1);

  if (strcmp (kind, "imap") == 0)
    return strstr (up, "AUTH=GSSAPI") != NULL;
  for (char **l = lines; *l; l++)
    if ((strcmp (kind, "pop3") == 0
           ? g_str_has_prefix (*l, "SASL")
           : g_str_has_prefix (*l, "250-AUTH") || g_str_has_prefix (*l, "250 AUTH"))
        && strstr (*l, "GSSAPI"))
      return TRUE;
  return FALSE;
}

void
cm_tb_probe_server_sync (CmTbServerProbe *p, guint timeout_ms, GCancellable *cancellable)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GString) caps = g_string_new (NULL);
  Conn c = { .fd = -1, .timeout_ms = timeout_ms, .buf = g_string_new (NULL) };
  gboolean implicit = p->socket_type == 3;

  if (p->socket_type != 2 && p->socket_type != 3)
    {
      p->error = g_strdup ("the account connects without TLS, so neither a certificate nor a "
                           "Kerberos login is set up for it: set its connection security to "
                           "SSL/TLS or STARTTLS first");
      goto out;
    }
  if ((c.fd = connect_tcp (p->host, p->port, timeout_ms, &error)) < 0)
    {
      p->error = g_strdup (error->message);
      goto out;
    }
  if (!implicit && !starttls (&c, p->kind))
    {
      p->error = g_strdup ("the server did not accept STARTTLS");
      goto out;
    }
  g_string_truncate (c.buf, 0);
  if (!start_tls (&c, p->host))
    {
      PRErrorCode e = PR_GetError ();
      p->asks_cert = c.asked;
      p->requires_cert = c.asked;
      if (!c.asked)
        p->error = g_strdup_printf ("the TLS handshake failed (NSS error %d)", (int)e);
      goto out;
    }
  p->asks_cert = c.asked;
  if (!capabilities (&c, p->kind, implicit, caps))
    {
      /* TLS 1.3: a server that requires a certificate says so after the handshake */
      if (c.asked)
        p->requires_cert = TRUE;
      else
        p->error = g_strdup ("the server ended the connection after TLS");
      goto out;
    }
  p->offers_external = offers_external (p->kind, caps->str);
  p->offers_gssapi = offers_gssapi (p->kind, caps->str);

out:
  if (c.ssl)
    PR_Close (c.ssl);
  if (c.fd >= 0)
    close (c.fd);
  g_string_free (c.buf, TRUE);
}
