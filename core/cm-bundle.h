/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cm-bundle.h: the DoD PKI trust bundle the user downloaded from DISA (PKCS#7 .p7b, DER or PEM
 * "PKCS7", or PEM certificates), analysed against the root the user confirms by its SHA-256
 * fingerprint: which CA certs chain to that root by verified signatures (root + intermediates,
 * to import) and which do not (cross-certificates, other roots: skipped, each with its reason).
 * Pure certificate logic: nothing is written anywhere. */
#pragma once

#include <glib.h>
#include <json-glib/json-glib.h>
#include "cm-cert.h"

G_BEGIN_DECLS

typedef enum
{
  CM_BUNDLE_ROOT,         /* the confirmed root: the one cert to trust (C,C,) */
  CM_BUNDLE_INTERMEDIATE, /* chains up to the confirmed root: import without trust */
  CM_BUNDLE_SKIPPED,      /* a cross-certificate, another root, or a CA off the path: not used */
} CmBundleRole;

const char *cm_bundle_role_to_string (CmBundleRole role); /* "root", ... static */

/* One CA cert of the bundle as the analysis judged it. All fields are owned by the analysis. */
typedef struct
{
  CmCert *cert;
  CmBundleRole role;
  char *reason; /* one sentence: why it is on the path or skipped */
} CmBundleItem;

typedef struct _CmBundle CmBundle;

/* Read the certificates of a bundle file: DER PKCS#7 (.p7b), PEM "PKCS7", PEM certificates, or
 * one DER certificate. Errors (CM_ERROR_BAD_INPUT, CM_ERROR_NOT_FOUND) name the file and the
 * fix. The same cert twice counts once. Free with cm_bundle_free(). */
CmBundle *cm_bundle_load_file (const char *path, GError **error);

/* The same from bytes; @name names them in messages. */
CmBundle *cm_bundle_load_bytes (GBytes *data, const char *name, GError **error);

void cm_bundle_free (CmBundle *bundle);

/* Every cert of the bundle in file order (CmCert*, borrowed: valid until cm_bundle_free). */
GPtrArray *cm_bundle_get_certs (CmBundle *bundle);

/* The self-signed CA certs of the bundle: the roots a user may confirm (borrowed, as above). */
GPtrArray *cm_bundle_get_roots (CmBundle *bundle);

/* The file name or @name given at load (borrowed). */
const char *cm_bundle_get_name (CmBundle *bundle);

/* Normalise a SHA-256 fingerprint as users copy it (any case, with or without ':' or spaces)
 * to 64 lowercase hex digits; NULL when it is not one. Caller frees. */
char *cm_bundle_normalize_sha256 (const char *text);

typedef struct _CmBundleAnalysis CmBundleAnalysis;

/* Analyse @bundle against the root whose SHA-256 is @root_sha256 (any form accepted by
 * cm_bundle_normalize_sha256), at time @at (CA validity). Refused, with nothing judged:
 *  - a cert that is not a CA (CM_ERROR_UNSAFE: names the cert; the fix is the DoD CA bundle);
 *  - a malformed fingerprint (CM_ERROR_BAD_INPUT);
 *  - no cert with that fingerprint, or it is not a self-signed CA (CM_ERROR_UNSAFE: lists the
 *    roots the bundle holds with their fingerprints, so the user can compare with DISA's).
 * Every other CA is on the path (a chain of verified signatures up to the root, cm_trust) or
 * skipped with its reason. Caller frees with cm_bundle_analysis_free(). */
CmBundleAnalysis *cm_bundle_analyse (CmBundle *bundle, const char *root_sha256, gint64 at,
                                     GError **error);

/* The confirmed root (borrowed). */
CmCert *cm_bundle_analysis_get_root (CmBundleAnalysis *analysis);

/* Every cert with its role and reason, in bundle order (CmBundleItem*, borrowed). */
GPtrArray *cm_bundle_analysis_get_items (CmBundleAnalysis *analysis);

/* How many certs have @role. */
guint cm_bundle_analysis_count (CmBundleAnalysis *analysis, CmBundleRole role);

/* The DER of what to import: the root first, then the intermediates, parents before children.
 * New array (GBytes*): caller unrefs. */
GPtrArray *cm_bundle_analysis_get_ders (CmBundleAnalysis *analysis);

/* {"root": {...}, "intermediates": [...], "skipped": [...]}, each cert as {"subject",
 * "issuer", "sha256", "not_after", "reason"}. Caller unrefs the node. */
JsonNode *cm_bundle_analysis_to_json (CmBundleAnalysis *analysis);

void cm_bundle_analysis_free (CmBundleAnalysis *analysis);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (CmBundle, cm_bundle_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CmBundleAnalysis, cm_bundle_analysis_free)

G_END_DECLS
