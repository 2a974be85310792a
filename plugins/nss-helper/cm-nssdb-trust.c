/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cm-nssdb-trust.c: CA certificates into a database (roots trusted C,C, for TLS and email,
 * intermediates without trust) and the PEM bundle the LDAP part uses (libldap verifies with
 * GnuTLS, not NSS). */
#include "cm-nssdb-private.h"
#include <certdb.h>
#include <errno.h>
#include <keyhi.h>
#include <pk11pub.h>
#include <pkcs11n.h>
#include <glib/gstdio.h>

/* NSS exports its decoder only under this name (cert.h's CERT_DecodeDERCertificate is not
 * exported). The certificate is not looked up in any token. */
extern CERTCertificate *__CERT_DecodeDERCertificate (SECItem *der, PRBool copy, char *nickname);

void
cm_nssdb_trust_item_free (CmNssdbTrustItem *item)
{
  if (item == NULL)
    return;
  g_free (item->subject);
  g_free (item->sha256);
  g_free (item);
}

char *
cm_nssdb_default_bundle_path (void)
{
  const char *dir = g_getenv ("CACMAIL_STATE_DIR");

  if (dir && *dir)
    return g_build_filename (dir, "ca-bundle.pem", NULL);
  return g_build_filename (g_get_user_data_dir (), "cacmail", "ca-bundle.pem", NULL);
}

static SECStatus
collect_package (void *arg, SECItem **certs, int n)
{
  for (int i = 0; i < n; i++)
    g_ptr_array_add (arg, g_bytes_new (certs[i]->data, certs[i]->len));
  return SECSuccess;
}

/* Every base64 block between "-----BEGIN @label-----" and its END line. */
static GPtrArray *
pem_blocks (const char *text, const char *label)
{
  GPtrArray *out = g_ptr_array_new_with_free_func ((GDestroyNotify)g_bytes_unref);
  g_autofree char *begin = g_strdup_printf ("-----BEGIN %s-----", label);
  g_autofree char *end = g_strdup_printf ("-----END %s-----", label);
  const char *p = text;

  while ((p = strstr (p, begin)))
    {
      const char *b = p + strlen (begin), *e = strstr (b, end);
      g_autofree char *body = NULL;
      guchar *der;
      gsize n = 0;

      if (e == NULL)
        break;
      body = g_strndup (b, e - b);
      der = g_base64_decode (g_strstrip (body), &n);
      if (n)
        g_ptr_array_add (out, g_bytes_new_take (der, n));
      else
        g_free (der);
      p = e + strlen (end);
    }
  return out;
}

static gboolean
decode_package (GBytes *blob, GPtrArray *out)
{
  gsize n = 0;
  const char *data = g_bytes_get_data (blob, &n);
  return CERT_DecodeCertPackage ((char *)data, n, collect_package, out) == SECSuccess;
}

GPtrArray *
cm_nssdb_read_ca_files (char **files, GError **error)
{
  g_autoptr (GPtrArray) out = g_ptr_array_new_with_free_func ((GDestroyNotify)g_bytes_unref);
  g_autoptr (GHashTable) have = g_hash_table_new (g_bytes_hash, g_bytes_equal);

  for (char **f = files; f && *f; f++)
    {
      g_autofree char *text = NULL;
      g_autoptr (GError) local = NULL;
      g_autoptr (GPtrArray) found = g_ptr_array_new_with_free_func ((GDestroyNotify)g_bytes_unref);
      gsize len = 0;
      guint cas = 0;

      if (!g_file_get_contents (*f, &text, &len, &local))
        {
          g_set_error (error, CM_ERROR, CM_ERROR_NOT_FOUND, "cannot read %s (%s): check the name",
                       *f, local->message);
          return NULL;
        }
      if (strstr (text, "-----BEGIN PKCS7-----") || strstr (text, "-----BEGIN CERTIFICATE-----"))
        {
          g_autoptr (GPtrArray) p7 = pem_blocks (text, "PKCS7");
          g_autoptr (GPtrArray) pem = pem_blocks (text, "CERTIFICATE");
          for (guint i = 0; i < p7->len; i++)
            decode_package (g_ptr_array_index (p7, i), found);
          for (guint i = 0; i < pem->len; i++)
            g_ptr_array_add (found, g_bytes_ref (g_ptr_array_index (pem, i)));
        }
      else
        {
          g_autoptr (GBytes) blob = g_bytes_new_static (text, len);
          decode_package (blob, found);
        }
      for (guint i = 0; i < found->len; i++)
        {
          g_autoptr (CmCert) c = cm_cert_new_from_der (g_ptr_array_index (found, i), NULL, NULL);
          if (c && cm_cert_is_ca (c))
            {
              GBytes *der = g_ptr_array_index (found, i);
              if (!g_hash_table_contains (have, der))
                {
                  g_ptr_array_add (out, g_bytes_ref (der));
                  g_hash_table_add (have, der); /* kept alive by @out */
                }
              cas++;
            }
        }
      if (cas == 0)
        {
          g_set_error (error, CM_ERROR, CM_ERROR_BAD_INPUT,
                       "%s holds no CA certificate%s: give the DoD PKI bundle (.p7b) or the "
                       "root and intermediate CA files",
                       *f, found->len ? " (only end-entity certificates)" : " NSS can read");
          return NULL;
        }
    }
  return g_steal_pointer (&out);
}

/* What the database's own token holds, read once (raw objects through core's reader): the
 * certs by sha256 and, per nickname, the subjects under it. */
typedef struct
{
  CmInventory *inv;
  GHashTable *subjects; /* nickname -> GHashTable set of subject strings */
} Held;

static void
held_note (Held *h, const char *nick, const char *subject)
{
  GHashTable *set = g_hash_table_lookup (h->subjects, nick);

  if (set == NULL)
    g_hash_table_insert (h->subjects, g_strdup (nick),
                         set = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL));
  g_hash_table_add (set, g_strdup (subject));
}

static void
held_init (Held *h, CmNssDb *db)
{
  GPtrArray *certs;

  h->inv = cm_inventory_new ();
  h->subjects
    = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify)g_hash_table_unref);
  cm_nss_add_token_certs_sync (h->inv, cm_nss_db_get_slot (db), cm_nss_db_get_dir (db), NULL, NULL);
  certs = cm_inventory_get_certs (h->inv);
  for (guint i = 0; i < certs->len; i++)
    {
      CmCert *c = g_ptr_array_index (certs, i);
      const char *nick = cm_nss_cert_nickname (c);
      if (nick)
        held_note (h, nick, cm_cert_get_subject (c));
    }
}

static void
held_clear (Held *h)
{
  cm_inventory_free (h->inv);
  g_hash_table_unref (h->subjects);
}

/* @base, or "@base #N" when certs of another subject already carry that nickname. */
static char *
unique_nickname (Held *h, CmCert *c, const char *base)
{
  g_autofree char *nick = g_strdup (base);

  for (int i = 2; i < 100; i++)
    {
      GHashTable *set = g_hash_table_lookup (h->subjects, nick);
      gboolean clash
        = set
          && (g_hash_table_size (set) > 1 || !g_hash_table_contains (set, cm_cert_get_subject (c)));
      if (!clash)
        break;
      g_free (nick);
      nick = g_strdup_printf ("%s #%d", base, i);
    }
  return g_steal_pointer (&nick);
}

static gboolean
trusted_ca (CERTCertificate *c)
{
  CERTCertTrust t;
  return CERT_GetCertTrust (c, &t) == SECSuccess && (t.sslFlags & CERTDB_TRUSTED_CA)
         && (t.emailFlags & CERTDB_TRUSTED_CA);
}

static gboolean
write_bundle (const char *path, GPtrArray *ders, GError **error)
{
  g_autofree char *dir = g_path_get_dirname (path);
  g_autoptr (GPtrArray) all = g_ptr_array_new_with_free_func ((GDestroyNotify)g_bytes_unref);
  g_autoptr (GString) out = g_string_new ("# CA certificates imported by cacmail nss trust\n");
  g_autoptr (GHashTable) have = g_hash_table_new (g_bytes_hash, g_bytes_equal);
  g_autofree char *old = NULL;
  g_autoptr (GError) local = NULL;

  if (g_file_get_contents (path, &old, NULL, NULL))
    {
      g_autoptr (GPtrArray) prev = pem_blocks (old, "CERTIFICATE");
      for (guint i = 0; i < prev->len; i++)
        g_ptr_array_add (all, g_bytes_ref (g_ptr_array_index (prev, i)));
    }
  for (guint i = 0; i < all->len; i++)
    g_hash_table_add (have, g_ptr_array_index (all, i));
  for (guint i = 0; i < ders->len; i++)
    if (g_hash_table_add (have, g_ptr_array_index (ders, i)))
      g_ptr_array_add (all, g_bytes_ref (g_ptr_array_index (ders, i)));
  for (guint i = 0; i < all->len; i++)
    {
      gsize n = 0;
      const guint8 *d = g_bytes_get_data (g_ptr_array_index (all, i), &n);
      g_autoptr (GError) bad = NULL;
      g_autoptr (CmCert) c = cm_cert_new_from_der (g_ptr_array_index (all, i), NULL, &bad);
      g_autofree char *b64 = g_base64_encode (d, n);
      gsize len = strlen (b64);

      g_string_append_printf (out, "# %s\n-----BEGIN CERTIFICATE-----\n",
                              c ? cm_cert_get_subject (c) : bad->message);
      for (gsize off = 0; off < len; off += 64)
        g_string_append_printf (out, "%.64s\n", b64 + off);
      g_string_append (out, "-----END CERTIFICATE-----\n");
    }
  if (g_mkdir_with_parents (dir, 0700) != 0
      || !g_file_set_contents_full (path, out->str, out->len, G_FILE_SET_CONTENTS_CONSISTENT, 0644,
                                    &local))
    {
      g_set_error (error, CM_ERROR, CM_ERROR_ENVIRONMENT,
                   "cannot write the CA bundle %s (%s): "
                   "make %s writable",
                   path, local ? local->message : g_strerror (errno), dir);
      return FALSE;
    }
  return TRUE;
}

/* The CKA_ID NSS gives a certificate object: SHA-1 of its public key's value (RSA modulus, DSA
 * or DH public value, EC point), as PK11_ImportCert computes it. NULL for a key NSS cannot read
 * or hashes otherwise. */
static SECItem *
cert_object_id (CERTCertificate *cert)
{
  SECKEYPublicKey *pub = CERT_ExtractPublicKey (cert);
  SECItem *value = NULL, *id = NULL;

  if (pub == NULL)
    return NULL;
  switch (pub->keyType)
    {
    case rsaKey: value = &pub->u.rsa.modulus; break;
    case dsaKey: value = &pub->u.dsa.publicValue; break;
    case dhKey: value = &pub->u.dh.publicValue; break;
    case ecKey: value = &pub->u.ec.publicValue; break;
    default: break;
    }
  if (value && value->len)
    id = PK11_MakeIDFromPubKey (value);
  SECKEY_DestroyPublicKey (pub);
  return id;
}

/* The DER INTEGER of @serial's contents (as NSS stores CKA_SERIAL_NUMBER) into @buf. */
static gsize
der_serial (const SECItem *serial, guint8 *buf, gsize size)
{
  gsize n = 0;

  if (serial->len + 4 > size)
    return 0;
  buf[n++] = 0x02;
  if (serial->len >= 0x100)
    buf[n++] = 0x82, buf[n++] = (guint8)(serial->len >> 8);
  else if (serial->len >= 0x80)
    buf[n++] = 0x81;
  buf[n++] = (guint8)serial->len;
  memcpy (buf + n, serial->data, serial->len);
  return n + serial->len;
}

/* Store @der as the certificate object PK11_ImportCert writes (same attributes, same CKA_ID),
 * in one C_CreateObject: PK11_ImportCert first makes an NSS certificate of it, which looks the
 * certificate and its trust up by issuer and serial in every token a dozen times, each a scan of
 * every certificate of that issuer (a DoD bundle: thousands). FALSE with NSS's error set;
 * @fallback TRUE when NSS's own path must be taken (a key type this does not hash). */
static gboolean
create_cert_object (PK11SlotInfo *slot, SECItem *der, const char *nick, gboolean *fallback)
{
  CERTCertificate *cert = __CERT_DecodeDERCertificate (der, PR_FALSE, NULL);
  SECItem *id = cert ? cert_object_id (cert) : NULL;
  CK_OBJECT_CLASS cls = CKO_CERTIFICATE;
  CK_CERTIFICATE_TYPE type = CKC_X_509;
  CK_BBOOL yes = CK_TRUE;
  guint8 serial[260];
  gsize serial_len = cert ? der_serial (&cert->serialNumber, serial, sizeof serial) : 0;
  PK11GenericObject *obj = NULL;
  CK_ATTRIBUTE t[10];
  int n = 0;

  *fallback = id == NULL || serial_len == 0;
  if (!*fallback)
    {
      t[n++] = (CK_ATTRIBUTE){ CKA_TOKEN, &yes, sizeof yes };
      t[n++] = (CK_ATTRIBUTE){ CKA_CLASS, &cls, sizeof cls };
      t[n++] = (CK_ATTRIBUTE){ CKA_CERTIFICATE_TYPE, &type, sizeof type };
      t[n++] = (CK_ATTRIBUTE){ CKA_ID, id->data, id->len };
      t[n++] = (CK_ATTRIBUTE){ CKA_LABEL, (char *)nick, strlen (nick) };
      t[n++] = (CK_ATTRIBUTE){ CKA_VALUE, der->data, der->len };
      t[n++] = (CK_ATTRIBUTE){ CKA_ISSUER, cert->derIssuer.data, cert->derIssuer.len };
      t[n++] = (CK_ATTRIBUTE){ CKA_SUBJECT, cert->derSubject.data, cert->derSubject.len };
      t[n++] = (CK_ATTRIBUTE){ CKA_SERIAL_NUMBER, serial, serial_len };
      if (PK11_IsInternal (slot) && cert->emailAddr && cert->emailAddr[0])
        t[n++] = (CK_ATTRIBUTE){ CKA_NSS_EMAIL, cert->emailAddr, strlen (cert->emailAddr) };
      obj = PK11_CreateGenericObject (slot, t, n, PR_TRUE);
    }
  if (obj)
    PK11_DestroyGenericObject (obj); /* the wrapper only: the token object stays */
  if (id)
    SECITEM_FreeItem (id, PR_TRUE);
  if (cert)
    CERT_DestroyCertificate (cert);
  return obj != NULL;
}

/* Store one CA cert (unless there), trust it C,C, if it is a root; its item goes to @out. */
static gboolean
import_one (CmNssDb *db, Held *held, GBytes *der, CERTCertTrust *ca_trust, GPtrArray *out,
            GCancellable *cancellable, GError **error)
{
  PK11SlotInfo *slot = cm_nss_db_get_slot (db);
  g_autoptr (CmCert) c = cm_cert_new_from_der (der, NULL, error);
  gsize n = 0;
  SECItem it = { siBuffer, (unsigned char *)g_bytes_get_data (der, &n), 0 };
  CERTCertificate *cert = NULL;
  CmNssdbTrustItem *item;

  it.len = n;
  if (c == NULL || g_cancellable_set_error_if_cancelled (cancellable, error))
    return FALSE;
  item = g_new0 (CmNssdbTrustItem, 1);
  item->subject = g_strdup (cm_cert_get_subject (c));
  item->sha256 = g_strdup (cm_cert_get_sha256 (c));
  item->root = cm_cert_is_self_signed (c); /* not a key-rollover cert: self-issued, old key */
  g_ptr_array_add (out, item);
  if (cm_inventory_lookup (held->inv, item->sha256) == NULL)
    {
      const char *cn = cm_cert_get_subject_cn (c);
      g_autofree char *nick = unique_nickname (held, c, cn ? cn : item->subject);

      gboolean fallback = FALSE;

      if (!create_cert_object (slot, &it, nick, &fallback)
          && (!fallback
              || PK11_ImportDERCert (slot, &it, CK_INVALID_HANDLE, nick, PR_FALSE) != SECSuccess))
        {
          g_set_error (error, CM_ERROR, CM_ERROR_ENVIRONMENT,
                       "NSS could not store %s in %s (%s): check that cert9.db is writable",
                       item->subject, cm_nss_db_get_dir (db), cm_nss_error_text ());
          return FALSE;
        }
      held_note (held, nick, item->subject);
      item->added = TRUE;
    }
  /* only a root needs its NSS object: for its trust */
  if (item->root)
    cert = PK11_FindCertFromDERCertItem (slot, &it, NULL);
  if (cert && !trusted_ca (cert)
      && CERT_ChangeCertTrust (CERT_GetDefaultCertDB (), cert, ca_trust) != SECSuccess)
    {
      g_set_error (error, CM_ERROR, CM_ERROR_ENVIRONMENT,
                   "NSS could not trust %s in %s (%s): check that cert9.db is writable",
                   item->subject, cm_nss_db_get_dir (db), cm_nss_error_text ());
      CERT_DestroyCertificate (cert);
      return FALSE;
    }
  if (cert)
    CERT_DestroyCertificate (cert);
  return TRUE;
}

gboolean
cm_nssdb_trust_import_sync (CmNssDb *db, GPtrArray *ca_ders, const char *bundle_path,
                            GPtrArray **items, GCancellable *cancellable, GError **error)
{
  PK11SlotInfo *slot = cm_nss_db_get_slot (db);
  g_autoptr (GPtrArray) out
    = g_ptr_array_new_with_free_func ((GDestroyNotify)cm_nssdb_trust_item_free);
  CERTCertTrust ca_trust;
  Held held;

  *items = NULL;
  if (cm_nss_db_is_read_only (db) || PK11_IsReadOnly (slot))
    {
      g_set_error (error, CM_ERROR, CM_ERROR_ENVIRONMENT,
                   "the NSS database in %s is read-only: make it writable by you",
                   cm_nss_db_get_dir (db));
      return FALSE;
    }
  CERT_DecodeTrustString (&ca_trust, "C,C,");
  held_init (&held, db);
  for (guint i = 0; i < ca_ders->len; i++)
    if (!import_one (db, &held, g_ptr_array_index (ca_ders, i), &ca_trust, out, cancellable, error))
      {
        held_clear (&held);
        return FALSE;
      }
  held_clear (&held);
  if (bundle_path && !write_bundle (bundle_path, ca_ders, error))
    return FALSE;
  *items = g_steal_pointer (&out);
  return TRUE;
}

CmTrust *
cm_nssdb_trust_from_db (CmNssDb *db, const char *bundle_path)
{
  CmTrust *trust = cm_trust_new ();
  g_autoptr (CmInventory) inv = cm_inventory_new ();
  PK11SlotInfo *slot = cm_nss_db_get_slot (db);
  GPtrArray *certs;

  /* raw objects, no NSS certificate per cert (PK11_ListCertsInSlot looks up each one's trust,
   * which scans every cert of its issuer): only a self-issued CA is asked for its trust */
  cm_nss_add_token_certs_sync (inv, slot, cm_nss_db_get_dir (db), NULL, NULL);
  certs = cm_inventory_get_certs (inv);
  for (guint i = 0; i < certs->len; i++)
    {
      CmCert *c = g_ptr_array_index (certs, i);
      gboolean anchor = FALSE;

      if (!cm_cert_is_ca (c))
        continue;
      if (cm_cert_is_self_issued (c))
        {
          GBytes *der = cm_cert_get_der (c);
          SECItem it = { siBuffer, (unsigned char *)g_bytes_get_data (der, NULL),
                         (unsigned int)g_bytes_get_size (der) };
          CERTCertificate *nss = PK11_FindCertFromDERCertItem (slot, &it, NULL);
          anchor = nss && trusted_ca (nss);
          if (nss)
            CERT_DestroyCertificate (nss);
        }
      if (anchor)
        cm_trust_add_anchor (trust, c);
      else
        cm_trust_add_intermediate (trust, c);
    }
  if (bundle_path && g_file_test (bundle_path, G_FILE_TEST_EXISTS))
    cm_trust_add_file (trust, bundle_path, NULL);
  return trust;
}
