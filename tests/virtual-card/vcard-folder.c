/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* vcard-folder.c: load a card folder (docs/card-folder.md) into a VcFolder. */
#include "vcard.h"

#include <stdlib.h>
#include <string.h>

/* The object a file belongs to, from its name prefix "N - " or "CACn - ". */
typedef enum
{
  OBJ_NONE,
  OBJ_DISCOVERY,
  OBJ_CCC,
  OBJ_CHUID,
  OBJ_PRINTED,
  OBJ_KEY_HISTORY,
  OBJ_SLOT, /* a certificate slot */
} ObjKind;

static ObjKind
classify (VcFolder *f, const char *name, VcSlot **slot)
{
  const char *dash = strstr (name, " - ");
  *slot = NULL;
  if (!dash || dash == name)
    return OBJ_NONE;
  size_t plen = (size_t)(dash - name);
  if (plen == 4 && strncmp (name, "CAC", 3) == 0 && name[3] >= '0' && name[3] < '0' + VC_N_CAC)
    {
      *slot = &f->cac[name[3] - '0'];
      return OBJ_SLOT;
    }
  if (plen > 2)
    return OBJ_NONE;
  for (size_t i = 0; i < plen; i++)
    if (!g_ascii_isdigit (name[i]))
      return OBJ_NONE;
  int n = atoi (name);
  switch (n)
    {
    case 1: return OBJ_DISCOVERY;
    case 3: *slot = &f->piv_auth; return OBJ_SLOT;
    case 4: *slot = &f->dig_sig; return OBJ_SLOT;
    case 5: *slot = &f->key_mgmt; return OBJ_SLOT;
    case 6: *slot = &f->card_auth; return OBJ_SLOT;
    case 7: return OBJ_CCC;
    case 8: return OBJ_CHUID;
    case 11: return OBJ_PRINTED;
    case 12: return OBJ_KEY_HISTORY;
    default:
      if (n >= 13 && n < 13 + VC_N_RETIRED)
        {
          *slot = &f->retired[n - 13];
          return OBJ_SLOT;
        }
      return OBJ_NONE;
    }
}

/* A certificate file: PEM (text before the armour allowed) or DER. The DER is returned as
 * stored, never re-encoded. */
static GBytes *
load_cert (const char *path, GError **error)
{
  char *text = NULL;
  gsize len = 0;
  if (!g_file_get_contents (path, &text, &len, error))
    return NULL;
  static const char begin[] = "-----BEGIN CERTIFICATE-----";
  static const char end[] = "-----END CERTIFICATE-----";
  const char *b = g_strstr_len (text, (gssize)len, begin);
  if (!b)
    {
      if (len < 4 || (uint8_t)text[0] != 0x30)
        {
          g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                       "%s: neither PEM nor DER certificate", path);
          g_free (text);
          return NULL;
        }
      return g_bytes_new_take (text, len);
    }
  b += strlen (begin);
  const char *e = g_strstr_len (b, (gssize)(len - (gsize)(b - text)), end);
  if (!e)
    {
      g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_INVAL, "%s: PEM armour not closed", path);
      g_free (text);
      return NULL;
    }
  char *b64 = g_strndup (b, (gsize)(e - b));
  g_free (text);
  gsize dlen = 0;
  guchar *der = g_base64_decode (g_strstrip (b64), &dlen);
  g_free (b64);
  if (dlen < 4 || der[0] != 0x30)
    {
      g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_INVAL, "%s: bad PEM certificate", path);
      g_free (der);
      return NULL;
    }
  return g_bytes_new_take (der, dlen);
}

static gboolean
set_blob (GBytes **dst, const char *path, GError **error)
{
  char *data = NULL;
  gsize len = 0;
  if (!g_file_get_contents (path, &data, &len, error))
    return FALSE;
  GBytes *b = g_bytes_new_take (data, len);
  if (*dst && !g_bytes_equal (*dst, b))
    {
      g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                   "%s: another file names the same object with other contents", path);
      g_bytes_unref (b);
      return FALSE;
    }
  if (*dst)
    g_bytes_unref (*dst);
  *dst = b;
  return TRUE;
}

static gboolean
load_file (VcFolder *f, const char *dir, const char *name, GError **error)
{
  VcSlot *slot = NULL;
  ObjKind kind = classify (f, name, &slot);
  if (kind == OBJ_NONE)
    return TRUE;
  g_autofree char *path = g_build_filename (dir, name, NULL);
  if (!g_file_test (path, G_FILE_TEST_IS_REGULAR))
    return TRUE;
  switch (kind)
    {
    case OBJ_DISCOVERY: return set_blob (&f->discovery, path, error);
    case OBJ_CCC: return set_blob (&f->ccc, path, error);
    case OBJ_CHUID: return set_blob (&f->chuid, path, error);
    case OBJ_PRINTED: return set_blob (&f->printed, path, error);
    case OBJ_KEY_HISTORY: return set_blob (&f->key_history, path, error);
    case OBJ_SLOT: break;
    case OBJ_NONE:
    default: return TRUE;
    }
  if (g_str_has_suffix (name, ".crt") || g_str_has_suffix (name, ".cer")
      || g_str_has_suffix (name, ".der") || g_str_has_suffix (name, ".pem"))
    {
      GBytes *cert = load_cert (path, error);
      if (!cert)
        return FALSE;
      if (slot->cert && !g_bytes_equal (slot->cert, cert))
        {
          g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                       "%s: another file of this slot holds another certificate", path);
          g_bytes_unref (cert);
          return FALSE;
        }
      if (slot->cert)
        g_bytes_unref (slot->cert);
      slot->cert = cert;
    }
  else if (g_str_has_suffix (name, ".p12") || g_str_has_suffix (name, ".pfx"))
    {
      if (slot->key)
        return TRUE; /* a second copy: the certificates are compared, the first key is kept */
      slot->key = vc_crypto_load_p12 (path, error);
      if (!slot->key)
        return FALSE;
      slot->alg = vc_crypto_key_alg (slot->key);
      if (!slot->alg)
        {
          g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                       "%s: key type or size not supported by PIV", path);
          return FALSE;
        }
    }
  return TRUE;
}

static gboolean
check_slot (VcSlot *slot, const char *what, GError **error)
{
  if (slot->key && slot->cert && !vc_crypto_key_matches (slot->key, slot->cert))
    {
      g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                   "%s: the private key does not match the certificate", what);
      return FALSE;
    }
  return TRUE;
}

static int
cmp_names (gconstpointer a, gconstpointer b)
{
  return strcmp (*(const char *const *)a, *(const char *const *)b);
}

gboolean
vc_folder_load (VcFolder *f, const char *dir, GError **error)
{
  memset (f, 0, sizeof *f);
  GDir *d = g_dir_open (dir, 0, error);
  if (!d)
    return FALSE;
  /* sort the names so that loading is deterministic */
  GPtrArray *names = g_ptr_array_new_with_free_func (g_free);
  const char *name;
  while ((name = g_dir_read_name (d)))
    g_ptr_array_add (names, g_strdup (name));
  g_dir_close (d);
  g_ptr_array_sort (names, cmp_names);
  gboolean ok = TRUE;
  for (guint i = 0; ok && i < names->len; i++)
    ok = load_file (f, dir, names->pdata[i], error);
  g_ptr_array_unref (names);
  if (!ok)
    return FALSE;
  struct
  {
    VcSlot *s;
    const char *what;
  } slots[] = {
    { &f->piv_auth, "3 (PIV Authentication)" },
    { &f->dig_sig, "4 (Digital Signature)" },
    { &f->key_mgmt, "5 (Key Management)" },
    { &f->card_auth, "6 (Card Authentication)" },
    { &f->cac[0], "CAC0" },
    { &f->cac[1], "CAC1" },
    { &f->cac[2], "CAC2" },
  };
  for (size_t i = 0; i < G_N_ELEMENTS (slots); i++)
    if (!check_slot (slots[i].s, slots[i].what, error))
      return FALSE;
  for (int i = 0; i < VC_N_RETIRED; i++)
    if (!check_slot (&f->retired[i], "retired key", error))
      return FALSE;
  gboolean any = f->chuid != NULL;
  const VcSlot *all[] = { &f->piv_auth, &f->dig_sig, &f->key_mgmt, &f->card_auth,
                          &f->cac[0],   &f->cac[1],  &f->cac[2] };
  for (size_t i = 0; i < G_N_ELEMENTS (all); i++)
    any = any || all[i]->cert;
  for (int i = 0; i < VC_N_RETIRED; i++)
    any = any || f->retired[i].cert;
  if (!any)
    {
      g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                   "%s: not a card folder (no certificate and no CHUID)", dir);
      return FALSE;
    }
  return TRUE;
}

static void
slot_clear (VcSlot *s)
{
  if (s->cert)
    g_bytes_unref (s->cert);
  if (s->key)
    vc_crypto_free_key (s->key);
  memset (s, 0, sizeof *s);
}

void
vc_folder_clear (VcFolder *f)
{
  GBytes **blobs[] = { &f->discovery, &f->ccc, &f->chuid, &f->printed, &f->key_history };
  for (size_t i = 0; i < G_N_ELEMENTS (blobs); i++)
    if (*blobs[i])
      g_bytes_unref (*blobs[i]);
  slot_clear (&f->piv_auth);
  slot_clear (&f->dig_sig);
  slot_clear (&f->key_mgmt);
  slot_clear (&f->card_auth);
  for (int i = 0; i < VC_N_RETIRED; i++)
    slot_clear (&f->retired[i]);
  for (int i = 0; i < VC_N_CAC; i++)
    slot_clear (&f->cac[i]);
  memset (f, 0, sizeof *f);
}

const VcSlot *
vc_folder_piv_slot (const VcFolder *f, unsigned key_ref)
{
  switch (key_ref)
    {
    case 0x9a: return &f->piv_auth;
    case 0x9c: return &f->dig_sig;
    case 0x9d: return &f->key_mgmt;
    case 0x9e: return &f->card_auth;
    default:
      if (key_ref >= 0x82 && key_ref < 0x82 + VC_N_RETIRED)
        return &f->retired[key_ref - 0x82];
      return NULL;
    }
}
