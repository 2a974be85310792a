/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cm-error.h: the one GError domain of libcacmail. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define CM_ERROR (cm_error_quark ())

/* Stable codes; the CLI maps them to exit codes (docs/cacmail.1). */
typedef enum
{
  CM_ERROR_FAILED,      /* anything not covered below */
  CM_ERROR_BAD_INPUT,   /* unreadable, truncated or malformed input */
  CM_ERROR_NOT_FOUND,   /* a thing the user named does not exist */
  CM_ERROR_ENVIRONMENT, /* a service, module or database is missing or down */
  CM_ERROR_UNSAFE,      /* refused: doing it could lose data or mislead */
} CmError;

GQuark cm_error_quark (void);

G_END_DECLS
