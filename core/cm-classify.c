/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cm-classify.c: what a certificate IS, from several signals, never one alone and never the
 * file name. Each signal adds weight to the roles it supports; the heaviest role wins and the
 * signals that supported it become the reasons (stable codes, docs/roles.md).
 *
 * Traps from real data this scoring handles (facts.md section 2, GSA README):
 * - DoD email signing certs also carry clientAuth + smartcardLogon: nonRepudiation and
 *   emailProtection outweigh the login EKUs.
 * - The PIV-Auth policy is missing on many DoD certs: the 16-digit UPN also says PIV Auth.
 * - GSA PIV Auth UPNs may have 10 digits at a non-mil domain: a CAC ID cert needs "EDIPI@mil".
 * - A Card Auth cert may carry an email: its EKU and policy outweigh it.
 * - Card 24's Card Auth has no EKU: policy and the name-less subject carry it. */
#include "cm-private.h"
#include "cm-oids.h"

typedef struct
{
  int score[CM_ROLE_CARD_AUTH + 1];
  GPtrArray *signals[CM_ROLE_CARD_AUTH + 1];
} Tally;

static void
add (Tally *t, CmRole role, int weight, const char *code)
{
  t->score[role] += weight;
  g_ptr_array_add (t->signals[role], (gpointer)code);
}

static gboolean
strv_has (const char *const *v, const char *s)
{
  return v && g_strv_contains (v, s);
}

static gboolean
has_any_policy (CmCert *c, const char *const *set, gsize n)
{
  for (gsize i = 0; i < n; i++)
    if (strv_has (cm_cert_get_policies (c), set[i]))
      return TRUE;
  return FALSE;
}

static void
add_slot_signals (Tally *t, CmCert *c)
{
  GPtrArray *sources = cm_cert_get_sources (c);

  for (guint i = 0; i < sources->len; i++)
    {
      CmSlot s = ((CmSource *)g_ptr_array_index (sources, i))->slot;
      if (s == CM_SLOT_9A)
        add (t, CM_ROLE_PIV_AUTH, 5, "slot-9a");
      else if (s == CM_SLOT_9C)
        add (t, CM_ROLE_EMAIL_SIGNING, 5, "slot-9c");
      else if (s == CM_SLOT_9D)
        add (t, CM_ROLE_EMAIL_ENCRYPTION, 5, "slot-9d");
      else if (s == CM_SLOT_9E)
        add (t, CM_ROLE_CARD_AUTH, 5, "slot-9e");
      else if (s >= CM_SLOT_RETIRED_FIRST && s <= CM_SLOT_RETIRED_LAST)
        add (t, CM_ROLE_EMAIL_ENCRYPTION, 5, "slot-retired-key-management");
      else if (s == CM_SLOT_CAC_ID)
        add (t, CM_ROLE_CAC_ID, 5, "cac-applet-id");
      else if (s == CM_SLOT_CAC_SIGN)
        add (t, CM_ROLE_EMAIL_SIGNING, 5, "cac-applet-signing");
      else if (s == CM_SLOT_CAC_ENC)
        add (t, CM_ROLE_EMAIL_ENCRYPTION, 5, "cac-applet-encryption");
    }
}

G_GNUC_INTERNAL void cm_classify (CmCert *c, CmRole *role_out, GStrv *reasons_out);

void
cm_classify (CmCert *c, CmRole *role_out, GStrv *reasons_out)
{
  static const char *const piv_auth_policies[] = { CM_PIV_AUTH_POLICIES };
  static const char *const card_auth_policies[] = { CM_CARD_AUTH_POLICIES };
  const char *const *ekus = cm_cert_get_ekus (c);
  guint ku = cm_cert_get_key_usage (c);
  gboolean has_email = cm_cert_get_emails (c)[0] != NULL;
  const char *upn = cm_cert_get_upn (c);
  /* the UPN itself is "EDIPI@mil" (an EDIPI read from the common name says nothing of role) */
  gboolean dod_edipi_upn = upn && strlen (upn) == 14 && cm_is_digits ((const guint8 *)upn, 10)
                           && g_ascii_strcasecmp (upn + 10, "@mil") == 0;
  Tally t = { 0 };
  CmRole best = CM_ROLE_OTHER;
  g_autoptr (GPtrArray) reasons = g_ptr_array_new ();

  for (int r = 0; r <= CM_ROLE_CARD_AUTH; r++)
    t.signals[r] = g_ptr_array_new ();

  if (cm_cert_is_ca (c) || (ku & CM_KU_KEY_CERT_SIGN))
    {
      g_ptr_array_add (reasons, (gpointer) "ca-certificate");
      goto done;
    }

  add_slot_signals (&t, c);

  if (strv_has (ekus, CM_OID_EKU_PIV_CARD_AUTH))
    add (&t, CM_ROLE_CARD_AUTH, 6, "eku-piv-card-auth");
  if (has_any_policy (c, card_auth_policies, G_N_ELEMENTS (card_auth_policies)))
    add (&t, CM_ROLE_CARD_AUTH, 4, "policy-card-auth");
  if (cm_cert_get_subject_cn (c) == NULL && strstr (cm_cert_get_subject (c), "serialNumber="))
    add (&t, CM_ROLE_CARD_AUTH, 2, "subject-without-name");

  if (has_any_policy (c, piv_auth_policies, G_N_ELEMENTS (piv_auth_policies)))
    add (&t, CM_ROLE_PIV_AUTH, 3, "policy-piv-auth");
  if (cm_cert_get_persona_id (c))
    add (&t, CM_ROLE_PIV_AUTH, 4, "upn-persona-id");

  if (strv_has (ekus, CM_OID_EKU_SMARTCARD_LOGON) || strv_has (ekus, CM_OID_EKU_PKINIT)
      || strv_has (ekus, CM_OID_EKU_CLIENT_AUTH))
    {
      add (&t, CM_ROLE_PIV_AUTH, 2, "eku-login");
      if (dod_edipi_upn)
        add (&t, CM_ROLE_CAC_ID, 2, "eku-login");
    }
  /* A CAC ID cert is the DoD one with the bare EDIPI as UPN; nothing else can be one. */
  if (dod_edipi_upn && !has_email)
    add (&t, CM_ROLE_CAC_ID, 2, "upn-edipi-no-email");

  if (strv_has (ekus, CM_OID_EKU_EMAIL))
    {
      add (&t, CM_ROLE_EMAIL_SIGNING, 2, "eku-email-protection");
      add (&t, CM_ROLE_EMAIL_ENCRYPTION, 2, "eku-email-protection");
    }
  if (has_email)
    {
      add (&t, CM_ROLE_EMAIL_SIGNING, 1, "san-email");
      add (&t, CM_ROLE_EMAIL_ENCRYPTION, 1, "san-email");
    }
  if (ku & CM_KU_NON_REPUDIATION)
    add (&t, CM_ROLE_EMAIL_SIGNING, 3, "ku-non-repudiation");
  if (ku & CM_KU_DIGITAL_SIGNATURE)
    {
      add (&t, CM_ROLE_PIV_AUTH, 1, "ku-digital-signature");
      add (&t, CM_ROLE_CARD_AUTH, 1, "ku-digital-signature");
      if (has_email)
        add (&t, CM_ROLE_EMAIL_SIGNING, 1, "ku-digital-signature");
      if (dod_edipi_upn)
        add (&t, CM_ROLE_CAC_ID, 1, "ku-digital-signature");
    }
  if (ku & (CM_KU_KEY_ENCIPHERMENT | CM_KU_KEY_AGREEMENT))
    add (&t, CM_ROLE_EMAIL_ENCRYPTION, (ku & CM_KU_DIGITAL_SIGNATURE) ? 2 : 5,
         (ku & CM_KU_KEY_ENCIPHERMENT) ? "ku-key-encipherment" : "ku-key-agreement");
  if (cm_cert_get_fascn (c))
    {
      add (&t, CM_ROLE_PIV_AUTH, 1, "san-fascn");
      add (&t, CM_ROLE_CARD_AUTH, 1, "san-fascn");
    }

  /* Ties go to the earlier role in this order: the more specific evidence first. */
  {
    static const CmRole order[] = { CM_ROLE_CARD_AUTH, CM_ROLE_EMAIL_ENCRYPTION,
                                    CM_ROLE_EMAIL_SIGNING, CM_ROLE_PIV_AUTH, CM_ROLE_CAC_ID };
    int best_score = 2; /* below 3 there is no real evidence */
    for (gsize i = 0; i < G_N_ELEMENTS (order); i++)
      if (t.score[order[i]] > best_score)
        {
          best_score = t.score[order[i]];
          best = order[i];
        }
  }
  if (best == CM_ROLE_OTHER)
    g_ptr_array_add (reasons, (gpointer) "no-role-signal");
  else
    for (guint i = 0; i < t.signals[best]->len; i++)
      g_ptr_array_add (reasons, g_ptr_array_index (t.signals[best], i));

done:
  {
    GStrv out = g_new0 (char *, reasons->len + 1);
    for (guint i = 0; i < reasons->len; i++)
      out[i] = g_strdup (g_ptr_array_index (reasons, i));
    *reasons_out = out;
  }
  *role_out = best;
  for (int r = 0; r <= CM_ROLE_CARD_AUTH; r++)
    g_ptr_array_unref (t.signals[r]);
}
