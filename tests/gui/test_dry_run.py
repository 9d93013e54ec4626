"""The Recipes tab's Test on folder panel."""

from __future__ import annotations


def test_test_on_folder_says_when_a_folder_is_gone_or_holds_no_images(qtbot, tmp_path):
    from inspector.gui.widgets.dry_run import DryRunPanel

    panel = DryRunPanel(lambda: object())
    qtbot.addWidget(panel)
    messages = []
    panel.message.connect(lambda text, error: messages.append((text, error)))
    panel.run_folder(tmp_path / "gone")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.txt").write_text("x")
    panel.run_folder(tmp_path / "notes")
    assert messages[0][1] and "gone: cannot list the folder" in messages[0][0]
    assert messages[1] == (f"{tmp_path / 'notes'}: no image files to test on", True)
