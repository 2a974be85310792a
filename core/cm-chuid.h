/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cm-chuid.h: the Card Holder Unique Identifier object (PIV 5FC102). */
#pragma once

#include <glib.h>
#include "cm-fascn.h"

G_BEGIN_DECLS

typedef struct _CmChuid CmChuid;

/* Parse a CHUID, with or without the outer 53 wrapper. Returns a new CmChuid (free with
 * cm_chuid_free) or NULL with @error set (CM_ERROR_BAD_INPUT). A FASC-N that fails its parity
 * or LRC check is an error. */
CmChuid *cm_chuid_parse (const guint8 *data, gsize len, GError **error);
void cm_chuid_free (CmChuid *chuid);

/* All getters return data owned by @chuid; NULL when the tag is absent. */
const CmFascn *cm_chuid_get_fascn (const CmChuid *chuid);
const char *cm_chuid_get_guid (const CmChuid *chuid);            /* lowercase 8-4-4-4-12 */
const char *cm_chuid_get_expiry (const CmChuid *chuid);          /* "YYYY-MM-DD" */
const char *cm_chuid_get_cardholder_uuid (const CmChuid *chuid); /* lowercase 8-4-4-4-12 */
gboolean cm_chuid_has_signature (const CmChuid *chuid);

/* The identity to group a card by: the FASC-N credential key, or "uuid:<guid>" when the FASC-N
 * is absent or its agency is 9999 (non-federal issuer, SP 800-73-4). Caller frees. */
char *cm_chuid_identity (const CmChuid *chuid);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (CmChuid, cm_chuid_free)

G_END_DECLS
