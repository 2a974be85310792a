/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cm-cert.h: one certificate, parsed once and classified; immutable after construction. */
#pragma once

#include <glib.h>
#include "cm-fascn.h"

G_BEGIN_DECLS

typedef enum
{
  CM_ROLE_OTHER,
  CM_ROLE_PIV_AUTH,         /* PIV Authentication, slot 9A: login */
  CM_ROLE_CAC_ID,           /* DoD CAC identity cert (CAC applet), UPN EDIPI@mil */
  CM_ROLE_EMAIL_SIGNING,    /* Digital Signature, slot 9C */
  CM_ROLE_EMAIL_ENCRYPTION, /* Key Management, slot 9D (and retired 82..95) */
  CM_ROLE_CARD_AUTH,        /* Card Authentication, slot 9E: proves the card, never the person */
} CmRole;

/* Where on a card a certificate sits. */
typedef enum
{
  CM_SLOT_NONE = 0,
  CM_SLOT_9A = 0x9a,
  CM_SLOT_9C = 0x9c,
  CM_SLOT_9D = 0x9d,
  CM_SLOT_9E = 0x9e,
  CM_SLOT_RETIRED_FIRST = 0x82, /* retired Key Management 82..95 */
  CM_SLOT_RETIRED_LAST = 0x95,
  CM_SLOT_CAC_ID = 0x100,   /* CAC PKI applet A0000000790100 */
  CM_SLOT_CAC_SIGN = 0x101, /* A0000000790101 */
  CM_SLOT_CAC_ENC = 0x102,  /* A0000000790102 */
} CmSlot;

typedef enum
{
  CM_SOURCE_FILE,        /* a certificate file */
  CM_SOURCE_CARD_FOLDER, /* a card folder in the GSA layout */
  CM_SOURCE_CARD,        /* a card read over PC/SC */
  CM_SOURCE_NSS,         /* an NSS token or database */
} CmSourceKind;

/* Plain data: where one copy of a certificate came from. */
typedef struct
{
  CmSourceKind kind;
  char *path;     /* FILE, CARD_FOLDER: the file; CARD: the reader name */
  char *token;    /* NSS: token name */
  char *nickname; /* NSS: nickname */
  CmSlot slot;    /* CARD_FOLDER, CARD, NSS token: the slot where known, else CM_SLOT_NONE */
  char *card;     /* the identity of the card the cert sits on (CmCard), or NULL: no card (a
                     file, an NSS database's own token). Set only by the card intake
                     (cm_inventory_add_card_source), never by callers of cm_inventory_add_der */
} CmSource;

CmSource *cm_source_new (CmSourceKind kind, const char *path, CmSlot slot);
CmSource *cm_source_copy (const CmSource *src);
void cm_source_free (CmSource *src);
const char *cm_source_kind_to_string (CmSourceKind kind); /* "file", "card-folder", ... */

/* "9a", "9c", "82", "cac-id", ... or NULL for CM_SLOT_NONE. Static string. */
const char *cm_slot_to_string (CmSlot slot);

/* "piv-auth", "cac-id", "email-signing", "email-encryption", "card-auth", "other". Static. */
const char *cm_role_to_string (CmRole role);

/* Key usage bits, as in RFC 5280 (bit 0 = digitalSignature). */
enum
{
  CM_KU_DIGITAL_SIGNATURE = 1 << 0,
  CM_KU_NON_REPUDIATION = 1 << 1,
  CM_KU_KEY_ENCIPHERMENT = 1 << 2,
  CM_KU_DATA_ENCIPHERMENT = 1 << 3,
  CM_KU_KEY_AGREEMENT = 1 << 4,
  CM_KU_KEY_CERT_SIGN = 1 << 5,
  CM_KU_CRL_SIGN = 1 << 6,
};

typedef struct _CmCert CmCert;

/* Parse @der (one X.509 certificate) and classify it, using the slot of any of @sources as one
 * signal among several. @sources (CmSource*) is copied; may be NULL. Returns a new reference
 * (cm_cert_unref) or NULL with @error (CM_ERROR_BAD_INPUT). */
CmCert *cm_cert_new_from_der (GBytes *der, GPtrArray *sources, GError **error);

/* The same certificate with one more source (re-classified). New reference. */
CmCert *cm_cert_new_with_source (CmCert *cert, const CmSource *extra);

CmCert *cm_cert_ref (CmCert *cert);
void cm_cert_unref (CmCert *cert);

/* Getters return data owned by @cert, valid while a reference is held. */
GBytes *cm_cert_get_der (CmCert *cert);
const char *cm_cert_get_sha256 (CmCert *cert);  /* lowercase hex */
const char *cm_cert_get_subject (CmCert *cert); /* RFC 4514 */
const char *cm_cert_get_issuer (CmCert *cert);
const char *cm_cert_get_subject_cn (CmCert *cert); /* NULL if none */
const char *cm_cert_get_serial (CmCert *cert);     /* lowercase hex of the INTEGER contents */
gint64 cm_cert_get_not_before (CmCert *cert);
gint64 cm_cert_get_not_after (CmCert *cert);
gboolean cm_cert_is_valid_at (CmCert *cert, gint64 at);
guint cm_cert_get_key_usage (CmCert *cert); /* CM_KU_* bits; 0 when absent */
gboolean cm_cert_has_key_usage (CmCert *cert);
const char *const *cm_cert_get_ekus (CmCert *cert);     /* dotted OIDs, NULL-terminated */
const char *const *cm_cert_get_policies (CmCert *cert); /* dotted OIDs, NULL-terminated */
const char *const *cm_cert_get_emails (CmCert *cert);   /* rfc822Name SANs as written, then the
                                                           subject's emailAddress (old certs) */
const char *cm_cert_get_upn (CmCert *cert);             /* MS UPN otherName or NULL */
const char *cm_cert_get_edipi (CmCert *cert);      /* 10 digits from a DoD "@mil" UPN, else from a
                                                      LAST.FIRST.MIDDLE.EDIPI common name, or NULL */
const char *cm_cert_get_persona_id (CmCert *cert); /* 16 digits from a DoD "@mil" UPN, or NULL */
const CmFascn *cm_cert_get_fascn (CmCert *cert);   /* FASC-N otherName, or NULL */
const char *cm_cert_get_uuid (CmCert *cert);       /* urn:uuid SAN URI (lowercase), or NULL */
gboolean cm_cert_is_ca (CmCert *cert);             /* basicConstraints cA */
gboolean cm_cert_is_self_issued (CmCert *cert);
/* Self-issued AND its own key verifies its signature: a root. A key-rollover certificate is
 * self-issued but signed by the old key: not a root. */
gboolean cm_cert_is_self_signed (CmCert *cert);
CmRole cm_cert_get_role (CmCert *cert);
const char *const *cm_cert_get_reasons (CmCert *cert); /* stable codes, NULL-terminated */
GPtrArray *cm_cert_get_sources (CmCert *cert);         /* CmSource*, owned by @cert */
CmSlot cm_cert_get_slot (CmCert *cert);                /* first known slot, or CM_SLOT_NONE */
gboolean cm_cert_has_email (CmCert *cert, const char *email); /* case-insensitive */

G_DEFINE_AUTOPTR_CLEANUP_FUNC (CmCert, cm_cert_unref)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CmSource, cm_source_free)

G_END_DECLS
