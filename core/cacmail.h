/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cacmail.h: libcacmail, the core of cacmail. Include only this header. */
#pragma once

#include "cm-error.h"
#include "cm-time.h"
#include "cm-fascn.h"
#include "cm-chuid.h"
#include "cm-cert.h"
#include "cm-inventory.h"
#include "cm-trust.h"
#include "cm-bundle.h"
#include "cm-select.h"
#include "cm-json.h"
#include "cm-card.h"
#include "cm-nss.h"

G_BEGIN_DECLS

/* Initialise NSS for decoding when the application has not (no database opened). Safe to call
 * many times; the library calls it itself. Returns FALSE with @error if NSS cannot start. */
gboolean cm_init (GError **error);

/* Release what cm_init() set up (for leak checkers). */
void cm_shutdown (void);

const char *cm_version (void);

G_END_DECLS
