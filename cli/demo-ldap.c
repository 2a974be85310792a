/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* demo-ldap.c: the LDAP step of `cacmail demo`: republish the contractor of the test PKI to a
 * sandbox slapd (tests/harness/with-slapd) and show the entry before and after. */
#include "cli.h"
#include <stdio.h>

/* ---- cacmail demo: the LDAP step ---------------------------------------------------------- */

/* The step runs `cacmail republish` (a helper program, which links the LDAP library) against
 * a sandbox slapd: this file needs no LDAP code. */

static char *
find_tool (const char *env, const char *rel)
{
  const char *e = g_getenv (env);

  if (e && *e)
    return g_strdup (e);
  return cli_demo_tree_file (FALSE, rel);
}

static gboolean
run_quiet (const char *const *argv, GError **error)
{
  g_autofree char *out = NULL, *err = NULL;
  int status = 0;

  if (!g_spawn_sync (NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, &out, &err,
                     &status, error))
    return FALSE;
  if (!g_spawn_check_wait_status (status, NULL))
    {
      g_set_error (error, CM_ERROR, CM_ERROR_FAILED, "%s failed: %s", argv[0], g_strstrip (err));
      return FALSE;
    }
  return TRUE;
}

/* The demo's NSS database: the test CAs (root trusted; signing certs come from EMAIL CA-62,
 * encryption certs from EMAIL CA-64) and the contractor's signing and encryption keys as a
 * software token (the demo has no card). */
static gboolean
demo_nssdb (const char *pki, const char *db, GError **error)
{
  g_autofree char *sql = g_strconcat ("sql:", db, NULL);
  g_autofree char *root = g_build_filename (pki, "ca", "root.crt", NULL);
  g_autofree char *eca = g_build_filename (pki, "ca", "email-ca.crt", NULL);
  g_autofree char *eca64 = g_build_filename (pki, "ca", "email-ca-64.crt", NULL);
  g_autofree char *sig = g_build_filename (pki, "cards", "contractor", "4 - Dig_Sig.p12", NULL);
  g_autofree char *enc = g_build_filename (pki, "cards", "contractor", "5 - Key_Mgmt.p12", NULL);
  const char *n[] = { "certutil", "-N", "-d", sql, "--empty-password", NULL };
  const char *r[]
    = { "certutil", "-A", "-d", sql, "-n", "Test DoD Root CA 3", "-t", "C,C,C", "-i", root, NULL };
  const char *e[] = { "certutil", "-A", "-d", sql, "-n", "email-ca", "-t", ",,", "-i", eca, NULL };
  const char *e64[]
    = { "certutil", "-A", "-d", sql, "-n", "email-ca-64", "-t", ",,", "-i", eca64, NULL };
  const char *p1[] = { "pk12util", "-i", sig, "-d", sql, "-W", "", NULL };
  const char *p2[] = { "pk12util", "-i", enc, "-d", sql, "-W", "", NULL };

  return g_mkdir_with_parents (db, 0700) == 0 && run_quiet (n, error) && run_quiet (r, error)
         && run_quiet (e, error) && run_quiet (e64, error) && run_quiet (p1, error)
         && run_quiet (p2, error);
}

int
cli_demo_ldap_step (const char *pki_dir)
{
  g_autofree char *harness = find_tool ("CACMAIL_WITH_SLAPD", "tests/harness/with-slapd");
  g_autofree char *self = g_file_read_link ("/proc/self/exe", NULL);
  g_autofree char *tmp = NULL, *db = NULL;
  g_autofree char *old_sig
    = g_build_filename (pki_dir, "previous", "contractor-signing-old.crt", NULL);
  g_autoptr (GError) error = NULL;
  /* $0 = cacmail, $1 = NSS DB, $2 = old signing cert: before (stale certs of the previous
   * card), republish, after */
  const char *script
    = "set -e; A=\"--uri $CACMAIL_LDAP_URI --base $CACMAIL_LDAP_BASE --ca-file $CACMAIL_LDAP_CA"
      " --email john.q.doe.ctr@mail.mil --password-file $CACMAIL_SLAPD_DIR/users/contractor.pw"
      " --nssdb $1 --token 'NSS Certificate DB'\";"
      " if command -v ldapmodify >/dev/null; then"
      "  printf 'dn: uid=contractor,ou=people,%s\\nchangetype: modify\\n"
      "add: userCertificate;binary\\nuserCertificate;binary:: %s\\n-\\n' \"$CACMAIL_LDAP_BASE\""
      "  \"$(sed '/-----/d' \"$2\" | tr -d '\\n')\" | LDAPTLS_CACERT=$CACMAIL_LDAP_CA ldapmodify"
      "  -x -H $CACMAIL_LDAP_URI -ZZ -D \"$CACMAIL_LDAP_ADMIN_DN\" -y"
      "  \"$CACMAIL_LDAP_ADMIN_PASSWORD_FILE\" >/dev/null; fi;"
      " echo '--- before: the entry holds the previous card'\\''s signing cert';"
      " eval \"\\\"$0\\\" republish $A --dry-run\";"
      " echo '--- republish (one guarded modify, then read back)';"
      " eval \"\\\"$0\\\" republish $A\";"
      " echo '--- after';"
      " eval \"\\\"$0\\\" republish $A --dry-run\"";
  const char *argv[]
    = { harness, "--pki", pki_dir, "--", "/bin/sh", "-c", script, self, db, old_sig, NULL };
  int status = 0;

  g_autofree char *certutil = g_find_program_in_path ("certutil");

  printf ("\n== Republish to GAL (a sandbox slapd with StartTLS; docs/ldap.md) ==\n");
  fflush (stdout);
  if (harness == NULL || self == NULL)
    {
      printf ("      (skipped: this step runs from a source build, with its sandbox slapd "
              "(tests/harness/with-slapd); an installed cacmail runs the offline steps only)\n");
      return CLI_EXIT_OK;
    }
  if (!g_file_test ("/usr/sbin/slapd", G_FILE_TEST_IS_EXECUTABLE) || certutil == NULL)
    {
      printf ("      (skipped: needs slapd and libnss3-tools: run scripts/install-deps demo)\n");
      return CLI_EXIT_OK;
    }
  if ((tmp = g_dir_make_tmp ("cacmail-demo-ldap-XXXXXX", &error)) == NULL)
    {
      fprintf (stderr,
               "cacmail: error: the demo's republish step: %s; set TMPDIR to a "
               "writable folder\n",
               error->message);
      return CLI_EXIT_FAILED;
    }
  db = g_build_filename (tmp, "nssdb", NULL);
  argv[8] = db; /* the script's $1 */
  if (!demo_nssdb (pki_dir, db, &error))
    status = -1;
  else if (!g_spawn_sync (NULL, (char **)argv, NULL, G_SPAWN_CHILD_INHERITS_STDIN, NULL, NULL, NULL,
                          NULL, &status, &error))
    status = 1;
  {
    const char *rm[] = { "rm", "-rf", tmp, NULL };
    run_quiet (rm, NULL);
  }
  if (status == -1)
    {
      fprintf (stderr,
               "cacmail: error: the demo's republish step cannot prepare its NSS database: %s\n",
               error->message);
      return CLI_EXIT_FAILED;
    }
  if (!g_spawn_check_wait_status (status, NULL))
    {
      fprintf (stderr, "cacmail: error: the demo's republish step failed (see above)\n");
      return CLI_EXIT_FAILED;
    }
  return CLI_EXIT_OK;
}
