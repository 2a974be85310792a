/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cm-inventory-private.h: the inventory's insides, shared by cm-inventory.c (intake, cards)
 * and cm-persona.c (personas). Not installed. */
#pragma once

#include "cm-private.h"

G_BEGIN_DECLS

typedef struct
{
  CmSlot slot; /* CM_SLOT_NONE when the source does not say */
  char *sha;
} CmCardEntry;

struct _CmCard
{
  CmInventory *inv;
  CmSourceKind kind;
  char *label; /* for people: folder, reader, token label; never an identity */
  CmChuid *chuid;
  char *identity;
  GArray *entries;  /* CmCardEntry, in the order the source gave them */
  GPtrArray *certs; /* CmCert*, refreshed by cm_card_get_certs */
};

struct _CmPersona
{
  char *key;
  char *persona_id;
  char *edipi;
  const char *association;
  GPtrArray *certs; /* CmCert* (borrowed from the inventory) */
  GPtrArray *cards; /* CmCard* */
};

struct _CmInventory
{
  GHashTable *by_sha;       /* sha256 -> CmCert* (owned) */
  GPtrArray *order;         /* sha256 (owned strings), insertion order */
  GPtrArray *certs;         /* CmCert*, rebuilt on demand */
  GPtrArray *cards;         /* CmCard* */
  GHashTable *decrypt_only; /* sha256 set */
  /* computed by cm_persona_build(), dropped on every change */
  GPtrArray *personas;
  GHashTable *persona_of; /* sha256 -> CmPersona* */
  GPtrArray *conflicts;   /* CmPersonaConflict* */
  GHashTable *unknown;    /* sha256 set: person certs whose persona the data cannot tell */
};

/* Group the inventory's person certs into personas (fills personas, persona_of, conflicts,
 * unknown). */
G_GNUC_INTERNAL void cm_persona_build (CmInventory *inv);

/* Free what cm_persona_build() computed. */
G_GNUC_INTERNAL void cm_persona_clear (CmInventory *inv);

G_END_DECLS
