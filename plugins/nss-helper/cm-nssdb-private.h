/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cm-nssdb-private.h: helpers shared by libcacmail-nss's files; not installed. */
#pragma once

#include "cm-nssdb.h"
#include <cert.h>

/* An import's writes into the database @nssdb, recorded before they begin and dropped once they
 * are known whole: a process killed half-way leaves this, and the next import into that
 * database removes what it had added (cm-nssdb-p12.c). */
typedef struct
{
  char *nssdb;
  GBytes *cert;      /* DER of a certificate to import with its key */
  gboolean had_cert; /* the database held the certificate before */
  gboolean had_key;  /* ... and its key */
  gboolean recorded; /* the record had it before */
} CmNssdbPending;

G_GNUC_INTERNAL void cm_nssdb_pending_free (CmNssdbPending *p);

/* The record of recovered keys as loaded. */
typedef struct
{
  GPtrArray *keys;    /* CmNssdbRecovered* */
  GPtrArray *pending; /* CmNssdbPending* */
  int lock;           /* the lock file's descriptor, or -1 */
} CmNssdbState;

/* The record (no file: empty), with @lock held until freed (imports: one at a time, each
 * sees the others' writes). NULL with @error naming the file and the fix when it is damaged,
 * not the user's or changeable by others: never read as empty. Free with
 * cm_nssdb_state_free(). */
G_GNUC_INTERNAL CmNssdbState *cm_nssdb_state_open (gboolean lock, GError **error);
G_GNUC_INTERNAL gboolean cm_nssdb_state_save (CmNssdbState *st, gboolean durable, GError **error);
G_GNUC_INTERNAL void cm_nssdb_state_free (CmNssdbState *st);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CmNssdbState, cm_nssdb_state_free)

/* TRUE when the certificate with SHA-256 @sha256 is in @db's own token with its private key. */
G_GNUC_INTERNAL gboolean cm_nssdb_db_has_cert_and_key (CmNssDb *db, const char *sha256);

/* Lowercase hex SHA-256 of @der. Caller frees. */
G_GNUC_INTERNAL char *cm_nssdb_sha256 (const SECItem *der);

/* @nickname without the "token:" prefix of @db's own token (clients see it as internal). */
G_GNUC_INTERNAL const char *cm_nssdb_own_label (CmNssDb *db, const char *nickname);
