/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* fuzz-ldap-config.c: the LDAP settings file (cacmail.conf, a key file whose [ldap] keys
 * cm-ldap-config.c checks one by one) and the secret files it names (password-file, PIN
 * files: core's cm_secret_read_file, the first line only), both from the same bytes; the
 * secret also as typed on a descriptor (cm_secret_read_line). */
#include "cm-ldap-private.h"
#include "cm-private.h"
#include "fuzz.h"
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

static char *conf_path, *secret_path;

/* A secret is one line: no line break survives, and nothing past the file's cap. */
static void
check_secret (char *secret)
{
  if (secret == NULL)
    return;
  if (strchr (secret, '\n') || strlen (secret) > CM_SECRET_FILE_MAX)
    abort ();
  cm_secret_free (secret);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  g_autoptr (CmLdapConfig) cfg = cm_ldap_config_new ();
  int fd;

  if (conf_path == NULL)
    {
      conf_path = g_build_filename (fuzz_tmpdir (), "cacmail.conf", NULL);
      secret_path = g_build_filename (fuzz_tmpdir (), "secret", NULL);
    }
  fuzz_write_file (conf_path, data, size);
  if (cm_ldap_config_load_file (cfg, conf_path, TRUE, NULL))
    {
      (void)cm_ldap_config_get_bool (cfg, "insecure");
      (void)cm_ldap_config_get_timeout (cfg);
    }
  fuzz_write_file (secret_path, data, size);
  check_secret (cm_ldap_secret_read_file (secret_path, NULL));
  check_secret (cm_secret_read_file (secret_path, "PIN file", CM_SECRET_ALLOW_EMPTY, NULL));
  fd = open (secret_path, O_RDONLY | O_CLOEXEC);
  if (fd >= 0)
    {
      check_secret (cm_secret_read_line (fd, -1, NULL, "PIN", CM_SECRET_DEFAULT, NULL, NULL));
      close (fd);
    }
  return 0;
}
