/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cm-card.h: reading PIV / CAC cards over PC/SC (pcsc-lite). Blocking calls end in _sync and
 * take a GCancellable. */
#pragma once

#include <gio/gio.h>
#include "cm-inventory.h"

G_BEGIN_DECLS

typedef enum
{
  CM_READ_DEFAULT = 0,         /* CHUID + 9A, 9C, 9D: what login and mail need */
  CM_READ_ALL = 1 << 0,        /* also 9E, the retired key-management certs, the CAC applets
                                  and the PIN retry counter */
  CM_READ_SHORT_ONLY = 1 << 1, /* never try extended-length APDUs */
  CM_READ_NO_CACHE = 1 << 2,   /* read everything in full (before anything is written or
                                  published); the cache is still refreshed */
} CmReadFlags;

typedef struct
{
  char *name;
  gboolean card_present;
  char *atr; /* uppercase hex, or NULL */
} CmReaderInfo;

/* What a read found and cost on the wire (the benchmark reads the counts). */
typedef struct
{
  guint apdus;
  guint64 bytes_sent;
  guint64 bytes_received;
  gboolean extended;     /* extended-length APDUs were used */
  guint from_cache;      /* certificates confirmed from the cache instead of read in full */
  gint pin_tries_left;   /* with CM_READ_ALL: 0 = blocked; -1 = not asked or unknown */
  gboolean pin_verified; /* with CM_READ_ALL: the PIN is already verified in this session */
} CmCardReport;

void cm_reader_info_free (CmReaderInfo *info);

/* The readers pcscd knows, with card presence. No reader is an empty array, not an error;
 * pcscd not running is CM_ERROR_ENVIRONMENT. Caller unrefs the array (CmReaderInfo*). */
GPtrArray *cm_pcsc_list_readers_sync (GCancellable *cancellable, GError **error);

/* Read the card in @reader into @inv as one card labelled with the reader's name. @report
 * (nullable, caller-owned) receives what the read cost and found. A card seen before is
 * checked against the cache ($XDG_CACHE_HOME/cacmail/cards: public data only) by the first
 * chunk of each certificate container (serial and issuer), since the CHUID alone does not
 * prove the certificates unchanged. Errors: no card, not a PIV card, card removed during the
 * read (CM_ERROR_ENVIRONMENT or CM_ERROR_BAD_INPUT, with a message saying what to do); nothing
 * is added to @inv then. */
gboolean cm_card_read_sync (CmInventory *inv, const char *reader, CmReadFlags flags,
                            CmCardReport *report, GCancellable *cancellable, GError **error);

/* Wait until a card is inserted or removed in any reader, or a reader comes or goes, for at
 * most @timeout_ms (0 = forever). Returns TRUE on a change, FALSE with no error on time-out,
 * FALSE with @error when cancelled (G_IO_ERROR_CANCELLED) or pcscd fails. */
gboolean cm_pcsc_wait_change_sync (guint timeout_ms, GCancellable *cancellable, GError **error);

/* "wrong PIN, 2 PIN tries left", "PIN blocked: ...", ... for a status word, never a bare
 * "63C2". Caller frees with g_free(). */
char *cm_status_word_message (guint16 sw);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (CmReaderInfo, cm_reader_info_free)

G_END_DECLS
