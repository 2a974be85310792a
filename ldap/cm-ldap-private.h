/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cm-ldap-private.h: pieces shared by the files of libcacmail-ldap; not installed. */
#pragma once

#include "cm-ldap.h"

G_BEGIN_DECLS

#define CM_LDAP_ATTR_CERT "userCertificate;binary"
#define CM_LDAP_ATTR_SMIME "userSMIMECertificate"

/* ---- cm-ldap-config.c ---- */
/* "insecure" and similar booleans: TRUE for true/yes/1. */
G_GNUC_INTERNAL gboolean cm_ldap_config_get_bool (CmLdapConfig *cfg, const char *key);
G_GNUC_INTERNAL int cm_ldap_config_get_timeout (CmLdapConfig *cfg);
/* cm_ldap_secret_read_file with @what naming the file in messages ("PIN file"). */
G_GNUC_INTERNAL char *cm_ldap_secret_read_file_as (const char *path, const char *what,
                                                   GError **error);

/* ---- cm-ldap-watch.c: deadline and cancellation of each network step ---- */
typedef struct _CmLdapWatch CmLdapWatch;

typedef enum
{
  CM_LDAP_WATCH_OK,        /* the step ended by itself */
  CM_LDAP_WATCH_TIMED_OUT, /* its deadline passed: the socket was shut down */
  CM_LDAP_WATCH_CANCELLED, /* the caller's cancellable fired: the socket was shut down */
} CmLdapWatchState;

/* A watchdog thread for one connection; @cancellable (may be NULL) is the caller's. Free with
 * cm_ldap_watch_free BEFORE the socket is closed. */
G_GNUC_INTERNAL CmLdapWatch *cm_ldap_watch_new (GCancellable *cancellable);
/* The connection's socket, shut down when a step ends early. */
G_GNUC_INTERNAL void cm_ldap_watch_set_fd (CmLdapWatch *w, int fd);
/* Start a step that must end within @seconds; @cancellable_step: the caller's cancellable may
 * end it. Returns a GCancellable (owned by @w) cancelled when the step ends early, for GIO calls;
 * NULL with @error when the caller cancelled already or an earlier step ended early. */
G_GNUC_INTERNAL GCancellable *cm_ldap_watch_begin (CmLdapWatch *w, int seconds,
                                                   gboolean cancellable_step, GError **error);
/* End the step: how it ended. */
G_GNUC_INTERNAL CmLdapWatchState cm_ldap_watch_end (CmLdapWatch *w);
G_GNUC_INTERNAL void cm_ldap_watch_free (CmLdapWatch *w);

/* ---- cm-ldap-conn.c: one connection, TLS and bind ---- */
typedef struct _CmLdapConn CmLdapConn;

/* One entry as read: attribute values are copies. */
typedef struct
{
  char *dn;
  char **mails;     /* NULL-terminated */
  GPtrArray *certs; /* GBytes*, userCertificate values in the server's order */
  GBytes *smime;    /* userSMIMECertificate, or NULL; several values: the first */
  guint n_smime;    /* how many userSMIMECertificate values */
  char *csn;        /* entryCSN, or NULL */
} CmLdapEntry;

G_GNUC_INTERNAL void cm_ldap_entry_free (CmLdapEntry *entry);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CmLdapEntry, cm_ldap_entry_free)

/* Connect to the first URI that answers within "timeout" (the next one when a server cannot be
 * reached or does not answer), with StartTLS or LDAPS; without TLS only where the server refuses
 * StartTLS and either "allow-plain-ldap" is set or the bind is GSSAPI (which must then bring a
 * SASL security layer). Not bound yet. @cancellable ends any step of the connection at once
 * (G_IO_ERROR_CANCELLED) until cm_ldap_conn_set_cancellable (FALSE). */
G_GNUC_INTERNAL CmLdapConn *cm_ldap_conn_connect_sync (CmLdapConfig *cfg, GCancellable *cancellable,
                                                       GError **error);
/* Bind as configured; @entry_dn is the simple-bind DN when "bind-dn" is unset. */
G_GNUC_INTERNAL gboolean cm_ldap_conn_bind_sync (CmLdapConn *conn, CmLdapConfig *cfg,
                                                 const char *entry_dn, CmLdapSecretFunc ask,
                                                 gpointer ask_data, GCancellable *cancellable,
                                                 GError **error);
/* Bind as configured, a simple bind as @id (a DN, or on AD a UPN or DOMAIN\\user). */
G_GNUC_INTERNAL gboolean cm_ldap_conn_bind_id_sync (CmLdapConn *conn, CmLdapConfig *cfg,
                                                    const char *id, CmLdapSecretFunc ask,
                                                    gpointer ask_data, GCancellable *cancellable,
                                                    GError **error);
G_GNUC_INTERNAL gboolean cm_ldap_conn_is_tls (CmLdapConn *conn);

/* The kind of server, from its root DSE (read right after connecting): the rules differ. */
typedef enum
{
  CM_LDAP_KIND_LDAP, /* RFC 4523 rules (OpenLDAP): userCertificate;binary, Who am I? */
  CM_LDAP_KIND_AD,   /* Active Directory (Windows or Samba): supportedCapabilities has
                      * 1.2.840.113556.1.4.800; userCertificate without ;binary, no assertion
                      * control, anonymous searches refused, GSSAPI with sign and seal */
} CmLdapKind;

typedef struct
{
  CmLdapKind kind;
  char *vendor;     /* vendorName, or NULL */
  char *default_nc; /* defaultNamingContext (AD), or NULL */
} CmLdapRootDse;

/* The root DSE as read at connect time (owned by @conn; all NULL when it could not be read). */
G_GNUC_INTERNAL const CmLdapRootDse *cm_ldap_conn_get_root_dse (CmLdapConn *conn);
G_GNUC_INTERNAL gboolean cm_ldap_conn_is_ad (CmLdapConn *conn);
/* "userCertificate;binary" (LDAP) or "userCertificate" (AD: ;binary is not in its schema). */
G_GNUC_INTERNAL const char *cm_ldap_conn_cert_attr (CmLdapConn *conn);
/* The SASL user name of the bind (GSSAPI: the Kerberos principal), or NULL. Caller frees. */
G_GNUC_INTERNAL char *cm_ldap_conn_sasl_user (CmLdapConn *conn);
/* SASL security layer of the bind in bits (0: none). */
G_GNUC_INTERNAL guint cm_ldap_conn_get_ssf (CmLdapConn *conn);
/* TLS, or a SASL layer of at least 56 bits: nothing crossed the network in clear text. */
G_GNUC_INTERNAL gboolean cm_ldap_conn_is_protected (CmLdapConn *conn);
G_GNUC_INTERNAL const char *cm_ldap_conn_get_uri (CmLdapConn *conn);
G_GNUC_INTERNAL int cm_ldap_conn_get_timeout (CmLdapConn *conn);
/* FALSE: from now on steps run to their end or deadline, whatever the cancellable (the write
 * was sent: stopping half-way would leave the user not knowing what happened). */
G_GNUC_INTERNAL void cm_ldap_conn_set_cancellable (CmLdapConn *conn, gboolean cancellable);
/* For cm-ldap-ops.c: the LDAP* (borrowed), the step around each libldap call (begin: FALSE with
 * @error when cancelled or the connection is dead; end: FALSE with @error, "WHAT URI timed out"
 * or cancelled, when the watchdog ended the step), and libldap's diagnostic (": text" or "",
 * caller frees). */
G_GNUC_INTERNAL gpointer cm_ldap_conn_get_ld (CmLdapConn *conn);
G_GNUC_INTERNAL gboolean cm_ldap_conn_step_begin (CmLdapConn *conn, GError **error);
G_GNUC_INTERNAL gboolean cm_ldap_conn_step_end (CmLdapConn *conn, const char *what, GError **error);
G_GNUC_INTERNAL char *cm_ldap_conn_diagnostic (CmLdapConn *conn);

/* ---- cm-ldap-ops.c: operations, each one step under the deadline ---- */
/* *@id: "dn:..." / "u:..." of the bound identity, or NULL if the server has no Who am I?
 * (caller frees). FALSE with @error when the connection failed. */
G_GNUC_INTERNAL gboolean cm_ldap_conn_whoami (CmLdapConn *conn, char **id, GError **error);
/* *@has: the server advertises the assertion control (RFC 4528). FALSE with @error when the
 * connection failed. */
G_GNUC_INTERNAL gboolean cm_ldap_conn_has_assertion (CmLdapConn *conn, gboolean *has,
                                                     GError **error);
/* Entries matching; @dn non-NULL: that entry only (base search); else @filter under "base".
 * Caller unrefs the array (CmLdapEntry*). A missing @dn gives an empty array. */
G_GNUC_INTERNAL GPtrArray *cm_ldap_conn_read_entries (CmLdapConn *conn, CmLdapConfig *cfg,
                                                      const char *dn, const char *filter,
                                                      GError **error);
/* One modify of @dn: delete @old_certs exactly (may be empty), add @new_certs in order (may be
 * empty), replace (or, @smime NULL, delete if @delete_smime) the blob; guarded by
 * (entryCSN=@csn) when @csn. Conflicts are CM_LDAP_ERROR_CONFLICT. */
G_GNUC_INTERNAL gboolean cm_ldap_conn_modify (CmLdapConn *conn, const char *dn,
                                              GPtrArray *old_certs, GPtrArray *new_certs,
                                              GBytes *smime, gboolean delete_smime, const char *csn,
                                              GError **error);
G_GNUC_INTERNAL void cm_ldap_conn_free (CmLdapConn *conn);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CmLdapConn, cm_ldap_conn_free)

/* Read the root DSE (kind, vendor, naming context); a root DSE the server does not show gives
 * kind LDAP and NULLs. FALSE with @error only when the connection failed. Caller frees
 * *@dse with cm_ldap_root_dse_clear. */
G_GNUC_INTERNAL gboolean cm_ldap_conn_read_root_dse (CmLdapConn *conn, CmLdapRootDse *dse,
                                                     GError **error);
G_GNUC_INTERNAL void cm_ldap_root_dse_clear (CmLdapRootDse *dse);
/* DNs of the entries matching @filter in a subtree search from @base (no attributes), for
 * mapping identities; search references are ignored. Caller frees (g_strfreev). */
G_GNUC_INTERNAL char **cm_ldap_conn_find_dns (CmLdapConn *conn, const char *base,
                                              const char *filter, GError **error);
/* One modify: delete @values exactly and add them again (Active Directory puts a re-added value
 * last). Conflicts are CM_LDAP_ERROR_CONFLICT. */
G_GNUC_INTERNAL gboolean cm_ldap_conn_move_last (CmLdapConn *conn, const char *dn,
                                                 GPtrArray *values, GError **error);

/* ---- cm-ldap-ad.c: what Active Directory needs ---- */
/* The DN of the identity the server sees for this bind: Who am I? ("dn:" as is, "u:DOMAIN\user"
 * found by sAMAccountName on AD), else the simple-bind DN, UPN or DOMAIN\user, or (GSSAPI) the
 * SASL user name, found in the directory. Never NULL without @error (CM_LDAP_ERROR_REFUSED when
 * it cannot be told: cacmail then writes nothing). @bind_id: the simple bind's DN or name. */
G_GNUC_INTERNAL char *cm_ldap_bound_dn (CmLdapConn *conn, CmLdapConfig *cfg, const char *bind_id,
                                        GError **error);
/* The simple-bind identity on AD: "bind-dn" (a bare name gets @realm or @domain), else
 * "entry-dn"; NULL with CM_LDAP_ERROR_CONFIG (AD refuses anonymous searches). Caller frees. */
G_GNUC_INTERNAL char *cm_ldap_ad_bind_id (CmLdapConn *conn, CmLdapConfig *cfg, GError **error);
/* The search base: "base", else the root DSE's defaultNamingContext. */
G_GNUC_INTERNAL const char *cm_ldap_search_base (CmLdapConn *conn, CmLdapConfig *cfg);
/* One line naming the server kind and which rules cacmail follows there (static). */
G_GNUC_INTERNAL const char *cm_ldap_kind_rules (CmLdapKind kind);

/* ---- cm-ldap-srv.c: --domain ---- */
/* URIs for @domain from its DNS SRV records _ldap._tcp.DOMAIN ("ldap://HOST:PORT ...", in the
 * records' priority and weight order), within @timeout seconds. Caller frees. NULL with
 * CM_LDAP_ERROR_CONNECT (no records, no answer in time) or G_IO_ERROR_CANCELLED. */
G_GNUC_INTERNAL char *cm_ldap_srv_uris (const char *domain, int timeout, GCancellable *cancellable,
                                        GError **error);
/* Fill "uri" from "domain" when "uri" is unset, "realm" from "domain" (upper case) when unset. */
G_GNUC_INTERNAL gboolean cm_ldap_config_apply_domain (CmLdapConfig *cfg, GCancellable *cancellable,
                                                      GError **error);

/* ---- cm-ldap-card.c: the card through NSS ---- */
typedef struct _CmLdapCard CmLdapCard;

/* Open the NSS database "nssdb" (or use the application's NSS) and list the certificates that
 * have a private key, on every token. */
G_GNUC_INTERNAL CmLdapCard *cm_ldap_card_open_sync (CmLdapConfig *cfg, GCancellable *cancellable,
                                                    GError **error);
/* Pick the current signing and encryption certs for @email at @at; refuse (REFUSED) what is
 * unsafe to publish. Borrowed references in *@signing / *@encryption. */
G_GNUC_INTERNAL gboolean cm_ldap_card_pick (CmLdapCard *card, CmLdapConfig *cfg, const char *email,
                                            gint64 at, CmCert **signing, CmCert **encryption,
                                            GError **error);
/* Log in (PIN through @ask), prove both keys, make the userSMIMECertificate blob, check it. */
G_GNUC_INTERNAL GBytes *cm_ldap_card_sign_sync (CmLdapCard *card, CmCert *signing,
                                                CmCert *encryption, gint64 at, CmLdapSecretFunc ask,
                                                gpointer ask_data, GCancellable *cancellable,
                                                GError **error);
G_GNUC_INTERNAL void cm_ldap_card_free (CmLdapCard *card);
/* NSS's CMS encoder writes indefinite lengths (BER); the GAL wants DER. Rewrite every
 * indefinite length as a definite one (the content itself is DER already: certificates and
 * signed attributes). Appends to @out; returns the bytes of @in consumed, or 0 if malformed
 * (@depth: 0; nesting deeper than 32 is refused). */
G_GNUC_INTERNAL gsize cm_ldap_ber_to_der (const guint8 *in, gsize len, GByteArray *out, int depth);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CmLdapCard, cm_ldap_card_free)

G_END_DECLS
