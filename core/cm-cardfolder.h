/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cm-cardfolder.h: private; a card folder read into memory. */
#pragma once

#include "cm-private.h"

typedef struct
{
  CmChuid *chuid;         /* owned, may be NULL */
  GHashTable *slot_certs; /* CmSlot -> GBytes DER */
  GHashTable *slot_files; /* CmSlot -> path */
} CmCardFolder;

/* TRUE when @dir looks like a card folder (a known-prefix .crt or a CHUID file). */
G_GNUC_INTERNAL gboolean cm_card_folder_probe (const char *dir);
G_GNUC_INTERNAL CmCardFolder *cm_card_folder_read (const char *dir, GError **error);
G_GNUC_INTERNAL void cm_card_folder_free (CmCardFolder *cf);
