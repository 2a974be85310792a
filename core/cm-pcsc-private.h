/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cm-pcsc-private.h: the APDU session shared by the PIV reader (cm-pcsc.c), the CAC reader
 * (cm-cac.c) and the cache (cm-card-cache.c). Private. */
#pragma once

#include "cm-private.h"
#include "cm-card.h"
#include <PCSC/winscard.h>
#include <PCSC/wintypes.h>
#include <zlib.h>

#define CM_MAX_OBJECT (64 * 1024)
/* What a card may do before it is taken for one that does not answer properly. Every loop
 * over a card's answers is bounded by these and by the deadline of the read. */
#define CM_MAX_GET_RESPONSE 300 /* GET RESPONSE rounds of one command (64 KiB / 256 + slack) */
#define CM_MAX_EMPTY_61 2       /* 61xx answers in a row that bring no data */
#define CM_MAX_RESEND 2         /* 6Cxx re-sends of one command */
#define CM_READ_SECONDS 20      /* one card read, all APDUs: no APDU is sent after that */

typedef struct
{
  SCARDCONTEXT ctx;
  SCARDHANDLE card;
  DWORD proto;
  const char *reader;
  gboolean extended_ok;
  gboolean extended_tried;
  CmCardReport *stats;
  GCancellable *cancellable;
  gint64 deadline; /* g_get_monotonic_time() after which no APDU is sent; 0: none */
  gboolean broken; /* the card broke the protocol: nothing more is sent to it */
} CmApduSession;

/* Set @error to "the card in reader ... does not answer properly (@why): remove and reinsert
 * it" (CM_ERROR_ENVIRONMENT) and mark the session broken. Returns FALSE. */
G_GNUC_INTERNAL gboolean cm_apdu_not_answering (CmApduSession *s, const char *why, GError **error);

/* Send one APDU. 61xx is followed with GET RESPONSE unless @first_chunk_only; 6Cxx is resent
 * with the length the card asks for. Returns the data (caller unrefs) and the final SW. A card
 * that breaks the bounds above, answers without a status word or with more data than Le, or
 * keeps the read past its deadline gets cm_apdu_not_answering(). */
G_GNUC_INTERNAL GByteArray *cm_apdu_transmit (CmApduSession *s, const guint8 *apdu, gsize len,
                                              guint16 *sw, gboolean first_chunk_only,
                                              GError **error);

/* Continue a 61xx answer with GET RESPONSE until the end, appending to @data (bounded as
 * cm_apdu_transmit). */
G_GNUC_INTERNAL gboolean cm_apdu_get_rest (CmApduSession *s, GByteArray *data, guint16 *sw,
                                           GError **error);

/* Set @error from a PC/SC return code, with a message a user can act on. */
G_GNUC_INTERNAL void cm_pcsc_set_error (GError **error, LONG rv, const char *reader,
                                        const char *what);

/* Read the certificates of the CAC PKI applets 0..2 into @slot_certs (CM_SLOT_CAC_*). Absent
 * applets are skipped. Leaves no applet selected that matters: callers reselect PIV. */
G_GNUC_INTERNAL gboolean cm_cac_read_certs (CmApduSession *s, GHashTable *slot_certs,
                                            GError **error);

/* Inflate a gzip/zlib stream (CertInfo 0x01) into a new GBytes, or NULL with @error. */
G_GNUC_INTERNAL GBytes *cm_inflate (const guint8 *p, gsize len, GError **error);

/* The certificate of a PIV container 53 { 70 cert | 71 info | FE }, inflated when CertInfo
 * says gzip (caller unrefs), or NULL with @error. */
G_GNUC_INTERNAL GBytes *cm_card_cert_from_container (const guint8 *p, gsize len, GError **error);

/* The CHUID from the complete leading TLVs of its container's first chunk (the chunk may cut
 * the signature short), or NULL. Caller frees. */
G_GNUC_INTERNAL CmChuid *cm_card_chuid_from_prefix (const guint8 *p, gsize len);

/* The certificate DER of a CAC PKI applet from its TL and V files (their 2-byte lengths
 * removed), inflated when CertInfo says gzip (caller unrefs), or NULL with @error naming the
 * reader of @s. */
G_GNUC_INTERNAL GBytes *cm_cac_cert_from_files (CmApduSession *s, GByteArray *tl, GByteArray *v,
                                                GError **error);

/* The public-data cache of cards seen before ($XDG_CACHE_HOME/cacmail/cards). */
typedef struct _CmCardCache CmCardCache;
G_GNUC_INTERNAL CmCardCache *cm_card_cache_load (const char *identity);
G_GNUC_INTERNAL void cm_card_cache_free (CmCardCache *cache);
G_GNUC_INTERNAL gboolean cm_card_cache_has (CmCardCache *cache, const char *tag);
/* The cached DER for @tag (new reference) if the first chunk the card just returned is the
 * cached one, else NULL. */
G_GNUC_INTERNAL GBytes *cm_card_cache_match (CmCardCache *cache, const char *tag,
                                             const guint8 *first_chunk, gsize len);
G_GNUC_INTERNAL void cm_card_cache_put (CmCardCache *cache, const char *tag,
                                        const guint8 *first_chunk, gsize len, GBytes *der);
G_GNUC_INTERNAL void cm_card_cache_save (CmCardCache *cache);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (CmCardCache, cm_card_cache_free)
