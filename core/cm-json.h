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

/* Pretty-printed UTF-8 text with a trailing newline. Caller frees. */
char *cm_json_to_string (JsonNode *node);

G_END_DECLS
