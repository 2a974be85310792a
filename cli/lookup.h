/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* lookup.h: the pieces of `cacmail lookup` (cacmail-lookup helper): the target NSS databases,
 * the checks of a recipient's certificate and its import (lookup-check.c), the address book
 * settings of the mail clients (lookup-configure.c). */
#pragma once

#include "cli-ldap.h"
#include <cm-ldap-lookup.h>
#include <cm-nssdb.h>

/* The NSS databases certificates go to, opened, and the trust they give. */
typedef struct _LookupTargets LookupTargets;

/* --nssdb DIR, else the database of --client (evolution, thunderbird: the profile Thunderbird
 * starts with), else every mail client's database that exists. @ca_files (nullable) add trust
 * anchors and intermediates. NULL with @error (CM_ERROR) when there is none or one cannot be
 * opened for writing. Free with lookup_targets_free. */
LookupTargets *lookup_targets_open (const char *nssdb, const char *client, char **ca_files,
                                    GError **error);
void lookup_targets_free (LookupTargets *t);
/* "sql:DIR" of each target, for messages; owned by @t. */
GPtrArray *lookup_targets_get_dirs (LookupTargets *t);

/* One certificate found for one address, checked. */
typedef struct
{
  char *sha256;
  CmCert *cert;       /* NULL when the value is not a certificate */
  const char *role;   /* cm_role_to_string, static */
  const char *chain;  /* cm_chain_status_to_string, static */
  gboolean valid_now; /* valid at the time checked */
  gboolean address_match;
  gboolean usable;     /* every check passed: to be imported */
  gboolean imported;   /* it is in every target database now */
  GPtrArray *problems; /* CmProblem* */
} LookupCert;

void lookup_cert_free (LookupCert *lc);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (LookupTargets, lookup_targets_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (LookupCert, lookup_cert_free)

/* Check every certificate of @found at @at against @t's trust (with the CAs the directory
 * handed over as intermediates). Caller unrefs (LookupCert*). */
GPtrArray *lookup_check (LookupTargets *t, CmLdapFound *found, gint64 at);

/* Import each usable certificate of @certs (LookupCert*) for @address into every target: the
 * certificate with the intermediate CAs of its chain the database lacks, all or nothing, no
 * trust flags; sets ->imported. A failure becomes a problem of that certificate. */
void lookup_import (LookupTargets *t, const char *address, GPtrArray *certs, gint64 at);

/* lookup-configure.c: --configure evolution|thunderbird: an address book for the directory of
 * @cfg in the client (Evolution through its source registry, Thunderbird's prefs.js of
 * @profile or the default profile). Prints what it did; returns a CLI exit code. For Evolution,
 * a program without evolution-data-server runs cacmail-lookup-evolution with @argv (the
 * command line as given, argv[0] "lookup") instead. */
int lookup_configure (CmLdapConfig *cfg, const char *client, const char *profile, gboolean json,
                      char **argv);
