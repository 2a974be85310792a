/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cm-ldap-ops.c: the LDAP operations of a connection (Who am I?, root DSE, reading entries, the
 * one modify), each one network step under the connection's deadline (cm-ldap-conn.c). */
#include "cm-ldap-private.h"
#include <ldap.h>
#include <string.h>

gboolean
cm_ldap_conn_whoami (CmLdapConn *conn, char **id, GError **error)
{
  LDAP *ld = cm_ldap_conn_get_ld (conn);
  struct berval *bv = NULL;
  int rc;

  *id = NULL;
  if (!cm_ldap_conn_step_begin (conn, error))
    return FALSE;
  rc = ldap_whoami_s (ld, &bv, NULL, NULL);
  if (!cm_ldap_conn_step_end (conn, "asking Who am I? of", error))
    {
      ber_bvfree (bv);
      return FALSE;
    }
  if (rc == LDAP_SERVER_DOWN)
    {
      g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_CONNECT,
                   "the connection to %s was lost (%s): run cacmail republish again",
                   cm_ldap_conn_get_uri (conn), ldap_err2string (rc));
      ber_bvfree (bv);
      return FALSE;
    }
  if (rc == LDAP_SUCCESS && bv)
    *id = g_strndup (bv->bv_val, bv->bv_len);
  ber_bvfree (bv);
  return TRUE;
}

gboolean
cm_ldap_conn_has_assertion (CmLdapConn *conn, gboolean *has, GError **error)
{
  LDAP *ld = cm_ldap_conn_get_ld (conn);
  char *attrs[] = { "supportedControl", NULL };
  LDAPMessage *res = NULL, *e;
  struct berval **vals = NULL;
  int rc;

  *has = FALSE;
  if (!cm_ldap_conn_step_begin (conn, error))
    return FALSE;
  rc = ldap_search_ext_s (ld, "", LDAP_SCOPE_BASE, "(objectClass=*)", attrs, 0, NULL, NULL, NULL, 1,
                          &res);
  if (!cm_ldap_conn_step_end (conn, "reading the root DSE of", error))
    {
      ldap_msgfree (res);
      return FALSE;
    }
  if (rc == LDAP_SUCCESS && (e = ldap_first_entry (ld, res)) != NULL
      && (vals = ldap_get_values_len (ld, e, "supportedControl")) != NULL)
    for (int i = 0; vals[i]; i++)
      if (vals[i]->bv_len == strlen (LDAP_CONTROL_ASSERT)
          && memcmp (vals[i]->bv_val, LDAP_CONTROL_ASSERT, vals[i]->bv_len) == 0)
        *has = TRUE;
  ldap_value_free_len (vals);
  ldap_msgfree (res);
  if (rc == LDAP_SERVER_DOWN)
    {
      g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_CONNECT,
                   "the connection to %s was lost (%s): run cacmail republish again",
                   cm_ldap_conn_get_uri (conn), ldap_err2string (rc));
      return FALSE;
    }
  return TRUE;
}

/* LDAP_CAP_ACTIVE_DIRECTORY_OID in supportedCapabilities: Windows AD and Samba AD say it */
#define CM_LDAP_CAP_AD "1.2.840.113556.1.4.800"

static gboolean
lost (CmLdapConn *conn, int rc, GError **error)
{
  if (rc != LDAP_SERVER_DOWN)
    return FALSE;
  g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_CONNECT,
               "the connection to %s was lost (%s): run cacmail republish again",
               cm_ldap_conn_get_uri (conn), ldap_err2string (rc));
  return TRUE;
}

static char *
first_value (LDAP *ld, LDAPMessage *e, const char *attr)
{
  struct berval **v = ldap_get_values_len (ld, e, attr);
  char *out = v && v[0] ? g_strndup (v[0]->bv_val, v[0]->bv_len) : NULL;

  ldap_value_free_len (v);
  return out;
}

void
cm_ldap_root_dse_clear (CmLdapRootDse *dse)
{
  g_clear_pointer (&dse->vendor, g_free);
  g_clear_pointer (&dse->default_nc, g_free);
  dse->kind = CM_LDAP_KIND_LDAP;
}

gboolean
cm_ldap_conn_read_root_dse (CmLdapConn *conn, CmLdapRootDse *dse, GError **error)
{
  LDAP *ld = cm_ldap_conn_get_ld (conn);
  char *attrs[] = { "supportedCapabilities", "vendorName", "defaultNamingContext", NULL };
  LDAPMessage *res = NULL, *e;
  struct berval **caps = NULL;
  int rc;

  cm_ldap_root_dse_clear (dse);
  if (!cm_ldap_conn_step_begin (conn, error))
    return FALSE;
  rc = ldap_search_ext_s (ld, "", LDAP_SCOPE_BASE, "(objectClass=*)", attrs, 0, NULL, NULL, NULL, 1,
                          &res);
  if (!cm_ldap_conn_step_end (conn, "reading the root DSE of", error))
    {
      ldap_msgfree (res);
      return FALSE;
    }
  if (rc == LDAP_SUCCESS && (e = ldap_first_entry (ld, res)) != NULL)
    {
      caps = ldap_get_values_len (ld, e, "supportedCapabilities");
      for (int i = 0; caps && caps[i]; i++)
        if (caps[i]->bv_len == strlen (CM_LDAP_CAP_AD)
            && memcmp (caps[i]->bv_val, CM_LDAP_CAP_AD, caps[i]->bv_len) == 0)
          dse->kind = CM_LDAP_KIND_AD;
      ldap_value_free_len (caps);
      dse->vendor = first_value (ld, e, "vendorName");
      dse->default_nc = first_value (ld, e, "defaultNamingContext");
    }
  ldap_msgfree (res);
  return !lost (conn, rc, error);
}

char **
cm_ldap_conn_find_dns (CmLdapConn *conn, const char *base, const char *filter, GError **error)
{
  LDAP *ld = cm_ldap_conn_get_ld (conn);
  char *attrs[] = { LDAP_NO_ATTRS, NULL };
  LDAPMessage *res = NULL;
  g_autoptr (GPtrArray) dns = g_ptr_array_new_with_free_func (g_free);
  g_autofree char *diag = NULL;
  int rc;

  if (!cm_ldap_conn_step_begin (conn, error))
    return NULL;
  rc
    = ldap_search_ext_s (ld, base, LDAP_SCOPE_SUBTREE, filter, attrs, 0, NULL, NULL, NULL, 3, &res);
  if (!cm_ldap_conn_step_end (conn, "searching", error))
    {
      ldap_msgfree (res);
      return NULL;
    }
  if (lost (conn, rc, error))
    {
      ldap_msgfree (res);
      return NULL;
    }
  if (rc != LDAP_SUCCESS && rc != LDAP_SIZELIMIT_EXCEEDED && rc != LDAP_NO_SUCH_OBJECT)
    {
      diag = cm_ldap_conn_diagnostic (conn);
      g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_SERVER,
                   "searching %s for %s on %s failed (%s%s): check the server and retry", base,
                   filter, cm_ldap_conn_get_uri (conn), ldap_err2string (rc), diag);
      ldap_msgfree (res);
      return NULL;
    }
  /* entries only: the search references AD returns from a domain root are skipped */
  for (LDAPMessage *m = ldap_first_entry (ld, res); m; m = ldap_next_entry (ld, m))
    {
      char *dn = ldap_get_dn (ld, m);
      g_ptr_array_add (dns, g_strdup (dn ? dn : ""));
      ldap_memfree (dn);
    }
  ldap_msgfree (res);
  g_ptr_array_add (dns, NULL);
  return (char **)g_ptr_array_free (g_steal_pointer (&dns), FALSE);
}

/* "userCertificate;binary" -> "userCertificate" compared without case. */
static gboolean
attr_is (const char *attr, const char *name)
{
  gsize n = strlen (name);

  return g_ascii_strncasecmp (attr, name, n) == 0 && (attr[n] == '\0' || attr[n] == ';');
}

static CmLdapEntry *
entry_from_message (LDAP *ld, LDAPMessage *msg)
{
  CmLdapEntry *e = g_new0 (CmLdapEntry, 1);
  g_autoptr (GPtrArray) mails = g_ptr_array_new ();
  BerElement *ber = NULL;
  char *dn = ldap_get_dn (ld, msg);

  e->dn = g_strdup (dn ? dn : "");
  ldap_memfree (dn);
  e->certs = g_ptr_array_new_with_free_func ((GDestroyNotify)g_bytes_unref);
  for (char *a = ldap_first_attribute (ld, msg, &ber); a; a = ldap_next_attribute (ld, msg, ber))
    {
      struct berval **v = ldap_get_values_len (ld, msg, a);
      for (int i = 0; v && v[i]; i++)
        {
          if (attr_is (a, "mail"))
            g_ptr_array_add (mails, g_strndup (v[i]->bv_val, v[i]->bv_len));
          else if (attr_is (a, "userCertificate"))
            g_ptr_array_add (e->certs, g_bytes_new (v[i]->bv_val, v[i]->bv_len));
          else if (attr_is (a, "userSMIMECertificate"))
            {
              if (e->smime == NULL)
                e->smime = g_bytes_new (v[i]->bv_val, v[i]->bv_len);
              e->n_smime++;
            }
          else if (attr_is (a, "entryCSN") && e->csn == NULL)
            e->csn = g_strndup (v[i]->bv_val, v[i]->bv_len);
        }
      ldap_value_free_len (v);
      ldap_memfree (a);
    }
  ber_free (ber, 0);
  g_ptr_array_add (mails, NULL);
  e->mails = (char **)g_ptr_array_free (g_steal_pointer (&mails), FALSE);
  return e;
}

GPtrArray *
cm_ldap_conn_read_entries (CmLdapConn *conn, CmLdapConfig *cfg, const char *dn, const char *filter,
                           GError **error)
{
  char *attrs[]
    = { "mail", (char *)cm_ldap_conn_cert_attr (conn), CM_LDAP_ATTR_SMIME, "entryCSN", NULL };
  const char *base = dn ? dn : cm_ldap_search_base (conn, cfg);
  LDAP *ld = cm_ldap_conn_get_ld (conn);
  LDAPMessage *res = NULL;
  GPtrArray *out = NULL;
  g_autofree char *diag = NULL;
  int rc;

  if (base == NULL)
    {
      g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_CONFIG,
                   "no search base is set: pass --base DN (or --entry-dn DN), or set base in "
                   "cacmail.conf");
      return NULL;
    }
  if (!cm_ldap_conn_step_begin (conn, error))
    return NULL;
  rc = ldap_search_ext_s (ld, base, dn ? LDAP_SCOPE_BASE : LDAP_SCOPE_SUBTREE,
                          dn ? "(objectClass=*)" : filter, attrs, 0, NULL, NULL, NULL, 10, &res);
  if (!cm_ldap_conn_step_end (conn, "reading from", error))
    {
      ldap_msgfree (res);
      return NULL;
    }
  if (rc == LDAP_NO_SUCH_OBJECT && dn)
    rc = LDAP_SUCCESS;
  if (rc != LDAP_SUCCESS && rc != LDAP_SIZELIMIT_EXCEEDED)
    {
      diag = cm_ldap_conn_diagnostic (conn);
      g_set_error (error, CM_LDAP_ERROR,
                   rc == LDAP_SERVER_DOWN || rc == LDAP_TIMEOUT ? CM_LDAP_ERROR_CONNECT
                   : rc == LDAP_NO_SUCH_OBJECT                  ? CM_LDAP_ERROR_CONFIG
                                                                : CM_LDAP_ERROR_SERVER,
                   "reading %s from %s failed (%s%s): %s", dn ? dn : base,
                   cm_ldap_conn_get_uri (conn), ldap_err2string (rc), diag,
                   rc == LDAP_NO_SUCH_OBJECT ? "check --base" : "check the server and retry");
      ldap_msgfree (res);
      return NULL;
    }
  out = g_ptr_array_new_with_free_func ((GDestroyNotify)cm_ldap_entry_free);
  for (LDAPMessage *m = ldap_first_entry (ld, res); m; m = ldap_next_entry (ld, m))
    g_ptr_array_add (out, entry_from_message (ld, m));
  ldap_msgfree (res);
  return out;
}

static struct berval **
to_bervals (GPtrArray *values, struct berval *storage)
{
  struct berval **v = g_new0 (struct berval *, values->len + 1);

  for (guint i = 0; i < values->len; i++)
    {
      gsize n = 0;
      storage[i].bv_val = (char *)g_bytes_get_data (g_ptr_array_index (values, i), &n);
      storage[i].bv_len = n;
      v[i] = &storage[i];
    }
  return v;
}

gboolean
cm_ldap_conn_modify (CmLdapConn *conn, const char *dn, GPtrArray *old_certs, GPtrArray *new_certs,
                     GBytes *smime, gboolean delete_smime, const char *csn, GError **error)
{
  struct berval *old_bv = g_new0 (struct berval, old_certs->len + 1);
  struct berval *new_bv = g_new0 (struct berval, new_certs->len + 1);
  struct berval smime_bv = { 0, NULL }, *smime_v[] = { &smime_bv, NULL };
  LDAPMod del = { 0 }, add = { 0 }, rep = { 0 };
  LDAPMod *mods[4] = { NULL };
  LDAPControl *ctrl = NULL, *ctrls[2] = { NULL, NULL };
  g_autofree char *assertion = NULL, *diag = NULL;
  LDAP *ld = cm_ldap_conn_get_ld (conn);
  gboolean ok = FALSE;
  int n = 0, rc;

  del.mod_op = LDAP_MOD_DELETE | LDAP_MOD_BVALUES;
  del.mod_type = (char *)cm_ldap_conn_cert_attr (conn);
  del.mod_bvalues = to_bervals (old_certs, old_bv);
  add.mod_op = LDAP_MOD_ADD | LDAP_MOD_BVALUES;
  add.mod_type = (char *)cm_ldap_conn_cert_attr (conn);
  add.mod_bvalues = to_bervals (new_certs, new_bv);
  rep.mod_type = CM_LDAP_ATTR_SMIME;
  if (old_certs->len)
    mods[n++] = &del;
  if (new_certs->len)
    mods[n++] = &add;
  if (smime)
    {
      gsize len = 0;
      smime_bv.bv_val = (char *)g_bytes_get_data (smime, &len);
      smime_bv.bv_len = len;
      rep.mod_op = LDAP_MOD_REPLACE | LDAP_MOD_BVALUES;
      rep.mod_bvalues = smime_v;
      mods[n++] = &rep;
    }
  else if (delete_smime)
    {
      rep.mod_op = LDAP_MOD_DELETE | LDAP_MOD_BVALUES;
      mods[n++] = &rep;
    }
  if (csn)
    {
      assertion = g_strdup_printf ("(entryCSN=%s)", csn);
      rc = ldap_create_assertion_control (ld, assertion, 1, &ctrl);
      if (rc != LDAP_SUCCESS)
        {
          g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_FAILED,
                       "cannot build the assertion control for %s (%s): report this bug", dn,
                       ldap_err2string (rc));
          goto out;
        }
      ctrls[0] = ctrl;
    }
  if (!cm_ldap_conn_step_begin (conn, error))
    goto out;
  rc = ldap_modify_ext_s (ld, dn, mods, csn ? ctrls : NULL, NULL);
  if (!cm_ldap_conn_step_end (conn, "writing to", NULL))
    {
      /* sent, but no answer in time (the write step is never cancelled) */
      g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_CONNECT,
                   "%s gave no answer to the write within %d s: the entry is either unchanged or "
                   "fully updated; run cacmail republish again",
                   cm_ldap_conn_get_uri (conn), cm_ldap_conn_get_timeout (conn));
      goto out;
    }
  diag = cm_ldap_conn_diagnostic (conn);
  switch (rc)
    {
    case LDAP_SUCCESS: ok = TRUE; break;
    case LDAP_ASSERTION_FAILED:
    case LDAP_NO_SUCH_ATTRIBUTE:
    case LDAP_TYPE_OR_VALUE_EXISTS:
      g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_CONFLICT,
                   "%s changed on the server since cacmail read it (%s): nothing was written; "
                   "run cacmail republish again",
                   dn, ldap_err2string (rc));
      break;
    case LDAP_INSUFFICIENT_ACCESS:
      g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_SERVER,
                   "the server does not let you write the certificates of %s (insufficient "
                   "access%s): ask the directory admin to let you (self) write userCertificate "
                   "and userSMIMECertificate",
                   dn, diag);
      break;
    case LDAP_SERVER_DOWN:
    case LDAP_UNAVAILABLE:
    case LDAP_BUSY:
    case LDAP_TIMEOUT:
      g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_CONNECT,
                   "the connection to %s was lost during the write (%s): the entry is either "
                   "unchanged or fully updated; run cacmail republish again",
                   cm_ldap_conn_get_uri (conn), ldap_err2string (rc));
      break;
    default:
      g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_SERVER,
                   "the server refused the change to %s (%s%s): nothing was written; show this "
                   "message to the directory admin",
                   dn, ldap_err2string (rc), diag);
      break;
    }
out:
  if (ctrl)
    ldap_control_free (ctrl);
  g_free (del.mod_bvalues);
  g_free (add.mod_bvalues);
  g_free (old_bv);
  g_free (new_bv);
  return ok;
}

gboolean
cm_ldap_conn_move_last (CmLdapConn *conn, const char *dn, GPtrArray *values, GError **error)
{
  /* the exact-value delete is the guard: a value gone meanwhile fails the whole modify (16) */
  return cm_ldap_conn_modify (conn, dn, values, values, NULL, FALSE, NULL, error);
}
