/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cmd-thunderbird.c: `cacmail thunderbird check|fix|undo|login`: a Thunderbird profile's S/MIME
 * identity settings against the picks, fixed in prefs.js while Thunderbird is closed, and card
 * login without a certificate chooser (plugins/thunderbird, docs/thunderbird.md). */
#include "cli.h"
#include <cm-tb.h>
#include <stdio.h>

static void
print_setting (const char *label, const char *name, const char *dbkey, CmCert *cert)
{
  if ((name == NULL || !*name) && (dbkey == NULL || !*dbkey))
    printf ("  %s (none)\n", label);
  else
    printf ("  %s %s%s\n", label, name && *name ? name : "(no name)",
            cert ? "" : (dbkey && *dbkey ? " (dbKey not found)" : " (no dbKey)"));
}

static void
print_identity (CmTbIdentity *id)
{
  const CmTbSettings *s = cm_tb_identity_get_settings (id);
  const char *const *m = cm_tb_identity_get_messages (id);
  JsonArray *problems = cm_tb_identity_get_problems (id);

  printf ("%s <%s> (%s): %s\n", s->name ? s->name : "", s->address, s->id,
          cm_tb_identity_is_stale (id) ? "STALE" : "ok");
  print_setting ("signing:   ", s->signing_name, s->signing_dbkey,
                 cm_tb_identity_get_current_cert (id, TRUE));
  print_setting ("encryption:", s->encryption_name, s->encryption_dbkey,
                 cm_tb_identity_get_current_cert (id, FALSE));
  cli_print_identity_findings (m, problems);
  if (cm_tb_identity_is_stale (id))
    for (int sig = 1; sig >= 0; sig--)
      {
        CmCert *c = cm_tb_identity_get_proposed_cert (id, sig);
        g_autofree char *name = c ? cm_tb_cert_display_name (c) : NULL;
        g_autofree char *until = c ? cm_time_format_date (cm_cert_get_not_after (c)) : NULL;
        printf ("  proposed %s %s%s%s%s\n",
                sig ? "signing:   " : "encryption:", c ? name : "(none available)",
                c ? " (valid until " : "", c ? until : "", c ? ")" : "");
      }
}

static JsonNode *
check_document (CmTbProfile *profile, GPtrArray *ids)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();

  json_builder_begin_object (b);
  cm_json_add_string_or_null (b, "profile", cm_tb_profile_get_dir (profile));
  json_builder_set_member_name (b, "running");
  json_builder_add_boolean_value (b, cm_tb_profile_get_location (profile)->pid > 0);
  json_builder_set_member_name (b, "identities");
  json_builder_begin_array (b);
  for (guint i = 0; i < ids->len; i++)
    json_builder_add_value (b, cm_tb_identity_to_json (g_ptr_array_index (ids, i)));
  json_builder_end_array (b);
  json_builder_end_object (b);
  return json_builder_get_root (b);
}

static JsonNode *
login_document (CmTbProfile *profile, GPtrArray *steps)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();

  json_builder_begin_object (b);
  cm_json_add_string_or_null (b, "profile", cm_tb_profile_get_dir (profile));
  json_builder_set_member_name (b, "running");
  json_builder_add_boolean_value (b, cm_tb_profile_get_location (profile)->pid > 0);
  json_builder_set_member_name (b, "servers");
  json_builder_begin_array (b);
  for (guint i = 0; i < steps->len; i++)
    {
      CmTbLoginStep *s = g_ptr_array_index (steps, i);
      CmTbServerProbe *p = s->probe;
      json_builder_begin_object (b);
      cm_json_add_string_or_null (b, "kind", p->kind);
      cm_json_add_string_or_null (b, "prefs", p->key);
      cm_json_add_string_or_null (b, "host", p->host);
      json_builder_set_member_name (b, "port");
      json_builder_add_int_value (b, p->port);
      cm_json_add_string_or_null (b, "address", p->address);
      json_builder_set_member_name (b, "asks_cert");
      json_builder_add_boolean_value (b, p->asks_cert);
      json_builder_set_member_name (b, "requires_cert");
      json_builder_add_boolean_value (b, p->requires_cert);
      json_builder_set_member_name (b, "offers_external");
      json_builder_add_boolean_value (b, p->offers_external);
      json_builder_set_member_name (b, "offers_gssapi");
      json_builder_add_boolean_value (b, p->offers_gssapi);
      cm_json_add_string_or_null (b, "error", p->error);
      cm_json_add_string_or_null (b, "cert", s->cert ? cm_cert_get_sha256 (s->cert) : NULL);
      json_builder_set_member_name (b, "remembered");
      json_builder_add_boolean_value (b, s->remembered);
      json_builder_set_member_name (b, "tls_certificate_auth");
      json_builder_add_boolean_value (b, s->auth_set);
      json_builder_set_member_name (b, "kerberos_auth");
      json_builder_add_boolean_value (b, s->kerberos_set);
      cm_json_add_string_or_null (b, "message", s->message);
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
  json_builder_end_object (b);
  return json_builder_get_root (b);
}

/* Whether any step lets Thunderbird log in with the Kerberos ticket. */
static gboolean
any_kerberos (GPtrArray *steps)
{
  for (guint i = 0; i < steps->len; i++)
    if (((CmTbLoginStep *)g_ptr_array_index (steps, i))->kerberos_set)
      return TRUE;
  return FALSE;
}

static int
do_login (CmTbProfile *profile, CmInventory *inv, const char *only, gboolean json, gint64 at,
          CmTbLoginMode mode)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) probes = cm_tb_prefs_list_servers (cm_tb_profile_get_prefs (profile), only);
  g_autoptr (GPtrArray) steps = NULL;
  gint n;

  for (guint i = 0; i < probes->len; i++)
    cm_tb_probe_server_sync (g_ptr_array_index (probes, i), 10000, NULL);
  steps = cm_tb_login_plan_mode (probes, inv, at, mode);
  if ((n = cm_tb_profile_login_sync (profile, steps, &error)) < 0)
    return cli_fail (error);
  if (json)
    {
      g_autoptr (JsonNode) doc = login_document (profile, steps);
      cli_print_json (doc);
      return CLI_EXIT_OK;
    }
  if (probes->len == 0)
    printf ("No IMAP, POP3 or SMTP server in the accounts of %s.\n",
            cm_tb_profile_get_dir (profile));
  for (guint i = 0; i < steps->len; i++)
    {
      CmTbLoginStep *s = g_ptr_array_index (steps, i);
      printf ("%s %s:%u (%s): %s\n", s->probe->kind, s->probe->host, s->probe->port,
              s->probe->address, s->message);
    }
  printf ("Changed %d server%s%s\n", n, n == 1 ? "" : "s",
          n ? " (undo with 'cacmail thunderbird undo')." : ".");
  if (n && any_kerberos (steps))
    printf ("Thunderbird logs in with your Kerberos ticket: get one with the card by "
            "'cacmail login' before you start it.\n");
  else if (n)
    printf ("Thunderbird asks for the card's PIN, and for no certificate, when it connects.\n");
  return CLI_EXIT_OK;
}

static int
fail (GError *error)
{
  if (error->domain == CM_TB_ERROR)
    {
      fprintf (stderr, "cacmail: error: %s\n", error->message);
      return CLI_EXIT_CONFLICT;
    }
  return cli_fail (error);
}

int
cmd_thunderbird (int argc, char **argv)
{
  g_autofree char *profile_dir = NULL, *at_text = NULL, *only = NULL, *method = NULL;
  gboolean json = FALSE, no_card = FALSE;
  CmTbLoginMode mode = CM_TB_LOGIN_AUTO;
  GOptionEntry entries[] = {
    { "profile", 0, 0, G_OPTION_ARG_FILENAME, &profile_dir,
      "The Thunderbird profile folder (default: the one Thunderbird starts with)", "DIR" },
    { "identity", 0, 0, G_OPTION_ARG_STRING, &only, "Only this mail identity (idN)", "idN" },
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, "Print JSON (docs/json.md)", NULL },
    { "at", 0, 0, G_OPTION_ARG_STRING, &at_text, "Judge validity at TIME (default now)", "TIME" },
    { "no-card", 0, 0, G_OPTION_ARG_NONE, &no_card,
      "Do not read the card readers (skip the inserted-card check)", NULL },
    { "method", 0, 0, G_OPTION_ARG_STRING, &method,
      "login: auto (by what each server offers), certificate or kerberos", "METHOD" },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx
    = g_option_context_new ("check|fix|undo|login - Thunderbird's S/MIME settings and card login");
  g_autoptr (GError) error = NULL;
  g_autoptr (CmInventory) inv = cm_inventory_new ();
  g_autoptr (CmTbProfile) profile = NULL;
  g_autoptr (GPtrArray) inserted = NULL;
  g_autoptr (GPtrArray) ids = NULL;
  const char *verb;
  gint64 at = cm_time_now ();
  gboolean writes;

  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!g_option_context_parse (ctx, &argc, &argv, &error))
    return cli_usage ("%s", error->message);
  if (argc != 2
      || (strcmp (argv[1], "check") && strcmp (argv[1], "fix") && strcmp (argv[1], "undo")
          && strcmp (argv[1], "login")))
    return cli_usage ("thunderbird needs one of: check, fix, undo, login");
  verb = argv[1];
  if (at_text && !cm_time_parse (at_text, &at, &error))
    return cli_usage ("--at: %s", error->message);
  if (method && strcmp (method, "auto") != 0)
    {
      if (strcmp (verb, "login") != 0)
        return cli_usage ("--method is for login");
      if (strcmp (method, "certificate") == 0)
        mode = CM_TB_LOGIN_CERTIFICATE;
      else if (strcmp (method, "kerberos") == 0)
        mode = CM_TB_LOGIN_KERBEROS;
      else
        return cli_usage ("--method takes auto, certificate or kerberos, not '%s'", method);
    }
  if (only && strcmp (verb, "undo") == 0)
    return cli_usage ("undo restores the whole last fix or login; --identity is for the others");
  if ((profile = cm_tb_profile_open (profile_dir, &error)) == NULL)
    return fail (error);
  if (cm_tb_profile_get_location (profile)->note)
    fprintf (stderr, "cacmail: note: %s\n", cm_tb_profile_get_location (profile)->note);
  /* refuse before reading anything when Thunderbird runs: it rewrites prefs.js at exit */
  writes = strcmp (verb, "check") != 0;
  if (writes && !cm_tb_profile_check_closed (profile, &error))
    return fail (error);
  if (strcmp (verb, "undo") == 0)
    {
      g_autofree char *report = NULL;
      if (!cm_tb_profile_undo_sync (profile, &report, &error))
        return fail (error);
      printf ("Thunderbird profile %s: %s.\n", cm_tb_profile_get_dir (profile), report);
      return CLI_EXIT_OK;
    }
  /* Kerberos needs no certificate: a profile Thunderbird never opened has no NSS database */
  if (strcmp (verb, "login") == 0 && mode == CM_TB_LOGIN_KERBEROS)
    return do_login (profile, inv, only, json, at, mode);
  if (!cm_tb_profile_add_certs_sync (profile, inv, NULL, &error))
    return fail (error);
  if (strcmp (verb, "login") == 0)
    return do_login (profile, inv, only, json, at, mode);
  if (!no_card)
    inserted = cli_inserted_certs (inv, CM_READ_ALL); /* an identity may name a retired cert */
  if ((ids = cm_tb_profile_check (profile, inv, inserted, at, only, &error)) == NULL)
    return fail (error);
  if (strcmp (verb, "fix") == 0)
    {
      gint n = cm_tb_profile_fix_sync (profile, ids, &error);
      if (n < 0)
        return fail (error);
      if (!json)
        printf ("Fixed %d identit%s%s\n", n, n == 1 ? "y" : "ies",
                n ? " (undo with 'cacmail thunderbird undo')." : ".");
    }
  if (json)
    {
      g_autoptr (JsonNode) doc = check_document (profile, ids);
      cli_print_json (doc);
    }
  else if (strcmp (verb, "check") == 0)
    {
      printf ("Thunderbird profile %s (%s)\n", cm_tb_profile_get_dir (profile),
              cm_tb_profile_get_location (profile)->state);
      if (ids->len == 0)
        printf ("No mail identity with an address.\n");
      for (guint i = 0; i < ids->len; i++)
        print_identity (g_ptr_array_index (ids, i));
    }
  return CLI_EXIT_OK;
}
