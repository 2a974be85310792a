/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cm-evo-addressbook.h: the directory (the organisation's LDAP address list) as an Evolution
 * address book, created or updated through evolution-source-registry, so that Evolution
 * completes recipients from it and finds their certificates (docs/ldap.md, "Recipient
 * lookup"). */
#pragma once

#include "cm-evo.h"

G_BEGIN_DECLS

/* The UID of the address book cacmail manages (one per user). */
#define CM_EVO_ADDRESSBOOK_UID "cacmail-directory"

/* What the address book's ESource holds, as read back from the registry. */
typedef struct
{
  char *uid;
  char *display_name;
  char *backend; /* "ldap" */
  char *host;
  guint16 port;
  char *security; /* "ldaps", "starttls" or "none" */
  char *root_dn;
  char *scope; /* "subtree" or "onelevel" */
  char *auth;  /* "none", "binddn" or "email" */
  char *user;  /* bind DN, or NULL */
  gboolean autocomplete;
  gboolean created; /* cm_evo_addressbook_configure_sync made it (it did not exist) */
} CmEvoAddressbook;

void cm_evo_addressbook_free (CmEvoAddressbook *ab);
JsonNode *cm_evo_addressbook_to_json (CmEvoAddressbook *ab); /* new node */

/* Create (or update in place) the address book CM_EVO_ADDRESSBOOK_UID for the directory at
 * @uri (ldaps:// = LDAPS, ldap:// = StartTLS; the first of a list) under @base, searched with
 * subtree scope, used for address completion; @bind_dn NULL: anonymous, else a simple bind as
 * @bind_dn (Evolution asks for the password and keeps it in the keyring). Returns it as the
 * registry holds it afterwards (caller frees), or NULL with @error (CM_EVO_ERROR_REGISTRY
 * when the registry cannot be reached, CM_EVO_ERROR_FAILED for a bad URI or a refused
 * write). */
CmEvoAddressbook *cm_evo_addressbook_configure_sync (const char *uri, const char *base,
                                                     const char *bind_dn, GCancellable *cancellable,
                                                     GError **error);

/* The address book CM_EVO_ADDRESSBOOK_UID as the registry holds it; NULL with
 * CM_EVO_ERROR_NOT_FOUND when there is none. */
CmEvoAddressbook *cm_evo_addressbook_read_sync (GCancellable *cancellable, GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (CmEvoAddressbook, cm_evo_addressbook_free)

G_END_DECLS
