/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cm-cert.c: decode a certificate once (NSS for the structure, cm-der for the extension values
 * the classifier reads) and keep everything as plain strings. */
#include "cm-private.h"
#include <pk11pub.h>
#include "cm-oids.h"

struct _CmCert
{
  gint ref_count;
  GBytes *der;
  CERTCertificate *nss;
  char *sha256;
  char *subject;
  char *issuer;
  char *subject_cn;
  char *serial;
  gint64 not_before;
  gint64 not_after;
  guint key_usage;
  gboolean has_key_usage;
  GStrv ekus;
  GStrv policies;
  GStrv emails;
  char *upn;
  char *edipi;
  char *persona_id;
  gboolean has_fascn;
  CmFascn fascn;
  char *uuid;
  gboolean is_ca;
  gboolean self_issued;
  SECItem ski;
  SECItem aki;
  GPtrArray *sources; /* CmSource* */
  CmRole role;
  GStrv reasons;
};

/* NSS exports its decoder only under this name (cert.h's CERT_DecodeDERCertificate is not
 * exported); it decodes without touching any certificate store, which is what we want. */
extern CERTCertificate *__CERT_DecodeDERCertificate (SECItem *der, PRBool copy, char *nickname);

/* Implemented in cm-classify.c. */
G_GNUC_INTERNAL void cm_classify (CmCert *cert, CmRole *role, GStrv *reasons);

CmSource *
cm_source_new (CmSourceKind kind, const char *path, CmSlot slot)
{
  CmSource *s = g_new0 (CmSource, 1);
  s->kind = kind;
  s->path = g_strdup (path);
  s->slot = slot;
  return s;
}

CmSource *
cm_source_copy (const CmSource *src)
{
  CmSource *s = cm_source_new (src->kind, src->path, src->slot);
  s->token = g_strdup (src->token);
  s->nickname = g_strdup (src->nickname);
  s->card = g_strdup (src->card);
  return s;
}

void
cm_source_free (CmSource *src)
{
  if (src == NULL)
    return;
  g_free (src->path);
  g_free (src->token);
  g_free (src->nickname);
  g_free (src->card);
  g_free (src);
}

const char *
cm_source_kind_to_string (CmSourceKind kind)
{
  switch (kind)
    {
    case CM_SOURCE_FILE: return "file";
    case CM_SOURCE_CARD_FOLDER: return "card-folder";
    case CM_SOURCE_CARD: return "card";
    case CM_SOURCE_NSS: return "nss";
    default: return "unknown";
    }
}

const char *
cm_slot_to_string (CmSlot slot)
{
  static const char *const retired[]
    = { "82", "83", "84", "85", "86", "87", "88", "89", "8a", "8b",
        "8c", "8d", "8e", "8f", "90", "91", "92", "93", "94", "95" };
  switch (slot)
    {
    case CM_SLOT_NONE: return NULL;
    case CM_SLOT_9A: return "9a";
    case CM_SLOT_9C: return "9c";
    case CM_SLOT_9D: return "9d";
    case CM_SLOT_9E: return "9e";
    case CM_SLOT_CAC_ID: return "cac-id";
    case CM_SLOT_CAC_SIGN: return "cac-sign";
    case CM_SLOT_CAC_ENC: return "cac-enc";
    default:
      if (slot >= CM_SLOT_RETIRED_FIRST && slot <= CM_SLOT_RETIRED_LAST)
        return retired[slot - CM_SLOT_RETIRED_FIRST];
      return NULL;
    }
}

const char *
cm_role_to_string (CmRole role)
{
  switch (role)
    {
    case CM_ROLE_PIV_AUTH: return "piv-auth";
    case CM_ROLE_CAC_ID: return "cac-id";
    case CM_ROLE_EMAIL_SIGNING: return "email-signing";
    case CM_ROLE_EMAIL_ENCRYPTION: return "email-encryption";
    case CM_ROLE_CARD_AUTH: return "card-auth";
    case CM_ROLE_OTHER:
    default: return "other";
    }
}

/* ---- extension decoders: each tolerates absence, returns FALSE on malformed values ---- */

static gboolean
parse_key_usage (CmCert *c, CmDer v)
{
  CmDer bits;

  if (!cm_der_expect (&v, 0x03, &bits) || bits.len < 1 || bits.p[0] > 7)
    return FALSE;
  c->has_key_usage = TRUE;
  for (gsize i = 1; i < bits.len && i < 3; i++)
    for (guint b = 0; b < 8; b++)
      if (bits.p[i] & (0x80 >> b))
        c->key_usage |= 1u << ((i - 1) * 8 + b);
  return TRUE;
}

static gboolean
parse_oid_seq (CmDer v, GStrv *out)
{
  CmDer seq, oid;
  g_autoptr (GPtrArray) arr = g_ptr_array_new_with_free_func (g_free);

  if (!cm_der_expect (&v, 0x30, &seq))
    return FALSE;
  while (seq.len > 0)
    {
      char *s;
      if (!cm_der_expect (&seq, 0x06, &oid) || (s = cm_der_oid_to_string (oid)) == NULL)
        return FALSE;
      g_ptr_array_add (arr, s);
    }
  g_ptr_array_add (arr, NULL);
  *out = (GStrv)g_ptr_array_steal (arr, NULL);
  return TRUE;
}

static gboolean
parse_policies (CmDer v, GStrv *out)
{
  CmDer seq, info, oid;
  g_autoptr (GPtrArray) arr = g_ptr_array_new_with_free_func (g_free);

  if (!cm_der_expect (&v, 0x30, &seq))
    return FALSE;
  while (seq.len > 0)
    {
      char *s;
      if (!cm_der_expect (&seq, 0x30, &info) || !cm_der_expect (&info, 0x06, &oid)
          || (s = cm_der_oid_to_string (oid)) == NULL)
        return FALSE;
      g_ptr_array_add (arr, s);
    }
  g_ptr_array_add (arr, NULL);
  *out = (GStrv)g_ptr_array_steal (arr, NULL);
  return TRUE;
}

/* DoD UPNs: "EDIPI@mil" on CAC ID and email certs, "EDIPI+persona@mil" on PIV Auth. */
static void
set_upn (CmCert *c, const char *upn)
{
  const char *at = strchr (upn, '@');

  g_free (c->upn);
  c->upn = g_strdup (upn);
  if (at == NULL || g_ascii_strcasecmp (at, "@mil") != 0)
    return;
  if ((at - upn == 10 || at - upn == 16) && cm_is_digits ((const guint8 *)upn, (gsize)(at - upn)))
    {
      c->edipi = g_strndup (upn, 10);
      if (at - upn == 16)
        c->persona_id = g_strndup (upn, 16);
    }
}

static gboolean
parse_other_name (CmCert *c, CmDer on)
{
  CmDer oid, wrapped, inner;
  guint8 tag;
  g_autofree char *oid_s = NULL;

  if (!cm_der_expect (&on, 0x06, &oid) || (oid_s = cm_der_oid_to_string (oid)) == NULL
      || !cm_der_expect (&on, 0xa0, &wrapped) || !cm_der_next (&wrapped, &tag, &inner))
    return FALSE;
  if (strcmp (oid_s, CM_OID_SAN_UPN) == 0 && (tag == 0x0c || tag == 0x16 || tag == 0x13))
    {
      g_autofree char *upn = g_strndup ((const char *)inner.p, inner.len);
      if (strlen (upn) == inner.len && g_utf8_validate (upn, -1, NULL))
        set_upn (c, upn);
    }
  else if (strcmp (oid_s, CM_OID_SAN_FASCN) == 0 && tag == 0x04)
    c->has_fascn = cm_fascn_decode (inner.p, inner.len, &c->fascn, NULL);
  return TRUE;
}

static gboolean
parse_san (CmCert *c, CmDer v)
{
  CmDer seq, gn;
  guint8 tag;
  g_autoptr (GPtrArray) emails = g_ptr_array_new_with_free_func (g_free);

  if (!cm_der_expect (&v, 0x30, &seq))
    return FALSE;
  while (seq.len > 0)
    {
      if (!cm_der_next (&seq, &tag, &gn))
        return FALSE;
      if (tag == 0xa0 && !parse_other_name (c, gn))
        return FALSE;
      if (tag == 0x81 || tag == 0x86)
        {
          g_autofree char *s = g_strndup ((const char *)gn.p, gn.len);
          if (strlen (s) != gn.len || !g_str_is_ascii (s))
            return FALSE;
          if (tag == 0x81)
            g_ptr_array_add (emails, g_steal_pointer (&s));
          else if (g_ascii_strncasecmp (s, "urn:uuid:", 9) == 0 && strlen (s) == 45 && !c->uuid)
            c->uuid = g_ascii_strdown (s + 9, -1);
        }
    }
  g_ptr_array_add (emails, NULL);
  g_strfreev (c->emails);
  c->emails = (GStrv)g_ptr_array_steal (emails, NULL);
  return TRUE;
}

static gboolean
parse_basic_constraints (CmCert *c, CmDer v)
{
  CmDer seq, b;

  if (!cm_der_expect (&v, 0x30, &seq))
    return FALSE;
  if (cm_der_expect (&seq, 0x01, &b) && b.len == 1)
    c->is_ca = b.p[0] != 0;
  return TRUE;
}

static gboolean
parse_key_id (CmDer v, guint8 tag_outer, SECItem *out)
{
  CmDer val;

  if (tag_outer == 0x04)
    {
      if (!cm_der_expect (&v, 0x04, &val))
        return FALSE;
    }
  else
    {
      CmDer seq;
      if (!cm_der_expect (&v, 0x30, &seq))
        return FALSE;
      if (!cm_der_expect (&seq, 0x80, &val))
        return TRUE; /* AKI by issuer+serial only */
    }
  out->data = g_memdup2 (val.p, val.len);
  out->len = (unsigned int)val.len;
  return TRUE;
}

static gboolean
parse_extensions (CmCert *c, GError **error)
{
  CERTCertExtension **exts = c->nss->extensions;

  for (gsize i = 0; exts && exts[i]; i++)
    {
      CmDer oid = cm_der_init (exts[i]->id.data, exts[i]->id.len);
      CmDer v = cm_der_init (exts[i]->value.data, exts[i]->value.len);
      g_autofree char *id = cm_der_oid_to_string (oid);
      gboolean ok = TRUE;

      /* RFC 5280 4.2: each extension at most once (a second one would replace the first) */
      for (gsize j = 0; j < i; j++)
        if (SECITEM_ItemsAreEqual (&exts[j]->id, &exts[i]->id))
          {
            g_set_error (error, CM_ERROR, CM_ERROR_BAD_INPUT,
                         "certificate extension %s appears twice, which RFC 5280 forbids: the "
                         "issuer must reissue the certificate",
                         id ? id : "(bad OID)");
            return FALSE;
          }
      if (id == NULL)
        ok = FALSE;
      else if (strcmp (id, CM_OID_EXT_KEY_USAGE) == 0)
        ok = parse_key_usage (c, v);
      else if (strcmp (id, CM_OID_EXT_EKU) == 0)
        ok = parse_oid_seq (v, &c->ekus);
      else if (strcmp (id, CM_OID_EXT_POLICIES) == 0)
        ok = parse_policies (v, &c->policies);
      else if (strcmp (id, CM_OID_EXT_SAN) == 0)
        ok = parse_san (c, v);
      else if (strcmp (id, CM_OID_EXT_BASIC_CONSTRAINTS) == 0)
        ok = parse_basic_constraints (c, v);
      else if (strcmp (id, CM_OID_EXT_SKI) == 0)
        ok = parse_key_id (v, 0x04, &c->ski);
      else if (strcmp (id, CM_OID_EXT_AKI) == 0)
        ok = parse_key_id (v, 0x30, &c->aki);
      if (!ok)
        {
          g_set_error (error, CM_ERROR, CM_ERROR_BAD_INPUT, "certificate extension %s is malformed",
                       id ? id : "(bad OID)");
          return FALSE;
        }
    }
  return TRUE;
}

static char *
nss_string (char *s)
{
  char *copy = s ? g_strdup (s) : NULL;
  if (s)
    PORT_Free (s);
  return copy;
}

/* Old certs name the address only in the subject's emailAddress: it counts as one. */
static void
add_subject_email (CmCert *c)
{
  char *e = CERT_GetCertEmailAddress (&c->nss->subject);
  guint n = g_strv_length (c->emails);

  if (e && *e && !cm_cert_has_email (c, e))
    {
      c->emails = g_renew (char *, c->emails, n + 2);
      c->emails[n] = g_strdup (e);
      c->emails[n + 1] = NULL;
    }
  if (e)
    PORT_Free (e);
}

/* A DoD common name is LAST.FIRST[.MIDDLE].EDIPI: the EDIPI for certs whose UPN is missing. */
static char *
edipi_from_cn (const char *cn)
{
  const char *dot = cn ? strrchr (cn, '.') : NULL;

  if (dot == NULL || dot == cn || strlen (dot + 1) != 10
      || !cm_is_digits ((const guint8 *)dot + 1, 10))
    return NULL;
  return g_strdup (dot + 1);
}

/* NSS's SHA-256 (several times GLib's speed on long inputs), lowercase hex. */
static char *
sha256_hex (const guint8 *p, gsize len)
{
  guint8 digest[32];

  if (PK11_HashBuf (SEC_OID_SHA256, digest, p, (PRInt32)len) != SECSuccess)
    return g_compute_checksum_for_data (G_CHECKSUM_SHA256, p, len);
  return cm_hex_encode (digest, sizeof digest, FALSE);
}

static GStrv
empty_strv (GStrv v)
{
  return v ? v : g_new0 (char *, 1);
}

CmCert *
cm_cert_new_from_der (GBytes *der, GPtrArray *sources, GError **error)
{
  g_autoptr (CmCert) c = NULL;
  SECItem item;
  gsize len;
  PRTime nb, na;

  if (!cm_nss_ready (error))
    return NULL;
  c = g_new0 (CmCert, 1);
  c->ref_count = 1;
  c->der = g_bytes_ref (der);
  c->sources = g_ptr_array_new_with_free_func ((GDestroyNotify)cm_source_free);
  for (guint i = 0; sources && i < sources->len; i++)
    g_ptr_array_add (c->sources, cm_source_copy (g_ptr_array_index (sources, i)));

  item.type = siDERCertBuffer;
  item.data = (unsigned char *)g_bytes_get_data (der, &len);
  item.len = (unsigned int)len;
  if (len == 0 || len > 64 * 1024 || item.data[0] != 0x30
      || (c->nss = __CERT_DecodeDERCertificate (&item, PR_FALSE, NULL)) == NULL)
    {
      g_set_error (error, CM_ERROR, CM_ERROR_BAD_INPUT, "not a valid X.509 certificate");
      return NULL;
    }
  c->sha256 = sha256_hex (item.data, item.len);
  c->subject = nss_string (CERT_NameToAscii (&c->nss->subject));
  c->issuer = nss_string (CERT_NameToAscii (&c->nss->issuer));
  c->subject_cn = nss_string (CERT_GetCommonName (&c->nss->subject));
  c->serial = cm_hex_encode (c->nss->serialNumber.data, c->nss->serialNumber.len, FALSE);
  if (c->subject == NULL || c->issuer == NULL || CERT_GetCertTimes (c->nss, &nb, &na) != SECSuccess)
    {
      g_set_error (error, CM_ERROR, CM_ERROR_BAD_INPUT,
                   "certificate names or validity do not decode");
      return NULL;
    }
  c->not_before = nb / PR_USEC_PER_SEC;
  c->not_after = na / PR_USEC_PER_SEC;
  c->self_issued = SECITEM_ItemsAreEqual (&c->nss->derSubject, &c->nss->derIssuer);
  if (!parse_extensions (c, error))
    return NULL;
  c->ekus = empty_strv (c->ekus);
  c->policies = empty_strv (c->policies);
  c->emails = empty_strv (c->emails);
  add_subject_email (c);
  if (c->edipi == NULL)
    c->edipi = edipi_from_cn (c->subject_cn);
  cm_classify (c, &c->role, &c->reasons);
  /* Everything is read: the NSS decode (a few KiB per cert) is made again when asked for
   * (cm_cert_get_nss), so that thousands of certs cost only what they are. */
  CERT_DestroyCertificate (c->nss);
  c->nss = NULL;
  return g_steal_pointer (&c);
}

CmCert *
cm_cert_new_with_source (CmCert *cert, const CmSource *extra)
{
  g_autoptr (GPtrArray) sources = g_ptr_array_new ();
  CmCert *copy;

  for (guint i = 0; i < cert->sources->len; i++)
    g_ptr_array_add (sources, g_ptr_array_index (cert->sources, i));
  g_ptr_array_add (sources, (gpointer)extra);
  copy = cm_cert_new_from_der (cert->der, sources, NULL);
  g_assert (copy != NULL); /* the same DER decoded before */
  return copy;
}

CmCert *
cm_cert_ref (CmCert *cert)
{
  g_atomic_int_inc (&cert->ref_count);
  return cert;
}

void
cm_cert_unref (CmCert *c)
{
  if (c == NULL || !g_atomic_int_dec_and_test (&c->ref_count))
    return;
  if (c->nss)
    CERT_DestroyCertificate (c->nss);
  g_bytes_unref (c->der);
  g_free (c->sha256);
  g_free (c->subject);
  g_free (c->issuer);
  g_free (c->subject_cn);
  g_free (c->serial);
  g_strfreev (c->ekus);
  g_strfreev (c->policies);
  g_strfreev (c->emails);
  g_free (c->upn);
  g_free (c->edipi);
  g_free (c->persona_id);
  g_free (c->uuid);
  g_free (c->ski.data);
  g_free (c->aki.data);
  g_ptr_array_unref (c->sources);
  g_strfreev (c->reasons);
  g_free (c);
}

GBytes *
cm_cert_get_der (CmCert *c)
{
  return c->der;
}
const char *
cm_cert_get_sha256 (CmCert *c)
{
  return c->sha256;
}
const char *
cm_cert_get_subject (CmCert *c)
{
  return c->subject;
}
const char *
cm_cert_get_issuer (CmCert *c)
{
  return c->issuer;
}
const char *
cm_cert_get_subject_cn (CmCert *c)
{
  return c->subject_cn;
}
const char *
cm_cert_get_serial (CmCert *c)
{
  return c->serial;
}
gint64
cm_cert_get_not_before (CmCert *c)
{
  return c->not_before;
}
gint64
cm_cert_get_not_after (CmCert *c)
{
  return c->not_after;
}
guint
cm_cert_get_key_usage (CmCert *c)
{
  return c->key_usage;
}
gboolean
cm_cert_has_key_usage (CmCert *c)
{
  return c->has_key_usage;
}
const char *const *
cm_cert_get_ekus (CmCert *c)
{
  return (const char *const *)c->ekus;
}
const char *const *
cm_cert_get_policies (CmCert *c)
{
  return (const char *const *)c->policies;
}
const char *const *
cm_cert_get_emails (CmCert *c)
{
  return (const char *const *)c->emails;
}
const char *
cm_cert_get_upn (CmCert *c)
{
  return c->upn;
}
const char *
cm_cert_get_edipi (CmCert *c)
{
  return c->edipi;
}
const char *
cm_cert_get_persona_id (CmCert *c)
{
  return c->persona_id;
}
const CmFascn *
cm_cert_get_fascn (CmCert *c)
{
  return c->has_fascn ? &c->fascn : NULL;
}
const char *
cm_cert_get_uuid (CmCert *c)
{
  return c->uuid;
}
gboolean
cm_cert_is_ca (CmCert *c)
{
  return c->is_ca;
}
gboolean
cm_cert_is_self_issued (CmCert *c)
{
  return c->self_issued;
}
CmRole
cm_cert_get_role (CmCert *c)
{
  return c->role;
}
gboolean
cm_cert_is_self_signed (CmCert *c)
{
  CERTCertificate *n;

  if (!c->self_issued || (n = cm_cert_get_nss (c)) == NULL)
    return FALSE;
  return CERT_VerifySignedDataWithPublicKeyInfo (&n->signatureWrap, &n->subjectPublicKeyInfo, NULL)
         == SECSuccess;
}
const char *const *
cm_cert_get_reasons (CmCert *c)
{
  return (const char *const *)c->reasons;
}
GPtrArray *
cm_cert_get_sources (CmCert *c)
{
  return c->sources;
}
CERTCertificate *
cm_cert_get_nss (CmCert *c)
{
  if (g_once_init_enter (&c->nss))
    {
      gsize len;
      SECItem item = { siDERCertBuffer, (unsigned char *)g_bytes_get_data (c->der, &len), 0 };
      CERTCertificate *n;

      item.len = (unsigned int)len;
      n = __CERT_DecodeDERCertificate (&item, PR_FALSE, NULL);
      g_assert (n != NULL); /* decoded once already */
      g_once_init_leave (&c->nss, n);
    }
  return c->nss;
}
const SECItem *
cm_cert_get_ski (CmCert *c)
{
  return c->ski.len ? &c->ski : NULL;
}
const SECItem *
cm_cert_get_aki (CmCert *c)
{
  return c->aki.len ? &c->aki : NULL;
}

gboolean
cm_cert_is_valid_at (CmCert *c, gint64 at)
{
  return at >= c->not_before && at <= c->not_after;
}

/* PIV slots first: a cert in both 9D and the CAC encryption applet is shown as 9D. */
CmSlot
cm_cert_get_slot (CmCert *c)
{
  CmSlot best = CM_SLOT_NONE;

  for (guint i = 0; i < c->sources->len; i++)
    {
      CmSlot s = ((CmSource *)g_ptr_array_index (c->sources, i))->slot;
      if (s != CM_SLOT_NONE && (best == CM_SLOT_NONE || s < best))
        best = s;
    }
  return best;
}

gboolean
cm_cert_has_email (CmCert *c, const char *email)
{
  for (guint i = 0; c->emails[i]; i++)
    if (g_ascii_strcasecmp (c->emails[i], email) == 0)
      return TRUE;
  return FALSE;
}
