/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* fuzz-cert.c: certificate files (PEM or DER) through loading, decoding, classification,
 * personas, selection and JSON: everything a hostile file reaches. */
#include "cm-private.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  g_autoptr (GBytes) bytes = g_bytes_new (data, size);
  g_autoptr (GPtrArray) blobs = NULL;
  g_autoptr (CmInventory) inv = NULL;

  if (!cm_init (NULL))
    return 0;
  blobs = cm_load_cert_blobs (bytes, "fuzz", NULL);
  if (blobs == NULL)
    return 0;
  inv = cm_inventory_new ();
  for (guint i = 0; i < blobs->len; i++)
    {
      g_autoptr (CmSource) src = cm_source_new (CM_SOURCE_FILE, "fuzz", CM_SLOT_NONE);
      cm_inventory_add_der (inv, g_ptr_array_index (blobs, i), src, NULL);
    }
  {
    g_autoptr (GPtrArray) emails = cm_inventory_list_emails (inv);
    g_autoptr (JsonNode) rep = cm_json_certs_report (inv, 1780272000, NULL);
    g_autofree char *text = cm_json_to_string (rep);
    (void)text;
    for (guint i = 0; i < emails->len; i++)
      {
        g_autoptr (CmPicks) pk
          = cm_select_for_email (inv, g_ptr_array_index (emails, i), 1780272000, NULL);
        g_autoptr (JsonNode) n = cm_json_picks (pk);
        (void)n;
      }
  }
  return 0;
}
