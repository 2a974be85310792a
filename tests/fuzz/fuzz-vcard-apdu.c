/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* fuzz-vcard-apdu.c: the virtual card's command side (tests/virtual-card): APDU parsing,
 * chaining, GET RESPONSE, the PIV and CAC applets and the hostile modes, fed as vpcd feeds
 * them. Input: one byte of options (bit 0 short-only, 1 gzip, 2 no PIV, bits 3-5 hostile
 * mode), then frames of a 2-byte big-endian length and a payload; a 1-byte payload is a
 * control frame (0 power off, 2 reset), anything else an APDU. The card is the folder
 * data/vcard-card (certificates, CHUID, EC keys), fresh for each input. */
#include "../virtual-card/vcard.h"
#include "fuzz.h"
#include <stdio.h>
#include <stdlib.h>

static VcFolder folder;
static gboolean loaded;

static void
load (void)
{
  g_autoptr (GError) error = NULL;

  if (loaded)
    return;
  vc_crypto_init ();
  if (!vc_folder_load (&folder, FUZZ_DATA_DIR "/vcard-card", &error))
    {
      fprintf (stderr, "fuzz-vcard-apdu: %s\n", error->message);
      abort ();
    }
  loaded = TRUE;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  VcOptions opt = { .pin = "123456" };
  VcHostile hostile;
  VcCard card;
  size_t pos = 1;

  if (size < 1)
    return 0;
  load ();
  opt.short_only = (data[0] & 1) != 0;
  opt.gzip = (data[0] & 2) != 0;
  opt.no_piv = (data[0] & 4) != 0;
  hostile = (VcHostile)((data[0] >> 3) & 7);
  if (hostile > VC_HOSTILE_SLOW)
    hostile = VC_HOSTILE_NONE;
  vc_card_init (&card, &folder, &opt);
  while (pos + 2 <= size)
    {
      size_t len = MIN ((size_t)(data[pos] << 8 | data[pos + 1]), size - pos - 2);
      /* an exact-size copy: a read past the APDU's end is caught */
      g_autofree uint8_t *apdu = g_memdup2 (data + pos + 2, len);
      VcBuf out = { 0 };
      unsigned delay_ms = 0;

      pos += 2 + len;
      if (len == 1)
        {
          if (apdu[0] == 0 || apdu[0] == 2)
            vc_card_reset (&card);
          continue;
        }
      if (!vc_hostile_answer (hostile, apdu, len, &out, &delay_ms))
        vc_card_process (&card, apdu, len, &out);
      if (out.len < 2)
        {
          if (hostile != VC_HOSTILE_SHORT)
            abort (); /* every answer ends with a status word */
        }
      vc_buf_free (&out);
    }
  vc_card_clear (&card);
  return 0;
}
