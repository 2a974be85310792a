/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cm-nss.c: an NSS database bound into the process next to cm_init()'s context (or the
 * application's own NSS): its cert/key token through SECMOD_OpenUserDB, its module list
 * (pkcs11.txt) through a module-DB-only softoken module, and the modules it registers. */
#include "cm-private.h"
#include "cm-nss.h"
#include <nss.h>
#include <prerror.h>
#include <secerr.h>
#include <utilpars.h>
#include <unistd.h>

struct _CmNssDb
{
  char *dir;
  char *configdir; /* "sql:DIR" */
  gboolean read_only;
  PK11SlotInfo *slot;
  gboolean own_slot;   /* we opened it (not the application) */
  SECMODModule *moddb; /* module-DB-only softoken for pkcs11.txt, or NULL until needed */
  GPtrArray *modules;  /* SECMODModule* references: registered modules we use */
  GArray *owned;       /* gboolean per module: we loaded it */
  GPtrArray *problems; /* char* */
};

static gint db_serial;

const char *
cm_nss_error_text (void)
{
  const char *s = PR_ErrorToString (PORT_GetError (), PR_LANGUAGE_I_DEFAULT);
  return s && *s ? s : "unknown NSS error";
}

/* The internal module's slots that hold an open database now (borrowed pointers). */
static GPtrArray *
present_internal_slots (void)
{
  GPtrArray *out = g_ptr_array_new ();
  SECMODModule *internal = SECMOD_GetInternalModule ();
  SECMODListLock *lock = SECMOD_GetDefaultModuleListLock ();

  if (internal == NULL || lock == NULL)
    return out;
  SECMOD_GetReadLock (lock);
  for (int i = 0; i < internal->slotCount; i++)
    if (PK11_IsPresent (internal->slots[i]))
      g_ptr_array_add (out, internal->slots[i]);
  SECMOD_ReleaseReadLock (lock);
  return out;
}

static gboolean
open_slot (CmNssDb *db, GError **error)
{
  g_autoptr (GPtrArray) before = present_internal_slots ();
  char *esc = NSSUTIL_Escape (db->configdir, '\'');
  g_autofree char *spec = NULL;

  spec = g_strdup_printf ("configdir='%s' certPrefix='' keyPrefix='' secmod='pkcs11.txt' "
                          "tokenDescription='cacmail database %d' flags=%s",
                          esc ? esc : db->configdir, g_atomic_int_add (&db_serial, 1),
                          db->read_only ? "readOnly,optimizeSpace" : "optimizeSpace");
  PORT_Free (esc);
  db->slot = SECMOD_OpenUserDB (spec);
  if (db->slot == NULL || !PK11_IsPresent (db->slot))
    {
      g_set_error (error, CM_ERROR, CM_ERROR_ENVIRONMENT,
                   "NSS could not open the database in %s (%s): check that the folder and its "
                   "cert9.db and key4.db are readable%s",
                   db->dir, cm_nss_error_text (), db->read_only ? "" : " and writable");
      return FALSE;
    }
  db->own_slot = !g_ptr_array_find (before, db->slot, NULL);
  return TRUE;
}

SECMODModule *
cm_nss_db_get_module_db (CmNssDb *db, GError **error)
{
  g_autofree char *params = NULL, *spec = NULL;
  char *esc = NULL;
  SECMODListLock *lock = SECMOD_GetDefaultModuleListLock ();

  if (db->moddb)
    return db->moddb;
  esc = NSSUTIL_Escape (db->configdir, '\'');
  params = g_strdup_printf ("configdir='%s' certPrefix='' keyPrefix='' secmod='pkcs11.txt' "
                            "flags=%s",
                            esc ? esc : db->configdir,
                            db->read_only ? "readOnly,noCertDB,noKeyDB" : "noCertDB,noKeyDB");
  PORT_Free (esc);
  /* One module-DB entry per folder per process: reuse ours from an earlier open. */
  if (lock)
    {
      SECMOD_GetReadLock (lock);
      for (SECMODModuleList *l = SECMOD_GetDBModuleList (); l; l = l->next)
        if (l->module->libraryParams && strcmp (l->module->libraryParams, params) == 0
            && l->module->moduleDBFunc)
          {
            db->moddb = SECMOD_ReferenceModule (l->module);
            break;
          }
      SECMOD_ReleaseReadLock (lock);
    }
  if (db->moddb)
    return db->moddb;
  esc = NSSUTIL_Escape (params, '"');
  spec = g_strdup_printf ("name=\"cacmail module list\" parameters=\"%s\" "
                          "NSS=\"flags=internal,moduleDB,moduleDBOnly\"",
                          esc ? esc : params);
  PORT_Free (esc);
  db->moddb = SECMOD_LoadModule (spec, NULL, PR_FALSE);
  if (db->moddb == NULL || !db->moddb->loaded || db->moddb->moduleDBFunc == NULL)
    {
      g_clear_pointer (&db->moddb, SECMOD_DestroyModule);
      g_set_error (error, CM_ERROR, CM_ERROR_ENVIRONMENT,
                   "NSS could not read the module list %s/pkcs11.txt (%s): check that it is "
                   "readable",
                   db->dir, cm_nss_error_text ());
      return NULL;
    }
  return db->moddb;
}

char **
cm_nss_db_list_module_specs (CmNssDb *db, GError **error)
{
  SECMODModule *m = cm_nss_db_get_module_db (db, error);
  GPtrArray *out;
  char **list;

  if (m == NULL)
    return NULL;
  list = SECMOD_GetModuleSpecList (m);
  out = g_ptr_array_new ();
  for (char **s = list; s && *s; s++)
    g_ptr_array_add (out, g_strdup (*s));
  g_ptr_array_add (out, NULL);
  if (list)
    SECMOD_FreeModuleSpecList (m, list);
  return (char **)g_ptr_array_free (out, FALSE);
}

static void
load_modules (CmNssDb *db, GCancellable *cancellable)
{
  g_autoptr (GError) local = NULL;
  g_auto (GStrv) specs = cm_nss_db_list_module_specs (db, &local);

  if (specs == NULL)
    {
      g_ptr_array_add (db->problems, g_strdup (local->message));
      return;
    }
  for (char **s = specs; *s; s++)
    {
      char *lib = NULL, *name = NULL, *params = NULL, *nss = NULL;
      SECMODModule *mod = NULL;
      gboolean owned = FALSE;

      if (g_cancellable_is_cancelled (cancellable))
        break;
      if (NSSUTIL_ArgParseModuleSpec (*s, &lib, &name, &params, &nss) != SECSuccess)
        continue;
      if (lib && *lib && !NSSUTIL_ArgHasFlag ("flags", "internal", nss))
        {
          mod = name ? SECMOD_FindModule (name) : NULL;
          if (mod == NULL)
            {
              mod = SECMOD_LoadUserModule (*s, db->moddb, PR_FALSE);
              owned = TRUE;
              if (mod && !mod->loaded)
                g_clear_pointer (&mod, SECMOD_DestroyModule);
              if (mod == NULL)
                g_ptr_array_add (db->problems,
                                 g_strdup_printf ("module \"%s\" (%s) registered in %s did not "
                                                  "load: %s",
                                                  name ? name : "?", lib, db->dir,
                                                  cm_nss_error_text ()));
            }
          if (mod)
            {
              g_ptr_array_add (db->modules, mod);
              g_array_append_val (db->owned, owned);
            }
        }
      PORT_Free (lib);
      PORT_Free (name);
      PORT_Free (params);
      PORT_Free (nss);
    }
}

/* The folder and the database files in it that exist can be written by us. */
static gboolean
writable (const char *dir)
{
  const char *files[] = { "cert9.db", "key4.db", "pkcs11.txt" };

  if (access (dir, W_OK) != 0)
    return FALSE;
  for (gsize i = 0; i < G_N_ELEMENTS (files); i++)
    {
      g_autofree char *p = g_build_filename (dir, files[i], NULL);
      if (access (p, F_OK) == 0 && access (p, W_OK) != 0)
        return FALSE;
    }
  return TRUE;
}

CmNssDb *
cm_nss_db_open_sync (const char *dir, CmNssDbFlags flags, GCancellable *cancellable, GError **error)
{
  g_autoptr (CmNssDb) db = NULL;
  g_autofree char *cert9 = NULL;
  const char *path;
  gboolean created;

  g_return_val_if_fail (dir != NULL, NULL);
  path = g_str_has_prefix (dir, "sql:") ? dir + 4 : dir;
  if (!cm_init (error) || g_cancellable_set_error_if_cancelled (cancellable, error))
    return NULL;
  db = g_new0 (CmNssDb, 1);
  db->modules = g_ptr_array_new ();
  db->owned = g_array_new (FALSE, FALSE, sizeof (gboolean));
  db->problems = g_ptr_array_new_with_free_func (g_free);
  db->dir = g_canonicalize_filename (path, NULL);
  db->configdir = g_strconcat ("sql:", db->dir, NULL);
  db->read_only = (flags & CM_NSS_DB_READ_ONLY) != 0;
  cert9 = g_build_filename (db->dir, "cert9.db", NULL);
  if (!g_file_test (db->dir, G_FILE_TEST_IS_DIR))
    {
      g_set_error (error, CM_ERROR, CM_ERROR_NOT_FOUND,
                   "NSS database folder %s does not exist: name another one, or create it "
                   "(mkdir -m 700 %s) and set it up with cacmail nss register --nssdb %s",
                   db->dir, db->dir, db->dir);
      return NULL;
    }
  if (db->read_only && !g_file_test (cert9, G_FILE_TEST_EXISTS))
    {
      g_set_error (error, CM_ERROR, CM_ERROR_NOT_FOUND,
                   "%s holds no NSS database (no cert9.db): create one with cacmail nss "
                   "register --nssdb %s, or start the mail client once",
                   db->dir, db->dir);
      return NULL;
    }
  if (!db->read_only && !writable (db->dir))
    db->read_only = TRUE; /* open what can be opened; writers see cm_nss_db_is_read_only() */
  created = !db->read_only && !g_file_test (cert9, G_FILE_TEST_EXISTS);
  if (!open_slot (db, error))
    return NULL;
  /* a new database gets an empty password, as certutil -N --empty-password gives it */
  if (created && PK11_NeedUserInit (db->slot) && PK11_InitPin (db->slot, NULL, "") != SECSuccess)
    {
      g_set_error (error, CM_ERROR, CM_ERROR_ENVIRONMENT,
                   "NSS could not create the database in %s (%s): check free space there", db->dir,
                   cm_nss_error_text ());
      return NULL;
    }
  if (flags & CM_NSS_DB_LOAD_MODULES)
    load_modules (db, cancellable);
  if (g_cancellable_set_error_if_cancelled (cancellable, error))
    return NULL;
  return g_steal_pointer (&db);
}

void
cm_nss_db_free (CmNssDb *db)
{
  if (db == NULL)
    return;
  for (guint i = 0; db->modules && i < db->modules->len; i++)
    {
      SECMODModule *mod = g_ptr_array_index (db->modules, i);
      if (g_array_index (db->owned, gboolean, i))
        SECMOD_UnloadUserModule (mod);
      SECMOD_DestroyModule (mod);
    }
  if (db->slot)
    {
      if (db->own_slot)
        SECMOD_CloseUserDB (db->slot);
      PK11_FreeSlot (db->slot);
    }
  if (db->moddb)
    SECMOD_DestroyModule (db->moddb);
  if (db->modules)
    g_ptr_array_unref (db->modules);
  if (db->owned)
    g_array_unref (db->owned);
  if (db->problems)
    g_ptr_array_unref (db->problems);
  g_free (db->dir);
  g_free (db->configdir);
  g_free (db);
}

const char *
cm_nss_db_get_dir (CmNssDb *db)
{
  return db->dir;
}

gboolean
cm_nss_db_is_read_only (CmNssDb *db)
{
  return db->read_only;
}

PK11SlotInfo *
cm_nss_db_get_slot (CmNssDb *db)
{
  return db->slot;
}

GPtrArray *
cm_nss_db_get_module_problems (CmNssDb *db)
{
  return db->problems;
}

GPtrArray *
cm_nss_db_list_tokens (CmNssDb *db)
{
  GPtrArray *out = g_ptr_array_new ();
  SECMODListLock *lock = SECMOD_GetDefaultModuleListLock ();

  g_ptr_array_add (out, db->slot);
  if (lock)
    SECMOD_GetReadLock (lock);
  for (guint i = 0; i < db->modules->len; i++)
    {
      SECMODModule *mod = g_ptr_array_index (db->modules, i);
      for (int s = 0; s < mod->slotCount; s++)
        if (PK11_IsPresent (mod->slots[s]) && !g_ptr_array_find (out, mod->slots[s], NULL))
          g_ptr_array_add (out, mod->slots[s]);
    }
  if (lock)
    SECMOD_ReleaseReadLock (lock);
  return out;
}

/* What NSS gives of one certificate object on a token, read without logging in. */
typedef struct
{
  GBytes *der;
  char *label;
  guint8 id; /* the first byte of CKA_ID, 0 when absent */
} TokenObject;

static void
token_object_free (TokenObject *o)
{
  g_bytes_unref (o->der);
  g_free (o->label);
  g_free (o);
}

/* Every certificate object of @slot (DER, label, id), as raw token objects: no NSS certificate
 * is built, as PK11_ListCertsInSlot would build one per cert and look up its trust, which scans
 * every cert of the same issuer (quadratic in a database of one CA's certs); and no login is
 * asked for (certificates are public objects). Duplicate DER is listed once. */
static GPtrArray *
read_token_objects (PK11SlotInfo *slot, GCancellable *cancellable)
{
  GPtrArray *out = g_ptr_array_new_with_free_func ((GDestroyNotify)token_object_free);
  PK11GenericObject *objs = PK11_FindGenericObjects (slot, CKO_CERTIFICATE);
  g_autoptr (GHashTable) seen
    = g_hash_table_new_full (g_bytes_hash, g_bytes_equal, (GDestroyNotify)g_bytes_unref, NULL);

  for (PK11GenericObject *o = objs; o && !g_cancellable_is_cancelled (cancellable);
       o = PK11_GetNextGenericObject (o))
    {
      PLArenaPool *arena = PORT_NewArena (2048);
      CK_ATTRIBUTE attrs[]
        = { { CKA_VALUE, NULL, 0 }, { CKA_LABEL, NULL, 0 }, { CKA_ID, NULL, 0 } };
      TokenObject *t;

      /* all in one read; a token that refuses one attribute is asked for the DER alone */
      if (arena == NULL
          || (PK11_ReadRawAttributes (arena, PK11_TypeGeneric, o, attrs, 3) != SECSuccess
              && PK11_ReadRawAttributes (arena, PK11_TypeGeneric, o, attrs, 1) != SECSuccess)
          || attrs[0].pValue == NULL || attrs[0].ulValueLen == 0)
        {
          if (arena)
            PORT_FreeArena (arena, PR_FALSE);
          continue;
        }
      t = g_new0 (TokenObject, 1);
      t->der = g_bytes_new (attrs[0].pValue, attrs[0].ulValueLen);
      if (attrs[1].pValue && attrs[1].ulValueLen > 0)
        t->label = g_strndup (attrs[1].pValue, attrs[1].ulValueLen);
      if (attrs[2].pValue && attrs[2].ulValueLen > 0)
        t->id = *(const guint8 *)attrs[2].pValue;
      PORT_FreeArena (arena, PR_FALSE);
      if (g_hash_table_add (seen, g_bytes_ref (t->der)))
        g_ptr_array_add (out, t);
      else
        token_object_free (t);
    }
  if (objs)
    PK11_DestroyGenericObjects (objs);
  return out;
}

/* OpenSC's PIV driver numbers the certificate objects by slot: 01 9A, 02 9C, 03 9D, 04 9E,
 * 05.. the retired key management slots 82... Other tokens do not say where a cert sits. */
static CmSlot
piv_slot_of (PK11SlotInfo *slot, guint8 id)
{
  CK_TOKEN_INFO info;
  static const CmSlot by_id[] = { CM_SLOT_NONE, CM_SLOT_9A, CM_SLOT_9C, CM_SLOT_9D, CM_SLOT_9E };

  /* OpenSC 0.23: manufacturer "piv_II", model "PKCS#15 emulated" */
  if (PK11_GetTokenInfo (slot, &info) != SECSuccess
      || memcmp (info.manufacturerID, "piv_II ", 7) != 0)
    return CM_SLOT_NONE;
  if (id < G_N_ELEMENTS (by_id))
    return by_id[id];
  if (id - 5 <= CM_SLOT_RETIRED_LAST - CM_SLOT_RETIRED_FIRST)
    return (CmSlot)(CM_SLOT_RETIRED_FIRST + id - 5);
  return CM_SLOT_NONE;
}

static char *
trimmed (const unsigned char *p, gsize len)
{
  while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == 0))
    len--;
  return g_strndup ((const char *)p, len);
}

char *
cm_nss_token_identity (PK11SlotInfo *slot)
{
  CK_TOKEN_INFO info;
  g_autofree char *serial = NULL, *maker = NULL, *model = NULL;

  if (PK11_GetTokenInfo (slot, &info) != SECSuccess)
    return NULL;
  serial = trimmed (info.serialNumber, sizeof info.serialNumber);
  if (*serial == '\0')
    return NULL;
  maker = trimmed (info.manufacturerID, sizeof info.manufacturerID);
  model = trimmed (info.model, sizeof info.model);
  return g_strdup_printf ("token:%s/%s/%s", maker, model, serial);
}

/* A token that is a card: not a database's own token, not a list of trusted roots. */
static gboolean
is_card_token (PK11SlotInfo *slot)
{
  return !PK11_IsInternal (slot) && !PK11_HasRootCerts (slot);
}

gboolean
cm_nss_add_token_certs_sync (CmInventory *inv, PK11SlotInfo *slot, const char *db_dir,
                             GCancellable *cancellable, GError **error)
{
  g_autoptr (GPtrArray) objs = NULL;
  const char *token = PK11_IsInternal (slot) ? CM_NSS_DB_TOKEN_NAME : PK11_GetTokenName (slot);
  g_autofree char *identity = NULL;
  CmCardSource *cs = NULL;

  if (g_cancellable_set_error_if_cancelled (cancellable, error))
    return FALSE;
  if (!PK11_IsPresent (slot))
    return TRUE;
  objs = read_token_objects (slot, cancellable);
  if (is_card_token (slot) && objs->len > 0) /* an empty token (a blank card) shows nothing */
    {
      identity = cm_nss_token_identity (slot);
      cs = cm_card_source_new (CM_SOURCE_NSS, token, db_dir, identity ? identity : NULL, NULL);
    }
  for (guint i = 0; i < objs->len; i++)
    {
      TokenObject *o = g_ptr_array_index (objs, i);
      /* the database's own certs are named by label; a token's as "token:label" */
      g_autofree char *nick
        = cs && o->label ? g_strdup_printf ("%s:%s", token, o->label) : g_strdup (o->label);
      if (cs)
        cm_card_source_add (cs, o->der, piv_slot_of (slot, o->id), token, nick);
      else
        {
          g_autoptr (GError) skip = NULL;
          CmSource src = { CM_SOURCE_NSS, (char *)db_dir, (char *)token, nick, CM_SLOT_NONE, NULL };
          if (!cm_inventory_add_der (inv, o->der, &src, &skip))
            g_debug ("skipping a certificate of token %s: %s", token, skip->message);
        }
    }
  if (cs && !cm_inventory_add_card_source (inv, cs, error))
    return FALSE;
  return !g_cancellable_set_error_if_cancelled (cancellable, error);
}

GPtrArray *
cm_nss_list_card_tokens (void)
{
  GPtrArray *out = g_ptr_array_new_with_free_func ((GDestroyNotify)PK11_FreeSlot);
  SECMODListLock *lock = SECMOD_GetDefaultModuleListLock ();

  if (lock == NULL)
    return out;
  SECMOD_GetReadLock (lock);
  for (SECMODModuleList *l = SECMOD_GetDefaultModuleList (); l; l = l->next)
    for (int i = 0; l->module->loaded && i < l->module->slotCount; i++)
      {
        PK11SlotInfo *slot = l->module->slots[i];
        if (PK11_IsPresent (slot) && is_card_token (slot))
          g_ptr_array_add (out, PK11_ReferenceSlot (slot));
      }
  SECMOD_ReleaseReadLock (lock);
  return out;
}

PK11SlotInfo *
cm_nss_find_token (const char *identity)
{
  g_autoptr (GPtrArray) tokens = cm_nss_list_card_tokens ();

  for (guint i = 0; identity && i < tokens->len; i++)
    {
      g_autofree char *id = cm_nss_token_identity (g_ptr_array_index (tokens, i));
      if (g_strcmp0 (id, identity) == 0)
        return PK11_ReferenceSlot (g_ptr_array_index (tokens, i));
    }
  return NULL;
}

gboolean
cm_nss_db_add_certs_sync (CmNssDb *db, CmInventory *inv, GCancellable *cancellable, GError **error)
{
  g_autoptr (GPtrArray) tokens = cm_nss_db_list_tokens (db);

  for (guint i = 0; i < tokens->len; i++)
    if (!cm_nss_add_token_certs_sync (inv, g_ptr_array_index (tokens, i), db->dir, cancellable,
                                      error))
      return FALSE;
  return TRUE;
}

static void
put_u32 (GByteArray *b, guint32 v)
{
  guint8 be[4] = { v >> 24, v >> 16, v >> 8, v };
  g_byte_array_append (b, be, 4);
}

char *
cm_nss_cert_dbkey (CmCert *cert)
{
  CERTCertificate *c = cm_cert_get_nss (cert);
  g_autoptr (GByteArray) b = g_byte_array_new ();

  put_u32 (b, 0);
  put_u32 (b, 0);
  put_u32 (b, c->serialNumber.len);
  put_u32 (b, c->derIssuer.len);
  g_byte_array_append (b, c->serialNumber.data, c->serialNumber.len);
  g_byte_array_append (b, c->derIssuer.data, c->derIssuer.len);
  return g_base64_encode (b->data, b->len);
}

const char *
cm_nss_cert_nickname (CmCert *cert)
{
  GPtrArray *sources = cm_cert_get_sources (cert);

  for (guint i = 0; i < sources->len; i++)
    {
      CmSource *s = g_ptr_array_index (sources, i);
      if (s->kind == CM_SOURCE_NSS && s->nickname)
        return s->nickname;
    }
  return NULL;
}

char *
cm_nss_pin_refused_message (PK11SlotInfo *slot, const char *token)
{
  CK_TOKEN_INFO info;
  CK_FLAGS flags = 0;

  /* OpenSC sets these from the card's retry counter (PIV VERIFY's 63Cx) */
  if (slot && PK11_GetTokenInfo (slot, &info) == SECSuccess)
    flags = info.flags;
  if (flags & CKF_USER_PIN_LOCKED)
    return g_strdup_printf ("the card '%s' refused the PIN and is now locked: unblock the PIN "
                            "at a RAPIDS / card issuing office",
                            token);
  if (flags & CKF_USER_PIN_FINAL_TRY)
    return g_strdup_printf ("the card '%s' refused the PIN, and one more wrong PIN locks it: "
                            "check the PIN before you try again",
                            token);
  return g_strdup_printf ("the card '%s' refused the PIN: check it and try again (the card "
                          "locks after a few wrong PINs)",
                          token);
}
