"""The Recipes tab's toolbar: files, prompt tools, undo, zoom; each says what it does."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QToolBar

from inspector.gui.prompt_edits import TOOLS

TOOL_TIPS = {
    "part box": "Drag a box around the part: defects are searched inside it. Drag a box's corner to resize it.",
    "part point": "Click on the part (foreground) to choose its segment; right-click beside it (background) to "
    "leave a segment out. Drag a point to move it.",
    "normal point": "Click a surface that is normal (a print, a label): its segment is never a defect. "
    "Drag a point to move it.",
    "ignore box": "Drag a box over a place where nothing is reported (a moving clip, a date stamp). "
    "Drag a box's corner to resize it.",
    "erase": "Click a point or inside a box to remove it (a right click removes with any tool).",
}


def build_toolbar(workspace) -> QToolBar:
    """The toolbar of ``workspace`` (a RecipesWorkspace); its actions whose state the
    workspace reads are set on it: ``tools``, ``undo_action``, ``show_all``, ``back``."""
    w = workspace
    bar = QToolBar()
    for text, slot, keys, tip in (
        ("New from image…", w.choose_new, QKeySequence.StandardKey.New, "Start a recipe from a good part's picture"),
        ("Open…", w.choose_open, QKeySequence.StandardKey.Open, "Open a recipe file (.yaml)"),
        ("Save", w.save, QKeySequence.StandardKey.Save, "Save the recipe to its file (asked for the first time)"),
        ("Save As…", w.choose_save_as, QKeySequence.StandardKey.SaveAs, "Save the recipe to another file"),
    ):
        action = QAction(text, w, shortcut=keys, triggered=slot, toolTip=tip)
        action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        bar.addAction(action)
        w.addAction(action)  # shortcuts work wherever the focus is inside the workspace
    bar.addSeparator()
    w.tools = QActionGroup(w)
    for name in TOOLS:
        action = QAction(name.capitalize(), w, checkable=True, toolTip=TOOL_TIPS[name])
        action.setData(name)
        w.tools.addAction(action)
        bar.addAction(action)
    w.tools.actions()[0].setChecked(True)
    bar.addSeparator()
    # Fixed texts, the step in the tooltip: a toolbar whose buttons grow with the
    # step's name ("Undo set Confidence to 0.15") moves under the pointer.
    stack = w.undo_stack
    undo_tip, redo_tip = "Undo the last edit (Ctrl+Z)", "Redo the edit undone last (Ctrl+Shift+Z)"
    undo = w.undo_action = QAction("Undo", w, shortcut=QKeySequence("Ctrl+Z"), enabled=False, toolTip=undo_tip)
    redo = QAction("Redo", w, shortcut=QKeySequence("Ctrl+Shift+Z"), enabled=False, toolTip=redo_tip)
    undo.triggered.connect(stack.undo)
    redo.triggered.connect(stack.redo)
    stack.canUndoChanged.connect(undo.setEnabled)
    stack.canRedoChanged.connect(redo.setEnabled)
    stack.undoTextChanged.connect(lambda text: undo.setToolTip(f"Undo {text}" if text else undo_tip))
    stack.redoTextChanged.connect(lambda text: redo.setToolTip(f"Redo {text}" if text else redo_tip))
    for action in (undo, redo):
        action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        bar.addAction(action)
        w.addAction(action)
    bar.addSeparator()
    bar.addAction(
        QAction("Fit", w, triggered=w.view.fit, toolTip="Show the whole image (the wheel zooms at the cursor)")
    )
    bar.addAction(
        QAction(
            "1:1",
            w,
            triggered=w.view.actual_size,
            toolTip="One image pixel per screen pixel (pan: middle button or Shift+drag)",
        )
    )
    w.show_all = QAction(
        "All segments",
        w,
        checkable=True,
        toggled=lambda _: w.refresh_overlay(),
        toolTip="Tint every segment the network found on the reference, not only what the prompts select",
    )
    bar.addAction(w.show_all)
    w.back = QAction(
        "Back to reference", w, triggered=w.show_reference, toolTip="Leave the test image and edit on the reference"
    )
    bar.addAction(w.back)
    return bar
