/* cm-nssdb-p12.c: import recovered (escrowed) encryption keys from PKCS#12 files.
 *
 * NSS has no transaction across cert9.db and key4.db, so the file is first imported into a
 * scratch database (in memory-backed storage, with a random password, deleted at once) where
 * everything is checked: password, decoding, that each certificate has its key and that the key
 * really is the certificate's. Only then is the real database written; a write that fails
 * half-way is undone by deleting what was added. */
#include "cm-nssdb-private.h"
#include <errno.h>
#include <certdb.h>
#include <keyhi.h>
#include <p12.h>
#include <pk11pub.h>
#include <prerror.h>
#include <secerr.h>
#include <sechash.h>
#include <glib/gstdio.h>
#include <unistd.h>

typedef struct
{
  GPtrArray *certs;    /* GBytes DER, every cert bag */
  GPtrArray *with_key; /* GBytes DER, cert bags that have a key bag */
  guint keys;
  GHashTable *nicknames; /* sha256 -> nickname to give (with_key certs) */
} Bags;

static void
bags_clear (Bags *b)
{
  g_clear_pointer (&b->certs, g_ptr_array_unref);
  g_clear_pointer (&b->with_key, g_ptr_array_unref);
  g_clear_pointer (&b->nicknames, g_hash_table_unref);
}

const char *
cm_nssdb_nss_error (void)
{
  const char *s = PR_ErrorToString (PORT_GetError (), PR_LANGUAGE_I_DEFAULT);
  return s && *s ? s : "unknown NSS error";
}

char *
cm_nssdb_sha256 (const SECItem *der)
{
  guint8 d[32];
  GString *s = g_string_sized_new (64);

  if (PK11_HashBuf (SEC_OID_SHA256, d, der->data, der->len) != SECSuccess)
    memset (d, 0, sizeof d);
  for (gsize i = 0; i < sizeof d; i++)
    g_string_append_printf (s, "%02x", d[i]);
  return g_string_free (s, FALSE);
}

const char *
cm_nssdb_own_label (CmNssDb *db, const char *nickname)
{
  const char *token = PK11_GetTokenName (cm_nss_db_get_slot (db));
  gsize n = token ? strlen (token) : 0;

  if (nickname && n && strncmp (nickname, token, n) == 0 && nickname[n] == ':')
    return nickname + n + 1;
  return nickname;
}

gboolean
cm_nssdb_db_has_cert_and_key (CmNssDb *db, const char *sha256)
{
  PK11SlotInfo *slot = cm_nss_db_get_slot (db);
  CERTCertList *list = PK11_ListCertsInSlot (slot);
  gboolean found = FALSE;

  for (CERTCertListNode *n = list ? CERT_LIST_HEAD (list) : NULL; n && !CERT_LIST_END (n, list);
       n = CERT_LIST_NEXT (n))
    {
      g_autofree char *h = cm_nssdb_sha256 (&n->cert->derCert);
      if (strcmp (h, sha256) == 0)
        {
          SECKEYPrivateKey *k = PK11_FindPrivateKeyFromCert (slot, n->cert, NULL);
          found = k != NULL;
          if (k)
            SECKEY_DestroyPrivateKey (k);
          break;
        }
    }
  if (list)
    CERT_DestroyCertList (list);
  return found;
}

/* A first look at the bytes, for clear errors: PKCS#12 is SEQUENCE { INTEGER 3, ... }. */
static gboolean
check_shape (const guint8 *p, gsize len, const char *path, GError **error)
{
  gsize hdr = 2, body = 0;

  if (len == 0)
    return g_set_error (error, CM_ERROR, CM_ERROR_BAD_INPUT,
                        "%s is empty: give the PKCS#12 (.p12/.pfx) file the key recovery "
                        "service sent", path), FALSE;
  if (len >= 10 && memcmp (p, "-----BEGIN", 10) == 0)
    return g_set_error (error, CM_ERROR, CM_ERROR_BAD_INPUT,
                        "%s is PEM text, not a PKCS#12 file: give the .p12/.pfx file (or convert "
                        "with openssl pkcs12 -export)", path), FALSE;
  if (len < 5 || p[0] != 0x30)
    goto not_p12;
  if (p[1] & 0x80)
    {
      gsize n = p[1] & 0x7f;
      if (n == 0)
        hdr = 2, body = len - 2; /* BER indefinite length */
      else if (n > 4 || len < 2 + n)
        goto not_p12;
      else
        {
          for (gsize i = 0; i < n; i++)
            body = (body << 8) | p[2 + i];
          hdr = 2 + n;
        }
    }
  else
    body = p[1];
  if (len < hdr + 3 || p[hdr] != 0x02 || p[hdr + 1] != 0x01 || p[hdr + 2] != 0x03)
    goto not_p12;
  if (hdr + body > len)
    return g_set_error (error, CM_ERROR, CM_ERROR_BAD_INPUT,
                        "%s is truncated (%" G_GSIZE_FORMAT " of %" G_GSIZE_FORMAT " bytes): "
                        "copy the file again from the key recovery message", path, len,
                        hdr + body), FALSE;
  return TRUE;
not_p12:
  g_set_error (error, CM_ERROR, CM_ERROR_BAD_INPUT,
               "%s is not a PKCS#12 file: give the .p12/.pfx file the key recovery service sent",
               path);
  return FALSE;
}

/* The password as PKCS#12 wants it: UCS-2 big-endian with a terminating zero. */
static SECItem *
ucs2_password (const char *utf8)
{
  glong n = 0;
  gunichar2 *u = g_utf8_to_utf16 (utf8, -1, NULL, &n, NULL);
  SECItem *it;

  if (u == NULL)
    return NULL;
  it = SECITEM_AllocItem (NULL, NULL, 2 * n + 2);
  for (glong i = 0; it && i <= n; i++)
    {
      it->data[2 * i] = u[i] >> 8;
      it->data[2 * i + 1] = u[i] & 0xff;
    }
  explicit_bzero (u, n * sizeof *u);
  g_free (u);
  return it;
}

static void
password_free (SECItem *pw)
{
  if (pw == NULL)
    return;
  explicit_bzero (pw->data, pw->len);
  SECITEM_FreeItem (pw, PR_TRUE);
}

static SECItem *
collision_cb (SECItem *old_nickname, PRBool *cancel, void *wincx)
{
  *cancel = PR_FALSE;
  return SECITEM_DupItem (&(SECItem){ siBuffer, (unsigned char *)"Recovered key", 14 });
}

/* Decode and verify the MAC; an empty password is tried both ways, as pk12util does. */
static SEC_PKCS12DecoderContext *
decode (PK11SlotInfo *slot, SECItem *pw, GBytes *bytes, const char *path, GError **error)
{
  gsize len = 0;
  const guint8 *data = g_bytes_get_data (bytes, &len);
  int update_err = 0;

  for (int attempt = 0; attempt < 2; attempt++)
    {
      SEC_PKCS12DecoderContext *dcx =
        SEC_PKCS12DecoderStart (pw, slot, NULL, NULL, NULL, NULL, NULL, NULL);
      SECStatus upd, ver;

      if (dcx == NULL)
        break;
      upd = SEC_PKCS12DecoderUpdate (dcx, (unsigned char *)data, len);
      update_err = upd == SECSuccess ? 0 : PORT_GetError ();
      ver = SEC_PKCS12DecoderVerify (dcx);
      if (upd == SECSuccess && ver == SECSuccess)
        return dcx;
      SEC_PKCS12DecoderFinish (dcx);
      if (update_err == SEC_ERROR_BAD_EXPORT_ALGORITHM
          || update_err == SEC_ERROR_DECRYPTION_DISALLOWED)
        {
          g_set_error (error, CM_ERROR, CM_ERROR_BAD_INPUT,
                       "%s uses a cipher that this system's crypto policy forbids (%s): allow "
                       "legacy PKCS#12 decryption in the NSS policy, or re-export the file "
                       "with AES",
                       path, PR_ErrorToString (update_err, PR_LANGUAGE_I_DEFAULT));
          return NULL;
        }
      if (ver == SECSuccess || pw->len != 2)
        break;
      pw->len = 0; /* an empty password can also mean "no password bytes at all" */
    }
  if (pw->len == 0)
    pw->len = 2;
  g_set_error (error, CM_ERROR, CM_ERROR_BAD_INPUT,
               "%s could not be opened: the password is wrong (or the file is damaged); "
               "type the password the key recovery service gave, or fetch the file again",
               path);
  return NULL;
}

static gboolean
collect_bags (SEC_PKCS12DecoderContext *dcx, Bags *b, const char *path, GError **error)
{
  const SEC_PKCS12DecoderItem *item = NULL;

  b->certs = g_ptr_array_new_with_free_func ((GDestroyNotify)g_bytes_unref);
  b->with_key = g_ptr_array_new_with_free_func ((GDestroyNotify)g_bytes_unref);
  if (SEC_PKCS12DecoderIterateInit (dcx) != SECSuccess)
    goto unusable;
  while (SEC_PKCS12DecoderIterateNext (dcx, &item) == SECSuccess)
    if (item->type == SEC_OID_PKCS12_V1_CERT_BAG_ID && item->der)
      {
        GBytes *der = g_bytes_new (item->der->data, item->der->len);
        g_ptr_array_add (b->certs, der);
        if (item->hasKey)
          g_ptr_array_add (b->with_key, g_bytes_ref (der));
      }
    else if (item->type == SEC_OID_PKCS12_V1_KEY_BAG_ID
             || item->type == SEC_OID_PKCS12_V1_PKCS8_SHROUDED_KEY_BAG_ID)
      b->keys++;
  if (b->keys == 0)
    return g_set_error (error, CM_ERROR, CM_ERROR_BAD_INPUT,
                        "%s holds no private key, only certificates: a recovered-key file must "
                        "hold the key; ask the key recovery agent for the PKCS#12 with the key",
                        path), FALSE;
  if (b->with_key->len == 0)
    return g_set_error (error, CM_ERROR, CM_ERROR_BAD_INPUT,
                        "%s holds a private key but no certificate for it (%u certificates, "
                        "none matches the key): ask the key recovery agent for a complete file",
                        path, b->certs->len), FALSE;
  if (SEC_PKCS12DecoderValidateBags (dcx, collision_cb) == SECSuccess)
    return TRUE;
unusable:
  g_set_error (error, CM_ERROR, CM_ERROR_BAD_INPUT,
               "%s holds bags NSS cannot use (%s): ask the key recovery agent for a new file",
               path, cm_nssdb_nss_error ());
  return FALSE;
}

static SECStatus
rename_cb (const CERTCertificate *cert, const SECItem *default_nickname, SECItem **new_nickname,
           void *arg)
{
  Bags *b = arg;
  g_autofree char *h = cm_nssdb_sha256 (&cert->derCert);
  const char *nick = g_hash_table_lookup (b->nicknames, h);

  *new_nickname = NULL;
  if (nick)
    {
      *new_nickname = SECITEM_AllocItem (NULL, NULL, strlen (nick) + 1);
      if (*new_nickname == NULL)
        return SECFailure;
      memcpy ((*new_nickname)->data, nick, strlen (nick) + 1);
      (*new_nickname)->len = strlen (nick);
    }
  return SECSuccess;
}

static CERTCertificate *
find_cert (PK11SlotInfo *slot, GBytes *der)
{
  gsize n = 0;
  SECItem it = { siBuffer, (unsigned char *)g_bytes_get_data (der, &n), 0 };

  it.len = n;
  return PK11_FindCertFromDERCertItem (slot, &it, NULL);
}

/* TRUE when @key is the private half of @cert's public key. */
static gboolean
key_matches (SECKEYPrivateKey *key, CERTCertificate *cert)
{
  SECKEYPublicKey *pub = CERT_ExtractPublicKey (cert);
  SECKEYPublicKey *mine = SECKEY_ConvertToPublicKey (key);
  gboolean ok = FALSE;

  if (pub && mine && pub->keyType == mine->keyType)
    {
      if (pub->keyType == rsaKey)
        ok = SECITEM_ItemsAreEqual (&pub->u.rsa.modulus, &mine->u.rsa.modulus)
             && SECITEM_ItemsAreEqual (&pub->u.rsa.publicExponent, &mine->u.rsa.publicExponent);
      else if (pub->keyType == ecKey)
        ok = mine->u.ec.publicValue.len == 0
             || SECITEM_ItemsAreEqual (&pub->u.ec.publicValue, &mine->u.ec.publicValue);
      else
        ok = TRUE; /* other key types: NSS matched the key by the certificate's key ID */
    }
  if (pub)
    SECKEY_DestroyPublicKey (pub);
  if (mine)
    SECKEY_DestroyPublicKey (mine);
  return ok;
}

/* Every cert with a key is in @slot with a key that is its own. */
static gboolean
check_imported (PK11SlotInfo *slot, Bags *b, const char *path, GError **error)
{
  for (guint i = 0; i < b->with_key->len; i++)
    {
      CERTCertificate *c = find_cert (slot, g_ptr_array_index (b->with_key, i));
      SECKEYPrivateKey *k = c ? PK11_FindPrivateKeyFromCert (slot, c, NULL) : NULL;
      gboolean ok = k && key_matches (k, c);
      g_autofree char *cn = c ? CERT_GetCommonName (&c->subject) : NULL;

      if (k)
        SECKEY_DestroyPrivateKey (k);
      if (c)
        CERT_DestroyCertificate (c);
      if (!ok)
        return g_set_error (error, CM_ERROR, CM_ERROR_BAD_INPUT,
                            "the private key in %s does not belong to its certificate%s%s%s: "
                            "ask the key recovery agent for a new file",
                            path, cn ? " (" : "", cn ? cn : "", cn ? ")" : ""), FALSE;
    }
  return TRUE;
}

static char *
scratch_base (void)
{
  const char *rt = g_getenv ("XDG_RUNTIME_DIR");

  if (rt && g_file_test (rt, G_FILE_TEST_IS_DIR) && access (rt, W_OK) == 0)
    return g_strdup (rt);
  if (access ("/dev/shm", W_OK) == 0)
    return g_strdup ("/dev/shm");
  return g_strdup (g_get_tmp_dir ());
}

static void
remove_dir (const char *dir)
{
  g_autoptr (GDir) d = g_dir_open (dir, 0, NULL);
  const char *name;

  while (d && (name = g_dir_read_name (d)))
    {
      g_autofree char *p = g_build_filename (dir, name, NULL);
      g_unlink (p);
    }
  g_rmdir (dir);
}

/* Pass 1: import into a throw-away database and check everything there. */
static gboolean
verify_in_scratch (GBytes *bytes, SECItem *pw, Bags *b, const char *path, GError **error)
{
  g_autofree char *base = scratch_base ();
  g_autofree char *dir = g_build_filename (base, "cacmail-p12-XXXXXX", NULL);
  CmNssDb *scratch = NULL;
  SEC_PKCS12DecoderContext *dcx = NULL;
  gboolean ok = FALSE;

  if (g_mkdtemp_full (dir, 0700) == NULL)
    {
      g_set_error (error, CM_ERROR, CM_ERROR_ENVIRONMENT,
                   "cannot make a private scratch folder in %s (%s): free space there or set "
                   "XDG_RUNTIME_DIR", base, g_strerror (errno));
      return FALSE;
    }
  scratch = cm_nss_db_open_sync (dir, CM_NSS_DB_DEFAULT, NULL, error);
  if (scratch == NULL)
    goto out;
  /* memory-backed, 0700 and deleted at once: an empty database password costs no PBKDF2 */
  if (PK11_NeedLogin (cm_nss_db_get_slot (scratch))
      && PK11_CheckUserPassword (cm_nss_db_get_slot (scratch), "") != SECSuccess)
    {
      g_set_error (error, CM_ERROR, CM_ERROR_ENVIRONMENT,
                   "NSS could not prepare a scratch database in %s (%s): check free space",
                   dir, cm_nssdb_nss_error ());
      goto out;
    }
  dcx = decode (cm_nss_db_get_slot (scratch), pw, bytes, path, error);
  if (dcx == NULL || !collect_bags (dcx, b, path, error))
    goto out;
  if (SEC_PKCS12DecoderImportBags (dcx) != SECSuccess)
    {
      g_set_error (error, CM_ERROR, CM_ERROR_BAD_INPUT,
                   "the key in %s could not be decrypted or stored (%s): check the password, or "
                   "ask the key recovery agent for a new file", path, cm_nssdb_nss_error ());
      goto out;
    }
  ok = check_imported (cm_nss_db_get_slot (scratch), b, path, error);
out:
  if (dcx)
    SEC_PKCS12DecoderFinish (dcx);
  cm_nss_db_free (scratch);
  remove_dir (dir);
  return ok;
}

/* The database can take keys now: writable, and no primary password in the way. */
static gboolean
check_target (CmNssDb *db, GError **error)
{
  PK11SlotInfo *slot = cm_nss_db_get_slot (db);
  const char *dir = cm_nss_db_get_dir (db);
  const char *files[] = { "cert9.db", "key4.db" };

  if (cm_nss_db_is_read_only (db) || PK11_IsReadOnly (slot) || access (dir, W_OK) != 0)
    goto read_only;
  for (gsize i = 0; i < G_N_ELEMENTS (files); i++)
    {
      g_autofree char *p = g_build_filename (dir, files[i], NULL);
      if (g_file_test (p, G_FILE_TEST_EXISTS) && access (p, W_OK) != 0)
        goto read_only;
    }
  if (!PK11_NeedUserInit (slot) && PK11_NeedLogin (slot) && !PK11_IsLoggedIn (slot, NULL)
      && PK11_CheckUserPassword (slot, "") != SECSuccess)
    {
      g_set_error (error, CM_ERROR, CM_ERROR_ENVIRONMENT,
                   "%s is protected by a primary password: remove it in the mail client "
                   "(Settings, Privacy & Security), import, then set it again", dir);
      return FALSE;
    }
  return TRUE;
read_only:
  g_set_error (error, CM_ERROR, CM_ERROR_ENVIRONMENT,
               "the NSS database in %s is read-only: make the folder and its cert9.db and "
               "key4.db writable by you, then import again", dir);
  return FALSE;
}

static char *
nickname_for (CmNssDb *db, CmCert *cert, gint64 now)
{
  g_autofree char *date = cm_time_format_date (cm_cert_get_not_after (cert));
  g_autofree char *base = cm_cert_get_not_after (cert) < now
                            ? g_strdup_printf ("Recovered key, expired %s", date)
                            : g_strdup_printf ("Recovered key (decrypt only), until %s", date);
  g_autofree char *nick = g_strdup (base);
  CERTCertificate *c = NULL;
  GBytes *der = cm_cert_get_der (cert);
  gsize n = 0;
  SECItem it = { siBuffer, (unsigned char *)g_bytes_get_data (der, &n), 0 };

  it.len = n;
  c = CERT_NewTempCertificate (CERT_GetDefaultCertDB (), &it, NULL, PR_FALSE, PR_TRUE);
  /* a nickname names one subject: add a number while another subject holds it */
  for (int i = 2; c && i < 10000; i++)
    {
      g_autofree char *full = g_strdup_printf ("%s:%s", PK11_GetTokenName (cm_nss_db_get_slot (db)), nick);
      CERTCertList *l = PK11_FindCertsFromNickname (full, NULL);
      gboolean clash = FALSE;

      for (CERTCertListNode *x = l ? CERT_LIST_HEAD (l) : NULL; x && !CERT_LIST_END (x, l);
           x = CERT_LIST_NEXT (x))
        clash |= !SECITEM_ItemsAreEqual (&x->cert->derSubject, &c->derSubject);
      if (l)
        CERT_DestroyCertList (l);
      if (!clash)
        break;
      g_free (nick);
      nick = g_strdup_printf ("%s #%d", base, i);
    }
  if (c)
    CERT_DestroyCertificate (c);
  return g_steal_pointer (&nick);
}

/* Undo pass 2: delete the certs (and keys) that were not there before. */
static void
roll_back (PK11SlotInfo *slot, Bags *b, GHashTable *had_cert, GHashTable *had_key)
{
  for (guint i = 0; i < b->certs->len; i++)
    {
      GBytes *der = g_ptr_array_index (b->certs, i);
      CERTCertificate *c;

      if (g_hash_table_contains (had_cert, der) || (c = find_cert (slot, der)) == NULL)
        continue;
      if (g_ptr_array_find_with_equal_func (b->with_key, der, g_bytes_equal, NULL)
          && !g_hash_table_contains (had_key, der))
        PK11_DeleteTokenCertAndKey (c, NULL);
      else
        SEC_DeletePermCertificate (c);
      CERT_DestroyCertificate (c);
    }
}

/* Pass 2: the real import. */
static gboolean
import_into (CmNssDb *db, GBytes *bytes, SECItem *pw, Bags *b, const char *path, GError **error)
{
  PK11SlotInfo *slot = cm_nss_db_get_slot (db);
  g_autoptr (GHashTable) had_cert = g_hash_table_new (g_bytes_hash, g_bytes_equal);
  g_autoptr (GHashTable) had_key = g_hash_table_new (g_bytes_hash, g_bytes_equal);
  SEC_PKCS12DecoderContext *dcx = NULL;
  Bags again = { 0 };
  gboolean ok = FALSE;

  for (guint i = 0; i < b->certs->len; i++)
    {
      GBytes *der = g_ptr_array_index (b->certs, i);
      CERTCertificate *c = find_cert (slot, der);
      SECKEYPrivateKey *k = c ? PK11_FindPrivateKeyFromCert (slot, c, NULL) : NULL;
      if (c)
        g_hash_table_add (had_cert, der);
      if (k)
        g_hash_table_add (had_key, der);
      if (k)
        SECKEY_DestroyPrivateKey (k);
      if (c)
        CERT_DestroyCertificate (c);
    }
  if (PK11_NeedUserInit (slot) && PK11_InitPin (slot, NULL, "") != SECSuccess)
    {
      g_set_error (error, CM_ERROR, CM_ERROR_ENVIRONMENT,
                   "NSS could not prepare the key database in %s (%s): check that key4.db is "
                   "writable", cm_nss_db_get_dir (db), cm_nssdb_nss_error ());
      return FALSE;
    }
  dcx = decode (slot, pw, bytes, path, error);
  if (dcx == NULL || !collect_bags (dcx, &again, path, error))
    goto out;
  if (SEC_PKCS12DecoderRenameCertNicknames (dcx, rename_cb, b) != SECSuccess
      || SEC_PKCS12DecoderImportBags (dcx) != SECSuccess
      || !check_imported (slot, b, path, NULL))
    {
      g_set_error (error, CM_ERROR, CM_ERROR_ENVIRONMENT,
                   "writing %s into %s failed half-way (%s); what was added has been removed: "
                   "check free space and that no other program locks the database",
                   path, cm_nss_db_get_dir (db), cm_nssdb_nss_error ());
      roll_back (slot, b, had_cert, had_key);
      goto out;
    }
  ok = TRUE;
out:
  if (dcx)
    SEC_PKCS12DecoderFinish (dcx);
  bags_clear (&again);
  return ok;
}

/* Record (or forget) the keys in the state file; returns the previous records for undo. */
static GPtrArray *
record (CmNssDb *db, GPtrArray *results, GError **error)
{
  g_autoptr (GPtrArray) before = cm_nssdb_state_load (error);
  g_autoptr (GPtrArray) now = cm_nssdb_state_load (error);

  if (before == NULL || now == NULL)
    return NULL;
  for (guint i = 0; i < results->len; i++)
    {
      CmNssdbRecovered *r = g_ptr_array_index (results, i), *copy;
      gboolean dup = FALSE;

      for (guint j = 0; j < now->len && !dup; j++)
        {
          CmNssdbRecovered *o = g_ptr_array_index (now, j);
          if (strcmp (o->sha256, r->sha256) == 0 && strcmp (o->nssdb, r->nssdb) == 0)
            {
              g_free (o->nickname);
              o->nickname = g_strdup (r->nickname);
              dup = TRUE;
            }
        }
      if (dup)
        continue;
      copy = g_memdup2 (r, sizeof *r);
      copy->sha256 = g_strdup (r->sha256);
      copy->nssdb = g_strdup (r->nssdb);
      copy->nickname = g_strdup (r->nickname);
      copy->subject = g_strdup (r->subject);
      copy->file = g_strdup (r->file);
      g_ptr_array_add (now, copy);
    }
  if (!cm_nssdb_state_save (now, error))
    return NULL;
  return g_steal_pointer (&before);
}

static GPtrArray *
describe (CmNssDb *db, Bags *b, const char *path, gint64 now)
{
  GPtrArray *out = g_ptr_array_new_with_free_func ((GDestroyNotify)cm_nssdb_recovered_free);
  g_autofree char *abs = g_canonicalize_filename (path, NULL);

  b->nicknames = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  for (guint i = 0; i < b->with_key->len; i++)
    {
      g_autoptr (CmCert) c = cm_cert_new_from_der (g_ptr_array_index (b->with_key, i), NULL, NULL);
      CmNssdbRecovered *r;

      if (c == NULL)
        continue;
      r = g_new0 (CmNssdbRecovered, 1);
      r->sha256 = g_strdup (cm_cert_get_sha256 (c));
      r->nssdb = g_strdup (cm_nss_db_get_dir (db));
      r->nickname = nickname_for (db, c, now);
      r->subject = g_strdup (cm_cert_get_subject (c));
      r->file = g_strdup (abs);
      r->not_before = cm_cert_get_not_before (c);
      r->not_after = cm_cert_get_not_after (c);
      r->imported = now;
      r->present = TRUE;
      g_hash_table_insert (b->nicknames, g_strdup (r->sha256), g_strdup (r->nickname));
      g_ptr_array_add (out, r);
    }
  return out;
}

/* The nicknames the database really gave (a subject it knew keeps its old nickname). */
static void
read_back_nicknames (CmNssDb *db, Bags *b, GPtrArray *results)
{
  for (guint i = 0; i < results->len; i++)
    {
      CmNssdbRecovered *r = g_ptr_array_index (results, i);
      CERTCertificate *c = find_cert (cm_nss_db_get_slot (db), g_ptr_array_index (b->with_key, i));
      if (c && c->nickname)
        {
          g_free (r->nickname);
          r->nickname = g_strdup (cm_nssdb_own_label (db, c->nickname));
        }
      if (c)
        CERT_DestroyCertificate (c);
    }
}

gboolean
cm_nssdb_import_p12_sync (CmNssDb *db, const char *path, const char *password,
                          GPtrArray **results, guint *added, GCancellable *cancellable,
                          GError **error)
{
  g_autoptr (GBytes) bytes = NULL;
  g_autoptr (GPtrArray) out = NULL, undo = NULL;
  g_autoptr (GError) local = NULL;
  g_autofree char *contents = NULL;
  gsize len = 0;
  SECItem *pw = NULL;
  Bags b = { 0 };
  gboolean ok = FALSE, all_there = TRUE;

  *results = NULL;
  *added = 0;
  if (!g_file_get_contents (path, &contents, &len, &local))
    {
      g_set_error (error, CM_ERROR, local->code == G_FILE_ERROR_NOENT ? CM_ERROR_NOT_FOUND
                                                                      : CM_ERROR_BAD_INPUT,
                   "cannot read %s (%s): check the file name", path, local->message);
      return FALSE;
    }
  bytes = g_bytes_new_take (g_steal_pointer (&contents), len);
  if (!check_shape (g_bytes_get_data (bytes, NULL), len, path, error))
    return FALSE;
  if ((pw = ucs2_password (password)) == NULL)
    {
      g_set_error (error, CM_ERROR, CM_ERROR_BAD_INPUT,
                   "the password for %s is not valid UTF-8: type it again", path);
      return FALSE;
    }
  if (g_cancellable_set_error_if_cancelled (cancellable, error)
      || !verify_in_scratch (bytes, pw, &b, path, error) || !check_target (db, error))
    goto out;
  out = describe (db, &b, path, cm_time_now ());
  for (guint i = 0; i < out->len; i++)
    {
      CmNssdbRecovered *r = g_ptr_array_index (out, i);
      r->present = cm_nssdb_db_has_cert_and_key (db, r->sha256); /* before the import */
      all_there &= r->present;
    }
  /* the record first: a key in the database must never be unmarked */
  if ((undo = record (db, out, error)) == NULL)
    goto out;
  if (!all_there && !import_into (db, bytes, pw, &b, path, error))
    {
      cm_nssdb_state_save (undo, NULL);
      goto out;
    }
  read_back_nicknames (db, &b, out);
  g_clear_pointer (&undo, g_ptr_array_unref);
  if ((undo = record (db, out, error)) == NULL) /* keep the nicknames the database gave */
    goto out;
  for (guint i = 0; i < out->len; i++)
    {
      CmNssdbRecovered *r = g_ptr_array_index (out, i);
      *added += r->present ? 0 : 1;
      r->present = TRUE;
    }
  *results = g_steal_pointer (&out);
  ok = TRUE;
out:
  password_free (pw);
  bags_clear (&b);
  return ok;
}
