#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The INSTALLED module-cacmail.so inside the real Evolution under Xvfb (scripts/check-package
runs this after installing the .deb; no build tree, no EDS_EXTRA_PREFIXES): Evolution maps the
module from its own module folder, the mail window has the module's "Republish Certificates to
GAL" action, the Preferences have its "Smart Card" page, and Evolution's output has nothing of
ours. TAP; exit 77 when a tool is missing (never under CI)."""
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "gui"))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import evogui  # noqa: E402
from cmtest import Tap  # noqa: E402

REPUBLISH = "Republish Certificates to GAL"


def moduledir():
    out = subprocess.run(["pkg-config", "--variable=moduledir", "evolution-shell-3.0"],
                         capture_output=True, text=True).stdout.strip()
    return out or "/usr/lib/evolution/modules"


def main():
    module = os.path.join(moduledir(), "module-cacmail.so")
    tool = evogui.missing_tool()
    if tool or not os.path.exists(module):
        why = f"{tool} is not installed" if tool else f"{module} is not installed"
        print(f"1..0 # SKIP {why}")
        sys.exit(1 if os.environ.get("CI") == "true" else 77)
    t = Tap()
    with tempfile.TemporaryDirectory(prefix="cacmail-evo-installed-") as tmp:
        home = os.path.join(tmp, "home")
        env = dict(os.environ, HOME=home, XDG_CONFIG_HOME=os.path.join(home, ".config"),
                   XDG_DATA_HOME=os.path.join(home, ".local", "share"),
                   XDG_CACHE_HOME=os.path.join(home, ".cache"),
                   XDG_RUNTIME_DIR=os.path.join(tmp, "run"), LANG="C.UTF-8", LC_ALL="C.UTF-8")
        for k in ("EDS_EXTRA_PREFIXES", "LD_LIBRARY_PATH", "CACMAIL_SOURCE_ROOT",
                  "CACMAIL_BUILD_ROOT"):
            env.pop(k, None)
        os.makedirs(env["XDG_RUNTIME_DIR"], mode=0o700)
        evo = evogui.Evolution(tmp, env)
        try:
            evo.__enter__()
            mail = evo.wait_frame("Mail", timeout=90)
            with open(f"/proc/{evo.evo.pid}/maps") as f:
                maps = f.read()
            t.ok(module in maps, f"Evolution maps the installed {module}")
            item = evo.find(mail, role="menu item", name=REPUBLISH)
            t.ok(item is not None, f"the mail window's File menu has '{REPUBLISH}'")
            evo.click(evo.find(mail, role="menu item", name="Preferences"))
            prefs = evo.wait_frame("Evolution Preferences")
            names = [row[0][1].name for row in evo.find(prefs, role="list box")]
            t.ok("Smart Card" in names, "the Preferences have the 'Smart Card' page", names)
            log = evo.read_log()
            ours = [line for line in log.splitlines() if "cacmail" in line.lower()]
            t.ok(ours == [], "Evolution's output has no warning or message of ours", ours)
        except Exception as e:  # a time-out or a lost window: say where
            detail = f"{type(e).__name__}: {e}"
            if evo.log:
                detail += "\n--- Evolution's output (tail):\n" + evo.read_log()[-3000:]
            t.ok(False, "Evolution started with the installed module", detail)
        finally:
            evo.close()
    t.done()


if __name__ == "__main__":
    main()
