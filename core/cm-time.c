/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cm-time.c: parsing and printing the times users give (--at) and JSON shows. */
#include "cm-private.h"

gboolean
cm_time_parse (const char *text, gint64 *out, GError **error)
{
  g_autoptr (GDateTime) dt = NULL;
  g_autoptr (GTimeZone) utc = g_time_zone_new_utc ();
  int y, m, d;
  char tail;

  *out = 0;
  if (text == NULL || *text == '\0')
    goto bad;
  if (sscanf (text, "%4d-%2d-%2d%c", &y, &m, &d, &tail) == 3 && strlen (text) == 10)
    dt = g_date_time_new (utc, y, m, d, 0, 0, 0);
  else
    dt = g_date_time_new_from_iso8601 (text, utc);
  if (dt == NULL)
    goto bad;
  *out = g_date_time_to_unix (dt);
  return TRUE;

bad:
  g_set_error (error, CM_ERROR, CM_ERROR_BAD_INPUT,
               "bad time '%s': use YYYY-MM-DD or ISO 8601 such as 2026-06-01T12:00:00Z",
               text ? text : "");
  return FALSE;
}

gint64
cm_time_now (void)
{
  return g_get_real_time () / G_USEC_PER_SEC;
}

char *
cm_time_format (gint64 t)
{
  g_autoptr (GDateTime) dt = g_date_time_new_from_unix_utc (t);

  return dt ? g_date_time_format (dt, "%Y-%m-%dT%H:%M:%SZ") : g_strdup ("invalid");
}

char *
cm_time_format_date (gint64 t)
{
  g_autoptr (GDateTime) dt = g_date_time_new_from_unix_utc (t);

  return dt ? g_date_time_format (dt, "%Y-%m-%d") : g_strdup ("invalid");
}
