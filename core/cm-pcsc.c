/* cm-pcsc.c: read PIV cards over pcsc-lite in as few APDUs as the card allows: SELECT, the
 * CHUID's first chunk (FASC-N and GUID come first), then only the certificate containers the
 * task needs. Extended-length APDUs where the reader takes them, else short APDUs with the
 * largest Le and 61xx/GET RESPONSE chaining. */
#include "cm-private.h"
#include "cm-card.h"
#include <PCSC/winscard.h>
#include <PCSC/wintypes.h>
#include <zlib.h>

#define MAX_OBJECT (64 * 1024)

static const guint8 piv_aid[] = { 0xa0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00 };

typedef struct
{
  SCARDCONTEXT ctx;
  SCARDHANDLE card;
  DWORD proto;
  const char *reader;
  gboolean extended_ok;
  gboolean extended_tried;
  CmCardStats *stats;
  GCancellable *cancellable;
} Session;

void
cm_reader_info_free (CmReaderInfo *info)
{
  if (info == NULL)
    return;
  g_free (info->name);
  g_free (info->atr);
  g_free (info);
}

/* One table from status words to what a user reads (yubico-piv-tool style). */
char *
cm_status_word_message (guint16 sw)
{
  static const struct
  {
    guint16 sw;
    const char *msg;
  } table[] = {
    { 0x9000, "success" },
    { 0x6983, "PIN blocked: unblock it at a RAPIDS / card issuing office" },
    { 0x6982, "the card needs the PIN first" },
    { 0x6a82, "object not on the card" },
    { 0x6a81, "function not supported by the card" },
    { 0x6a80, "the card rejected the command data" },
    { 0x6700, "wrong length (the reader or card does not take this APDU size)" },
    { 0x6d00, "instruction not supported by the card" },
    { 0x6e00, "class not supported by the card" },
    { 0x6985, "conditions of use not satisfied" },
    { 0x6a86, "incorrect parameters" },
  };

  if ((sw & 0xfff0) == 0x63c0)
    {
      guint left = sw & 0xf;
      return left == 0 ? g_strdup ("wrong PIN, no tries left: the PIN is now blocked")
                       : g_strdup_printf ("wrong PIN, %u PIN tr%s left", left,
                                          left == 1 ? "y" : "ies");
    }
  for (gsize i = 0; i < G_N_ELEMENTS (table); i++)
    if (table[i].sw == sw)
      return g_strdup (table[i].msg);
  return g_strdup_printf ("card error (status %04X)", sw);
}

static void
pcsc_error (GError **error, LONG rv, const char *reader, const char *what)
{
  if (rv == (LONG)SCARD_E_NO_SERVICE || rv == (LONG)SCARD_E_SERVICE_STOPPED)
    g_set_error (error, CM_ERROR, CM_ERROR_ENVIRONMENT,
                 "pcscd is not running: start it (systemctl start pcscd.socket, or pcscd as "
                 "root) and try again");
  else if (rv == (LONG)SCARD_W_REMOVED_CARD || rv == (LONG)SCARD_E_NO_SMARTCARD)
    g_set_error (error, CM_ERROR, CM_ERROR_ENVIRONMENT,
                 "no card in reader '%s' (or it was removed during the read): insert the card "
                 "and try again",
                 reader ? reader : "?");
  else if (rv == (LONG)SCARD_W_RESET_CARD)
    g_set_error (error, CM_ERROR, CM_ERROR_ENVIRONMENT,
                 "the card in reader '%s' was reset by another program: try again",
                 reader ? reader : "?");
  else if (rv == (LONG)SCARD_E_UNKNOWN_READER || rv == (LONG)SCARD_E_READER_UNAVAILABLE)
    g_set_error (error, CM_ERROR, CM_ERROR_NOT_FOUND,
                 "reader '%s' is not connected: check 'cacmail status' for the reader names",
                 reader ? reader : "?");
  else
    g_set_error (error, CM_ERROR, CM_ERROR_ENVIRONMENT, "%s failed on reader '%s': %s", what,
                 reader ? reader : "?", pcsc_stringify_error (rv));
}

/* Send one APDU, following 61xx with GET RESPONSE (unless @first_chunk_only) and retrying a
 * 6Cxx with the length the card asks for. Returns the data and the final status word. */
static GByteArray *
transmit (Session *s, const guint8 *apdu, gsize len, guint16 *sw, gboolean first_chunk_only,
          GError **error)
{
  g_autoptr (GByteArray) out = g_byte_array_new ();
  guint8 cmd[5 + 65536 + 3];
  gsize cmd_len = len;
  guint8 resp[65536 + 2];

  memcpy (cmd, apdu, len);
  for (;;)
    {
      DWORD rlen = sizeof resp;
      const SCARD_IO_REQUEST *pci = s->proto == SCARD_PROTOCOL_T1 ? SCARD_PCI_T1 : SCARD_PCI_T0;
      LONG rv;

      if (g_cancellable_set_error_if_cancelled (s->cancellable, error))
        return NULL;
      rv = SCardTransmit (s->card, pci, cmd, (DWORD)cmd_len, NULL, resp, &rlen);
      if (s->stats)
        {
          s->stats->apdus++;
          s->stats->bytes_sent += cmd_len;
          if (rv == SCARD_S_SUCCESS)
            s->stats->bytes_received += rlen;
        }
      if (rv != SCARD_S_SUCCESS)
        {
          pcsc_error (error, rv, s->reader, "sending a command to the card");
          return NULL;
        }
      if (rlen < 2)
        {
          g_set_error (error, CM_ERROR, CM_ERROR_ENVIRONMENT,
                       "the card in reader '%s' sent a malformed answer: re-insert it",
                       s->reader);
          return NULL;
        }
      *sw = (guint16)((resp[rlen - 2] << 8) | resp[rlen - 1]);
      g_byte_array_append (out, resp, rlen - 2);
      if (out->len > MAX_OBJECT)
        {
          g_set_error (error, CM_ERROR, CM_ERROR_BAD_INPUT,
                       "the card in reader '%s' returned an object over 64 KiB", s->reader);
          return NULL;
        }
      if ((*sw & 0xff00) == 0x6100 && !first_chunk_only)
        {
          guint8 get_response[] = { 0x00, 0xc0, 0x00, 0x00, (guint8)(*sw & 0xff) };
          memcpy (cmd, get_response, sizeof get_response);
          cmd_len = sizeof get_response;
          continue;
        }
      if ((*sw & 0xff00) == 0x6c00 && cmd_len >= 5)
        {
          cmd[cmd_len - 1] = (guint8)(*sw & 0xff); /* resend with the exact Le */
          continue;
        }
      break;
    }
  return g_steal_pointer (&out);
}

/* GET DATA for a 3-byte tag 5FC1xx (or 7E). @first_chunk_only stops after the first short
 * answer: enough for the CHUID's FASC-N and GUID. */
static GByteArray *
get_data (Session *s, const guint8 *tag, gsize tag_len, gboolean first_chunk_only, guint16 *sw,
          GError **error)
{
  guint8 apdu[16];
  gsize n = 0;

  if (!s->extended_tried && !first_chunk_only)
    {
      /* Extended length: Lc as 00 hi lo, Le as 00 00 (= 65536): the whole object at once. */
      GByteArray *r;
      g_autoptr (GError) local = NULL;
      s->extended_tried = TRUE;
      apdu[n++] = 0x00, apdu[n++] = 0xcb, apdu[n++] = 0x3f, apdu[n++] = 0xff;
      apdu[n++] = 0x00, apdu[n++] = 0x00, apdu[n++] = (guint8)(tag_len + 2);
      apdu[n++] = 0x5c, apdu[n++] = (guint8)tag_len;
      memcpy (apdu + n, tag, tag_len), n += tag_len;
      apdu[n++] = 0x00, apdu[n++] = 0x00;
      r = transmit (s, apdu, n, sw, FALSE, &local);
      if (r && *sw != 0x6700 && (*sw & 0xff00) != 0x6800)
        {
          s->extended_ok = TRUE;
          if (s->stats)
            s->stats->extended = TRUE;
          return r;
        }
      if (r)
        g_byte_array_unref (r);
      /* A reader that refuses extended APDUs may reset the card: reselect. */
      n = 0;
    }
  if (s->extended_ok && !first_chunk_only)
    {
      apdu[n++] = 0x00, apdu[n++] = 0xcb, apdu[n++] = 0x3f, apdu[n++] = 0xff;
      apdu[n++] = 0x00, apdu[n++] = 0x00, apdu[n++] = (guint8)(tag_len + 2);
      apdu[n++] = 0x5c, apdu[n++] = (guint8)tag_len;
      memcpy (apdu + n, tag, tag_len), n += tag_len;
      apdu[n++] = 0x00, apdu[n++] = 0x00;
      return transmit (s, apdu, n, sw, FALSE, error);
    }
  apdu[n++] = 0x00, apdu[n++] = 0xcb, apdu[n++] = 0x3f, apdu[n++] = 0xff;
  apdu[n++] = (guint8)(tag_len + 2), apdu[n++] = 0x5c, apdu[n++] = (guint8)tag_len;
  memcpy (apdu + n, tag, tag_len), n += tag_len;
  apdu[n++] = 0x00; /* Le 256: the largest short answer */
  return transmit (s, apdu, n, sw, first_chunk_only, error);
}

static gboolean
select_piv (Session *s, GError **error)
{
  guint8 apdu[5 + sizeof piv_aid + 1] = { 0x00, 0xa4, 0x04, 0x00, sizeof piv_aid };
  g_autoptr (GByteArray) r = NULL;
  guint16 sw = 0;

  memcpy (apdu + 5, piv_aid, sizeof piv_aid);
  apdu[sizeof apdu - 1] = 0x00;
  if ((r = transmit (s, apdu, sizeof apdu, &sw, FALSE, error)) == NULL)
    return FALSE;
  if (sw != 0x9000)
    {
      g_autofree char *why = cm_status_word_message (sw);
      g_set_error (error, CM_ERROR, CM_ERROR_BAD_INPUT,
                   "the card in reader '%s' is not a PIV or CAC card (PIV applet: %s): insert "
                   "your CAC or PIV card",
                   s->reader, why);
      return FALSE;
    }
  return TRUE;
}

/* Unwrap 53 { 70 cert | 71 info | FE }, inflating a gzip-compressed certificate. */
static GBytes *
cert_from_container (const guint8 *p, gsize len, GError **error)
{
  CmDer cur = cm_der_init (p, len), body, cert = { NULL, 0 }, v;
  guint8 tag, info = 0;

  if (!cm_der_expect (&cur, 0x53, &body))
    goto bad;
  while (body.len > 0)
    {
      if (!cm_der_next (&body, &tag, &v))
        goto bad;
      if (tag == 0x70)
        cert = v;
      else if (tag == 0x71 && v.len == 1)
        info = v.p[0];
    }
  if (cert.p == NULL || cert.len == 0)
    goto bad;
  if (info & 0x01)
    {
      z_stream zs = { 0 };
      g_autoptr (GByteArray) out = g_byte_array_new ();
      guint8 buf[4096];
      int zr;
      if (inflateInit2 (&zs, 15 + 32) != Z_OK)
        goto bad;
      zs.next_in = (Bytef *)cert.p;
      zs.avail_in = (uInt)cert.len;
      do
        {
          zs.next_out = buf;
          zs.avail_out = sizeof buf;
          zr = inflate (&zs, Z_NO_FLUSH);
          g_byte_array_append (out, buf, sizeof buf - zs.avail_out);
        }
      while (zr == Z_OK && out->len <= MAX_OBJECT);
      inflateEnd (&zs);
      if (zr != Z_STREAM_END)
        {
          g_set_error (error, CM_ERROR, CM_ERROR_BAD_INPUT,
                       "a compressed certificate on the card does not inflate");
          return NULL;
        }
      return g_byte_array_free_to_bytes (g_steal_pointer (&out));
    }
  return g_bytes_new (cert.p, cert.len);

bad:
  g_set_error (error, CM_ERROR, CM_ERROR_BAD_INPUT,
               "a certificate container on the card is malformed");
  return NULL;
}

/* The CHUID's complete leading TLVs (the first chunk may cut the signature short). */
static CmChuid *
chuid_from_prefix (const guint8 *p, gsize len)
{
  CmDer cur = cm_der_init (p, len), v;
  const guint8 *start;
  guint8 tag;

  if (len < 2 || p[0] != 0x53)
    return NULL;
  /* Skip the 53 header whatever its stated length. */
  start = p + 2 + ((p[1] & 0x80) ? (p[1] & 0x7f) : 0);
  if (start > p + len)
    return NULL;
  cur = cm_der_init (start, (gsize)(p + len - start));
  while (cur.len > 0)
    {
      CmDer save = cur;
      if (!cm_der_next (&cur, &tag, &v))
        {
          cur = save;
          break;
        }
    }
  return cm_chuid_parse (start, (gsize)(cur.p - start), NULL);
}

gboolean
cm_card_read_sync (CmInventory *inv, const char *reader, CmReadFlags flags, CmCardStats *stats,
                   GCancellable *cancellable, GError **error)
{
  static const struct
  {
    guint8 tag[3];
    CmSlot slot;
    gboolean always;
  } objects[] = {
    { { 0x5f, 0xc1, 0x05 }, CM_SLOT_9A, TRUE },
    { { 0x5f, 0xc1, 0x0a }, CM_SLOT_9C, TRUE },
    { { 0x5f, 0xc1, 0x0b }, CM_SLOT_9D, TRUE },
    { { 0x5f, 0xc1, 0x01 }, CM_SLOT_9E, FALSE },
  };
  Session s = { .reader = reader, .stats = stats, .cancellable = cancellable };
  g_autoptr (GHashTable) slot_certs = g_hash_table_new_full (g_direct_hash, g_direct_equal, NULL,
                                                             (GDestroyNotify)g_bytes_unref);
  CmChuid *chuid = NULL;
  gboolean ok = FALSE, in_tx = FALSE;
  LONG rv;

  if (flags & CM_READ_SHORT_ONLY)
    s.extended_tried = TRUE;
  rv = SCardEstablishContext (SCARD_SCOPE_SYSTEM, NULL, NULL, &s.ctx);
  if (rv != SCARD_S_SUCCESS)
    {
      pcsc_error (error, rv, reader, "connecting to pcscd");
      return FALSE;
    }
  rv = SCardConnect (s.ctx, reader, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T0 | SCARD_PROTOCOL_T1,
                     &s.card, &s.proto);
  if (rv != SCARD_S_SUCCESS)
    {
      pcsc_error (error, rv, reader, "connecting to the card");
      goto out_ctx;
    }
  in_tx = SCardBeginTransaction (s.card) == SCARD_S_SUCCESS;
  if (!select_piv (&s, error))
    goto out;
  {
    static const guint8 chuid_tag[] = { 0x5f, 0xc1, 0x02 };
    guint16 sw = 0;
    g_autoptr (GByteArray) r = get_data (&s, chuid_tag, 3, TRUE, &sw, error);
    if (r == NULL)
      goto out;
    if (sw == 0x9000 || (sw & 0xff00) == 0x6100)
      chuid = chuid_from_prefix (r->data, r->len);
  }
  for (gsize i = 0; i < G_N_ELEMENTS (objects); i++)
    {
      guint16 sw = 0;
      g_autoptr (GByteArray) r = NULL;
      GBytes *der;
      if (!objects[i].always && !(flags & CM_READ_ALL))
        continue;
      if ((r = get_data (&s, objects[i].tag, 3, FALSE, &sw, error)) == NULL)
        goto out;
      if (sw == 0x6a82 || r->len == 0)
        continue; /* empty slot: not activated or not issued */
      if (sw != 0x9000)
        {
          g_autofree char *why = cm_status_word_message (sw);
          g_set_error (error, CM_ERROR, CM_ERROR_ENVIRONMENT,
                       "reading slot %s from the card in reader '%s': %s",
                       cm_slot_to_string (objects[i].slot), reader, why);
          goto out;
        }
      if ((der = cert_from_container (r->data, r->len, error)) == NULL)
        goto out;
      g_hash_table_insert (slot_certs, GUINT_TO_POINTER (objects[i].slot), der);
    }
  ok = cm_inventory_add_card (inv, CM_SOURCE_CARD, reader, g_steal_pointer (&chuid), slot_certs,
                              error);

out:
  cm_chuid_free (chuid);
  if (in_tx)
    SCardEndTransaction (s.card, SCARD_LEAVE_CARD);
  SCardDisconnect (s.card, SCARD_LEAVE_CARD);
out_ctx:
  SCardReleaseContext (s.ctx);
  return ok;
}

GPtrArray *
cm_pcsc_list_readers_sync (GCancellable *cancellable, GError **error)
{
  SCARDCONTEXT ctx;
  DWORD len = 0;
  g_autofree char *names = NULL;
  GPtrArray *out = NULL;
  LONG rv;

  if (g_cancellable_set_error_if_cancelled (cancellable, error))
    return NULL;
  rv = SCardEstablishContext (SCARD_SCOPE_SYSTEM, NULL, NULL, &ctx);
  if (rv != SCARD_S_SUCCESS)
    {
      pcsc_error (error, rv, NULL, "connecting to pcscd");
      return NULL;
    }
  out = g_ptr_array_new_with_free_func ((GDestroyNotify)cm_reader_info_free);
  rv = SCardListReaders (ctx, NULL, NULL, &len);
  if (rv == (LONG)SCARD_E_NO_READERS_AVAILABLE)
    goto done;
  if (rv == SCARD_S_SUCCESS)
    {
      names = g_malloc0 (len + 1);
      rv = SCardListReaders (ctx, NULL, names, &len);
    }
  if (rv != SCARD_S_SUCCESS)
    {
      g_clear_pointer (&out, g_ptr_array_unref);
      pcsc_error (error, rv, NULL, "listing readers");
      goto done;
    }
  for (const char *n = names; *n; n += strlen (n) + 1)
    {
      CmReaderInfo *info = g_new0 (CmReaderInfo, 1);
      SCARD_READERSTATE st = { .szReader = n, .dwCurrentState = SCARD_STATE_UNAWARE };
      info->name = g_strdup (n);
      if (SCardGetStatusChange (ctx, 0, &st, 1) == SCARD_S_SUCCESS
          && (st.dwEventState & SCARD_STATE_PRESENT))
        {
          info->card_present = TRUE;
          info->atr = cm_hex_encode (st.rgbAtr, st.cbAtr, TRUE);
        }
      g_ptr_array_add (out, info);
    }
done:
  SCardReleaseContext (ctx);
  return out;
}
