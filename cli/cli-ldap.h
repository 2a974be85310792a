/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cli-ldap.h: what the directory commands (republish, lookup) share on top of libcacmail-ldap. */
#pragma once
#include "cli.h"
#include <cm-ldap.h>

/* Fill @cfg from @config (a file the user named: an error when it is missing) or, when @config
 * is NULL, from the default cacmail.conf (none is fine); then each setting given on the command
 * line (@vals[i] for @keys[i], NULL = not given; @n of each), --insecure and --allow-plain-ldap.
 * FALSE with @error (CM_LDAP_ERROR_CONFIG) on a bad file or value. Nothing is freed. */
gboolean cli_ldap_config_prepare (CmLdapConfig *cfg, const char *config, const char *const *keys,
                                  char *const *vals, gsize n, gboolean insecure, gboolean plain,
                                  GError **error);
