/* SPDX-License-Identifier: LGPL-2.1-or-later */
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

/* The one way certificates enter the inventory. A certificate either sits on a card, and then
 * arrives through a CmCardSource that declares the card's identity, or it sits on no card (a
 * file, an NSS database's own token) and arrives through cm_inventory_add_der() or
 * cm_inventory_add_path() with a source whose card is NULL. */

/* Add a certificate file (PEM with one or more certificates, with or without text before the
 * armour, or DER: no card) or a card folder in the GSA layout (docs/card-folder.md: one card).
 * Any other directory, an empty file, a PKCS#12 file or bad DER is an error naming the path
 * (CM_ERROR_BAD_INPUT); nothing from a failed path is kept. */
gboolean cm_inventory_add_path (CmInventory *inv, const char *path, GError **error);

/* Add one DER certificate that sits on no card, from @source (copied; its card must be NULL:
 * certificates on a card come through cm_inventory_add_card_source). */
gboolean cm_inventory_add_der (CmInventory *inv, GBytes *der, const CmSource *source,
                               GError **error);

/* A card as its source sees it: what was read (a reader's card, a card folder, a removable
 * NSS/PKCS#11 token), its identity and its certificate objects. Opaque; built with new/add,
 * then handed to cm_inventory_add_card_source (which frees it) or freed with
 * cm_card_source_free. */
typedef struct _CmCardSource CmCardSource;

/* @kind: CM_SOURCE_CARD (@label = the reader), CM_SOURCE_CARD_FOLDER (@label = the folder) or
 * CM_SOURCE_NSS (@label = the token label, @path = the NSS database folder or NULL).
 * @identity: the card's identity when the source knows it without a CHUID (a token:
 * "token:" + its PKCS#11 serial number, never its label), else NULL to take it from @chuid
 * (FASC-N credential, or uuid:GUID); with neither, the card is named after @label. @chuid
 * (nullable) is taken over. */
CmCardSource *cm_card_source_new (CmSourceKind kind, const char *label, const char *path,
                                  const char *identity, CmChuid *chuid);

/* One certificate object of the card: @der (a reference is taken), @slot where the source
 * knows it (else CM_SLOT_NONE), @token and @nickname as an NSS token names them (NULL for
 * readers and folders). */
void cm_card_source_add (CmCardSource *cs, GBytes *der, CmSlot slot, const char *token,
                         const char *nickname);
void cm_card_source_free (CmCardSource *cs);

/* Add the card and its certificates to @inv, each cert's source naming the card. All or
 * nothing: a certificate that does not decode adds nothing and is an error naming the card
 * and the slot (CM_ERROR_BAD_INPUT). A card whose identity is already in @inv gets the new
 * objects. Takes @cs (freed in every case). */
gboolean cm_inventory_add_card_source (CmInventory *inv, CmCardSource *cs, GError **error);

/* Shorthand for readers and folders: @slot_certs maps CmSlot (GUINT_TO_POINTER) -> GBytes DER;
 * @chuid (nullable) is taken over. */
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

/* Personas (docs/roles.md): certs on one card are one persona; certs linked by FASC-N
 * credential, card UUID or 16-digit UPN are one; a cert on no card joins the persona whose
 * certs share its EDIPI, its exact subject DN and, where both carry one, an address. Two
 * different 16-digit persona IDs are never merged (cm_inventory_get_persona_conflicts). Computed
 * on first call (adding more afterwards recomputes). CmPersona* owned by @inv. */
GPtrArray *cm_inventory_get_personas (CmInventory *inv);
CmPersona *cm_inventory_persona_of (CmInventory *inv, CmCert *cert); /* or NULL */

/* Two persona IDs that the certificates would have merged: kept apart, and reported. */
typedef struct
{
  char *persona_ids[2]; /* 16 digits each, sorted */
  GPtrArray *certs;     /* char* sha256: the certs that carry them or would have joined them */
} CmPersonaConflict;

/* CmPersonaConflict*, owned by @inv; empty when there is none. */
GPtrArray *cm_inventory_get_persona_conflicts (CmInventory *inv);

/* TRUE when @cert sits on no card and the data cannot tell which persona it belongs to (its
 * name is shared by certs of several persona cards, or of conflicting persona IDs). */
gboolean cm_inventory_persona_unknown (CmInventory *inv, CmCert *cert);

/* Every distinct email address on an email-signing or email-encryption cert, lowercase, sorted.
 * Caller frees with g_ptr_array_unref. */
GPtrArray *cm_inventory_list_emails (CmInventory *inv);

/* CmCard: all data owned by the inventory. */
const char *cm_card_get_label (CmCard *card);
const CmChuid *cm_card_get_chuid (CmCard *card);
CmSourceKind cm_card_get_kind (CmCard *card);
GPtrArray *cm_card_get_certs (CmCard *card); /* CmCert*, current objects, by slot */
CmCert *cm_card_get_cert (CmCard *card, CmSlot slot);
CmSlot cm_card_get_slot_of (CmCard *card, CmCert *cert); /* CM_SLOT_NONE if unknown */
/* FASC-N credential, uuid:GUID, token:SERIAL, or card:LABEL */
const char *cm_card_get_identity (CmCard *card);
/* The card with @identity, or NULL. Borrowed. */
CmCard *cm_inventory_find_card (CmInventory *inv, const char *identity);
/* The cards @cert sits on (CmCard*, borrowed); caller unrefs the array. */
GPtrArray *cm_inventory_cards_of (CmInventory *inv, CmCert *cert);

/* CmPersona: all data owned by the inventory. */
const char *cm_persona_get_key (CmPersona *p);         /* stable grouping key */
const char *cm_persona_get_persona_id (CmPersona *p);  /* 16 digits or NULL */
const char *cm_persona_get_edipi (CmPersona *p);       /* 10 digits or NULL */
const char *cm_persona_get_association (CmPersona *p); /* FASC-N POA name, or NULL */
GPtrArray *cm_persona_get_certs (CmPersona *p);        /* CmCert* */
GPtrArray *cm_persona_get_cards (CmPersona *p);        /* CmCard* */

G_DEFINE_AUTOPTR_CLEANUP_FUNC (CmInventory, cm_inventory_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CmCardSource, cm_card_source_free)

G_END_DECLS
