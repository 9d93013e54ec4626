"""The main window: assembles the three workspaces and remembers layout and recent files."""

from __future__ import annotations

import contextlib
import json

from PySide6.QtCore import QByteArray, QSettings, Qt
from PySide6.QtGui import QAction, QCloseEvent, QColor, QKeySequence
from PySide6.QtWidgets import QMainWindow, QMessageBox, QTabWidget, QVBoxLayout, QWidget

from inspector import __version__
from inspector.gui.database import DatabaseChoice, short_name, shown_database
from inspector.gui.widgets.elided import ElidedLabel
from inspector.gui.widgets.history import HistoryWorkspace
from inspector.gui.widgets.messages import MessagesPanel
from inspector.gui.widgets.operate import OperateWorkspace
from inspector.gui.widgets.recipes import RecipesWorkspace
from inspector.gui.widgets.start_here import StartHere

MAX_RECENT = 8


class MainWindow(QMainWindow):
    """``db_url`` (the command line's ``--db``) is used for this session; without it, the
    database last chosen in the File menu, else the default one in the data folder."""

    def __init__(self, *, db_url: str | None = None, settings: QSettings | None = None) -> None:
        super().__init__()
        from inspector.store.database import open_store

        self.settings = settings or QSettings("Inspector", "Inspector")
        self.database = DatabaseChoice(db_url or self.settings.value("database") or None, self)

        def store_factory():
            return open_store(self.database.url)

        self.operate = OperateWorkspace(store_factory)
        self.recipes = RecipesWorkspace()
        self.history = HistoryWorkspace(store_factory)
        self._store_factory = store_factory
        self.tabs = QTabWidget()
        for widget, title in ((self.operate, "Operate"), (self.recipes, "Recipes"), (self.history, "History")):
            self.tabs.addTab(widget, title)
            widget.message.connect(self.show_message)
        self.messages = MessagesPanel()
        self.tabs.addTab(self.messages, "Messages")
        self.messages.unread_errors_changed.connect(self._unread_errors)
        self.tabs.currentChanged.connect(self._tab_changed)
        self.start_here = StartHere()
        self.start_here.open_recipes.connect(lambda: self.tabs.setCurrentWidget(self.recipes))
        self.start_here.dismissed.connect(lambda: self.settings.setValue("start_here_seen", True))
        self.start_here.setVisible(not self.settings.value("start_here_seen", False, type=bool))
        central = QWidget()
        column = QVBoxLayout(central)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self.start_here)
        column.addWidget(self.tabs, 1)
        self.setCentralWidget(central)
        self.status = ElidedLabel("Ready")  # a long message is cut, never widens the window
        self.statusBar().addWidget(self.status, 1)
        self.database_label = ElidedLabel(elide=Qt.TextElideMode.ElideMiddle)
        self.database_label.setMaximumWidth(360)
        self.statusBar().addPermanentWidget(self.database_label)
        self.database.message.connect(self.show_message)
        self.database.changed.connect(self._database_changed)
        self.recipes.recipe_saved.connect(self.remember_recipe)
        self.recipes.document_changed.connect(self._update_title)
        self.operate.running_changed.connect(self._running_changed)
        self._build_menu()
        self._restore()
        self._update_title()

    def _build_menu(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        self.database_file_action = QAction(
            "Results database…", self, triggered=lambda: self._choose_database(self.database.choose_file)
        )
        self.database_file_action.setToolTip("Open a results database file, or name a new one")
        file_menu.addAction(self.database_file_action)
        file_menu.addAction(
            QAction("Database server…", self, triggered=lambda: self._choose_database(self.database.choose_server))
        )
        file_menu.addSeparator()
        file_menu.addAction(QAction("Open recipe…", self, triggered=self._open_recipe_dialog))
        file_menu.addAction(
            QAction(
                "Publish recipe…",
                self,
                toolTip="Publish the recipe open in Recipes to the results database, as its product's next version",
                triggered=self._publish_recipe,
            )
        )
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
                "Start here",
                self,
                toolTip="Show the first steps: a recipe, a test, a run, a review",
                triggered=self.start_here.show,
            )
        )
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

    def _publish_recipe(self) -> None:
        from inspector.gui.publishing import publish_recipe

        self.tabs.setCurrentWidget(self.recipes)
        recipe_file = self.recipes.saved_file()  # saved first, asking where if it has no file
        if recipe_file is None:
            self.show_message("Open or make a recipe in Recipes to publish it.", True)
            return
        self._publishing = publish_recipe(
            self, recipe_file, self.recipes.recipe.name, self._store_factory, self.show_message, self.settings
        )

    def open_recipe(self, path: str, *, as_job: bool = False) -> None:
        """Open ``path`` in Recipes; Operate is offered it as the next job, or takes it
        without asking where ``as_job`` (the command line's ``--recipe``)."""
        if self.recipes.open_recipe(path) and as_job:
            self.operate.job.choose(path, ask=False)

    def remember_recipe(self, path: str) -> None:
        recent = [p for p in self._recent() if p != path]
        self.settings.setValue("recent_recipes", [path, *recent][:MAX_RECENT])
        self.operate.job.offer(path)  # never taken silently in place of another job
        self._fill_recent()

    def _choose_database(self, choose) -> None:
        if self.operate.running or self.history.busy():
            self.show_message("Another results database can be chosen once the run or History's work ends.", True)
            return
        choose()

    def _database_changed(self, url: str) -> None:
        self.settings.setValue("database", url)
        self.history.use_store_factory(self._store_factory)
        self._update_title()
        if self.tabs.currentWidget() is self.history:
            self.history.refresh()

    def _running_changed(self, running: bool) -> None:
        self.tabs.setTabEnabled(1, not running)
        self.database_file_action.setEnabled(not running)
        if not running:  # the shift's counts survive a crash of the window up to the last run
            self.settings.setValue("shift", json.dumps(self.operate.tally.state()))

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
        """The recipe being edited and its file (a '*' while it has unsaved edits) and the
        results database, in the title; the database's whole name in the status bar."""
        recipes, database = self.recipes, short_name(self.database.url)
        shown = shown_database(self.database.url)
        self.database_label.setText(f"Database: {shown}")
        self.database_label.setToolTip(f"Results database: {shown} (File > Results database… to choose another)")
        if recipes.recipe is None:
            self.setWindowTitle(f"{database} - Inspector {__version__}")
            return
        where = recipes.file.name if recipes.file is not None else "not saved yet"
        self.setWindowTitle(f"{recipes.recipe.name} ({where})[*] - {database} - Inspector {__version__}")
        self.setWindowModified(recipes.unsaved())

    def show_message(self, text: str, is_error: bool) -> None:
        """The latest message in the status bar (its first line), and every one kept in
        Messages with its time."""
        self.messages.add(text, is_error)
        first_line = text.splitlines()[0] if text else ""
        self.status.setText(first_line)
        self.status.setStyleSheet("color:#c0392b" if is_error else "")
        self.status.setToolTip(text)

    def _unread_errors(self, count: int) -> None:
        index = self.tabs.indexOf(self.messages)
        self.tabs.setTabText(
            index,
            f"Messages ({count} new errors)" if count > 1 else "Messages (1 new error)" if count == 1 else "Messages",
        )
        self.tabs.tabBar().setTabTextColor(index, QColor("#c0392b") if count else QColor())

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
        station = self.settings.value("station")
        if station:
            self.operate.job.station_edit.setText(str(station))
        with contextlib.suppress(TypeError, ValueError):  # a damaged setting: the shift starts now
            self.operate.tally.restore(json.loads(self.settings.value("shift") or "null"))
        recent = self._recent()
        job = self.settings.value("job") or (recent[0] if recent else None)
        if job and not self.operate.job.choose(str(job), ask=False):
            self.operate.recipe_edit.setText(str(job))  # to be corrected; said in the status bar

    def closeEvent(self, event: QCloseEvent) -> None:
        if not self.recipes.may_discard():  # unsaved recipe edits: the user chose to stay
            event.ignore()
            return
        self.settings.setValue("geometry", self.saveGeometry())
        self.settings.setValue("tab", self.tabs.currentIndex())
        self.settings.setValue("source", self.operate.source_edit.text())
        self.settings.setValue("reviewer", self.history.review_panel.reviewer())
        self.settings.setValue("station", self.operate.job.station_edit.text())
        job = self.operate.job.recipe
        self.settings.setValue("job", str(job.source) if job is not None else self.operate.recipe_edit.text())
        self.operate.shutdown()
        self.settings.setValue("shift", json.dumps(self.operate.tally.state()))
        self.database.shutdown()
        self.recipes.shutdown()
        self.history.shutdown()
        super().closeEvent(event)
