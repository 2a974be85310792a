/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cm-tb-identities.c: the mail identities of prefs.js, and what their dbKeys name. Thunderbird
 * finds a certificate by its dbKey (issuer and serial number, nsNSSCertificateDB::
 * FindCertByDBKey) among the certificates of its NSS database and the tokens it loaded; we
 * resolve a dbKey the same way among the NSS certificates of the inventory. */
#include "cm-tb-private.h"
#include <cert.h>

void
cm_tb_settings_free (CmTbSettings *s)
{
  if (s == NULL)
    return;
  g_free (s->id);
  g_free (s->name);
  g_free (s->address);
  g_free (s->signing_name);
  g_free (s->signing_dbkey);
  g_free (s->encryption_name);
  g_free (s->encryption_dbkey);
  g_free (s);
}

/* ---- which identities ---- */

static char *
ident_pref (const char *id, const char *key)
{
  return g_strdup_printf ("mail.identity.%s.%s", id, key);
}

static char *
get_str (CmTbPrefs *prefs, const char *id, const char *key)
{
  g_autofree char *k = ident_pref (id, key);
  return g_strdup (cm_tb_prefs_get_string (prefs, k));
}

static CmTbSettings *
settings_from_prefs (CmTbPrefs *prefs, const char *id)
{
  g_autofree char *address = get_str (prefs, id, "useremail");
  g_autofree char *sign = ident_pref (id, "sign_mail");
  g_autofree char *policy = ident_pref (id, "encryptionpolicy");
  CmTbSettings *s;

  if (address == NULL || *address == '\0')
    return NULL;
  s = g_new0 (CmTbSettings, 1);
  s->id = g_strdup (id);
  s->address = g_steal_pointer (&address);
  s->name = get_str (prefs, id, "fullName");
  s->signing_name = get_str (prefs, id, "signing_cert_name");
  s->signing_dbkey = get_str (prefs, id, "signing_cert_dbkey");
  s->encryption_name = get_str (prefs, id, "encryption_cert_name");
  s->encryption_dbkey = get_str (prefs, id, "encryption_cert_dbkey");
  s->sign_mail = cm_tb_prefs_get_bool (prefs, sign, FALSE);
  s->encryption_policy = cm_tb_prefs_get_int (prefs, policy, 0);
  return s;
}

/* "id1,id2" or "account1, account2" as Thunderbird splits such lists. */
static char **
split_list (const char *text)
{
  char **parts = g_strsplit (text ? text : "", ",", -1);
  for (char **p = parts; *p; p++)
    g_strstrip (*p);
  return parts;
}

/* "mail.identity.id12.useremail" -> 12, for sorting ids as numbers. */
static gint
by_id_number (gconstpointer a, gconstpointer b)
{
  const char *x = *(char *const *)a, *y = *(char *const *)b;
  long nx = strtol (x + strspn (x, "abcdefghijklmnopqrstuvwxyz"), NULL, 10);
  long ny = strtol (y + strspn (y, "abcdefghijklmnopqrstuvwxyz"), NULL, 10);
  return nx != ny ? (nx < ny ? -1 : 1) : strcmp (x, y);
}

GPtrArray *
cm_tb_prefs_list_identities (CmTbPrefs *prefs)
{
  GPtrArray *out = g_ptr_array_new_with_free_func ((GDestroyNotify)cm_tb_settings_free);
  g_autoptr (GHashTable) seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_autoptr (GPtrArray) ids = g_ptr_array_new_with_free_func (g_free);
  const char *accounts = cm_tb_prefs_get_string (prefs, "mail.accountmanager.accounts");

  if (accounts)
    {
      g_auto (GStrv) accs = split_list (accounts);
      for (char **a = accs; *a; a++)
        {
          g_autofree char *key = g_strdup_printf ("mail.account.%s.identities", *a);
          g_auto (GStrv) list = split_list (cm_tb_prefs_get_string (prefs, key));
          for (char **i = list; *i; i++)
            if (**i)
              g_ptr_array_add (ids, g_strdup (*i));
        }
    }
  else
    {
      g_autoptr (GPtrArray) names = cm_tb_prefs_list_names (prefs, "mail.identity.");
      for (guint i = 0; i < names->len; i++)
        {
          const char *n = g_ptr_array_index (names, i);
          gsize len = strlen (n);
          /* "mail.identity." ID ".useremail": "mail.identity.useremail" has no ID (the prefix
           * and the suffix share its dot) */
          if (len > 14 + 10 && g_str_has_suffix (n, ".useremail")
              && strcmp (n, "mail.identity.default.useremail"))
            g_ptr_array_add (ids, g_strndup (n + 14, len - 14 - 10));
        }
      g_ptr_array_sort (ids, by_id_number);
    }
  for (guint i = 0; i < ids->len; i++)
    {
      const char *id = g_ptr_array_index (ids, i);
      CmTbSettings *s;
      if (g_hash_table_contains (seen, id) || (s = settings_from_prefs (prefs, id)) == NULL)
        continue;
      g_hash_table_add (seen, g_strdup (id));
      g_ptr_array_add (out, s);
    }
  return out;
}

/* ---- dbKeys ---- */

/* The issuer and serial a dbKey names (its first 8 bytes are ignored, as Thunderbird does), or
 * FALSE when it is not a dbKey. */
static gboolean
dbkey_decode (const char *text, GBytes **serial, GBytes **issuer)
{
  g_autofree char *clean = g_strdup (text);
  g_autofree guchar *raw = NULL;
  gsize len = 0;
  guint32 slen, ilen;
  char *w = clean;

  for (const char *r = text; *r; r++)
    if (!g_ascii_isspace (*r))
      *w++ = *r;
  *w = '\0';
  if (*clean == '\0'
      || strspn (clean, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                        "0123456789+/=")
           != strlen (clean))
    return FALSE;
  raw = g_base64_decode (clean, &len);
  if (raw == NULL || len < 16)
    return FALSE;
  slen = (guint32)raw[8] << 24 | (guint32)raw[9] << 16 | (guint32)raw[10] << 8 | raw[11];
  ilen = (guint32)raw[12] << 24 | (guint32)raw[13] << 16 | (guint32)raw[14] << 8 | raw[15];
  if (slen == 0 || ilen == 0 || (guint64)slen + ilen + 16 != len)
    return FALSE;
  *serial = g_bytes_new (raw + 16, slen);
  *issuer = g_bytes_new (raw + 16 + slen, ilen);
  return TRUE;
}

/* Thunderbird sees a certificate when it sits in its NSS database or on a token it loaded. */
gboolean
cm_tb_seen_by_thunderbird (CmCert *c)
{
  GPtrArray *sources = cm_cert_get_sources (c);
  for (guint i = 0; i < sources->len; i++)
    if (((CmSource *)g_ptr_array_index (sources, i))->kind == CM_SOURCE_NSS)
      return TRUE;
  return FALSE;
}

/* The issuer and serial of @c's dbKey equal @serial and @issuer. */
static gboolean
same_issuer_serial (CmCert *c, GBytes *serial, GBytes *issuer)
{
  g_autofree char *key = cm_nss_cert_dbkey (c);
  g_autoptr (GBytes) s = NULL;
  g_autoptr (GBytes) i = NULL;

  return key && dbkey_decode (key, &s, &i) && g_bytes_equal (s, serial)
         && g_bytes_equal (i, issuer);
}

CmTbResolve
cm_tb_resolve_dbkey (CmInventory *inv, const char *dbkey, CmCert **out)
{
  g_autoptr (GBytes) serial = NULL;
  g_autoptr (GBytes) issuer = NULL;
  GPtrArray *certs = cm_inventory_get_certs (inv);

  *out = NULL;
  if (!dbkey_decode (dbkey, &serial, &issuer))
    return CM_TB_DBKEY_MALFORMED;
  for (guint i = 0; i < certs->len; i++)
    {
      CmCert *c = g_ptr_array_index (certs, i);
      if (cm_tb_seen_by_thunderbird (c) && same_issuer_serial (c, serial, issuer))
        return *out = c, CM_TB_DBKEY_FOUND;
    }
  return CM_TB_DBKEY_NOT_FOUND;
}

/* NSS exports its decoder only under this name (as core/cm-cert.c notes). */
extern CERTCertificate *__CERT_DecodeDERCertificate (SECItem *der, PRBool copy, char *nickname);

char *
cm_tb_cert_display_name (CmCert *cert)
{
  GBytes *der = cm_cert_get_der (cert);
  SECItem item = { siDERCertBuffer, (unsigned char *)g_bytes_get_data (der, NULL),
                   (unsigned int)g_bytes_get_size (der) };
  CERTCertificate *n = __CERT_DecodeDERCertificate (&item, PR_FALSE, NULL);
  char *parts[3] = { NULL, NULL, NULL };
  char *out = NULL;

  if (n)
    {
      parts[0] = CERT_GetCommonName (&n->subject);
      parts[1] = CERT_GetOrgUnitName (&n->subject);
      parts[2] = CERT_GetOrgName (&n->subject);
      CERT_DestroyCertificate (n);
    }
  for (int i = 0; i < 3 && out == NULL; i++)
    if (parts[i] && *parts[i])
      out = g_strdup (parts[i]);
  for (int i = 0; i < 3; i++)
    if (parts[i])
      PORT_Free (parts[i]);
  return out ? out : g_strdup (cm_cert_get_subject (cert));
}
