/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cm-tb-private.h: what the files of libcacmail-thunderbird share and nobody else uses. */
#pragma once

#include "cm-tb.h"

G_BEGIN_DECLS

/* cm-tb-backup.c: one backup entry being made. */
typedef struct _CmTbBackup CmTbBackup;

/* Start an entry of @kind ("fix", "login", "live") for @profile_dir. Refuses (CM_ERROR_BAD_INPUT)
 * when the index exists but is damaged, and never writes over it. Free with
 * cm_tb_backup_free. */
CmTbBackup *cm_tb_backup_begin (const char *profile_dir, const char *kind, GError **error);
void cm_tb_backup_free (CmTbBackup *b);
/* Copy @name (a file of the profile: "prefs.js") into the backup folder, or note that it does
 * not exist. */
gboolean cm_tb_backup_add_file (CmTbBackup *b, const char *name, GError **error);
/* Note a pref change (copied) and a remembered client-auth decision (@old/@new nullable). */
void cm_tb_backup_add_pref (CmTbBackup *b, const CmTbPrefChange *change);
void cm_tb_backup_add_client_auth (CmTbBackup *b, const char *host, const char *old_dbkey,
                                   const char *new_dbkey);
/* Write the entry into the index (atomically, 0600), before the profile changes. */
gboolean cm_tb_backup_commit (CmTbBackup *b, GError **error);
/* After the profile's files were written: record what they hold now, so that undo knows whether
 * they changed since. */
gboolean cm_tb_backup_finish (CmTbBackup *b, GError **error);

/* The undo of @profile_dir's last entry not undone (cm_tb_profile_undo_sync): the entry's files
 * and changes. */
typedef struct
{
  char *kind;
  char *time;
  GPtrArray *files;       /* CmTbBackupFile* */
  GPtrArray *prefs;       /* CmTbPrefChange* */
  GPtrArray *client_auth; /* CmTbPrefChange*: name = host, string values = dbKeys */
} CmTbBackupEntry;

typedef struct
{
  char *name;         /* "prefs.js" */
  gboolean existed;   /* before the change */
  GBytes *before;     /* its bytes then (NULL when it did not exist) */
  char *sha256_after; /* what cacmail wrote, or NULL when unknown */
} CmTbBackupFile;

/* The last entry of @profile_dir not undone, with its copies read and checked (a copy that is
 * missing or altered is CM_ERROR_BAD_INPUT). NULL with CM_ERROR_NOT_FOUND when there is none.
 * *@handle (free with cm_tb_backup_free) marks it undone with cm_tb_backup_mark_undone. */
CmTbBackupEntry *cm_tb_backup_last (const char *profile_dir, CmTbBackup **handle, GError **error);
void cm_tb_backup_entry_free (CmTbBackupEntry *e);
gboolean cm_tb_backup_mark_undone (CmTbBackup *handle, GError **error);

/* cm-tb-identities.c */
typedef enum
{
  CM_TB_DBKEY_FOUND,
  CM_TB_DBKEY_MALFORMED, /* not base64 of a dbKey's layout */
  CM_TB_DBKEY_NOT_FOUND, /* no certificate Thunderbird sees has that issuer and serial */
} CmTbResolve;

/* The certificate of @inv that Thunderbird's findCertByDBKey(@dbkey) would return (*@out,
 * borrowed). */
CmTbResolve cm_tb_resolve_dbkey (CmInventory *inv, const char *dbkey, CmCert **out);
/* TRUE when @cert sits in Thunderbird's NSS database or on a token it loaded. */
gboolean cm_tb_seen_by_thunderbird (CmCert *cert);

/* cm-tb-profile.c: take Thunderbird's own profile lock (the fcntl lock on .parentlock) for as
 * long as we write, so that a Thunderbird started meanwhile finds the profile in use. FALSE with
 * CM_ERROR_UNSAFE when Thunderbird runs. */
gboolean cm_tb_profile_lock (CmTbProfile *profile, GError **error);
void cm_tb_profile_unlock (CmTbProfile *profile);

/* cm-tb-profile.c: apply @changes (CmTbPrefChange*) to the profile's prefs.js after noting them
 * and backing prefs.js up in @b (committed before the write). CM_TB_ERROR_CONFLICT when prefs.js
 * changed on disk since it was read. */
gboolean cm_tb_profile_write_prefs (CmTbProfile *profile, CmTbBackup *b, GPtrArray *changes,
                                    GError **error);

/* cm-tb-value.c */
char *cm_tb_sha256_hex (const void *data, gsize len);

/* cm-tb-login.c */
gboolean cm_tb_client_auth_write (CmTbClientAuth *ca, const char *profile_dir, GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (CmTbBackup, cm_tb_backup_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CmTbBackupEntry, cm_tb_backup_entry_free)

G_END_DECLS
