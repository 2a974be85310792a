/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cm-private.h: internals shared by the core's files; not installed. */
#pragma once

#include <glib.h>
#include <gio/gio.h>
#include <cert.h>
#include "cacmail.h"
#include "cm-der.h"

G_BEGIN_DECLS

/* Read one TLV with a single-byte tag and a definite length (cm_ber_read of cm-der.h with
 * CM_BER_DEFINITE). On success advances @cur and returns the tag and value. */
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

/* The start of the error when pcscd does not answer (cm-pcsc.c); the problem pcscd-not-running
 * (cm-select.c) shows it without the fix that follows, which its hint gives. */
#define CM_PCSCD_NOT_RUNNING_TEXT "pcscd is not running"

/* Write all @len bytes of @data to @fd, again after EINTR and short writes (cm-secret.c; exported
 * like the secrets below, for cacmail's own libraries and plugins). FALSE with errno set when a
 * write fails (EIO when it writes nothing). */
gboolean cm_write_all (int fd, const void *data, gsize len);

/* ---- secrets (cm-secret.c) ----
 * Exported (not G_GNUC_INTERNAL) for libcacmail-ldap and the CLI, but not part of the installed
 * API: every PIN and password cacmail reads goes through these. */
#define CM_SECRET_FILE_MAX 4096 /* bytes of a secret file */
#define CM_SECRET_LINE_MAX 1023 /* characters of a secret */

typedef enum
{
  CM_SECRET_DEFAULT = 0,
  CM_SECRET_ALLOW_EMPTY = 1 << 0, /* an empty first line is an empty secret, not an error */
} CmSecretFlags;

/* The first line of the secret file @path (CR/LF dropped), read with read(2) into the returned
 * buffer only. Refused: a file other users may read or change (CM_ERROR_UNSAFE, "chmod 600"),
 * anything but a regular file (a FIFO, /dev/zero...), a file over CM_SECRET_FILE_MAX bytes, a
 * NUL byte, an empty first line unless CM_SECRET_ALLOW_EMPTY (CM_ERROR_BAD_INPUT); a missing file
 * is CM_ERROR_NOT_FOUND. @what names the file in messages ("PIN file"). Caller frees with
 * cm_secret_free. */
char *cm_secret_read_file (const char *path, const char *what, CmSecretFlags flags, GError **error);

/* One line typed on @fd (a terminal, pipe or file), read one byte per read(2): no stdio buffer
 * keeps a copy and nothing after the line is consumed. On a terminal, echo is off while it is
 * typed (and a newline is written to @prompt_fd after). @prompt, if set, is written to
 * @prompt_fd (-1: none) once echo is off. @what names the secret in messages ("PIN"). Waits
 * until a line comes or @cancellable (may be NULL) is cancelled (G_IO_ERROR_CANCELLED). Caller
 * frees with cm_secret_free. */
char *cm_secret_read_line (int fd, int prompt_fd, const char *prompt, const char *what,
                           CmSecretFlags flags, GCancellable *cancellable, GError **error);

/* Wipe (explicit_bzero) and free a secret; NULL is fine. */
void cm_secret_free (char *secret);
/* The same for a buffer of @size bytes that may hold bytes after its NUL. */
void cm_secret_free_sized (char *secret, gsize size);

G_END_DECLS
