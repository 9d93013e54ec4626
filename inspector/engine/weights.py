"""Finding, downloading and verifying segmenter weights.

Resolution order: an explicit path; the built-in embedded model by name; the user's
model folder; a download by ultralytics, only when the caller asks for one and the
network answers. Offline without the file, the error says where to put it, quickly.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import threading
from dataclasses import dataclass
from pathlib import Path

from inspector import settings
from inspector.engine.types import ModelIdentity
from inspector.errors import EngineError

BUILTIN_DIR = Path(__file__).parent / "models"
BUILTIN_NAME = "inspector-seg-n"
# FastSAM releases ultralytics knows how to fetch.
DOWNLOADABLE = ("FastSAM-s.pt", "FastSAM-x.pt")
_DOWNLOAD_HOST = "github.com"


@dataclass(frozen=True)
class ResolvedWeights:
    path: Path
    identity: ModelIdentity


_hash_cache: dict[tuple[str, int, int], str] = {}
_hash_lock = threading.Lock()


def sha256_of(path: Path) -> str:
    """SHA-256 of a file, cached by path, size and modification time."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    with _hash_lock:
        if key in _hash_cache:
            return _hash_cache[key]
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    with _hash_lock:
        _hash_cache[key] = digest.hexdigest()
    return digest.hexdigest()


def builtin_manifest() -> dict[str, dict]:
    """Pinned files of the embedded models, from ``models/manifest.json``."""
    manifest = BUILTIN_DIR / "manifest.json"
    return json.loads(manifest.read_text()) if manifest.exists() else {}


def builtin_sha256() -> str | None:
    """The embedded model's pinned hash (what a shipped recipe pins)."""
    return builtin_manifest().get(f"{BUILTIN_NAME}.pt", {}).get("sha256")


def _is_builtin(spec: str) -> bool:
    return spec in (BUILTIN_NAME, f"{BUILTIN_NAME}.pt", "builtin")


def host_answers(host: str, timeout: float) -> bool:
    """Whether ``host`` answers on 443 within ``timeout`` seconds (DNS included)."""
    answered: list[bool] = []

    def probe() -> None:
        try:
            with socket.create_connection((host, 443), timeout=timeout):
                answered.append(True)
        except OSError:
            pass

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(answered)


# Where a path to weights is given: a bare file name is looked up in the model folder.
_PATH_WHERE = "in a recipe's model.weights, relative to the recipe with a folder, e.g. ./FastSAM-s.pt; or --weights"


def _download(name: str, target_dir: Path) -> Path:
    """Fetch a FastSAM release with ultralytics into the user's model folder."""
    if not host_answers(_DOWNLOAD_HOST, timeout=1.5):
        raise EngineError(
            f"cannot download {name}: no network. Copy {name} into {target_dir} or give its path ({_PATH_WHERE})"
        )
    os.environ["YOLO_AUTOINSTALL"] = "0"
    from ultralytics.utils.downloads import attempt_download_asset

    target_dir.mkdir(parents=True, exist_ok=True)
    offline = os.environ.get("YOLO_OFFLINE")
    os.environ["YOLO_OFFLINE"] = "0"  # the user asked for this download
    try:
        fetched = Path(attempt_download_asset(name))
    except Exception as exc:  # ultralytics raises many kinds; the user needs one message
        raise EngineError(f"download of {name} failed ({exc}); copy it into {target_dir}") from exc
    finally:
        if offline is None:
            os.environ.pop("YOLO_OFFLINE", None)
        else:
            os.environ["YOLO_OFFLINE"] = offline
    if not fetched.is_file():
        raise EngineError(f"download of {name} did not produce a file; copy it into {target_dir}")
    final = target_dir / name
    if fetched.resolve() != final.resolve():
        shutil.move(str(fetched), final)
    return final


def resolve_weights(
    spec: str | os.PathLike | None = None,
    *,
    expected_sha256: str | None = None,
    allow_download: bool = False,
) -> ResolvedWeights:
    """Find the weights file for ``spec`` and verify it.

    Args:
        spec: None or ``"inspector-seg-n"`` for the embedded model, a path to a ``.pt``
            file, or a bare file name (``"FastSAM-s.pt"``) looked up in the model folder.
        expected_sha256: pin; a file with another hash is refused.
        allow_download: fetch a known FastSAM release when it is nowhere on disk.

    Raises:
        EngineError: the file is missing (with where to put it) or its hash differs.
    """
    spec_str = str(spec) if spec is not None else BUILTIN_NAME
    pinned = expected_sha256
    if _is_builtin(spec_str):
        path = BUILTIN_DIR / f"{BUILTIN_NAME}.pt"
        if not path.exists():
            raise EngineError(f"the embedded model is missing from the installation ({path}); reinstall Inspector")
        pinned = pinned or builtin_sha256()
        name = BUILTIN_NAME
    else:
        candidate = Path(spec_str).expanduser()
        folder = settings.model_dir()
        if candidate.is_file():
            path = candidate
        elif candidate.name == spec_str and (folder / spec_str).is_file():
            path = folder / spec_str
        elif allow_download and candidate.name in DOWNLOADABLE and candidate.name == spec_str:
            path = _download(spec_str, folder)
        else:
            hint = f"put {candidate.name} in {folder}" + (
                " or run with --download while online" if candidate.name in DOWNLOADABLE else ""
            )
            where = candidate if candidate.name != spec_str else folder / spec_str
            raise EngineError(
                f"model weights not found: {where}. Fix: {hint}, or give an existing path ({_PATH_WHERE})"
            )
        name = path.name
    digest = sha256_of(path)
    if pinned and digest != pinned.lower():
        raise EngineError(f"{path} has SHA-256 {digest}, but {pinned} was pinned; the file is not the expected model")
    return ResolvedWeights(path=path, identity=ModelIdentity(name=name, path=str(path), sha256=digest))
