/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* demo-setup.c: the guided-setup step of `cacmail demo`: a new user's sandbox home with a
 * Thunderbird profile, `cacmail setup` from the DISA-like bundle of the test PKI to the
 * directory settings of a sandbox slapd, the same command again (every step already done),
 * then `cacmail doctor`. */
#include "cli.h"
#include <json-glib/json-glib.h>
#include <stdio.h>

/* The SHA-256 of the root the bundle is confirmed against: the manifest's bundle.root_sha256
 * (the user reads it off DISA's page; the demo off the PKI it made). Caller frees; NULL when
 * the manifest has none. */
static char *
bundle_root_sha256 (const char *pki_dir)
{
  g_autofree char *path = g_build_filename (pki_dir, "manifest.json", NULL);
  g_autoptr (JsonParser) parser = json_parser_new ();
  JsonNode *root;
  JsonObject *bundle;

  if (!json_parser_load_from_file (parser, path, NULL)
      || (root = json_parser_get_root (parser)) == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    return NULL;
  bundle = json_object_get_object_member (json_node_get_object (root), "bundle");
  if (bundle == NULL || !json_object_has_member (bundle, "root_sha256"))
    return NULL;
  return g_strdup (json_object_get_string_member (bundle, "root_sha256"));
}

/* $0 = cacmail, $1 = sandbox folder, $2 = bundle, $3 = root SHA-256; inside with-slapd. */
static const char script[]
  = "set -e; H=$1/home; P=$H/.thunderbird/demo; mkdir -p \"$P\";"
    " printf '[Profile0]\\nName=demo\\nIsRelative=1\\nPath=demo\\nDefault=1\\n'"
    "  > \"$H/.thunderbird/profiles.ini\";"
    " certutil -N -d \"sql:$P\" --empty-password;"
    " export HOME=$H XDG_CONFIG_HOME=$H/.config XDG_DATA_HOME=$H/.local/share"
    "  XDG_CACHE_HOME=$H/.cache XDG_STATE_HOME=$H/.local/state;"
    " unset DBUS_SESSION_BUS_ADDRESS CACMAIL_STATE_DIR;"
    " A=\"--uri $CACMAIL_LDAP_URI --base $CACMAIL_LDAP_BASE --bind simple"
    "  --ca-file $CACMAIL_LDAP_CA --yes\";"
    " echo '--- cacmail setup --bundle bundle.p7b --root-sha256 ... (a new Thunderbird profile)';"
    " \"$0\" setup --bundle \"$2\" --root-sha256 \"$3\" $A;"
    " echo '--- cacmail setup again: every step is already done';"
    " \"$0\" setup --bundle \"$2\" --root-sha256 \"$3\" $A;"
    " echo '--- cacmail doctor (this sandbox has no card reader: it says so, with the fix)';"
    " rc=0; \"$0\" doctor --timeout 10 || rc=$?; test $rc -eq 0 -o $rc -eq 7";

int
cli_demo_setup_step (const char *pki_dir)
{
  g_autofree char *harness = cli_demo_tree_file (FALSE, "tests/harness/with-slapd");
  g_autofree char *self = g_file_read_link ("/proc/self/exe", NULL);
  g_autofree char *bundle = g_build_filename (pki_dir, "bundle.p7b", NULL);
  g_autofree char *sha = bundle_root_sha256 (pki_dir);
  g_autofree char *certutil = g_find_program_in_path ("certutil");
  g_autofree char *tmp = NULL;
  g_autoptr (GError) error = NULL;
  int status = 0;

  if (harness == NULL || self == NULL)
    {
      printf ("      (skipped: this step runs from a source build, with its sandbox slapd "
              "(tests/harness/with-slapd); an installed cacmail runs the offline steps only)\n");
      return CLI_EXIT_OK;
    }
  if (!g_file_test ("/usr/sbin/slapd", G_FILE_TEST_IS_EXECUTABLE) || certutil == NULL
      || sha == NULL)
    {
      printf ("      (skipped: needs slapd, libnss3-tools and a PKI with its bundle: run "
              "scripts/install-deps demo)\n");
      return CLI_EXIT_OK;
    }
  if ((tmp = g_dir_make_tmp ("cacmail-demo-setup-XXXXXX", &error)) == NULL)
    {
      fprintf (stderr,
               "cacmail: error: the demo's setup step: %s; set TMPDIR to a writable "
               "folder\n",
               error->message);
      return CLI_EXIT_FAILED;
    }
  {
    const char *argv[]
      = { harness, "--pki", pki_dir, "--", "/bin/sh", "-c", script, self, tmp, bundle, sha, NULL };
    const char *rm[] = { "rm", "-rf", "--", tmp, NULL };
    if (!g_spawn_sync (NULL, (char **)argv, NULL, G_SPAWN_CHILD_INHERITS_STDIN, NULL, NULL, NULL,
                       NULL, &status, &error))
      status = 1;
    g_spawn_sync (NULL, (char **)rm, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL, NULL, NULL);
  }
  if (!g_spawn_check_wait_status (status, NULL))
    {
      fprintf (stderr, "cacmail: error: the demo's setup step failed (see above)\n");
      return CLI_EXIT_FAILED;
    }
  return CLI_EXIT_OK;
}
