/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* fuzz-piv-container.c: what a PIV card answers to GET DATA, as cm-pcsc.c reads it: a
 * certificate container 53 { 70 cert | 71 CertInfo | FE } (gzip-inflated when CertInfo says so,
 * then decoded as a certificate) and the CHUID taken from the first chunk of its container. */
#include "cm-pcsc-private.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  g_autoptr (GBytes) der = NULL;
  g_autoptr (CmChuid) chuid = NULL;

  if (!cm_init (NULL))
    return 0;
  der = cm_card_cert_from_container (data, size, NULL);
  if (der)
    {
      g_autoptr (CmCert) cert = cm_cert_new_from_der (der, NULL, NULL);
      (void)cert;
    }
  chuid = cm_card_chuid_from_prefix (data, size);
  if (chuid)
    {
      g_autofree char *id = cm_chuid_identity (chuid);
      (void)id;
    }
  return 0;
}
