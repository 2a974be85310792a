/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cm-json.h: the stable JSON shapes (docs/cacmail.schema.json). */
#pragma once

#include <json-glib/json-glib.h>
#include "cm-select.h"

G_BEGIN_DECLS

/* Each returns a new JsonNode (json_node_unref). */
JsonNode *cm_json_cert (CmInventory *inv, CmCert *cert, gint64 at);
JsonNode *cm_json_card (CmInventory *inv, CmCard *card);
JsonNode *cm_json_problem (const CmProblem *problem);
JsonNode *cm_json_picks (CmPicks *picks);
/* {"certs": [...], "cards": [...], "problems": [...]} */
JsonNode *cm_json_certs_report (CmInventory *inv, gint64 at, CmTrust *trust);

/* Called with each piece of a document as it is made (text owned by the caller of @write). */
typedef void (*CmJsonWriteFunc) (const char *text, gpointer data);

/* The same document as cm_json_certs_report(), written piece by piece through @write (one
 * certificate at a time: the whole tree is never in memory). */
void cm_json_certs_report_write (CmInventory *inv, gint64 at, CmTrust *trust, CmJsonWriteFunc write,
                                 gpointer data);

/* Builder helpers for documents of the same style: member @name with @value, or null when
 * @value is NULL; member @name with @t as a "time" (2026-06-01T00:00:00Z). */
void cm_json_add_string_or_null (JsonBuilder *b, const char *name, const char *value);
void cm_json_add_time (JsonBuilder *b, const char *name, gint64 t);

/* Pretty-printed UTF-8 text with a trailing newline. Caller frees. */
char *cm_json_to_string (JsonNode *node);

G_END_DECLS
