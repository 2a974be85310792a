/* cm-nssdb-p12.c: import recovered (escrowed) encryption keys from PKCS#12 files.
 *
 * NSS has no transaction across cert9.db and key4.db, so everything is checked before the
 * database is touched: password and MAC (NSS's decoder), then each shrouded key is unwrapped
 * as a session key in the target's own token and proved to be its certificate's
 * (cm-nssdb-pfx.c): session objects, nothing written. Then each session key is copied to the
 * token (one write, where NSS's PKCS#12 import makes four), its certificates and public key
 * imported. A write that fails half-way is undone by deleting what was added.
 *
 * Files whose keys cm-nssdb-pfx.c cannot see (a key in an encrypted bag, a plain keyBag,
 * several keys whose certs are encrypted, a key that is neither RSA nor EC) and targets not
 * ready for keys go the older way: the file is imported into a scratch database (memory-backed,
 * deleted at once) where the same checks are made, then into the target by NSS's import. */
#include "cm-nssdb-pfx.h"
#include <errno.h>
#include <certdb.h>
#include <keyhi.h>
#include <p12.h>
#include <pk11pub.h>
#include <prerror.h>
#include <secerr.h>
#include <glib/gstdio.h>
#include <unistd.h>

typedef struct
{
  GPtrArray *certs;    /* GBytes DER, every cert bag */
  GPtrArray *with_key; /* GBytes DER, cert bags that have a key bag */
  guint keys;
  GHashTable *nicknames; /* sha256 -> nickname to give (with_key certs) */
  GPtrArray *described;  /* GBytes DER of each result of describe(), in order */
} Bags;

static void
bags_clear (Bags *b)
{
  g_clear_pointer (&b->certs, g_ptr_array_unref);
  g_clear_pointer (&b->with_key, g_ptr_array_unref);
  g_clear_pointer (&b->nicknames, g_hash_table_unref);
  g_clear_pointer (&b->described, g_ptr_array_unref);
  b->keys = 0;
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

static CERTCertificate *
find_cert (PK11SlotInfo *slot, GBytes *der)
{
  gsize n = 0;
  SECItem it = { siBuffer, (unsigned char *)g_bytes_get_data (der, &n), 0 };

  it.len = n;
  return PK11_FindCertFromDERCertItem (slot, &it, NULL);
}

/* @der as an NSS certificate: the database's if it holds it, else a temporary one. */
static CERTCertificate *
temp_cert (GBytes *der)
{
  gsize n = 0;
  SECItem it = { siBuffer, (unsigned char *)g_bytes_get_data (der, &n), 0 };

  it.len = n;
  return CERT_NewTempCertificate (CERT_GetDefaultCertDB (), &it, NULL, PR_FALSE, PR_TRUE);
}

gboolean
cm_nssdb_db_has_cert_and_key (CmNssDb *db, const char *sha256)
{
  PK11SlotInfo *slot = cm_nss_db_get_slot (db);
  PK11GenericObject *objs = PK11_FindGenericObjects (slot, CKO_CERTIFICATE);
  gboolean found = FALSE, seen = FALSE;

  /* the certificate objects as stored: no NSS certificate (and trust lookup) per object */
  for (PK11GenericObject *o = objs; o && !seen; o = PK11_GetNextGenericObject (o))
    {
      SECItem der = { siBuffer, NULL, 0 };
      if (PK11_ReadRawAttribute (PK11_TypeGeneric, o, CKA_VALUE, &der) == SECSuccess)
        {
          g_autofree char *h = cm_nssdb_sha256 (&der);
          seen = strcmp (h, sha256) == 0;
          found = seen && cm_nssdb_pfx_cert_and_key_in (slot, &der);
        }
      SECITEM_FreeItem (&der, PR_FALSE);
    }
  if (objs)
    PK11_DestroyGenericObjects (objs);
  return found;
}

/* NSS's own nickname check (older way only) asks for another name when the file's is taken;
 * the name given is replaced by rename_cb anyway, so it only has to be new. */
static SECItem *
collision_cb (SECItem *old_nickname, PRBool *cancel, void *wincx)
{
  static gint serial;
  g_autofree char *nick = g_strdup_printf ("Recovered key %d", g_atomic_int_add (&serial, 1));

  *cancel = PR_FALSE; /* NSS reads the name as a C string: the item holds its NUL */
  return SECITEM_DupItem (&(SECItem){ siBuffer, (unsigned char *)nick, strlen (nick) + 1 });
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
      SEC_PKCS12DecoderContext *dcx
        = SEC_PKCS12DecoderStart (pw, slot, NULL, NULL, NULL, NULL, NULL, NULL);
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

/* The cert bags and how many keys: every key needs a certificate, and one at least. */
static gboolean
collect_bags (SEC_PKCS12DecoderContext *dcx, Bags *b, const char *path, GError **error)
{
  const SEC_PKCS12DecoderItem *item = NULL;

  b->certs = g_ptr_array_new_with_free_func ((GDestroyNotify)g_bytes_unref);
  b->with_key = g_ptr_array_new_with_free_func ((GDestroyNotify)g_bytes_unref);
  if (SEC_PKCS12DecoderIterateInit (dcx) != SECSuccess)
    return g_set_error (error, CM_ERROR, CM_ERROR_BAD_INPUT,
                        "%s holds bags NSS cannot use (%s): ask the key recovery agent for a "
                        "new file",
                        path, cm_nssdb_nss_error ()),
           FALSE;
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
                        path),
           FALSE;
  if (b->with_key->len == 0)
    return g_set_error (error, CM_ERROR, CM_ERROR_BAD_INPUT,
                        "%s holds a private key but no certificate for it (%u certificates, "
                        "none matches the key): ask the key recovery agent for a complete file",
                        path, b->certs->len),
           FALSE;
  return TRUE;
}

/* Older way: NSS's own check of the bags (nicknames, keys already there) before its import. */
static gboolean
validate_bags (SEC_PKCS12DecoderContext *dcx, const char *path, GError **error)
{
  if (SEC_PKCS12DecoderValidateBags (dcx, collision_cb) == SECSuccess)
    return TRUE;
  g_set_error (error, CM_ERROR, CM_ERROR_BAD_INPUT,
               "%s holds bags NSS cannot use (%s): ask the key recovery agent for a new file", path,
               cm_nssdb_nss_error ());
  return FALSE;
}

/* Every cert with a key is in @slot with its key; with @prove, a key proved to be the cert's
 * (the scratch database only: proving an EC key may mark it able to sign for a moment). */
static gboolean
check_imported (PK11SlotInfo *slot, Bags *b, gboolean prove, const char *path, GError **error)
{
  for (guint i = 0; i < b->with_key->len; i++)
    {
      CERTCertificate *c = find_cert (slot, g_ptr_array_index (b->with_key, i));
      SECKEYPrivateKey *k = c ? PK11_FindPrivateKeyFromCert (slot, c, NULL) : NULL;
      gboolean ok = k && (!prove || cm_nssdb_pfx_key_is_certs (k, c));

      if (!ok)
        cm_nssdb_pfx_not_its_key (c, path, error);
      if (k)
        SECKEY_DestroyPrivateKey (k);
      if (c)
        CERT_DestroyCertificate (c);
      if (!ok)
        return FALSE;
    }
  return TRUE;
}

/* Older way: the nicknames chosen by describe(), given to NSS's import. */
static SECStatus
rename_cb (const CERTCertificate *cert, const SECItem *default_nickname, SECItem **new_nickname,
           void *arg)
{
  Bags *b = arg;
  g_autofree char *h = cm_nssdb_sha256 (&cert->derCert);
  const char *nick = g_hash_table_lookup (b->nicknames, h);

  *new_nickname = NULL;
  if (nick && (*new_nickname = SECITEM_AllocItem (NULL, NULL, strlen (nick) + 1)) == NULL)
    return SECFailure;
  if (nick)
    {
      memcpy ((*new_nickname)->data, nick, strlen (nick) + 1);
      (*new_nickname)->len = strlen (nick);
    }
  return SECSuccess;
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

/* Older way, pass 1: import into a throw-away database and check everything there. */
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
                   "XDG_RUNTIME_DIR",
                   base, g_strerror (errno));
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
                   "NSS could not prepare a scratch database in %s (%s): check free space", dir,
                   cm_nssdb_nss_error ());
      goto out;
    }
  dcx = decode (cm_nss_db_get_slot (scratch), pw, bytes, path, error);
  if (dcx == NULL || !collect_bags (dcx, b, path, error) || !validate_bags (dcx, path, error))
    goto out;
  if (SEC_PKCS12DecoderImportBags (dcx) != SECSuccess)
    {
      g_set_error (error, CM_ERROR, CM_ERROR_BAD_INPUT,
                   "the key in %s could not be decrypted or stored (%s): check the password, or "
                   "ask the key recovery agent for a new file",
                   path, cm_nssdb_nss_error ());
      goto out;
    }
  ok = check_imported (cm_nss_db_get_slot (scratch), b, TRUE, path, error);
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
                   "(Settings, Privacy & Security), import, then set it again",
                   dir);
      return FALSE;
    }
  return TRUE;
read_only:
  g_set_error (error, CM_ERROR, CM_ERROR_ENVIRONMENT,
               "the NSS database in %s is read-only: make the folder and its cert9.db and "
               "key4.db writable by you, then import again",
               dir);
  return FALSE;
}

typedef struct
{
  const SECItem *subject;
  gboolean clash;
} Clash;

static SECStatus
note_clash (CERTCertificate *c, void *arg)
{
  Clash *k = arg;

  k->clash |= !SECITEM_ItemsAreEqual (&c->derSubject, k->subject);
  return SECSuccess;
}

static char *
numbered (const char *base, guint i)
{
  return i < 2 ? g_strdup (base) : g_strdup_printf ("%s #%u", base, i);
}

/* TRUE when a cert of another subject holds nickname number @i, in @slot or among those
 * @given (nickname -> GBytes subject) to this file's other certs: a nickname names one subject. */
static gboolean
taken (PK11SlotInfo *slot, GHashTable *given, const char *base, guint i, const SECItem *subject)
{
  g_autofree char *nick = numbered (base, i);
  SECItem it = { siBuffer, (unsigned char *)nick, strlen (nick) };
  GBytes *other = g_hash_table_lookup (given, nick);
  Clash k = { subject, FALSE };

  if (other)
    {
      gsize n = 0;
      const guint8 *d = g_bytes_get_data (other, &n);
      return n != subject->len || memcmp (d, subject->data, n) != 0;
    }
  PK11_TraverseCertsForNicknameInSlot (&it, slot, note_clash, &k);
  return k.clash;
}

/* One past the highest number @state records for @base in the database @dir. */
static guint
recorded_next (GPtrArray *state, const char *dir, const char *base)
{
  gsize n = strlen (base);
  guint next = 1;

  for (guint i = 0; i < state->len; i++)
    {
      CmNssdbRecovered *r = g_ptr_array_index (state, i);
      char *end = NULL;
      guint64 v = 1;

      if (r->nssdb == NULL || r->nickname == NULL || strcmp (r->nssdb, dir) != 0
          || strncmp (r->nickname, base, n) != 0
          || (r->nickname[n]
              && (strncmp (r->nickname + n, " #", 2) != 0
                  || (v = g_ascii_strtoull (r->nickname + n + 2, &end, 10)) < 2 || *end)))
        continue;
      next = MAX (next, MIN (v, 8191) + 1);
    }
  return next;
}

/* A cert the database holds keeps its nickname; a new one gets "Recovered key, expired DATE"
 * (or "... until DATE"), with " #N" while another subject holds that. Numbers are given in
 * order, so the first free one is the one after what the record (@state) gives, when the
 * database agrees; else it is found by doubling N, then halving back: log n lookups of one
 * nickname each, not one per key of that date (a gap a deleted key left may be skipped). */
static char *
nickname_for (CmNssDb *db, GPtrArray *state, GHashTable *given, CmCert *cert, gint64 now)
{
  PK11SlotInfo *slot = cm_nss_db_get_slot (db);
  g_autofree char *date = cm_time_format_date (cm_cert_get_not_after (cert));
  g_autofree char *base = cm_cert_get_not_after (cert) < now
                            ? g_strdup_printf ("Recovered key, expired %s", date)
                            : g_strdup_printf ("Recovered key (decrypt only), until %s", date);
  gsize n = 0;
  SECItem der = { siBuffer, (unsigned char *)g_bytes_get_data (cm_cert_get_der (cert), &n), 0 };
  CERTCertificate *c = NULL;
  char *nick = NULL;
  guint lo = 0, hi = 1;

  der.len = n;
  /* a cert the database holds already keeps its name (the full lookup only then) */
  if (cm_nssdb_pfx_cert_in (slot, &der))
    c = find_cert (slot, cm_cert_get_der (cert));
  if (c && c->nickname)
    nick = g_strdup (cm_nssdb_own_label (db, c->nickname));
  if (c == NULL)
    c = temp_cert (cm_cert_get_der (cert));
  if (nick == NULL && c)
    {
      guint next = recorded_next (state, cm_nss_db_get_dir (db), base);

      if (next > 1 && taken (slot, given, base, next - 1, &c->derSubject)
          && !taken (slot, given, base, next, &c->derSubject))
        lo = next - 1, hi = next; /* the database agrees with the record */
      else
        while (hi < 8192 && taken (slot, given, base, hi, &c->derSubject))
          lo = hi, hi *= 2;
      while (hi - lo > 1)
        {
          guint mid = lo + (hi - lo) / 2;
          if (taken (slot, given, base, mid, &c->derSubject))
            lo = mid;
          else
            hi = mid;
        }
    }
  if (nick == NULL)
    nick = numbered (base, hi);
  if (c)
    g_hash_table_insert (given, g_strdup (nick),
                         g_bytes_new (c->derSubject.data, c->derSubject.len));
  if (c)
    CERT_DestroyCertificate (c);
  return nick;
}

/* Undo the older way's pass 2: delete the certs and keys (with their public keys) that were
 * not there before, a key whose cert never made it in too. */
static void
roll_back (PK11SlotInfo *slot, Bags *b, GHashTable *had_cert, GHashTable *had_key)
{
  for (guint i = 0; i < b->certs->len; i++)
    {
      GBytes *der = g_ptr_array_index (b->certs, i);
      CERTCertificate *c = g_hash_table_contains (had_cert, der) ? NULL : find_cert (slot, der);
      CERTCertificate *t = g_hash_table_contains (had_key, der) ? NULL : temp_cert (der);
      SECKEYPrivateKey *k = t ? PK11_FindKeyByDERCert (slot, t, NULL) : NULL;

      if (c)
        SEC_DeletePermCertificate (c);
      if (k)
        PK11_DeleteTokenPrivateKey (k, PR_TRUE); /* frees k too */
      if (k)
        cm_nssdb_pfx_forget_public_key (slot, t);
      if (t)
        CERT_DestroyCertificate (t);
      if (c)
        CERT_DestroyCertificate (c);
    }
}

/* Older way, pass 2: NSS's import into the target. */
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
      CERTCertificate *c = find_cert (slot, der), *t = temp_cert (der);
      SECKEYPrivateKey *k = t ? PK11_FindKeyByDERCert (slot, t, NULL) : NULL;

      if (c)
        g_hash_table_add (had_cert, der);
      if (k || t == NULL) /* a key there before, or one this cannot tell: never deleted */
        g_hash_table_add (had_key, der);
      if (k)
        SECKEY_DestroyPrivateKey (k);
      if (t)
        CERT_DestroyCertificate (t);
      if (c)
        CERT_DestroyCertificate (c);
    }
  if (PK11_NeedUserInit (slot) && PK11_InitPin (slot, NULL, "") != SECSuccess)
    {
      g_set_error (error, CM_ERROR, CM_ERROR_ENVIRONMENT,
                   "NSS could not prepare the key database in %s (%s): check that key4.db is "
                   "writable",
                   cm_nss_db_get_dir (db), cm_nssdb_nss_error ());
      return FALSE;
    }
  dcx = decode (slot, pw, bytes, path, error);
  if (dcx == NULL || !collect_bags (dcx, &again, path, error) || !validate_bags (dcx, path, error))
    goto out;
  if (SEC_PKCS12DecoderRenameCertNicknames (dcx, rename_cb, b) != SECSuccess
      || SEC_PKCS12DecoderImportBags (dcx) != SECSuccess
      || !check_imported (slot, b, FALSE, path, NULL))
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

static CmNssdbRecovered *
copy_record (const CmNssdbRecovered *r)
{
  CmNssdbRecovered *copy = g_memdup2 (r, sizeof *r);

  copy->sha256 = g_strdup (r->sha256);
  copy->nssdb = g_strdup (r->nssdb);
  copy->nickname = g_strdup (r->nickname);
  copy->subject = g_strdup (r->subject);
  copy->file = g_strdup (r->file);
  return copy;
}

/* Record the keys in @state (the state file as loaded; saved unless it said all this already).
 * Returns the records as they were, for undo. */
static GPtrArray *
record (GPtrArray *state, GPtrArray *results, GError **error)
{
  g_autoptr (GPtrArray) before
    = g_ptr_array_new_with_free_func ((GDestroyNotify)cm_nssdb_recovered_free);
  gboolean changed = FALSE;

  for (guint j = 0; j < state->len; j++)
    g_ptr_array_add (before, copy_record (g_ptr_array_index (state, j)));
  for (guint i = 0; i < results->len; i++)
    {
      CmNssdbRecovered *r = g_ptr_array_index (results, i), *o = NULL;

      for (guint j = 0; j < state->len && o == NULL; j++)
        if (strcmp (((CmNssdbRecovered *)g_ptr_array_index (state, j))->sha256, r->sha256) == 0
            && strcmp (((CmNssdbRecovered *)g_ptr_array_index (state, j))->nssdb, r->nssdb) == 0)
          o = g_ptr_array_index (state, j);
      changed |= o == NULL || g_strcmp0 (o->nickname, r->nickname) != 0;
      if (o && g_strcmp0 (o->nickname, r->nickname) != 0)
        {
          g_free (o->nickname);
          o->nickname = g_strdup (r->nickname);
        }
      if (o == NULL)
        g_ptr_array_add (state, copy_record (r));
    }
  if (changed && !cm_nssdb_state_save (state, error))
    return NULL;
  return g_steal_pointer (&before);
}

static GPtrArray *
describe (CmNssDb *db, Bags *b, GPtrArray *state, const char *path, gint64 now)
{
  GPtrArray *out = g_ptr_array_new_with_free_func ((GDestroyNotify)cm_nssdb_recovered_free);
  g_autofree char *abs = g_canonicalize_filename (path, NULL);
  g_autoptr (GHashTable) given
    = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify)g_bytes_unref);

  b->nicknames = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  b->described = g_ptr_array_new_with_free_func ((GDestroyNotify)g_bytes_unref);
  for (guint i = 0; i < b->with_key->len; i++)
    {
      GBytes *der = g_ptr_array_index (b->with_key, i);
      g_autoptr (CmCert) c = cm_cert_new_from_der (der, NULL, NULL);
      CmNssdbRecovered *r;

      if (c == NULL)
        continue;
      r = g_new0 (CmNssdbRecovered, 1);
      r->sha256 = g_strdup (cm_cert_get_sha256 (c));
      r->nssdb = g_strdup (cm_nss_db_get_dir (db));
      r->nickname = nickname_for (db, state, given, c, now);
      r->subject = g_strdup (cm_cert_get_subject (c));
      r->file = g_strdup (abs);
      r->not_before = cm_cert_get_not_before (c);
      r->not_after = cm_cert_get_not_after (c);
      r->imported = now;
      r->present = TRUE;
      g_hash_table_insert (b->nicknames, g_strdup (r->sha256), g_strdup (r->nickname));
      g_ptr_array_add (b->described, g_bytes_ref (der));
      g_ptr_array_add (out, r);
    }
  return out;
}

/* The nicknames the database really gave; TRUE when one differs from what was recorded. */
static gboolean
read_back_nicknames (CmNssDb *db, Bags *b, GPtrArray *results, gboolean only_present)
{
  gboolean changed = FALSE;

  for (guint i = 0; i < results->len; i++)
    {
      CmNssdbRecovered *r = g_ptr_array_index (results, i);
      CERTCertificate *c
        = only_present && !r->present
            ? NULL
            : find_cert (cm_nss_db_get_slot (db), g_ptr_array_index (b->described, i));
      const char *nick = c && c->nickname ? cm_nssdb_own_label (db, c->nickname) : NULL;

      if (nick && strcmp (nick, r->nickname) != 0)
        {
          g_free (r->nickname);
          r->nickname = g_strdup (nick);
          changed = TRUE;
        }
      if (c)
        CERT_DestroyCertificate (c);
    }
  return changed;
}

/* The fast way's pairs, or NULL for the older way: @db ready to take keys now, and every key
 * of the file seen and of a type proved without a database. Decodes with @db's token. */
static GPtrArray *
plan (CmNssDb *db, GBytes *bytes, SECItem *pw, Bags *b, CmPfx *pfx, const char *path,
      GError **error)
{
  PK11SlotInfo *slot = cm_nss_db_get_slot (db);
  gsize len = 0;
  const guint8 *data = g_bytes_get_data (bytes, &len);
  SEC_PKCS12DecoderContext *dcx = NULL;
  GPtrArray *pairs = NULL;

  if (!check_target (db, NULL) || PK11_NeedUserInit (slot) || !cm_nssdb_pfx_parse (data, len, pfx))
    return NULL;
  if ((dcx = decode (slot, pw, bytes, path, error)) && collect_bags (dcx, b, path, error))
    pairs = cm_nssdb_pfx_pair (pfx, b->with_key, b->keys);
  if (dcx)
    SEC_PKCS12DecoderFinish (dcx);
  if (pairs == NULL)
    bags_clear (b);
  return pairs;
}

gboolean
cm_nssdb_import_p12_sync (CmNssDb *db, const char *path, const char *password, GPtrArray **results,
                          guint *added, GCancellable *cancellable, GError **error)
{
  g_autoptr (GBytes) bytes = NULL;
  g_autoptr (GPtrArray) out = NULL, undo = NULL, pairs = NULL, state = NULL;
  g_autoptr (GError) local = NULL;
  g_autofree char *contents = NULL;
  gsize len = 0;
  SECItem *pw = NULL;
  Bags b = { 0 };
  CmPfx pfx = { 0 };
  gboolean ok = FALSE, all_there = TRUE;

  *results = NULL;
  *added = 0;
  if (!g_file_get_contents (path, &contents, &len, &local))
    {
      g_set_error (error, CM_ERROR,
                   local->code == G_FILE_ERROR_NOENT ? CM_ERROR_NOT_FOUND : CM_ERROR_BAD_INPUT,
                   "cannot read %s (%s): check the file name", path, local->message);
      return FALSE;
    }
  bytes = g_bytes_new_take (g_steal_pointer (&contents), len);
  if (!cm_nssdb_pfx_check_shape (g_bytes_get_data (bytes, NULL), len, path, error))
    return FALSE;
  if ((pw = cm_nssdb_pfx_password (password)) == NULL)
    {
      g_set_error (error, CM_ERROR, CM_ERROR_BAD_INPUT,
                   "the password for %s is not valid UTF-8: type it again", path);
      return FALSE;
    }
  if (g_cancellable_set_error_if_cancelled (cancellable, error))
    goto out;
  pairs = plan (db, bytes, pw, &b, &pfx, path, &local);
  if (local)
    {
      g_propagate_error (error, g_steal_pointer (&local));
      goto out;
    }
  /* the database first: a refusal to write (read-only, primary password) is the clearer
   * message than anything NSS's own import says about the file */
  if (pairs == NULL
      && (!check_target (db, error) || !verify_in_scratch (bytes, pw, &b, path, error)))
    goto out;
  if ((state = cm_nssdb_state_load (error)) == NULL)
    goto out;
  out = describe (db, &b, state, path, cm_time_now ());
  for (guint i = 0; i < out->len; i++) /* before the import, and before any session key */
    {
      CmNssdbRecovered *r = g_ptr_array_index (out, i);
      PK11SlotInfo *slot = cm_nss_db_get_slot (db);

      gsize n = 0;
      SECItem der
        = { siBuffer, (unsigned char *)g_bytes_get_data (g_ptr_array_index (b.described, i), &n),
            0 };

      der.len = n;
      r->present = cm_nssdb_pfx_cert_and_key_in (slot, &der);
      all_there &= r->present;
    }
  if (pairs
      && !cm_nssdb_pfx_verify (cm_nss_db_get_slot (db), pairs, b.nicknames, pw, password, path,
                               error))
    goto out;
  /* the record first: a key in the database must never be unmarked */
  if ((undo = record (state, out, error)) == NULL)
    goto out;
  if (!all_there
      && !(pairs ? cm_nssdb_pfx_write (cm_nss_db_get_slot (db), pairs, b.nicknames, path,
                                       cm_nss_db_get_dir (db), error)
                 : import_into (db, bytes, pw, &b, path, error)))
    {
      cm_nssdb_state_save (undo, NULL);
      goto out;
    }
  g_clear_pointer (&undo, g_ptr_array_unref);
  /* keep the nicknames the database gave: NSS's own import (the older way) picks them, and a
   * cert that was there keeps its own; the fast way writes the ones describe() chose */
  if (read_back_nicknames (db, &b, out, pairs != NULL)
      && (undo = record (state, out, error)) == NULL)
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
  g_clear_pointer (&pairs, g_ptr_array_unref); /* session keys go before the database */
  cm_nssdb_pfx_clear (&pfx);
  cm_nssdb_pfx_password_free (pw);
  bags_clear (&b);
  return ok;
}
