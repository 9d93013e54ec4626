"""The main window's remembered state."""

from __future__ import annotations

from PySide6.QtCore import QSettings

from inspector.gui.main_window import MainWindow


def test_a_single_recent_recipe_is_remembered_whole(qtbot, tmp_path):
    ini = tmp_path / "settings.ini"
    # As an INI file keeps a list of one, written by an earlier session: plain text.
    ini.write_text(f"[General]\nrecent_recipes={tmp_path / 'label.yaml'}\n")
    window = MainWindow(db_url=str(tmp_path / "r.db"), settings=QSettings(str(ini), QSettings.Format.IniFormat))
    qtbot.addWidget(window)
    assert window.operate.recipe_edit.text() == str(tmp_path / "label.yaml")
    assert [a.text() for a in window.recent_menu.actions()] == [str(tmp_path / "label.yaml")]
    window.remember_recipe(str(tmp_path / "other.yaml"))
    assert [a.text() for a in window.recent_menu.actions()] == [
        str(tmp_path / "other.yaml"),
        str(tmp_path / "label.yaml"),
    ]
    window.close()
