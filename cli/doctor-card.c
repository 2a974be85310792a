/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* doctor-card.c: `cacmail doctor`'s card checks: pcscd, readers, cards (core's reader and card
 * states), personas and picks (core's problems: PIV Authentication missing or expired, one
 * address on two personas, ...), and picked certificates that expire within 30 days. */
#include "doctor.h"
#include <stdio.h>

#define SOON_DAYS 30

gboolean
doctor_read_cards (Doctor *d, CmInventory *inv, GPtrArray *inserted)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) readers = cm_pcsc_list_readers_sync (NULL, &error);
  guint present = 0, read = 0;

  if (readers == NULL)
    {
      if (d)
        doctor_add (d, cm_problem_new_state (CM_STATE_PCSCD_NOT_RUNNING, NULL, error->message));
      return FALSE;
    }
  if (d && readers->len == 0)
    doctor_add (d, cm_problem_new_state (CM_STATE_NO_READER, NULL, NULL));
  for (guint i = 0; i < readers->len; i++)
    {
      CmReaderInfo *info = g_ptr_array_index (readers, i);
      GPtrArray *cards = cm_inventory_get_cards (inv);
      guint before = cards->len;
      CmCardReport report = { .pin_tries_left = -1 };

      if (!info->card_present)
        continue;
      present++;
      if (!cm_card_read_sync (inv, info->name, CM_READ_ALL, &report, NULL, &error))
        {
          if (d)
            doctor_add (
              d, cm_problem_new_state (CM_STATE_CARD_READ_FAILED, info->name, error->message));
          g_clear_error (&error);
          continue;
        }
      read++;
      if (d && report.pin_tries_left == 0)
        doctor_add (d, cm_problem_new_state (CM_STATE_PIN_BLOCKED, info->name, NULL));
      else if (d && report.pin_tries_left == 1)
        doctor_add (d, cm_problem_new_state (CM_STATE_PIN_TRIES_LOW, info->name, NULL));
      for (guint c = before; inserted && c < cards->len; c++)
        {
          GPtrArray *certs = cm_card_get_certs (g_ptr_array_index (cards, c));
          for (guint j = 0; j < certs->len; j++)
            g_ptr_array_add (inserted,
                             g_strdup (cm_cert_get_sha256 (g_ptr_array_index (certs, j))));
        }
    }
  if (d && readers->len && present == 0)
    doctor_add (d, cm_problem_new_state (CM_STATE_NO_CARD, NULL, NULL));
  if (d)
    doctor_checked (d, "pcscd: %u reader%s, %u card%s read", readers->len,
                    readers->len == 1 ? "" : "s", read, read == 1 ? "" : "s");
  return TRUE;
}

/* A picked certificate that expires within SOON_DAYS of d->at. */
static void
check_soon (Doctor *d, CmPicks *pk, CmCert *cert, const char *what, const char *hint)
{
  gint64 left;
  g_autofree char *date = NULL;
  CmProblem *p;

  if (cert == NULL)
    return;
  left = cm_cert_get_not_after (cert) - d->at;
  if (left < 0 || left >= (gint64)SOON_DAYS * 24 * 3600)
    return;
  date = cm_time_format_date (cm_cert_get_not_after (cert));
  p = doctor_problem (d, "cert-expires-soon", CM_SEVERITY_WARNING, hint,
                      "the %s certificate for %s expires on %s, in %" G_GINT64_FORMAT " day%s",
                      what, cm_picks_get_email (pk), date, left / (24 * 3600),
                      left / (24 * 3600) == 1 ? "" : "s");
  if (p)
    cm_problem_add_cert (p, cm_cert_get_sha256 (cert));
}

void
doctor_check_cards (Doctor *d)
{
  g_autoptr (GPtrArray) emails = NULL;
  g_autoptr (GPtrArray) card_problems = NULL;

  d->inserted = g_ptr_array_new_with_free_func (g_free);
  if (!doctor_read_cards (d, d->inv, d->inserted))
    g_clear_pointer (&d->inserted, g_ptr_array_unref);
  card_problems = cm_select_check_inventory (d->inv, d->at, NULL);
  while (card_problems->len)
    doctor_add (d, g_ptr_array_steal_index (card_problems, 0));
  emails = cm_inventory_list_emails (d->inv);
  for (guint i = 0; i < emails->len; i++)
    {
      CmPicks *pk = cm_select_for_email (d->inv, g_ptr_array_index (emails, i), d->at, NULL);
      GPtrArray *problems = cm_picks_get_problems (pk);

      g_ptr_array_add (d->picks, pk);
      for (guint j = 0; j < problems->len; j++)
        {
          CmProblem *p = g_ptr_array_index (problems, j);
          CmProblem *copy = cm_problem_new (cm_problem_get_code (p), cm_problem_get_severity (p),
                                            cm_problem_get_message (p), cm_problem_get_hint (p));
          GPtrArray *certs = cm_problem_get_certs (p);
          for (guint k = 0; k < certs->len; k++)
            cm_problem_add_cert (copy, g_ptr_array_index (certs, k));
          doctor_add (d, copy);
        }
      check_soon (d, pk, cm_picks_get_login (pk), "login (PIV Authentication)",
                  "Get new certificates on the card at a RAPIDS office (or the card maintenance "
                  "portal) before then");
      check_soon (d, pk, cm_picks_get_signing (pk), "signing",
                  "Renew the email certificates in the card maintenance portal before then, then "
                  "run cacmail republish");
      check_soon (d, pk, cm_picks_get_encryption (pk), "encryption",
                  "Renew the email certificates in the card maintenance portal before then, then "
                  "run cacmail republish");
      doctor_checked (d, "%s: login, signing and encryption picks", cm_picks_get_email (pk));
    }
}
