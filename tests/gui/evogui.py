# SPDX-License-Identifier: LGPL-2.1-or-later
"""Evolution under Xvfb for GUI tests, driven through the accessibility tree (AT-SPI).

    with Evolution(tmp, env) as evo:
        mail = evo.wait_frame("Mail")
        item = evo.find(mail, role="menu item", name="Republish Certificates to GAL")
        evo.click(item)

@env must give HOME and the XDG folders (temp folders of the caller). Started here and stopped
by PID at the end, with every process they started (the EDS factories, the accessibility bus):
the X server (Xvfb -displayfd, with -noreset: an X server resets when its last client goes,
and a client connecting during the reset fails), a session bus (dbus-launch) and
`evolution -c mail` with the first-run assistant off (GSETTINGS_BACKEND=keyfile). Needs Debian's
/usr/bin/python3 with python3-pyatspi; callers skip (exit 77) when missing_tool() names one."""
import importlib.util
import os
import re
import shutil
import signal
import subprocess
import time

TOOLS = ("Xvfb", "dbus-launch", "gdbus", "evolution", "import")


def missing_tool():
    for tool in TOOLS:
        if shutil.which(tool) is None:
            return tool
    # not imported here: pyatspi talks to the session's accessibility bus once used
    if importlib.util.find_spec("pyatspi") is None:
        return "python3-pyatspi"
    return None


def _children(pid):
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[1]) == pid:
            out.append(int(d))
    return out


def _descendants(pid):
    """@pid's children, grandchildren, ... (deepest last)."""
    out = []
    todo = [pid]
    while todo:
        kids = _children(todo.pop())
        out.extend(kids)
        todo.extend(kids)
    return out


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return ") Z " not in f.read()
    except OSError:
        return False


def _stop(pid, grace=5.0):
    """SIGTERM, then SIGKILL after @grace seconds."""
    if not _alive(pid):
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    end = time.time() + grace
    while time.time() < end and _alive(pid):
        time.sleep(0.05)
    if _alive(pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _x_answers(path):
    """An X11 connection set-up on @path is accepted (byte 1 of the answer)."""
    import socket
    import struct
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(2)
    try:
        s.connect(path)
        s.sendall(struct.pack("<cxHHHHxx", b"l", 11, 0, 0, 0))
        return s.recv(8)[:1] == b"\x01"
    except OSError:
        return False
    finally:
        s.close()


class Timeout(AssertionError):
    pass


class Evolution:
    def __init__(self, tmp, env, log_name="evolution.log", private_x11=False,
                 size=(1100, 780)):
        """@private_x11: mount a tmpfs on /tmp/.X11-unix first (root, in a private mount
        namespace such as tests/harness/with-pcscd's), so that an X server of another test
        running at the same time cannot take over our display's socket."""
        self.tmp = tmp
        self.private_x11 = private_x11
        self.size = size
        self.env = dict(env)
        self.log_path = os.path.join(tmp, log_name)
        self.xvfb = self.bus_pid = self.evo = None
        self.log = None

    # ---- processes ----------------------------------------------------------------------

    def __enter__(self):
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.close()

    def _start(self):
        env = self.env
        cfg = env["XDG_CONFIG_HOME"]
        os.makedirs(os.path.join(cfg, "glib-2.0", "settings"), exist_ok=True)
        with open(os.path.join(cfg, "glib-2.0", "settings", "keyfile"), "a") as f:
            f.write("[org/gnome/evolution/mail]\nshow-startup-wizard=false\n"
                    # no window manager: the main window's size comes from here
                    f"[org/gnome/evolution/shell/window]\nwidth={self.size[0]}\n"
                    f"height={self.size[1]}\n")
        os.makedirs(os.path.join(env["XDG_DATA_HOME"], "evolution", "preview-plugins"),
                    exist_ok=True)
        env["GSETTINGS_BACKEND"] = "keyfile"
        for k in ("NO_AT_BRIDGE", "G_DEBUG", "DBUS_SESSION_BUS_ADDRESS", "DISPLAY",
                  "WAYLAND_DISPLAY", "GTK_USE_PORTAL"):
            env.pop(k, None)
        self._start_session(env)
        self.log = open(self.log_path, "w")
        self.evo = subprocess.Popen(["evolution", "-c", "mail"], env=env, stdout=self.log,
                                    stderr=subprocess.STDOUT)

    def _start_session(self, env):
        """Xvfb on a display of its own (env's DISPLAY), a session bus (env's
        DBUS_SESSION_BUS_ADDRESS) and its accessibility bus answering; this process talks
        AT-SPI on them. The app's own settings are the caller's."""
        if self.private_x11:
            os.makedirs("/tmp/.X11-unix", exist_ok=True)
            subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=1777", "tmpfs",
                            "/tmp/.X11-unix"], check=True)
        r, w = os.pipe()
        self.xvfb_log = os.path.join(self.tmp, "xvfb.log")
        with open(self.xvfb_log, "w") as xlog:
            self.xvfb = subprocess.Popen(["Xvfb", "-displayfd", str(w), "-screen", "0",
                                          "1280x1024x24", "-nolisten", "tcp", "-noreset"],
                                         pass_fds=(w,),
                                         stdout=xlog, stderr=subprocess.STDOUT)
        os.close(w)
        display = b""
        while not display.endswith(b"\n"):
            chunk = os.read(r, 16)
            if not chunk:
                raise AssertionError("Xvfb did not start: " + open(self.xvfb_log).read())
            display += chunk
        os.close(r)
        env["DISPLAY"] = ":" + display.decode().strip()
        sock = f"/tmp/.X11-unix/X{display.decode().strip()}"
        end = time.time() + 10
        while not os.path.exists(sock) and time.time() < end and self.xvfb.poll() is None:
            time.sleep(0.05)
        while time.time() < end and self.xvfb.poll() is None and not _x_answers(sock):
            time.sleep(0.05)
        if self.xvfb.poll() is not None or not _x_answers(sock):
            raise AssertionError(f"Xvfb is not serving {sock}: " + open(self.xvfb_log).read())
        out = subprocess.run(["dbus-launch", "--sh-syntax"], env=env, capture_output=True,
                             text=True, check=True).stdout
        env["DBUS_SESSION_BUS_ADDRESS"] = re.search(r"DBUS_SESSION_BUS_ADDRESS='([^']*)'",
                                                    out).group(1)
        self.bus_pid = int(re.search(r"DBUS_SESSION_BUS_PID=(\d+)", out).group(1))
        # this process talks AT-SPI on that bus and display; the accessibility bus is started
        # on demand: wait until it answers (pyatspi aborts the process when it cannot)
        os.environ["DISPLAY"] = env["DISPLAY"]
        os.environ["DBUS_SESSION_BUS_ADDRESS"] = env["DBUS_SESSION_BUS_ADDRESS"]
        os.environ.pop("NO_AT_BRIDGE", None)
        end = time.time() + 30
        while True:
            p = subprocess.run(["gdbus", "call", "--session", "--dest", "org.a11y.Bus",
                                "--object-path", "/org/a11y/bus", "--method",
                                "org.a11y.Bus.GetAddress"], env=env, capture_output=True,
                               text=True)
            if p.returncode == 0 and "unix:" in p.stdout:
                break
            if time.time() > end:
                raise AssertionError("the accessibility bus does not start: " + p.stderr)
            time.sleep(0.1)

    def close(self):
        if self.evo:
            _stop(self.evo.pid, grace=8)
            self.evo.wait()
            self.evo = None
        if self.bus_pid:
            for pid in reversed(_descendants(self.bus_pid)):
                _stop(pid, grace=3)
            _stop(self.bus_pid, grace=2)
            self.bus_pid = None
        if self.xvfb:
            _stop(self.xvfb.pid, grace=2)
            self.xvfb.wait()
            self.xvfb = None
        if self.log:
            self.log.close()
            self.log = None
        if self.private_x11:
            subprocess.run(["umount", "/tmp/.X11-unix"], capture_output=True)
            self.private_x11 = False

    def running(self):
        return self.evo is not None and self.evo.poll() is None

    def read_log(self):
        self.log.flush()
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def screenshot(self, path, acc=None):
        """The whole screen, or cropped to @acc's extents."""
        args = ["import", "-window", "root"]
        if acc is not None:
            import pyatspi
            e = acc.queryComponent().getExtents(pyatspi.DESKTOP_COORDS)
            args += ["-crop", f"{e.width}x{e.height}+{max(e.x, 0)}+{max(e.y, 0)}", "+repage"]
        subprocess.run(args + [path], env=self.env, check=True, capture_output=True)

    # ---- accessibility --------------------------------------------------------------------

    def app(self):
        import pyatspi
        for a in pyatspi.Registry.getDesktop(0):
            try:
                if a is not None and a.name == "evolution":
                    return a
            except Exception:
                continue
        return None

    def poll(self, fn, timeout, what):
        """Call @fn until it returns something true; AssertionError after @timeout s."""
        end = time.time() + timeout
        last = None
        while time.time() < end:
            if not self.running():
                raise AssertionError(
                    f"Evolution exited while waiting for {what} (DISPLAY={self.env['DISPLAY']}"
                    f", X answers: {_x_answers('/tmp/.X11-unix/X' + self.env['DISPLAY'][1:])})"
                    f"; its output:\n{self.read_log()[-3000:]}")
            try:
                v = fn()
                if v:
                    return v
            except Exception as e:  # the tree changes under us: try again
                last = e
            time.sleep(0.2)
        raise Timeout(f"timed out after {timeout} s waiting for {what}"
                      + (f" (last error: {last})" if last else ""))

    def windows(self):
        a = self.app()
        return [w for w in a] if a else []

    def wait_frame(self, name, timeout=60, role=None):
        """The showing window called @name: a dialog closed a moment ago can linger in the
        accessibility tree, hidden or defunct, under the same name as the next one."""
        import pyatspi

        def look():
            for w in self.windows():
                try:
                    if w is None or w.name != name or (role and w.getRoleName() != role):
                        continue
                    st = w.getState()
                    if st.contains(pyatspi.STATE_SHOWING) and \
                            not st.contains(pyatspi.STATE_DEFUNCT):
                        return w
                except Exception:  # it went away while we looked
                    continue
            return None
        return self.poll(look, timeout, f"window '{name}'")

    @staticmethod
    def _matches(acc, role, name, pattern, showing):
        import pyatspi
        if role and acc.getRoleName() != role:
            return False
        if name is not None and acc.name != name:
            return False
        if pattern is not None and not re.search(pattern, acc.name or ""):
            return False
        if showing and not acc.getState().contains(pyatspi.STATE_SHOWING):
            return False
        return True

    def find_all(self, root, role=None, name=None, pattern=None, showing=False, limit=None,
                 skip_roles=("table", "tree table")):
        """Breadth-first search below @root (big tables are not entered unless @role is a
        table cell)."""
        out = []
        queue = [root]
        while queue:
            acc = queue.pop(0)
            try:
                if acc is not root and self._matches(acc, role, name, pattern, showing):
                    out.append(acc)
                    if limit and len(out) >= limit:
                        return out
                if acc is not root and acc.getRoleName() in skip_roles \
                        and role not in ("table cell", "tree item") and acc.childCount > 50:
                    continue
                queue.extend(c for c in acc if c is not None)
            except Exception:
                continue
        return out

    def find(self, root, timeout=30, **kw):
        what = ", ".join(f"{k}={v!r}" for k, v in kw.items())
        return self.poll(lambda: (self.find_all(root, limit=1, **kw) or [None])[0], timeout,
                         what)

    def texts(self, root, **kw):
        """The names of every label/text/cell below @root."""
        out = []
        for acc in self.find_all(root, **kw):
            if acc.getRoleName() in ("label", "text", "table cell", "tree item"):
                out.append(acc.name or "")
        return out

    def all_text(self, root):
        """Names and text contents below @root, one string (for 'contains' checks)."""
        parts = []
        queue = [root]
        while queue:
            acc = queue.pop(0)
            try:
                if acc.name:
                    parts.append(acc.name)
                queue.extend(c for c in acc if c is not None)
            except Exception:
                continue
        return "\n".join(parts)

    @staticmethod
    def ancestor(acc, role):
        """The nearest ancestor of @acc with @role (e.g. the "info bar" of an alert's label)."""
        while acc is not None and acc.getRoleName() != role:
            acc = acc.parent
        return acc

    @staticmethod
    def click(acc):
        action = acc.queryAction()
        for i in range(action.nActions):
            if action.getName(i) in ("click", "activate", "press"):
                action.doAction(i)
                return
        action.doAction(0)

    @staticmethod
    def set_text(acc, text):
        acc.queryEditableText().setTextContents(text)
