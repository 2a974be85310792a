/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cm-init.c: NSS set-up for decoding, coexisting with applications (Evolution) that already
 * initialised NSS with their own database: we then use theirs. */
#include "cm-private.h"
#include "cm-config.h"
#include <nss.h>

static GMutex init_lock;
static NSSInitContext *init_ctx;

gboolean
cm_init (GError **error)
{
  gboolean ok = TRUE;

  g_mutex_lock (&init_lock);
  if (!NSS_IsInitialized () && init_ctx == NULL)
    {
      init_ctx
        = NSS_InitContext ("", "", "", "", NULL,
                           NSS_INIT_READONLY | NSS_INIT_NOCERTDB | NSS_INIT_NOMODDB
                             | NSS_INIT_FORCEOPEN | NSS_INIT_NOROOTINIT | NSS_INIT_OPTIMIZESPACE);
      if (init_ctx == NULL)
        {
          g_set_error (error, CM_ERROR, CM_ERROR_ENVIRONMENT,
                       "NSS could not start (error %d): reinstall libnss3", PORT_GetError ());
          ok = FALSE;
        }
    }
  g_mutex_unlock (&init_lock);
  return ok;
}

gboolean
cm_nss_ready (GError **error)
{
  return cm_init (error);
}

void
cm_shutdown (void)
{
  g_mutex_lock (&init_lock);
  if (init_ctx)
    {
      NSS_ShutdownContext (init_ctx);
      init_ctx = NULL;
    }
  g_mutex_unlock (&init_lock);
}

const char *
cm_version (void)
{
  return CM_VERSION;
}
