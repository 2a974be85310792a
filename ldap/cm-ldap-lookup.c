/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cm-ldap-lookup.c: recipient lookup: one connection, one search per address, the
 * certificates of the entries found (docs/ldap.md, "Recipient lookup"). Read only. */
#include "cm-ldap-lookup.h"
#include "cm-ldap-private.h"
#include <cert.h>
#include <cms.h>
#include <ldap.h>
#include <string.h>

/* entries read per address: a GAL has one per address; a few more show what is wrong */
#define CM_LOOKUP_MAX_ENTRIES 5

void
cm_ldap_found_free (CmLdapFound *f)
{
  if (f == NULL)
    return;
  g_free (f->address);
  g_ptr_array_unref (f->dns);
  g_ptr_array_unref (f->certs);
  g_ptr_array_unref (f->cas);
  g_free (f);
}

static CmLdapFound *
found_new (const char *address)
{
  CmLdapFound *f = g_new0 (CmLdapFound, 1);

  f->address = g_strdup (address);
  f->dns = g_ptr_array_new_with_free_func (g_free);
  f->certs = g_ptr_array_new_with_free_func ((GDestroyNotify)g_bytes_unref);
  f->cas = g_ptr_array_new_with_free_func ((GDestroyNotify)g_bytes_unref);
  return f;
}

static void
add_unique (GPtrArray *values, const void *data, gsize len)
{
  g_autoptr (GBytes) b = g_bytes_new (data, len);

  for (guint i = 0; i < values->len; i++)
    if (g_bytes_equal (g_ptr_array_index (values, i), b))
      return;
  g_ptr_array_add (values, g_steal_pointer (&b));
}

/* The CA certificates inside a userSMIMECertificate blob (a CMS SignedData): intermediates for
 * chain building. A blob NSS cannot decode adds nothing. */
static void
add_blob_cas (CmLdapFound *f, const struct berval *bv)
{
  SECItem der = { siBuffer, (unsigned char *)bv->bv_val, (unsigned int)bv->bv_len };
  NSSCMSMessage *msg = NSS_CMSMessage_CreateFromDER (&der, NULL, NULL, NULL, NULL, NULL, NULL);
  NSSCMSContentInfo *ci = msg ? NSS_CMSMessage_ContentLevel (msg, 0) : NULL;
  NSSCMSSignedData *sd = NULL;
  SECItem **raw;

  if (ci && NSS_CMSContentInfo_GetContentTypeTag (ci) == SEC_OID_PKCS7_SIGNED_DATA)
    sd = NSS_CMSContentInfo_GetContent (ci);
  raw = sd ? sd->rawCerts : NULL; /* NSS_CMSSignedData_GetCertificateList is not exported */
  for (int i = 0; raw && raw[i]; i++)
    {
      g_autoptr (GBytes) b = g_bytes_new (raw[i]->data, raw[i]->len);
      g_autoptr (CmCert) c = cm_cert_new_from_der (b, NULL, NULL);
      if (c && cm_cert_is_ca (c))
        add_unique (f->cas, raw[i]->data, raw[i]->len);
    }
  if (msg)
    NSS_CMSMessage_Destroy (msg);
}

/* "userCertificate;binary" -> "userCertificate", compared without case */
static gboolean
attr_is (const char *attr, const char *name)
{
  gsize n = strlen (name);

  return g_ascii_strncasecmp (attr, name, n) == 0 && (attr[n] == '\0' || attr[n] == ';');
}

static void
read_entry (LDAP *ld, LDAPMessage *m, CmLdapFound *f)
{
  BerElement *ber = NULL;
  char *dn = ldap_get_dn (ld, m);

  g_ptr_array_add (f->dns, g_strdup (dn ? dn : ""));
  ldap_memfree (dn);
  for (char *a = ldap_first_attribute (ld, m, &ber); a; a = ldap_next_attribute (ld, m, ber))
    {
      struct berval **v = ldap_get_values_len (ld, m, a);
      for (int i = 0; v && v[i]; i++)
        if (attr_is (a, "userCertificate"))
          add_unique (f->certs, v[i]->bv_val, v[i]->bv_len);
        else if (attr_is (a, "userSMIMECertificate"))
          add_blob_cas (f, v[i]);
      ldap_value_free_len (v);
      ldap_memfree (a);
    }
  ber_free (ber, 0);
}

static char *
make_filter (CmLdapConfig *cfg, const char *address)
{
  struct berval in = { strlen (address), (char *)address }, esc = { 0, NULL };
  const char *fmt = cm_ldap_config_get (cfg, "filter");
  char *filter;

  if (ldap_bv2escaped_filter_value (&in, &esc) != 0)
    return NULL;
    /* the format was checked to hold exactly one %s (cm-ldap-config.c) */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
  filter = g_strdup_printf (fmt ? fmt : "(mail=%s)", esc.bv_val);
#pragma GCC diagnostic pop
  ber_memfree (esc.bv_val);
  return filter;
}

static gboolean
search_one (CmLdapConn *conn, CmLdapConfig *cfg, CmLdapFound *f, GError **error)
{
  /* "userCertificate" also returns "userCertificate;binary" (an attribute option) */
  char *attrs[] = { "userCertificate", "userSMIMECertificate", NULL };
  const char *base = cm_ldap_config_get (cfg, "base");
  LDAP *ld = cm_ldap_conn_get_ld (conn);
  g_autofree char *filter = make_filter (cfg, f->address), *diag = NULL;
  LDAPMessage *res = NULL;
  int rc;

  if (filter == NULL)
    {
      g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_FAILED, "out of memory");
      return FALSE;
    }
  if (!cm_ldap_conn_step_begin (conn, error))
    return FALSE;
  rc = ldap_search_ext_s (ld, base, LDAP_SCOPE_SUBTREE, filter, attrs, 0, NULL, NULL, NULL,
                          CM_LOOKUP_MAX_ENTRIES, &res);
  if (!cm_ldap_conn_step_end (conn, "searching", error))
    {
      ldap_msgfree (res);
      return FALSE;
    }
  /* a partial answer (size limit, referrals to other servers) still holds its entries */
  if (rc != LDAP_SUCCESS && rc != LDAP_SIZELIMIT_EXCEEDED && rc != LDAP_REFERRAL
      && rc != LDAP_PARTIAL_RESULTS)
    {
      diag = cm_ldap_conn_diagnostic (conn);
      g_set_error (error, CM_LDAP_ERROR,
                   rc == LDAP_SERVER_DOWN || rc == LDAP_TIMEOUT ? CM_LDAP_ERROR_CONNECT
                   : rc == LDAP_NO_SUCH_OBJECT                  ? CM_LDAP_ERROR_CONFIG
                   : rc == LDAP_OPERATIONS_ERROR || rc == LDAP_INSUFFICIENT_ACCESS
                     ? CM_LDAP_ERROR_AUTH
                     : CM_LDAP_ERROR_SERVER,
                   "searching %s for %s on %s failed (%s%s): %s", base, filter,
                   cm_ldap_conn_get_uri (conn), ldap_err2string (rc), diag,
                   rc == LDAP_NO_SUCH_OBJECT ? "check --base"
                   : rc == LDAP_OPERATIONS_ERROR || rc == LDAP_INSUFFICIENT_ACCESS
                     ? "this directory needs a bind: set --bind-dn and --password-file, or "
                       "--bind gssapi"
                     : "check the server and retry");
      ldap_msgfree (res);
      return FALSE;
    }
  for (LDAPMessage *m = ldap_first_entry (ld, res); m; m = ldap_next_entry (ld, m))
    read_entry (ld, m, f);
  ldap_msgfree (res);
  return TRUE;
}

static gboolean
wants_bind (CmLdapConfig *cfg)
{
  const char *method = cm_ldap_config_get (cfg, "bind");

  return cm_ldap_config_get (cfg, "bind-dn") != NULL
         || (method != NULL && strcmp (method, "simple") != 0);
}

GPtrArray *
cm_ldap_lookup_sync (CmLdapConfig *cfg, const char *const *addresses, CmLdapSecretFunc ask,
                     gpointer ask_data, char **uri, GCancellable *cancellable, GError **error)
{
  g_autoptr (CmLdapConn) conn = NULL;
  g_autoptr (GPtrArray) out = g_ptr_array_new_with_free_func ((GDestroyNotify)cm_ldap_found_free);

  if (uri)
    *uri = NULL;
  if (cm_ldap_config_get (cfg, "base") == NULL)
    {
      g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_CONFIG,
                   "no search base is set: pass --base DN, or set base in cacmail.conf");
      return NULL;
    }
  if ((conn = cm_ldap_conn_connect_sync (cfg, cancellable, error)) == NULL)
    return NULL;
  if (wants_bind (cfg)
      && !cm_ldap_conn_bind_sync (conn, cfg, NULL, ask, ask_data, cancellable, error))
    return NULL;
  for (const char *const *a = addresses; *a; a++)
    {
      CmLdapFound *f = found_new (*a);
      g_ptr_array_add (out, f);
      if (!search_one (conn, cfg, f, error))
        return NULL;
    }
  if (uri)
    *uri = g_strdup (cm_ldap_conn_get_uri (conn));
  return g_steal_pointer (&out);
}
