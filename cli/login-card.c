/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* login-card.c: the card that `cacmail login` logs in with: its token in the PKCS#11 module
 * (OpenSC), found by the reader it sits in (two persona cards share one token label), and its
 * PIV Authentication certificate (core's login pick). */
#include "login.h"
#include <cm-nssdb.h>
#include <pk11pub.h>
#include <secmod.h>
#include <string.h>

void
login_card_clear (LoginCard *card)
{
  g_clear_pointer (&card->module, g_free);
  g_clear_pointer (&card->reader, g_free);
  g_clear_pointer (&card->token, g_free);
  g_clear_pointer (&card->identity, g_free);
  g_clear_pointer (&card->cert_id, g_free);
  g_clear_pointer (&card->sha256, g_free);
  g_clear_pointer (&card->subject, g_free);
  g_clear_pointer (&card->upn, g_free);
}

static char *
trimmed (const unsigned char *p, gsize len)
{
  while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == 0))
    len--;
  return g_strndup ((const char *)p, len);
}

/* The reader a slot stands for (OpenSC: the slot description is the reader's name). */
static char *
slot_reader (PK11SlotInfo *slot)
{
  CK_SLOT_INFO info;

  if (PK11_GetSlotInfo (slot, &info) != SECSuccess)
    return g_strdup ("?");
  return trimmed (info.slotDescription, sizeof info.slotDescription);
}

/* Present tokens of @mod, in @reader when set. PK11SlotInfo* references. */
static GPtrArray *
present_tokens (SECMODModule *mod, const char *reader)
{
  GPtrArray *out = g_ptr_array_new_with_free_func ((GDestroyNotify)PK11_FreeSlot);

  for (int i = 0; i < mod->slotCount; i++)
    {
      PK11SlotInfo *slot = mod->slots[i];
      g_autofree char *name = slot_reader (slot);
      if (!PK11_IsPresent (slot))
        continue;
      if (reader && strcmp (name, reader) != 0)
        continue;
      g_ptr_array_add (out, PK11_ReferenceSlot (slot));
    }
  return out;
}

static gboolean
no_token_error (SECMODModule *mod, const char *reader, GPtrArray *found, GError **error)
{
  g_autoptr (GString) readers = g_string_new (NULL);

  if (found->len == 1)
    return TRUE;
  if (found->len > 1)
    {
      g_autofree char *first = slot_reader (g_ptr_array_index (found, 0));
      for (guint i = 0; i < found->len; i++)
        {
          g_autofree char *name = slot_reader (g_ptr_array_index (found, i));
          g_string_append_printf (readers, "%s'%s'", i ? ", " : "", name);
        }
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                   "%u cards are inserted (in %s): choose the one to log in with, e.g. "
                   "cacmail login --reader '%s'",
                   found->len, readers->str, first);
      return FALSE;
    }
  for (int i = 0; i < mod->slotCount; i++)
    {
      g_autofree char *name = slot_reader (mod->slots[i]);
      if (!strstr (readers->str, name))
        g_string_append_printf (readers, "%s'%s'", readers->len ? ", " : "", name);
    }
  if (reader)
    g_set_error (error, CM_ERROR, CM_ERROR_ENVIRONMENT,
                 "no card in the reader '%s' (readers: %s): insert the card there, or name "
                 "another reader (cacmail status lists them)",
                 reader, readers->len ? readers->str : "none");
  else
    g_set_error (error, CM_ERROR, CM_ERROR_ENVIRONMENT,
                 "no card was found in any reader (readers: %s): insert your card and run "
                 "cacmail login again (cacmail status shows what the readers see)",
                 readers->len ? readers->str : "none");
  return FALSE;
}

/* Core's login pick among the card's certs: by the card's mail address when it has one (the
 * persona's PIV Authentication cert), else its newest valid PIV Authentication cert. */
static CmCert *
pick_login (CmInventory *inv, const char *reader, gint64 at, GError **error)
{
  g_autoptr (GPtrArray) emails = cm_inventory_list_emails (inv);
  g_autoptr (CmPicks) picks = NULL;
  GPtrArray *problems;
  CmCert *best = NULL, *expired = NULL;

  if (emails->len)
    {
      picks = cm_select_for_email (inv, g_ptr_array_index (emails, 0), at, NULL);
      if (cm_picks_get_login (picks))
        return cm_cert_ref (cm_picks_get_login (picks));
      problems = cm_picks_get_problems (picks);
      for (guint i = 0; i < problems->len; i++)
        {
          CmProblem *p = g_ptr_array_index (problems, i);
          if (!g_str_has_prefix (cm_problem_get_code (p), "piv-auth")
              && strcmp (cm_problem_get_code (p), "card-auth-offered-for-login") != 0)
            continue;
          g_set_error (error, CM_ERROR, CM_ERROR_UNSAFE,
                       "not logged in, nothing sent to the card in '%s': %s (%s): %s", reader,
                       cm_problem_get_message (p), cm_problem_get_code (p),
                       cm_problem_get_hint (p));
          return NULL;
        }
    }
  for (guint i = 0; i < cm_inventory_get_certs (inv)->len; i++)
    {
      CmCert *c = g_ptr_array_index (cm_inventory_get_certs (inv), i);
      if (cm_cert_get_role (c) != CM_ROLE_PIV_AUTH)
        continue;
      if (!cm_cert_is_valid_at (c, at))
        expired = c;
      else if (best == NULL || cm_cert_get_not_after (c) > cm_cert_get_not_after (best))
        best = c;
    }
  if (best)
    return cm_cert_ref (best);
  if (expired)
    {
      g_autofree char *until = cm_time_format_date (cm_cert_get_not_after (expired));
      g_set_error (error, CM_ERROR, CM_ERROR_UNSAFE,
                   "not logged in, nothing sent to the card in '%s': its PIV Authentication "
                   "certificate is not valid now (valid until %s, piv-auth-expired): get new "
                   "certificates on the card at a RAPIDS office",
                   reader, until);
      return NULL;
    }
  g_set_error (error, CM_ERROR, CM_ERROR_UNSAFE,
               "the card in '%s' has no PIV Authentication certificate (piv-auth-missing): "
               "activate it in the card maintenance portal",
               reader);
  return NULL;
}

/* The CKA_ID of @c's object on @slot, lowercase hex, or NULL. Certificates are public
 * objects: read as generic objects, no login is asked for. */
static char *
cert_object_id (PK11SlotInfo *slot, CmCert *c)
{
  PK11GenericObject *objs = PK11_FindGenericObjects (slot, CKO_CERTIFICATE);
  GString *hex = NULL;

  for (PK11GenericObject *o = objs; o && hex == NULL; o = PK11_GetNextGenericObject (o))
    {
      SECItem value = { siBuffer, NULL, 0 }, id = { siBuffer, NULL, 0 };
      if (PK11_ReadRawAttribute (PK11_TypeGeneric, o, CKA_VALUE, &value) == SECSuccess
          && g_bytes_get_size (cm_cert_get_der (c)) == value.len
          && memcmp (g_bytes_get_data (cm_cert_get_der (c), NULL), value.data, value.len) == 0
          && PK11_ReadRawAttribute (PK11_TypeGeneric, o, CKA_ID, &id) == SECSuccess && id.len > 0)
        {
          hex = g_string_new (NULL);
          for (unsigned int i = 0; i < id.len; i++)
            g_string_append_printf (hex, "%02x", id.data[i]);
        }
      SECITEM_FreeItem (&value, PR_FALSE);
      SECITEM_FreeItem (&id, PR_FALSE);
    }
  if (objs)
    PK11_DestroyGenericObjects (objs);
  return hex ? g_string_free (hex, FALSE) : NULL;
}

/* Fill @card from @slot's token. */
static gboolean
read_token (PK11SlotInfo *slot, gint64 at, LoginCard *card, GError **error)
{
  g_autoptr (CmInventory) inv = cm_inventory_new ();
  g_autoptr (CmCert) cert = NULL;

  card->reader = slot_reader (slot);
  card->token = g_strdup (PK11_GetTokenName (slot));
  card->identity = cm_nss_token_identity (slot);
  card->slot_id = PK11_GetSlotID (slot);
  if (!cm_nss_add_token_certs_sync (inv, slot, NULL, NULL, error))
    return FALSE;
  cert = pick_login (inv, card->reader, at, error);
  if (cert == NULL)
    return FALSE;
  card->sha256 = g_strdup (cm_cert_get_sha256 (cert));
  card->subject = g_strdup (cm_cert_get_subject (cert));
  card->upn = g_strdup (cm_cert_get_upn (cert));
  card->cert_id = cert_object_id (slot, cert);
  if (card->cert_id == NULL)
    {
      g_set_error (error, CM_ERROR, CM_ERROR_ENVIRONMENT,
                   "the card's module shows no object ID for its PIV Authentication "
                   "certificate (%s): update OpenSC (apt-get install opensc-pkcs11)",
                   cm_nss_error_text ());
      return FALSE;
    }
  return TRUE;
}

gboolean
login_card_find (const char *reader, gint64 at, LoginCard *card, GError **error)
{
  g_autofree char *spec = NULL;
  g_autoptr (GPtrArray) found = NULL;
  SECMODModule *mod;
  gboolean ok;

  card->module = cm_nssdb_find_opensc_module ();
  if (card->module == NULL)
    {
      g_set_error (error, CM_ERROR, CM_ERROR_ENVIRONMENT,
                   "the OpenSC PKCS#11 module (opensc-pkcs11.so) is not installed: install it "
                   "with apt-get install opensc-pkcs11");
      return FALSE;
    }
  spec = g_strdup_printf ("name=\"cacmail login\" library=\"%s\"", card->module);
  mod = SECMOD_LoadUserModule (spec, NULL, PR_FALSE);
  if (mod == NULL || !mod->loaded)
    {
      g_set_error (error, CM_ERROR, CM_ERROR_ENVIRONMENT,
                   "cannot load the card's module %s (%s): reinstall it (apt-get install "
                   "--reinstall opensc-pkcs11) and check that pcscd runs",
                   card->module, cm_nss_error_text ());
      if (mod)
        SECMOD_DestroyModule (mod);
      return FALSE;
    }
  found = present_tokens (mod, reader);
  ok = no_token_error (mod, reader, found, error)
       && read_token (g_ptr_array_index (found, 0), at, card, error);
  g_clear_pointer (&found, g_ptr_array_unref);
  /* Kerberos loads the module again and initialises it itself: NSS finalises ours when it
   * shuts down (unloading a module loaded without a module database crashes NSS 3.87) */
  SECMOD_DestroyModule (mod);
  cm_shutdown ();
  return ok;
}

int
login_card_pin_tries (const char *reader)
{
  g_autoptr (CmInventory) inv = cm_inventory_new ();
  CmCardReport report = { 0 };

  report.pin_tries_left = -1;
  if (!cm_card_read_sync (inv, reader, CM_READ_ALL, &report, NULL, NULL))
    return -1;
  return report.pin_tries_left;
}
