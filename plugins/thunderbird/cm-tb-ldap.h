/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cm-tb-ldap.h: Thunderbird's LDAP directory for recipient lookup (prefs ldap_2.servers.NAME.*
 * and ldap_2.autoComplete.*), written to prefs.js while Thunderbird is closed, with a backup
 * that `cacmail thunderbird undo` gives back (docs/ldap.md, "Recipient lookup"). */
#pragma once

#include "cm-tb.h"

G_BEGIN_DECLS

/* The prefs branch cacmail's directory gets. */
#define CM_TB_LDAP_BRANCH "ldap_2.servers.cacmail"

/* The pref changes that make Thunderbird use the directory at @uri (ldaps://HOST[:PORT] only:
 * Thunderbird's LDAP client has no StartTLS, an ldap:// URI would send the password and the
 * certificates in clear text) under @base for address completion and for the recipients'
 * certificates it fetches when encrypting: CM_TB_LDAP_BRANCH.{description, uri, auth.dn,
 * auth.saslmech, maxHits}, ldap_2.autoComplete.useDirectory = true and
 * ldap_2.autoComplete.directoryServer = CM_TB_LDAP_BRANCH. @bind_dn NULL: anonymous; @gssapi:
 * Kerberos. Only the prefs whose value differs are returned (empty: nothing to do). NULL with
 * CM_ERROR_BAD_INPUT for another URI. Caller unrefs (CmTbPrefChange*). */
GPtrArray *cm_tb_ldap_plan (CmTbPrefs *prefs, const char *uri, const char *base,
                            const char *bind_dn, gboolean gssapi, GError **error);

/* Write @changes (from cm_tb_ldap_plan on @profile's prefs) to prefs.js after a backup entry
 * of kind "ldap". Refused while Thunderbird runs (CM_ERROR_UNSAFE). */
gboolean cm_tb_profile_ldap_sync (CmTbProfile *profile, GPtrArray *changes, GError **error);

G_END_DECLS
