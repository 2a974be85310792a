/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cm-native.h: cacmail-native, the native messaging host of cacmail's Thunderbird add-on
 * (docs/thunderbird.md, "The add-on"). Thunderbird starts it with the add-on's port and talks
 * to it over stdin/stdout: each message is a 4-byte length in native byte order followed by
 * that many bytes of UTF-8 JSON, at most 1 MiB each way.
 *
 * Requests:  {"id": ID, "command": NAME, ...}; every request gets exactly one final answer,
 *            {"id": ID, "ok": true, "result": {...}} or
 *            {"id": ID, "ok": false, "error": {"code": CODE, "message": ONE-LINE-WITH-FIX}}.
 * A long command (a job: check, fix, fixed, undo, republish, import-p12) runs in a worker thread,
 * one at a time, and may send, before its answer, {"id": ID, "progress": {...}} and
 * {"id": ID, "ask": {"kind": "pin"|"password", "subject": ..., "prompt": ...}}; the add-on
 * answers a question with {"command": "answer", "job": ID, "secret": S} (or "cancel": true).
 * Secrets never touch disk or argv; they are wiped as soon as they are used. Nothing but
 * frames is ever written to the real stdout (fd 1 is pointed at stderr). */
#pragma once

#include <cacmail.h>
#include <json-glib/json-glib.h>

G_BEGIN_DECLS

/* The biggest message either way (Thunderbird's own limit for a host's message). */
#define CM_NATIVE_MAX_MESSAGE (1024 * 1024)

/* ---- framing (cm-native-frame.c) ---------------------------------------------------------- */

typedef enum
{
  CM_NATIVE_FRAME_OK,        /* *@payload holds the message */
  CM_NATIVE_FRAME_EOF,       /* the stream ended cleanly before a frame */
  CM_NATIVE_FRAME_TRUNCATED, /* the stream ended inside a frame */
  CM_NATIVE_FRAME_TOO_LARGE, /* over CM_NATIVE_MAX_MESSAGE: skipped, *@size says how big */
  CM_NATIVE_FRAME_IO,        /* read error (@error set) */
} CmNativeFrame;

/* Read one frame from @fd. On CM_NATIVE_FRAME_OK *@payload (NUL-terminated, caller wipes with
 * cm_native_wipe_free) holds *@size bytes. An oversized payload is read and dropped so the
 * next frame can be read. */
CmNativeFrame cm_native_read_frame (int fd, char **payload, guint32 *size, GError **error);

/* Write one frame (@len bytes of @data) to @fd, retrying short writes. */
gboolean cm_native_write_frame (int fd, const char *data, gsize len, GError **error);

/* Wipe @len bytes of @buf (strlen when @len is -1) and free it; NULL is fine. */
void cm_native_wipe_free (char *buf, gssize len);

/* ---- the host and its one job (cacmail-native.c) ------------------------------------------ */

typedef struct _CmNative CmNative;
typedef struct _CmNativeJob CmNativeJob;

/* Send @message (not consumed) to the add-on; thread-safe. A message over the limit is
 * replaced by an error answer for @id. FALSE when the add-on is gone. */
gboolean cm_native_send (CmNative *host, JsonNode *message);

/* {"id": @id, "ok": false, "error": {"code": @code, "message": @message}} */
JsonNode *cm_native_error_message (JsonNode *id, const char *code, const char *message);

/* The stable "code" of an error answer for @error ("ldap-auth", "pin", "cancelled", ...). */
const char *cm_native_error_code (const GError *error);

GCancellable *cm_native_job_cancellable (CmNativeJob *job);

/* Send {"id": job id, "progress": @progress} (consumed). */
void cm_native_job_progress (CmNativeJob *job, JsonNode *progress);

/* Ask the add-on for a secret and wait for the answer: @kind is "pin" or "password",
 * @subject the token label or bind DN, @prompt the text shown. Returns the secret (caller
 * frees with cm_native_wipe_free) or NULL with G_IO_ERROR_CANCELLED when the user cancelled,
 * the job was cancelled or the add-on went away, or a time-out error. */
char *cm_native_job_ask (CmNativeJob *job, const char *kind, const char *subject,
                         const char *prompt, GError **error);

/* A job's body: returns the "result" member (a new node) or NULL with @error. Runs in a worker
 * thread; @request is the whole request object. */
typedef JsonNode *(*CmNativeJobFunc) (CmNativeJob *job, JsonObject *request, GError **error);

/* ---- the commands (cm-native-tb.c, cm-native-republish.c, cm-native-import.c) ------------- */

/* Request members shared by the commands. A missing or empty required string member is a
 * "bad-request" error naming it. */
const char *cm_native_get_string (JsonObject *request, const char *member, gboolean required,
                                  GError **error);

/* {"profile": DIR, "identity": "idN" (optional)}: the S/MIME state of the profile's identities
 * (the document of `cacmail thunderbird check --json`). */
JsonNode *cm_native_cmd_check (CmNativeJob *job, JsonObject *request, GError **error);

/* Same request: the pref changes that point the stale identities at the certificates cacmail
 * picks, {"prefs": [{"name", "value", "previous"}], "identities": [...]}; nothing is changed. */
JsonNode *cm_native_cmd_fix (CmNativeJob *job, JsonObject *request, GError **error);

/* {"profile": DIR, "changes": [{"name", "value", "previous"}]}: record the prefs the add-on set,
 * for undo. */
JsonNode *cm_native_cmd_fixed (CmNativeJob *job, JsonObject *request, GError **error);

/* {"profile": DIR}: the pref changes that undo the last fix recorded by "fixed". */
JsonNode *cm_native_cmd_undo (CmNativeJob *job, JsonObject *request, GError **error);

/* {"profile": DIR, "email": ADDR (optional)}: republish the card's certificates to the
 * address list (libcacmail-ldap) with cacmail.conf's [ldap] settings; PIN and LDAP password
 * are asked through the add-on. */
JsonNode *cm_native_cmd_republish (CmNativeJob *job, JsonObject *request, GError **error);

/* {"profile": DIR, "file": PATH, "password": S}: import a recovered key (PKCS#12) into the
 * profile's certificate database. */
JsonNode *cm_native_cmd_import_p12 (CmNativeJob *job, JsonObject *request, GError **error);

/* For the error and the tests: the error domain of the host itself. */
#define CM_NATIVE_ERROR (cm_native_error_quark ())
GQuark cm_native_error_quark (void);

typedef enum
{
  CM_NATIVE_ERROR_BAD_REQUEST, /* a member is missing or of the wrong type */
  CM_NATIVE_ERROR_TIMEOUT,     /* nobody answered a question */
} CmNativeError;

G_END_DECLS
