/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cm-oids.h: the object identifiers the classifier reads (facts.md section 2). Private. */
#pragma once

#define CM_OID_EKU_CLIENT_AUTH "1.3.6.1.5.5.7.3.2"
#define CM_OID_EKU_EMAIL "1.3.6.1.5.5.7.3.4"
#define CM_OID_EKU_SMARTCARD_LOGON "1.3.6.1.4.1.311.20.2.2"
#define CM_OID_EKU_PKINIT "1.3.6.1.5.2.3.4"
#define CM_OID_EKU_ANY "2.5.29.37.0"
#define CM_OID_EKU_PIV_CARD_AUTH "2.16.840.1.101.3.6.8"

#define CM_OID_SAN_UPN "1.3.6.1.4.1.311.20.2.3"
#define CM_OID_SAN_FASCN "2.16.840.1.101.3.6.6"

#define CM_OID_EXT_KEY_USAGE "2.5.29.15"
#define CM_OID_EXT_SAN "2.5.29.17"
#define CM_OID_EXT_BASIC_CONSTRAINTS "2.5.29.19"
#define CM_OID_EXT_POLICIES "2.5.29.32"
#define CM_OID_EXT_EKU "2.5.29.37"
#define CM_OID_EXT_SKI "2.5.29.14"
#define CM_OID_EXT_AKI "2.5.29.35"

/* Policies that say "PIV Authentication": FPKI common-authentication, derived PIV auth,
 * DoD PIV-Auth and PIV-Auth-2048, and GSA's test copy of common-authentication. */
#define CM_PIV_AUTH_POLICIES                                                                       \
  "2.16.840.1.101.3.2.1.3.13", "2.16.840.1.101.3.2.1.3.40", "2.16.840.1.101.2.1.11.10",            \
    "2.16.840.1.101.2.1.11.20", "2.16.840.1.101.3.2.1.48.11"

/* Policies that say "Card Authentication": FPKI common-cardAuth, PIV-I cardAuth, and GSA's
 * test copy of common-cardAuth. */
#define CM_CARD_AUTH_POLICIES                                                                      \
  "2.16.840.1.101.3.2.1.3.17", "2.16.840.1.101.3.2.1.3.19", "2.16.840.1.101.3.2.1.48.13"
