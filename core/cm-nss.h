/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cm-nss.h: an NSS database and the tokens it registers, as a source of certificates.
 *
 * A CmNssDb binds one NSS database folder (cert9.db, key4.db, pkcs11.txt) into the process
 * without taking over NSS: it works after cm_init() and inside applications (Evolution) that
 * initialised NSS with their own database, which it then shares instead of opening twice.
 * This file knows NSS, not mail clients. Blocking calls end in _sync. */
#pragma once

#include <gio/gio.h>
#include <pk11pub.h>
#include <secmod.h>
#include "cm-inventory.h"

G_BEGIN_DECLS

typedef enum
{
  CM_NSS_DB_DEFAULT = 0,
  CM_NSS_DB_READ_ONLY = 1 << 0,    /* never write; the database must exist */
  CM_NSS_DB_LOAD_MODULES = 1 << 1, /* also load the PKCS#11 modules listed in pkcs11.txt */
} CmNssDbFlags;

/* The name cacmail gives the database's own token in CmSource.token. */
#define CM_NSS_DB_TOKEN_NAME "NSS Certificate DB"

typedef struct _CmNssDb CmNssDb;

/* Open the database in @dir ("sql:" prefix allowed). Without CM_NSS_DB_READ_ONLY a missing
 * database is created (as `certutil -N --empty-password` would) in an existing folder.
 * Errors: folder or database missing (CM_ERROR_NOT_FOUND), NSS cannot open it
 * (CM_ERROR_ENVIRONMENT). A database we may not write is opened read-only
 * (cm_nss_db_is_read_only() says so). A module listed in pkcs11.txt that cannot load is skipped and
 * named by cm_nss_db_get_module_problems(). Free with cm_nss_db_free(). */
CmNssDb *cm_nss_db_open_sync (const char *dir, CmNssDbFlags flags, GCancellable *cancellable,
                              GError **error);

/* Close what this handle opened (a database or module the application had already opened
 * stays open). */
void cm_nss_db_free (CmNssDb *db);

const char *cm_nss_db_get_dir (CmNssDb *db); /* absolute path, no "sql:"; owned by @db */
gboolean cm_nss_db_is_read_only (CmNssDb *db);

/* The database's own certificate and key token (borrowed, valid until cm_nss_db_free). */
PK11SlotInfo *cm_nss_db_get_slot (CmNssDb *db);

/* The module database (pkcs11.txt) of @dir, loaded on first use without loading the modules
 * it lists; its moduleDBFunc reads and writes pkcs11.txt. Borrowed; NULL with @error if NSS
 * cannot read it. */
SECMODModule *cm_nss_db_get_module_db (CmNssDb *db, GError **error);

/* The module specs in pkcs11.txt (the internal module first), as NSS writes them. Caller frees
 * with g_strfreev. */
char **cm_nss_db_list_module_specs (CmNssDb *db, GError **error);

/* One line per registered module that did not load (CM_NSS_DB_LOAD_MODULES): borrowed, char*. */
GPtrArray *cm_nss_db_get_module_problems (CmNssDb *db);

/* Present tokens: the database's own token first, then those of the modules it registers
 * (with CM_NSS_DB_LOAD_MODULES). PK11SlotInfo*, borrowed; caller unrefs the array. */
GPtrArray *cm_nss_db_list_tokens (CmNssDb *db);

/* The one NSS reader. Add the certificates of @slot's token to @inv, read as token objects
 * without logging in. A token that is a card (any token but an NSS database's own and a list
 * of trusted roots: OpenSC, the p11-kit proxy, SoftHSM...) enters as ONE card through the card
 * intake, identified by cm_nss_token_identity() (never by its label: OpenSC cuts labels to 32
 * bytes and a person's two persona cards share one); the database's own token and root lists
 * add their certs with no card. Each source: kind CM_SOURCE_NSS, path = @db_dir (nullable),
 * token = the token name (CM_NSS_DB_TOKEN_NAME for a database's own token), nickname = the name
 * mail clients use (label for a database's own certs, "token:label" for a token's), slot =
 * where OpenSC's PIV driver says it sits, else CM_SLOT_NONE. A cert NSS cannot parse is
 * skipped. A token not present adds nothing. */
gboolean cm_nss_add_token_certs_sync (CmInventory *inv, PK11SlotInfo *slot, const char *db_dir,
                                      GCancellable *cancellable, GError **error);

/* cm_nss_add_token_certs_sync() for every token of @db (cm_nss_db_list_tokens). */
gboolean cm_nss_db_add_certs_sync (CmNssDb *db, CmInventory *inv, GCancellable *cancellable,
                                   GError **error);

/* The card identity of @slot's token: "token:MANUFACTURER/MODEL/SERIAL" from CK_TOKEN_INFO
 * (OpenSC derives a PIV card's serial number from its CHUID), or NULL when the token has no
 * serial number. Caller frees. */
char *cm_nss_token_identity (PK11SlotInfo *slot);

/* Every present card token (as cm_nss_add_token_certs_sync judges) of the modules loaded in
 * this process. PK11SlotInfo* references; the array frees them. */
GPtrArray *cm_nss_list_card_tokens (void);

/* The present card token whose cm_nss_token_identity() is @identity (a CmCard's identity), or
 * NULL. New reference: PK11_FreeSlot. */
PK11SlotInfo *cm_nss_find_token (const char *identity);

/* The thread's last NSS error in words ("unknown NSS error" when NSS has none): the one place
 * that turns an NSS error into text for messages. Static string. */
const char *cm_nss_error_text (void);

/* Thunderbird's dbKey of @cert (base64; see docs/nss.md). Caller frees. */
char *cm_nss_cert_dbkey (CmCert *cert);

/* The first CM_SOURCE_NSS nickname of @cert, or NULL. Owned by @cert. */
const char *cm_nss_cert_nickname (CmCert *cert);

/* The one-line message for a PIN that @slot's token (named @token) refused, with what the
 * token says of the PIN now (PKCS#11 flags; a card reached through NSS gives no counter):
 * locked (and where to unblock it), one more wrong PIN locks it, or it counts wrong PINs.
 * Never a status code. Caller frees. */
char *cm_nss_pin_refused_message (PK11SlotInfo *slot, const char *token);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (CmNssDb, cm_nss_db_free)

G_END_DECLS
