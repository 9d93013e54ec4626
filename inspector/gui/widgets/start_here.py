"""The "start here" panel a first launch shows above the tabs, until it is dismissed."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QVBoxLayout

TEXT = (
    "<b>Start here.</b><br>"
    "<b>1.</b> In <i>Recipes</i>, <i>New from image…</i> opens a picture of a good part; drag a box around "
    "the part. The legend under the picture says what each colour means; rest the pointer on a setting to "
    "read what it does.<br>"
    "<b>2.</b> <i>Save</i> the recipe; <i>Test on folder…</i> shows PASS or FAIL for sample pictures.<br>"
    "<b>3.</b> In <i>Operate</i>, choose the recipe and a folder or camera, and press <i>Start</i> (F5).<br>"
    "<b>4.</b> <i>History</i> keeps every inspection: review the rejects, export reports.<br>"
    "What the application says is kept in <i>Messages</i>. Help › Start here shows this again."
)


class StartHere(QFrame):
    """Signals:
    open_recipes(): the user wants to begin in Recipes.
    dismissed(): the user has read it (the window remembers that).
    """

    open_recipes = Signal()
    dismissed = Signal()

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setStyleSheet("StartHere { background:#eef5fb; border:1px solid #9bbcd8; }")
        self.text = QLabel(TEXT, wordWrap=True)
        self.begin = QPushButton("Open Recipes", toolTip="Go to Recipes to make the first recipe")
        self.begin.clicked.connect(self.open_recipes)
        self.done = QPushButton("Got it", toolTip="Hide this panel (Help › Start here shows it again)")
        self.done.clicked.connect(self._dismiss)
        buttons = QVBoxLayout()
        buttons.addWidget(self.begin)
        buttons.addWidget(self.done)
        buttons.addStretch(1)
        row = QHBoxLayout(self)
        row.addWidget(self.text, 1)
        row.addLayout(buttons)

    def _dismiss(self) -> None:
        self.hide()
        self.dismissed.emit()
