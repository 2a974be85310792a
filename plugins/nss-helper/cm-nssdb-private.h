/* cm-nssdb-private.h: helpers shared by libcacmail-nss's files; not installed. */
#pragma once

#include "cm-nssdb.h"
#include <cert.h>

/* Every record of the state file (CmNssdbRecovered*); a missing file is an empty list. */
G_GNUC_INTERNAL GPtrArray *cm_nssdb_state_load (GError **error);
G_GNUC_INTERNAL gboolean cm_nssdb_state_save (GPtrArray *records, GError **error);

/* TRUE when the certificate with SHA-256 @sha256 is in @db's own token with its private key. */
G_GNUC_INTERNAL gboolean cm_nssdb_db_has_cert_and_key (CmNssDb *db, const char *sha256);

/* Lowercase hex SHA-256 of @der. Caller frees. */
G_GNUC_INTERNAL char *cm_nssdb_sha256 (const SECItem *der);

/* @nickname without the "token:" prefix of @db's own token (clients see it as internal). */
G_GNUC_INTERNAL const char *cm_nssdb_own_label (CmNssDb *db, const char *nickname);

/* The NSS error as text. Static. */
G_GNUC_INTERNAL const char *cm_nssdb_nss_error (void);
