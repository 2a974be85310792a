/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cm-select.c: for one email identity at one time, pick the login, signing and encryption
 * certs, and say what is wrong with a hint for each problem (codes: docs/problems.md). */
#include "cm-private.h"

struct _CmProblem
{
  char *code;
  CmSeverity severity;
  char *message;
  char *hint;
  GPtrArray *certs; /* sha256 strings */
};

struct _CmPicks
{
  char *email;
  gint64 at;
  CmCert *login, *signing, *encryption; /* refs */
  CmPersona *persona;                   /* borrowed from the inventory */
  GPtrArray *decrypt_only;              /* CmCert* refs */
  GPtrArray *problems;                  /* CmProblem* */
  GPtrArray *explanations;              /* char* */
};

CmProblem *
cm_problem_new (const char *code, CmSeverity severity, const char *message, const char *hint)
{
  CmProblem *p = g_new0 (CmProblem, 1);
  p->code = g_strdup (code);
  p->severity = severity;
  p->message = g_strdup (message);
  p->hint = g_strdup (hint);
  p->certs = g_ptr_array_new_with_free_func (g_free);
  return p;
}

void
cm_problem_add_cert (CmProblem *p, const char *sha256)
{
  if (sha256 && !g_ptr_array_find_with_equal_func (p->certs, sha256, g_str_equal, NULL))
    g_ptr_array_add (p->certs, g_strdup (sha256));
}

void
cm_problem_free (CmProblem *p)
{
  if (p == NULL)
    return;
  g_free (p->code);
  g_free (p->message);
  g_free (p->hint);
  g_ptr_array_unref (p->certs);
  g_free (p);
}

const char *
cm_problem_get_code (const CmProblem *p)
{
  return p->code;
}
CmSeverity
cm_problem_get_severity (const CmProblem *p)
{
  return p->severity;
}
const char *
cm_problem_get_message (const CmProblem *p)
{
  return p->message;
}
const char *
cm_problem_get_hint (const CmProblem *p)
{
  return p->hint;
}
GPtrArray *
cm_problem_get_certs (const CmProblem *p)
{
  return p->certs;
}

const char *
cm_severity_to_string (CmSeverity s)
{
  return s == CM_SEVERITY_ERROR ? "error" : s == CM_SEVERITY_WARNING ? "warning" : "info";
}

/* ---- reader and card states ---- */

static const struct
{
  const char *code;
  CmSeverity severity;
  const char *hint;
} states[] = {
  [CM_STATE_PCSCD_NOT_RUNNING] = { "pcscd-not-running", CM_SEVERITY_ERROR,
                                   "Start pcscd (systemctl start pcscd.socket) and try again" },
  [CM_STATE_NO_READER]
  = { "no-reader", CM_SEVERITY_ERROR, "Plug in a smart card reader (check it with pcsc_scan)" },
  [CM_STATE_NO_CARD] = { "no-card", CM_SEVERITY_ERROR, "Insert your CAC or PIV card" },
  [CM_STATE_CARD_READ_FAILED] = { "card-read-failed", CM_SEVERITY_ERROR,
                                  "Re-insert the card; if it persists the card may not be a CAC "
                                  "or PIV card" },
  [CM_STATE_PIN_BLOCKED] = { "pin-blocked", CM_SEVERITY_ERROR,
                             "Unblock the PIN at a RAPIDS / card issuing office (it cannot be "
                             "done here)" },
  [CM_STATE_PIN_TRIES_LOW] = { "pin-tries-low", CM_SEVERITY_WARNING,
                               "Enter the PIN carefully: one more wrong PIN blocks the card" },
};

CmProblem *
cm_problem_new_state (CmState state, const char *reader, const char *detail)
{
  g_autofree char *msg = NULL;

  g_return_val_if_fail ((guint)state < G_N_ELEMENTS (states), NULL);
  switch (state)
    {
    case CM_STATE_PCSCD_NOT_RUNNING:
      /* the error's own fix is the hint's: say it once */
      msg = g_strdup (detail && !g_str_has_prefix (detail, CM_PCSCD_NOT_RUNNING_TEXT)
                        ? detail
                        : CM_PCSCD_NOT_RUNNING_TEXT);
      break;
    case CM_STATE_NO_READER: msg = g_strdup ("no smart card reader is connected"); break;
    case CM_STATE_NO_CARD: msg = g_strdup ("no card in any reader"); break;
    case CM_STATE_CARD_READ_FAILED:
      msg = g_strdup (detail ? detail : "the card could not be read");
      break;
    case CM_STATE_PIN_BLOCKED:
      msg = g_strdup_printf ("the PIN of the card in %s is blocked", reader ? reader : "a reader");
      break;
    case CM_STATE_PIN_TRIES_LOW:
    default:
      msg = g_strdup_printf ("the card in %s has 1 PIN try left", reader ? reader : "a reader");
      break;
    }
  return cm_problem_new (states[state].code, states[state].severity, msg, states[state].hint);
}

static CmProblem *problem (GPtrArray *list, const char *code, CmSeverity sev, const char *hint,
                           const char *fmt, ...) G_GNUC_PRINTF (5, 6);

static CmProblem *
problem (GPtrArray *list, const char *code, CmSeverity sev, const char *hint, const char *fmt, ...)
{
  va_list ap;
  g_autofree char *msg = NULL;
  CmProblem *p;

  va_start (ap, fmt);
  msg = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  p = cm_problem_new (code, sev, msg, hint);
  g_ptr_array_add (list, p);
  return p;
}

/* ---- inventory-wide checks ---- */

static void
check_card (CmCard *card, GPtrArray *out)
{
  const CmChuid *chuid = cm_card_get_chuid (card);
  CmSlot slots[] = { CM_SLOT_9A, CM_SLOT_9E };
  CmProblem *fascn_p = NULL, *uuid_p = NULL;

  if (chuid == NULL)
    return;
  for (gsize i = 0; i < G_N_ELEMENTS (slots); i++)
    {
      CmCert *c = cm_card_get_cert (card, slots[i]);
      const CmFascn *cf = c ? cm_cert_get_fascn (c) : NULL;
      const CmFascn *hf = cm_chuid_get_fascn (chuid);
      const char *cu = c ? cm_cert_get_uuid (c) : NULL;
      const char *hu = cm_chuid_get_guid (chuid);

      if (cf && hf && strcmp (cf->hex, hf->hex) != 0)
        {
          if (!fascn_p)
            fascn_p = problem (out, "chuid-fascn-mismatch", CM_SEVERITY_ERROR,
                               "The card was personalised wrongly or a certificate replaced: "
                               "have it reissued; do not use it to log in",
                               "card %s: the CHUID's FASC-N differs from the FASC-N in its %s "
                               "certificate",
                               cm_card_get_label (card),
                               slots[i] == CM_SLOT_9A ? "PIV Authentication" : "Card Auth");
          cm_problem_add_cert (fascn_p, cm_cert_get_sha256 (c));
        }
      if (cu && hu && g_ascii_strcasecmp (cu, hu) != 0)
        {
          if (!uuid_p)
            uuid_p = problem (out, "chuid-uuid-mismatch", CM_SEVERITY_ERROR,
                              "The card was personalised wrongly or a certificate replaced: "
                              "have it reissued; do not use it to log in",
                              "card %s: the CHUID's card UUID %s differs from the UUID %s in "
                              "its %s certificate",
                              cm_card_get_label (card), hu, cu,
                              slots[i] == CM_SLOT_9A ? "PIV Authentication" : "Card Auth");
          cm_problem_add_cert (uuid_p, cm_cert_get_sha256 (c));
        }
    }
}

GPtrArray *
cm_select_check_inventory (CmInventory *inv, gint64 at, CmTrust *trust)
{
  GPtrArray *out = g_ptr_array_new_with_free_func ((GDestroyNotify)cm_problem_free);
  GPtrArray *cards = cm_inventory_get_cards (inv);

  GPtrArray *conflicts = cm_inventory_get_persona_conflicts (inv);

  for (guint i = 0; i < cards->len; i++)
    check_card (g_ptr_array_index (cards, i), out);
  for (guint i = 0; i < conflicts->len; i++)
    {
      CmPersonaConflict *c = g_ptr_array_index (conflicts, i);
      CmProblem *p
        = problem (out, "persona-id-conflict", CM_SEVERITY_ERROR,
                   "Give the card folders, or insert the cards, instead of loose certificate "
                   "files: cacmail then sees which card each certificate sits on",
                   "certificates with the same name carry two persona IDs, %s and %s: they "
                   "belong to two persona cards and are kept apart",
                   c->persona_ids[0], c->persona_ids[1]);
      for (guint j = 0; j < c->certs->len; j++)
        cm_problem_add_cert (p, g_ptr_array_index (c->certs, j));
    }
  return out;
}

/* ---- picking ---- */

static gboolean
is_retired (CmCert *c)
{
  GPtrArray *sources = cm_cert_get_sources (c);
  for (guint i = 0; i < sources->len; i++)
    {
      CmSlot s = ((CmSource *)g_ptr_array_index (sources, i))->slot;
      if (s >= CM_SLOT_RETIRED_FIRST && s <= CM_SLOT_RETIRED_LAST)
        return TRUE;
    }
  return FALSE;
}

/* Newer first: notBefore, then notAfter, then sha256 for a stable order. */
static int
newer_first (gconstpointer a, gconstpointer b)
{
  CmCert *x = *(CmCert **)a, *y = *(CmCert **)b;
  if (cm_cert_get_not_before (x) != cm_cert_get_not_before (y))
    return cm_cert_get_not_before (x) > cm_cert_get_not_before (y) ? -1 : 1;
  if (cm_cert_get_not_after (x) != cm_cert_get_not_after (y))
    return cm_cert_get_not_after (x) > cm_cert_get_not_after (y) ? -1 : 1;
  return strcmp (cm_cert_get_sha256 (x), cm_cert_get_sha256 (y));
}

static int
later_expiry_first (gconstpointer a, gconstpointer b)
{
  CmCert *x = *(CmCert **)a, *y = *(CmCert **)b;
  if (cm_cert_get_not_after (x) != cm_cert_get_not_after (y))
    return cm_cert_get_not_after (x) > cm_cert_get_not_after (y) ? -1 : 1;
  return strcmp (cm_cert_get_sha256 (x), cm_cert_get_sha256 (y));
}

static int
soonest_first (gconstpointer a, gconstpointer b)
{
  CmCert *x = *(CmCert **)a, *y = *(CmCert **)b;
  if (cm_cert_get_not_before (x) != cm_cert_get_not_before (y))
    return cm_cert_get_not_before (x) < cm_cert_get_not_before (y) ? -1 : 1;
  return strcmp (cm_cert_get_sha256 (x), cm_cert_get_sha256 (y));
}

typedef struct
{
  const char *code_prefix; /* "piv-auth", "signing-cert", "encryption-cert" */
  const char *what;        /* for messages */
  const char *missing_hint;
  const char *expired_hint;
} RoleText;

static const RoleText login_text = {
  "piv-auth",
  "PIV Authentication (login)",
  "Activate the PIV Authentication certificate in the card maintenance portal; if it cannot be "
  "activated the card is too old: get a new card at a RAPIDS office",
  "Get new certificates on the card at a RAPIDS office (or the card maintenance portal)",
};
static const RoleText sign_text = {
  "signing-cert",
  "email signing",
  "Get email certificates for this address in the card maintenance portal or at a RAPIDS office",
  "Renew the email certificates in the card maintenance portal or at a RAPIDS office",
};
static const RoleText enc_text = {
  "encryption-cert",
  "email encryption",
  "Get email certificates for this address in the card maintenance portal or at a RAPIDS office",
  "Renew the email certificates in the card maintenance portal or at a RAPIDS office",
};

/* Pick the newest valid cert of @cands (trusted ones first when @trust is set); otherwise
 * report why there is none. Returns a borrowed pointer or NULL. */
static CmCert *
pick_one (CmPicks *pk, GPtrArray *cands, CmTrust *trust, const RoleText *rt)
{
  g_autoptr (GPtrArray) valid = g_ptr_array_new ();
  g_autoptr (GPtrArray) expired = g_ptr_array_new ();
  g_autoptr (GPtrArray) future = g_ptr_array_new ();
  CmCert *best = NULL;

  for (guint i = 0; i < cands->len; i++)
    {
      CmCert *c = g_ptr_array_index (cands, i);
      if (cm_cert_is_valid_at (c, pk->at))
        g_ptr_array_add (valid, c);
      else if (cm_cert_get_not_after (c) < pk->at)
        g_ptr_array_add (expired, c);
      else
        g_ptr_array_add (future, c);
    }
  g_ptr_array_sort (valid, newer_first);
  if (valid->len && trust)
    for (guint i = 0; i < valid->len && !best; i++)
      if (cm_trust_build_chain (trust, g_ptr_array_index (valid, i), pk->at, NULL) == CM_CHAIN_OK)
        best = g_ptr_array_index (valid, i);
  if (valid->len && !best)
    best = g_ptr_array_index (valid, 0);
  if (best)
    return best;

  if (cands->len == 0)
    {
      g_autofree char *code = g_strdup_printf ("%s-missing", rt->code_prefix);
      problem (pk->problems, code, CM_SEVERITY_ERROR, rt->missing_hint, "no %s certificate for %s",
               rt->what, pk->email);
    }
  if (future->len)
    {
      g_ptr_array_sort (future, soonest_first);
      g_autofree char *code = g_strdup_printf ("%s-not-yet-valid", rt->code_prefix);
      g_autofree char *from
        = cm_time_format_date (cm_cert_get_not_before (g_ptr_array_index (future, 0)));
      CmProblem *p
        = problem (pk->problems, code, CM_SEVERITY_ERROR,
                   "Wait until it becomes valid, or check this computer's clock",
                   "the %s certificate for %s is not valid until %s", rt->what, pk->email, from);
      for (guint i = 0; i < future->len; i++)
        cm_problem_add_cert (p, cm_cert_get_sha256 (g_ptr_array_index (future, i)));
    }
  if (expired->len)
    {
      g_autofree char *code = g_strdup_printf ("%s-expired", rt->code_prefix);
      g_ptr_array_sort (expired, later_expiry_first);
      g_autofree char *until
        = cm_time_format_date (cm_cert_get_not_after (g_ptr_array_index (expired, 0)));
      CmProblem *p = problem (pk->problems, code, CM_SEVERITY_ERROR, rt->expired_hint,
                              "every %s certificate for %s has expired (the newest on %s)",
                              rt->what, pk->email, until);
      for (guint i = 0; i < expired->len; i++)
        cm_problem_add_cert (p, cm_cert_get_sha256 (g_ptr_array_index (expired, i)));
    }
  return NULL;
}

static void
check_chain (CmPicks *pk, CmCert *c, CmTrust *trust, const char *what)
{
  CmChainStatus st;
  static const char *const why[] = {
    [CM_CHAIN_OK] = "",
    [CM_CHAIN_NO_ISSUER] = "an issuing CA certificate is missing",
    [CM_CHAIN_UNTRUSTED_ROOT] = "it ends at a root that is not trusted",
    [CM_CHAIN_CA_NOT_VALID] = "a CA on the path is expired or not yet valid",
    [CM_CHAIN_BAD_SIGNATURE] = "a signature on the path does not verify",
  };

  if (c == NULL || trust == NULL)
    return;
  st = cm_trust_build_chain (trust, c, pk->at, NULL);
  if (st != CM_CHAIN_OK)
    {
      CmProblem *p = problem (pk->problems, "chain-untrusted", CM_SEVERITY_ERROR,
                              "Install the DoD root and intermediate CA certificates (the DoD "
                              "PKI bundle) and pass them with --ca",
                              "the %s certificate '%s' does not chain to a trusted root: %s", what,
                              cm_cert_get_subject (c), why[st]);
      cm_problem_add_cert (p, cm_cert_get_sha256 (c));
    }
}

static const char *
persona_label (CmPersona *p)
{
  return p ? cm_persona_get_key (p) : "(none)";
}

static void
explain (CmPicks *pk, const char *what, CmCert *c, guint n_cands)
{
  g_autofree char *until = NULL;
  const char *slot;

  if (c == NULL)
    return;
  until = cm_time_format_date (cm_cert_get_not_after (c));
  slot = cm_slot_to_string (cm_cert_get_slot (c));
  g_ptr_array_add (pk->explanations,
                   g_strdup_printf ("%s: %s (%s%s%s), valid until %s: the newest valid of %u "
                                    "candidate(s) of persona %s",
                                    what, cm_cert_get_subject (c),
                                    cm_role_to_string (cm_cert_get_role (c)), slot ? ", slot " : "",
                                    slot ? slot : "", until, n_cands, persona_label (pk->persona)));
}

/* What a decrypt-only cert is: a retired slot, a recovered key, another persona's cert, or an
 * older generation of this persona's. Static string or NULL (then: another persona). */
static const char *
decrypt_only_kind (CmInventory *inv, CmPicks *pk, CmCert *c)
{
  if (is_retired (c))
    return "a retired key management certificate on the card";
  if (cm_inventory_is_decrypt_only (inv, cm_cert_get_sha256 (c)))
    return "a recovered escrow key";
  if (pk->persona && cm_inventory_persona_of (inv, c) != pk->persona)
    return NULL;
  if (pk->encryption && cm_cert_get_not_before (c) > cm_cert_get_not_before (pk->encryption))
    return "a newer certificate that cannot be used now (see the problems)";
  return "an older generation of this persona's encryption certificate";
}

static void
explain_decrypt_only (CmInventory *inv, CmPicks *pk, CmCert *c)
{
  g_autofree char *until = cm_time_format_date (cm_cert_get_not_after (c));
  const char *kind = decrypt_only_kind (inv, pk, c);
  g_autofree char *other = NULL;

  if (kind == NULL)
    {
      CmPersona *p = cm_inventory_persona_of (inv, c);
      other = g_strdup_printf ("%s encryption certificate of another persona (%s)",
                               cm_cert_is_valid_at (c, pk->at) ? "the current" : "an older",
                               p ? cm_persona_get_key (p) : "unknown");
      kind = other;
    }
  g_ptr_array_add (pk->explanations,
                   g_strdup_printf ("decrypt only: %s (serial %s, %s %s): %s, kept to read "
                                    "old mail",
                                    cm_cert_get_subject (c), cm_cert_get_serial (c),
                                    cm_cert_get_not_after (c) < pk->at ? "expired" : "valid until",
                                    until, kind));
}

/* The persona to act for: the one holding the newest valid signing cert for the address, else
 * the newest valid encryption cert, else the newest of any. */
static CmPersona *
choose_persona (CmInventory *inv, CmPicks *pk, GPtrArray *sign, GPtrArray *enc)
{
  g_autoptr (GPtrArray) all = g_ptr_array_new ();
  GPtrArray *lists[] = { sign, enc, all };

  g_ptr_array_extend (all, sign, NULL, NULL);
  g_ptr_array_extend (all, enc, NULL, NULL);
  for (gsize l = 0; l < G_N_ELEMENTS (lists); l++)
    {
      g_autoptr (GPtrArray) sorted = g_ptr_array_copy (lists[l], NULL, NULL);
      g_ptr_array_sort (sorted, newer_first);
      for (guint i = 0; i < sorted->len; i++)
        {
          CmCert *c = g_ptr_array_index (sorted, i);
          if (l < 2 && !cm_cert_is_valid_at (c, pk->at))
            continue;
          if (cm_inventory_persona_of (inv, c))
            return cm_inventory_persona_of (inv, c);
        }
    }
  return NULL;
}

static void
check_shared_email (CmInventory *inv, CmPicks *pk, GPtrArray *sign, GPtrArray *enc)
{
  g_autoptr (GPtrArray) personas = g_ptr_array_new ();
  g_autoptr (GString) names = g_string_new (NULL);
  CmProblem *p;
  GPtrArray *lists[] = { sign, enc };

  for (gsize l = 0; l < G_N_ELEMENTS (lists); l++)
    for (guint i = 0; i < lists[l]->len; i++)
      {
        CmCert *c = g_ptr_array_index (lists[l], i);
        CmPersona *per = cm_inventory_persona_of (inv, c);
        if (per && cm_cert_is_valid_at (c, pk->at) && !g_ptr_array_find (personas, per, NULL))
          g_ptr_array_add (personas, per);
      }
  if (personas->len < 2)
    return;
  for (guint i = 0; i < personas->len; i++)
    {
      CmPersona *per = g_ptr_array_index (personas, i);
      const char *assoc = cm_persona_get_association (per);
      g_string_append_printf (names, "%s%s%s%s%s", i ? ", " : "", cm_persona_get_key (per),
                              assoc ? " (" : "", assoc ? assoc : "", assoc ? ")" : "");
    }
  p = problem (pk->problems, "email-shared-by-personas", CM_SEVERITY_ERROR,
               "Each persona needs its own address: change one persona's email (e.g. to its "
               "mail.mil address) in the card maintenance portal, then get new email "
               "certificates for it",
               "%s is on valid certificates of %u personas: %s; mail clients and the address "
               "list cannot tell them apart",
               pk->email, personas->len, names->str);
  for (gsize l = 0; l < G_N_ELEMENTS (lists); l++)
    for (guint i = 0; i < lists[l]->len; i++)
      if (cm_cert_is_valid_at (g_ptr_array_index (lists[l], i), pk->at))
        cm_problem_add_cert (p, cm_cert_get_sha256 (g_ptr_array_index (lists[l], i)));
}

/* PIV Auth certs on no card that may be @persona's but cannot be told apart from another
 * persona card's (same EDIPI and name). */
static GPtrArray *
unknown_login_certs (CmInventory *inv, CmPersona *persona)
{
  GPtrArray *out = g_ptr_array_new ();
  GPtrArray *certs = cm_inventory_get_certs (inv);
  const char *edipi = persona ? cm_persona_get_edipi (persona) : NULL;

  for (guint i = 0; edipi && i < certs->len; i++)
    {
      CmCert *c = g_ptr_array_index (certs, i);
      if (cm_cert_get_role (c) == CM_ROLE_PIV_AUTH && cm_inventory_persona_unknown (inv, c)
          && g_strcmp0 (cm_cert_get_edipi (c), edipi) == 0)
        g_ptr_array_add (out, c);
    }
  return out;
}

static void
report_unknown_login (CmPicks *pk, GPtrArray *unknown)
{
  CmProblem *p
    = problem (pk->problems, "piv-auth-persona-unknown", CM_SEVERITY_WARNING,
               "Insert the card that holds this address's certificates, or pass its card "
               "folder: cacmail then sees which PIV Authentication certificate sits on it",
               "%u PIV Authentication certificate(s) given as files carry the name of more "
               "than one persona card: which one logs in as %s cannot be told, so none is "
               "picked",
               unknown->len, pk->email);
  for (guint i = 0; i < unknown->len; i++)
    cm_problem_add_cert (p, cm_cert_get_sha256 (g_ptr_array_index (unknown, i)));
}

static gboolean
same_persona (CmInventory *inv, CmCert *c, CmPersona *chosen)
{
  CmPersona *p = cm_inventory_persona_of (inv, c);
  return chosen == NULL || p == NULL || p == chosen;
}

CmPicks *
cm_select_for_email (CmInventory *inv, const char *email, gint64 at, CmTrust *trust)
{
  CmPicks *pk = g_new0 (CmPicks, 1);
  GPtrArray *certs = cm_inventory_get_certs (inv);
  g_autoptr (GPtrArray) sign = g_ptr_array_new ();
  g_autoptr (GPtrArray) enc = g_ptr_array_new ();
  g_autoptr (GPtrArray) sign_c = g_ptr_array_new ();
  g_autoptr (GPtrArray) enc_c = g_ptr_array_new ();
  g_autoptr (GPtrArray) login_c = g_ptr_array_new ();
  g_autoptr (GPtrArray) card_problems = NULL;
  g_autoptr (GPtrArray) unknown = NULL;
  gboolean card_auth_seen = FALSE;

  pk->email = g_ascii_strdown (email, -1);
  pk->at = at;
  pk->decrypt_only = g_ptr_array_new_with_free_func ((GDestroyNotify)cm_cert_unref);
  pk->problems = g_ptr_array_new_with_free_func ((GDestroyNotify)cm_problem_free);
  pk->explanations = g_ptr_array_new_with_free_func (g_free);

  for (guint i = 0; i < certs->len; i++)
    {
      CmCert *c = g_ptr_array_index (certs, i);
      if (!cm_cert_has_email (c, email))
        continue;
      if (cm_cert_get_role (c) == CM_ROLE_EMAIL_SIGNING)
        g_ptr_array_add (sign, c);
      else if (cm_cert_get_role (c) == CM_ROLE_EMAIL_ENCRYPTION)
        g_ptr_array_add (enc, c);
    }
  if (sign->len == 0 && enc->len == 0)
    {
      problem (pk->problems, "email-not-found", CM_SEVERITY_ERROR,
               "Check the address, or insert / give the card that holds this identity",
               "no email certificate carries %s", pk->email);
      return pk;
    }
  check_shared_email (inv, pk, sign, enc);
  pk->persona = choose_persona (inv, pk, sign, enc);

  /* Retired slots and recovered escrow keys only ever decrypt old mail. */
  for (guint i = 0; i < sign->len; i++)
    if (same_persona (inv, g_ptr_array_index (sign, i), pk->persona)
        && !cm_inventory_is_decrypt_only (inv, cm_cert_get_sha256 (g_ptr_array_index (sign, i))))
      g_ptr_array_add (sign_c, g_ptr_array_index (sign, i));
  for (guint i = 0; i < enc->len; i++)
    if (!is_retired (g_ptr_array_index (enc, i))
        && !cm_inventory_is_decrypt_only (inv, cm_cert_get_sha256 (g_ptr_array_index (enc, i)))
        && same_persona (inv, g_ptr_array_index (enc, i), pk->persona))
      g_ptr_array_add (enc_c, g_ptr_array_index (enc, i));
  if (pk->persona)
    {
      GPtrArray *pc = cm_persona_get_certs (pk->persona);
      for (guint i = 0; i < pc->len; i++)
        {
          CmCert *c = g_ptr_array_index (pc, i);
          if (cm_cert_get_role (c) == CM_ROLE_PIV_AUTH)
            g_ptr_array_add (login_c, c);
          else if (cm_cert_get_role (c) == CM_ROLE_CARD_AUTH)
            card_auth_seen = TRUE;
        }
    }

  unknown = unknown_login_certs (inv, pk->persona);
  if (login_c->len == 0 && unknown->len)
    report_unknown_login (pk, unknown);
  else
    pk->login = pick_one (pk, login_c, trust, &login_text);
  pk->signing = pick_one (pk, sign_c, trust, &sign_text);
  pk->encryption = pick_one (pk, enc_c, trust, &enc_text);
  if (login_c->len == 0 && card_auth_seen)
    problem (pk->problems, "card-auth-offered-for-login", CM_SEVERITY_WARNING,
             "Use the PIV Authentication certificate to log in; activate it if it is missing",
             "the card offers only its Card Authentication certificate for %s: it proves the "
             "card, not the person, and cannot log in to mail or the directory",
             pk->email);
  check_chain (pk, pk->login, trust, "login");
  check_chain (pk, pk->signing, trust, "signing");
  check_chain (pk, pk->encryption, trust, "encryption");
  if (pk->login)
    pk->login = cm_cert_ref (pk->login);
  if (pk->signing)
    pk->signing = cm_cert_ref (pk->signing);
  if (pk->encryption)
    pk->encryption = cm_cert_ref (pk->encryption);

  /* Every other encryption cert for the address stays usable to read old mail. */
  for (guint i = 0; i < enc->len; i++)
    if (g_ptr_array_index (enc, i) != pk->encryption)
      g_ptr_array_add (pk->decrypt_only, cm_cert_ref (g_ptr_array_index (enc, i)));
  g_ptr_array_sort (pk->decrypt_only, later_expiry_first);

  explain (pk, "login", pk->login, login_c->len);
  explain (pk, "signing", pk->signing, sign_c->len);
  explain (pk, "encryption", pk->encryption, enc_c->len);
  for (guint i = 0; i < pk->decrypt_only->len; i++)
    explain_decrypt_only (inv, pk, g_ptr_array_index (pk->decrypt_only, i));

  /* Card problems of the persona's cards belong to this identity too. */
  card_problems = cm_select_check_inventory (inv, at, trust);
  for (guint i = 0; i < card_problems->len; i++)
    {
      CmProblem *p = g_ptr_array_index (card_problems, i);
      gboolean mine = FALSE;
      for (guint j = 0; j < p->certs->len && !mine; j++)
        {
          CmCert *c = cm_inventory_lookup (inv, g_ptr_array_index (p->certs, j));
          mine = c && pk->persona && cm_inventory_persona_of (inv, c) == pk->persona;
        }
      if (mine)
        g_ptr_array_add (pk->problems, g_ptr_array_steal_index (card_problems, i--));
    }
  return pk;
}

const char *
cm_picks_get_email (CmPicks *pk)
{
  return pk->email;
}
gint64
cm_picks_get_at (CmPicks *pk)
{
  return pk->at;
}
CmCert *
cm_picks_get_login (CmPicks *pk)
{
  return pk->login;
}
CmCert *
cm_picks_get_signing (CmPicks *pk)
{
  return pk->signing;
}
CmCert *
cm_picks_get_encryption (CmPicks *pk)
{
  return pk->encryption;
}
GPtrArray *
cm_picks_get_decrypt_only (CmPicks *pk)
{
  return pk->decrypt_only;
}
GPtrArray *
cm_picks_get_problems (CmPicks *pk)
{
  return pk->problems;
}
GPtrArray *
cm_picks_get_explanations (CmPicks *pk)
{
  return pk->explanations;
}
CmPersona *
cm_picks_get_persona (CmPicks *pk)
{
  return pk->persona;
}

void
cm_picks_free (CmPicks *pk)
{
  if (pk == NULL)
    return;
  g_free (pk->email);
  g_clear_pointer (&pk->login, cm_cert_unref);
  g_clear_pointer (&pk->signing, cm_cert_unref);
  g_clear_pointer (&pk->encryption, cm_cert_unref);
  g_ptr_array_unref (pk->decrypt_only);
  g_ptr_array_unref (pk->problems);
  g_ptr_array_unref (pk->explanations);
  g_free (pk);
}
