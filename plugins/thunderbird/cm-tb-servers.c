/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cm-tb-servers.c: the mail servers of a profile's accounts, what `login` changes for each, and
 * writing it (prefs.js + ClientAuthRememberList.bin, one backup entry). */
#include "cm-tb-private.h"

void
cm_tb_server_probe_free (CmTbServerProbe *p)
{
  if (p == NULL)
    return;
  g_free (p->kind);
  g_free (p->key);
  g_free (p->host);
  g_free (p->address);
  g_free (p->error);
  g_free (p);
}

void
cm_tb_login_step_free (CmTbLoginStep *step)
{
  if (step == NULL)
    return;
  g_free (step->message);
  g_free (step);
}

static const char *
pref_str (CmTbPrefs *prefs, const char *branch, const char *key)
{
  g_autofree char *name = g_strdup_printf ("%s.%s", branch, key);
  return cm_tb_prefs_get_string (prefs, name);
}

static gint32
pref_int (CmTbPrefs *prefs, const char *branch, const char *key, gint32 fallback)
{
  g_autofree char *name = g_strdup_printf ("%s.%s", branch, key);
  return cm_tb_prefs_get_int (prefs, name, fallback);
}

static char **
split_list (const char *text)
{
  char **parts = g_strsplit (text ? text : "", ",", -1);
  for (char **p = parts; *p; p++)
    g_strstrip (*p);
  return parts;
}

/* Add the server of @branch unless it is there; the defaults are Thunderbird's. */
static void
add_server (GPtrArray *out, CmTbPrefs *prefs, const char *kind, const char *branch,
            const char *address)
{
  gboolean smtp = strcmp (kind, "smtp") == 0;
  const char *host = pref_str (prefs, branch, "hostname");
  CmTbServerProbe *p;
  gint32 port;

  if (host == NULL || *host == '\0')
    return;
  for (guint i = 0; i < out->len; i++)
    if (strcmp (((CmTbServerProbe *)g_ptr_array_index (out, i))->key, branch) == 0)
      return;
  p = g_new0 (CmTbServerProbe, 1);
  p->kind = g_strdup (kind);
  p->key = g_strdup (branch);
  p->host = g_strdup (host);
  p->address = g_strdup (address);
  p->socket_type = pref_int (prefs, branch, smtp ? "try_ssl" : "socketType", 0);
  p->auth_method = pref_int (prefs, branch, "authMethod", 3);
  port = pref_int (prefs, branch, "port", 0);
  if (port <= 1 || port > 65535)
    port = strcmp (kind, "imap") == 0   ? (p->socket_type == 3 ? 993 : 143)
           : strcmp (kind, "pop3") == 0 ? (p->socket_type == 3 ? 995 : 110)
                                        : (p->socket_type == 3 ? 465 : 587);
  p->port = (guint16)port;
  g_ptr_array_add (out, p);
}

/* The identity's address, or NULL when it has none or is not @only. */
static const char *
identity_address (CmTbPrefs *prefs, const char *id, const char *only)
{
  g_autofree char *branch = g_strdup_printf ("mail.identity.%s", id);
  const char *address = pref_str (prefs, branch, "useremail");

  if (*id == '\0' || address == NULL || *address == '\0' || (only && strcmp (only, id) != 0))
    return NULL;
  return address;
}

/* The incoming server of @account (it gets the login cert of the account's first identity),
 * then the outgoing server of each of its identities. */
static void
add_account (GPtrArray *out, CmTbPrefs *prefs, const char *account, const char *only)
{
  g_autofree char *ids_key = g_strdup_printf ("mail.account.%s.identities", account);
  g_autofree char *server_key = g_strdup_printf ("mail.account.%s.server", account);
  g_auto (GStrv) ids = split_list (cm_tb_prefs_get_string (prefs, ids_key));
  const char *server = cm_tb_prefs_get_string (prefs, server_key);
  const char *first = NULL;

  for (char **id = ids; *id && first == NULL; id++)
    first = identity_address (prefs, *id, only);
  if (server && first)
    {
      g_autofree char *branch = g_strdup_printf ("mail.server.%s", server);
      const char *type = pref_str (prefs, branch, "type");
      if (g_strcmp0 (type, "imap") == 0 || g_strcmp0 (type, "pop3") == 0)
        add_server (out, prefs, type, branch, first);
    }
  for (char **id = ids; *id; id++)
    {
      const char *address = identity_address (prefs, *id, only);
      g_autofree char *branch = g_strdup_printf ("mail.identity.%s", *id);
      g_autofree char *smtp_branch = NULL;
      const char *smtp;
      if (address == NULL)
        continue;
      smtp = pref_str (prefs, branch, "smtpServer");
      if (smtp == NULL || *smtp == '\0')
        smtp = cm_tb_prefs_get_string (prefs, "mail.smtp.defaultserver");
      if (smtp == NULL || *smtp == '\0')
        continue;
      smtp_branch = g_strdup_printf ("mail.smtpserver.%s", smtp);
      add_server (out, prefs, "smtp", smtp_branch, address);
    }
}

GPtrArray *
cm_tb_prefs_list_servers (CmTbPrefs *prefs, const char *only)
{
  GPtrArray *out = g_ptr_array_new_with_free_func ((GDestroyNotify)cm_tb_server_probe_free);
  g_auto (GStrv) accounts
    = split_list (cm_tb_prefs_get_string (prefs, "mail.accountmanager.accounts"));

  for (char **a = accounts; *a; a++)
    if (**a)
      add_account (out, prefs, *a, only);
  return out;
}

/* ---- what login changes ---- */

static CmTbLoginStep *
plan_one (CmTbServerProbe *p, CmInventory *inv, gint64 at)
{
  CmTbLoginStep *step = g_new0 (CmTbLoginStep, 1);
  g_autoptr (CmPicks) picks = NULL;
  CmCert *login;

  step->probe = p;
  if (p->error)
    {
      step->message = g_strdup_printf ("not checked: %s; nothing changed for it", p->error);
      return step;
    }
  if (!p->asks_cert)
    {
      step->message = g_strdup ("does not ask for a client certificate: nothing to do");
      return step;
    }
  picks = cm_select_for_email (inv, p->address, at, NULL);
  login = cm_picks_get_login (picks);
  if (login == NULL || !cm_tb_seen_by_thunderbird (login))
    {
      step->message = g_strdup_printf (
        "asks for a client certificate, but Thunderbird sees no PIV Authentication certificate "
        "for %s: insert the card, close Thunderbird, run 'cacmail nss register --client "
        "thunderbird', then this again",
        p->address);
      return step;
    }
  step->cert = login;
  step->remembered = TRUE;
  if (p->offers_external)
    {
      step->auth_set = TRUE;
      step->message = g_strdup ("asks for a client certificate and offers to log in with it: "
                                "the card's login certificate is remembered for it and the "
                                "authentication method becomes TLS certificate");
    }
  else if (p->requires_cert)
    step->message = g_strdup (
      "requires a client certificate: the card's login certificate is remembered for it; its "
      "login methods show only to a client with a certificate, so the authentication method is "
      "left as it is (choose 'TLS Certificate' in the account settings if your mail "
      "administrator says so)");
  else
    step->message = g_strdup ("asks for a client certificate but offers no login with it: the "
                              "card's login certificate is remembered for it and the "
                              "authentication method is left as it is");
  return step;
}

/* Kerberos only: authMethod 5 where the server offers GSSAPI. */
static CmTbLoginStep *
plan_kerberos (CmTbServerProbe *p)
{
  CmTbLoginStep *step = g_new0 (CmTbLoginStep, 1);
  gboolean incoming = strcmp (p->kind, "smtp") != 0;

  step->probe = p;
  if (p->offers_gssapi)
    {
      step->kerberos_set = TRUE;
      step->message = g_strdup ("offers Kerberos (GSSAPI) login: the authentication method "
                                "becomes Kerberos / GSSAPI, and Thunderbird logs in with your "
                                "ticket");
      return step;
    }
  step->refused = incoming;
  if (p->error)
    step->message = g_strdup_printf ("not checked: %s; nothing changed for it", p->error);
  else if (incoming)
    step->message = g_strdup_printf (
      "%s:%u does not offer Kerberos (GSSAPI) login, so nothing changed: ask your mail "
      "administrator to enable it, or use 'cacmail thunderbird login --method certificate'",
      p->host, p->port);
  else
    step->message = g_strdup ("does not offer Kerberos (GSSAPI) login: its authentication "
                              "method is left as it is");
  return step;
}

/* Auto: the certificate path where the server asks for one, Kerberos where it offers it. */
static CmTbLoginStep *
plan_auto (CmTbServerProbe *p, CmInventory *inv, gint64 at)
{
  CmTbLoginStep *step;

  if (p->error || (!p->asks_cert && !p->offers_gssapi))
    {
      step = plan_one (p, inv, at);
      if (!p->error)
        {
          g_free (step->message);
          step->message = g_strdup ("asks for no client certificate and offers no Kerberos "
                                    "(GSSAPI) login: nothing to do");
        }
      return step;
    }
  if (!p->asks_cert)
    return plan_kerberos (p);
  step = plan_one (p, inv, at);
  if (step->remembered && !step->auth_set && p->offers_gssapi)
    {
      g_free (step->message);
      step->kerberos_set = TRUE;
      step->message = g_strdup ("asks for a client certificate and offers Kerberos (GSSAPI) "
                                "login: the card's login certificate is remembered for it and "
                                "the authentication method becomes Kerberos / GSSAPI");
    }
  return step;
}

GPtrArray *
cm_tb_login_plan_mode (GPtrArray *probes, CmInventory *inv, gint64 at, CmTbLoginMode mode)
{
  GPtrArray *out = g_ptr_array_new_with_free_func ((GDestroyNotify)cm_tb_login_step_free);

  for (guint i = 0; i < probes->len; i++)
    {
      CmTbServerProbe *p = g_ptr_array_index (probes, i);
      g_ptr_array_add (out, mode == CM_TB_LOGIN_KERBEROS ? plan_kerberos (p)
                            : mode == CM_TB_LOGIN_AUTO   ? plan_auto (p, inv, at)
                                                         : plan_one (p, inv, at));
    }
  return out;
}

GPtrArray *
cm_tb_login_plan (GPtrArray *probes, CmInventory *inv, gint64 at)
{
  return cm_tb_login_plan_mode (probes, inv, at, CM_TB_LOGIN_CERTIFICATE);
}

CmTbLoginStep *
cm_tb_login_refused (GPtrArray *steps)
{
  for (guint i = 0; i < steps->len; i++)
    if (((CmTbLoginStep *)g_ptr_array_index (steps, i))->refused)
      return g_ptr_array_index (steps, i);
  return NULL;
}

gint
cm_tb_profile_login_sync (CmTbProfile *p, GPtrArray *steps, GError **error)
{
  const char *dir = cm_tb_profile_get_dir (p);
  CmTbPrefs *prefs = cm_tb_profile_get_prefs (p);
  g_autoptr (CmTbClientAuth) ca = NULL;
  g_autoptr (CmTbBackup) b = NULL;
  g_autoptr (GPtrArray) changes
    = g_ptr_array_new_with_free_func ((GDestroyNotify)cm_tb_pref_change_free);
  g_autoptr (GPtrArray) remembered
    = g_ptr_array_new_with_free_func ((GDestroyNotify)cm_tb_pref_change_free);
  gint n = 0;

  if (cm_tb_login_refused (steps))
    {
      g_set_error (error, CM_ERROR, CM_ERROR_UNSAFE, "%s", cm_tb_login_refused (steps)->message);
      return -1;
    }
  if (!cm_tb_profile_check_closed (p, error) || (ca = cm_tb_client_auth_load (dir, error)) == NULL)
    return -1;
  for (guint i = 0; i < steps->len; i++)
    {
      CmTbLoginStep *s = g_ptr_array_index (steps, i);
      gboolean changed = FALSE;
      if (s->remembered)
        {
          g_autofree char *key = cm_nss_cert_dbkey (s->cert);
          const char *old = cm_tb_client_auth_get (ca, s->probe->host);
          if (g_strcmp0 (old, key) != 0)
            {
              CmTbPrefValue o
                = { .type = old ? CM_TB_PREF_STRING : CM_TB_PREF_UNSET, .string = (char *)old };
              CmTbPrefValue k = { .type = CM_TB_PREF_STRING, .string = key };
              g_ptr_array_add (remembered, cm_tb_pref_change_new (s->probe->host, &o, &k));
              cm_tb_client_auth_set (ca, s->probe->host, key);
              changed = TRUE;
            }
        }
      if (s->auth_set || s->kerberos_set)
        {
          g_autofree char *name = g_strdup_printf ("%s.authMethod", s->probe->key);
          const CmTbPrefValue *old = cm_tb_prefs_get (prefs, name);
          /* nsMsgAuthMethod (comm-central MailNewsTypes2.idl): 7 External, 5 GSSAPI */
          CmTbPrefValue method = { .type = CM_TB_PREF_INT, .integer = s->auth_set ? 7 : 5 };
          if (!cm_tb_pref_value_equal (old, &method))
            {
              g_ptr_array_add (changes, cm_tb_pref_change_new (name, old, &method));
              changed = TRUE;
            }
        }
      n += changed;
    }
  if (n == 0)
    return 0;
  /* both files are copied and the entry saved before either changes */
  if (!cm_tb_profile_lock (p, error) || (b = cm_tb_backup_begin (dir, "login", error)) == NULL)
    {
      cm_tb_profile_unlock (p);
      return -1;
    }
  for (guint i = 0; i < remembered->len; i++)
    {
      CmTbPrefChange *c = g_ptr_array_index (remembered, i);
      cm_tb_backup_add_client_auth (b, c->name, c->old_value.string, c->new_value.string);
    }
  if (!cm_tb_backup_add_file (b, "ClientAuthRememberList.bin", error)
      || !cm_tb_profile_write_prefs (p, b, changes, error)
      || !cm_tb_client_auth_write (ca, dir, error))
    {
      cm_tb_profile_unlock (p);
      return -1;
    }
  cm_tb_profile_unlock (p);
  if (!cm_tb_backup_finish (b, error))
    g_clear_error (error); /* written; undo then reverts change by change */
  return n;
}
