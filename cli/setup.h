/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* setup.h: the pieces of `cacmail setup` (cmd-setup.c: options and flow; setup-steps.c: the six
 * steps). Private to the cacmail-setup helper program. */
#pragma once

#include "cli.h"
#include <cm-ldap.h>
#include <cm-nssdb.h>

#define SETUP_STEPS 6

typedef enum
{
  SETUP_ALREADY, /* nothing to change: it was done before */
  SETUP_DONE,    /* changed now */
  SETUP_OFFERED, /* republish: offered (asked, or its command printed) */
  SETUP_NOT_DONE /* could not be done now: the reason was printed */
} SetupStatus;

typedef struct
{
  /* options */
  char *bundle, *root_sha256, *uri, *base, *bind, *ca_file, *email, *config;
  gboolean yes;
  /* state */
  gboolean interactive;       /* a terminal and no --yes: ask before each change */
  GPtrArray *targets;         /* CmNssdbLocation*: the mail clients' databases */
  CmBundleAnalysis *analysis; /* NULL without --bundle */
  CmLdapConfig *cfg;          /* the config file with the options over it */
  char *config_path;          /* the config file */
  gboolean config_given;      /* --uri/--base/--bind/--ca-file/--email given */
  int exit_code;              /* worst exit code of a step that was not done */
} Setup;

/* Print "  NOT DONE: MESSAGE" and keep the worst exit code; returns SETUP_NOT_DONE. */
SetupStatus setup_not_done (Setup *s, int code, const char *fmt, ...) G_GNUC_PRINTF (3, 4);

/* Ask "QUESTION [y/N]" on the terminal (interactive only); --yes answers yes; without a
 * terminal and --yes, no (and says how to apply). */
gboolean setup_confirm (Setup *s, const char *question);

/* "Evolution", "Thunderbird profile NAME (default)", ... into @buf. */
const char *setup_client_label (CmNssdbLocation *loc, char *buf, gsize n);

/* Run `cacmail ARGS...` (the main program, beside this helper or installed), capturing its
 * output (caller frees *@out and *@err, both nullable); returns its exit status, -1 when it
 * cannot run (*@err says why). */
int setup_run_cacmail (const char *const *args, char **out, char **err);

/* The exit code for a libcacmail-ldap error. */
int setup_ldap_exit_code (const GError *error);

SetupStatus setup_step_clients (Setup *s);
SetupStatus setup_step_module (Setup *s);
SetupStatus setup_step_chain (Setup *s);
SetupStatus setup_step_directory (Setup *s);
SetupStatus setup_step_smime (Setup *s);
SetupStatus setup_step_republish (Setup *s);
