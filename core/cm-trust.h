/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cm-trust.h: trust anchors and chain building by authority key ID (cross-certificates too). */
#pragma once

#include <glib.h>
#include "cm-cert.h"

G_BEGIN_DECLS

typedef enum
{
  CM_CHAIN_OK,
  CM_CHAIN_NO_ISSUER,      /* an issuer is missing: add the intermediate CA */
  CM_CHAIN_UNTRUSTED_ROOT, /* reached a root that is not a trust anchor */
  CM_CHAIN_CA_NOT_VALID,   /* the only path goes through a CA expired or not yet valid */
  CM_CHAIN_BAD_SIGNATURE,  /* a candidate issuer's signature did not verify */
} CmChainStatus;

typedef struct _CmTrust CmTrust;

CmTrust *cm_trust_new (void);
void cm_trust_free (CmTrust *trust);

/* Load CA certificates from a PEM or DER file. Self-signed ones become trust anchors, the others
 * intermediates available for path building. Error names the file (CM_ERROR_BAD_INPUT). */
gboolean cm_trust_add_file (CmTrust *trust, const char *path, GError **error);
void cm_trust_add_anchor (CmTrust *trust, CmCert *cert);
void cm_trust_add_intermediate (CmTrust *trust, CmCert *cert);
guint cm_trust_count_anchors (CmTrust *trust);

/* Build a path from @leaf to an anchor valid at @at. On CM_CHAIN_OK, *@chain (if non-NULL)
 * receives a new array leaf..anchor (CmCert*, caller unrefs the array). */
CmChainStatus cm_trust_build_chain (CmTrust *trust, CmCert *leaf, gint64 at, GPtrArray **chain);

const char *cm_chain_status_to_string (CmChainStatus status); /* "ok", "no-issuer", ... */

G_DEFINE_AUTOPTR_CLEANUP_FUNC (CmTrust, cm_trust_free)

G_END_DECLS
