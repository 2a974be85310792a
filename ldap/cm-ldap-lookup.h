/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cm-ldap-lookup.h: recipient lookup in libcacmail-ldap: read the certificates other people
 * published in the directory (Active Directory, OpenLDAP, a read-only directory such as DoD 411
 * over LDAPS), for `cacmail lookup` (docs/ldap.md, "Recipient lookup"). Nothing is written to
 * the directory. Checking the certificates and importing them is the caller's. */
#pragma once

#include "cm-ldap.h"

G_BEGIN_DECLS

/* What the directory holds for one address: every entry the filter matched (up to a few),
 * their certificates in the server's order without duplicates, and the CA certificates found
 * in their userSMIMECertificate blobs (for building chains; never trusted for that alone). */
typedef struct
{
  char *address;
  GPtrArray *dns;   /* char*: the entries found */
  GPtrArray *certs; /* GBytes*: userCertificate values (with or without ;binary) */
  GPtrArray *cas;   /* GBytes*: CA certificates from userSMIMECertificate blobs */
} CmLdapFound;

void cm_ldap_found_free (CmLdapFound *found);

/* Look up each of @addresses (NULL-terminated) with one connection: connect (TLS, deadlines
 * and cancellation as for republish), bind when "bind-dn" is set or "bind" is gssapi or
 * external (password through @ask or "password-file"), else anonymously (Active Directory
 * refuses anonymous searches: set bind-dn or bind = gssapi), then search "base" with "filter"
 * (default (mail=%s)) per address. Referrals are ignored. Returns one CmLdapFound per address,
 * in order (an address nothing matched has no dns), caller unrefs; NULL with @error
 * (CM_LDAP_ERROR or G_IO_ERROR_CANCELLED) when the server cannot be used. *@uri (nullable)
 * receives the URI used (caller frees). */
GPtrArray *cm_ldap_lookup_sync (CmLdapConfig *cfg, const char *const *addresses,
                                CmLdapSecretFunc ask, gpointer ask_data, char **uri,
                                GCancellable *cancellable, GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (CmLdapFound, cm_ldap_found_free)

G_END_DECLS
