/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cm-error.c */
#include "cm-error.h"

G_DEFINE_QUARK (cm - error - quark, cm_error)
