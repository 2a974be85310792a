/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cm-nssdb-p12.c: import recovered (escrowed) encryption keys from PKCS#12 files.
 *
 * A decrypted key never touches the disk outside the target database. NSS's decoder checks
 * the password and the MAC and lists the bags; cm-nssdb-pfx-walk.c walks the file itself
 * (opening its encrypted parts in memory), every iteration count checked before NSS derives a
 * key with it; each key is unwrapped as a session key in the target's own token and proved to
 * be its certificate's (cm-nssdb-pfx.c): session objects, nothing written. Then the record,
 * with the writes to come marked pending, then the certificates and each session key copied to
 * the token. NSS has no transaction across cert9.db and key4.db: a write that fails half-way
 * is undone at once, and one a kill interrupted is undone by the next import into that
 * database (the pending mark says what it had added). */
#include "cm-nssdb-pfx.h"
#include <certdb.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <keyhi.h>
#include <p12.h>
#include <pk11pub.h>
#include <prerror.h>
#include <secerr.h>
#include <sys/stat.h>
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
                        path, cm_nss_error_text ()),
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

/* ---- what older versions and killed imports left ---- */

/* Remove the folder @name of @dfd if it is the user's: its files, then itself. */
static void
remove_scratch (int dfd, const char *name)
{
  int fd = openat (dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  struct stat st;
  DIR *d = NULL;
  struct dirent *e;

  if (fd < 0)
    return;
  if (fstat (fd, &st) != 0 || st.st_uid != geteuid () || (d = fdopendir (fd)) == NULL)
    {
      close (fd);
      return;
    }
  while ((e = readdir (d)))
    if (strcmp (e->d_name, ".") != 0 && strcmp (e->d_name, "..") != 0)
      unlinkat (dirfd (d), e->d_name, 0);
  closedir (d);
  unlinkat (dfd, name, AT_REMOVEDIR);
}

/* cacmail before 2026-12 checked some files in a scratch database, cacmail-p12-XXXXXX in
 * $XDG_RUNTIME_DIR, /dev/shm or the temporary folder, with the key decrypted under an empty
 * password: a kill at the wrong moment left it there. Remove the user's. */
static void
remove_old_scratch (void)
{
  const char *bases[] = { g_getenv ("XDG_RUNTIME_DIR"), "/dev/shm", g_get_tmp_dir () };

  for (gsize i = 0; i < G_N_ELEMENTS (bases); i++)
    {
      int dfd = bases[i] ? open (bases[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
      DIR *d = dfd >= 0 ? fdopendir (dfd) : NULL;
      struct dirent *e;

      if (d == NULL && dfd >= 0)
        close (dfd);
      while (d && (e = readdir (d)))
        if (g_str_has_prefix (e->d_name, "cacmail-p12-") && strlen (e->d_name) == 18)
          remove_scratch (dirfd (d), e->d_name);
      if (d)
        closedir (d);
    }
}

static gboolean
is_for (CmNssdbPending *p, const char *dir)
{
  return strcmp (p->nssdb, dir) == 0;
}

static SECItem
item_of (GBytes *b)
{
  gsize n = 0;
  SECItem it = { siBuffer, (unsigned char *)g_bytes_get_data (b, &n), 0 };

  it.len = n;
  return it;
}

/* Drop @db's pending marks: an import whose every certificate has its key was whole; of one a
 * kill interrupted, what it added is deleted and the records it added too. */
static gboolean
recover (CmNssDb *db, CmNssdbState *st, GError **error)
{
  PK11SlotInfo *slot = cm_nss_db_get_slot (db);
  const char *dir = cm_nss_db_get_dir (db);
  gboolean whole = TRUE, any = FALSE;

  for (guint i = 0; i < st->pending->len; i++)
    {
      CmNssdbPending *p = g_ptr_array_index (st->pending, i);
      SECItem der = item_of (p->cert);
      if (is_for (p, dir) && (any = TRUE))
        whole &= cm_nssdb_pfx_cert_and_key_in (slot, &der);
    }
  if (!any)
    return TRUE;
  for (guint i = st->pending->len; i-- > 0;)
    {
      CmNssdbPending *p = g_ptr_array_index (st->pending, i);
      SECItem der = item_of (p->cert);
      g_autofree char *sha = cm_nssdb_sha256 (&der);

      if (!is_for (p, dir))
        continue;
      if (!whole)
        cm_nssdb_pfx_forget (slot, &der, !p->had_key, !p->had_cert);
      for (guint j = st->keys->len; !whole && !p->recorded && j-- > 0;)
        {
          CmNssdbRecovered *r = g_ptr_array_index (st->keys, j);
          if (strcmp (r->sha256, sha) == 0 && strcmp (r->nssdb, dir) == 0)
            g_ptr_array_remove_index (st->keys, j);
        }
      g_ptr_array_remove_index (st->pending, i);
    }
  return cm_nssdb_state_save (st, TRUE, error);
}

/* ---- the record ---- */

/* Drop @dir's pending marks from @st. */
static void
forget_pending (CmNssdbState *st, const char *dir)
{
  for (guint i = st->pending->len; i-- > 0;)
    if (is_for (g_ptr_array_index (st->pending, i), dir))
      g_ptr_array_remove_index (st->pending, i);
}

/* Record the keys (@results) in @st and, with @had (per result: 1 the database held the cert,
 * 2 its key), mark the writes to come pending; saved to disk unless it said all this already.
 * Returns the records as they were, for undo. */
static GPtrArray *
record (CmNssdbState *st, GPtrArray *results, Bags *b, GArray *had, GError **error)
{
  g_autoptr (GPtrArray) before
    = g_ptr_array_new_with_free_func ((GDestroyNotify)cm_nssdb_recovered_free);
  gboolean changed = FALSE;

  for (guint j = 0; j < st->keys->len; j++)
    g_ptr_array_add (before, copy_record (g_ptr_array_index (st->keys, j)));
  for (guint i = 0; i < results->len; i++)
    {
      CmNssdbRecovered *r = g_ptr_array_index (results, i), *o = NULL;

      for (guint j = 0; j < st->keys->len && o == NULL; j++)
        if (strcmp (((CmNssdbRecovered *)g_ptr_array_index (st->keys, j))->sha256, r->sha256) == 0
            && strcmp (((CmNssdbRecovered *)g_ptr_array_index (st->keys, j))->nssdb, r->nssdb) == 0)
          o = g_ptr_array_index (st->keys, j);
      if (had)
        {
          CmNssdbPending *p = g_new0 (CmNssdbPending, 1);
          p->nssdb = g_strdup (r->nssdb);
          p->cert = g_bytes_ref (g_ptr_array_index (b->described, i));
          p->had_cert = (g_array_index (had, guint8, i) & 1) != 0;
          p->had_key = (g_array_index (had, guint8, i) & 2) != 0;
          p->recorded = o != NULL;
          g_ptr_array_add (st->pending, p);
        }
      changed |= had || o == NULL || g_strcmp0 (o->nickname, r->nickname) != 0;
      if (o && g_strcmp0 (o->nickname, r->nickname) != 0)
        {
          g_free (o->nickname);
          o->nickname = g_strdup (r->nickname);
        }
      if (o == NULL)
        g_ptr_array_add (st->keys, copy_record (r));
    }
  if (changed && !cm_nssdb_state_save (st, TRUE, error))
    return NULL;
  return g_steal_pointer (&before);
}

/* ---- the import ---- */

/* The file's keys paired with their certs (NULL with @error): NSS's decoder on @db's token
 * checks the password and the MAC and lists the bags; the encrypted parts are opened here too
 * when the keys or their IDs are in them. */
static GPtrArray *
plan (CmNssDb *db, GBytes *bytes, SECItem *pw, const char *password, Bags *b, CmPfx *pfx,
      const char *path, GError **error)
{
  PK11SlotInfo *slot = cm_nss_db_get_slot (db);
  SEC_PKCS12DecoderContext *dcx = decode (slot, pw, bytes, path, error);
  gboolean ok = dcx && collect_bags (dcx, b, path, error);

  if (dcx)
    SEC_PKCS12DecoderFinish (dcx);
  if (!ok)
    return NULL;
  if (pfx->sealed->len && (pfx->keys->len != b->keys || pfx->keys->len > 1)
      && !cm_nssdb_pfx_open_sealed (pfx, slot, pw, password, path, error))
    return NULL;
  return cm_nssdb_pfx_pair (pfx, b->with_key, b->keys, path, error);
}

/* Per result of describe(): 1 when @db holds its cert, 2 its key (asked before any session
 * key exists, which has the key's ID). */
static GArray *
what_is_there (CmNssDb *db, Bags *b, GPtrArray *out, gboolean *all_there)
{
  PK11SlotInfo *slot = cm_nss_db_get_slot (db);
  GArray *had = g_array_sized_new (FALSE, TRUE, sizeof (guint8), out->len);

  *all_there = TRUE;
  for (guint i = 0; i < out->len; i++)
    {
      CmNssdbRecovered *r = g_ptr_array_index (out, i);
      SECItem der = item_of (g_ptr_array_index (b->described, i));
      guint8 h
        = (cm_nssdb_pfx_cert_in (slot, &der) ? 1 : 0) | (cm_nssdb_pfx_key_in (slot, &der) ? 2 : 0);

      g_array_append_val (had, h);
      r->present = cm_nssdb_pfx_cert_and_key_in (slot, &der);
      *all_there &= r->present;
    }
  return had;
}

/* The writes, after the record: a key database never given a password gets the empty one. */
static gboolean
write_all (CmNssDb *db, GPtrArray *pairs, Bags *b, const char *path, GError **error)
{
  PK11SlotInfo *slot = cm_nss_db_get_slot (db);

  if (PK11_NeedUserInit (slot) && PK11_InitPin (slot, NULL, "") != SECSuccess)
    return g_set_error (error, CM_ERROR, CM_ERROR_ENVIRONMENT,
                        "NSS could not prepare the key database in %s (%s): check that key4.db "
                        "is writable",
                        cm_nss_db_get_dir (db), cm_nss_error_text ()),
           FALSE;
  return cm_nssdb_pfx_write (slot, pairs, b->nicknames, path, cm_nss_db_get_dir (db), error);
}

/* The file's bytes and its walk, every cost checked before NSS sees it. */
static GBytes *
read_checked (const char *path, CmPfx *pfx, GError **error)
{
  g_autoptr (GBytes) bytes = cm_nssdb_pfx_read (path, error);
  gsize len = 0;
  const guint8 *data = bytes ? g_bytes_get_data (bytes, &len) : NULL;

  if (bytes == NULL || !cm_nssdb_pfx_check_shape (data, len, path, error)
      || !cm_nssdb_pfx_parse (data, len, pfx, path, error))
    return NULL;
  return g_steal_pointer (&bytes);
}

gboolean
cm_nssdb_import_p12_sync (CmNssDb *db, const char *path, const char *password, GPtrArray **results,
                          guint *added, GCancellable *cancellable, GError **error)
{
  g_autoptr (GBytes) bytes = NULL;
  g_autoptr (GPtrArray) out = NULL, undo = NULL, pairs = NULL;
  g_autoptr (GArray) had = NULL;
  g_autoptr (CmNssdbState) st = NULL;
  const char *dir = cm_nss_db_get_dir (db);
  SECItem *pw = NULL;
  Bags b = { 0 };
  CmPfx pfx = { 0 };
  gboolean ok = FALSE, all_there = TRUE;

  *results = NULL;
  *added = 0;
  remove_old_scratch ();
  if ((bytes = read_checked (path, &pfx, error)) == NULL)
    goto out;
  if ((pw = cm_nssdb_pfx_password (password)) == NULL)
    {
      g_set_error (error, CM_ERROR, CM_ERROR_BAD_INPUT,
                   "the password for %s is not valid UTF-8: type it again", path);
      goto out;
    }
  /* the database first: a refusal to write (read-only, primary password) is the clearer
   * message; then what a killed import into it left */
  if (g_cancellable_set_error_if_cancelled (cancellable, error) || !check_target (db, error)
      || (st = cm_nssdb_state_open (TRUE, error)) == NULL || !recover (db, st, error))
    goto out;
  if ((pairs = plan (db, bytes, pw, password, &b, &pfx, path, error)) == NULL)
    goto out;
  out = describe (db, &b, st->keys, path, cm_time_now ());
  had = what_is_there (db, &b, out, &all_there);
  if (!cm_nssdb_pfx_verify (cm_nss_db_get_slot (db), pairs, b.nicknames, pw, password, path, error))
    goto out;
  /* the record first, the writes to come marked: a key in the database is never unmarked,
   * and what a kill leaves half-written is found again */
  if ((undo = record (st, out, &b, all_there ? NULL : had, error)) == NULL)
    goto out;
  if (!all_there && !write_all (db, pairs, &b, path, error))
    {
      g_ptr_array_unref (st->keys);
      st->keys = g_steal_pointer (&undo);
      forget_pending (st, dir);
      cm_nssdb_state_save (st, TRUE, NULL);
      goto out;
    }
  forget_pending (st, dir);
  if (!all_there && !cm_nssdb_state_save (st, FALSE, error))
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
