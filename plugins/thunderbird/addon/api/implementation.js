// SPDX-License-Identifier: LGPL-2.1-or-later
/* The "cacmail" experiment API (api/schema.json): the profile folder, and the S/MIME
 * certificate prefs of mail identities set live through Thunderbird's pref service (prefs.js
 * must not be edited while Thunderbird runs: it is rewritten on exit). Only the four
 * certificate prefs of an identity can be set (a null value clears one). */
"use strict";

/* global ExtensionCommon, ExtensionUtils, Services, Cc, Ci */

const SMIME_PREF = /^mail\.identity\.[A-Za-z0-9_]+\.(signing_cert_name|signing_cert_dbkey|encryption_cert_name|encryption_cert_dbkey)$/;

var cacmail = class extends ExtensionCommon.ExtensionAPI {
  getAPI(context) {
    return {
      cacmail: {
        async getProfileDirectory() {
          return Services.dirsvc.get("ProfD", Ci.nsIFile).path;
        },

        async savePrefs() {
          Services.prefs.savePrefFile(null);
        },

        async getSmimePrefs() {
          // prefs.js is written in the background (savePrefFile returns before the file is
          // on disk): the native host judges these values instead of the file's
          const live = {};
          for (const name of Services.prefs.getChildList("mail.identity.")) {
            if (SMIME_PREF.test(name)
                && Services.prefs.getPrefType(name) === Ci.nsIPrefBranch.PREF_STRING) {
              live[name] = Services.prefs.getStringPref(name, "");
            }
          }
          return live;
        },

        async setSmimePrefs(prefs) {
          for (const p of prefs) {
            if (!SMIME_PREF.test(p.name)) {
              throw new ExtensionUtils.ExtensionError(
                `cacmail may set only the S/MIME certificate prefs of an identity, not ${p.name}`);
            }
            if (p.value !== null && typeof p.value !== "string") {
              throw new ExtensionUtils.ExtensionError(`${p.name}: the value must be a string or null`);
            }
          }
          const done = [];
          for (const p of prefs) {
            const old = Services.prefs.prefHasUserValue(p.name)
              ? Services.prefs.getStringPref(p.name, "") : null;
            if (p.value === null) {
              Services.prefs.clearUserPref(p.name);
            } else {
              Services.prefs.setStringPref(p.name, p.value);
            }
            done.push({ name: p.name, old, value: p.value });
          }
          Services.prefs.savePrefFile(null);
          return done;
        },

        async pickFile(title) {
          // the chooser belongs to the window of the page that asked (the cacmail window)
          const win = context.browsingContext?.topChromeWindow
            ?? Services.wm.getMostRecentWindow("mail:3pane");
          const fp = Cc["@mozilla.org/filepicker;1"].createInstance(Ci.nsIFilePicker);
          fp.init(win.browsingContext, title, Ci.nsIFilePicker.modeOpen);
          fp.appendFilter("PKCS#12 (*.p12, *.pfx)", "*.p12; *.pfx");
          fp.appendFilters(Ci.nsIFilePicker.filterAll);
          const rv = await new Promise(resolve => fp.open(resolve));
          return rv === Ci.nsIFilePicker.returnOK && fp.file ? fp.file.path : null;
        },
      },
    };
  }
};
