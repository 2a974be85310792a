# SPDX-License-Identifier: LGPL-2.1-or-later
"""Thunderbird under Xvfb for GUI tests, driven through the accessibility tree (AT-SPI), with
the helpers of evogui.py (find, click, poll, screenshot, ...):

    with Thunderbird(tmp, env, profile) as tb:
        main = tb.wait_main()
        tb.click(tb.find(main, role="push button", name="Smart Card"))

@env must give HOME and the XDG folders (temp folders of the caller); @profile is a profile
folder the caller prepared (user.js, prefs.js, extensions/). Started here and stopped by PID at
the end, with every process they started: the X server (Xvfb -displayfd -noreset), a session
bus (dbus-launch, which also starts the accessibility bus), a window manager (openbox: without
one, Gecko closes an add-on's popup as soon as it grows past about 450 pixels) and
`thunderbird --profile PROFILE --no-remote` (not headless: MOZ_HEADLESS is removed;
GNOME_ACCESSIBILITY=1 makes Gecko expose its tree at once).

Gecko's accessible actions reach web content (an add-on's popup) too, but a remote document's
actions and extents are fetched lazily: the first query answers "no action" and a click then
does nothing, so click() waits until the control lists its actions. Text is typed with
synthesized key events (XTest), which go to the focused window."""
import importlib.util
import json
import os
import re
import subprocess

import evogui

TOOLS = ("Xvfb", "dbus-launch", "gdbus", "openbox", "thunderbird", "import", "stdbuf")
# user.js of a test profile: no first-run pages, wizards, updates, telemetry or network
QUIET_PREFS = {
    "app.update.enabled": False,
    "app.update.auto": False,
    "browser.shell.checkDefaultBrowser": False,
    "datareporting.healthreport.uploadEnabled": False,
    "datareporting.policy.dataSubmissionEnabled": False,
    "datareporting.policy.firstRunURL": "",
    "extensions.update.enabled": False,
    "extensions.getAddons.cache.enabled": False,
    "mail.provider.suppress_dialog_on_startup": True,
    "mail.shell.checkDefaultClient": False,
    "mail.spotlight.firstRunDone": True,
    "mail.winsearch.firstRunDone": True,
    "mail.rights.version": 1,
    "mail.startup.enabledMailCheckOnce": True,
    "mailnews.start_page.enabled": False,
    "mail.inappnotifications.enabled": False,
    "toolkit.telemetry.enabled": False,
    "toolkit.telemetry.reportingpolicy.firstRun": False,
    "network.captive-portal-service.enabled": False,
    "network.connectivity-service.enabled": False,
    "browser.region.update.enabled": False,
    "browser.region.network.url": "",
    # the add-on's console output goes to Thunderbird's stdout (the test's log)
    "devtools.console.stdout.chrome": True,
    "devtools.console.stdout.content": True,
}


def missing_tool():
    for tool in TOOLS:
        if subprocess.run(["sh", "-c", f"command -v {tool}"], capture_output=True).returncode:
            return tool
    if importlib.util.find_spec("pyatspi") is None:
        return "python3-pyatspi"
    return None


def write_user_js(profile, prefs):
    with open(os.path.join(profile, "user.js"), "w") as f:
        for k, v in prefs.items():
            f.write(f"user_pref({json.dumps(k)}, {json.dumps(v)});\n")


class Thunderbird(evogui.Evolution):
    def __init__(self, tmp, env, profile, log_name="thunderbird.log", private_x11=False):
        super().__init__(tmp, env, log_name=log_name, private_x11=private_x11)
        self.profile = profile
        self.wm = None

    def _start(self):
        env = self.env
        for k in ("NO_AT_BRIDGE", "G_DEBUG", "DBUS_SESSION_BUS_ADDRESS", "DISPLAY",
                  "WAYLAND_DISPLAY", "GTK_USE_PORTAL", "MOZ_HEADLESS"):
            env.pop(k, None)
        env["GNOME_ACCESSIBILITY"] = "1"
        env["MOZ_CRASHREPORTER_DISABLE"] = "1"
        self._start_session(env)
        self.log = open(self.log_path, "w")
        self.wm = subprocess.Popen(["openbox", "--sm-disable"], env=env, stdout=self.log,
                                   stderr=subprocess.STDOUT)
        # line-buffered: the log shows the add-on's console lines as they come
        self.evo = subprocess.Popen(["stdbuf", "-oL", "-eL", "thunderbird", "--profile",
                                     self.profile, "--no-remote"],
                                    env=env, stdout=self.log, stderr=subprocess.STDOUT)

    def close(self):
        if self.wm:
            evogui._stop(self.wm.pid, grace=2)
            self.wm.wait()
            self.wm = None
        super().close()

    def click(self, acc, timeout=10):
        """Press @acc once it lists its actions (see above)."""
        self.poll(lambda: acc.queryAction().nActions > 0, timeout, "the control's actions")
        evogui.Evolution.click(acc)

    def app(self):
        import pyatspi
        for a in pyatspi.Registry.getDesktop(0):
            try:
                if a is not None and (a.name or "").lower() == "thunderbird":
                    return a
            except Exception:
                continue
        return None

    def poll(self, fn, timeout, what):
        try:
            return super().poll(fn, timeout, what)
        except AssertionError as e:
            if "Evolution exited" in str(e):
                raise AssertionError(str(e).replace("Evolution", "Thunderbird")) from None
            raise

    def wait_main(self, timeout=90):
        """The main window (its title ends in "Mozilla Thunderbird")."""
        import pyatspi

        def look():
            for w in self.windows():
                try:
                    if w is not None and (w.name or "").endswith("Mozilla Thunderbird") \
                            and w.getState().contains(pyatspi.STATE_SHOWING):
                        return w
                except Exception:
                    continue
            return None
        return self.poll(look, timeout, "Thunderbird's main window")

    def document(self, title, timeout=30):
        """The showing web document called @title (an add-on page: popup or window)."""
        import pyatspi

        def look():
            for d in self.find_all(self.app(), role="document web", name=title):
                try:
                    if d.getState().contains(pyatspi.STATE_SHOWING) and \
                            not d.getState().contains(pyatspi.STATE_DEFUNCT):
                        return d
                except Exception:
                    continue
            return None
        return self.poll(look, timeout, f"the page '{title}'")

    @staticmethod
    def text(root):
        """Every name and text below @root (content text comes through the Text interface),
        one string."""
        parts = []
        queue = [root]
        while queue:
            acc = queue.pop(0)
            try:
                if acc.name:
                    parts.append(acc.name)
                if acc.getRoleName() in ("paragraph", "list item", "section", "label",
                                         "heading", "static", "text"):
                    t = acc.queryText()
                    s = t.getText(0, -1).replace("\ufffc", " ").strip()
                    if s:
                        parts.append(s)
                queue.extend(c for c in acc if c is not None)
            except Exception:
                continue
        return "\n".join(parts)

    def wait_text(self, root, pattern, timeout=60, what=None):
        """Poll until the text below @root matches @pattern; returns the text."""
        def look():
            s = self.text(root)
            return s if re.search(pattern, s) else None
        try:
            return self.poll(look, timeout, what or f"text /{pattern}/")
        except evogui.Timeout as e:
            raise evogui.Timeout(f"{e}; the page said:\n{self.text(root)[-2500:]}") from None

    def type_text(self, acc, text):
        """Click into the field @acc (a real pointer click: it also makes its window the
        active one) and type @text with synthesized key events (XTest)."""
        import pyatspi
        c = acc.queryComponent()
        e = self.poll(lambda: (lambda x: x if x.width > 0 else None)(
            c.getExtents(pyatspi.DESKTOP_COORDS)), 10, "the field's place on screen")
        pyatspi.Registry.generateMouseEvent(e.x + min(e.width // 2, 40), e.y + e.height // 2,
                                            "b1c")
        self.poll(lambda: acc.getState().contains(pyatspi.STATE_FOCUSED), 10,
                  "the field to take the focus")
        pyatspi.Registry.generateKeyboardEvent(0, text, pyatspi.KEY_STRING)
        self.poll(lambda: acc.queryText().characterCount >= len(text), 10,
                  "the typed text to arrive")
