"""A headless station: a source, the active recipe, the handshake and the outputs,
running until stopped.

Each recipe is one run of the inspection loop (``run_inspection``), so every result is
stored exactly as ``inspector run`` stores it; switching recipes ends the current run
and starts the next on the same source (see ``triggered.py``). The outputs subscribe
to the handshake's results and state; they never inspect anything themselves.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from inspector.engine.pipeline import InspectionPipeline
from inspector.errors import InspectorError
from inspector.line.handshake import Handshake
from inspector.line.messages import Reply
from inspector.line.recipes import RecipeShelf
from inspector.line.triggered import Relay, TriggeredSource
from inspector.recipe.io import recipe_hash
from inspector.recipe.model import Recipe
from inspector.services.inspection_loop import RunEvents, RunSettings, run_inspection
from inspector.store.database import Store

log = logging.getLogger(__name__)

PipelineFactory = Callable[[Recipe], InspectionPipeline]
RETRY_S = 5.0  # after a run failed (a database that went away): wait, then start again


class Station:
    """Runs one product's recipe at a time on ``source``, until :meth:`stop`.

    Args:
        name: the station's name (stored with each run, in each result, in topic names).
        shelf: the recipes it may switch between.
        source: triggered (``TriggeredSource``: the line triggers each part) or a live
            source relayed across recipe switches (``Relay``).
        store: where results are stored.
        open_pipeline: a ready pipeline for a recipe (``engine.pipeline.open_pipeline``).
        product: the product active at start (default: the first on the shelf).
        settings: how runs store their results.
        require_ack: stay on each triggered result until the line acknowledges it.
        timeout: seconds from a trigger to its result before it is an ERROR result.
    """

    def __init__(
        self,
        name: str,
        *,
        shelf: RecipeShelf,
        source: TriggeredSource | Relay,
        store: Store,
        open_pipeline: PipelineFactory,
        product: str | None = None,
        settings: RunSettings | None = None,
        require_ack: bool = False,
        timeout: float = 30.0,
    ) -> None:
        self.name, self.shelf, self.source, self.store = name, shelf, source, store
        self._open_pipeline = open_pipeline
        self.settings = settings or RunSettings(station=name)
        self.handshake = Handshake(
            name,
            fire=source.fire if isinstance(source, TriggeredSource) else None,
            require_ack=require_ack,
            timeout=timeout,
        )
        self._initial = product
        self._pipelines: dict[str, tuple[str, InspectionPipeline]] = {}  # product -> (recipe hash, pipeline)
        self._next: tuple[str, InspectionPipeline] | None = None
        self._current: tuple[str, InspectionPipeline] | None = None  # what the running run inspects with
        self._switch_lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="inspector-station", daemon=True)
        self.runs: list[int] = []

    # -- the line's requests ---------------------------------------------------------------

    def trigger(self, trigger: str | None = None) -> Reply:
        return self.handshake.trigger(trigger)

    def acknowledge(self, result_id: str | None = None) -> Reply:
        return self.handshake.acknowledge(result_id)

    def products(self) -> tuple[str, ...]:
        try:
            products = self.shelf.scan()
        except InspectorError as exc:
            log.warning("%s", exc)
            return self.shelf.products
        self.handshake.set_products(products)
        return products

    def select(self, product: str) -> Reply:
        """Switch to ``product``'s recipe. Its pipeline is made ready before the reply, so
        an accepted switch is one the station can inspect with; the current run ends and
        the next starts with it. Refused (with the reason) while a part is inspected, a
        result awaits its acknowledgement, or the recipe cannot be used."""
        if not isinstance(product, str) or not product.strip() or len(product) > 200:
            return Reply(False, "recipe", f"not a product name: {str(product)[:60]!r}")
        if not self._switch_lock.acquire(blocking=False):
            return Reply(False, "recipe", "busy: switching recipes already")
        try:
            if self._stopping.is_set():
                return Reply(False, "recipe", "the station is stopping")
            refusal = self.handshake.begin_switch(f"switching to {product}")
            if refusal is not None:
                return Reply(False, "recipe", refusal)
            try:
                pipeline = self._pipeline(product)
            except InspectorError as exc:
                self.handshake.switching(None)
                return Reply(False, "recipe", str(exc))
            if self._current == (product, pipeline) and self._next is None:
                self.handshake.switching(None)  # already in use, unchanged: the run goes on
                return Reply(True, "recipe", trigger=product)
            self._next = (product, pipeline)
            self.source.end_run()
            self._wake.set()
            return Reply(True, "recipe", trigger=product)
        finally:
            self._switch_lock.release()

    # -- running ---------------------------------------------------------------------------

    def _pipeline(self, product: str) -> InspectionPipeline:
        recipe = self.shelf.load(product)
        digest = recipe_hash(recipe)
        cached = self._pipelines.get(product)
        if cached is not None and cached[0] == digest:
            return cached[1]
        pipeline = self._open_pipeline(recipe)
        self._pipelines[product] = (digest, pipeline)
        return pipeline

    def start(self) -> Station:
        products = self.products()
        product = self._initial or (products[0] if products else None)
        if product is None:
            self.handshake.error(f"no usable recipe in {self.shelf.folder}")
        else:
            self.handshake.switching(f"opening {product}")
            try:
                self._next = (product, self._pipeline(product))
            except InspectorError as exc:
                self.handshake.switching(None)
                self.handshake.error(f"product {product}: {exc}")
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stopping.is_set():
            if self._next is not None:
                self._current, self._next = self._next, None
            current = self._current
            if current is None:  # nothing to run until a recipe is selected
                self._wake.wait(0.5)
                self._wake.clear()
                continue
            product, pipeline = current
            events = RunEvents(
                result=lambda frame, result, _image: self.handshake.result(frame.name, result),
                started=lambda run_id, product=product: self._started(run_id, product),
                skipped=lambda frame: self.handshake.skipped(frame.name),
            )
            try:
                run_inspection(pipeline, self.store, self.source, self.settings, events)
            except InspectorError as exc:
                log.warning("the run stopped: %s", exc)
                self._run_failed(str(exc))
            except Exception as exc:  # a bug must not end the station silently: say it, try again
                log.exception("the run failed")
                self._run_failed(f"internal error: {exc!r}")
            if self.source.ended and not self._stopping.is_set():
                # a hot folder that cannot be watched any more: say so until stopped
                self.handshake.error(self.source.problem or f"{self.source.describe()} ended")
                self._stopping.wait()

    def _run_failed(self, reason: str) -> None:
        """The run ended with an error (a locked database, a full disk): the part being
        inspected gets its ERROR result now, not a timeout that leaves the station
        refusing triggers; parts asked for and not taken are not taken by the next run."""
        self.handshake.error(f"{reason} (trying again in {RETRY_S:g} s)")
        self.handshake.abandon(f"the inspection failed: {reason}")
        if isinstance(self.source, TriggeredSource):
            self.source.forget_waiting()
        self._stopping.wait(RETRY_S)

    def _started(self, run_id: int, product: str) -> None:
        self.runs.append(run_id)
        self.handshake.run_started(run_id, product)

    def stop(self, *, timeout: float = 30.0) -> None:
        """Stop after the current image; its result is stored and sent."""
        self._stopping.set()
        self.source.stop()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=timeout)
        self.handshake.abandon("the station stopped before this part was inspected")
        self.handshake.offline()
        self.handshake.close()

    def wait(self, timeout: float | None = None) -> bool:
        """Until the station stops; True when it has."""
        self._thread.join(timeout)
        return not self._thread.is_alive()
