/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cli-common.c: option handling, errors and human output shared by the subcommands. */
#include "cli.h"
#include <stdio.h>

int
cli_fail (GError *error)
{
  int code = CLI_EXIT_FAILED;

  if (error->domain == CM_ERROR)
    switch ((CmError)error->code)
      {
      case CM_ERROR_BAD_INPUT:
      case CM_ERROR_NOT_FOUND: code = CLI_EXIT_BAD_INPUT; break;
      case CM_ERROR_ENVIRONMENT: code = CLI_EXIT_ENVIRONMENT; break;
      case CM_ERROR_UNSAFE: code = CLI_EXIT_REFUSED; break;
      case CM_ERROR_FAILED:
      default: code = CLI_EXIT_FAILED; break;
      }
  else if (error->domain == G_OPTION_ERROR)
    code = CLI_EXIT_USAGE;
  fprintf (stderr, "cacmail: error: %s\n", error->message);
  return code;
}

int
cli_usage (const char *fmt, ...)
{
  va_list ap;
  g_autofree char *msg = NULL;

  va_start (ap, fmt);
  msg = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  fprintf (stderr, "cacmail: usage error: %s (see 'cacmail --help')\n", msg);
  return CLI_EXIT_USAGE;
}

gboolean
cli_common_prepare (CliCommon *c, CmTrust **trust, GError **error)
{
  *trust = NULL;
  if (c->at_text)
    {
      g_autoptr (GError) local = NULL;
      if (!cm_time_parse (c->at_text, &c->at, &local))
        {
          /* a bad option value is a usage error */
          g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, "--at: %s", local->message);
          return FALSE;
        }
    }
  else
    c->at = cm_time_now ();
  if (c->ca_files && c->ca_files[0])
    {
      g_autoptr (CmTrust) t = cm_trust_new ();
      for (char **f = c->ca_files; *f; f++)
        if (!cm_trust_add_file (t, *f, error))
          return FALSE;
      if (cm_trust_count_anchors (t) == 0)
        {
          g_set_error (error, CM_ERROR, CM_ERROR_BAD_INPUT,
                       "--ca: none of the files holds a root (self-signed) CA certificate; "
                       "add the root CA file");
          return FALSE;
        }
      *trust = g_steal_pointer (&t);
    }
  return TRUE;
}

gboolean
cli_load_inputs (CmInventory *inv, char **inputs, GError **error)
{
  for (char **in = inputs; in && *in; in++)
    if (!cm_inventory_add_path (inv, *in, error))
      return FALSE;
  return TRUE;
}

void
cli_common_clear (CliCommon *c)
{
  g_free (c->at_text);
  g_strfreev (c->ca_files);
  g_strfreev (c->inputs);
}

void
cli_print_json (JsonNode *node)
{
  g_autofree char *s = cm_json_to_string (node);
  fputs (s, stdout);
}

char *
cli_short_name (CmCert *c)
{
  return g_strdup (cm_cert_get_subject_cn (c) ? cm_cert_get_subject_cn (c)
                                              : cm_cert_get_subject (c));
}

static const char *
validity_word (CmCert *c, gint64 at)
{
  if (cm_cert_is_valid_at (c, at))
    return "valid until";
  return cm_cert_get_not_after (c) < at ? "EXPIRED" : "NOT YET VALID, from";
}

void
cli_print_cert_line (CmInventory *inv, CmCert *c, gint64 at)
{
  g_autofree char *name = cli_short_name (c);
  g_autofree char *reasons = g_strjoinv (", ", (char **)cm_cert_get_reasons (c));
  g_autofree char *emails = g_strjoinv (", ", (char **)cm_cert_get_emails (c));
  gboolean future = !cm_cert_is_valid_at (c, at) && cm_cert_get_not_after (c) >= at;
  g_autofree char *when
    = cm_time_format_date (future ? cm_cert_get_not_before (c) : cm_cert_get_not_after (c));
  CmPersona *p = cm_inventory_persona_of (inv, c);
  GPtrArray *sources = cm_cert_get_sources (c);

  printf ("  %-16s  %s\n", cm_role_to_string (cm_cert_get_role (c)), name);
  printf ("  %-16s  %s %s; sha256 %.16s...\n", "", validity_word (c, at), when,
          cm_cert_get_sha256 (c));
  if (*emails)
    printf ("  %-16s  email %s\n", "", emails);
  if (p)
    {
      const char *assoc = cm_persona_get_association (p);
      printf ("  %-16s  persona %s%s%s%s\n", "", cm_persona_get_key (p), assoc ? " (" : "",
              assoc ? assoc : "", assoc ? ")" : "");
    }
  for (guint i = 0; i < sources->len; i++)
    {
      CmSource *s = g_ptr_array_index (sources, i);
      const char *slot = cm_slot_to_string (s->slot);
      printf ("  %-16s  from %s%s%s\n", "", s->path ? s->path : "?", slot ? ", slot " : "",
              slot ? slot : "");
    }
  printf ("  %-16s  why: %s\n", "", reasons);
}

void
cli_print_problem (const CmProblem *p)
{
  printf ("  %-7s %s: %s\n", cm_severity_to_string (cm_problem_get_severity (p)),
          cm_problem_get_code (p), cm_problem_get_message (p));
  printf ("  %-7s fix: %s\n", "", cm_problem_get_hint (p));
}

static void
print_pick (const char *label, CmCert *c)
{
  g_autofree char *name = c ? cli_short_name (c) : NULL;
  g_autofree char *until = c ? cm_time_format_date (cm_cert_get_not_after (c)) : NULL;

  if (c)
    printf ("  %-12s %s, until %s (sha256 %.16s...)\n", label, name, until, cm_cert_get_sha256 (c));
  else
    printf ("  %-12s none\n", label);
}

void
cli_print_picks (CmInventory *inv, CmPicks *pk)
{
  g_autofree char *at = cm_time_format (cm_picks_get_at (pk));
  CmPersona *p = cm_picks_get_persona (pk);
  GPtrArray *dec = cm_picks_get_decrypt_only (pk);
  GPtrArray *why = cm_picks_get_explanations (pk);
  GPtrArray *problems = cm_picks_get_problems (pk);

  printf ("%s (at %s)\n", cm_picks_get_email (pk), at);
  if (p)
    printf ("  %-12s %s%s%s%s\n", "persona:", cm_persona_get_key (p),
            cm_persona_get_association (p) ? " (" : "",
            cm_persona_get_association (p) ? cm_persona_get_association (p) : "",
            cm_persona_get_association (p) ? ")" : "");
  print_pick ("login:", cm_picks_get_login (pk));
  print_pick ("signing:", cm_picks_get_signing (pk));
  print_pick ("encryption:", cm_picks_get_encryption (pk));
  for (guint i = 0; i < dec->len; i++)
    print_pick (i == 0 ? "decrypt only:" : "", g_ptr_array_index (dec, i));
  if (why->len)
    printf ("  why:\n");
  for (guint i = 0; i < why->len; i++)
    printf ("    - %s\n", (char *)g_ptr_array_index (why, i));
  printf ("  problems:%s\n", problems->len ? "" : " none");
  for (guint i = 0; i < problems->len; i++)
    cli_print_problem (g_ptr_array_index (problems, i));
  (void)inv;
}

void
cli_print_identity_findings (const char *const *messages, JsonArray *problems)
{
  for (; *messages; messages++)
    printf ("  - %s\n", *messages);
  for (guint i = 0; i < json_array_get_length (problems); i++)
    {
      JsonObject *p = json_array_get_object_element (problems, i);
      printf ("  problem %s: %s\n    fix: %s\n", json_object_get_string_member (p, "code"),
              json_object_get_string_member (p, "message"),
              json_object_get_string_member (p, "hint"));
    }
}

GPtrArray *
cli_inserted_certs (CmInventory *inv, CmReadFlags flags)
{
  g_autoptr (GPtrArray) readers = cm_pcsc_list_readers_sync (NULL, NULL);
  GPtrArray *out = NULL;

  for (guint i = 0; readers && i < readers->len; i++)
    {
      CmReaderInfo *r = g_ptr_array_index (readers, i);
      GPtrArray *cards, *certs;
      if (!r->card_present
          || !cm_card_read_sync (inv, r->name, flags | CM_READ_NO_CACHE, NULL, NULL, NULL))
        continue;
      cards = cm_inventory_get_cards (inv);
      certs = cm_card_get_certs (g_ptr_array_index (cards, cards->len - 1));
      if (out == NULL)
        out = g_ptr_array_new_with_free_func (g_free);
      for (guint j = 0; j < certs->len; j++)
        g_ptr_array_add (out, g_strdup (cm_cert_get_sha256 (g_ptr_array_index (certs, j))));
    }
  return out;
}
