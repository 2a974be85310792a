/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cm-json.c: the stable JSON shapes, documented in docs/cacmail.schema.json. Field names are
 * snake_case and never change meaning; new fields may be added. */
#include "cm-private.h"

static void
add_strv (JsonBuilder *b, const char *name, const char *const *v)
{
  json_builder_set_member_name (b, name);
  json_builder_begin_array (b);
  for (; v && *v; v++)
    json_builder_add_string_value (b, *v);
  json_builder_end_array (b);
}

void
cm_json_add_string_or_null (JsonBuilder *b, const char *name, const char *v)
{
  json_builder_set_member_name (b, name);
  if (v)
    json_builder_add_string_value (b, v);
  else
    json_builder_add_null_value (b);
}

void
cm_json_add_time (JsonBuilder *b, const char *name, gint64 t)
{
  g_autofree char *s = cm_time_format (t);
  json_builder_set_member_name (b, name);
  json_builder_add_string_value (b, s);
}

static void
add_fascn (JsonBuilder *b, const char *name, const CmFascn *f)
{
  json_builder_set_member_name (b, name);
  if (f == NULL)
    {
      json_builder_add_null_value (b);
      return;
    }
  json_builder_begin_object (b);
  cm_json_add_string_or_null (b, "agency_code", f->agency_code);
  cm_json_add_string_or_null (b, "system_code", f->system_code);
  cm_json_add_string_or_null (b, "credential_number", f->credential_number);
  cm_json_add_string_or_null (b, "cs", f->cs);
  cm_json_add_string_or_null (b, "ici", f->ici);
  cm_json_add_string_or_null (b, "pi", f->pi);
  cm_json_add_string_or_null (b, "oc", f->oc);
  cm_json_add_string_or_null (b, "oi", f->oi);
  cm_json_add_string_or_null (b, "poa", f->poa);
  cm_json_add_string_or_null (b, "hex", f->hex);
  json_builder_end_object (b);
}

static void
add_source (JsonBuilder *b, const CmSource *s)
{
  json_builder_begin_object (b);
  cm_json_add_string_or_null (b, "type", cm_source_kind_to_string (s->kind));
  cm_json_add_string_or_null (b, "path", s->path);
  cm_json_add_string_or_null (b, "slot", cm_slot_to_string (s->slot));
  cm_json_add_string_or_null (b, "card", s->card);
  if (s->kind == CM_SOURCE_NSS)
    {
      cm_json_add_string_or_null (b, "token", s->token);
      cm_json_add_string_or_null (b, "nickname", s->nickname);
    }
  json_builder_end_object (b);
}

static JsonNode *
finish (JsonBuilder *b)
{
  return json_builder_get_root (b);
}

JsonNode *
cm_json_cert (CmInventory *inv, CmCert *c, gint64 at)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  GPtrArray *sources = cm_cert_get_sources (c);
  CmPersona *p = inv ? cm_inventory_persona_of (inv, c) : NULL;
  const char *persona_id = p ? cm_persona_get_persona_id (p) : cm_cert_get_persona_id (c);

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "sources");
  json_builder_begin_array (b);
  for (guint i = 0; i < sources->len; i++)
    add_source (b, g_ptr_array_index (sources, i));
  json_builder_end_array (b);
  cm_json_add_string_or_null (b, "subject", cm_cert_get_subject (c));
  cm_json_add_string_or_null (b, "issuer", cm_cert_get_issuer (c));
  cm_json_add_string_or_null (b, "serial", cm_cert_get_serial (c));
  cm_json_add_string_or_null (b, "sha256", cm_cert_get_sha256 (c));
  cm_json_add_time (b, "not_before", cm_cert_get_not_before (c));
  cm_json_add_time (b, "not_after", cm_cert_get_not_after (c));
  json_builder_set_member_name (b, "valid_at");
  json_builder_add_boolean_value (b, cm_cert_is_valid_at (c, at));
  cm_json_add_string_or_null (b, "role", cm_role_to_string (cm_cert_get_role (c)));
  add_strv (b, "reasons", cm_cert_get_reasons (c));
  add_strv (b, "emails", cm_cert_get_emails (c));
  cm_json_add_string_or_null (b, "upn", cm_cert_get_upn (c));
  cm_json_add_string_or_null (b, "edipi", cm_cert_get_edipi (c));
  cm_json_add_string_or_null (b, "persona_id", persona_id);
  cm_json_add_string_or_null (b, "persona", p ? cm_persona_get_key (p) : NULL);
  add_fascn (b, "fascn", cm_cert_get_fascn (c));
  cm_json_add_string_or_null (b, "uuid", cm_cert_get_uuid (c));
  add_strv (b, "ekus", cm_cert_get_ekus (c));
  add_strv (b, "policies", cm_cert_get_policies (c));
  json_builder_end_object (b);
  return finish (b);
}

static void
add_card_cert (JsonBuilder *b, CmSlot slot, CmCert *c)
{
  json_builder_begin_object (b);
  cm_json_add_string_or_null (b, "slot", cm_slot_to_string (slot));
  cm_json_add_string_or_null (b, "sha256", cm_cert_get_sha256 (c));
  json_builder_end_object (b);
}

JsonNode *
cm_json_card (CmInventory *inv, CmCard *card)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  const CmChuid *chuid = cm_card_get_chuid (card);
  GPtrArray *certs = cm_card_get_certs (card);

  json_builder_begin_object (b);
  cm_json_add_string_or_null (b, "label", cm_card_get_label (card));
  cm_json_add_string_or_null (b, "identity", cm_card_get_identity (card));
  json_builder_set_member_name (b, "chuid");
  if (chuid)
    {
      json_builder_begin_object (b);
      add_fascn (b, "fascn", cm_chuid_get_fascn (chuid));
      cm_json_add_string_or_null (b, "guid", cm_chuid_get_guid (chuid));
      cm_json_add_string_or_null (b, "expiry", cm_chuid_get_expiry (chuid));
      cm_json_add_string_or_null (b, "cardholder_uuid", cm_chuid_get_cardholder_uuid (chuid));
      json_builder_set_member_name (b, "signed");
      json_builder_add_boolean_value (b, cm_chuid_has_signature (chuid));
      json_builder_end_object (b);
    }
  else
    json_builder_add_null_value (b);
  json_builder_set_member_name (b, "certs");
  json_builder_begin_array (b);
  /* One entry per occupied slot: the same cert in 9C and the CAC signing applet is two; a
   * token's certs whose slot it does not say come last, with a null slot. */
  for (guint slot = 1; slot <= CM_SLOT_CAC_ENC; slot++)
    {
      CmCert *c = cm_slot_to_string ((CmSlot)slot) ? cm_card_get_cert (card, (CmSlot)slot) : NULL;
      if (c)
        add_card_cert (b, (CmSlot)slot, c);
    }
  for (guint i = 0; i < certs->len; i++)
    if (cm_card_get_slot_of (card, g_ptr_array_index (certs, i)) == CM_SLOT_NONE)
      add_card_cert (b, CM_SLOT_NONE, g_ptr_array_index (certs, i));
  json_builder_end_array (b);
  json_builder_end_object (b);
  return finish (b);
}

JsonNode *
cm_json_problem (const CmProblem *p)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  GPtrArray *certs = cm_problem_get_certs (p);

  json_builder_begin_object (b);
  cm_json_add_string_or_null (b, "code", cm_problem_get_code (p));
  cm_json_add_string_or_null (b, "severity", cm_severity_to_string (cm_problem_get_severity (p)));
  cm_json_add_string_or_null (b, "message", cm_problem_get_message (p));
  cm_json_add_string_or_null (b, "hint", cm_problem_get_hint (p));
  json_builder_set_member_name (b, "certs");
  json_builder_begin_array (b);
  for (guint i = 0; i < certs->len; i++)
    json_builder_add_string_value (b, g_ptr_array_index (certs, i));
  json_builder_end_array (b);
  json_builder_end_object (b);
  return finish (b);
}

static void
add_cert_ref (JsonBuilder *b, const char *name, CmCert *c)
{
  cm_json_add_string_or_null (b, name, c ? cm_cert_get_sha256 (c) : NULL);
}

static void
add_problems (JsonBuilder *b, GPtrArray *problems)
{
  json_builder_set_member_name (b, "problems");
  json_builder_begin_array (b);
  for (guint i = 0; i < problems->len; i++)
    json_builder_add_value (b, cm_json_problem (g_ptr_array_index (problems, i)));
  json_builder_end_array (b);
}

JsonNode *
cm_json_picks (CmPicks *pk)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  GPtrArray *dec = cm_picks_get_decrypt_only (pk);
  GPtrArray *why = cm_picks_get_explanations (pk);
  CmPersona *persona = cm_picks_get_persona (pk);

  json_builder_begin_object (b);
  cm_json_add_string_or_null (b, "email", cm_picks_get_email (pk));
  cm_json_add_time (b, "at", cm_picks_get_at (pk));
  cm_json_add_string_or_null (b, "persona", persona ? cm_persona_get_key (persona) : NULL);
  add_cert_ref (b, "login", cm_picks_get_login (pk));
  add_cert_ref (b, "signing", cm_picks_get_signing (pk));
  add_cert_ref (b, "encryption", cm_picks_get_encryption (pk));
  json_builder_set_member_name (b, "decrypt_only");
  json_builder_begin_array (b);
  for (guint i = 0; i < dec->len; i++)
    json_builder_add_string_value (b, cm_cert_get_sha256 (g_ptr_array_index (dec, i)));
  json_builder_end_array (b);
  add_problems (b, cm_picks_get_problems (pk));
  json_builder_set_member_name (b, "explanations");
  json_builder_begin_array (b);
  for (guint i = 0; i < why->len; i++)
    json_builder_add_string_value (b, g_ptr_array_index (why, i));
  json_builder_end_array (b);
  json_builder_end_object (b);
  return finish (b);
}

/* One certificate of the certs report, with its chain status under @trust. */
static JsonNode *
report_cert (CmInventory *inv, CmCert *c, gint64 at, CmTrust *trust)
{
  JsonNode *n = cm_json_cert (inv, c, at);

  if (trust)
    json_object_set_string_member (
      json_node_get_object (n), "chain",
      cm_chain_status_to_string (cm_trust_build_chain (trust, c, at, NULL)));
  return n;
}

/* @node as pretty JSON, every line after the first indented by @indent spaces. */
static void
write_indented (JsonNode *node, guint indent, CmJsonWriteFunc write, gpointer data)
{
  g_autofree char *text = cm_json_to_string (node);
  g_autofree char *pad = g_strnfill (indent, ' ');
  g_auto (GStrv) lines = g_strsplit (g_strchomp (text), "\n", -1);

  for (guint i = 0; lines[i]; i++)
    {
      if (i)
        {
          write ("\n", data);
          write (pad, data);
        }
      write (lines[i], data);
    }
}

void
cm_json_certs_report_write (CmInventory *inv, gint64 at, CmTrust *trust, CmJsonWriteFunc write,
                            gpointer data)
{
  GPtrArray *certs = cm_inventory_get_certs (inv);
  GPtrArray *cards = cm_inventory_get_cards (inv);
  g_autoptr (GPtrArray) problems = cm_select_check_inventory (inv, at, trust);
  g_autoptr (JsonArray) card_list = json_array_new ();
  g_autoptr (JsonNode) card_node = json_node_new (JSON_NODE_ARRAY);
  g_autoptr (JsonBuilder) pb = json_builder_new ();
  g_autoptr (JsonNode) problem_node = NULL;

  write ("{\n  \"certs\" : [", data);
  for (guint i = 0; i < certs->len; i++)
    {
      g_autoptr (JsonNode) n = report_cert (inv, g_ptr_array_index (certs, i), at, trust);
      write (i ? ",\n    " : "\n    ", data);
      write_indented (n, 4, write, data);
    }
  write (certs->len ? "\n  ],\n  \"cards\" : " : "],\n  \"cards\" : ", data);
  for (guint i = 0; i < cards->len; i++)
    json_array_add_element (card_list, cm_json_card (inv, g_ptr_array_index (cards, i)));
  json_node_set_array (card_node, card_list);
  write_indented (card_node, 2, write, data);
  write (",\n  \"problems\" : ", data);
  json_builder_begin_object (pb);
  add_problems (pb, problems);
  json_builder_end_object (pb);
  problem_node = json_builder_get_root (pb);
  write_indented (json_object_get_member (json_node_get_object (problem_node), "problems"), 2,
                  write, data);
  write ("\n}\n", data);
}

JsonNode *
cm_json_certs_report (CmInventory *inv, gint64 at, CmTrust *trust)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  GPtrArray *certs = cm_inventory_get_certs (inv);
  GPtrArray *cards = cm_inventory_get_cards (inv);
  g_autoptr (GPtrArray) problems = cm_select_check_inventory (inv, at, trust);

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "certs");
  json_builder_begin_array (b);
  for (guint i = 0; i < certs->len; i++)
    {
      json_builder_add_value (b, report_cert (inv, g_ptr_array_index (certs, i), at, trust));
    }
  json_builder_end_array (b);
  json_builder_set_member_name (b, "cards");
  json_builder_begin_array (b);
  for (guint i = 0; i < cards->len; i++)
    json_builder_add_value (b, cm_json_card (inv, g_ptr_array_index (cards, i)));
  json_builder_end_array (b);
  add_problems (b, problems);
  json_builder_end_object (b);
  return finish (b);
}

char *
cm_json_to_string (JsonNode *node)
{
  g_autoptr (JsonGenerator) gen = json_generator_new ();
  g_autofree char *text = NULL;

  json_generator_set_pretty (gen, TRUE);
  json_generator_set_indent (gen, 2);
  json_generator_set_root (gen, node);
  text = json_generator_to_data (gen, NULL);
  return g_strconcat (text, "\n", NULL);
}
