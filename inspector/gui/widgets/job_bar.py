"""Operate's job: the recipe the line runs, its product's name in large letters, and the
station's name. Another job is taken only when the operator confirms it."""

from __future__ import annotations

import socket
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QFileDialog, QHBoxLayout, QLabel, QLineEdit, QMessageBox, QPushButton, QWidget

from inspector.errors import InspectorError
from inspector.gui.widgets.elided import ElidedLabel
from inspector.recipe.io import load_recipe
from inspector.recipe.model import Recipe

# As long as the results database stores a station's name (store.models.STATION_NAME_LENGTH;
# the GUI does not import the store's models, a test holds the two equal).
STATION_NAME_LENGTH = 200
NO_JOB = "No job chosen"


def _same_file(a: str | Path, b: str | Path) -> bool:
    return Path(a).expanduser().resolve() == Path(b).expanduser().resolve()


class JobBar(QWidget):
    """Signals:
    message(text, is_error): for the status bar.
    job_changed(recipe or None): another job was taken (the operator said yes).
    """

    message = Signal(str, bool)
    job_changed = Signal(object)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.recipe: Recipe | None = None  # the job: the recipe as last read from its file
        self.recipe_version: int | None = None  # the published version it was pulled as, if it was
        self.open_store = None  # opens the results database (set by Operate): published recipes
        self._offered: str | None = None  # a recipe saved in Recipes, offered as the next job
        self.product = ElidedLabel(NO_JOB)
        self.product.setStyleSheet("font-size:26px;font-weight:bold")
        self.product.setToolTip("The job: the product this station inspects")
        self.recipe_edit = QLineEdit(placeholderText="recipe .yaml, then Enter")
        self.recipe_edit.setToolTip("The job's recipe file; type another and press Enter to switch jobs")
        self.recipe_edit.returnPressed.connect(lambda: self.choose(self.recipe_edit.text()))
        self.recipe_button = QPushButton("Recipe…")
        self.recipe_button.setToolTip("Choose another job's recipe file (asks before switching)")
        self.recipe_button.clicked.connect(self._choose_file)
        self.published_button = QPushButton("Published…")
        self.published_button.setToolTip("Take the job from a recipe published to the results database (asks first)")
        self.published_button.clicked.connect(self._choose_published)
        self.offer_button = QPushButton()
        self.offer_button.setVisible(False)
        self.offer_button.clicked.connect(self._take_offer)
        self.station_edit = QLineEdit(socket.gethostname())
        self.station_edit.setMaxLength(STATION_NAME_LENGTH)
        self.station_edit.setToolTip("This station's name, stored with each run (History and reports filter by it)")

        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(QLabel("Job"))
        row.addWidget(self.product, 3)
        row.addWidget(self.offer_button)
        row.addWidget(QLabel("Recipe"))
        row.addWidget(self.recipe_edit, 2)
        row.addWidget(self.recipe_button)
        row.addWidget(self.published_button)
        row.addWidget(QLabel("Station"))
        row.addWidget(self.station_edit, 1)

    # -- choosing ------------------------------------------------------------------------

    def _choose_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Recipe of the job", "recipes", "Recipes (*.yaml *.yml)")
        if path:
            self.choose(path)

    def choose(self, path: str, *, ask: bool = True) -> bool:
        """Make the recipe at ``path`` the job: once the operator confirms it, where
        another job is active and ``ask``. True when ``path`` is the job now."""
        path = path.strip()
        if not path:
            self.message.emit("Name the job's recipe file first.", True)
            return False
        if self.recipe is not None and _same_file(path, self.recipe.source):
            return self.reload() is not None
        try:
            recipe = load_recipe(path)
        except InspectorError as exc:  # the job stays what it was
            self.message.emit(str(exc), True)
            return False
        if ask and self.recipe is not None and not self.confirm_switch(self.recipe, recipe):
            self.recipe_edit.setText(str(self.recipe.source))
            self.message.emit(f"The job stays {self.recipe.name}.", False)
            return False
        self._take(recipe, path)
        return True

    def confirm_switch(self, old: Recipe, new: Recipe) -> bool:
        """Asks the operator; False unless they choose to switch."""
        buttons = QMessageBox.StandardButton
        answer = QMessageBox.question(
            self,
            "Switch job",
            f"Switch the job from {old.name} ({Path(old.source).name}) to {new.name} ({Path(new.source).name})?\n\n"
            "The next run inspects with the new recipe.",
            buttons.Yes | buttons.No,
            buttons.No,
        )
        return answer == buttons.Yes

    def _choose_published(self) -> None:
        from inspector.gui.publishing import choose_published

        if self.open_store is not None:
            self._listing = choose_published(self, self.open_store, self.take_published, self.message.emit)

    def take_published(self, recipe_file: str, version: int) -> bool:
        """Make a pulled published version the job (asking, as any switch)."""
        if not self.choose(recipe_file):
            return False
        self.recipe_version = version
        self.message.emit(f"Job: {self.recipe.name}, published version {version}", False)
        return True

    def _take(self, recipe: Recipe, shown_path: str) -> None:
        self.recipe = recipe
        self.recipe_version = None
        self.recipe_edit.setText(shown_path)
        self._show()
        if self._offered is not None and _same_file(self._offered, recipe.source):
            self._offered = None
            self.offer_button.setVisible(False)
        self.message.emit(f"Job: {recipe.name} ({recipe.source})", False)
        self.job_changed.emit(recipe)

    def _show(self) -> None:
        name = self.recipe.name if self.recipe is not None else NO_JOB
        self.product.setText(name)
        self.product.setToolTip(f"The job: {name}" + (f"\n{self.recipe.source}" if self.recipe else ""))

    def reload(self) -> Recipe | None:
        """The job's recipe as its file holds it now (saved in Recipes since, maybe)."""
        if self.recipe is None:
            return None
        try:
            self.recipe = load_recipe(self.recipe.source)
        except InspectorError as exc:
            self.message.emit(str(exc), True)
            return None
        self._show()
        return self.recipe

    def for_start(self) -> Recipe | None:
        """The recipe a run starts with: the job, switched first (asking) where another
        file was typed, and read again from its file. None: no run (said why)."""
        typed = self.recipe_edit.text().strip()
        switching = self.recipe is None or (typed and not _same_file(typed, self.recipe.source))
        if switching and not self.choose(typed):
            return None
        return self.reload()

    # -- recipes saved in the Recipes tab ---------------------------------------------------

    def offer(self, path: str) -> None:
        """A recipe was opened or saved in Recipes. Its own job's file is read again at the
        next start; another recipe is offered as a button, never taken silently. With no
        job yet it becomes the job (nothing is switched)."""
        if self.recipe is None and not self.recipe_edit.text().strip():
            self.choose(path, ask=False)
            return
        if self.recipe is not None and _same_file(path, self.recipe.source):
            self.reload()
            return
        self._offered = path
        self.offer_button.setText(f"Switch to {Path(path).name}…")
        self.offer_button.setToolTip(f"Make {path} (opened or saved in Recipes) the job; asks first")
        self.offer_button.setVisible(True)

    def _take_offer(self) -> None:
        if self._offered is not None:
            self.choose(self._offered)

    def set_running(self, running: bool) -> None:
        """No job switch and no new station name during a run."""
        for widget in (self.recipe_edit, self.recipe_button, self.offer_button, self.station_edit):
            widget.setEnabled(not running)

    def station(self) -> str | None:
        """The station's name, or None (said why) when it cannot be stored."""
        name = self.station_edit.text()
        if not name.strip() or not name.isprintable():
            self.message.emit(f"A station name is 1 to {STATION_NAME_LENGTH} printable characters.", True)
            return None
        return name.strip()
