/* cm-private.h: internals shared by the core's files; not installed. */
#pragma once

#include <glib.h>
#include <cert.h>
#include "cacmail.h"

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

/* Read one TLV with a single-byte tag and a definite length (short or long form, at most
 * 4 length bytes). On success advances @cur and returns the tag and value. */
G_GNUC_INTERNAL gboolean cm_der_next (CmDer *cur, guint8 *tag, CmDer *value);

/* Read one TLV and require @tag. */
G_GNUC_INTERNAL gboolean cm_der_expect (CmDer *cur, guint8 tag, CmDer *value);

/* Dotted string of an OID's contents, or NULL if malformed. Caller frees. */
G_GNUC_INTERNAL char *cm_der_oid_to_string (CmDer oid);

/* TRUE when all @n bytes are ASCII digits. */
G_GNUC_INTERNAL gboolean cm_is_digits (const guint8 *p, gsize n);

/* Lowercase hex. Caller frees. */
G_GNUC_INTERNAL char *cm_hex_encode (const guint8 *p, gsize len, gboolean upper);

/* Read a whole file; error names the file. Files over 16 MiB are refused (no input is that big). */
G_GNUC_INTERNAL GBytes *cm_read_file (const char *path, GError **error);

/* Decode every PEM CERTIFICATE block in @data (text around it allowed) into DER GBytes.
 * Returns NULL when there is no armour at all; an armour that does not decode is an error. */
G_GNUC_INTERNAL GPtrArray *cm_pem_decode_certs (const guint8 *data, gsize len, GError **error);

/* Load one or more certificates from a file's bytes (PEM, or a single DER certificate).
 * Distinguishes PKCS#12 and empty files for clear errors. Returns GBytes* array. */
G_GNUC_INTERNAL GPtrArray *cm_load_cert_blobs (GBytes *bytes, const char *path, GError **error);

/* The NSS certificate under a CmCert (borrowed). */
G_GNUC_INTERNAL CERTCertificate *cm_cert_get_nss (CmCert *cert);
G_GNUC_INTERNAL const SECItem *cm_cert_get_ski (CmCert *cert); /* NULL if absent */
G_GNUC_INTERNAL const SECItem *
cm_cert_get_aki (CmCert *cert); /* authority key ID keyIdentifier, or NULL */

/* Ensure NSS can decode (cm_init) -- returns FALSE with error otherwise. */
G_GNUC_INTERNAL gboolean cm_nss_ready (GError **error);

G_END_DECLS
