"""The main window: assembles the three workspaces and remembers layout and recent files."""

from __future__ import annotations

from PySide6.QtCore import QByteArray, QSettings, Qt
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import QLabel, QMainWindow, QMessageBox, QTabWidget

from inspector import __version__
from inspector.gui.widgets.history import HistoryWorkspace
from inspector.gui.widgets.operate import OperateWorkspace
from inspector.gui.widgets.recipes import RecipesWorkspace

MAX_RECENT = 8


class MainWindow(QMainWindow):
    def __init__(self, *, db_url: str | None = None, settings: QSettings | None = None) -> None:
        super().__init__()
        from inspector.store.database import open_store

        self.settings = settings or QSettings("Inspector", "Inspector")
        self.setWindowTitle(f"Inspector {__version__}")

        def store_factory():
            return open_store(db_url)

        self.operate = OperateWorkspace(store_factory)
        self.recipes = RecipesWorkspace()
        self.history = HistoryWorkspace(store_factory)
        self.tabs = QTabWidget()
        for widget, title in ((self.operate, "Operate"), (self.recipes, "Recipes"), (self.history, "History")):
            self.tabs.addTab(widget, title)
            widget.message.connect(self.show_message)
        self.tabs.currentChanged.connect(self._tab_changed)
        self.setCentralWidget(self.tabs)
        self.status = QLabel("Ready")
        self.statusBar().addWidget(self.status, 1)
        self.recipes.recipe_saved.connect(self.remember_recipe)
        self.recipes.document_changed.connect(self._update_title)
        self.operate.running_changed.connect(lambda running: self.tabs.setTabEnabled(1, not running))
        self._build_menu()
        self._restore()

    def _build_menu(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        file_menu.addAction(QAction("Open recipe…", self, triggered=self._open_recipe_dialog))
        self.recent_menu = file_menu.addMenu("Recent recipes")
        file_menu.addSeparator()
        file_menu.addAction(QAction("Quit", self, shortcut="Ctrl+Q", triggered=self.close))
        run_menu = self.menuBar().addMenu("&Run")
        # Whatever has the focus (a text field, a table, another tab), F5 starts or stops.
        self.start_stop = QAction(
            "Start / Stop", self, shortcut=QKeySequence(Qt.Key.Key_F5), triggered=self.start_stop_run
        )
        self.start_stop.setShortcutContext(Qt.ShortcutContext.ApplicationShortcut)
        run_menu.addAction(self.start_stop)
        help_menu = self.menuBar().addMenu("&Help")
        help_menu.addAction(
            QAction(
                "About",
                self,
                triggered=lambda: QMessageBox.about(
                    self, "Inspector", f"Inspector {__version__}\nVisual defect inspection with FastSAM.\nAGPL-3.0"
                ),
            )
        )
        self._fill_recent()

    def start_stop_run(self) -> None:
        """Stop the run, or start one and show it in Operate."""
        if not self.operate.running:
            self.tabs.setCurrentWidget(self.operate)
        self.operate.toggle()

    def _open_recipe_dialog(self) -> None:
        self.tabs.setCurrentWidget(self.recipes)
        self.recipes.choose_open()

    def open_recipe(self, path: str) -> None:
        """Open ``path`` in Recipes and make it the Operate recipe."""
        if self.recipes.open_recipe(path):
            self.operate.recipe_edit.setText(path)

    def remember_recipe(self, path: str) -> None:
        recent = [p for p in self._recent() if p != path]
        self.settings.setValue("recent_recipes", [path, *recent][:MAX_RECENT])
        self.operate.recipe_edit.setText(path)
        self._fill_recent()

    def _recent(self) -> list[str]:
        """The recent recipes, newest first. An INI file gives back a list of one as a
        plain string, which would otherwise be read one character at a time."""
        value = self.settings.value("recent_recipes") or []
        return [value] if isinstance(value, str) else [str(p) for p in value]

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        for path in self._recent():
            self.recent_menu.addAction(QAction(path, self, triggered=lambda _=False, p=path: self.open_recipe(p)))

    def _update_title(self) -> None:
        """The recipe being edited and its file; a '*' while it has unsaved edits."""
        recipes = self.recipes
        if recipes.recipe is None:
            self.setWindowTitle(f"Inspector {__version__}")
            return
        where = recipes.file.name if recipes.file is not None else "not saved yet"
        self.setWindowTitle(f"{recipes.recipe.name} ({where})[*] - Inspector {__version__}")
        self.setWindowModified(recipes.unsaved())

    def show_message(self, text: str, is_error: bool) -> None:
        first_line = text.splitlines()[0] if text else ""
        self.status.setText(first_line)
        self.status.setStyleSheet("color:#c0392b" if is_error else "")
        self.status.setToolTip(text)

    def _tab_changed(self, index: int) -> None:
        if self.tabs.widget(index) is self.history:
            self.history.refresh()

    def _restore(self) -> None:
        geometry = self.settings.value("geometry")
        if isinstance(geometry, QByteArray):
            self.restoreGeometry(geometry)
        else:
            self.resize(1400, 860)
        tab = self.settings.value("tab")
        if tab is not None:
            self.tabs.setCurrentIndex(int(tab))
        self.operate.source_edit.setText(self.settings.value("source") or "")
        self.history.review_panel.operator.setText(self.settings.value("reviewer") or "")
        recent = self._recent()
        if recent:
            self.operate.recipe_edit.setText(recent[0])

    def closeEvent(self, event: QCloseEvent) -> None:
        if not self.recipes.may_discard():  # unsaved recipe edits: the user chose to stay
            event.ignore()
            return
        self.settings.setValue("geometry", self.saveGeometry())
        self.settings.setValue("tab", self.tabs.currentIndex())
        self.settings.setValue("source", self.operate.source_edit.text())
        self.settings.setValue("reviewer", self.history.review_panel.reviewer())
        self.operate.shutdown()
        self.recipes.shutdown()
        self.history.shutdown()
        super().closeEvent(event)
