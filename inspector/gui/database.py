"""Which results database the window works on: chosen in the File menu, checked on a
worker thread before it is used, remembered, and named where the user can see it."""

from __future__ import annotations

import re
from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QFileDialog, QInputDialog, QLineEdit, QWidget

from inspector import settings

_URL = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?:[^@/]*@)?(?P<rest>[^?#]*)")


def shown_database(url: str | None) -> str:
    """The database as the window names it: a SQLite file's path, a server's address
    without its user, password or query (which may carry secrets)."""
    if not url:
        return str(settings.data_dir() / "inspector.db")
    if url.startswith("sqlite:///"):
        return url.removeprefix("sqlite:///") or url
    found = _URL.match(url)
    if found is None:
        return str(Path(url).expanduser())
    return f"{found['scheme']}://{found['rest']}"


def short_name(url: str | None) -> str:
    """For the window title: a file's name, a server's address."""
    shown = shown_database(url)
    return shown if "://" in shown else Path(shown).name


def _check(url: str) -> str:
    """Open ``url`` as a results database and close it again; returns the URL it was
    opened as. An existing SQLite file must already be an Inspector database (another
    program's file is refused, not given our tables); a new file name makes a new one.

    Raises:
        StoreError: naming the database and what is wrong with it.
    """
    from inspector.store.database import open_store

    existing = "://" not in url and Path(url).expanduser().is_file()
    store = open_store(url, create=not existing)
    store.close()
    return url


class DatabaseChoice(QObject):
    """The window's results database. Signals: message(text, is_error); changed(url or
    None) once a newly chosen database has been checked and is in use."""

    message = Signal(str, bool)
    changed = Signal(object)

    def __init__(self, url: str | None, parent: QWidget) -> None:
        super().__init__(parent)
        self.url = url
        self._window = parent
        self._checking = None  # the worker opening a chosen database

    def choose_file(self) -> None:
        """Ask for a SQLite file: an existing results database, or the name of a new one."""
        dialog = QFileDialog(self._window, "Results database: an existing file, or the name of a new one")
        dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
        dialog.setOption(QFileDialog.Option.DontConfirmOverwrite)  # choosing a file opens it, never replaces it
        dialog.setNameFilters(["Results databases (*.db *.sqlite *.sqlite3)", "All files (*)"])
        dialog.setDefaultSuffix("db")
        current = shown_database(self.url)
        if "://" not in current:  # offered: the file in use, in its folder (the home folder until it is made)
            folder = Path(current).parent
            dialog.setDirectory(str(folder if folder.is_dir() else Path.home()))
            dialog.selectFile(Path(current).name)
        if dialog.exec() and dialog.selectedFiles():
            self.use(dialog.selectedFiles()[0])

    def choose_server(self) -> None:
        """Ask for a database server's URL (PostgreSQL)."""
        url, ok = QInputDialog.getText(
            self._window,
            "Database server",
            "URL of the results database, e.g. postgresql+psycopg://user@host/inspector",
            QLineEdit.EchoMode.Normal,
            self.url if self.url and "://" in self.url else "postgresql+psycopg://",
        )
        if ok and url.strip():
            self.use(url.strip())

    def use(self, url: str):
        """Check ``url`` on a worker thread (a server may take seconds to answer) and use it
        once it opens; the database in use stays until then, and when it cannot be opened.
        Returns the worker, or None when nothing was started."""
        from inspector.gui.workers import TaskWorker

        if self._checking is not None:
            self.message.emit("Another database is being opened; wait for it.", True)
            return None
        self.message.emit(f"Opening {shown_database(url)}…", False)
        worker = self._checking = TaskWorker(lambda: _check(url), self)
        worker.done.connect(self._checked)
        worker.failed.connect(lambda text: self.message.emit(f"Still on {shown_database(self.url)}: {text}", True))
        worker.finished.connect(self._check_finished)
        worker.start()
        return worker

    def _checked(self, url: str) -> None:
        self.url = url
        self.message.emit(f"Results database: {shown_database(url)}", False)
        self.changed.emit(url)

    def _check_finished(self) -> None:
        worker, self._checking = self._checking, None
        worker.wait()  # "finished" comes just before the thread ends
        worker.deleteLater()

    def shutdown(self) -> None:
        if self._checking is not None:
            self._checking.wait()
