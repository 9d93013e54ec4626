"""What a fresh Linux desktop lacks is said before Qt starts; OpenCV's Qt settings stay out."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

from inspector.errors import InspectorError
from inspector.gui.desktop import XCB_LIBRARIES, check_desktop, keep_opencv_qt_settings_out, qt_platform


def test_missing_xcb_libraries_are_named_with_their_packages_and_the_command():
    lacking = {"libxcb-cursor.so.0", "libxkbcommon-x11.so.0"}
    with pytest.raises(InspectorError) as said:
        check_desktop({"DISPLAY": ":0"}, system="linux", loads=lambda soname: soname not in lacking)
    text = str(said.value)
    assert "libxcb-cursor.so.0 (package libxcb-cursor0)" in text
    assert "libxkbcommon-x11.so.0 (package libxkbcommon-x11-0)" in text
    assert text.endswith("sudo apt-get install libxcb-cursor0 libxkbcommon-x11-0")
    check_desktop({"DISPLAY": ":0"}, system="linux", loads=lambda soname: True)  # all there: no complaint


@pytest.mark.parametrize(
    ("environ", "system", "platform"),
    [
        ({"QT_QPA_PLATFORM": "offscreen"}, "linux", "offscreen"),
        ({"QT_QPA_PLATFORM": "xcb:nograb"}, "linux", "xcb"),
        ({"QT_QPA_PLATFORM": "wayland;xcb"}, "linux", "wayland"),
        ({"XDG_SESSION_TYPE": "wayland", "WAYLAND_DISPLAY": "wayland-0"}, "linux", "wayland"),
        ({"DISPLAY": ":0"}, "linux", "xcb"),
        ({}, "win32", None),
    ],
)
def test_only_the_xcb_platform_is_checked(environ, system, platform):
    assert qt_platform(environ, system=system) == platform
    if platform != "xcb":
        check_desktop(environ, system=system, loads=lambda soname: False)  # nothing of X11 is needed


def test_without_a_display_the_way_to_screenshots_is_said():
    with pytest.raises(InspectorError, match=r"DISPLAY is not set.*QT_QPA_PLATFORM=offscreen"):
        check_desktop({"QT_QPA_PLATFORM": "xcb"}, system="linux", loads=lambda soname: True)


def test_opencvs_qt_settings_are_removed_and_the_users_kept():
    opencv = Path(cv2.__file__).parent
    environ = {
        "QT_QPA_PLATFORM_PLUGIN_PATH": str(opencv / "qt" / "plugins"),
        "QT_QPA_FONTDIR": str(opencv / "qt" / "fonts"),
        "QT_PLUGIN_PATH": "/opt/plant-qt/plugins",
    }
    assert keep_opencv_qt_settings_out(environ) == ["QT_QPA_PLATFORM_PLUGIN_PATH", "QT_QPA_FONTDIR"]
    assert environ == {"QT_PLUGIN_PATH": "/opt/plant-qt/plugins"}


def test_every_library_has_its_package():
    assert all(soname.startswith("lib") and ".so." in soname and package for soname, package in XCB_LIBRARIES.items())
    assert XCB_LIBRARIES["libxcb-cursor.so.0"] == "libxcb-cursor0"


def test_the_gui_command_says_what_the_desktop_lacks_instead_of_aborting(tmp_path):
    """On X11 without a display (and here, maybe without some libraries): a message and
    status 2, never Qt's abort pointing into OpenCV's plugin folder."""
    environ = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    environ["QT_QPA_PLATFORM"] = "xcb"
    done = subprocess.run(
        [sys.executable, "-m", "inspector", "gui", "--db", str(tmp_path / "r.db")],
        env=environ,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("inspector gui: error: ") and "cv2" not in done.stderr
    assert "apt-get install" in done.stderr or "DISPLAY is not set" in done.stderr
