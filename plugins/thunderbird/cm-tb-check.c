/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cm-tb-check.c: is an identity's S/MIME setting stale, and what does a fix set? Each dbKey is
 * resolved as Thunderbird resolves it (cm-tb-identities.c), then judged against the picks of the
 * core (cm_select_for_email) for the identity's address; a fix writes the picks' name and dbKey,
 * never sign_mail or encryptionpolicy. Modelled on plugins/evolution/cm-evo-check.c. */
#include "cm-tb-private.h"

enum
{
  SIG = 0,
  ENC = 1,
};

struct _CmTbIdentity
{
  CmTbSettings s;      /* a copy */
  CmCert *cur[2];      /* what the dbKeys resolve to, or NULL */
  CmCert *prop[2];     /* the picks, when Thunderbird sees them */
  GPtrArray *reasons;  /* char* codes (static strings) */
  GPtrArray *messages; /* char* owned */
  JsonNode *problems;  /* the picks' problems, as `cacmail pick --json` shows them */
  GPtrArray *changes;  /* CmTbPrefChange* */
};

static void add_reason (CmTbIdentity *id, const char *code, const char *fmt, ...)
  G_GNUC_PRINTF (3, 4);

static void
add_reason (CmTbIdentity *id, const char *code, const char *fmt, ...)
{
  va_list ap;

  if (g_ptr_array_find_with_equal_func (id->reasons, code, g_str_equal, NULL))
    return;
  va_start (ap, fmt);
  g_ptr_array_add (id->reasons, (gpointer)code);
  g_ptr_array_add (id->messages, g_strdup_vprintf (fmt, ap));
  va_end (ap);
}

/* "signing-cert-expired" or "encryption-cert-expired": codes are static strings. */
#define CODE(w, tail) ((w) == SIG ? "signing-" tail : "encryption-" tail)

static const char *
what (int w)
{
  return w == SIG ? "signing" : "encryption";
}

static const char *
set_name (CmTbIdentity *id, int w)
{
  return w == SIG ? id->s.signing_name : id->s.encryption_name;
}

static const char *
set_dbkey (CmTbIdentity *id, int w)
{
  return w == SIG ? id->s.signing_dbkey : id->s.encryption_dbkey;
}

static gboolean
empty (const char *s)
{
  return s == NULL || *s == '\0';
}

/* The certificate, for people: its name as Thunderbird shows it, and its expiry. */
static char *
describe (CmCert *c)
{
  g_autofree char *name = cm_tb_cert_display_name (c);
  g_autofree char *until = cm_time_format_date (cm_cert_get_not_after (c));
  const char *role = cm_role_to_string (cm_cert_get_role (c));
  return g_strdup_printf ("'%s' (%s, until %s)", name, role, until);
}

/* What the dbKey (and name) of setting @w say, and whether Thunderbird can use it. */
static void
judge_setting (CmTbIdentity *id, CmInventory *inv, int w, CmCert *pick)
{
  const char *name = set_name (id, w), *key = set_dbkey (id, w);
  CmCert *c = NULL;

  if (empty (name) && empty (key))
    {
      if (pick)
        add_reason (id, CODE (w, "not-set"), "no %s certificate is set", what (w));
      return;
    }
  if (empty (key))
    {
      add_reason (id, CODE (w, "dbkey-not-set"),
                  "the %s certificate '%s' is set by name only: Thunderbird finds a certificate "
                  "by its dbKey, and a card's signing and encryption certificates share a name",
                  what (w), name);
      return;
    }
  switch (cm_tb_resolve_dbkey (inv, key, &c))
    {
    case CM_TB_DBKEY_MALFORMED:
      add_reason (id, CODE (w, "dbkey-malformed"),
                  "the %s certificate's dbKey is not a dbKey Thunderbird can read", what (w));
      return;
    case CM_TB_DBKEY_NOT_FOUND:
      add_reason (id, CODE (w, "dbkey-not-found"),
                  "the %s certificate%s%s%s is not among the certificates Thunderbird sees (an "
                  "old card's, or the card is not inserted, or its module is not registered): "
                  "Thunderbird fails at send time",
                  what (w), empty (name) ? "" : " '", empty (name) ? "" : name,
                  empty (name) ? "" : "'");
      return;
    case CM_TB_DBKEY_FOUND: break;
    }
  id->cur[w] = c;
  if (empty (name))
    add_reason (id, CODE (w, "name-not-set"),
                "the %s certificate has a dbKey but no name: Thunderbird's compose window "
                "offers S/MIME only when the name is set too",
                what (w));
}

/* What the resolved certificate of setting @w is, against the pick. */
static void
judge_cert (CmTbIdentity *id, CmInventory *inv, int w, CmCert *pick, CmPersona *persona,
            GPtrArray *inserted, gint64 at)
{
  CmCert *c = id->cur[w];
  g_autofree char *d = NULL;
  CmPersona *owner;

  if (c == NULL)
    return;
  d = describe (c);
  if (cm_inventory_is_decrypt_only (inv, cm_cert_get_sha256 (c)))
    add_reason (id, CODE (w, "cert-recovered"),
                "the %s certificate %s is a recovered key: it may only decrypt old mail", what (w),
                d);
  if (cm_cert_get_not_after (c) < at)
    add_reason (id, CODE (w, "cert-expired"), "the %s certificate %s has expired", what (w), d);
  else if (!cm_cert_is_valid_at (c, at))
    add_reason (id, CODE (w, "cert-not-yet-valid"), "the %s certificate %s is not valid yet",
                what (w), d);
  if (!cm_cert_has_email (c, id->s.address))
    add_reason (id, CODE (w, "cert-email-mismatch"), "the %s certificate %s is not for %s",
                what (w), d, id->s.address);
  owner = cm_inventory_persona_of (inv, c);
  if (persona && owner && owner != persona)
    add_reason (
      id, CODE (w, "cert-other-persona"),
      "the %s certificate %s belongs to another persona (%s%s%s) than the one for %s", what (w), d,
      cm_persona_get_key (owner), cm_persona_get_association (owner) ? ", " : "",
      cm_persona_get_association (owner) ? cm_persona_get_association (owner) : "", id->s.address);
  if (w == SIG && cm_cert_get_role (c) == CM_ROLE_PIV_AUTH)
    add_reason (id, "signing-cert-is-piv-auth",
                "the signing certificate %s is the PIV Authentication (login) certificate", d);
  if (w == SIG && cm_cert_has_key_usage (c)
      && !(cm_cert_get_key_usage (c) & (CM_KU_DIGITAL_SIGNATURE | CM_KU_NON_REPUDIATION)))
    add_reason (id, "signing-cert-cannot-sign",
                "the signing certificate %s cannot sign (its key usage is for encryption)", d);
  if (w == ENC && cm_cert_get_role (c) != CM_ROLE_EMAIL_ENCRYPTION
      && !(cm_cert_get_key_usage (c) & (CM_KU_KEY_ENCIPHERMENT | CM_KU_KEY_AGREEMENT)))
    add_reason (id, "encryption-cert-signing-only",
                "the encryption certificate %s can only sign: mail to you could not be "
                "encrypted with it",
                d);
  if (inserted && inserted->len && pick
      && !g_ptr_array_find_with_equal_func (inserted, cm_cert_get_sha256 (c), g_str_equal, NULL))
    add_reason (id, CODE (w, "cert-not-on-inserted-card"),
                "the %s certificate %s is not on the card in the reader", what (w), d);
  if (pick && c != pick && cm_cert_get_not_before (pick) > cm_cert_get_not_before (c))
    add_reason (id, CODE (w, "newer-cert"), "a newer %s certificate is available", what (w));
}

static void
add_change (CmTbIdentity *id, const char *key, const char *old, const char *now)
{
  g_autofree char *name = g_strdup_printf ("mail.identity.%s.%s", id->s.id, key);
  CmTbPrefValue o = { .type = old ? CM_TB_PREF_STRING : CM_TB_PREF_UNSET, .string = (char *)old };
  CmTbPrefValue n = { .type = CM_TB_PREF_STRING, .string = (char *)now };

  g_ptr_array_add (id->changes, cm_tb_pref_change_new (name, &o, &n));
}

/* A stale identity's fix: for each setting with a proposal that differs, name and dbKey. */
static void
plan_changes (CmTbIdentity *id)
{
  if (id->reasons->len == 0)
    return;
  for (int w = SIG; w <= ENC; w++)
    {
      g_autofree char *name = NULL, *key = NULL;
      if (id->prop[w] == NULL)
        continue;
      name = cm_tb_cert_display_name (id->prop[w]);
      key = cm_nss_cert_dbkey (id->prop[w]);
      if (g_strcmp0 (name, set_name (id, w)) == 0 && g_strcmp0 (key, set_dbkey (id, w)) == 0)
        continue;
      add_change (id, w == SIG ? "signing_cert_name" : "encryption_cert_name", set_name (id, w),
                  name);
      add_change (id, w == SIG ? "signing_cert_dbkey" : "encryption_cert_dbkey", set_dbkey (id, w),
                  key);
    }
}

CmTbIdentity *
cm_tb_identity_check (const CmTbSettings *s, CmInventory *inv, GPtrArray *inserted, gint64 at)
{
  CmTbIdentity *id = g_new0 (CmTbIdentity, 1);
  g_autoptr (CmPicks) picks = cm_select_for_email (inv, s->address, at, NULL);
  CmCert *pick[2] = { cm_picks_get_signing (picks), cm_picks_get_encryption (picks) };
  CmPersona *persona = cm_picks_get_persona (picks);

  id->s = *s;
  id->s.id = g_strdup (s->id);
  id->s.name = g_strdup (s->name);
  id->s.address = g_strdup (s->address);
  id->s.signing_name = g_strdup (s->signing_name);
  id->s.signing_dbkey = g_strdup (s->signing_dbkey);
  id->s.encryption_name = g_strdup (s->encryption_name);
  id->s.encryption_dbkey = g_strdup (s->encryption_dbkey);
  id->reasons = g_ptr_array_new ();
  id->messages = g_ptr_array_new_with_free_func (g_free);
  id->changes = g_ptr_array_new_with_free_func ((GDestroyNotify)cm_tb_pref_change_free);
  {
    g_autoptr (JsonNode) all = cm_json_picks (picks);
    id->problems = json_node_ref (json_object_get_member (json_node_get_object (all), "problems"));
  }
  for (int w = SIG; w <= ENC; w++)
    {
      judge_setting (id, inv, w, pick[w]);
      judge_cert (id, inv, w, pick[w], persona, inserted, at);
      if (pick[w] && cm_tb_seen_by_thunderbird (pick[w]))
        id->prop[w] = pick[w];
      else if (pick[w] && id->cur[w] != pick[w])
        add_reason (id, "picked-cert-not-in-nss",
                    "the right certificate is on the card but Thunderbird does not see it: close "
                    "Thunderbird and run 'cacmail nss register --client thunderbird'");
    }
  plan_changes (id);
  g_ptr_array_add (id->reasons, NULL);
  g_ptr_array_add (id->messages, NULL);
  return id;
}

void
cm_tb_identity_free (CmTbIdentity *id)
{
  if (id == NULL)
    return;
  g_free (id->s.id);
  g_free (id->s.name);
  g_free (id->s.address);
  g_free (id->s.signing_name);
  g_free (id->s.signing_dbkey);
  g_free (id->s.encryption_name);
  g_free (id->s.encryption_dbkey);
  g_ptr_array_unref (id->reasons);
  g_ptr_array_unref (id->messages);
  g_ptr_array_unref (id->changes);
  if (id->problems)
    json_node_unref (id->problems);
  g_free (id);
}

const CmTbSettings *
cm_tb_identity_get_settings (CmTbIdentity *id)
{
  return &id->s;
}

gboolean
cm_tb_identity_is_stale (CmTbIdentity *id)
{
  return id->reasons->len > 1; /* the array ends with NULL */
}

const char *const *
cm_tb_identity_get_reasons (CmTbIdentity *id)
{
  return (const char *const *)id->reasons->pdata;
}

const char *const *
cm_tb_identity_get_messages (CmTbIdentity *id)
{
  return (const char *const *)id->messages->pdata;
}

JsonArray *
cm_tb_identity_get_problems (CmTbIdentity *id)
{
  return json_node_get_array (id->problems);
}

CmCert *
cm_tb_identity_get_current_cert (CmTbIdentity *id, gboolean signing)
{
  return id->cur[signing ? SIG : ENC];
}

CmCert *
cm_tb_identity_get_proposed_cert (CmTbIdentity *id, gboolean signing)
{
  return id->prop[signing ? SIG : ENC];
}

GPtrArray *
cm_tb_identity_get_changes (CmTbIdentity *id)
{
  return id->changes;
}

static void
member_str (JsonBuilder *b, const char *name, const char *v)
{
  cm_json_add_string_or_null (b, name, v);
}

/* S = {"name", "dbkey", "sha256"} or null. */
static void
member_setting (JsonBuilder *b, const char *member, const char *name, const char *dbkey,
                CmCert *cert)
{
  json_builder_set_member_name (b, member);
  if (empty (name) && empty (dbkey) && cert == NULL)
    {
      json_builder_add_null_value (b);
      return;
    }
  json_builder_begin_object (b);
  member_str (b, "name", empty (name) ? NULL : name);
  member_str (b, "dbkey", empty (dbkey) ? NULL : dbkey);
  member_str (b, "sha256", cert ? cm_cert_get_sha256 (cert) : NULL);
  json_builder_end_object (b);
}

static void
member_proposed (JsonBuilder *b, const char *member, CmCert *cert)
{
  g_autofree char *name = cert ? cm_tb_cert_display_name (cert) : NULL;
  g_autofree char *key = cert ? cm_nss_cert_dbkey (cert) : NULL;
  member_setting (b, member, name, key, cert);
}

JsonNode *
cm_tb_identity_to_json (CmTbIdentity *id)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  const char *const *r = cm_tb_identity_get_reasons (id);
  const char *const *m = cm_tb_identity_get_messages (id);

  json_builder_begin_object (b);
  member_str (b, "id", id->s.id);
  member_str (b, "name", id->s.name);
  member_str (b, "address", id->s.address);
  member_str (b, "state", cm_tb_identity_is_stale (id) ? "stale" : "ok");
  json_builder_set_member_name (b, "reasons");
  json_builder_begin_array (b);
  for (; *r; r++)
    json_builder_add_string_value (b, *r);
  json_builder_end_array (b);
  json_builder_set_member_name (b, "messages");
  json_builder_begin_array (b);
  for (; *m; m++)
    json_builder_add_string_value (b, *m);
  json_builder_end_array (b);
  json_builder_set_member_name (b, "problems");
  json_builder_add_value (b, json_node_copy (id->problems));
  json_builder_set_member_name (b, "current");
  json_builder_begin_object (b);
  member_setting (b, "signing", id->s.signing_name, id->s.signing_dbkey, id->cur[SIG]);
  member_setting (b, "encryption", id->s.encryption_name, id->s.encryption_dbkey, id->cur[ENC]);
  json_builder_end_object (b);
  json_builder_set_member_name (b, "proposed");
  json_builder_begin_object (b);
  member_proposed (b, "signing", id->prop[SIG]);
  member_proposed (b, "encryption", id->prop[ENC]);
  json_builder_end_object (b);
  json_builder_end_object (b);
  return json_builder_get_root (b);
}
