/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cmd-demo.c: `cacmail demo`, the whole flow on a generated test PKI in a sandbox. Later
 * capabilities (card reader, NSS, LDAP, Evolution) add their steps here. An installed cacmail
 * runs the offline steps on a PKI made by the make-pki it ships in CM_DEMODIR; the steps with
 * virtual cards, slapd and evolution-source-registry need a source build (its test tools). */
#include "cli.h"
#include "cm-config.h"
#include <cm-nss.h>
#include <cm-nssdb.h>
#include <cm-tb.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

/* The build folder this program runs from: the folder above its own, if meson made it. */
static char *
self_build_root (void)
{
  g_autofree char *self = g_file_read_link ("/proc/self/exe", NULL);
  g_autofree char *dir = self ? g_path_get_dirname (self) : NULL;
  g_autofree char *root = dir ? g_path_get_dirname (dir) : NULL;
  g_autofree char *info
    = root ? g_build_filename (root, "meson-info", "meson-info.json", NULL) : NULL;

  return info && g_file_test (info, G_FILE_TEST_IS_REGULAR) ? g_steal_pointer (&root) : NULL;
}

/* The source folder of a meson build folder, as its meson-info.json names it. */
static char *
source_root_of (const char *build)
{
  g_autofree char *info = g_build_filename (build, "meson-info", "meson-info.json", NULL);
  g_autoptr (JsonParser) parser = json_parser_new ();
  JsonNode *node;
  JsonObject *obj;

  if (!json_parser_load_from_file (parser, info, NULL))
    return NULL;
  node = json_parser_get_root (parser);
  obj = node && JSON_NODE_HOLDS_OBJECT (node) ? json_node_get_object (node) : NULL;
  node = obj ? json_object_get_member (obj, "directories") : NULL;
  obj = node && JSON_NODE_HOLDS_OBJECT (node) ? json_node_get_object (node) : NULL;
  return obj ? g_strdup (json_object_get_string_member_with_default (obj, "source", NULL)) : NULL;
}

char *
cli_demo_tree_file (gboolean in_build, const char *rel)
{
  const char *env = g_getenv (in_build ? "CACMAIL_BUILD_ROOT" : "CACMAIL_SOURCE_ROOT");
  g_autofree char *build = self_build_root ();
  g_autofree char *root = NULL, *path = NULL;

  if (env && *env)
    root = g_strdup (env);
  else if (build)
    root = in_build ? g_steal_pointer (&build) : source_root_of (build);
  path = root ? g_build_filename (root, rel, NULL) : NULL;
  return path && g_file_test (path, G_FILE_TEST_EXISTS) ? g_steal_pointer (&path) : NULL;
}

/* Runs make-pki into @dir: $CACMAIL_MAKE_PKI, the source tree's, or the copy installed as demo
 * data (not executable: python3 runs it). */
static gboolean
generate_pki (const char *dir, GError **error)
{
  const char *env = g_getenv ("CACMAIL_MAKE_PKI");
  g_autofree char *tree = cli_demo_tree_file (FALSE, "tests/pki/make-pki");
  g_autofree char *data = g_build_filename (CM_DEMODIR, "make-pki", NULL);
  g_autofree char *out = NULL, *err = NULL;
  g_autoptr (GError) local = NULL;
  const char *argv[4] = { NULL };
  gboolean installed = FALSE;
  int status = 0;

  if ((env && *env) || tree)
    {
      argv[0] = env && *env ? env : tree;
      argv[1] = dir;
    }
  else if (g_file_test (data, G_FILE_TEST_IS_REGULAR))
    {
      argv[0] = "python3";
      argv[1] = data;
      argv[2] = dir;
      installed = TRUE;
    }
  else
    {
      g_set_error (error, CM_ERROR, CM_ERROR_ENVIRONMENT,
                   "the test PKI generator make-pki is not installed (%s); reinstall cacmail, "
                   "set CACMAIL_MAKE_PKI, or pass --pki DIR made by tests/pki/make-pki",
                   data);
      return FALSE;
    }
  if (g_spawn_sync (NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, &out, &err, &status,
                    &local)
      && g_spawn_check_wait_status (status, NULL))
    return TRUE;
  {
    g_autofree char *text = err ? g_strdup (g_strstrip (err)) : g_strdup ("");
    char *nl = strrchr (text, '\n'); /* a Python traceback ends with the error itself */
    const char *last = nl ? nl + 1 : text;

    g_set_error (error, CM_ERROR, CM_ERROR_ENVIRONMENT, "make-pki failed (%s); %s",
                 *last ? last : (local ? local->message : "no message"),
                 installed ? "it needs python3-cryptography and openssl: apt-get install "
                             "python3-cryptography openssl"
                           : "run scripts/install-deps demo, which installs "
                             "python3-cryptography");
    return FALSE;
  }
}

/* How a step that runs a harness ended: 77 is the harnesses' "a tool is missing" (skipped, said
 * with the fix); anything else but 0 is a failure. Returns FALSE on failure. */
static gboolean
harness_done (gboolean spawned, int status, const char *step, const char *tools)
{
  if (spawned && WIFEXITED (status) && WEXITSTATUS (status) == 77)
    {
      printf ("      (skipped: %s not installed: run scripts/install-deps demo)\n", tools);
      return TRUE;
    }
  if (spawned && g_spawn_check_wait_status (status, NULL))
    return TRUE;
  fprintf (stderr, "cacmail: error: the demo's %s step failed (see above)\n", step);
  return FALSE;
}

/* A step that needs the test tools of a source build (virtual cards, harnesses): an installed
 * cacmail says so. Not a failure. */
static gboolean
source_build_only (void)
{
  printf ("      (skipped: this step runs from a source build, with its virtual test cards and "
          "sandbox servers; an installed cacmail runs the offline steps only)\n");
  return TRUE;
}

/* Step 5: both persona cards in two virtual readers behind a private pcscd, read by
 * `cacmail status`. Needs root (mount namespace) and the test harness of a source build.
 * FALSE when the step failed (a skip is not a failure). */
static gboolean
show_cards_in_readers (const char *pki, const char *at_text)
{
  g_autofree char *harness = cli_demo_tree_file (FALSE, "tests/harness/with-pcscd");
  g_autofree char *vcard = cli_demo_tree_file (TRUE, "tests/virtual-card/cacmail-vcard");
  g_autofree char *self = g_file_read_link ("/proc/self/exe", NULL);
  g_autofree char *c1 = g_build_filename (pki, "cards", "contractor", NULL);
  g_autofree char *c2 = g_build_filename (pki, "cards", "reservist", NULL);
  g_autofree char *cache = g_build_filename (pki, "cache", NULL);
  g_auto (GStrv) env = g_get_environ ();
  int status = 0;
  const char *argv[]
    = { harness, "--card", c1, "--card", c2, "--", self, "status", "--at", at_text, NULL };

  if (harness == NULL || vcard == NULL || self == NULL)
    return source_build_only ();
  if (getuid () != 0)
    {
      printf ("      (skipped: this step runs as root: it starts a private pcscd in its own "
              "namespaces)\n");
      return TRUE;
    }
  env = g_environ_setenv (env, "CACMAIL_VCARD", vcard, TRUE);
  env = g_environ_setenv (env, "XDG_CACHE_HOME", cache, TRUE);
  fflush (stdout);
  return harness_done (g_spawn_sync (NULL, (char **)argv, env, G_SPAWN_CHILD_INHERITS_STDIN, NULL,
                                     NULL, NULL, NULL, &status, NULL),
                       status, "card reader", "pcscd or vsmartcard-vpcd");
}

#ifdef CM_HAVE_EVOLUTION
/* Step 8: a sandbox Evolution identity whose S/MIME settings point at last generation's
 * certificate; the contractor card in a virtual reader, its module registered in the
 * identity's NSS database; `cacmail evolution check`, `fix`, `check` against a private
 * evolution-source-registry. FALSE when the step failed. */
static gboolean
show_evolution_fix (const char *pki, const char *at_text)
{
  g_autofree char *pcscd = cli_demo_tree_file (FALSE, "tests/harness/with-pcscd");
  g_autofree char *eds = cli_demo_tree_file (FALSE, "tests/harness/with-eds");
  g_autofree char *vcard = cli_demo_tree_file (TRUE, "tests/virtual-card/cacmail-vcard");
  g_autofree char *self = g_file_read_link ("/proc/self/exe", NULL);
  g_autofree char *card = g_build_filename (pki, "cards", "contractor", NULL);
  g_autofree char *home = g_build_filename (pki, "evolution-home", NULL);
  g_autofree char *db = g_build_filename (home, ".pki", "nssdb", NULL);
  g_autofree char *sources = g_build_filename (home, ".config", "evolution", "sources", NULL);
  g_autofree char *ident = g_build_filename (sources, "demo-contractor.source", NULL);
  g_autofree char *report = NULL;
  g_autofree char *script
    = g_strdup_printf ("echo '--- before:'; \"$0\" evolution check --at %s; "
                       "echo '--- cacmail evolution fix:'; \"$0\" evolution fix --at %s; "
                       "echo '--- after:'; \"$0\" evolution check --at %s",
                       at_text, at_text, at_text);
  const char *argv[]
    = { pcscd, "--card", card, "--", eds, "--home", home, "--", "sh", "-c", script, self, NULL };
  static const char source[]
    = "[Data Source]\nDisplayName=John Doe (contractor)\nEnabled=true\nParent=\n\n"
      "[Mail Identity]\nAddress=john.q.doe.ctr@mail.mil\nName=John Q. Doe\n\n"
      "[Secure MIME (S/MIME)]\n"
      "SigningCertificate=DOE.JOHN.QUINCY.1234567890 (2022):Certificate for Digital Signature\n"
      "EncryptionCertificate=DOE.JOHN.QUINCY.1234567890 (2022):Certificate for Digital "
      "Signature\nSignByDefault=true\nEncryptByDefault=false\nEncryptToSelf=true\n"
      "SigningAlgorithm=\n";
  g_autoptr (GError) error = NULL;
  g_autoptr (CmNssDb) ndb = NULL;
  int status = 0;

  if (pcscd == NULL || eds == NULL || vcard == NULL || self == NULL)
    return source_build_only ();
  if (getuid () != 0
      || !g_file_test ("/usr/libexec/evolution-source-registry", G_FILE_TEST_IS_EXECUTABLE))
    {
      printf ("      (skipped: this step runs as root with evolution-data-server installed)\n");
      return TRUE;
    }
  if (g_mkdir_with_parents (db, 0700) != 0 || g_mkdir_with_parents (sources, 0700) != 0
      || !g_file_set_contents (ident, source, -1, &error)
      || (ndb = cm_nss_db_open_sync (db, CM_NSS_DB_DEFAULT, NULL, &error)) == NULL
      || !cm_nssdb_register_card_sync (ndb, CM_NSSDB_MODULE_OTHER, &report, NULL, &error))
    {
      fprintf (stderr,
               "cacmail: error: the demo's Evolution step could not prepare its sandbox: %s\n",
               error ? error->message : "?");
      return FALSE;
    }
  g_clear_pointer (&ndb, cm_nss_db_free);
  printf ("      identity demo-contractor names last generation's certificate; Evolution's "
          "NSS database\n      has the card module (%s)\n",
          report);
  fflush (stdout);
  {
    g_auto (GStrv) env = g_environ_setenv (g_get_environ (), "CACMAIL_VCARD", vcard, TRUE);
    return harness_done (g_spawn_sync (NULL, (char **)argv, env, G_SPAWN_STDERR_TO_DEV_NULL, NULL,
                                       NULL, NULL, NULL, &status, NULL),
                         status, "Evolution", "evolution-data-server, dbus or pcscd");
  }
}
#endif

/* Step 9: a Thunderbird profile the demo makes itself (profiles.ini, a prefs.js whose identity
 * names last generation's certificates, an NSS database with the card module: Thunderbird need
 * not be installed); the contractor card in a virtual reader; `cacmail thunderbird check`,
 * `fix`, `check`. FALSE when the step failed. */
static gboolean
show_thunderbird_fix (const char *pki, const char *at_text)
{
  g_autofree char *pcscd = cli_demo_tree_file (FALSE, "tests/harness/with-pcscd");
  g_autofree char *vcard = cli_demo_tree_file (TRUE, "tests/virtual-card/cacmail-vcard");
  g_autofree char *self = g_file_read_link ("/proc/self/exe", NULL);
  g_autofree char *card = g_build_filename (pki, "cards", "contractor", NULL);
  g_autofree char *home = g_build_filename (pki, "thunderbird-home", NULL);
  g_autofree char *root = g_build_filename (home, ".thunderbird", NULL);
  g_autofree char *prof = g_build_filename (root, "demo.default", NULL);
  g_autofree char *ini = g_build_filename (root, "profiles.ini", NULL);
  g_autofree char *prefs_js = g_build_filename (prof, "prefs.js", NULL);
  g_autofree char *report = NULL, *data = NULL, *cache = NULL;
  g_autofree char *script = g_strdup_printf (
    "echo '--- before:'; \"$0\" thunderbird check --at %s; echo '--- cacmail thunderbird fix:'; "
    "\"$0\" thunderbird fix --at %s; echo '--- after:'; \"$0\" thunderbird check --at %s",
    at_text, at_text, at_text);
  const char *argv[] = { pcscd, "--card", card, "--", "sh", "-c", script, self, NULL };
  const char *old[]
    = { "previous/contractor-signing-old.crt", "previous/contractor-encryption-old.crt" };
  const char *which[] = { "signing", "encryption" };
  g_autoptr (CmInventory) inv = cm_inventory_new ();
  g_autoptr (CmTbPrefs) prefs = cm_tb_prefs_new ();
  g_autoptr (GError) error = NULL;
  g_autoptr (CmNssDb) ndb = NULL;
  g_auto (GStrv) env = NULL;
  gboolean ok = TRUE;
  int status = 0;

  if (pcscd == NULL || vcard == NULL || self == NULL)
    return source_build_only ();
  if (getuid () != 0)
    {
      printf ("      (skipped: this step runs as root, for the virtual card's private pcscd)\n");
      return TRUE;
    }
  cm_tb_prefs_set_string (prefs, "mail.accountmanager.accounts", "account1");
  cm_tb_prefs_set_string (prefs, "mail.account.account1.identities", "id1");
  cm_tb_prefs_set_string (prefs, "mail.identity.id1.fullName", "John Q. Doe");
  cm_tb_prefs_set_string (prefs, "mail.identity.id1.useremail", "john.q.doe.ctr@mail.mil");
  cm_tb_prefs_set (prefs, "mail.identity.id1.sign_mail",
                   &(CmTbPrefValue){ .type = CM_TB_PREF_BOOL, .boolean = TRUE });
  for (int i = 0; i < 2 && ok; i++)
    {
      g_autofree char *path = g_build_filename (pki, old[i], NULL);
      g_autofree char *n = g_strdup_printf ("mail.identity.id1.%s_cert_name", which[i]);
      g_autofree char *k = g_strdup_printf ("mail.identity.id1.%s_cert_dbkey", which[i]);
      CmCert *c;
      g_autofree char *name = NULL, *key = NULL;
      if (!(ok = cm_inventory_add_path (inv, path, &error)))
        break;
      c = g_ptr_array_index (cm_inventory_get_certs (inv), cm_inventory_get_certs (inv)->len - 1);
      name = cm_tb_cert_display_name (c);
      key = cm_nss_cert_dbkey (c);
      cm_tb_prefs_set_string (prefs, n, name);
      cm_tb_prefs_set_string (prefs, k, key);
    }
  data = g_strdup_printf ("// Mozilla User Preferences (a sandbox profile made by cacmail demo)"
                          "\n\n%s",
                          cm_tb_prefs_get_text (prefs, NULL));
  if (!ok || g_mkdir_with_parents (prof, 0700) != 0
      || !g_file_set_contents (ini,
                               "[Install4F96D1932A9F858E]\nDefault=demo.default\n\n[Profile0]\n"
                               "Name=demo\nIsRelative=1\nPath=demo.default\nDefault=1\n",
                               -1, &error)
      || !g_file_set_contents (prefs_js, data, -1, &error)
      || (ndb = cm_nss_db_open_sync (prof, CM_NSS_DB_DEFAULT, NULL, &error)) == NULL
      || !cm_nssdb_register_card_sync (ndb, CM_NSSDB_MODULE_OTHER, &report, NULL, &error))
    {
      fprintf (stderr,
               "cacmail: error: the demo's Thunderbird step could not prepare its sandbox: %s\n",
               error ? error->message : "?");
      return FALSE;
    }
  g_clear_pointer (&ndb, cm_nss_db_free);
  printf ("      a sandbox profile: %s\n      its identity id1 names last generation's signing "
          "and encryption certificates;\n      card module: %s\n",
          prof, report);
  fflush (stdout);
  cache = g_build_filename (home, ".cache", NULL);
  env = g_environ_setenv (g_get_environ (), "CACMAIL_VCARD", vcard, TRUE);
  env = g_environ_setenv (env, "HOME", home, TRUE);
  env = g_environ_setenv (env, "XDG_CACHE_HOME", cache, TRUE);
  return harness_done (g_spawn_sync (NULL, (char **)argv, env, G_SPAWN_STDERR_TO_DEV_NULL, NULL,
                                     NULL, NULL, NULL, &status, NULL),
                       status, "Thunderbird", "pcscd or vsmartcard-vpcd");
}

static gboolean
load (CmInventory *inv, const char *pki, const char *const *rel, GError **error)
{
  for (; *rel; rel++)
    {
      g_autofree char *path = g_build_filename (pki, *rel, NULL);
      if (!cm_inventory_add_path (inv, path, error))
        return FALSE;
    }
  return TRUE;
}

static void
show_identities (CmInventory *inv, gint64 at)
{
  g_autoptr (GPtrArray) emails = cm_inventory_list_emails (inv);

  for (guint i = 0; i < emails->len; i++)
    {
      g_autoptr (CmPicks) pk = cm_select_for_email (inv, g_ptr_array_index (emails, i), at, NULL);
      printf ("\n");
      cli_print_picks (inv, pk);
    }
}

int
cmd_demo (int argc, char **argv)
{
  g_autofree char *pki_opt = NULL, *at_text = NULL;
  gboolean keep = FALSE;
  GOptionEntry entries[] = {
    { "pki", 0, 0, G_OPTION_ARG_FILENAME, &pki_opt,
      "Use a test PKI made by tests/pki/make-pki instead of a fresh one", "DIR" },
    { "at", 0, 0, G_OPTION_ARG_STRING, &at_text, "Run as of TIME (default now)", "TIME" },
    { "keep", 0, 0, G_OPTION_ARG_NONE, &keep, "Keep the sandbox folder", NULL },
    { NULL },
  };
  static const char *const dual[] = { "cards/contractor",
                                      "cards/reservist",
                                      "previous/contractor-signing-old.crt",
                                      "previous/contractor-encryption-old.crt",
                                      "previous/reservist-signing-old.crt",
                                      "previous/reservist-encryption-old.crt",
                                      NULL };
  static const char *const shared[] = { "cards/contractor", "cards/reservist-same-email", NULL };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("- run the flow on a test PKI");
  g_autoptr (GError) error = NULL;
  g_autoptr (CmInventory) inv = cm_inventory_new ();
  g_autoptr (CmInventory) inv2 = cm_inventory_new ();
  g_autofree char *sandbox = NULL;
  const char *pki;
  gint64 at = cm_time_now ();
  int rc = CLI_EXIT_OK;

  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!g_option_context_parse (ctx, &argc, &argv, &error))
    return cli_usage ("%s", error->message);
  if (at_text && !cm_time_parse (at_text, &at, &error))
    return cli_usage ("--at: %s", error->message);

  if (pki_opt)
    pki = pki_opt;
  else
    {
      if ((sandbox = g_dir_make_tmp ("cacmail-demo-XXXXXX", &error)) == NULL)
        return cli_fail (error);
      printf ("[1/10] Generating a test PKI in %s\n"
              "      (a DoD-like root, ID and EMAIL CAs; one person, EDIPI 1234567890, with a\n"
              "      contractor card and a reservist card; last generation's expired certs)...\n",
              sandbox);
      fflush (stdout);
      if (!generate_pki (sandbox, &error))
        {
          rc = cli_fail (error);
          goto out;
        }
      pki = sandbox;
    }

  printf ("[2/10] Reading both persona cards and the previous certificates\n");
  if (!load (inv, pki, dual, &error))
    {
      rc = cli_fail (error);
      goto out;
    }
  {
    GPtrArray *certs = cm_inventory_get_certs (inv);
    GPtrArray *personas = cm_inventory_get_personas (inv);
    printf ("      %u distinct certificates, %u personas:\n", certs->len, personas->len);
    for (guint i = 0; i < certs->len; i++)
      {
        CmCert *c = g_ptr_array_index (certs, i);
        CmPersona *p = cm_inventory_persona_of (inv, c);
        g_autofree char *name = cli_short_name (c);
        const char *slot = cm_slot_to_string (cm_cert_get_slot (c));
        printf ("      %-16s %-6s %-30s persona %s%s\n", cm_role_to_string (cm_cert_get_role (c)),
                slot ? slot : "file", name, p ? cm_persona_get_key (p) : "-",
                cm_cert_is_valid_at (c, at) ? "" : "  (not valid now)");
      }
  }

  printf ("\n[3/10] What to use for each mail identity, and why\n");
  show_identities (inv, at);

  printf ("\n[4/10] A mistake cacmail catches: the reservist card issued with the contractor's "
          "address\n");
  if (!load (inv2, pki, shared, &error))
    {
      rc = cli_fail (error);
      goto out;
    }
  {
    g_autoptr (GPtrArray) emails = cm_inventory_list_emails (inv2);
    for (guint i = 0; i < emails->len; i++)
      {
        g_autoptr (CmPicks) pk
          = cm_select_for_email (inv2, g_ptr_array_index (emails, i), at, NULL);
        if (cm_picks_get_problems (pk)->len == 0)
          continue;
        printf ("\n");
        cli_print_picks (inv2, pk);
      }
  }
  printf ("\n[5/10] The two persona cards in two card readers (virtual cards, real pcscd)\n");
  {
    g_autofree char *at_iso = cm_time_format (at);
    if (!show_cards_in_readers (pki, at_iso))
      rc = CLI_EXIT_FAILED;
  }
  printf ("\n[6/10] Evolution's and Thunderbird's NSS database: card module, trust, a "
          "recovered key\n");
  fflush (stdout);
  if (cli_demo_nss_step (pki) != CLI_EXIT_OK)
    rc = CLI_EXIT_FAILED;
  printf ("\n[7/10] Republish to the address list (GAL): a sandbox LDAP server\n");
  fflush (stdout);
  if (cli_demo_ldap_step (pki) != CLI_EXIT_OK)
    rc = CLI_EXIT_FAILED;
  printf ("\n[8/10] Evolution: stale S/MIME settings found and fixed through its registry\n");
#ifdef CM_HAVE_EVOLUTION
  {
    g_autofree char *at_iso = cm_time_format (at);
    if (!show_evolution_fix (pki, at_iso))
      rc = CLI_EXIT_FAILED;
  }
#else
  printf ("      (skipped: built without evolution-data-server-dev)\n");
#endif
  printf ("\n[9/10] Thunderbird: a stale identity found and fixed in a sandbox profile\n");
  {
    g_autofree char *at_iso = cm_time_format (at);
    if (!show_thunderbird_fix (pki, at_iso))
      rc = CLI_EXIT_FAILED;
  }
  printf ("\n[10/10] A new user's guided setup: DoD trust chain from the DISA bundle, directory "
          "settings after a connection test, then cacmail doctor\n");
  fflush (stdout);
  if (cli_demo_setup_step (pki) != CLI_EXIT_OK)
    rc = CLI_EXIT_FAILED;
  printf ("\nDemo finished.%s%s\n", keep && sandbox ? " Sandbox kept in " : "",
          keep && sandbox ? sandbox : "");

out:
  if (sandbox && !keep)
    {
      const char *rm[] = { "rm", "-rf", "--", sandbox, NULL };
      g_spawn_sync (NULL, (char **)rm, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL, NULL,
                    NULL);
    }
  return rc;
}
