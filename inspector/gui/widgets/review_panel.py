"""History's review controls: who reviews, what (the part or one of its defects), a note,
the decision, and the way from one reject to the next, each with its key."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from inspector.report.query import InspectionDetail

REVIEW_NAMES = {"confirmed": "confirmed", "false_alarm": "false alarm"}
WHOLE_PART = "Whole part"
_NAME = Qt.ItemDataRole.UserRole + 1  # an entry's text without its decision
KEYS = {"confirmed": "C", "false_alarm": "F", "previous": "P", "next": "N"}


def _entry(text: str, decision: str | None) -> str:
    return f"{text} - {REVIEW_NAMES[decision]}" if decision else text


class ReviewPanel(QWidget):
    """Emits ``review(decision)`` and ``step(+1 / -1)``; the workspace decides whether a
    review may be stored. Its keys work where ``add_keys`` is given them (except in a
    text field, where letters are typed)."""

    review = Signal(str)  # "confirmed" or "false_alarm"
    step = Signal(int)  # +1: the next reject, -1: the previous one
    operator_changed = Signal(str)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.operator = QLineEdit(placeholderText="your name: reviews are stored under it")
        self.operator.setToolTip("Who reviews; stored with each review")
        self.operator.textChanged.connect(self.operator_changed)
        self.note = QLineEdit(placeholderText="optional: stored with the next review")
        self.targets = QListWidget()
        self.targets.setToolTip("Review the whole part, or select one of its defects to review it alone")
        self.targets.setMaximumHeight(110)
        self.confirm = QPushButton(f"Defect confirmed ({KEYS['confirmed']})")
        self.false_alarm = QPushButton(f"False alarm ({KEYS['false_alarm']})")
        self.previous = QPushButton(f"Previous reject ({KEYS['previous']})")
        self.next = QPushButton(f"Next reject ({KEYS['next']})")
        self.confirm.clicked.connect(lambda: self.review.emit("confirmed"))
        self.false_alarm.clicked.connect(lambda: self.review.emit("false_alarm"))
        self.previous.clicked.connect(lambda: self.step.emit(-1))
        self.next.clicked.connect(lambda: self.step.emit(1))
        self.add_keys(self)

        form = QFormLayout()
        form.addRow("Reviewer", self.operator)
        form.addRow("Note", self.note)
        decisions = QHBoxLayout()
        decisions.addWidget(self.confirm)
        decisions.addWidget(self.false_alarm)
        steps = QHBoxLayout()
        steps.addWidget(self.previous)
        steps.addWidget(self.next)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.targets)
        layout.addLayout(form)
        layout.addLayout(decisions)
        layout.addLayout(steps)
        self.set_enabled(False)

    def add_keys(self, scope: QWidget) -> None:
        """C, F, P and N while the focus is in ``scope``: not everywhere in the tab, where
        a letter typed in a filter (F for FAIL) would store a decision."""
        for name, button in (
            ("confirmed", self.confirm),
            ("false_alarm", self.false_alarm),
            ("previous", self.previous),
            ("next", self.next),
        ):
            key = QShortcut(QKeySequence(KEYS[name]), scope, activated=button.click)
            key.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)

    def show_detail(self, shown: InspectionDetail | None) -> None:
        """List what of ``shown`` can be reviewed, with its newest decision; the whole
        part is selected."""
        self.targets.clear()
        if shown is None:
            return
        entries = [(WHOLE_PART, None, shown.review)] + [
            (f"{k}: {label}", defect_id, decision)
            for k, (label, defect_id, decision) in enumerate(
                zip(shown.labels, shown.defect_ids, shown.defect_reviews, strict=True), start=1
            )
        ]
        for text, defect_id, decision in entries:
            item = QListWidgetItem(_entry(text, decision))
            item.setData(Qt.ItemDataRole.UserRole, defect_id)
            item.setData(_NAME, text)
            self.targets.addItem(item)
        self.targets.setCurrentRow(0)

    def target(self) -> int | None:
        """The defect to review, or None for the whole part."""
        item = self.targets.currentItem()
        return None if item is None else item.data(Qt.ItemDataRole.UserRole)

    def mark(self, defect_id: int | None, decision: str) -> None:
        """Show a stored decision beside what it was about."""
        for row in range(self.targets.count()):
            item = self.targets.item(row)
            if item.data(Qt.ItemDataRole.UserRole) == defect_id:
                item.setText(_entry(item.data(_NAME), decision))

    def next_target(self, defect_id: int | None) -> bool:
        """Select the defect after ``defect_id`` when one was reviewed; False when there
        is none (the whole part, or its last defect, was reviewed)."""
        if defect_id is None:
            return False
        ids = [self.targets.item(r).data(Qt.ItemDataRole.UserRole) for r in range(self.targets.count())]
        if defect_id not in ids or ids.index(defect_id) + 1 >= len(ids):
            return False
        self.targets.setCurrentRow(ids.index(defect_id) + 1)
        return True

    def reviewer(self) -> str:
        return self.operator.text().strip()

    def set_enabled(self, enabled: bool) -> None:
        """Decisions on or off; without a reviewer's name they stay off and say why."""
        named = bool(self.reviewer())
        for button in (self.confirm, self.false_alarm):
            button.setEnabled(enabled and named)
            button.setToolTip("" if named else "Enter your name as reviewer first")
