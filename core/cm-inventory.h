/* cm-inventory.h: every certificate and card the user gave us, deduplicated, with personas. */
#pragma once

#include <glib.h>
#include "cm-cert.h"
#include "cm-chuid.h"

G_BEGIN_DECLS

typedef struct _CmInventory CmInventory;
typedef struct _CmCard CmCard;
typedef struct _CmPersona CmPersona;

CmInventory *cm_inventory_new (void);
void cm_inventory_free (CmInventory *inv);

/* Add a certificate file (PEM with one or more certificates, with or without text before the
 * armour, or DER) or a card folder in the GSA layout (docs/card-folder.md). Any other directory,
 * an empty file, a PKCS#12 file or bad DER is an error naming the path (CM_ERROR_BAD_INPUT);
 * nothing from a failed path is kept. */
gboolean cm_inventory_add_path (CmInventory *inv, const char *path, GError **error);

/* Add one DER certificate from @source (copied). */
gboolean cm_inventory_add_der (CmInventory *inv, GBytes *der, const CmSource *source,
                               GError **error);

/* Add a card: @kind says where it was read (CM_SOURCE_CARD_FOLDER or CM_SOURCE_CARD), @label
 * names it (folder path or reader), @chuid (nullable) is taken over, and @slot_certs maps CmSlot
 * (GUINT_TO_POINTER) -> GBytes DER. Certificates are added too; a bad one adds nothing. */
gboolean cm_inventory_add_card (CmInventory *inv, CmSourceKind kind, const char *label,
                                CmChuid *chuid, GHashTable *slot_certs, GError **error);

/* Mark a certificate decrypt-only (a recovered escrow key): selection never picks it to sign
 * or encrypt; it still appears in the decrypt-only list. */
void cm_inventory_mark_decrypt_only (CmInventory *inv, const char *sha256);
gboolean cm_inventory_is_decrypt_only (CmInventory *inv, const char *sha256);

/* The distinct certificates, in insertion order (CmCert*, owned by @inv). */
GPtrArray *cm_inventory_get_certs (CmInventory *inv);
CmCert *cm_inventory_lookup (CmInventory *inv, const char *sha256);

/* Cards added (CmCard*, owned by @inv). */
GPtrArray *cm_inventory_get_cards (CmInventory *inv);

/* Personas: certificates linked by card, FASC-N credential, card UUID or 16-digit UPN.
 * Computed on first call (adding more afterwards recomputes). CmPersona* owned by @inv. */
GPtrArray *cm_inventory_get_personas (CmInventory *inv);
CmPersona *cm_inventory_persona_of (CmInventory *inv, CmCert *cert); /* or NULL */

/* Every distinct email address on an email-signing or email-encryption cert, lowercase, sorted.
 * Caller frees with g_ptr_array_unref. */
GPtrArray *cm_inventory_list_emails (CmInventory *inv);

/* CmCard: all data owned by the inventory. */
const char *cm_card_get_label (CmCard *card);
const CmChuid *cm_card_get_chuid (CmCard *card);
GPtrArray *cm_card_get_certs (CmCard *card); /* CmCert*, current objects */
CmCert *cm_card_get_cert (CmCard *card, CmSlot slot);
const char *cm_card_get_identity (CmCard *card); /* FASC-N credential, uuid:GUID, or card:LABEL */

/* CmPersona: all data owned by the inventory. */
const char *cm_persona_get_key (CmPersona *p);         /* stable grouping key */
const char *cm_persona_get_persona_id (CmPersona *p);  /* 16 digits or NULL */
const char *cm_persona_get_edipi (CmPersona *p);       /* 10 digits or NULL */
const char *cm_persona_get_association (CmPersona *p); /* FASC-N POA name, or NULL */
GPtrArray *cm_persona_get_certs (CmPersona *p);        /* CmCert* */
GPtrArray *cm_persona_get_cards (CmPersona *p);        /* CmCard* */

G_DEFINE_AUTOPTR_CLEANUP_FUNC (CmInventory, cm_inventory_free)

G_END_DECLS
