"""The taught normal model as a file beside its recipe: versioned, named by its content.

``<recipe>.normal-<sha256 prefix>.npz``: a NumPy archive of plain arrays (the patch bank
in half precision, and a JSON description as bytes), written and read without pickle.
The file comes from outside like a recipe does, so reading is bounded: the archive's
size, each member's size and the arrays' shapes are checked before anything is trusted,
and the name's hash must match the content.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import threading
import zipfile
from pathlib import Path

import numpy as np

from inspector.engine.backbone import BACKBONE, DIMENSIONS
from inspector.engine.normal import Calibration, NormalModel
from inspector.errors import EngineError

FORMAT = "inspector-normal-model"
VERSION = 1
MAX_FILE_BYTES = 256 << 20  # a bank of MAX_BANK patches in half precision is 5 MB
_MEMBERS = {"bank.npy", "meta.npy"}
# A bank this large would make every inspection slow: more than teaching ever keeps (MAX_BANK)
# with room for a later version that keeps more.
MAX_BANK_ROWS = 65_536


def model_file_name(recipe_stem: str, digest: str) -> str:
    return f"{recipe_stem}.normal-{digest[:12]}.npz"


def _archive_bytes(model: NormalModel, description: dict) -> bytes:
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "backbone": BACKBONE,
        "dimensions": DIMENSIONS,
        "resolution": model.resolution,
        "images": model.images,
        "calibration": {
            "scores": list(model.calibration.scores),
            "false_rejects": model.calibration.false_rejects,
            "threshold": model.calibration.threshold,
            "spread": model.calibration.spread,
            "rule": model.calibration.rule,
        },
        **description,
    }
    buffer = io.BytesIO()
    encoded = np.frombuffer(json.dumps(meta, sort_keys=True).encode("utf-8"), np.uint8)
    np.savez(buffer, bank=model.bank.astype(np.float16), meta=encoded)
    return buffer.getvalue()


def save_normal_model(model: NormalModel, folder: str | os.PathLike, recipe_stem: str, **description) -> Path:
    """Write the model beside its recipe, named by its content; returns the file.

    ``description`` (what was taught: images, recipe, time) is stored with it.
    """
    data = _archive_bytes(model, description)
    path = Path(folder) / model_file_name(recipe_stem, hashlib.sha256(data).hexdigest())
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise EngineError(f"{path}: cannot write the normal model ({exc.strerror or exc})") from None
    return path


def _member(archive: zipfile.ZipFile, name: str, path: Path) -> np.ndarray:
    info = archive.getinfo(name)
    # np.savez stores its members as they are: nothing to decompress, nothing encrypted.
    if info.compress_type != zipfile.ZIP_STORED or info.flag_bits & 0x1:
        raise EngineError(f"{path}: {name} is compressed or encrypted; not a normal model of Inspector's")
    if info.file_size > MAX_FILE_BYTES:
        raise EngineError(f"{path}: {name} claims {info.file_size} bytes; not a normal model of Inspector's")
    with archive.open(info) as member:
        data = member.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise EngineError(f"{path}: {name} is larger than a normal model can be")
    # The array's header is read first: a shape it claims must fit in the bytes there
    # are, or numpy would allocate for the claim before reading.
    buffer = io.BytesIO(data)
    try:
        major, _ = np.lib.format.read_magic(buffer)
        read_header = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
        shape, _, dtype = read_header(buffer)
    except ValueError as exc:
        raise EngineError(f"{path}: {name} is not a NumPy array ({exc})") from None
    if dtype.hasobject or int(np.prod(shape, dtype=np.int64)) * dtype.itemsize > len(data):
        raise EngineError(f"{path}: {name} is not an array of numbers of the size it claims")
    return np.load(io.BytesIO(data), allow_pickle=False)


def _check_digest(path: Path, data: bytes) -> None:
    stem = path.name.rsplit(".normal-", 1)
    if len(stem) == 2:
        claimed = stem[1].removesuffix(".npz").lower()
        if not hashlib.sha256(data).hexdigest().startswith(claimed):
            raise EngineError(f"{path}: its content does not match the hash in its name (damaged or changed)")


_loaded: dict[tuple[str, int, int], NormalModel] = {}
_loaded_lock = threading.Lock()


def load_normal_model(path: str | os.PathLike) -> NormalModel:
    """Read a normal model written by :func:`save_normal_model` (once per file and
    version of it: checking a recipe and then inspecting with it read it once).

    Raises:
        EngineError: missing, too large, not such a file, damaged, another version or
            another backbone; the message names the file.
    """
    path = Path(path)
    try:
        if not path.is_file():
            raise EngineError(f"{path}: no such normal model file (teach the recipe: inspector teach)")
        stat = path.stat()
        key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
        with _loaded_lock:
            if key in _loaded:
                return _loaded[key]
        if stat.st_size > MAX_FILE_BYTES:
            raise EngineError(f"{path}: {stat.st_size} bytes is too large for a normal model")
        data = path.read_bytes()
    except OSError as exc:
        raise EngineError(f"{path}: cannot read ({exc.strerror or exc})") from None
    model = _parse(path, data)
    with _loaded_lock:
        _loaded.clear()  # one recipe's model at a time is enough to save the second read
        _loaded[key] = model
    return model


def _parse(path: Path, data: bytes) -> NormalModel:
    _check_digest(path, data)
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = set(archive.namelist())
            if names != _MEMBERS:
                raise EngineError(f"{path}: not a normal model of Inspector's (holds {sorted(names)[:5]})")
            bank = _member(archive, "bank.npy", path)
            meta = json.loads(_member(archive, "meta.npy", path).tobytes().decode("utf-8"))
    except (zipfile.BadZipFile, ValueError, UnicodeDecodeError, KeyError, EOFError, OSError, RecursionError) as exc:
        raise EngineError(f"{path}: not a readable normal model ({type(exc).__name__}: {exc})"[:300]) from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise EngineError(f"{path}: not a normal model of Inspector's")
    if meta.get("version") != VERSION:
        raise EngineError(f"{path}: normal model version {meta.get('version')!r}; this Inspector reads {VERSION}")
    if meta.get("backbone") != BACKBONE or meta.get("dimensions") != DIMENSIONS:
        raise EngineError(f"{path}: taught with {meta.get('backbone')!r}; this Inspector uses {BACKBONE}")
    if bank.dtype != np.float16 or bank.ndim != 2 or bank.shape[1] != DIMENSIONS or not np.isfinite(bank).all():
        raise EngineError(f"{path}: its patch bank is damaged ({bank.dtype} {bank.shape})")
    try:
        c = meta["calibration"]
        calibration = Calibration(
            tuple(float(s) for s in c["scores"]),
            float(c["false_rejects"]),
            float(c["threshold"]),
            float(c["spread"]),
            str(c["rule"]),
        )
        resolution, images = int(meta["resolution"]), int(meta["images"])
    except (KeyError, TypeError, ValueError, OverflowError) as exc:
        raise EngineError(f"{path}: its description is damaged ({exc})") from None
    numbers = (calibration.threshold, calibration.spread, *calibration.scores)
    if not all(np.isfinite(numbers)) or calibration.threshold <= 0 or calibration.spread < 0:
        raise EngineError(
            f"{path}: its threshold is damaged ({calibration.threshold!r}, spread {calibration.spread!r})"
        )
    if not 64 <= resolution <= 4096 or images < 1 or not 1 <= len(bank) <= MAX_BANK_ROWS:
        raise EngineError(f"{path}: its description is damaged (resolution {resolution}, {len(bank)} patches)")
    return NormalModel(bank.astype(np.float32), resolution, calibration, images)
