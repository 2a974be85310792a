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

/* Always four digits for the year (GLib's %Y gives "583" for 583, which ISO 8601 and
 * cm_time_parse do not read back). */
char *
cm_time_format (gint64 t)
{
  g_autoptr (GDateTime) dt = g_date_time_new_from_unix_utc (t);

  if (dt == NULL)
    return g_strdup ("invalid");
  return g_strdup_printf ("%04d-%02d-%02dT%02d:%02d:%02dZ", g_date_time_get_year (dt),
                          g_date_time_get_month (dt), g_date_time_get_day_of_month (dt),
                          g_date_time_get_hour (dt), g_date_time_get_minute (dt),
                          g_date_time_get_second (dt));
}

char *
cm_time_format_date (gint64 t)
{
  g_autoptr (GDateTime) dt = g_date_time_new_from_unix_utc (t);

  if (dt == NULL)
    return g_strdup ("invalid");
  return g_strdup_printf ("%04d-%02d-%02d", g_date_time_get_year (dt), g_date_time_get_month (dt),
                          g_date_time_get_day_of_month (dt));
}
