/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cm-evo.h: libcacmail-evolution, Evolution's S/MIME settings compared with cacmail's picks and
 * fixed through evolution-data-server's source registry (no GTK here; the Evolution module
 * and `cacmail evolution` both call this). Prefix cm_evo_. */
#pragma once

#include <cacmail.h>
#include <cm-nss.h>

G_BEGIN_DECLS

#define CM_EVO_ERROR (cm_evo_error_quark ())

typedef enum
{
  CM_EVO_ERROR_FAILED,
  CM_EVO_ERROR_REGISTRY,  /* the source registry is not reachable */
  CM_EVO_ERROR_NOT_FOUND, /* no such identity */
  CM_EVO_ERROR_NO_BACKUP, /* nothing to undo */
} CmEvoError;

GQuark cm_evo_error_quark (void);

/* ---- one identity: pure logic, no registry ---- */

typedef struct _CmEvoIdentity CmEvoIdentity;

/* The S/MIME settings of one mail identity as read from its ESource. */
typedef struct
{
  const char *uid;
  const char *name; /* display name */
  const char *address;
  const char *signing; /* SigningCertificate nickname, or NULL/"" */
  const char *encryption;
  const char *signing_algorithm;
  gboolean sign_by_default;
  gboolean encrypt_by_default;
  gboolean encrypt_to_self;
} CmEvoSettings;

/* Compare @settings with the picks for its address among @inv's certificates, which must
 * include the NSS database's (cm_nss_db_add_certs_sync) so nicknames resolve. @inserted
 * (nullable) lists the sha256 of the certificates on the cards in the readers now: settings
 * that point elsewhere are stale. Returns a new identity (cm_evo_identity_free). */
CmEvoIdentity *cm_evo_identity_check (const CmEvoSettings *settings, CmInventory *inv,
                                      GPtrArray *inserted, gint64 at);
void cm_evo_identity_free (CmEvoIdentity *id);

const char *cm_evo_identity_get_uid (CmEvoIdentity *id);
const char *cm_evo_identity_get_address (CmEvoIdentity *id);
const char *cm_evo_identity_get_name (CmEvoIdentity *id);
gboolean cm_evo_identity_is_stale (CmEvoIdentity *id);
/* Stable reason codes (docs/evolution.md), NULL-terminated, owned by @id. */
const char *const *cm_evo_identity_get_reasons (CmEvoIdentity *id);
/* One sentence per reason, same order. */
const char *const *cm_evo_identity_get_messages (CmEvoIdentity *id);
/* The problems of the picks for the identity's address, each an object with code, severity,
 * message, hint and certs (as `cacmail pick --json` prints them). Owned by @id. */
JsonArray *cm_evo_identity_get_problems (CmEvoIdentity *id);
const CmEvoSettings *cm_evo_identity_get_current (CmEvoIdentity *id);
/* The nicknames to set (NULL when there is nothing to propose); owned by @id. */
const char *cm_evo_identity_get_proposed_signing (CmEvoIdentity *id);
const char *cm_evo_identity_get_proposed_encryption (CmEvoIdentity *id);
/* The settings a fix writes: proposals, SigningAlgorithm sha256 when empty, flags kept. */
gboolean cm_evo_identity_can_fix (CmEvoIdentity *id);

JsonNode *cm_evo_identity_to_json (CmEvoIdentity *id);

/* ---- the registry ---- */

typedef struct _CmEvoRegistry CmEvoRegistry;

/* Connect to evolution-source-registry on the session bus (CM_EVO_ERROR_REGISTRY with a hint
 * when it cannot be reached). Free with cm_evo_registry_free. */
CmEvoRegistry *cm_evo_registry_new_sync (GCancellable *cancellable, GError **error);
void cm_evo_registry_free (CmEvoRegistry *reg);

/* The mail identities with an address, sorted by uid: CmEvoSettings* owned by @reg (valid
 * until the next call or free). */
GPtrArray *cm_evo_registry_list_identities (CmEvoRegistry *reg);

/* Write the fixes of the stale @identities (CmEvoIdentity*) through the registry
 * (e_source_write_sync), after saving their previous values as one backup entry in
 * $XDG_DATA_HOME/cacmail/evolution-backups.json. Identities that are not stale are left alone
 * (no write). Returns the number written, or -1 with @error (nothing written when the backup
 * cannot be saved). */
gint cm_evo_registry_fix_sync (CmEvoRegistry *reg, GPtrArray *identities, GCancellable *cancellable,
                               GError **error);

/* Restore the settings saved by the last fix, exactly, and drop that backup entry. Returns
 * the number of identities restored, or -1 with @error (CM_EVO_ERROR_NO_BACKUP). */
gint cm_evo_registry_undo_sync (CmEvoRegistry *reg, GCancellable *cancellable, GError **error);

/* ---- the backups file, $XDG_DATA_HOME/cacmail/evolution-backups.json (fix and undo; the
 * fuzz target) ---- */

/* The file as { "entries": [...] } (none yet: no entries); NULL with @error when it cannot be
 * read safely or is damaged. Caller unrefs. */
G_GNUC_INTERNAL JsonNode *cm_evo_backups_load (GError **error);
/* Write @root (as loaded) whole, durably. */
G_GNUC_INTERNAL gboolean cm_evo_backups_save (JsonNode *root, GError **error);
/* The identities of the last entry of @entries, each checked whole (uid, and the three settings
 * as string or null) and, when @reg is set, still in the registry, before anything is written.
 * Borrowed from @entries; NULL with @error. */
G_GNUC_INTERNAL JsonArray *cm_evo_backups_last_entry (CmEvoRegistry *reg, JsonArray *entries,
                                                      GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (CmEvoIdentity, cm_evo_identity_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CmEvoRegistry, cm_evo_registry_free)

G_END_DECLS
