/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cm-select.h: what to use for one email identity at one time, and what is wrong. */
#pragma once

#include <glib.h>
#include "cm-inventory.h"
#include "cm-trust.h"

G_BEGIN_DECLS

typedef enum
{
  CM_SEVERITY_INFO,
  CM_SEVERITY_WARNING,
  CM_SEVERITY_ERROR,
} CmSeverity;

typedef struct _CmProblem CmProblem;
typedef struct _CmPicks CmPicks;

/* A problem: stable code (docs/problems.md), one-line message, and a hint saying what to do. */
CmProblem *cm_problem_new (const char *code, CmSeverity severity, const char *message,
                           const char *hint);
void cm_problem_add_cert (CmProblem *problem, const char *sha256);
void cm_problem_free (CmProblem *problem);
const char *cm_problem_get_code (const CmProblem *problem);
CmSeverity cm_problem_get_severity (const CmProblem *problem);
const char *cm_problem_get_message (const CmProblem *problem);
const char *cm_problem_get_hint (const CmProblem *problem);
GPtrArray *cm_problem_get_certs (const CmProblem *problem); /* char* sha256 */
const char *cm_severity_to_string (CmSeverity severity);    /* "info", "warning", "error" */

/* Reader and card states (docs/problems.md, "Reader and card states"), found before any
 * certificate is read: `status`, `doctor` and the Evolution page report them in the same words. */
typedef enum
{
  CM_STATE_PCSCD_NOT_RUNNING, /* @detail: pcsc-lite's reason (nullable) */
  CM_STATE_NO_READER,
  CM_STATE_NO_CARD,
  CM_STATE_CARD_READ_FAILED, /* @detail: why the read failed */
  CM_STATE_PIN_BLOCKED,      /* @reader: the reader holding the card */
  CM_STATE_PIN_TRIES_LOW,    /* @reader */
} CmState;

/* A new problem for @state with its stable code ("pcscd-not-running", "no-reader", "no-card",
 * "card-read-failed", "pin-blocked", "pin-tries-low"), severity, message and hint. @reader and
 * @detail (both nullable) go into the message as the comments above say. Caller frees with
 * cm_problem_free. */
CmProblem *cm_problem_new_state (CmState state, const char *reader, const char *detail);

/* Pick the login (PIV Auth), signing and encryption certs for @email at @at. @trust may be NULL
 * (no chain check). Never fails: what is wrong is in the problems. Free with cm_picks_free. */
CmPicks *cm_select_for_email (CmInventory *inv, const char *email, gint64 at, CmTrust *trust);

/* Problems of the cards themselves, independent of an email: the CHUID disagreeing with the
 * PIV Auth or Card Auth cert on FASC-N or UUID. Chain status is per cert (cm_trust_build_chain).
 * Caller frees with g_ptr_array_unref (CmProblem*). */
GPtrArray *cm_select_check_inventory (CmInventory *inv, gint64 at, CmTrust *trust);

const char *cm_picks_get_email (CmPicks *picks);
gint64 cm_picks_get_at (CmPicks *picks);
CmCert *cm_picks_get_login (CmPicks *picks);           /* borrowed, or NULL */
CmCert *cm_picks_get_signing (CmPicks *picks);         /* borrowed, or NULL */
CmCert *cm_picks_get_encryption (CmPicks *picks);      /* borrowed, or NULL */
GPtrArray *cm_picks_get_decrypt_only (CmPicks *picks); /* CmCert*, newest notAfter first */
GPtrArray *cm_picks_get_problems (CmPicks *picks);     /* CmProblem* */
GPtrArray *cm_picks_get_explanations (CmPicks *picks); /* char*: why each pick was made */
CmPersona *cm_picks_get_persona (CmPicks *picks);      /* the persona used, or NULL */
void cm_picks_free (CmPicks *picks);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (CmPicks, cm_picks_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CmProblem, cm_problem_free)

G_END_DECLS
