/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cm-ldap-publish.c: republish / unpublish: find the entry, plan, one guarded modify, read
 * back and compare. */
#include "cm-ldap-private.h"
#include <ldap.h>
#include <string.h>

struct _CmLdapResult
{
  char *dn, *email, *uri, *guard;
  gboolean unpublish, dry_run, written, unchanged, reordered, insecure, verified, tls;
  CmLdapKind kind;
  guint foreign;  /* values someone else added meanwhile, kept behind ours (AD) */
  gboolean moved; /* a second modify moved them behind ours */
  double ms[CM_LDAP_N_STEPS];
  GPtrArray *old_values;  /* GBytes*: userCertificate values to delete */
  GPtrArray *kept_values; /* GBytes*: values left in place (unpublish) */
  GPtrArray *new_values;  /* GBytes*: values to add, in order */
  GPtrArray *old_certs;   /* CmCert* of old_values that parse */
  GPtrArray *new_certs;   /* CmCert* */
  gboolean old_smime, delete_smime;
  GBytes *new_smime;
};

void
cm_ldap_result_free (CmLdapResult *r)
{
  if (r == NULL)
    return;
  g_free (r->dn);
  g_free (r->email);
  g_free (r->uri);
  g_free (r->guard);
  g_ptr_array_unref (r->old_values);
  g_ptr_array_unref (r->kept_values);
  g_ptr_array_unref (r->new_values);
  g_ptr_array_unref (r->old_certs);
  g_ptr_array_unref (r->new_certs);
  g_clear_pointer (&r->new_smime, g_bytes_unref);
  g_free (r);
}

const char *
cm_ldap_result_get_dn (CmLdapResult *r)
{
  return r->dn;
}
const char *
cm_ldap_result_get_email (CmLdapResult *r)
{
  return r->email;
}
gboolean
cm_ldap_result_get_written (CmLdapResult *r)
{
  return r->written;
}
gboolean
cm_ldap_result_get_unchanged (CmLdapResult *r)
{
  return r->unchanged;
}
gboolean
cm_ldap_result_get_reordered (CmLdapResult *r)
{
  return r->reordered;
}
gboolean
cm_ldap_result_get_insecure (CmLdapResult *r)
{
  return r->insecure;
}
GPtrArray *
cm_ldap_result_get_old_certs (CmLdapResult *r)
{
  return r->old_certs;
}
GPtrArray *
cm_ldap_result_get_new_certs (CmLdapResult *r)
{
  return r->new_certs;
}
gboolean
cm_ldap_result_get_old_smime (CmLdapResult *r)
{
  return r->old_smime;
}
GBytes *
cm_ldap_result_get_new_smime (CmLdapResult *r)
{
  return r->new_smime;
}

const char *
cm_ldap_result_get_server (CmLdapResult *r)
{
  return r->kind == CM_LDAP_KIND_AD ? "active-directory" : "ldap";
}
const char *
cm_ldap_result_get_rules (CmLdapResult *r)
{
  return cm_ldap_kind_rules (r->kind);
}
guint
cm_ldap_result_get_foreign (CmLdapResult *r)
{
  return r->foreign;
}

double
cm_ldap_result_get_ms (CmLdapResult *r, CmLdapStep step)
{
  return step < CM_LDAP_N_STEPS ? r->ms[step] : 0;
}

static CmLdapResult *
result_new (void)
{
  CmLdapResult *r = g_new0 (CmLdapResult, 1);

  r->old_values = g_ptr_array_new_with_free_func ((GDestroyNotify)g_bytes_unref);
  r->kept_values = g_ptr_array_new_with_free_func ((GDestroyNotify)g_bytes_unref);
  r->new_values = g_ptr_array_new_with_free_func ((GDestroyNotify)g_bytes_unref);
  r->old_certs = g_ptr_array_new_with_free_func ((GDestroyNotify)cm_cert_unref);
  r->new_certs = g_ptr_array_new_with_free_func ((GDestroyNotify)cm_cert_unref);
  return r;
}

/* Progress and timing of one step. */
typedef struct
{
  CmLdapResult *r;
  CmLdapProgressFunc fn;
  gpointer data;
  gint64 t0;
  CmLdapStep step;
} Timer;

static void
step_begin (Timer *t, CmLdapStep step)
{
  t->step = step;
  t->t0 = g_get_monotonic_time ();
  if (t->fn)
    t->fn (step, FALSE, 0, t->data);
}

static void
step_end (Timer *t)
{
  double ms = (double)(g_get_monotonic_time () - t->t0) / 1000.0;

  t->r->ms[t->step] = ms;
  if (t->fn)
    t->fn (t->step, TRUE, ms, t->data);
}

static gboolean
has_mail (CmLdapEntry *e, const char *email)
{
  for (char **m = e->mails; m && *m; m++)
    if (g_ascii_strcasecmp (*m, email) == 0)
      return TRUE;
  return FALSE;
}

static gboolean
same_dn (const char *a, const char *b)
{
  char *na = NULL, *nb = NULL;
  gboolean same;

  if (ldap_dn_normalize (a, LDAP_DN_FORMAT_LDAP, &na, LDAP_DN_FORMAT_LDAPV3) != LDAP_SUCCESS
      || ldap_dn_normalize (b, LDAP_DN_FORMAT_LDAP, &nb, LDAP_DN_FORMAT_LDAPV3) != LDAP_SUCCESS)
    same = g_ascii_strcasecmp (a, b) == 0;
  else
    same = g_ascii_strcasecmp (na, nb) == 0;
  ldap_memfree (na);
  ldap_memfree (nb);
  return same;
}

/* Connect, bind, find and read the one entry; refuse someone else's. */
static CmLdapEntry *
find_entry (CmLdapConn *conn, CmLdapConfig *cfg, const char *email, CmLdapSecretFunc ask,
            gpointer ask_data, GCancellable *cancellable, GError **error)
{
  const char *dn = cm_ldap_config_get (cfg, "entry-dn");
  const char *method = cm_ldap_config_get (cfg, "bind");
  const char *bdn = cm_ldap_config_get (cfg, "bind-dn");
  gboolean simple = method == NULL || strcmp (method, "simple") == 0;
  gboolean ad = cm_ldap_conn_is_ad (conn);
  /* a simple bind without a bind DN binds as the entry: find it anonymously first (not on AD,
   * which refuses anonymous searches) */
  gboolean bind_later = !dn && simple && !bdn && !ad;
  g_autoptr (GPtrArray) found = NULL;
  g_autoptr (CmLdapEntry) e = NULL;
  g_autofree char *filter = NULL, *bind_id = NULL, *bound = NULL;

  if (dn == NULL)
    {
      struct berval in = { strlen (email), (char *)email }, esc = { 0, NULL };
      const char *fmt = cm_ldap_config_get (cfg, "filter");
      if (ldap_bv2escaped_filter_value (&in, &esc) != 0)
        {
          g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_FAILED, "out of memory");
          goto out;
        }
        /* the format was checked to hold exactly one %s */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
      filter = g_strdup_printf (fmt ? fmt : "(mail=%s)", esc.bv_val);
#pragma GCC diagnostic pop
      ber_memfree (esc.bv_val);
    }
  if (ad && simple && (bind_id = cm_ldap_ad_bind_id (conn, cfg, error)) == NULL)
    goto out;
  if (!bind_later
      && !cm_ldap_conn_bind_id_sync (conn, cfg,
                                     bind_id ? bind_id
                                     : bdn   ? bdn
                                             : dn,
                                     ask, ask_data, cancellable, error))
    goto out;
  found = cm_ldap_conn_read_entries (conn, cfg, dn, filter, error);
  if (found == NULL)
    goto out;
  if (found->len == 0)
    {
      if (dn)
        g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_NOT_FOUND,
                     "the entry %s does not exist on %s: check --entry-dn", dn,
                     cm_ldap_conn_get_uri (conn));
      else
        g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_NOT_FOUND,
                     "no entry matches %s under %s on %s: check --email and --base, or pass "
                     "--entry-dn",
                     filter, cm_ldap_search_base (conn, cfg), cm_ldap_conn_get_uri (conn));
      goto out;
    }
  if (found->len > 1)
    {
      g_autoptr (GString) dns = g_string_new (NULL);
      for (guint i = 0; i < found->len && i < 3; i++)
        g_string_append_printf (dns, "%s%s", i ? "; " : "",
                                ((CmLdapEntry *)g_ptr_array_index (found, i))->dn);
      g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_NOT_UNIQUE,
                   "nothing published: %u entries match %s (%s%s): pass --entry-dn with your own",
                   found->len, filter, dns->str, found->len > 3 ? "; ..." : "");
      goto out;
    }
  e = g_ptr_array_steal_index (found, 0);
  if (bind_later)
    {
      /* bind as the entry found, then read it again with our rights */
      g_autofree char *entry_dn = g_strdup (e->dn);
      g_clear_pointer (&e, cm_ldap_entry_free);
      g_clear_pointer (&found, g_ptr_array_unref);
      if (!cm_ldap_conn_bind_sync (conn, cfg, entry_dn, ask, ask_data, cancellable, error)
          || (found = cm_ldap_conn_read_entries (conn, cfg, entry_dn, NULL, error)) == NULL)
        goto out;
      if (found->len != 1)
        {
          g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_CONFLICT,
                       "%s disappeared while cacmail read it: run cacmail republish again",
                       entry_dn);
          goto out;
        }
      e = g_ptr_array_steal_index (found, 0);
    }
  if (!has_mail (e, email))
    {
      g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_REFUSED,
                   "nothing published: the entry %s has mail %s, not %s (the address on the "
                   "card's certificates): use the entry of that address",
                   e->dn, e->mails[0] ? e->mails[0] : "(none)", email);
      g_clear_pointer (&e, cm_ldap_entry_free);
      goto out;
    }
  /* the identity the server sees must be the entry's owner, for every bind (SASL maps
   * identities; AD answers Who am I? with u:DOMAIN\user, Samba not at all) */
  bound = cm_ldap_bound_dn (conn, cfg, bind_id ? bind_id : bdn ? bdn : e->dn, error);
  if (bound == NULL)
    {
      g_clear_pointer (&e, cm_ldap_entry_free);
      goto out;
    }
  if (!same_dn (bound, e->dn))
    {
      g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_REFUSED,
                   "nothing published: you are bound as %s, but the entry is %s; cacmail "
                   "writes only your own entry",
                   bound, e->dn);
      g_clear_pointer (&e, cm_ldap_entry_free);
    }
out:
  return g_steal_pointer (&e);
}

static void
plan_unpublish (CmLdapResult *r, CmLdapEntry *e)
{
  for (guint i = 0; i < e->certs->len; i++)
    {
      GBytes *v = g_ptr_array_index (e->certs, i);
      g_autoptr (CmCert) c = cm_cert_new_from_der (v, NULL, NULL);
      if (c && cm_cert_has_email (c, r->email))
        {
          g_ptr_array_add (r->old_values, g_bytes_ref (v));
          g_ptr_array_add (r->old_certs, g_steal_pointer (&c));
        }
      else
        g_ptr_array_add (r->kept_values, g_bytes_ref (v));
    }
  r->delete_smime = e->smime != NULL;
  r->unchanged = r->old_values->len == 0 && !r->delete_smime;
}

static void
plan_publish (CmLdapResult *r, CmLdapEntry *e, CmCert *sign, CmCert *enc)
{
  for (guint i = 0; i < e->certs->len; i++)
    {
      GBytes *v = g_ptr_array_index (e->certs, i);
      CmCert *c = cm_cert_new_from_der (v, NULL, NULL);
      g_ptr_array_add (r->old_values, g_bytes_ref (v));
      if (c)
        g_ptr_array_add (r->old_certs, c);
    }
  /* encryption FIRST: gpgsm, dirmngr and Evolution read only the first value */
  g_ptr_array_add (r->new_values, g_bytes_ref (cm_cert_get_der (enc)));
  g_ptr_array_add (r->new_values, g_bytes_ref (cm_cert_get_der (sign)));
  g_ptr_array_add (r->new_certs, cm_cert_ref (enc));
  g_ptr_array_add (r->new_certs, cm_cert_ref (sign));
}

static gboolean
has_value (GPtrArray *values, GBytes *v)
{
  for (guint i = 0; i < values->len; i++)
    if (g_bytes_equal (g_ptr_array_index (values, i), v))
      return TRUE;
  return FALSE;
}

/* The first values of @back are @want, in order. */
static gboolean
starts_with (GPtrArray *back, GPtrArray *want)
{
  if (back->len < want->len)
    return FALSE;
  for (guint i = 0; i < want->len; i++)
    if (!g_bytes_equal (g_ptr_array_index (back, i), g_ptr_array_index (want, i)))
      return FALSE;
  return TRUE;
}

/* Active Directory has no assertion control: a value someone else added between the read and
 * the write (a first publish has no delete to fail) is kept; where it stands before ours, one
 * more modify deletes and re-adds it, which puts it last. TRUE: read back again. */
static gboolean
ad_foreign (CmLdapConn *conn, CmLdapResult *r, GPtrArray *back, GPtrArray *foreign, gboolean *again,
            GError **error)
{
  g_autoptr (GError) local = NULL;

  *again = FALSE;
  r->foreign = foreign->len;
  if (starts_with (back, r->new_values))
    return TRUE;
  if (r->moved)
    {
      g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_CONFLICT,
                   "your certificates were written to %s, but values someone added meanwhile "
                   "still stand before them: run cacmail republish again",
                   r->dn);
      return FALSE;
    }
  if (!cm_ldap_conn_move_last (conn, r->dn, foreign, &local))
    {
      if (g_error_matches (local, CM_LDAP_ERROR, CM_LDAP_ERROR_CONFLICT))
        g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_CONFLICT,
                     "your certificates were written to %s, but %u value(s) someone added "
                     "meanwhile stand before them and the entry changed again: run cacmail "
                     "republish again",
                     r->dn, foreign->len);
      else
        g_propagate_error (error, g_steal_pointer (&local));
      return FALSE;
    }
  r->moved = *again = TRUE;
  return TRUE;
}

/* Read back and compare byte for byte, order included. */
static gboolean
verify (CmLdapConn *conn, CmLdapConfig *cfg, CmLdapResult *r, GError **error)
{
  g_autoptr (GError) local = NULL;
  g_autoptr (GPtrArray) back = cm_ldap_conn_read_entries (conn, cfg, r->dn, NULL, &local);
  g_autoptr (GPtrArray) foreign = g_ptr_array_new ();
  CmLdapEntry *e;
  GPtrArray *want = r->unpublish ? r->kept_values : r->new_values;
  gboolean smime_ok, again = FALSE, missing = FALSE;

  if (back == NULL)
    {
      g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_CONNECT,
                   "the change was written, but reading it back failed (%s): run 'cacmail "
                   "republish --dry-run' to see what %s holds",
                   local->message, r->dn);
      return FALSE;
    }
  if (back->len != 1)
    {
      g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_VERIFY,
                   "%s is gone after the write: tell the directory admin", r->dn);
      return FALSE;
    }
  e = g_ptr_array_index (back, 0);
  smime_ok
    = r->unpublish ? e->smime == NULL : (e->n_smime == 1 && g_bytes_equal (e->smime, r->new_smime));
  for (guint i = 0; i < want->len; i++)
    missing |= !has_value (e->certs, g_ptr_array_index (want, i));
  for (guint i = 0; i < e->certs->len; i++)
    if (!has_value (want, g_ptr_array_index (e->certs, i)))
      g_ptr_array_add (foreign, g_ptr_array_index (e->certs, i));
  if (missing || !smime_ok || (foreign->len && (r->unpublish || r->kind != CM_LDAP_KIND_AD)))
    {
      g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_VERIFY,
                   "after the write, %s holds other %s than cacmail wrote (someone changed it "
                   "at the same time?): run cacmail republish again",
                   r->dn, smime_ok ? "userCertificate values" : "userSMIMECertificate bytes");
      return FALSE;
    }
  if (foreign->len && !ad_foreign (conn, r, e->certs, foreign, &again, error))
    return FALSE;
  if (again)
    return verify (conn, cfg, r, error);
  r->reordered = !starts_with (e->certs, want);
  r->verified = TRUE;
  return TRUE;
}

CmLdapResult *
cm_ldap_republish_sync (CmLdapConfig *cfg, CmLdapRepublishFlags flags, gint64 at,
                        CmLdapSecretFunc ask, gpointer ask_data, CmLdapProgressFunc progress,
                        gpointer progress_data, GCancellable *cancellable, GError **error)
{
  g_autoptr (CmLdapResult) r = result_new ();
  g_autoptr (CmLdapConn) conn = NULL;
  g_autoptr (CmLdapEntry) entry = NULL;
  g_autoptr (CmLdapCard) card = NULL;
  const char *email = cm_ldap_config_get (cfg, "email");
  CmCert *sign = NULL, *enc = NULL;
  gboolean assertion = FALSE;
  Timer t = { r, progress, progress_data, 0, 0 };

  r->unpublish = (flags & CM_LDAP_REPUBLISH_UNPUBLISH) != 0;
  r->dry_run = (flags & CM_LDAP_REPUBLISH_DRY_RUN) != 0;
  if (email == NULL || strchr (email, '@') == NULL)
    {
      g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_CONFIG,
                   "no address to publish for: pass --email ADDR (e.g. john.doe@mail.mil) or "
                   "set email in cacmail.conf");
      return NULL;
    }
  r->email = g_ascii_strdown (email, -1);

  step_begin (&t, CM_LDAP_STEP_FIND_ENTRY);
  if (!cm_ldap_config_apply_domain (cfg, cancellable, error))
    return NULL;
  conn = cm_ldap_conn_connect_sync (cfg, cancellable, error);
  if (conn == NULL)
    return NULL;
  r->uri = g_strdup (cm_ldap_conn_get_uri (conn));
  r->kind = cm_ldap_conn_get_root_dse (conn)->kind;
  entry = find_entry (conn, cfg, r->email, ask, ask_data, cancellable, error);
  if (entry == NULL)
    return NULL;
  r->tls = cm_ldap_conn_is_tls (conn);
  r->insecure = !cm_ldap_conn_is_protected (conn); /* known after the bind (SASL layer) */
  r->dn = g_strdup (entry->dn);
  r->old_smime = entry->smime != NULL;
  if (entry->csn && g_strcmp0 (cm_ldap_config_get (cfg, "guard"), "values") != 0
      && !cm_ldap_conn_has_assertion (conn, &assertion, error))
    return NULL;
  r->guard = g_strdup (assertion ? "assertion" : "values");
  step_end (&t);

  if (r->unpublish)
    {
      plan_unpublish (r, entry);
      if (r->dry_run || r->unchanged)
        return g_steal_pointer (&r);
    }
  else
    {
      step_begin (&t, CM_LDAP_STEP_READ_CARD);
      card = cm_ldap_card_open_sync (cfg, cancellable, error);
      if (card == NULL || !cm_ldap_card_pick (card, cfg, r->email, at, &sign, &enc, error))
        return NULL;
      plan_publish (r, entry, sign, enc);
      step_end (&t);
      if (r->dry_run)
        return g_steal_pointer (&r);
      step_begin (&t, CM_LDAP_STEP_SIGN);
      r->new_smime
        = cm_ldap_card_sign_sync (card, sign, enc, at, ask, ask_data, cancellable, error);
      if (r->new_smime == NULL)
        return NULL;
      step_end (&t);
    }

  if (g_cancellable_set_error_if_cancelled (cancellable, error))
    return NULL;
  /* from here on the run goes to its end: a write cut off would leave the user guessing */
  cm_ldap_conn_set_cancellable (conn, FALSE);
  step_begin (&t, CM_LDAP_STEP_WRITE);
  if (!cm_ldap_conn_modify (conn, r->dn, r->old_values, r->new_values, r->new_smime,
                            r->delete_smime,
                            strcmp (r->guard, "assertion") == 0 ? entry->csn : NULL, error))
    return NULL;
  r->written = TRUE;
  step_end (&t);

  step_begin (&t, CM_LDAP_STEP_VERIFY);
  if (!verify (conn, cfg, r, error))
    return NULL;
  step_end (&t);
  return g_steal_pointer (&r);
}

static JsonNode *
certs_json (GPtrArray *certs)
{
  JsonArray *a = json_array_new ();

  for (guint i = 0; i < certs->len; i++)
    {
      CmCert *c = g_ptr_array_index (certs, i);
      JsonObject *o = json_object_new ();
      JsonArray *emails = json_array_new ();
      g_autofree char *nb = cm_time_format (cm_cert_get_not_before (c));
      g_autofree char *na = cm_time_format (cm_cert_get_not_after (c));
      for (const char *const *m = cm_cert_get_emails (c); m && *m; m++)
        json_array_add_string_element (emails, *m);
      json_object_set_string_member (o, "sha256", cm_cert_get_sha256 (c));
      json_object_set_string_member (o, "subject", cm_cert_get_subject (c));
      json_object_set_string_member (o, "role", cm_role_to_string (cm_cert_get_role (c)));
      json_object_set_string_member (o, "not_before", nb);
      json_object_set_string_member (o, "not_after", na);
      json_object_set_array_member (o, "emails", emails);
      json_array_add_object_element (a, o);
    }
  return json_node_init_array (json_node_alloc (), a);
}

JsonNode *
cm_ldap_result_to_json (CmLdapResult *r)
{
  JsonObject *o = json_object_new ();
  JsonObject *ms = json_object_new ();
  JsonObject *smime = json_object_new ();

  json_object_set_string_member (o, "action", r->unpublish ? "unpublish" : "publish");
  json_object_set_boolean_member (o, "dry_run", r->dry_run);
  json_object_set_string_member (o, "email", r->email);
  json_object_set_string_member (o, "dn", r->dn);
  json_object_set_string_member (o, "uri", r->uri);
  json_object_set_string_member (o, "server", cm_ldap_result_get_server (r));
  json_object_set_string_member (o, "rules", cm_ldap_kind_rules (r->kind));
  json_object_set_boolean_member (o, "tls", r->tls);
  json_object_set_boolean_member (o, "insecure", r->insecure);
  json_object_set_string_member (o, "guard", r->guard);
  json_object_set_boolean_member (o, "written", r->written);
  json_object_set_boolean_member (o, "unchanged", r->unchanged);
  json_object_set_boolean_member (o, "verified", r->verified);
  json_object_set_boolean_member (o, "reordered", r->reordered);
  json_object_set_int_member (o, "foreign_values", r->foreign);
  json_object_set_boolean_member (o, "moved_foreign", r->moved);
  json_object_set_member (o, "old", certs_json (r->old_certs));
  json_object_set_int_member (o, "old_values", r->old_values->len);
  json_object_set_member (o, "new", certs_json (r->new_certs));
  json_object_set_boolean_member (smime, "old", r->old_smime);
  json_object_set_boolean_member (smime, "delete", r->delete_smime);
  if (r->new_smime)
    {
      g_autofree char *sha = g_compute_checksum_for_bytes (G_CHECKSUM_SHA256, r->new_smime);
      json_object_set_int_member (smime, "new_bytes", (gint64)g_bytes_get_size (r->new_smime));
      json_object_set_string_member (smime, "new_sha256", sha);
    }
  json_object_set_object_member (o, "smime", smime);
  for (int s = 0; s < CM_LDAP_N_STEPS; s++)
    {
      g_autofree char *key = g_strdelimit (g_strdup (cm_ldap_step_to_string (s)), " ", '_');
      json_object_set_double_member (ms, key, r->ms[s]);
    }
  json_object_set_object_member (o, "ms", ms);
  return json_node_init_object (json_node_alloc (), o);
}
