/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cm-cac.c: the DoD CAC's GSC-IS PKI applets (AIDs A0 00 00 00 79 01 00..02), read in the same
 * session as the PIV applet: OpenSC shows one applet family at a time, cacmail both.
 *
 * A PKI applet's object is split into a tag-length file and a value file (SimpleTLV: tag,
 * length in 1 byte or FF + 2 bytes little-endian). READ BUFFER (80 52 P1P2=offset, data
 * {01 = TL | 02 = V, count}) reads each file, which starts with its own length in 2 bytes
 * little-endian. Tag 70 holds the certificate, 71 its CertInfo (bit 0: gzip). */
#include "cm-pcsc-private.h"

#define CAC_CHUNK 0xff

static gboolean
select_cac_applet (CmApduSession *s, guint8 n, gboolean *present, GError **error)
{
  guint8 apdu[] = { 0x00, 0xa4, 0x04, 0x00, 0x07, 0xa0, 0x00, 0x00, 0x00, 0x79, 0x01, n };
  g_autoptr (GByteArray) r = NULL;
  guint16 sw = 0;

  *present = FALSE;
  if ((r = cm_apdu_transmit (s, apdu, sizeof apdu, &sw, FALSE, error)) == NULL)
    return FALSE;
  *present = sw == 0x9000;
  return TRUE;
}

/* Read a whole TL (1) or V (2) file: its 2-byte length, then the contents. */
static GByteArray *
read_buffer_file (CmApduSession *s, guint8 which, GError **error)
{
  g_autoptr (GByteArray) file = g_byte_array_new ();
  gsize total = 0;
  gboolean have_len = FALSE;

  for (;;)
    {
      gsize off = file->len;
      gsize want = have_len ? MIN (CAC_CHUNK, total + 2 - off) : CAC_CHUNK;
      guint8 apdu[] = { 0x80, 0x52, (guint8)(off >> 8), (guint8)off, 0x02, which, (guint8)want };
      g_autoptr (GByteArray) r = NULL;
      guint16 sw = 0;

      if (have_len && off >= total + 2)
        break;
      if ((r = cm_apdu_transmit (s, apdu, sizeof apdu, &sw, FALSE, error)) == NULL)
        return NULL;
      if (sw != 0x9000 || r->len == 0)
        {
          g_autofree char *why = cm_status_word_message (sw);
          g_set_error (error, CM_ERROR, CM_ERROR_BAD_INPUT,
                       "reading a CAC applet of the card in reader '%s': %s", s->reader, why);
          return NULL;
        }
      if (r->len > want)
        {
          cm_apdu_not_answering (s, "more data than READ BUFFER asked for", error);
          return NULL;
        }
      g_byte_array_append (file, r->data, r->len);
      if (!have_len && file->len >= 2)
        {
          total = file->data[0] | ((gsize)file->data[1] << 8);
          have_len = TRUE;
        }
      if (file->len > CM_MAX_OBJECT)
        {
          g_set_error (error, CM_ERROR, CM_ERROR_BAD_INPUT,
                       "a CAC applet of the card in reader '%s' is over 64 KiB", s->reader);
          return NULL;
        }
    }
  g_byte_array_remove_range (file, 0, 2);
  g_byte_array_set_size (file, (guint)total);
  return g_steal_pointer (&file);
}

GBytes *
cm_cac_cert_from_files (CmApduSession *s, GByteArray *tl, GByteArray *v, GError **error)
{
  gsize i = 0, voff = 0;
  const guint8 *cert = NULL;
  gsize cert_len = 0;
  guint8 info = 0;

  while (i < tl->len)
    {
      guint8 tag = tl->data[i++];
      gsize len;
      if (i >= tl->len)
        goto bad;
      len = tl->data[i++];
      if (len == 0xff)
        {
          if (i + 2 > tl->len)
            goto bad;
          len = tl->data[i] | ((gsize)tl->data[i + 1] << 8);
          i += 2;
        }
      if (voff + len > v->len)
        goto bad;
      if (tag == 0x70)
        cert = v->data + voff, cert_len = len;
      else if (tag == 0x71 && len == 1)
        info = v->data[voff];
      voff += len;
    }
  if (cert == NULL || cert_len == 0)
    goto bad;
  if (info & 0x01)
    return cm_inflate (cert, cert_len, error);
  return g_bytes_new (cert, cert_len);

bad:
  g_set_error (error, CM_ERROR, CM_ERROR_BAD_INPUT,
               "a CAC certificate object of the card in reader '%s' is malformed", s->reader);
  return NULL;
}

gboolean
cm_cac_read_certs (CmApduSession *s, GHashTable *slot_certs, GError **error)
{
  static const CmSlot slots[] = { CM_SLOT_CAC_ID, CM_SLOT_CAC_SIGN, CM_SLOT_CAC_ENC };

  for (guint8 n = 0; n < G_N_ELEMENTS (slots); n++)
    {
      g_autoptr (GByteArray) tl = NULL;
      g_autoptr (GByteArray) v = NULL;
      gboolean present;
      GBytes *der;

      if (!select_cac_applet (s, n, &present, error))
        return FALSE;
      if (!present)
        continue;
      if ((tl = read_buffer_file (s, 0x01, error)) == NULL
          || (v = read_buffer_file (s, 0x02, error)) == NULL
          || (der = cm_cac_cert_from_files (s, tl, v, error)) == NULL)
        return FALSE;
      g_hash_table_insert (slot_certs, GUINT_TO_POINTER (slots[n]), der);
    }
  return TRUE;
}
