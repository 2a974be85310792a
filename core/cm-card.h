/* cm-card.h: reading PIV / CAC cards over PC/SC (pcsc-lite). Blocking calls end in _sync and
 * take a GCancellable. */
#pragma once

#include <gio/gio.h>
#include "cm-inventory.h"

G_BEGIN_DECLS

typedef enum
{
  CM_READ_DEFAULT = 0,         /* CHUID + 9A, 9C, 9D: what login and mail need */
  CM_READ_ALL = 1 << 0,        /* also 9E and the retired key-management certs */
  CM_READ_SHORT_ONLY = 1 << 1, /* never try extended-length APDUs */
} CmReadFlags;

typedef struct
{
  char *name;
  gboolean card_present;
  char *atr; /* uppercase hex, or NULL */
} CmReaderInfo;

/* What a read cost on the wire (for the benchmark). */
typedef struct
{
  guint apdus;
  guint64 bytes_sent;
  guint64 bytes_received;
  gboolean extended; /* extended-length APDUs were used */
} CmCardStats;

void cm_reader_info_free (CmReaderInfo *info);

/* The readers pcscd knows, with card presence. No reader is an empty array, not an error;
 * pcscd not running is CM_ERROR_ENVIRONMENT. Caller unrefs the array (CmReaderInfo*). */
GPtrArray *cm_pcsc_list_readers_sync (GCancellable *cancellable, GError **error);

/* Read the card in @reader into @inv as one card labelled with the reader's name. @stats
 * (nullable, caller-owned) receives the APDU counts. Errors: no card, not a PIV card, card
 * removed during the read (CM_ERROR_ENVIRONMENT, with a message saying what to do). */
gboolean cm_card_read_sync (CmInventory *inv, const char *reader, CmReadFlags flags,
                            CmCardStats *stats, GCancellable *cancellable, GError **error);

/* "2 PIN tries left", "PIN blocked", ... for a status word; static or caller-freed? Caller
 * frees with g_free(). */
char *cm_status_word_message (guint16 sw);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (CmReaderInfo, cm_reader_info_free)

G_END_DECLS
