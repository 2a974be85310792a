/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cm-evo-login.h: mail login with the Kerberos ticket for Evolution's accounts: each mail
 * identity's incoming server (IMAP, POP3) and SMTP server is probed for GSSAPI and, where it
 * offers it, its authentication method (ESourceAuthentication "method", which Camel reads as
 * CamelNetworkSettings:auth-mechanism) becomes "GSSAPI", written through
 * evolution-source-registry. No GTK: the Evolution module and `cacmail evolution login` call
 * this. Prefix cm_evo_login_. */
#pragma once

#include <cm-evo.h>
#include <cm-tb.h>

G_BEGIN_DECLS

/* One server of one identity and what login does for it. */
typedef struct
{
  char *identity_uid;     /* the mail identity's ESource UID */
  char *source_uid;       /* the mail account (incoming) or mail transport (SMTP) source */
  char *method;           /* its authentication method now ("PLAIN", "GSSAPI", ... or NULL) */
  gboolean incoming;      /* IMAP or POP3 (FALSE: SMTP) */
  CmTbServerProbe *probe; /* kind, host, port, socket_type, address; the probe's findings */
  gboolean set;           /* the method becomes GSSAPI */
  gboolean refused;       /* an incoming server that does not offer GSSAPI */
  char *message;          /* one sentence for people */
} CmEvoLoginServer;

typedef struct _CmEvoLogin CmEvoLogin;

/* Connect to the source registry and list the servers of every mail identity with an address
 * (only @identity_uid when set: CM_EVO_ERROR_NOT_FOUND when there is no such identity),
 * CM_EVO_ERROR_REGISTRY when the registry cannot be reached. Nothing is probed yet. Free with
 * cm_evo_login_free. */
CmEvoLogin *cm_evo_login_new_sync (const char *identity_uid, GCancellable *cancellable,
                                   GError **error);
void cm_evo_login_free (CmEvoLogin *login);

/* The servers (CmEvoLoginServer*), incoming first per identity; owned by @login. */
GPtrArray *cm_evo_login_get_servers (CmEvoLogin *login);

/* Ask each server for its login methods (IMAP CAPABILITY, POP3 CAPA, SMTP EHLO after STARTTLS
 * or TLS; @timeout_ms bounds each step; servers without TLS are not asked) and decide: GSSAPI
 * where it is offered, refused for an incoming server that does not offer it. */
void cm_evo_login_probe_sync (CmEvoLogin *login, guint timeout_ms, GCancellable *cancellable);

/* The first refused server, or NULL; owned by @login. */
CmEvoLoginServer *cm_evo_login_get_refused (CmEvoLogin *login);

/* Write "GSSAPI" to the servers that get it (e_source_write_sync), after probing. Nothing is
 * written when a server is refused (CM_ERROR_UNSAFE with its message). Returns the number of
 * sources changed (a server already on GSSAPI is not written), or -1 with @error. */
gint cm_evo_login_apply_sync (CmEvoLogin *login, GCancellable *cancellable, GError **error);

/* {"servers": [{"identity", "source", "kind", "host", "port", "security", "method",
 * "offers_gssapi", "error", "kerberos_auth", "refused", "message"}]} (docs/json.md). New node. */
JsonNode *cm_evo_login_to_json (CmEvoLogin *login);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (CmEvoLogin, cm_evo_login_free)

G_END_DECLS
