/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* fuzz-smime.c: the userSMIMECertificate blob check (cm-ldap-smime.c: a CMS SignedData with no
 * content, one signer, the encryption cert, the S/MIME and Microsoft encryption key
 * preferences), as run on a blob read back from the directory. The signing and encryption
 * certificates and their CAs (trusted) are data/smime/, from the same test PKI as the seeds:
 * NSS runs on a temporary database, as republish runs on the user's. */
#include "cm-ldap-private.h"
#include "fuzz.h"
#include <cert.h>
#include <certdb.h>
#include <nss.h>
#include <pk11pub.h>
#include <stdio.h>
#include <stdlib.h>

static CmCert *signing, *encryption;

static GBytes *
read_data (const char *name)
{
  g_autofree char *path = g_build_filename (FUZZ_DATA_DIR, "smime", name, NULL);
  g_autoptr (GError) error = NULL;
  char *data = NULL;
  gsize len = 0;

  if (!g_file_get_contents (path, &data, &len, &error))
    {
      fprintf (stderr, "fuzz-smime: %s\n", error->message);
      abort ();
    }
  return g_bytes_new_take (data, len);
}

static CmCert *
load_cert (const char *name)
{
  g_autoptr (GBytes) der = read_data (name);
  CmCert *cert = cm_cert_new_from_der (der, NULL, NULL);

  if (cert == NULL)
    abort ();
  return cert;
}

/* A CA into the database's token, trusted to issue email certificates. */
static void
trust_ca (const char *name)
{
  g_autoptr (GBytes) der = read_data (name);
  SECItem item = { siBuffer, (unsigned char *)g_bytes_get_data (der, NULL),
                   (unsigned int)g_bytes_get_size (der) };
  PK11SlotInfo *slot = PK11_GetInternalKeySlot ();
  CERTCertificate *c
    = CERT_NewTempCertificate (CERT_GetDefaultCertDB (), &item, NULL, PR_FALSE, PR_TRUE);
  CERTCertTrust trust;

  /* a new database has no password yet: the empty one, as import-p12 gives it */
  if (PK11_NeedUserInit (slot))
    PK11_InitPin (slot, NULL, "");
  if (c == NULL || PK11_ImportCert (slot, c, CK_INVALID_HANDLE, name, PR_FALSE) != SECSuccess
      || CERT_DecodeTrustString (&trust, "C,C,C") != SECSuccess
      || CERT_ChangeCertTrust (CERT_GetDefaultCertDB (), c, &trust) != SECSuccess)
    {
      fprintf (stderr, "fuzz-smime: cannot trust %s (NSS error %d)\n", name, PORT_GetError ());
      abort ();
    }
  CERT_DestroyCertificate (c);
  PK11_FreeSlot (slot);
}

static void
init (void)
{
  g_autofree char *db = NULL;

  if (signing)
    return;
  db = g_strdup_printf ("sql:%s", fuzz_tmpdir ());
  if (NSS_Initialize (db, "", "", "", NSS_INIT_NOMODDB | NSS_INIT_NOROOTINIT) != SECSuccess
      || !cm_init (NULL))
    abort ();
  trust_ca ("root.crt");
  trust_ca ("email-ca.crt");
  signing = load_cert ("signing.crt");
  encryption = load_cert ("encryption.crt");
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  g_autoptr (GBytes) blob = g_bytes_new (data, size);

  init ();
  cm_ldap_smime_check (blob, signing, encryption, 1780272000, NULL);
  return 0;
}
