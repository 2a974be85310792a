/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* fuzz-cac.c: the two files of a CAC (GSC-IS) PKI applet as cm-cac.c cuts them: the input is
 * the TL file's length (2 bytes, little-endian, as the card stores it), the TL file (SimpleTLV
 * tags and lengths, 1 byte or FF + 2 bytes little-endian), and the V file (the rest). */
#include "cm-pcsc-private.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  CmApduSession s = { .reader = "fuzz" };
  /* never NULL data, as the card's files read into arrays (their length bytes removed) */
  g_autoptr (GByteArray) tl = g_byte_array_sized_new ((guint)size + 1);
  g_autoptr (GByteArray) v = g_byte_array_sized_new ((guint)size + 1);
  g_autoptr (GBytes) der = NULL;
  size_t tl_len;

  if (size < 2 || !cm_init (NULL))
    return 0;
  tl_len = MIN (size - 2, (size_t)(data[0] | (data[1] << 8)));
  g_byte_array_append (tl, data + 2, (guint)tl_len);
  g_byte_array_append (v, data + 2 + tl_len, (guint)(size - 2 - tl_len));
  der = cm_cac_cert_from_files (&s, tl, v, NULL);
  if (der)
    {
      g_autoptr (CmCert) cert = cm_cert_new_from_der (der, NULL, NULL);
      (void)cert;
    }
  return 0;
}
