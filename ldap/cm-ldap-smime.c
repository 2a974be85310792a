/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cm-ldap-smime.c: check a userSMIMECertificate blob before it is written (slapd stores any
 * bytes) and after it is read back. */
#include "cm-ldap-private.h"
#include <cert.h>
#include <certdb.h>
#include <cms.h>
#include <nss.h>
#include <pk11pub.h>
#include <prerror.h>
#include <secasn1.h>
#include <smime.h>
#include <string.h>

SEC_ASN1_MKSUB (CERT_IssuerAndSNTemplate)

static gboolean
refuse (GError **error, const char *what)
{
  const char *nss = PR_ErrorToName (PR_GetError ());

  g_set_error (error, CM_LDAP_ERROR, CM_LDAP_ERROR_REFUSED,
               "nothing published: the userSMIMECertificate blob is wrong: %s (%s); check the "
               "card and the NSS database, then report this bug",
               what, nss ? nss : "no NSS error");
  return FALSE;
}

static gboolean
item_is (const SECItem *item, CmCert *c)
{
  gsize len = 0;
  const guint8 *der = g_bytes_get_data (cm_cert_get_der (c), &len);

  return item && item->len == len && memcmp (item->data, der, len) == 0;
}

/* Microsoft's attribute holds an IssuerAndSerialNumber; the S/MIME one a CHOICE whose [0]
 * IMPLICIT alternative is one (@implicit0). */
static gboolean
pref_names (const SECItem *attr_value, gboolean implicit0, CmCert *enc)
{
  SECItem value = *attr_value;
  unsigned char *copy = NULL;
  PLArenaPool *arena = PORT_NewArena (1024);
  CERTIssuerAndSN isn;
  CERTCertificate *c = NULL;
  gboolean ok = FALSE;

  memset (&isn, 0, sizeof isn);
  if (implicit0)
    {
      if (value.len < 2 || value.data[0] != 0xa0)
        goto out;
      copy = g_memdup2 (value.data, value.len);
      copy[0] = 0x30;
      value.data = copy;
    }
  if (arena
      && SEC_QuickDERDecodeItem (arena, &isn, SEC_ASN1_GET (CERT_IssuerAndSNTemplate), &value)
           == SECSuccess)
    c = CERT_FindCertByIssuerAndSN (CERT_GetDefaultCertDB (), &isn);
  ok = c && item_is (&c->derCert, enc);
out:
  g_free (copy);
  if (c)
    CERT_DestroyCertificate (c);
  if (arena)
    PORT_FreeArena (arena, PR_FALSE);
  return ok;
}

gboolean
cm_ldap_smime_check (GBytes *blob, CmCert *signing, CmCert *encryption, gint64 at, GError **error)
{
  gsize len = 0;
  SECItem der = { siBuffer, (unsigned char *)g_bytes_get_data (blob, &len), 0 };
  CERTCertDBHandle *db = CERT_GetDefaultCertDB ();
  NSSCMSMessage *cmsg = NULL;
  NSSCMSContentInfo *cinfo;
  NSSCMSSignedData *sigd;
  NSSCMSSignerInfo *si;
  SECItem *inner;
  CERTCertificate *signer = NULL;
  unsigned char hash[32];
  SECItem digest = { siBuffer, hash, sizeof hash };
  gboolean caps = FALSE, ekp = FALSE, ms = FALSE, has_enc = FALSE, ok = FALSE;

  der.len = (unsigned int)len;
  /* DER SEQUENCE whose length covers the whole blob: no trailing bytes */
  if (len < 4 || der.data[0] != 0x30)
    return refuse (error, "not a DER SEQUENCE");
  cmsg = NSS_CMSMessage_CreateFromDER (&der, NULL, NULL, NULL, NULL, NULL, NULL);
  if (cmsg == NULL)
    return refuse (error, "not a CMS message");
  cinfo = NSS_CMSMessage_ContentLevel (cmsg, 0);
  if (cinfo == NULL || NSS_CMSContentInfo_GetContentTypeTag (cinfo) != SEC_OID_PKCS7_SIGNED_DATA
      || (sigd = NSS_CMSContentInfo_GetContent (cinfo)) == NULL)
    {
      refuse (error, "not a SignedData");
      goto out;
    }
  inner = NSS_CMSContentInfo_GetContent (NSS_CMSSignedData_GetContentInfo (sigd));
  if (NSS_CMSContentInfo_GetContentTypeTag (NSS_CMSSignedData_GetContentInfo (sigd))
        != SEC_OID_PKCS7_DATA
      || (inner && inner->len > 0))
    {
      refuse (error, "it carries content (it must be absent)");
      goto out;
    }
  if (NSS_CMSSignedData_SignerInfoCount (sigd) != 1)
    {
      refuse (error, "it must have exactly one signer");
      goto out;
    }
  for (SECItem **c = sigd->rawCerts; c && *c; c++)
    has_enc = has_enc || item_is (*c, encryption);
  if (!has_enc)
    {
      refuse (error, "it does not hold the encryption cert");
      goto out;
    }
  if (PK11_HashBuf (SEC_OID_SHA256, hash, (const unsigned char *)"", 0) != SECSuccess
      || NSS_CMSSignedData_SetDigestValue (sigd, SEC_OID_SHA256, &digest) != SECSuccess
      || NSS_CMSSignedData_ImportCerts (sigd, db, certUsageEmailRecipient, PR_FALSE) != SECSuccess)
    {
      refuse (error, "its certificates or digest cannot be read");
      goto out;
    }
  si = NSS_CMSSignedData_GetSignerInfo (sigd, 0);
  signer = NSS_CMSSignerInfo_GetSigningCertificate (si, db);
  if (signer == NULL || !item_is (&signer->derCert, signing))
    {
      refuse (error, "it is not signed by the signing cert");
      goto out;
    }
  if (NSS_CMSSignedData_VerifySignerInfo (sigd, 0, db, certUsageEmailSigner) != SECSuccess
      || NSS_CMSSignerInfo_GetVerificationStatus (si) != NSSCMSVS_GoodSignature)
    {
      g_autofree char *status = g_strdup_printf (
        "its signature does not verify with the signing cert (%s): the card's key is not the "
        "cert's",
        NSS_CMSUtil_VerificationStatusToString (NSS_CMSSignerInfo_GetVerificationStatus (si)));
      refuse (error, status);
      goto out;
    }
  for (NSSCMSAttribute **a = si->authAttr; a && *a; a++)
    {
      SECOidTag tag = SECOID_FindOIDTag (&(*a)->type);
      SECItem *v = (*a)->values ? (*a)->values[0] : NULL;
      if (tag == SEC_OID_PKCS9_SMIME_CAPABILITIES)
        caps = v != NULL;
      else if (tag == SEC_OID_SMIME_ENCRYPTION_KEY_PREFERENCE && v)
        ekp = pref_names (v, TRUE, encryption);
      else if (tag == SEC_OID_MS_SMIME_ENCRYPTION_KEY_PREFERENCE && v)
        ms = pref_names (v, FALSE, encryption);
    }
  if (!caps || !ekp || !ms)
    {
      refuse (error, !caps  ? "SMIMECapabilities is missing"
                     : !ekp ? "id-aa-encrypKeyPref does not name the encryption cert"
                            : "Microsoft's encryption key preference does not name the "
                              "encryption cert");
      goto out;
    }
  (void)at;
  ok = TRUE;
out:
  /* signer belongs to the signerInfo */
  NSS_CMSMessage_Destroy (cmsg);
  return ok;
}
