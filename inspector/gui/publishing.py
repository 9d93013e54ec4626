"""Published recipes from the desktop: the recipe open in Recipes published as the next
version of its product (File › Publish recipe…), and Operate's job taken from a published
version (Published…). The database work runs on worker threads (services/publishing.py);
the database is the one the window uses, usually the central one."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QFormLayout, QInputDialog, QLineEdit, QWidget

from inspector import settings
from inspector.gui.workers import TaskWorker


class PublishDialog(QDialog):
    """Who publishes, and what changed: stored with the version."""

    def __init__(self, product: str, by: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Publish {product}")
        self.by = QLineEdit(by)
        self.by.setMaxLength(100)  # as the database stores it
        self.by.setToolTip("Who publishes this version (stored with it)")
        self.note = QLineEdit(placeholderText="e.g. threshold after the new lighting")
        self.note.setToolTip("What changed from the version before (stored with it)")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        publish = buttons.button(QDialogButtonBox.StandardButton.Ok)
        publish.setText("Publish")
        publish.setDefault(True)  # Enter in a field publishes
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form = QFormLayout(self)
        form.addRow("Published by", self.by)
        form.addRow("What changed", self.note)
        form.addRow(buttons)


def publish_recipe(
    parent: QWidget,
    recipe_file,
    product: str,
    open_store: Callable,
    said: Callable[[str, bool], None],
    remembered: QSettings,
) -> TaskWorker | None:
    """Ask who publishes and why, then publish ``recipe_file`` on a worker; ``said`` hears
    the outcome. Returns the worker (None when the user cancelled)."""
    dialog = PublishDialog(product, str(remembered.value("published_by", "") or ""), parent)
    if dialog.exec() != QDialog.DialogCode.Accepted:
        return None
    by, note = dialog.by.text().strip(), dialog.note.text().strip()
    remembered.setValue("published_by", by)

    def task():
        from inspector.services.publishing import publish

        store = open_store()
        try:
            return (*publish(store, recipe_file, by=by, note=note), store.url)
        finally:
            store.close()

    worker = TaskWorker(task, parent)
    worker.done.connect(
        lambda done: said(
            f"{product}: {'published as' if done[1] else 'already published as'} version {done[0]} in {done[2]}",
            False,
        )
    )
    worker.failed.connect(lambda why: said(f"{product} was not published: {why}", True))
    worker.start()
    return worker


def choose_published(parent: QWidget, open_store: Callable, take: Callable, said: Callable[[str, bool], None]):
    """List the published versions on a worker, let the user choose one, pull it on a
    worker into the data folder and hand ``take(recipe_file, version)`` the result."""

    def listing():
        from inspector.services.publishing import published

        store = open_store()
        try:
            return published(store)
        finally:
            store.close()

    def chosen(versions) -> None:
        if not versions:
            said("No recipe is published in this database (Recipes › File › Publish recipe…).", True)
            return
        labels = [
            f"{v.product} v{v.version}"
            + (f" by {v.published_by}" if v.published_by else "")
            + (f": {v.note}" if v.note else "")
            for v in versions
        ]
        label, ok = QInputDialog.getItem(parent, "Published recipes", "Job from", labels, 0, False)
        if ok:
            pick = versions[labels.index(label)]
            pulling = TaskWorker(lambda: _pull(open_store, pick.product, pick.version), parent)
            pulling.done.connect(lambda pulled: take(str(pulled[0].source), pulled[1]))
            pulling.failed.connect(lambda why: said(f"{pick.product} v{pick.version} could not be pulled: {why}", True))
            pulling.start()
            parent._pulling = pulling  # kept while it runs

    worker = TaskWorker(listing, parent)
    worker.done.connect(chosen)
    worker.failed.connect(lambda why: said(f"Published recipes could not be listed: {why}", True))
    worker.start()
    return worker


def _label(version) -> str:
    by = f" by {version.published_by}" if version.published_by else ""
    return f"{version.product} v{version.version}{by}" + (f": {version.note}" if version.note else "")


def _pull(open_store: Callable, product: str, version: int):
    from inspector.services.publishing import pull

    store = open_store()
    try:
        return pull(store, product, settings.data_dir() / "published", version=version)
    finally:
        store.close()
