/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cm-evo-login-action.h: the mail window's "Log In with Smart Card" (cm-evo-login.c). */
#pragma once

#include <glib-object.h>

G_BEGIN_DECLS

/* Register CmEvoLoginExtension (an EShellView extension) with Evolution's module loader. */
void cm_evo_login_action_type_register (GTypeModule *module);

G_END_DECLS
