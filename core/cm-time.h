/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cm-time.h: times are gint64 seconds since the Unix epoch, UTC. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Parse "YYYY-MM-DD" (midnight UTC) or ISO 8601 with optional zone (default UTC).
 * Returns FALSE and sets @error (CM_ERROR_BAD_INPUT) on anything else. */
gboolean cm_time_parse (const char *text, gint64 *out, GError **error);

/* Now, as seconds since the epoch. */
gint64 cm_time_now (void);

/* "2032-12-01T23:59:59Z". Caller frees with g_free(). */
char *cm_time_format (gint64 t);

/* "2032-12-01". Caller frees with g_free(). */
char *cm_time_format_date (gint64 t);

G_END_DECLS
