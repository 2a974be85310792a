/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* fuzz-chuid.c: the CHUID TLV parser and the FASC-N decoder. */
#include "cm-private.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  g_autoptr (CmChuid) chuid = cm_chuid_parse (data, size, NULL);
  CmFascn f;

  if (chuid)
    {
      g_autofree char *id = cm_chuid_identity (chuid);
      (void)id;
    }
  if (size >= CM_FASCN_LEN)
    cm_fascn_decode (data, CM_FASCN_LEN, &f, NULL);
  return 0;
}
