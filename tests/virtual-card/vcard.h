/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* vcard.h: shared declarations of cacmail-vcard, the virtual PIV / CAC card used by the tests.
 *
 * The card is single-threaded: cacmail-vcard.c owns the connection to vpcd and the control
 * socket and hands every APDU to vcard_process_apdu() (vcard-apdu.c), which dispatches to the
 * PIV applet (vcard-piv.c) or the CAC applets (vcard-cac.c). vcard-folder.c loads a card folder
 * (docs/card-folder.md) and vcard-crypto.c does the private-key operations with OpenSSL. */
#pragma once

#include <glib.h>
#include <stdint.h>
#include <stddef.h>

G_BEGIN_DECLS

typedef struct evp_pkey_st VcKey; /* OpenSSL EVP_PKEY */

/* PIV algorithm identifiers (SP 800-78-4 table 6-2). */
enum
{
  VC_ALG_RSA_3072 = 0x05,
  VC_ALG_RSA_1024 = 0x06,
  VC_ALG_RSA_2048 = 0x07,
  VC_ALG_EC_P256 = 0x11,
  VC_ALG_EC_P384 = 0x14,
};

/* One certificate slot: a PIV key reference (9A, 9C, 9D, 9E, 82..95) or a CAC PKI applet. */
typedef struct
{
  GBytes *cert; /* DER, exactly as in the card folder; NULL: no certificate */
  VcKey *key;   /* private key from the .p12 beside it; NULL: none */
  int alg;      /* PIV algorithm of key (VC_ALG_*), 0 without a key */
} VcSlot;

#define VC_N_RETIRED 20
#define VC_N_CAC 3

typedef struct
{
  GBytes *discovery;            /* "1 - ": complete, 7E ... */
  GBytes *ccc;                  /* "7 - ": contents without the 53 wrapper */
  GBytes *chuid;                /* "8 - " */
  GBytes *printed;              /* "11 - " */
  GBytes *key_history;          /* "12 - " */
  VcSlot piv_auth;              /* "3 - " 9A */
  VcSlot dig_sig;               /* "4 - " 9C */
  VcSlot key_mgmt;              /* "5 - " 9D */
  VcSlot card_auth;             /* "6 - " 9E */
  VcSlot retired[VC_N_RETIRED]; /* "13 - " .. "32 - ": 82 .. 95 */
  VcSlot cac[VC_N_CAC];         /* "CAC0 - " .. "CAC2 - " */
} VcFolder;

/* Options that change how the card answers. */
typedef struct
{
  gboolean short_only; /* answer every extended-length APDU with 6700 */
  gboolean gzip;       /* serve PIV certificates gzip-compressed (CertInfo 01) */
  gboolean no_piv;     /* no PIV application: a card of some other kind */
  char pin[9];         /* the PIN, 6..8 digits */
} VcOptions;

/* A growable byte buffer. */
typedef struct
{
  uint8_t *data;
  size_t len;
  size_t cap;
} VcBuf;

void vc_buf_add (VcBuf *b, const void *data, size_t len);
void vc_buf_byte (VcBuf *b, uint8_t byte);
/* BER-TLV tag (1..3 bytes, as given) + definite length. */
void vc_buf_tlv (VcBuf *b, unsigned tag, const void *value, size_t len);
/* Just the header of a BER-TLV, for values appended afterwards. */
void vc_buf_tl (VcBuf *b, unsigned tag, size_t len);
void vc_buf_clear (VcBuf *b);
void vc_buf_free (VcBuf *b);

/* Read one BER-TLV at *p (end at end): returns FALSE on malformed input. */
gboolean vc_ber_read (const uint8_t **p, const uint8_t *end, unsigned *tag, const uint8_t **value,
                      size_t *len);

/* The card state the applets share. */
typedef enum
{
  VC_APPLET_NONE,
  VC_APPLET_PIV,
  VC_APPLET_CAC_PKI, /* cac_index tells which */
  VC_APPLET_CAC_CCC,
} VcApplet;

typedef struct
{
  const VcFolder *folder;
  const VcOptions *opt;
  VcApplet applet;
  int cac_index;
  gboolean verified; /* PIN verified since the last reset */
  int tries_left;    /* PIN tries left; 0: blocked */
  char pin[9];       /* the current PIN (CHANGE REFERENCE DATA may change it) */
  /* pending response data for GET RESPONSE */
  VcBuf pending;
  size_t pending_off;
  /* command chaining (CLA bit 0x10): accumulated data */
  VcBuf chain;
  uint8_t chain_ins, chain_p1, chain_p2;
  gboolean chaining;
  /* CAC: PKI operation accumulated over INS 42 P1 80 steps */
  VcBuf cac_op;
  /* CAC: the object selected in a PKI applet by SELECT P1=02 (not needed for reading) */
  gboolean cac_object_selected;
} VcCard;

/* A parsed command APDU. */
typedef struct
{
  uint8_t cla, ins, p1, p2;
  const uint8_t *data;
  size_t lc;
  size_t ne; /* expected response length (Le decoded), 0: none */
  gboolean has_le;
  gboolean extended;
} VcApdu;

#define VC_SW(b, sw) (vc_buf_byte ((b), (uint8_t)((sw) >> 8)), vc_buf_byte ((b), (uint8_t)(sw)))

/* vcard-folder.c */
gboolean vc_folder_load (VcFolder *folder, const char *dir, GError **error);
void vc_folder_clear (VcFolder *folder);
/* The slot for a PIV key reference, NULL if unknown. */
const VcSlot *vc_folder_piv_slot (const VcFolder *folder, unsigned key_ref);

/* vcard-crypto.c */
void vc_crypto_init (void);
void vc_crypto_shutdown (void);
/* Load the first private key of a PKCS#12 file (empty password). */
VcKey *vc_crypto_load_p12 (const char *path, GError **error);
void vc_crypto_free_key (VcKey *key);
/* VC_ALG_* of a key, 0 if not supported. */
int vc_crypto_key_alg (VcKey *key);
/* Does the key belong to the DER certificate? */
gboolean vc_crypto_key_matches (VcKey *key, GBytes *cert);
/* Raw RSA private-key operation; input must be as long as the modulus. */
gboolean vc_crypto_rsa_raw (VcKey *key, const uint8_t *in, size_t in_len, VcBuf *out);
/* ECDSA signature (DER) of a hash given by the host. */
gboolean vc_crypto_ecdsa (VcKey *key, const uint8_t *hash, size_t hash_len, VcBuf *out);
/* ECDH with the peer's uncompressed point: the shared secret (x coordinate). */
gboolean vc_crypto_ecdh (VcKey *key, const uint8_t *point, size_t point_len, VcBuf *out);
/* gzip-compress (for --gzip). */
GBytes *vc_crypto_gzip (GBytes *in);
void vc_crypto_random (uint8_t *buf, size_t len);

/* vcard-apdu.c */
void vc_card_init (VcCard *card, const VcFolder *folder, const VcOptions *opt);
void vc_card_clear (VcCard *card);
/* Power off / reset: forget the security status and the selected applet. */
void vc_card_reset (VcCard *card);
/* Answer one command APDU: out receives data + SW1 SW2. */
void vc_card_process (VcCard *card, const uint8_t *apdu, size_t len, VcBuf *out);
/* Queue a complete answer (data only), sending what fits into Ne and 61xx for the rest. */
void vc_card_answer (VcCard *card, const VcApdu *apdu, const uint8_t *data, size_t len, VcBuf *out);
/* VERIFY, shared by the PIV and CAC applets. */
void vc_card_verify (VcCard *card, const VcApdu *apdu, VcBuf *out);

/* vcard-hostile.c: cards that break the rules (--hostile MODE, control command `hostile`) */
typedef enum
{
  VC_HOSTILE_NONE,
  VC_HOSTILE_61_FOREVER, /* data reads answer 61 00 without data, forever */
  VC_HOSTILE_6C_FOREVER, /* data reads answer 6C xx (another length each time), forever */
  VC_HOSTILE_SHORT,      /* data reads answer one byte: no status word */
  VC_HOSTILE_OVERSIZED,  /* data reads answer Le + 64 bytes; extended APDUs 6700 */
  VC_HOSTILE_SLOW,       /* data reads answer 1 byte + 61 01 after 250 ms, forever */
} VcHostile;
/* "none", "61-forever", "6c-forever", "short", "oversized", "slow": FALSE if unknown. */
gboolean vc_hostile_parse (const char *name, VcHostile *mode);
const char *vc_hostile_name (VcHostile mode);
/* The hostile answer to a data read (GET DATA, GET RESPONSE, READ BUFFER) in @mode, to send
 * after *@delay_ms; FALSE when the card answers normally (mode none, or another command). */
gboolean vc_hostile_answer (VcHostile mode, const uint8_t *apdu, size_t len, VcBuf *out,
                            unsigned *delay_ms);

/* vcard-piv.c */
/* TRUE if the AID selects the PIV applet (full AID or a right-truncated prefix). */
gboolean vc_piv_aid_matches (const uint8_t *aid, size_t len);
void vc_piv_select (VcCard *card, const VcApdu *apdu, VcBuf *out);
void vc_piv_process (VcCard *card, const VcApdu *apdu, VcBuf *out);

/* vcard-cac.c */
/* TRUE if the AID names an existing CAC applet (and selects it). */
gboolean vc_cac_select_aid (VcCard *card, const uint8_t *aid, size_t len);
void vc_cac_process (VcCard *card, const VcApdu *apdu, VcBuf *out);

G_END_DECLS
