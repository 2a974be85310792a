/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cm-der.h: the one BER/TLV reader (cm-der.c) of cacmail: core's DER and card objects, the
 * BER to DER rewrite of libcacmail-ldap and the PKCS#12 walk of libcacmail-nss. Not installed:
 * cm_ber_* are exported (not G_GNUC_INTERNAL) for those libraries only, like cm_secret_*, and are
 * not part of the API. Nothing here allocates; every read stays inside the bytes it is given. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* A read cursor over DER / BER-TLV bytes. Never reads past p + len. */
typedef struct
{
  const guint8 *p;
  gsize len;
} CmDer;

static inline CmDer
cm_der_init (const guint8 *p, gsize len)
{
  CmDer d = { p, len };
  return d;
}

typedef enum
{
  CM_BER_DEFINITE = 0,             /* definite lengths and one identifier octet only */
  CM_BER_INDEFINITE = 1 << 0,      /* a constructed element may have an indefinite length */
  CM_BER_HIGH_TAG_NUMBERS = 1 << 1 /* tag numbers above 30 (several identifier octets) */
} CmBerFlags;

/* Nesting the reader follows (indefinite lengths are walked to their end-of-contents octets);
 * an element deeper than this is refused. */
#define CM_BER_MAX_DEPTH 32

typedef struct
{
  guint8 id;           /* first identifier octet: class (0xc0), constructed (0x20), number */
  guint32 number;      /* the tag number (the low 5 bits of @id when below 31) */
  gsize id_len;        /* identifier octets */
  gsize hdr_len;       /* identifier and length octets */
  gboolean indefinite; /* length octet 0x80 (only a constructed element has one) */
  gsize len;           /* the definite length as declared (0 when indefinite) */
} CmBerHeader;

typedef struct
{
  CmBerHeader h;
  CmDer body; /* the contents (indefinite: up to, not with, its end-of-contents octets) */
  CmDer all;  /* the whole encoding, end-of-contents octets included */
} CmBerTlv;

/* The identifier and length octets at @p (@avail bytes there) into @h. The contents are not
 * looked at: a definite length may run past @avail (a file cut short, the first chunk of a
 * card object). FALSE for a header cut short, a high tag number without
 * CM_BER_HIGH_TAG_NUMBERS (or one not in minimal form, or above 2^28), a reserved length octet
 * 0xff, a length that does not fit in a gsize, and an indefinite length without
 * CM_BER_INDEFINITE or on a primitive element. */
gboolean cm_ber_header (const guint8 *p, gsize avail, CmBerFlags flags, CmBerHeader *h);

/* Read the element at the start of @cur into @tlv and move @cur past it. @depth is the
 * caller's nesting level (0 at the top): an indefinite length is walked element by element
 * (depth + 1 and down) to its end-of-contents octets, and nothing deeper than
 * CM_BER_MAX_DEPTH is read. FALSE (and @cur unchanged) when cm_ber_header refuses the header,
 * the contents run past @cur, or an indefinite length has no end. */
gboolean cm_ber_read (CmDer *cur, CmBerFlags flags, int depth, CmBerTlv *tlv);

/* Read one element and require its first identifier octet to be @id (so never a high tag
 * number); its contents go to @body. FALSE and @cur unchanged otherwise. */
gboolean cm_ber_expect (CmDer *cur, CmBerFlags flags, int depth, guint8 id, CmDer *body);

G_END_DECLS
