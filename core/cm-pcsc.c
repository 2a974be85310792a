/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cm-pcsc.c: read PIV cards over pcsc-lite in as few APDUs as the card allows: SELECT, the
 * CHUID's first chunk (FASC-N and GUID come first), then only the certificate containers the
 * task needs. Extended-length APDUs where the reader takes them, else short APDUs with the
 * largest Le and 61xx/GET RESPONSE chaining. A card seen before is confirmed from the first
 * chunk of each container (serial and issuer) against the public-data cache. Every loop over
 * the card's answers is bounded (count, bytes, a deadline per read): a card that breaks the
 * protocol ends the read with "does not answer properly: remove and reinsert it". */
#include "cm-pcsc-private.h"

static const guint8 piv_aid[] = { 0xa0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00 };

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
    { 0x6b00, "offset outside the object" },
  };

  if ((sw & 0xfff0) == 0x63c0)
    {
      guint left = sw & 0xf;
      return left == 0
               ? g_strdup ("wrong PIN, no tries left: the PIN is now blocked")
               : g_strdup_printf ("wrong PIN, %u PIN tr%s left", left, left == 1 ? "y" : "ies");
    }
  for (gsize i = 0; i < G_N_ELEMENTS (table); i++)
    if (table[i].sw == sw)
      return g_strdup (table[i].msg);
  return g_strdup_printf ("card error (status %04X)", sw);
}

void
cm_pcsc_set_error (GError **error, LONG rv, const char *reader, const char *what)
{
  const char *r = reader ? reader : "?";

  if (rv == (LONG)SCARD_E_NO_SERVICE || rv == (LONG)SCARD_E_SERVICE_STOPPED)
    g_set_error (error, CM_ERROR, CM_ERROR_ENVIRONMENT,
                 CM_PCSCD_NOT_RUNNING_TEXT ": start it (systemctl start pcscd.socket, or pcscd "
                                           "as root) and try again");
  else if ((rv == (LONG)SCARD_W_REMOVED_CARD || rv == (LONG)SCARD_E_NO_SMARTCARD
            || rv == (LONG)SCARD_E_NOT_TRANSACTED || rv == (LONG)SCARD_W_UNPOWERED_CARD
            || rv == (LONG)SCARD_W_UNRESPONSIVE_CARD)
           && g_str_has_prefix (what, "sending"))
    /* pcsc-lite reports a card pulled mid-APDU as "not transacted" as often as "removed" */
    g_set_error (error, CM_ERROR, CM_ERROR_ENVIRONMENT,
                 "card removed during the read from reader '%s': re-insert it and try again", r);
  else if (rv == (LONG)SCARD_W_REMOVED_CARD || rv == (LONG)SCARD_E_NO_SMARTCARD)
    g_set_error (error, CM_ERROR, CM_ERROR_ENVIRONMENT,
                 "no card in reader '%s': insert it and try again", r);
  else if (rv == (LONG)SCARD_W_RESET_CARD)
    g_set_error (error, CM_ERROR, CM_ERROR_ENVIRONMENT,
                 "the card in reader '%s' was reset by another program: try again", r);
  else if (rv == (LONG)SCARD_E_UNKNOWN_READER || rv == (LONG)SCARD_E_READER_UNAVAILABLE)
    g_set_error (error, CM_ERROR, CM_ERROR_NOT_FOUND,
                 "reader '%s' is not connected: run 'cacmail status' for the reader names", r);
  else if (rv == (LONG)SCARD_E_CANCELLED)
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED, "cancelled");
  else
    g_set_error (error, CM_ERROR, CM_ERROR_ENVIRONMENT,
                 "%s failed on reader '%s': %s; re-insert the card", what, r,
                 pcsc_stringify_error (rv));
}

gboolean
cm_apdu_not_answering (CmApduSession *s, const char *why, GError **error)
{
  s->broken = TRUE;
  g_set_error (error, CM_ERROR, CM_ERROR_ENVIRONMENT,
               "the card in reader '%s' does not answer properly (%s): remove and reinsert it",
               s->reader, why);
  return FALSE;
}

/* The most data a command lets the card answer with (Ne); 256 when it asks for none (a card
 * that answers a case 1 or 3 command with some data is tolerated, up to a short APDU's worth). */
static gsize
apdu_ne (const guint8 *c, gsize n)
{
  gsize lc, le;

  if (n <= 4)
    return 256;
  if (n == 5)
    return c[4] ? c[4] : 256;
  if (c[4] != 0)
    return n == 6 + (gsize)c[4] && c[n - 1] ? c[n - 1] : 256;
  if (n == 7)
    le = ((gsize)c[5] << 8) | c[6];
  else
    {
      lc = ((gsize)c[5] << 8) | c[6];
      if (n != 9 + lc)
        return 65536;
      le = ((gsize)c[n - 2] << 8) | c[n - 1];
    }
  return le ? le : 65536;
}

#define CM_MAX_RESPONSE (65536 + 2)

/* One exchange: the answer (data + SW, at least 2 bytes, data no longer than Ne) in @resp. */
static gboolean
transmit_once (CmApduSession *s, const guint8 *cmd, gsize cmd_len, guint8 *resp, DWORD *rlen,
               GError **error)
{
  const SCARD_IO_REQUEST *pci = s->proto == SCARD_PROTOCOL_T1 ? SCARD_PCI_T1 : SCARD_PCI_T0;
  LONG rv;

  if (g_cancellable_set_error_if_cancelled (s->cancellable, error))
    return FALSE;
  if (s->broken)
    return cm_apdu_not_answering (s, "it broke the protocol earlier in this read", error);
  if (s->deadline && g_get_monotonic_time () > s->deadline)
    return cm_apdu_not_answering (s, "the read took over " G_STRINGIFY (CM_READ_SECONDS) " s",
                                  error);
  *rlen = CM_MAX_RESPONSE;
  rv = SCardTransmit (s->card, pci, cmd, (DWORD)cmd_len, NULL, resp, rlen);
  if (s->stats)
    {
      s->stats->apdus++;
      s->stats->bytes_sent += cmd_len;
      if (rv == SCARD_S_SUCCESS)
        s->stats->bytes_received += *rlen;
    }
  if (rv == (LONG)SCARD_E_INSUFFICIENT_BUFFER)
    return cm_apdu_not_answering (s, "an answer longer than any APDU", error);
  if (rv != SCARD_S_SUCCESS)
    {
      cm_pcsc_set_error (error, rv, s->reader, "sending a command to the card");
      return FALSE;
    }
  if (*rlen == 0) /* no card sends nothing: the reader lost it (vpcd does this on removal) */
    {
      cm_pcsc_set_error (error, (LONG)SCARD_W_REMOVED_CARD, s->reader,
                         "sending a command to the card");
      return FALSE;
    }
  if (*rlen < 2)
    return cm_apdu_not_answering (s, "an answer without a status word", error);
  if (*rlen - 2 > apdu_ne (cmd, cmd_len))
    return cm_apdu_not_answering (s, "more data than the command asked for", error);
  return TRUE;
}

GByteArray *
cm_apdu_transmit (CmApduSession *s, const guint8 *apdu, gsize len, guint16 *sw,
                  gboolean first_chunk_only, GError **error)
{
  g_autoptr (GByteArray) out = g_byte_array_new ();
  g_autofree guint8 *resp = g_malloc (CM_MAX_RESPONSE);
  guint8 cmd[5 + 255 + 3 + 8];
  gsize cmd_len = len;
  guint resends = 0;
  DWORD rlen = 0;

  *sw = 0;
  g_return_val_if_fail (len <= sizeof cmd, NULL);
  memcpy (cmd, apdu, len);
  for (;;)
    {
      if (!transmit_once (s, cmd, cmd_len, resp, &rlen, error))
        return NULL;
      *sw = (guint16)((resp[rlen - 2] << 8) | resp[rlen - 1]);
      if ((*sw & 0xff00) != 0x6c00 || cmd_len < 5 || cmd[1] == 0xc0)
        break;
      if (++resends > CM_MAX_RESEND)
        {
          cm_apdu_not_answering (s, "it keeps asking for another length", error);
          return NULL;
        }
      cmd[cmd_len - 1] = (guint8)(*sw & 0xff); /* resend with the exact Le */
    }
  g_byte_array_append (out, resp, rlen - 2);
  if (!first_chunk_only && !cm_apdu_get_rest (s, out, sw, error))
    return NULL;
  return g_steal_pointer (&out);
}

gboolean
cm_apdu_get_rest (CmApduSession *s, GByteArray *data, guint16 *sw, GError **error)
{
  g_autofree guint8 *resp = NULL;
  guint rounds = 0, empty = 0;

  while ((*sw & 0xff00) == 0x6100)
    {
      guint8 get_response[] = { 0x00, 0xc0, 0x00, 0x00, (guint8)(*sw & 0xff) };
      DWORD rlen = 0;

      if (++rounds > CM_MAX_GET_RESPONSE)
        return cm_apdu_not_answering (s, "its answer never ends", error);
      if (resp == NULL)
        resp = g_malloc (CM_MAX_RESPONSE);
      if (!transmit_once (s, get_response, sizeof get_response, resp, &rlen, error))
        return FALSE;
      *sw = (guint16)((resp[rlen - 2] << 8) | resp[rlen - 1]);
      empty = rlen == 2 ? empty + 1 : 0;
      if (empty > CM_MAX_EMPTY_61 && (*sw & 0xff00) == 0x6100)
        return cm_apdu_not_answering (s, "it announces more data and sends none", error);
      g_byte_array_append (data, resp, rlen - 2);
      if (data->len > CM_MAX_OBJECT)
        return cm_apdu_not_answering (s, "an object over 64 KiB", error);
    }
  return TRUE;
}

static gsize
get_data_apdu (guint8 *apdu, const guint8 *tag, gsize tag_len, gboolean extended)
{
  gsize n = 0;

  apdu[n++] = 0x00, apdu[n++] = 0xcb, apdu[n++] = 0x3f, apdu[n++] = 0xff;
  if (extended)
    apdu[n++] = 0x00, apdu[n++] = 0x00; /* Lc as 00 hi lo */
  apdu[n++] = (guint8)(tag_len + 2);
  apdu[n++] = 0x5c, apdu[n++] = (guint8)tag_len;
  memcpy (apdu + n, tag, tag_len), n += tag_len;
  apdu[n++] = 0x00; /* short: Le 256; extended: Le 00 00 = 65536 */
  if (extended)
    apdu[n++] = 0x00;
  return n;
}

/* GET DATA of a whole object: extended length if the reader takes it (learned once per
 * session), else short with chaining. With @first_chunk_only, one short APDU: the caller
 * decides whether to fetch the rest with cm_apdu_get_rest(). */
static GByteArray *
get_data (CmApduSession *s, const guint8 *tag, gsize tag_len, gboolean first_chunk_only,
          guint16 *sw, GError **error)
{
  guint8 apdu[16];
  gsize n;

  if (!first_chunk_only && (s->extended_ok || !s->extended_tried))
    {
      g_autoptr (GError) local = NULL;
      GByteArray *r;
      gboolean probing = !s->extended_tried;

      s->extended_tried = TRUE;
      n = get_data_apdu (apdu, tag, tag_len, TRUE);
      r = cm_apdu_transmit (s, apdu, n, sw, FALSE, &local);
      if (r && *sw != 0x6700 && (*sw & 0xff00) != 0x6800)
        {
          s->extended_ok = TRUE;
          if (s->stats)
            s->stats->extended = TRUE;
          return r;
        }
      if (r)
        g_byte_array_unref (r);
      if (!probing || s->broken || (local && local->domain == G_IO_ERROR))
        {
          g_propagate_error (error, g_steal_pointer (&local));
          return NULL;
        }
      /* The reader refused it: short APDUs from now on. */
    }
  n = get_data_apdu (apdu, tag, tag_len, FALSE);
  return cm_apdu_transmit (s, apdu, n, sw, first_chunk_only, error);
}

static gboolean
select_piv (CmApduSession *s, GError **error)
{
  guint8 apdu[5 + sizeof piv_aid + 1] = { 0x00, 0xa4, 0x04, 0x00, sizeof piv_aid };
  g_autoptr (GByteArray) r = NULL;
  guint16 sw = 0;

  memcpy (apdu + 5, piv_aid, sizeof piv_aid);
  apdu[sizeof apdu - 1] = 0x00;
  if ((r = cm_apdu_transmit (s, apdu, sizeof apdu, &sw, FALSE, error)) == NULL)
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

GBytes *
cm_inflate (const guint8 *p, gsize len, GError **error)
{
  z_stream zs = { 0 };
  g_autoptr (GByteArray) out = g_byte_array_new ();
  guint8 buf[4096];
  int zr;

  if (inflateInit2 (&zs, 15 + 32) != Z_OK)
    goto bad;
  zs.next_in = (Bytef *)p;
  zs.avail_in = (uInt)len;
  do
    {
      zs.next_out = buf;
      zs.avail_out = sizeof buf;
      zr = inflate (&zs, Z_NO_FLUSH);
      g_byte_array_append (out, buf, sizeof buf - zs.avail_out);
    }
  while (zr == Z_OK && out->len <= CM_MAX_OBJECT);
  inflateEnd (&zs);
  if (zr == Z_STREAM_END)
    return g_byte_array_free_to_bytes (g_steal_pointer (&out));
bad:
  g_set_error (error, CM_ERROR, CM_ERROR_BAD_INPUT,
               "a compressed certificate on the card does not inflate: the card may be damaged");
  return NULL;
}

GBytes *
cm_card_cert_from_container (const guint8 *p, gsize len, GError **error)
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
    return cm_inflate (cert.p, cert.len, error);
  return g_bytes_new (cert.p, cert.len);

bad:
  g_set_error (error, CM_ERROR, CM_ERROR_BAD_INPUT,
               "a certificate container on the card is malformed: the card may be damaged");
  return NULL;
}

CmChuid *
cm_card_chuid_from_prefix (const guint8 *p, gsize len)
{
  CmBerHeader h;
  CmDer cur, v;
  const guint8 *start;
  guint8 tag;

  /* the container's own length may run past the chunk: only its header must be in it */
  if (!cm_ber_header (p, len, CM_BER_DEFINITE, &h) || h.id != 0x53)
    return NULL;
  start = p + h.hdr_len;
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

/* Read one certificate container; from @cache when @trust_cache and its first chunk is the
 * cached one and agrees with the cached certificate (cm_card_cache_match); the cache learns
 * what was read either way. Returns FALSE with @error on failure;
 * *@der stays NULL for an empty slot. */
static gboolean
read_container (CmApduSession *s, const guint8 tag[3], CmCardCache *cache, gboolean trust_cache,
                GBytes **der, GError **error)
{
  g_autoptr (GByteArray) r = NULL;
  g_autofree char *key = cm_hex_encode (tag, 3, FALSE);
  guint16 sw = 0;
  gsize first_len;

  *der = NULL;
  if (cache && trust_cache && cm_card_cache_has (cache, key))
    {
      /* Warm: one short APDU; the rest only if the card changed. */
      if ((r = get_data (s, tag, 3, TRUE, &sw, error)) == NULL)
        return FALSE;
      if (sw == 0x6a82)
        return TRUE;
      /* a container that fits in one chunk came whole: nothing to take from the cache */
      if ((sw & 0xff00) == 0x6100)
        *der = cm_card_cache_match (cache, key, r->data, r->len);
      if (*der)
        {
          s->stats->from_cache++;
          return TRUE;
        }
      first_len = r->len;
      if (!cm_apdu_get_rest (s, r, &sw, error))
        return FALSE;
    }
  else
    {
      if ((r = get_data (s, tag, 3, FALSE, &sw, error)) == NULL)
        return FALSE;
      first_len = MIN (r->len, 256);
    }
  if (sw == 0x6a82 || (sw == 0x9000 && r->len == 0))
    return TRUE; /* empty slot: not activated or not issued */
  if (sw != 0x9000)
    {
      g_autofree char *why = cm_status_word_message (sw);
      g_set_error (error, CM_ERROR, CM_ERROR_ENVIRONMENT,
                   "reading object %s from the card in reader '%s': %s", key, s->reader, why);
      return FALSE;
    }
  if ((*der = cm_card_cert_from_container (r->data, r->len, error)) == NULL)
    return FALSE;
  if (cache)
    cm_card_cache_put (cache, key, r->data, first_len, *der);
  return TRUE;
}

/* Key History (5FC10C): C1 = retired certificates held on the card. */
static guint
retired_on_card (CmApduSession *s, GError **error)
{
  static const guint8 tag[] = { 0x5f, 0xc1, 0x0c };
  g_autoptr (GByteArray) r = NULL;
  CmDer cur, body, v;
  guint8 t;
  guint16 sw = 0;

  if ((r = get_data (s, tag, 3, FALSE, &sw, error)) == NULL || sw != 0x9000)
    return 0;
  cur = cm_der_init (r->data, r->len);
  if (!cm_der_expect (&cur, 0x53, &body))
    return 0;
  while (body.len > 0 && cm_der_next (&body, &t, &v))
    if (t == 0xc1 && v.len == 1)
      return MIN (v.p[0], 20);
  return 0;
}

/* VERIFY with no data asks the retry counter without spending a try. */
static void
pin_status (CmApduSession *s)
{
  static const guint8 verify[] = { 0x00, 0x20, 0x00, 0x80 };
  g_autoptr (GByteArray) r = NULL;
  guint16 sw = 0;

  if (s->stats == NULL || s->broken
      || (r = cm_apdu_transmit (s, verify, sizeof verify, &sw, FALSE, NULL)) == NULL)
    return;
  if (sw == 0x9000)
    s->stats->pin_verified = TRUE;
  else if (sw == 0x6983)
    s->stats->pin_tries_left = 0;
  else if ((sw & 0xfff0) == 0x63c0)
    s->stats->pin_tries_left = sw & 0xf;
}

gboolean
cm_card_read_sync (CmInventory *inv, const char *reader, CmReadFlags flags, CmCardReport *report,
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
  CmCardReport local_report = { 0 };
  CmApduSession s = { .reader = reader, .cancellable = cancellable };
  g_autoptr (GHashTable) slot_certs
    = g_hash_table_new_full (g_direct_hash, g_direct_equal, NULL, (GDestroyNotify)g_bytes_unref);
  g_autoptr (CmCardCache) cache = NULL;
  CmChuid *chuid = NULL;
  gboolean ok = FALSE, in_tx = FALSE;
  LONG rv;

  s.stats = report ? report : &local_report;
  memset (s.stats, 0, sizeof *s.stats);
  s.stats->pin_tries_left = -1;
  s.deadline = g_get_monotonic_time () + CM_READ_SECONDS * G_USEC_PER_SEC;
  if (flags & CM_READ_SHORT_ONLY)
    s.extended_tried = TRUE;
  rv = SCardEstablishContext (SCARD_SCOPE_SYSTEM, NULL, NULL, &s.ctx);
  if (rv != SCARD_S_SUCCESS)
    {
      cm_pcsc_set_error (error, rv, reader, "connecting to pcscd");
      return FALSE;
    }
  rv = SCardConnect (s.ctx, reader, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T0 | SCARD_PROTOCOL_T1,
                     &s.card, &s.proto);
  if (rv != SCARD_S_SUCCESS)
    {
      cm_pcsc_set_error (error, rv, reader, "connecting to the card");
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
      chuid = cm_card_chuid_from_prefix (r->data, r->len);
  }
  if (chuid)
    {
      g_autofree char *id = cm_chuid_identity (chuid);
      g_autofree char *key = g_strdup_printf (
        "%s/%s", id, cm_chuid_get_guid (chuid) ? cm_chuid_get_guid (chuid) : "-");
      cache = cm_card_cache_load (key);
    }
  for (gsize i = 0; i < G_N_ELEMENTS (objects); i++)
    {
      GBytes *der = NULL;
      if (!objects[i].always && !(flags & CM_READ_ALL))
        continue;
      if (!read_container (&s, objects[i].tag, cache, !(flags & CM_READ_NO_CACHE), &der, error))
        goto out;
      if (der)
        g_hash_table_insert (slot_certs, GUINT_TO_POINTER (objects[i].slot), der);
    }
  if (flags & CM_READ_ALL)
    {
      guint n = retired_on_card (&s, error);
      if (error && *error)
        goto out;
      for (guint i = 0; i < n; i++)
        {
          guint8 tag[3] = { 0x5f, 0xc1, (guint8)(0x0d + i) };
          GBytes *der = NULL;
          if (!read_container (&s, tag, NULL, FALSE, &der, error))
            goto out;
          if (der)
            g_hash_table_insert (slot_certs, GUINT_TO_POINTER (CM_SLOT_RETIRED_FIRST + i), der);
        }
      pin_status (&s);
      if (!cm_cac_read_certs (&s, slot_certs, error))
        goto out;
    }
  ok = cm_inventory_add_card (inv, CM_SOURCE_CARD, reader, g_steal_pointer (&chuid), slot_certs,
                              error);
  if (ok && cache)
    cm_card_cache_save (cache);

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
      cm_pcsc_set_error (error, rv, NULL, "connecting to pcscd");
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
      cm_pcsc_set_error (error, rv, NULL, "listing readers");
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

static void
cancel_wait (GCancellable *cancellable, gpointer ctx)
{
  SCardCancel (*(SCARDCONTEXT *)ctx);
}

gboolean
cm_pcsc_wait_change_sync (guint timeout_ms, GCancellable *cancellable, GError **error)
{
  SCARDCONTEXT ctx;
  g_autofree char *names = NULL;
  g_autoptr (GArray) states = g_array_new (FALSE, TRUE, sizeof (SCARD_READERSTATE));
  DWORD len = 0;
  gulong handler = 0;
  gboolean changed = FALSE;
  LONG rv;

  if (g_cancellable_set_error_if_cancelled (cancellable, error))
    return FALSE;
  rv = SCardEstablishContext (SCARD_SCOPE_SYSTEM, NULL, NULL, &ctx);
  if (rv != SCARD_S_SUCCESS)
    {
      cm_pcsc_set_error (error, rv, NULL, "connecting to pcscd");
      return FALSE;
    }
  if (SCardListReaders (ctx, NULL, NULL, &len) == SCARD_S_SUCCESS)
    {
      names = g_malloc0 (len + 1);
      if (SCardListReaders (ctx, NULL, names, &len) != SCARD_S_SUCCESS)
        names[0] = '\0';
    }
  for (const char *n = names; n && *n; n += strlen (n) + 1)
    {
      SCARD_READERSTATE st = { .szReader = n, .dwCurrentState = SCARD_STATE_UNAWARE };
      g_array_append_val (states, st);
    }
  {
    /* The special name asks pcscd to report readers that come or go. */
    SCARD_READERSTATE pnp
      = { .szReader = "\\\\?PnP?\\Notification", .dwCurrentState = SCARD_STATE_UNAWARE };
    g_array_append_val (states, pnp);
  }
  /* Learn the current state first, then wait for it to change. */
  SCardGetStatusChange (ctx, 0, (SCARD_READERSTATE *)states->data, states->len);
  for (guint i = 0; i < states->len; i++)
    {
      SCARD_READERSTATE *st = &g_array_index (states, SCARD_READERSTATE, i);
      st->dwCurrentState = st->dwEventState & ~SCARD_STATE_CHANGED;
    }
  if (cancellable)
    handler = g_cancellable_connect (cancellable, G_CALLBACK (cancel_wait), &ctx, NULL);
  rv = SCardGetStatusChange (ctx, timeout_ms ? timeout_ms : INFINITE,
                             (SCARD_READERSTATE *)states->data, states->len);
  if (handler)
    g_cancellable_disconnect (cancellable, handler);
  if (rv == SCARD_S_SUCCESS)
    changed = TRUE;
  else if (rv != (LONG)SCARD_E_TIMEOUT)
    cm_pcsc_set_error (error, rv, NULL, "waiting for a card");
  SCardReleaseContext (ctx);
  return changed;
}
