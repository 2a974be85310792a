/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* fuzz-ber-der.c: the BER to DER rewrite of the userSMIMECertificate blob (cm-ldap-card.c:
 * NSS's CMS encoder writes indefinite lengths, the directory wants DER). What it accepts whole
 * must come out as DER that the rewrite gives back unchanged. */
#include "cm-ldap-private.h"
#include "fuzz.h"
#include <stdio.h>
#include <stdlib.h>

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  g_autoptr (GByteArray) der = g_byte_array_new ();
  g_autoptr (GByteArray) again = g_byte_array_new ();

  if (size == 0 || cm_ldap_ber_to_der (data, size, der, 0) != size)
    return 0;
  if (cm_ldap_ber_to_der (der->data, der->len, again, 0) != der->len || again->len != der->len
      || memcmp (again->data, der->data, der->len) != 0)
    {
      fprintf (stderr, "fuzz-ber-der: the DER written is not DER to the rewrite itself\n");
      abort ();
    }
  return 0;
}
