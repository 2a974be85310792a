/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cm-native-tb.c: "check", "fix", "fixed" and "undo": the S/MIME settings of the profile's
 * identities against cacmail's picks (libcacmail-thunderbird, as `cacmail thunderbird check`),
 * and the pref changes that fix them. While Thunderbird runs prefs.js must not be edited (it is
 * rewritten on exit): the add-on sets the prefs through Thunderbird's own pref service (its
 * experiment API), then reports what it set ("fixed") so that "undo" can give it back. */
#include "cm-native.h"
#include <cm-tb.h>
#include <string.h>

const char *
cm_native_get_string (JsonObject *request, const char *member, gboolean required, GError **error)
{
  JsonNode *n = json_object_get_member (request, member);

  if (n && json_node_get_value_type (n) == G_TYPE_STRING
      && (!required || *json_node_get_string (n)))
    return json_node_get_string (n);
  if (n == NULL && !required)
    return NULL;
  g_set_error (error, CM_NATIVE_ERROR, CM_NATIVE_ERROR_BAD_REQUEST,
               "the request has no usable \"%s\" (a non-empty string): update the add-on", member);
  return NULL;
}

/* The sha256 of the certificates on the cards NSS sees now (the profile's card module lists
 * only inserted cards), or NULL when it sees none: then "not on the inserted card" is not
 * judged, as `cacmail thunderbird check` does without pcscd. */
static GPtrArray *
inserted_certs (CmInventory *inv)
{
  GPtrArray *cards = cm_inventory_get_cards (inv);
  GPtrArray *out = NULL;

  for (guint i = 0; i < cards->len; i++)
    {
      GPtrArray *certs = cm_card_get_certs (g_ptr_array_index (cards, i));
      if (out == NULL)
        out = g_ptr_array_new_with_free_func (g_free);
      for (guint j = 0; j < certs->len; j++)
        g_ptr_array_add (out, g_strdup (cm_cert_get_sha256 (g_ptr_array_index (certs, j))));
    }
  return out;
}

typedef struct
{
  CmTbProfile *profile;
  CmInventory *inv;
  GPtrArray *identities; /* CmTbIdentity* */
} Checked;

static void
checked_clear (Checked *c)
{
  g_clear_pointer (&c->identities, g_ptr_array_unref);
  g_clear_pointer (&c->inv, cm_inventory_free);
  g_clear_pointer (&c->profile, cm_tb_profile_free);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Checked, checked_clear)

/* One of the four certificate prefs of an identity:
 * mail.identity.ID.{signing,encryption}_cert_{name,dbkey}, ID of [A-Za-z0-9_]. */
static gboolean
is_smime_cert_pref (const char *name)
{
  static const char *const kinds[] = { ".signing_cert_name", ".signing_cert_dbkey",
                                       ".encryption_cert_name", ".encryption_cert_dbkey" };
  const char *id;
  gsize id_len = 0;

  if (!g_str_has_prefix (name, "mail.identity."))
    return FALSE;
  id = name + strlen ("mail.identity.");
  while (g_ascii_isalnum (id[id_len]) || id[id_len] == '_')
    id_len++;
  for (gsize i = 0; i < G_N_ELEMENTS (kinds); i++)
    if (id_len > 0 && strcmp (id + id_len, kinds[i]) == 0)
      return TRUE;
  return FALSE;
}

/* The request's "live" (optional): the certificate prefs Thunderbird holds now, read from its
 * pref service by the add-on ({NAME: STRING}, every one that has a value). prefs.js lags
 * behind them (Thunderbird writes it in the background), so they replace the file's: a
 * certificate pref the file has and "live" lacks was cleared. */
static gboolean
apply_live (CmTbPrefs *prefs, JsonObject *request, GError **error)
{
  JsonNode *n = json_object_get_member (request, "live");
  g_autoptr (GList) names = NULL;
  g_autoptr (GPtrArray) in_file = NULL;
  const CmTbPrefValue unset = { .type = CM_TB_PREF_UNSET };
  JsonObject *live;

  if (n == NULL)
    return TRUE;
  live = JSON_NODE_HOLDS_OBJECT (n) ? json_node_get_object (n) : NULL;
  names = live ? json_object_get_members (live) : NULL;
  for (GList *l = names; l; l = l->next)
    {
      JsonNode *v = json_object_get_member (live, l->data);
      if (!is_smime_cert_pref (l->data) || !JSON_NODE_HOLDS_VALUE (v)
          || json_node_get_value_type (v) != G_TYPE_STRING)
        live = NULL;
    }
  if (live == NULL)
    {
      g_set_error_literal (
        error, CM_NATIVE_ERROR, CM_NATIVE_ERROR_BAD_REQUEST,
        "\"live\" must map identities' certificate prefs "
        "(mail.identity.ID.signing_cert_name, ...) to strings: update the add-on");
      return FALSE;
    }
  in_file = cm_tb_prefs_list_names (prefs, "mail.identity.");
  for (guint i = 0; i < in_file->len; i++)
    {
      const char *name = g_ptr_array_index (in_file, i);
      if (is_smime_cert_pref (name) && !json_object_has_member (live, name))
        cm_tb_prefs_set (prefs, name, &unset);
    }
  for (GList *l = names; l; l = l->next)
    cm_tb_prefs_set_string (prefs, l->data, json_object_get_string_member (live, l->data));
  return TRUE;
}

/* Open the request's profile (its prefs.js, then "live" over it) and check its identities (all,
 * or "identity"). */
static gboolean
check_profile (CmNativeJob *job, JsonObject *request, Checked *out, GError **error)
{
  const char *dir = cm_native_get_string (request, "profile", TRUE, error);
  const char *only = dir ? cm_native_get_string (request, "identity", FALSE, error) : NULL;
  g_autoptr (GPtrArray) inserted = NULL;

  if (dir == NULL || (only == NULL && json_object_has_member (request, "identity")))
    return FALSE;
  if ((out->profile = cm_tb_profile_open (dir, error)) == NULL
      || !apply_live (cm_tb_profile_get_prefs (out->profile), request, error))
    return FALSE;
  out->inv = cm_inventory_new ();
  if (!cm_tb_profile_add_certs_sync (out->profile, out->inv, cm_native_job_cancellable (job),
                                     error))
    return FALSE;
  inserted = inserted_certs (out->inv);
  out->identities
    = cm_tb_profile_check (out->profile, out->inv, inserted, cm_time_now (), only, error);
  return out->identities != NULL;
}

static JsonNode *
object_node (JsonObject *o)
{
  JsonNode *node = json_node_new (JSON_NODE_OBJECT);

  json_node_take_object (node, o);
  return node;
}

/* {"profile", "running", "identities"}: the document of `cacmail thunderbird check --json`. */
JsonNode *
cm_native_cmd_check (CmNativeJob *job, JsonObject *request, GError **error)
{
  g_auto (Checked) c = { 0 };
  JsonObject *o;
  JsonArray *list;

  if (!check_profile (job, request, &c, error))
    return NULL;
  o = json_object_new ();
  list = json_array_new ();
  for (guint i = 0; i < c.identities->len; i++)
    json_array_add_element (list, cm_tb_identity_to_json (g_ptr_array_index (c.identities, i)));
  json_object_set_string_member (o, "profile", cm_tb_profile_get_dir (c.profile));
  json_object_set_boolean_member (o, "running", cm_tb_profile_get_location (c.profile)->pid > 0);
  json_object_set_array_member (o, "identities", list);
  return object_node (o);
}

/* What the add-on shows for one identity after the fix: the settings it will have. */
static JsonObject *
summarize (CmTbIdentity *id, gboolean changed)
{
  g_autoptr (JsonNode) doc = cm_tb_identity_to_json (id);
  JsonObject *d = json_node_get_object (doc);
  JsonObject *now = json_object_get_object_member (d, changed ? "proposed" : "current");
  JsonObject *out = json_object_new ();
  static const char *const copied[] = { "id", "name", "address", "state", "messages", "problems" };

  for (gsize i = 0; i < G_N_ELEMENTS (copied); i++)
    if (json_object_has_member (d, copied[i]))
      json_object_set_member (out, copied[i],
                              json_node_copy (json_object_get_member (d, copied[i])));
  json_object_set_boolean_member (out, "changed", changed);
  json_object_set_member (out, "signing", json_node_copy (json_object_get_member (now, "signing")));
  json_object_set_member (out, "encryption",
                          json_node_copy (json_object_get_member (now, "encryption")));
  return out;
}

/* {"prefs": [{"name", "value", "previous"}], "identities": [summary...]}: nothing is changed
 * here; the add-on sets the prefs, then sends "fixed". */
JsonNode *
cm_native_cmd_fix (CmNativeJob *job, JsonObject *request, GError **error)
{
  g_auto (Checked) c = { 0 };
  g_autoptr (GPtrArray) changes = g_ptr_array_new ();
  JsonArray *idents;
  JsonObject *o;

  if (!check_profile (job, request, &c, error))
    return NULL;
  idents = json_array_new ();
  for (guint i = 0; i < c.identities->len; i++)
    {
      CmTbIdentity *id = g_ptr_array_index (c.identities, i);
      GPtrArray *ch = cm_tb_identity_get_changes (id);
      for (guint j = 0; j < ch->len; j++)
        g_ptr_array_add (changes, g_ptr_array_index (ch, j));
      json_array_add_object_element (idents, summarize (id, ch->len > 0));
    }
  o = json_object_new ();
  json_object_set_member (o, "prefs", cm_tb_pref_changes_to_json (changes));
  json_object_set_array_member (o, "identities", idents);
  return object_node (o);
}

/* The request's "changes": [{"name", "value", "previous"}] (values string, number, boolean or
 * null for unset). NULL with a bad-request error when one is malformed. */
static GPtrArray *
read_changes (JsonObject *request, GError **error)
{
  JsonNode *n = json_object_get_member (request, "changes");
  g_autoptr (GPtrArray) out
    = g_ptr_array_new_with_free_func ((GDestroyNotify)cm_tb_pref_change_free);
  JsonArray *a;

  if (n == NULL || !JSON_NODE_HOLDS_ARRAY (n))
    goto bad;
  a = json_node_get_array (n);
  for (guint i = 0; i < json_array_get_length (a); i++)
    {
      JsonObject *c = json_array_get_object_element (a, i);
      const char *name = c ? json_object_get_string_member_with_default (c, "name", NULL) : NULL;
      CmTbPrefValue now = { 0 }, before = { 0 };
      if (name == NULL || !g_str_has_prefix (name, "mail.identity.")
          || !cm_tb_pref_value_from_json (json_object_get_member (c, "value"), &now)
          || !cm_tb_pref_value_from_json (json_object_get_member (c, "previous"), &before))
        {
          cm_tb_pref_value_clear (&now);
          goto bad;
        }
      g_ptr_array_add (out, cm_tb_pref_change_new (name, &before, &now));
      cm_tb_pref_value_clear (&now);
      cm_tb_pref_value_clear (&before);
    }
  return g_steal_pointer (&out);
bad:
  g_set_error (error, CM_NATIVE_ERROR, CM_NATIVE_ERROR_BAD_REQUEST,
               "\"changes\" must list {\"name\": \"mail.identity....\", \"value\", \"previous\"}: "
               "update the add-on");
  return NULL;
}

/* {"profile", "changes"}: the prefs the add-on has just set, recorded as a backup entry so
 * that "undo" (or `cacmail thunderbird undo`) can give them back. */
JsonNode *
cm_native_cmd_fixed (CmNativeJob *job, JsonObject *request, GError **error)
{
  const char *dir = cm_native_get_string (request, "profile", TRUE, error);
  g_autoptr (GPtrArray) changes = dir ? read_changes (request, error) : NULL;
  JsonObject *o;

  if (changes == NULL)
    return NULL;
  if (changes->len && !cm_tb_backup_record_live (dir, changes, error))
    return NULL;
  o = json_object_new ();
  json_object_set_int_member (o, "recorded", changes->len);
  return object_node (o);
}

/* {"profile"}: the prefs that undo the last fix made through the add-on ({"prefs": [...]},
 * value null = clear the pref); that fix is then marked undone. */
JsonNode *
cm_native_cmd_undo (CmNativeJob *job, JsonObject *request, GError **error)
{
  const char *dir = cm_native_get_string (request, "profile", TRUE, error);
  g_autoptr (GPtrArray) changes = dir ? cm_tb_backup_pending_live_undo (dir, error) : NULL;
  JsonObject *o;

  if (changes == NULL)
    return NULL;
  o = json_object_new ();
  json_object_set_member (o, "prefs", cm_tb_pref_changes_to_json (changes));
  return object_node (o);
}
