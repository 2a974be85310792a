/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cm-tb-login.c: log in to mail servers with the card's PIV Authentication certificate and no
 * certificate chooser. Thunderbird uses a remembered decision of ClientAuthRememberList.bin
 * (facts.md section 6: slots of 1286 bytes, a u16 checksum making the XOR of the slot's
 * big-endian 16-bit words 0, u16 score, u16 day of last access, the 256-byte key "host,," and
 * the 1024-byte value, the certificate's dbKey) without asking; authMethod 7 (TLS certificate)
 * makes it log in with that certificate alone where the server offers it. */
#include "cm-tb-private.h"

#define SLOT_KEY 256
#define SLOT_VALUE 1024
#define SLOT_SIZE (6 + SLOT_KEY + SLOT_VALUE)
#define MAX_SLOTS 2048

typedef struct
{
  guint8 raw[SLOT_SIZE];
  char *key;   /* NULL: an empty slot (or one whose checksum fails, as Thunderbird reads it) */
  char *value; /* the dbKey */
} Slot;

struct _CmTbClientAuth
{
  GArray *slots; /* Slot */
};

static void
slot_clear (Slot *s)
{
  g_clear_pointer (&s->key, g_free);
  g_clear_pointer (&s->value, g_free);
}

static guint16
be16 (const guint8 *p)
{
  return (guint16)(p[0] << 8 | p[1]);
}

static void
put16 (guint8 *p, guint16 v)
{
  p[0] = v >> 8;
  p[1] = v & 0xff;
}

/* Decode a slot as Thunderbird does: a failing checksum or a zero score or day means empty. */
static void
slot_decode (Slot *s)
{
  guint16 x = 0;

  for (gsize i = 0; i < SLOT_SIZE; i += 2)
    x ^= be16 (s->raw + i);
  if (x != 0 || be16 (s->raw + 2) == 0 || be16 (s->raw + 4) == 0)
    return;
  s->key = g_strndup ((const char *)s->raw + 6, SLOT_KEY);
  s->value = g_strndup ((const char *)s->raw + 6 + SLOT_KEY, SLOT_VALUE);
}

/* Fill a slot for @key -> @value, score 1, accessed today. */
static void
slot_encode (Slot *s, const char *key, const char *value)
{
  guint16 x = 0;
  guint16 day = (guint16)MIN (g_get_real_time () / G_USEC_PER_SEC / 86400, G_MAXUINT16);

  slot_clear (s);
  memset (s->raw, 0, SLOT_SIZE);
  put16 (s->raw + 2, 1);
  put16 (s->raw + 4, day ? day : 1);
  memcpy (s->raw + 6, key, MIN (strlen (key), SLOT_KEY));
  memcpy (s->raw + 6 + SLOT_KEY, value, MIN (strlen (value), SLOT_VALUE));
  for (gsize i = 2; i < SLOT_SIZE; i += 2)
    x ^= be16 (s->raw + i);
  put16 (s->raw, x);
  slot_decode (s);
}

static CmTbClientAuth *
client_auth_new (void)
{
  CmTbClientAuth *ca = g_new0 (CmTbClientAuth, 1);

  ca->slots = g_array_new (FALSE, TRUE, sizeof (Slot));
  g_array_set_clear_func (ca->slots, (GDestroyNotify)slot_clear);
  return ca;
}

void
cm_tb_client_auth_free (CmTbClientAuth *ca)
{
  if (ca == NULL)
    return;
  g_array_unref (ca->slots);
  g_free (ca);
}

/* The old text format, "key\tscore\tday\tvalue" per line, which Thunderbird migrates when there
 * is no .bin yet. */
static void
load_old (CmTbClientAuth *ca, const char *text)
{
  g_auto (GStrv) lines = g_strsplit (text, "\n", -1);

  for (char **l = lines; *l && ca->slots->len < MAX_SLOTS; l++)
    {
      g_auto (GStrv) f = g_strsplit (g_strchomp (*l), "\t", -1);
      Slot s = { 0 };
      if (g_strv_length (f) != 4 || strlen (f[0]) > SLOT_KEY || strlen (f[3]) > SLOT_VALUE)
        continue;
      slot_encode (&s, f[0], f[3]);
      g_array_append_val (ca->slots, s);
    }
}

CmTbClientAuth *
cm_tb_client_auth_load (const char *profile_dir, GError **error)
{
  g_autofree char *bin = g_build_filename (profile_dir, "ClientAuthRememberList.bin", NULL);
  g_autofree char *txt = g_build_filename (profile_dir, "ClientAuthRememberList.txt", NULL);
  g_autofree char *data = NULL;
  CmTbClientAuth *ca = client_auth_new ();
  gsize len = 0;

  if (g_file_get_contents (bin, &data, &len, NULL))
    {
      if (len % SLOT_SIZE != 0 || len / SLOT_SIZE > MAX_SLOTS)
        {
          g_set_error (error, CM_ERROR, CM_ERROR_BAD_INPUT,
                       "%s is not a whole number of %d-byte slots (%" G_GSIZE_FORMAT
                       " bytes): Thunderbird cannot read it either; with Thunderbird closed, "
                       "delete it (Thunderbird forgets the certificates it remembered for "
                       "servers) and run this again",
                       bin, SLOT_SIZE, len);
          cm_tb_client_auth_free (ca);
          return NULL;
        }
      for (gsize off = 0; off < len; off += SLOT_SIZE)
        {
          Slot s = { 0 };
          memcpy (s.raw, data + off, SLOT_SIZE);
          slot_decode (&s);
          g_array_append_val (ca->slots, s);
        }
    }
  else if (g_file_get_contents (txt, &data, &len, NULL))
    load_old (ca, data);
  return ca;
}

static char *
host_key (const char *host)
{
  return g_strdup_printf ("%s,,", host);
}

const char *
cm_tb_client_auth_get (CmTbClientAuth *ca, const char *host)
{
  g_autofree char *key = host_key (host);

  for (guint i = 0; i < ca->slots->len; i++)
    {
      Slot *s = &g_array_index (ca->slots, Slot, i);
      if (s->key && strcmp (s->key, key) == 0)
        return s->value;
    }
  return NULL;
}

void
cm_tb_client_auth_set (CmTbClientAuth *ca, const char *host, const char *dbkey)
{
  g_autofree char *key = host_key (host);
  Slot *free_slot = NULL;

  for (guint i = 0; i < ca->slots->len; i++)
    {
      Slot *s = &g_array_index (ca->slots, Slot, i);
      if (s->key && strcmp (s->key, key) == 0)
        {
          if (dbkey)
            slot_encode (s, key, dbkey);
          else
            {
              slot_clear (s);
              memset (s->raw, 0, SLOT_SIZE);
            }
          return;
        }
      if (s->key == NULL && free_slot == NULL)
        free_slot = s;
    }
  if (dbkey == NULL)
    return;
  if (free_slot == NULL && ca->slots->len < MAX_SLOTS)
    {
      Slot s = { 0 };
      g_array_append_val (ca->slots, s);
      free_slot = &g_array_index (ca->slots, Slot, ca->slots->len - 1);
    }
  if (free_slot)
    slot_encode (free_slot, key, dbkey);
}

GBytes *
cm_tb_client_auth_to_bytes (CmTbClientAuth *ca)
{
  GByteArray *b = g_byte_array_sized_new (ca->slots->len * SLOT_SIZE);

  for (guint i = 0; i < ca->slots->len; i++)
    g_byte_array_append (b, g_array_index (ca->slots, Slot, i).raw, SLOT_SIZE);
  return g_byte_array_free_to_bytes (b);
}

gboolean
cm_tb_client_auth_write (CmTbClientAuth *ca, const char *profile_dir, GError **error)
{
  g_autofree char *bin = g_build_filename (profile_dir, "ClientAuthRememberList.bin", NULL);
  g_autoptr (GBytes) bytes = cm_tb_client_auth_to_bytes (ca);

  return cm_tb_write_file_atomic (bin, g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes),
                                  error);
}
