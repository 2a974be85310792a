/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cm-fascn.h: the FASC-N (SP 800-73-4 / TIG SCEPACS), 25 bytes of 5-bit BCD with parity and LRC. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define CM_FASCN_LEN 25

typedef struct
{
  char agency_code[5];            /* 4 digits; "9999" = non-federal issuer (use the GUID) */
  char system_code[5];            /* 4 digits */
  char credential_number[7];      /* 6 digits */
  char cs[2];                     /* credential series */
  char ici[2];                    /* individual credential issue */
  char pi[11];                    /* person identifier (the EDIPI on a CAC) */
  char oc[2];                     /* organizational category */
  char oi[5];                     /* organizational identifier */
  char poa[2];                    /* person/organization association */
  char hex[2 * CM_FASCN_LEN + 1]; /* the raw 25 bytes, uppercase hex */
} CmFascn;

/* Decode 25 bytes; checks start/field/end sentinels, every character's odd parity and the LRC.
 * Fills @out (caller-owned) and returns TRUE, or sets @error (CM_ERROR_BAD_INPUT). */
gboolean cm_fascn_decode (const guint8 *data, gsize len, CmFascn *out, GError **error);

/* Encode from decimal fields (used by tests and the virtual card). @out must hold 25 bytes. */
gboolean cm_fascn_encode (const CmFascn *fields, guint8 out[CM_FASCN_LEN], GError **error);

/* Stable identity of the credential: agency+system+credential+cs+ici. Caller frees. */
char *cm_fascn_credential_key (const CmFascn *fascn);

/* "employee", "civil", "executive-staff", "uniformed-service", "contractor", "affiliate",
 * "beneficiary", or "unknown". Static string. */
const char *cm_fascn_poa_name (const CmFascn *fascn);

G_END_DECLS
