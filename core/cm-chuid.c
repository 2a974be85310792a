/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cm-chuid.c: CHUID (SP 800-73-4 part 1, table 9), a flat BER-TLV list. */
#include "cm-private.h"

struct _CmChuid
{
  gboolean has_fascn;
  CmFascn fascn;
  char *guid;
  char *expiry;
  char *cardholder_uuid;
  gboolean has_signature;
};

static char *
uuid_string (CmDer v)
{
  const guint8 *b = v.p;
  return g_strdup_printf ("%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
                          b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11],
                          b[12], b[13], b[14], b[15]);
}

static gboolean
all_zero (CmDer v)
{
  for (gsize i = 0; i < v.len; i++)
    if (v.p[i])
      return FALSE;
  return TRUE;
}

CmChuid *
cm_chuid_parse (const guint8 *data, gsize len, GError **error)
{
  g_autoptr (CmChuid) chuid = g_new0 (CmChuid, 1);
  CmDer cur = cm_der_init (data, len);
  CmDer outer;
  guint8 tag;
  gboolean seen[256] = { FALSE };

  /* Strip the 53 container when it spans the whole buffer. */
  if (len > 0 && data[0] == 0x53)
    {
      CmDer probe = cur;
      if (cm_der_expect (&probe, 0x53, &outer) && probe.len == 0)
        cur = outer;
    }
  if (cur.len == 0)
    {
      g_set_error (error, CM_ERROR, CM_ERROR_BAD_INPUT, "CHUID is empty");
      return NULL;
    }
  while (cur.len > 0)
    {
      CmDer v;
      g_autoptr (GError) ferr = NULL;

      if (!cm_der_next (&cur, &tag, &v))
        {
          g_set_error (error, CM_ERROR, CM_ERROR_BAD_INPUT,
                       "CHUID is truncated or not BER-TLV at byte %" G_GSIZE_FORMAT,
                       (gsize)(cur.p - data));
          return NULL;
        }
      /* A repeated field makes the object ambiguous: which FASC-N is the card's? */
      if (tag != 0xfe && seen[tag])
        {
          g_set_error (error, CM_ERROR, CM_ERROR_BAD_INPUT, "CHUID has tag %02X twice", tag);
          return NULL;
        }
      seen[tag] = TRUE;
      switch (tag)
        {
        case 0x30:
          if (!cm_fascn_decode (v.p, v.len, &chuid->fascn, &ferr))
            {
              g_set_error (error, CM_ERROR, CM_ERROR_BAD_INPUT, "CHUID %s", ferr->message);
              return NULL;
            }
          chuid->has_fascn = TRUE;
          break;
        case 0x34:
          if (v.len != 16)
            {
              g_set_error (error, CM_ERROR, CM_ERROR_BAD_INPUT, "CHUID GUID is not 16 bytes");
              return NULL;
            }
          if (!all_zero (v)) /* an all-zero GUID means "none" */
            chuid->guid = uuid_string (v);
          break;
        case 0x35:
          if (v.len != 8 || !cm_is_digits (v.p, v.len))
            {
              g_set_error (error, CM_ERROR, CM_ERROR_BAD_INPUT, "CHUID expiry is not YYYYMMDD");
              return NULL;
            }
          chuid->expiry = g_strdup_printf ("%.4s-%.2s-%.2s", v.p, v.p + 4, v.p + 6);
          break;
        case 0x36:
          if (v.len == 16 && !all_zero (v))
            chuid->cardholder_uuid = uuid_string (v);
          break;
        case 0x3e: chuid->has_signature = v.len > 0; break;
        default: /* 32 org id, 33 DUNS, EE buffer length, FE EDC: not needed */ break;
        }
    }
  if (!chuid->has_fascn && chuid->guid == NULL)
    {
      g_set_error (error, CM_ERROR, CM_ERROR_BAD_INPUT, "CHUID has neither FASC-N nor GUID");
      return NULL;
    }
  return g_steal_pointer (&chuid);
}

void
cm_chuid_free (CmChuid *chuid)
{
  if (chuid == NULL)
    return;
  g_free (chuid->guid);
  g_free (chuid->expiry);
  g_free (chuid->cardholder_uuid);
  g_free (chuid);
}

const CmFascn *
cm_chuid_get_fascn (const CmChuid *chuid)
{
  return chuid->has_fascn ? &chuid->fascn : NULL;
}

const char *
cm_chuid_get_guid (const CmChuid *chuid)
{
  return chuid->guid;
}

const char *
cm_chuid_get_expiry (const CmChuid *chuid)
{
  return chuid->expiry;
}

const char *
cm_chuid_get_cardholder_uuid (const CmChuid *chuid)
{
  return chuid->cardholder_uuid;
}

gboolean
cm_chuid_has_signature (const CmChuid *chuid)
{
  return chuid->has_signature;
}

char *
cm_chuid_identity (const CmChuid *chuid)
{
  if (chuid->has_fascn && strcmp (chuid->fascn.agency_code, "9999") != 0)
    return cm_fascn_credential_key (&chuid->fascn);
  if (chuid->guid)
    return g_strdup_printf ("uuid:%s", chuid->guid);
  return cm_fascn_credential_key (&chuid->fascn);
}
