"""What the station and the line say to each other, whatever protocol carries it: a
result, the answer to a request, the station's state."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass, field
from typing import Literal

from inspector.engine.types import ERROR

State = Literal["starting", "ready", "busy", "result", "error", "offline"]


@dataclass(frozen=True)
class LineResult:
    """One result as the line hears it.

    Attributes:
        id: ``"<run id>-<sequence>-<token>"``: stable; a consumer drops a repeat by it.
            The token is random, one per run: a results database started anew numbers
            its runs from 1 again, and its results must not be taken for repeats.
        station: the station's name.
        run: the stored run the result belongs to; ``sequence`` its place in that run.
        trigger: the id the controller sent with its trigger, if any.
        verdict: PASS, FAIL or ERROR; ``error`` says why an ERROR.
        defects: how many defects were found.
        anomaly_score: a taught recipe's score of the image, else None.
        image: the image's name as stored (a file, or camera and frame number).
        product: the recipe's product name; ``recipe_sha256`` its exact version.
        time: when the result was ready, ISO 8601 in UTC.
        inspect_ms: the pipeline's own time for the image (reading included).
        latency_ms: trigger to result, for triggered results.
    """

    id: str
    station: str
    run: int
    sequence: int
    verdict: str
    defects: int
    anomaly_score: float | None
    error: str | None
    image: str
    product: str
    recipe_sha256: str
    time: str
    inspect_ms: float
    trigger: str | None = None
    latency_ms: float | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))


@dataclass(frozen=True)
class Reply:
    """The answer to a request from the line: accepted (with the result id a trigger
    was given), or refused with the reason."""

    accepted: bool
    request: str
    reason: str | None = None
    result_id: str | None = None
    trigger: str | None = None

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass(frozen=True)
class Status:
    """What the station's state says to the line."""

    station: str
    state: State
    reason: str | None
    product: str | None
    products: tuple[str, ...]
    last_result: str | None
    counts: dict[str, int] = field(default_factory=dict)  # PASS / FAIL / ERROR / refused

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "products": list(self.products)}, separators=(",", ":"))


def utc_now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")


def error_result(
    station: str,
    result_id: str,
    reason: str,
    *,
    trigger: str | None = None,
    product: str | None = None,
    latency_ms: float | None = None,
) -> LineResult:
    """The ERROR result a trigger gets when its part has no result of its own (a timeout,
    a station stopped or killed in between)."""
    run, _, rest = result_id.partition("-")
    sequence = rest.partition("-")[0]
    return LineResult(
        id=result_id,
        station=station,
        run=int(run) if run.isdigit() else 0,
        sequence=int(sequence) if sequence.isdigit() else 0,
        verdict=ERROR,
        defects=0,
        anomaly_score=None,
        error=reason,
        image="",
        product=product or "",
        recipe_sha256="",
        time=utc_now(),
        inspect_ms=0.0,
        trigger=trigger,
        latency_ms=latency_ms,
    )
