"""Loading segmentation weights without running what the file brings.

A ``.pt`` checkpoint is a pickle, and a pickle can call any function it names: a crafted
file referenced by a recipe's ``model.weights`` would run its payload the moment it is
loaded (ultralytics loads with ``weights_only=False``). Recipes travel between sites, so
weights are loaded here with torch's restricted unpickler (``weights_only=True``), which
builds tensors and containers only, plus the classes a YOLO segmentation checkpoint is
made of: network layers from ``torch.nn`` and ``ultralytics.nn``, and the namespace
ultralytics keeps its training arguments in. Anything else is refused, naming what the
file asked for.
"""

from __future__ import annotations

import importlib
import pickle
import threading
import zipfile
from pathlib import Path

from inspector.errors import EngineError

MAX_CHECKPOINT_BYTES = 2 << 30  # the largest FastSAM release is 145 MB
# Where network layers come from: classes found here are allowed when they are torch modules.
_LAYER_PACKAGES = ("torch.nn.modules.", "ultralytics.nn.")
# Older ultralytics releases pickled the same classes under other module names.
_RENAMED_MODULES = {"ultralytics.yolo.utils": "ultralytics.utils"}
# Plain data a checkpoint's metadata holds besides its layers (the training arguments).
_METADATA = {"ultralytics.utils.IterableSimpleNamespace", "types.SimpleNamespace"}
_register_lock = threading.Lock()


def _allowed_global(name: str):
    """The object a checkpoint may name as ``name``, or None when it may not."""
    module_name, _, attr = name.rpartition(".")
    module_name = _RENAMED_MODULES.get(module_name, module_name)
    real_name = f"{module_name}.{attr}"
    layer = (module_name + ".").startswith(_LAYER_PACKAGES)
    if not (layer or real_name in _METADATA) or not attr.isidentifier():
        return None
    try:
        module = importlib.import_module(module_name)  # installed code only: the prefixes above
    except ImportError:
        return None
    found = getattr(module, attr, None)
    if not isinstance(found, type):
        return None
    if layer:
        import torch

        return found if issubclass(found, torch.nn.Module) else None
    return found


def _refuse(path: Path, why: str) -> EngineError:
    return EngineError(f"cannot load {path} as segmentation weights: {why}")


def check_checkpoint(path: Path) -> list:
    """The classes ``path`` needs beyond tensors, each checked against the allow-list
    (registered with torch as ``(class, name in the file)``).

    Raises:
        EngineError: not a torch zip checkpoint, too large, or asking for anything else.
    """
    import torch

    try:
        size = path.stat().st_size
    except OSError as exc:
        raise _refuse(path, exc.strerror or str(exc)) from None
    if not path.is_file():
        raise _refuse(path, "not a regular file")
    if size > MAX_CHECKPOINT_BYTES:
        raise _refuse(path, f"{size / 2**30:.1f} GiB is larger than any segmentation checkpoint")
    if not zipfile.is_zipfile(path):
        # The pre-1.6 pickle format cannot be checked before it is run.
        raise _refuse(path, "not a PyTorch checkpoint (a zip archive written by torch.save)")
    try:
        needed = torch.serialization.get_unsafe_globals_in_checkpoint(str(path))
    except Exception as exc:  # a damaged archive
        raise _refuse(path, f"the file is damaged ({exc})") from None
    allowed, refused = [], []
    for name in needed:
        found = _allowed_global(name)
        if found is None:
            refused.append(name)
        else:
            allowed.append(found if f"{found.__module__}.{found.__qualname__}" == name else (found, name))
    if refused:
        listed = ", ".join(sorted(refused)[:4]) + (" ..." if len(refused) > 4 else "")
        raise _refuse(
            path,
            f"it asks to run or build {listed}, which segmentation weights never hold; loading it could "
            "run code the file brings. Use weights saved by ultralytics from a source you trust",
        )
    return allowed


def read_checkpoint(path: Path) -> dict:
    """The checkpoint's contents, unpickled with only the allowed classes."""
    import torch

    allowed = check_checkpoint(path)
    with _register_lock:
        # Registered for the process, not in a ``safe_globals`` block: that block removes
        # its entries on leaving, under another thread's load of the same classes.
        torch.serialization.add_safe_globals(allowed)
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise _refuse(path, f"it holds something other than network weights ({exc})") from None
    except Exception as exc:  # truncated or damaged tensors
        raise _refuse(path, f"the file is damaged ({exc})") from None
    if not isinstance(checkpoint, dict):
        raise _refuse(path, "not an ultralytics checkpoint (no dictionary of model and metadata)")
    return checkpoint


def load_segmentation_module(path: Path):
    """The network a checkpoint holds (its EMA copy where saved), in float32, as
    ultralytics prepares it for inference."""
    import torch

    checkpoint = read_checkpoint(path)
    module = checkpoint.get("ema") or checkpoint.get("model")
    if not isinstance(module, torch.nn.Module):
        raise _refuse(path, "it holds no network ('model' is missing)")
    module = module.float()
    if not hasattr(module, "stride"):
        module.stride = torch.tensor([32.0])
    for layer in module.modules():
        if hasattr(layer, "inplace"):
            layer.inplace = True
        elif isinstance(layer, torch.nn.Upsample) and not hasattr(layer, "recompute_scale_factor"):
            layer.recompute_scale_factor = None  # layers pickled by older torch releases
    return module
