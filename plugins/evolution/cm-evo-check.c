/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cm-evo-check.c: is an identity's S/MIME setting stale? Evolution (Camel) finds a certificate
 * by NSS nickname and usage (CERT_FindUserCertByUsage), so we resolve each nickname the same
 * way among the NSS certificates, then judge what it resolves to against the picks. */
#include "cm-evo.h"

struct _CmEvoIdentity
{
  CmEvoSettings cur; /* strings owned below */
  char *uid, *name, *address, *signing, *encryption, *algorithm;
  char *proposed_signing, *proposed_encryption;
  GPtrArray *reasons;  /* char* codes (static strings) */
  GPtrArray *messages; /* char* owned */
  JsonNode *problems;  /* the picks' problems, as `cacmail pick --json` shows them */
};

G_DEFINE_QUARK (cm - evo - error - quark, cm_evo_error)

static void add_reason (CmEvoIdentity *id, const char *code, const char *fmt, ...)
  G_GNUC_PRINTF (3, 4);

static void
add_reason (CmEvoIdentity *id, const char *code, const char *fmt, ...)
{
  va_list ap;

  if (g_ptr_array_find_with_equal_func (id->reasons, code, g_str_equal, NULL))
    return;
  va_start (ap, fmt);
  g_ptr_array_add (id->reasons, (gpointer)code);
  g_ptr_array_add (id->messages, g_strdup_vprintf (fmt, ap));
  va_end (ap);
}

static gboolean
has_nickname (CmCert *c, const char *nick)
{
  GPtrArray *sources = cm_cert_get_sources (c);
  for (guint i = 0; i < sources->len; i++)
    {
      CmSource *s = g_ptr_array_index (sources, i);
      if (s->kind == CM_SOURCE_NSS && g_strcmp0 (s->nickname, nick) == 0)
        return TRUE;
    }
  return FALSE;
}

/* The cert Camel would use for @nick and @role: of the certs with that nickname, one whose
 * key usage fits, valid ones first. */
static CmCert *
resolve (CmInventory *inv, const char *nick, CmRole role, gint64 at, guint *n_with_nick)
{
  GPtrArray *certs = cm_inventory_get_certs (inv);
  CmCert *best = NULL;
  int best_rank = -1;

  *n_with_nick = 0;
  for (guint i = 0; i < certs->len; i++)
    {
      CmCert *c = g_ptr_array_index (certs, i);
      int rank;
      if (!has_nickname (c, nick))
        continue;
      (*n_with_nick)++;
      rank = (cm_cert_get_role (c) == role ? 2 : 0) + (cm_cert_is_valid_at (c, at) ? 1 : 0);
      if (rank > best_rank)
        best = c, best_rank = rank;
    }
  return best;
}

/* Two certs of the same usage under one nickname but for different people or personas:
 * Camel takes whichever NSS finds first. */
static gboolean
nickname_is_ambiguous (CmInventory *inv, const char *nick, CmRole role)
{
  GPtrArray *certs = cm_inventory_get_certs (inv);
  CmCert *first = NULL;

  for (guint i = 0; i < certs->len; i++)
    {
      CmCert *c = g_ptr_array_index (certs, i);
      if (!has_nickname (c, nick) || cm_cert_get_role (c) != role)
        continue;
      if (first == NULL)
        first = c;
      else if (cm_inventory_persona_of (inv, c) != cm_inventory_persona_of (inv, first)
               || g_strcmp0 (cm_cert_get_emails (c)[0], cm_cert_get_emails (first)[0]) != 0)
        return TRUE;
    }
  return FALSE;
}

static void
judge (CmEvoIdentity *id, CmInventory *inv, const char *nick, CmRole role, CmCert *pick,
       GPtrArray *inserted, gint64 at)
{
  gboolean sign = role == CM_ROLE_EMAIL_SIGNING;
  const char *what = sign ? "signing" : "encryption";
  guint n = 0;
  CmCert *c;

  if (nick == NULL || *nick == '\0')
    {
      if (pick)
        add_reason (id, sign ? "signing-not-set" : "encryption-not-set", "no %s certificate is set",
                    what);
      return;
    }
  c = resolve (inv, nick, role, at, &n);
  if (c && n > 1 && nickname_is_ambiguous (inv, nick, role))
    add_reason (id, sign ? "signing-nickname-ambiguous" : "encryption-nickname-ambiguous",
                "the nickname '%s' names %s certificates of different addresses or personas: "
                "Evolution may pick the wrong one; keep only the card of this identity inserted",
                nick, what);
  if (c == NULL)
    {
      add_reason (id, sign ? "signing-nickname-not-found" : "encryption-nickname-not-found",
                  "the %s certificate '%s' is not in the NSS database (card not inserted, or "
                  "module not registered)",
                  what, nick);
      return;
    }
  if (cm_inventory_is_decrypt_only (inv, cm_cert_get_sha256 (c)))
    add_reason (id, sign ? "signing-cert-recovered" : "encryption-cert-recovered",
                "the %s certificate '%s' is a recovered key: it may only decrypt old mail", what,
                nick);
  if (cm_cert_get_not_after (c) < at)
    add_reason (id, sign ? "signing-cert-expired" : "encryption-cert-expired",
                "the %s certificate '%s' has expired", what, nick);
  else if (!cm_cert_is_valid_at (c, at))
    add_reason (id, sign ? "signing-cert-not-yet-valid" : "encryption-cert-not-yet-valid",
                "the %s certificate '%s' is not valid yet", what, nick);
  if (!cm_cert_has_email (c, id->address))
    add_reason (id, sign ? "signing-cert-email-mismatch" : "encryption-cert-email-mismatch",
                "the %s certificate '%s' is not for %s", what, nick, id->address);
  if (sign && cm_cert_get_role (c) == CM_ROLE_PIV_AUTH)
    add_reason (id, "signing-cert-is-piv-auth",
                "the signing certificate '%s' is the PIV Authentication (login) certificate", nick);
  if (!sign && cm_cert_get_role (c) != CM_ROLE_EMAIL_ENCRYPTION
      && !(cm_cert_get_key_usage (c) & (CM_KU_KEY_ENCIPHERMENT | CM_KU_KEY_AGREEMENT)))
    add_reason (id, "encryption-cert-signing-only",
                "the encryption certificate '%s' can only sign: mail to you could not be "
                "encrypted with it",
                nick);
  if (inserted && inserted->len && pick
      && !g_ptr_array_find_with_equal_func (inserted, cm_cert_get_sha256 (c), g_str_equal, NULL))
    add_reason (id,
                sign ? "signing-cert-not-on-inserted-card" : "encryption-cert-not-on-inserted-card",
                "the %s certificate '%s' is not on the card in the reader", what, nick);
  if (pick && c != pick && cm_cert_get_not_before (pick) > cm_cert_get_not_before (c))
    add_reason (id, sign ? "signing-newer-cert" : "encryption-newer-cert",
                "a newer %s certificate is available", what);
}

/* Who @c belongs to, for a person choosing which card to pull: persona and address. */
static char *
describe_owner (CmInventory *inv, CmCert *c)
{
  CmPersona *p = cm_inventory_persona_of (inv, c);
  const char *assoc = p ? cm_persona_get_association (p) : NULL;
  const char *email = cm_cert_get_emails (c)[0];

  return g_strdup_printf ("the card of persona %s%s%s%s%s%s", p ? cm_persona_get_key (p) : "?",
                          assoc ? " (" : "", assoc ? assoc : "", assoc ? ")" : "",
                          email ? ", " : "", email ? email : "");
}

/* The nickname to propose for @pick, or NULL when NSS would resolve that nickname to another
 * card's valid cert of the same usage (OpenSC names a person's persona cards alike): then the
 * reason says which card to remove. */
static char *
propose (CmEvoIdentity *id, CmInventory *inv, CmCert *pick, CmRole role, gint64 at)
{
  const char *nick = pick ? cm_nss_cert_nickname (pick) : NULL;
  GPtrArray *certs = cm_inventory_get_certs (inv);
  gboolean sign = role == CM_ROLE_EMAIL_SIGNING;

  for (guint i = 0; nick && i < certs->len; i++)
    {
      CmCert *c = g_ptr_array_index (certs, i);
      g_autofree char *other = NULL;
      if (c == pick || !has_nickname (c, nick) || cm_cert_get_role (c) != role
          || !cm_cert_is_valid_at (c, at))
        continue;
      other = describe_owner (inv, c);
      add_reason (id, sign ? "signing-nickname-shared" : "encryption-nickname-shared",
                  "the %s certificate for %s is named '%s', and so is a certificate on another "
                  "card: remove %s from its reader, then run Fix",
                  sign ? "signing" : "encryption", id->address, nick, other);
      return NULL;
    }
  return g_strdup (nick);
}

CmEvoIdentity *
cm_evo_identity_check (const CmEvoSettings *s, CmInventory *inv, GPtrArray *inserted, gint64 at)
{
  CmEvoIdentity *id = g_new0 (CmEvoIdentity, 1);
  g_autoptr (CmPicks) picks = NULL;
  CmCert *sign, *enc;

  id->uid = g_strdup (s->uid);
  id->name = g_strdup (s->name);
  id->address = g_strdup (s->address);
  id->signing = g_strdup (s->signing);
  id->encryption = g_strdup (s->encryption);
  id->algorithm = g_strdup (s->signing_algorithm);
  id->cur = *s;
  id->cur.uid = id->uid;
  id->cur.name = id->name;
  id->cur.address = id->address;
  id->cur.signing = id->signing;
  id->cur.encryption = id->encryption;
  id->cur.signing_algorithm = id->algorithm;
  id->reasons = g_ptr_array_new ();
  id->messages = g_ptr_array_new_with_free_func (g_free);

  picks = cm_select_for_email (inv, s->address, at, NULL);
  sign = cm_picks_get_signing (picks);
  enc = cm_picks_get_encryption (picks);
  {
    g_autoptr (JsonNode) all = cm_json_picks (picks);
    id->problems = json_node_ref (json_object_get_member (json_node_get_object (all), "problems"));
  }
  judge (id, inv, s->signing, CM_ROLE_EMAIL_SIGNING, sign, inserted, at);
  judge (id, inv, s->encryption, CM_ROLE_EMAIL_ENCRYPTION, enc, inserted, at);
  id->proposed_signing = propose (id, inv, sign, CM_ROLE_EMAIL_SIGNING, at);
  id->proposed_encryption = propose (id, inv, enc, CM_ROLE_EMAIL_ENCRYPTION, at);
  if ((sign && !id->proposed_signing && cm_nss_cert_nickname (sign) == NULL)
      || (enc && !id->proposed_encryption && cm_nss_cert_nickname (enc) == NULL))
    add_reason (id, "picked-cert-not-in-nss",
                "the right certificate is on the card but not visible to Evolution: run "
                "'cacmail nss register' while Evolution is closed");
  g_ptr_array_add (id->reasons, NULL);
  g_ptr_array_add (id->messages, NULL);
  return id;
}

void
cm_evo_identity_free (CmEvoIdentity *id)
{
  if (id == NULL)
    return;
  g_free (id->uid);
  g_free (id->name);
  g_free (id->address);
  g_free (id->signing);
  g_free (id->encryption);
  g_free (id->algorithm);
  g_free (id->proposed_signing);
  g_free (id->proposed_encryption);
  g_ptr_array_unref (id->reasons);
  g_ptr_array_unref (id->messages);
  if (id->problems)
    json_node_unref (id->problems);
  g_free (id);
}

const char *
cm_evo_identity_get_uid (CmEvoIdentity *id)
{
  return id->uid;
}
const char *
cm_evo_identity_get_address (CmEvoIdentity *id)
{
  return id->address;
}
const char *
cm_evo_identity_get_name (CmEvoIdentity *id)
{
  return id->name;
}
const CmEvoSettings *
cm_evo_identity_get_current (CmEvoIdentity *id)
{
  return &id->cur;
}
const char *
cm_evo_identity_get_proposed_signing (CmEvoIdentity *id)
{
  return id->proposed_signing;
}
const char *
cm_evo_identity_get_proposed_encryption (CmEvoIdentity *id)
{
  return id->proposed_encryption;
}

gboolean
cm_evo_identity_is_stale (CmEvoIdentity *id)
{
  return id->reasons->len > 1; /* the array ends with NULL */
}

const char *const *
cm_evo_identity_get_reasons (CmEvoIdentity *id)
{
  return (const char *const *)id->reasons->pdata;
}

const char *const *
cm_evo_identity_get_messages (CmEvoIdentity *id)
{
  return (const char *const *)id->messages->pdata;
}

JsonArray *
cm_evo_identity_get_problems (CmEvoIdentity *id)
{
  return json_node_get_array (id->problems);
}

/* A fix changes something: a proposal that differs from the setting, or an empty algorithm. */
gboolean
cm_evo_identity_can_fix (CmEvoIdentity *id)
{
  gboolean sig = id->proposed_signing && g_strcmp0 (id->proposed_signing, id->signing) != 0;
  gboolean enc
    = id->proposed_encryption && g_strcmp0 (id->proposed_encryption, id->encryption) != 0;
  return cm_evo_identity_is_stale (id) && (sig || enc);
}

static void
member_str (JsonBuilder *b, const char *name, const char *v)
{
  json_builder_set_member_name (b, name);
  if (v && *v)
    json_builder_add_string_value (b, v);
  else
    json_builder_add_null_value (b);
}

JsonNode *
cm_evo_identity_to_json (CmEvoIdentity *id)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  const char *const *r = cm_evo_identity_get_reasons (id);
  const char *const *m = cm_evo_identity_get_messages (id);

  json_builder_begin_object (b);
  member_str (b, "uid", id->uid);
  member_str (b, "name", id->name);
  member_str (b, "address", id->address);
  member_str (b, "state", cm_evo_identity_is_stale (id) ? "stale" : "ok");
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
  json_builder_set_member_name (b, "current");
  json_builder_begin_object (b);
  member_str (b, "signing", id->signing);
  member_str (b, "encryption", id->encryption);
  member_str (b, "signing_algorithm", id->algorithm);
  json_builder_set_member_name (b, "sign_by_default");
  json_builder_add_boolean_value (b, id->cur.sign_by_default);
  json_builder_set_member_name (b, "encrypt_by_default");
  json_builder_add_boolean_value (b, id->cur.encrypt_by_default);
  json_builder_set_member_name (b, "encrypt_to_self");
  json_builder_add_boolean_value (b, id->cur.encrypt_to_self);
  json_builder_end_object (b);
  json_builder_set_member_name (b, "proposed");
  json_builder_begin_object (b);
  member_str (b, "signing", id->proposed_signing);
  member_str (b, "encryption", id->proposed_encryption);
  json_builder_end_object (b);
  json_builder_set_member_name (b, "problems");
  json_builder_add_value (b, json_node_copy (id->problems));
  json_builder_end_object (b);
  return json_builder_get_root (b);
}
