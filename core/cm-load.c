/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cm-load.c: reading certificate files (PEM or DER) with errors a user can act on. */
#define _GNU_SOURCE /* memmem */
#include "cm-private.h"

#define CM_MAX_INPUT_SIZE (16 * 1024 * 1024)

GBytes *
cm_read_file (const char *path, GError **error)
{
  g_autoptr (GError) local = NULL;
  g_autoptr (GMappedFile) map = NULL;
  gsize len;

  if (g_file_test (path, G_FILE_TEST_IS_DIR))
    {
      g_set_error (error, CM_ERROR, CM_ERROR_BAD_INPUT, "%s: is a directory, not a file", path);
      return NULL;
    }
  map = g_mapped_file_new (path, FALSE, &local);
  if (map == NULL)
    {
      g_set_error (error, CM_ERROR, CM_ERROR_BAD_INPUT, "%s: cannot read it (%s)", path,
                   local->message);
      return NULL;
    }
  len = g_mapped_file_get_length (map);
  if (len > CM_MAX_INPUT_SIZE)
    {
      g_set_error (error, CM_ERROR, CM_ERROR_BAD_INPUT,
                   "%s: is %" G_GSIZE_FORMAT " bytes, too large for a certificate file", path, len);
      return NULL;
    }
  return g_mapped_file_get_bytes (map);
}

static gboolean
is_b64 (char ch)
{
  return g_ascii_isalnum (ch) || ch == '+' || ch == '/' || ch == '=';
}

static const char *
find_mem (const char *hay, gsize hay_len, const char *needle)
{
  return memmem (hay, hay_len, needle, strlen (needle));
}

/* The next certificate armour at or after @p: its body starts at *@body. Other armours
 * (keys, CRLs) are stepped over. One forward scan: the whole file is read once. */
static const char *
next_cert_begin (const char *p, const char *end, const char **body)
{
  static const char *const labels[] = { "CERTIFICATE-----", "X509 CERTIFICATE-----" };

  for (const char *b; (b = find_mem (p, (gsize)(end - p), "-----BEGIN ")) != NULL; p = b + 11)
    for (gsize i = 0; i < G_N_ELEMENTS (labels); i++)
      {
        gsize n = strlen (labels[i]);
        if ((gsize)(end - (b + 11)) >= n && memcmp (b + 11, labels[i], n) == 0)
          {
            *body = b + 11 + n;
            return b;
          }
      }
  return NULL;
}

/* Append the base64 of one armour body to @out, decoded. */
static gboolean
decode_body (const char *b, const char *e, GPtrArray *out, GString *b64, GError **error)
{
  guchar *der;
  gsize der_len = 0;

  g_string_truncate (b64, 0);
  for (const char *q = b; q < e; q++)
    {
      if (g_ascii_isspace (*q))
        continue;
      if (!is_b64 (*q))
        {
          g_set_error (error, CM_ERROR, CM_ERROR_BAD_INPUT,
                       "PEM certificate holds a character that is not base64");
          return FALSE;
        }
      g_string_append_c (b64, *q);
    }
  if (b64->len == 0 || b64->len % 4 != 0)
    {
      g_set_error (error, CM_ERROR, CM_ERROR_BAD_INPUT,
                   "PEM certificate body is truncated (base64 length %" G_GSIZE_FORMAT ")",
                   b64->len);
      return FALSE;
    }
  der = g_base64_decode (b64->str, &der_len);
  g_ptr_array_add (out, g_bytes_new_take (der, der_len));
  return TRUE;
}

GPtrArray *
cm_pem_decode_certs (const guint8 *data, gsize len, GError **error)
{
  g_autoptr (GPtrArray) out = g_ptr_array_new_with_free_func ((GDestroyNotify)g_bytes_unref);
  g_autoptr (GString) b64 = g_string_new (NULL);
  const char *p = (const char *)data;
  const char *end = p + len, *b, *e;
  gboolean any_armour = find_mem (p, len, "-----BEGIN ") != NULL;

  while (p < end && next_cert_begin (p, end, &b) != NULL)
    {
      if ((e = find_mem (b, (gsize)(end - b), "-----END ")) == NULL)
        {
          g_set_error (error, CM_ERROR, CM_ERROR_BAD_INPUT,
                       "PEM certificate has no END line (truncated file?)");
          return NULL;
        }
      if (!decode_body (b, e, out, b64, error))
        return NULL;
      p = e + 9;
    }
  if (out->len == 0)
    {
      if (any_armour)
        {
          g_set_error (error, CM_ERROR, CM_ERROR_BAD_INPUT,
                       "PEM file holds no CERTIFICATE block (a key or another object?)");
          return NULL;
        }
      return NULL;
    }
  return g_steal_pointer (&out);
}

/* PFX ::= SEQUENCE { version INTEGER (3), authSafe ContentInfo, ... } */
static gboolean
looks_like_pkcs12 (const guint8 *p, gsize len)
{
  CmDer cur = cm_der_init (p, len), seq, ver;

  if (!cm_der_expect (&cur, 0x30, &seq) || !cm_der_expect (&seq, 0x02, &ver))
    return FALSE;
  return ver.len == 1 && ver.p[0] == 3;
}

GPtrArray *
cm_load_cert_blobs (GBytes *bytes, const char *path, GError **error)
{
  gsize len;
  const guint8 *p = g_bytes_get_data (bytes, &len);
  g_autoptr (GError) local = NULL;
  g_autoptr (GPtrArray) blobs = NULL;

  if (len == 0)
    {
      g_set_error (error, CM_ERROR, CM_ERROR_BAD_INPUT,
                   "%s: is empty; give a certificate file (PEM or DER)", path);
      return NULL;
    }
  blobs = cm_pem_decode_certs (p, len, &local);
  if (local)
    {
      g_set_error (error, CM_ERROR, CM_ERROR_BAD_INPUT, "%s: %s", path, local->message);
      return NULL;
    }
  if (blobs)
    return g_steal_pointer (&blobs);
  if (looks_like_pkcs12 (p, len))
    {
      g_set_error (error, CM_ERROR, CM_ERROR_BAD_INPUT,
                   "%s: is a PKCS#12 key file, not a certificate; give the .crt file beside it "
                   "(key files are imported into NSS, not classified)",
                   path);
      return NULL;
    }
  if (p[0] != 0x30)
    {
      g_set_error (error, CM_ERROR, CM_ERROR_BAD_INPUT,
                   "%s: is not a certificate (neither PEM nor DER); give a .crt/.pem/.cer file",
                   path);
      return NULL;
    }
  blobs = g_ptr_array_new_with_free_func ((GDestroyNotify)g_bytes_unref);
  g_ptr_array_add (blobs, g_bytes_ref (bytes));
  return g_steal_pointer (&blobs);
}
