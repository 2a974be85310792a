/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* fuzz-pfx.c: the PKCS#12 front end of import-p12 (cm-nssdb-pfx.c, cm-nssdb-pfx-walk.c): the
 * first look at the bytes, the walk to the bags with every key-derivation cost checked, the
 * password-encrypted parts opened in memory (with the seeds' password, when the file asks for
 * few iterations: a fuzzer must not spend its time deriving keys), and the keys paired with
 * their certificates. */
#include "cm-nssdb-pfx.h"
#include "fuzz.h"
#include <pk11pub.h>

#define PASSWORD "escrow-pass" /* tests/pki/make-pki's escrow files, the seeds */
#define MAX_ITERATIONS 20000   /* opened only below this, all derivations of the file */

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  CmPfx pfx = { 0 };

  if (!cm_init (NULL))
    return 0;
  if (cm_nssdb_pfx_check_shape (data, size, "fuzz.p12", NULL)
      && cm_nssdb_pfx_parse (data, size, &pfx, "fuzz.p12", NULL)
      && pfx.iterations <= MAX_ITERATIONS)
    {
      PK11SlotInfo *slot = PK11_GetInternalSlot ();
      SECItem *pw = cm_nssdb_pfx_password (PASSWORD);
      g_autoptr (GPtrArray) with_key = g_ptr_array_new ();
      g_autoptr (GPtrArray) pairs = NULL;

      if (pfx.sealed->len == 0
          || cm_nssdb_pfx_open_sealed (&pfx, slot, pw, PASSWORD, "fuzz.p12", NULL))
        {
          for (guint i = 0; i < pfx.certs->len; i++)
            g_ptr_array_add (with_key, ((CmPfxCert *)g_ptr_array_index (pfx.certs, i))->der);
          pairs = cm_nssdb_pfx_pair (&pfx, with_key, pfx.keys->len, "fuzz.p12", NULL);
        }
      g_clear_pointer (&pairs, g_ptr_array_unref);
      cm_nssdb_pfx_password_free (pw);
      PK11_FreeSlot (slot);
    }
  cm_nssdb_pfx_clear (&pfx);
  return 0;
}
