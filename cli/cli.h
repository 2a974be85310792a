/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cli.h: shared pieces of the cacmail command's subcommands. */
#pragma once

#include <cacmail.h>

/* Exit codes (docs/cacmail.1). Problems found in the certificates do not change them. */
enum
{
  CLI_EXIT_OK = 0,
  CLI_EXIT_FAILED = 1,      /* anything else */
  CLI_EXIT_USAGE = 2,       /* bad options or arguments */
  CLI_EXIT_BAD_INPUT = 3,   /* unreadable or malformed input */
  CLI_EXIT_ENVIRONMENT = 4, /* a service, module or database is missing or down */
  CLI_EXIT_REFUSED = 5,     /* refused for safety */
  CLI_EXIT_CONFLICT = 6,    /* changed by someone else in between: nothing was written */
};

typedef struct
{
  gboolean json;
  char *at_text;
  char **ca_files;
  char **inputs;
  gint64 at;
} CliCommon;

/* Print "cacmail: error: MESSAGE" (one line) and return the exit code for @error. */
int cli_fail (GError *error);
int cli_usage (const char *fmt, ...) G_GNUC_PRINTF (1, 2);

/* Parse --at and load --ca files into a new trust store (NULL when no --ca). */
gboolean cli_common_prepare (CliCommon *common, CmTrust **trust, GError **error);
/* Load every INPUT into @inv. */
gboolean cli_load_inputs (CmInventory *inv, char **inputs, GError **error);
void cli_common_clear (CliCommon *common);

/* Print a JSON node to stdout. */
void cli_print_json (JsonNode *node);

/* Human-readable output shared by certs, pick and demo. */
void cli_print_cert_line (CmInventory *inv, CmCert *cert, gint64 at);
void cli_print_picks (CmInventory *inv, CmPicks *picks);
void cli_print_problem (const CmProblem *problem);
char *cli_short_name (CmCert *cert); /* CN or subject; caller frees */
/* An identity's findings under its heading line: each message ("  - "), then each problem of
 * @problems (the pick problem shape) with its fix. Nothing is freed. */
void cli_print_identity_findings (const char *const *messages, JsonArray *problems);
/* The sha256 of every cert on the cards in the readers now, read with @flags (plus
 * CM_READ_NO_CACHE) into @inv; NULL when pcscd is not there (then "not on the inserted card" is
 * simply not judged). Caller frees the array (g_ptr_array_unref). */
GPtrArray *cli_inserted_certs (CmInventory *inv, CmReadFlags flags);

int cmd_certs (int argc, char **argv);
int cmd_pick (int argc, char **argv);
int cmd_demo (int argc, char **argv);
int cmd_status (int argc, char **argv);
int cmd_evolution (int argc, char **argv);
int cmd_thunderbird (int argc, char **argv);
/* cmd-demo.c: @rel in the source tree (or, with @in_build, the build tree) of a cacmail that
 * runs from its build folder ($CACMAIL_SOURCE_ROOT / $CACMAIL_BUILD_ROOT name them for the
 * tests); NULL for an installed cacmail or when the file is not there. Caller frees. */
char *cli_demo_tree_file (gboolean in_build, const char *rel);
/* demo-ldap.c: the LDAP step of `cacmail demo` (a sandbox slapd). */
int cli_demo_ldap_step (const char *pki_dir);
/* demo-setup.c: the guided-setup step of `cacmail demo` (cacmail setup and doctor in a sandbox
 * home against a sandbox slapd). */
int cli_demo_setup_step (const char *pki_dir);
int cmd_republish (int argc, char **argv);
/* cmd-setup.c: `cacmail setup` (the cacmail-setup helper program). */
int cmd_setup (int argc, char **argv);
int cmd_lookup (int argc, char **argv); /* cmd-lookup.c, helper cacmail-lookup */
int cmd_login (int argc, char **argv);  /* cacmail-login (cmd-login.c) */
int cmd_doctor (int argc, char **argv); /* cacmail-doctor (cmd-doctor.c, doctor-*.c) */
int cmd_nss (int argc, char **argv);
int cmd_import_p12 (int argc, char **argv);
/* cmd-nss.c: the NSS step of `cacmail demo` on a make-pki folder (sandbox database under it). */
int cli_demo_nss_step (const char *pki_dir);
/* cmd-nss.c: the databases to change (--nssdb DIR, else every client's); GPtrArray of
 * CmNssdbLocation*, caller unrefs; NULL with @error when there is none. */
GPtrArray *cli_nss_targets (const char *nssdb, gboolean create_evolution, GError **error);
/* cli-helper.c: the helper program @program (cacmail-republish, ...) beside this executable
 * (build tree) or in $libexecdir/cacmail; NULL when neither is there. Caller frees. */
char *cli_helper_path (const char *program);
/* cli-helper.c: replace this process with @program, argv[0] being the command's name; returns
 * (a CLI exit code, message printed) only when it is missing or cannot run. @feature names
 * what a build without it lacks. */
int cli_run_helper (const char *program, const char *feature, int argc, char **argv);
