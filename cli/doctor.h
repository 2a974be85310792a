/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* doctor.h: `cacmail doctor` (the helper program cacmail-doctor): every check collects its
 * problems into one Doctor first; cmd-doctor.c renders them after (text or JSON). Problem codes:
 * docs/problems.md. */
#pragma once

#include "cli.h"

typedef struct
{
  gint64 at;
  CmInventory *inv;    /* the certificates of the cards in the readers */
  GPtrArray *picks;    /* CmPicks*, one per address on those cards */
  GPtrArray *inserted; /* sha256 of the inserted cards' certs; NULL when pcscd is not there */
  GPtrArray *problems; /* CmProblem*, each code + message once */
  GPtrArray *checked;  /* char*: what was looked at, one line each (the text report) */
  int timeout;         /* seconds: deadline of each step of the directory test */
} Doctor;

/* Add @problem (taken) unless one with the same code and message is there. */
void doctor_add (Doctor *d, CmProblem *problem);
/* Add a new problem; returns it (borrowed) to add certificates, or NULL when it was there. */
CmProblem *doctor_problem (Doctor *d, const char *code, CmSeverity severity, const char *hint,
                           const char *fmt, ...) G_GNUC_PRINTF (5, 6);
void doctor_checked (Doctor *d, const char *fmt, ...) G_GNUC_PRINTF (2, 3);

/* Read the cards in the readers into @inv (CM_READ_ALL, cache allowed); the sha256 of their
 * certificates go to @inserted (nullable). With @d (nullable) reader and card states become
 * problems. Returns FALSE when pcscd is not there. */
gboolean doctor_read_cards (Doctor *d, CmInventory *inv, GPtrArray *inserted);

/* doctor-card.c: pcscd, readers, cards, personas and picks (core's problems), certificates
 * expiring within 30 days. Fills d->inv, d->picks and d->inserted for the other checks. */
void doctor_check_cards (Doctor *d);
/* doctor-nss.c: each client database: the card module registered exactly once, the picks'
 * chains to a root trusted there; a Snap or Flatpak client that cannot reach pcscd. */
void doctor_check_nss (Doctor *d);
/* doctor-clients.c: the directory settings and a connection test; stale S/MIME settings in
 * Evolution and each Thunderbird profile. */
void doctor_check_directory (Doctor *d);
void doctor_check_evolution (Doctor *d);
void doctor_check_thunderbird (Doctor *d);
