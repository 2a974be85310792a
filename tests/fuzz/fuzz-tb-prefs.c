/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* fuzz-tb-prefs.c: Thunderbird's prefs.js as cm-tb-prefs.c reads it, then what cacmail does
 * with it: every pref read back and written again (the file must still parse, to the value
 * written), an S/MIME pref added and removed, the identities listed and their dbKeys decoded. */
#include "cm-tb-private.h"
#include "fuzz.h"
#include <stdio.h>
#include <stdlib.h>

static const CmTbPrefValue unset = { .type = CM_TB_PREF_UNSET };

/* Reparse @prefs' text: it must parse, and @name must read as @want. */
static void
check_reparse (CmTbPrefs *prefs, const char *name, const CmTbPrefValue *want)
{
  gsize len = 0;
  const char *text = cm_tb_prefs_get_text (prefs, &len);
  g_autoptr (CmTbPrefs) again = cm_tb_prefs_parse (text, len, "prefs.js", NULL);

  if (again == NULL || !cm_tb_pref_value_equal (cm_tb_prefs_get (again, name), want))
    {
      /* cacmail wrote a prefs.js it cannot read back, or reads another value */
      fprintf (stderr, "fuzz-tb-prefs: after setting %s the file %s:\n", name,
               again ? "gives another value" : "no longer parses");
      fwrite (text, 1, len, stderr);
      abort ();
    }
}

static void
identities (CmTbPrefs *prefs)
{
  g_autoptr (GPtrArray) ids = cm_tb_prefs_list_identities (prefs);
  g_autoptr (CmInventory) inv = cm_inventory_new ();

  for (guint i = 0; i < ids->len; i++)
    {
      CmTbSettings *s = g_ptr_array_index (ids, i);
      CmCert *c = NULL;
      if (s->signing_dbkey)
        cm_tb_resolve_dbkey (inv, s->signing_dbkey, &c);
      if (s->encryption_dbkey)
        cm_tb_resolve_dbkey (inv, s->encryption_dbkey, &c);
    }
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  g_autoptr (CmTbPrefs) prefs = NULL;
  g_autoptr (GPtrArray) names = NULL;
  const char *added = "mail.identity.id1.signing_cert_dbkey";
  CmTbPrefValue v = { .type = CM_TB_PREF_STRING, .string = (char *)"AAAA\"\\\n\xc3\xa9" };

  if (!cm_init (NULL))
    return 0;
  prefs = cm_tb_prefs_parse ((const char *)data, size, "prefs.js", NULL);
  if (prefs == NULL)
    return 0;
  identities (prefs);
  names = cm_tb_prefs_list_names (prefs, "");
  for (guint i = 0; i < names->len && i < 64; i++)
    {
      const char *name = g_ptr_array_index (names, i);
      CmTbPrefValue copy = { 0 };
      cm_tb_pref_value_copy (&copy, cm_tb_prefs_get (prefs, name));
      cm_tb_prefs_set (prefs, name, &copy);
      check_reparse (prefs, name, &copy);
      cm_tb_pref_value_clear (&copy);
    }
  cm_tb_prefs_set (prefs, added, &v);
  check_reparse (prefs, added, &v);
  cm_tb_prefs_set (prefs, added, &unset);
  check_reparse (prefs, added, &unset);
  return 0;
}
