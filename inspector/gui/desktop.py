"""What the desktop must provide before Qt starts, said in words instead of Qt's abort.

Two things stop ``inspector gui`` on a fresh Linux desktop before a window shows:

- OpenCV's wheel sets ``QT_QPA_PLATFORM_PLUGIN_PATH`` (and the font folder) to its own
  Qt 5 plugins when it is imported; PySide6 (Qt 6) then tries to load OpenCV's ``xcb``
  plugin and aborts with a message pointing into OpenCV's folder. Those settings are
  OpenCV's alone (its own windows), and are removed before Qt reads them.
- Qt's ``xcb`` platform (X11, and XWayland) needs system libraries that a minimal
  install lacks, ``libxcb-cursor0`` first among them. Qt only says it "could not load"
  the plugin; here each missing library is named with the package that provides it.
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Callable, MutableMapping
from pathlib import Path

from inspector.errors import InspectorError

# The system libraries Qt 6's xcb platform plugin and the widgets load (the ones it
# bundles aside), by soname, with the Debian / Ubuntu package that provides each.
XCB_LIBRARIES: dict[str, str] = {
    "libxcb.so.1": "libxcb1",
    "libX11.so.6": "libx11-6",
    "libX11-xcb.so.1": "libx11-xcb1",
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-glx.so.0": "libxcb-glx0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-render.so.0": "libxcb-render0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-shm.so.0": "libxcb-shm0",
    "libxcb-sync.so.1": "libxcb-sync1",
    "libxcb-util.so.1": "libxcb-util1",
    "libxcb-xfixes.so.0": "libxcb-xfixes0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxkbcommon.so.0": "libxkbcommon0",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libEGL.so.1": "libegl1",
    "libGL.so.1": "libgl1",
    "libfontconfig.so.1": "libfontconfig1",
    "libfreetype.so.6": "libfreetype6",
    "libdbus-1.so.3": "libdbus-1-3",
    "libglib-2.0.so.0": "libglib2.0-0",
}

# Set by OpenCV's wheel on import, for its own (Qt 5) windows.
OPENCV_QT_SETTINGS = ("QT_QPA_PLATFORM_PLUGIN_PATH", "QT_PLUGIN_PATH", "QT_QPA_FONTDIR")


def keep_opencv_qt_settings_out(environ: MutableMapping[str, str] | None = None) -> list[str]:
    """Remove the Qt settings that point into OpenCV's package; returns their names.

    OpenCV is imported first, so that what it sets on import is set now and removed
    here, not later behind Qt's back. Settings of the user's own are kept.
    """
    import cv2

    environ = os.environ if environ is None else environ
    opencv = Path(cv2.__file__).resolve().parent
    removed = []
    for name in OPENCV_QT_SETTINGS:
        entries = [Path(p) for p in environ.get(name, "").split(os.pathsep) if p]
        if entries and all(p.resolve().is_relative_to(opencv) for p in entries):
            del environ[name]
            removed.append(name)
    return removed


def qt_platform(environ: MutableMapping[str, str] | None = None, *, system: str = sys.platform) -> str | None:
    """The platform plugin Qt will try first: what ``QT_QPA_PLATFORM`` names, else on
    Linux ``xcb`` outside a Wayland session; None where Qt picks its own (Windows, macOS)."""
    environ = os.environ if environ is None else environ
    chosen = environ.get("QT_QPA_PLATFORM", "").strip()
    if chosen:
        return chosen.split(";")[0].split(":")[0].strip()
    if not system.startswith("linux"):
        return None
    wayland = environ.get("XDG_SESSION_TYPE") == "wayland" or bool(environ.get("WAYLAND_DISPLAY"))
    return "wayland" if wayland else "xcb"


def _loads(soname: str) -> bool:
    try:
        ctypes.CDLL(soname, mode=getattr(os, "RTLD_LAZY", ctypes.DEFAULT_MODE))  # resolved when used
    except OSError:
        return False
    return True


def missing_libraries(loads: Callable[[str], bool] = _loads) -> list[tuple[str, str]]:
    """(soname, package) of each library of ``XCB_LIBRARIES`` the system cannot load."""
    return [(soname, package) for soname, package in XCB_LIBRARIES.items() if not loads(soname)]


def check_desktop(
    environ: MutableMapping[str, str] | None = None,
    *,
    system: str = sys.platform,
    loads: Callable[[str], bool] = _loads,
) -> None:
    """Say what Qt's xcb platform lacks before Qt aborts on it.

    Raises:
        InspectorError: no X display is set, or system libraries are missing: each is
            named with its package, and the command that installs them.
    """
    environ = os.environ if environ is None else environ
    if qt_platform(environ, system=system) != "xcb":
        return  # offscreen, Wayland, VNC, Windows, macOS: nothing of X11 is loaded
    missing = missing_libraries(loads)
    if missing:
        packages = " ".join(dict.fromkeys(package for _, package in missing))
        raise InspectorError(
            "the desktop lacks system libraries that Qt's xcb platform needs: "
            + ", ".join(f"{soname} (package {package})" for soname, package in missing)
            + f". On Debian or Ubuntu install them with: sudo apt-get install {packages}"
        )
    if not environ.get("DISPLAY"):
        raise InspectorError(
            "no X display to open the window on (DISPLAY is not set): start it from a desktop session, "
            "or set QT_QPA_PLATFORM=offscreen to take --screenshot pictures without one"
        )
