/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cacmail-vcard: a virtual PIV / CAC smart card for the tests.
 *
 * It serves a card folder (docs/card-folder.md) to pcscd through vsmartcard's vpcd driver:
 * vpcd listens on TCP (35963 for its first reader), the card connects to it and answers
 * frames of a 2-byte big-endian length + payload. A 1-byte payload is a control code (0 power
 * off, 1 power on, 2 reset, 4 get ATR); anything else is an APDU, answered by one frame.
 * See README.md beside this file. */
#define _GNU_SOURCE 1 /* accept4 */
#include "vcard.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* 3B 88 80 01 + 8 historical bytes + TCK: T=0 and T=1 offered; TCK = XOR of T0..last byte */
static const uint8_t atr[]
  = { 0x3B, 0x88, 0x80, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x09 };

#define MAX_CLIENTS 8

typedef struct
{
  const char *host;
  int port;
  char *control_path;
  FILE *log;
  VcCard card;
  int fd;            /* connection to vpcd, -1 if none */
  gboolean inserted; /* the card wants to be connected */
  long remove_after; /* remove after this many more APDUs; -1: never */
  VcHostile hostile; /* how the data reads misbehave (vcard-hostile.c) */
  unsigned long apdus;
  unsigned long connects;
  int listen_fd;
  int clients[MAX_CLIENTS];
  GString *client_buf[MAX_CLIENTS];
} Vcard;

static volatile sig_atomic_t stop_requested;

static void
on_signal (int sig)
{
  (void)sig;
  stop_requested = 1;
}

static void
log_hex (Vcard *vc, char kind, const uint8_t *data, size_t len)
{
  if (!vc->log)
    return;
  fputc (kind, vc->log);
  fputc (' ', vc->log);
  for (size_t i = 0; i < len; i++)
    fprintf (vc->log, "%02X", data[i]);
  fputc ('\n', vc->log);
  fflush (vc->log);
}

static gboolean
write_all (int fd, const uint8_t *data, size_t len)
{
  while (len)
    {
      ssize_t n = send (fd, data, len, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        return FALSE;
      data += n;
      len -= (size_t)n;
    }
  return TRUE;
}

static gboolean
read_all (int fd, uint8_t *data, size_t len)
{
  while (len)
    {
      ssize_t n = recv (fd, data, len, 0);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        return FALSE;
      data += n;
      len -= (size_t)n;
    }
  return TRUE;
}

static gboolean
send_frame (int fd, const uint8_t *data, size_t len)
{
  if (len > 0xFFFF)
    return FALSE;
  /* one write: a header in a segment of its own would meet delayed ACKs (40 ms per APDU) */
  uint8_t *frame = g_malloc (len + 2);
  frame[0] = (uint8_t)(len >> 8);
  frame[1] = (uint8_t)len;
  memcpy (frame + 2, data, len);
  gboolean ok = write_all (fd, frame, len + 2);
  g_free (frame);
  return ok;
}

static void
disconnect (Vcard *vc)
{
  if (vc->fd >= 0)
    close (vc->fd);
  vc->fd = -1;
  vc_card_reset (&vc->card); /* the card lost power */
}

static void
try_connect (Vcard *vc)
{
  struct addrinfo hints = { 0 }, *res = NULL;
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  char port[16];
  g_snprintf (port, sizeof port, "%d", vc->port);
  if (getaddrinfo (vc->host, port, &hints, &res) != 0)
    return;
  for (struct addrinfo *ai = res; ai; ai = ai->ai_next)
    {
      int fd = socket (ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
      if (fd < 0)
        continue;
      if (connect (fd, ai->ai_addr, ai->ai_addrlen) == 0)
        {
          int one = 1;
          setsockopt (fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          vc->fd = fd;
          vc->connects++;
          vc_card_reset (&vc->card);
          break;
        }
      close (fd);
    }
  freeaddrinfo (res);
}

static void
remove_card (Vcard *vc)
{
  vc->inserted = FALSE;
  vc->remove_after = -1;
  disconnect (vc);
}

static void
sleep_ms (long ms)
{
  struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
  nanosleep (&ts, NULL);
}

/* One frame from vpcd. FALSE: the connection is gone. */
static gboolean
handle_frame (Vcard *vc)
{
  uint8_t hdr[2];
  if (!read_all (vc->fd, hdr, 2))
    return FALSE;
  /* vpcd writes the length and the payload separately, with Nagle on: the payload waits for
   * our ACK of the length, which Linux delays by 40 ms in request/response traffic. ACK now. */
  int one = 1;
  setsockopt (vc->fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
  size_t len = ((size_t)hdr[0] << 8) | hdr[1];
  uint8_t *buf = g_malloc (len ? len : 1);
  gboolean ok = read_all (vc->fd, buf, len);
  if (ok && len == 1)
    {
      switch (buf[0])
        {
        case 0: /* power off */
        case 2: /* reset */ vc_card_reset (&vc->card); break;
        case 1: /* power on */ break;
        case 4: ok = send_frame (vc->fd, atr, sizeof atr); break;
        default: break;
        }
    }
  else if (ok)
    {
      VcBuf out = { 0 };
      unsigned delay_ms = 0;
      log_hex (vc, 'C', buf, len);
      if (!vc_hostile_answer (vc->hostile, buf, len, &out, &delay_ms))
        vc_card_process (&vc->card, buf, len, &out);
      if (delay_ms)
        sleep_ms (delay_ms);
      vc->apdus++;
      log_hex (vc, 'R', out.data, out.len);
      ok = send_frame (vc->fd, out.data, out.len);
      vc_buf_free (&out);
      if (ok && vc->remove_after > 0 && --vc->remove_after == 0)
        {
          remove_card (vc);
          ok = TRUE; /* handled: the card is out */
        }
    }
  g_free (buf);
  return ok;
}

static void
status_line (Vcard *vc, GString *s)
{
  g_string_append_printf (s,
                          "inserted=%d connected=%d apdus=%lu connects=%lu verified=%d "
                          "tries_left=%d remove_after=%ld hostile=%s\n",
                          vc->inserted, vc->fd >= 0, vc->apdus, vc->connects, vc->card.verified,
                          vc->card.tries_left, vc->remove_after, vc_hostile_name (vc->hostile));
}

static void
control_command (Vcard *vc, const char *line, GString *reply)
{
  char *cmd = g_strstrip (g_strdup (line));
  if (g_str_equal (cmd, "remove"))
    {
      remove_card (vc);
      g_string_append (reply, "ok\n");
    }
  else if (g_str_equal (cmd, "insert"))
    {
      vc->inserted = TRUE;
      if (vc->fd < 0)
        try_connect (vc);
      g_string_append (reply, "ok\n");
    }
  else if (g_str_has_prefix (cmd, "remove-after "))
    {
      char *end = NULL;
      long n = strtol (cmd + 13, &end, 10);
      if (n > 0 && end && *end == '\0')
        {
          vc->remove_after = n;
          g_string_append (reply, "ok\n");
        }
      else
        g_string_append (reply, "error: remove-after needs a positive count\n");
    }
  else if (g_str_has_prefix (cmd, "hostile "))
    {
      if (vc_hostile_parse (cmd + 8, &vc->hostile))
        g_string_append (reply, "ok\n");
      else
        g_string_append (reply, "error: hostile needs none, 61-forever, 6c-forever, short, "
                                "oversized or slow\n");
    }
  else if (g_str_equal (cmd, "status"))
    status_line (vc, reply);
  else if (g_str_equal (cmd, "quit"))
    {
      stop_requested = 1;
      g_string_append (reply, "ok\n");
    }
  else
    g_string_append_printf (reply, "error: unknown command '%s'\n", cmd);
  g_free (cmd);
}

static void
close_client (Vcard *vc, int i)
{
  close (vc->clients[i]);
  vc->clients[i] = -1;
  g_string_truncate (vc->client_buf[i], 0);
}

static void
handle_client (Vcard *vc, int i)
{
  char buf[512];
  ssize_t n = recv (vc->clients[i], buf, sizeof buf, 0);
  if (n <= 0)
    {
      close_client (vc, i);
      return;
    }
  g_string_append_len (vc->client_buf[i], buf, n);
  char *nl;
  while (vc->clients[i] >= 0 && (nl = strchr (vc->client_buf[i]->str, '\n')))
    {
      *nl = '\0';
      GString *reply = g_string_new (NULL);
      control_command (vc, vc->client_buf[i]->str, reply);
      g_string_erase (vc->client_buf[i], 0, nl - vc->client_buf[i]->str + 1);
      if (!write_all (vc->clients[i], (const uint8_t *)reply->str, reply->len))
        close_client (vc, i);
      g_string_free (reply, TRUE);
    }
  if (vc->clients[i] >= 0 && vc->client_buf[i]->len > 4096)
    close_client (vc, i);
}

static int
control_listen (const char *path)
{
  struct sockaddr_un sa = { 0 };
  sa.sun_family = AF_UNIX;
  if (strlen (path) >= sizeof sa.sun_path)
    return -1;
  strcpy (sa.sun_path, path);
  unlink (path);
  int fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -1;
  if (bind (fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen (fd, 8) < 0)
    {
      close (fd);
      return -1;
    }
  return fd;
}

/* Client mode: send one command line to a running card and print the answer. */
static int
control_send (const char *path, const char *command)
{
  struct sockaddr_un sa = { 0 };
  sa.sun_family = AF_UNIX;
  if (strlen (path) >= sizeof sa.sun_path)
    return 2;
  strcpy (sa.sun_path, path);
  int fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || connect (fd, (struct sockaddr *)&sa, sizeof sa) < 0)
    {
      fprintf (stderr, "cacmail-vcard: %s: %s\n", path, g_strerror (errno));
      return 2;
    }
  char *line = g_strconcat (command, "\n", NULL);
  gboolean ok = write_all (fd, (const uint8_t *)line, strlen (line));
  g_free (line);
  GString *reply = g_string_new (NULL);
  char c;
  while (ok && recv (fd, &c, 1, 0) == 1 && c != '\n')
    g_string_append_c (reply, c);
  close (fd);
  printf ("%s\n", reply->str);
  int rc = g_str_has_prefix (reply->str, "error") || !ok ? 1 : 0;
  g_string_free (reply, TRUE);
  return rc;
}

static int
run (Vcard *vc)
{
  while (!stop_requested)
    {
      if (vc->inserted && vc->fd < 0)
        try_connect (vc);
      struct pollfd pfd[2 + MAX_CLIENTS];
      int n = 0, card_i = -1, listen_i = -1, client_i[MAX_CLIENTS];
      if (vc->fd >= 0)
        {
          card_i = n;
          pfd[n++] = (struct pollfd){ vc->fd, POLLIN, 0 };
        }
      if (vc->listen_fd >= 0)
        {
          listen_i = n;
          pfd[n++] = (struct pollfd){ vc->listen_fd, POLLIN, 0 };
        }
      for (int i = 0; i < MAX_CLIENTS; i++)
        {
          client_i[i] = -1;
          if (vc->clients[i] >= 0)
            {
              client_i[i] = n;
              pfd[n++] = (struct pollfd){ vc->clients[i], POLLIN, 0 };
            }
        }
      /* while waiting for vpcd, retry the connection every 100 ms */
      int timeout = (vc->inserted && vc->fd < 0) ? 100 : 1000;
      int r = poll (pfd, (nfds_t)n, timeout);
      if (r < 0 && errno != EINTR)
        {
          perror ("cacmail-vcard: poll");
          return 1;
        }
      if (r <= 0)
        continue;
      if (card_i >= 0 && (pfd[card_i].revents & (POLLIN | POLLHUP | POLLERR)) && vc->fd >= 0)
        {
          if (!handle_frame (vc))
            {
              disconnect (vc); /* vpcd went away (pcscd stopped): reconnect */
              sleep_ms (100);
            }
        }
      if (listen_i >= 0 && (pfd[listen_i].revents & POLLIN))
        {
          int c = accept4 (vc->listen_fd, NULL, NULL, SOCK_CLOEXEC);
          if (c >= 0)
            {
              int i;
              for (i = 0; i < MAX_CLIENTS && vc->clients[i] >= 0; i++)
                ;
              if (i < MAX_CLIENTS)
                vc->clients[i] = c;
              else
                close (c);
            }
        }
      for (int i = 0; i < MAX_CLIENTS; i++)
        if (client_i[i] >= 0 && vc->clients[i] >= 0
            && (pfd[client_i[i]].revents & (POLLIN | POLLHUP | POLLERR)))
          handle_client (vc, i);
    }
  return 0;
}

int
main (int argc, char **argv)
{
  g_autofree char *card_dir = NULL, *host = NULL, *control = NULL, *log_path = NULL;
  g_autofree char *pin = NULL, *send_cmd = NULL, *hostile = NULL;
  int port = 35963, remove_after = 0;
  gboolean short_only = FALSE, gzip = FALSE, no_piv = FALSE;
  GOptionEntry entries[] = {
    { "card", 0, 0, G_OPTION_ARG_FILENAME, &card_dir, "Card folder to serve", "DIR" },
    { "port", 0, 0, G_OPTION_ARG_INT, &port, "vpcd port (default 35963)", "N" },
    { "host", 0, 0, G_OPTION_ARG_STRING, &host, "vpcd host (default 127.0.0.1)", "HOST" },
    { "control", 0, 0, G_OPTION_ARG_FILENAME, &control, "Unix control socket", "PATH" },
    { "log", 0, 0, G_OPTION_ARG_FILENAME, &log_path, "Append APDUs to this file", "FILE" },
    { "short-only", 0, 0, G_OPTION_ARG_NONE, &short_only, "Refuse extended-length APDUs", NULL },
    { "gzip", 0, 0, G_OPTION_ARG_NONE, &gzip, "Serve certificates gzip-compressed", NULL },
    { "no-piv", 0, 0, G_OPTION_ARG_NONE, &no_piv, "No PIV application (another kind of card)",
      NULL },
    { "remove-after", 0, 0, G_OPTION_ARG_INT, &remove_after, "Remove the card after N APDUs", "N" },
    { "pin", 0, 0, G_OPTION_ARG_STRING, &pin, "The card's PIN (default 123456)", "PIN" },
    { "hostile", 0, 0, G_OPTION_ARG_STRING, &hostile,
      "Misbehave on data reads: 61-forever, 6c-forever, short, oversized, slow", "MODE" },
    { "send", 0, 0, G_OPTION_ARG_STRING, &send_cmd,
      "Client mode: send COMMAND to the card at --control and print the answer", "COMMAND" },
    { NULL, 0, 0, 0, NULL, NULL, NULL },
  };
  GOptionContext *octx = g_option_context_new ("- virtual PIV/CAC card for vpcd");
  g_option_context_add_main_entries (octx, entries, NULL);
  GError *error = NULL;
  if (!g_option_context_parse (octx, &argc, &argv, &error))
    {
      fprintf (stderr, "cacmail-vcard: %s\n", error->message);
      g_error_free (error);
      g_option_context_free (octx);
      return 2;
    }
  g_option_context_free (octx);
  if (send_cmd)
    {
      if (!control)
        {
          fprintf (stderr, "cacmail-vcard: --send needs --control PATH\n");
          return 2;
        }
      return control_send (control, send_cmd);
    }
  if (!card_dir)
    {
      fprintf (stderr, "cacmail-vcard: --card DIR is required\n");
      return 2;
    }
  VcOptions opt = { 0 };
  opt.short_only = short_only;
  opt.gzip = gzip;
  opt.no_piv = no_piv;
  const char *p = pin ? pin : "123456";
  size_t plen = strlen (p);
  gboolean digits = plen >= 6 && plen <= 8;
  for (size_t i = 0; i < plen; i++)
    digits = digits && g_ascii_isdigit (p[i]);
  if (!digits || port <= 0 || port > 65535 || remove_after < 0)
    {
      fprintf (stderr, "cacmail-vcard: the PIN must be 6-8 digits, the port 1-65535\n");
      return 2;
    }
  g_strlcpy (opt.pin, p, sizeof opt.pin);
  VcHostile hostile_mode = VC_HOSTILE_NONE;
  if (hostile && !vc_hostile_parse (hostile, &hostile_mode))
    {
      fprintf (stderr, "cacmail-vcard: --hostile takes none, 61-forever, 6c-forever, short, "
                       "oversized or slow\n");
      return 2;
    }

  vc_crypto_init ();
  VcFolder folder;
  if (!vc_folder_load (&folder, card_dir, &error))
    {
      fprintf (stderr, "cacmail-vcard: %s\n", error->message);
      g_error_free (error);
      return 1;
    }
  Vcard vc = { 0 };
  vc.hostile = hostile_mode;
  vc.host = host ? host : "127.0.0.1";
  vc.port = port;
  vc.fd = -1;
  vc.listen_fd = -1;
  vc.inserted = TRUE;
  vc.remove_after = remove_after > 0 ? remove_after : -1;
  for (int i = 0; i < MAX_CLIENTS; i++)
    {
      vc.clients[i] = -1;
      vc.client_buf[i] = g_string_new (NULL);
    }
  vc_card_init (&vc.card, &folder, &opt);
  if (log_path && !(vc.log = fopen (log_path, "ae")))
    {
      fprintf (stderr, "cacmail-vcard: %s: %s\n", log_path, g_strerror (errno));
      return 1;
    }
  if (control && (vc.listen_fd = control_listen (control)) < 0)
    {
      fprintf (stderr, "cacmail-vcard: control socket %s: %s\n", control, g_strerror (errno));
      return 1;
    }
  vc.control_path = control;
  struct sigaction sa = { 0 };
  sa.sa_handler = on_signal;
  sigaction (SIGTERM, &sa, NULL);
  sigaction (SIGINT, &sa, NULL);
  signal (SIGPIPE, SIG_IGN);

  int rc = run (&vc);

  if (vc.fd >= 0)
    close (vc.fd);
  if (vc.listen_fd >= 0)
    {
      close (vc.listen_fd);
      unlink (control);
    }
  for (int i = 0; i < MAX_CLIENTS; i++)
    {
      if (vc.clients[i] >= 0)
        close (vc.clients[i]);
      g_string_free (vc.client_buf[i], TRUE);
    }
  if (vc.log)
    fclose (vc.log);
  vc_card_clear (&vc.card);
  vc_folder_clear (&folder);
  vc_crypto_shutdown ();
  return rc;
}
