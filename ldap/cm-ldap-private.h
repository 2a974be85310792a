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

/* Connect to the first URI that answers, with TLS unless "insecure"; not bound yet. */
G_GNUC_INTERNAL CmLdapConn *cm_ldap_conn_connect_sync (CmLdapConfig *cfg, GCancellable *cancellable,
                                                       GError **error);
/* Bind as configured; @entry_dn is the simple-bind DN when "bind-dn" is unset. */
G_GNUC_INTERNAL gboolean cm_ldap_conn_bind_sync (CmLdapConn *conn, CmLdapConfig *cfg,
                                                 const char *entry_dn, CmLdapSecretFunc ask,
                                                 gpointer ask_data, GCancellable *cancellable,
                                                 GError **error);
G_GNUC_INTERNAL gboolean cm_ldap_conn_is_tls (CmLdapConn *conn);
G_GNUC_INTERNAL const char *cm_ldap_conn_get_uri (CmLdapConn *conn);
/* "dn:..." / "u:..." of the bound identity, or NULL if the server has no Who am I?. Caller
 * frees. */
G_GNUC_INTERNAL char *cm_ldap_conn_whoami (CmLdapConn *conn);
/* The server advertises the assertion control (RFC 4528). */
G_GNUC_INTERNAL gboolean cm_ldap_conn_has_assertion (CmLdapConn *conn);
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
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CmLdapCard, cm_ldap_card_free)

G_END_DECLS
