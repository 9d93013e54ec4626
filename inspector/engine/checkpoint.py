"""Loading segmentation weights without running what the file brings.

A ``.pt`` checkpoint is a pickle, and a pickle can call any function it names: a crafted
file referenced by a recipe's ``model.weights`` would run its payload the moment it is
loaded (ultralytics loads with ``weights_only=False``). Recipes travel between sites, so
weights are loaded here with torch's restricted unpickler (``weights_only=True``), which
builds tensors and containers only, plus the classes a YOLO segmentation checkpoint is
made of: network layers from ``torch.nn.modules`` and ``ultralytics.nn.modules``, the
model classes of ``ultralytics.nn.tasks``, and the namespace ultralytics keeps its
training arguments in. Anything else is refused, naming what the file asked for.

Allowing a class to be *built* is not allowing it to be *called*: torch.save writes a
module as "a new object of this class, then its state" (NEWOBJ, BUILD), which runs none
of the class's code, but the restricted unpickler would also let a crafted file call an
allowed class with arguments of its choosing (REDUCE), running its ``__init__``, and
some layer classes load other files there. The pickle is therefore read first, without
running it, and a file that calls any class is refused.
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
_LAYER_PACKAGES = ("torch.nn.modules.", "ultralytics.nn.modules.")
_MODEL_CLASSES = {f"ultralytics.nn.tasks.{name}" for name in ("SegmentationModel", "DetectionModel", "BaseModel")}
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
    layer = (module_name + ".").startswith(_LAYER_PACKAGES) or real_name in _MODEL_CLASSES
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


_STRINGS = {"SHORT_BINUNICODE", "BINUNICODE", "UNICODE", "BINUNICODE8", "SHORT_BINSTRING", "BINSTRING", "STRING"}


def called_globals(pickled: bytes) -> list[str]:
    """The globals a pickle calls (REDUCE, OBJ, INST) rather than only builds (NEWOBJ):
    found by following its opcodes on a stack of names, never running it."""
    import pickletools

    stack: list[str | None] = []
    memo: dict[int, str | None] = {}
    marks: list[int] = []
    called: list[str] = []
    for op, arg, _ in pickletools.genops(pickled):
        name = op.name
        if name == "GLOBAL":
            stack.append(str(arg).replace(" ", "."))
        elif name == "STACK_GLOBAL":
            attr, module = stack.pop(), stack.pop()
            stack.append(f"{module}.{attr}" if module and attr else "?")
        elif name in _STRINGS:
            stack.append(arg if isinstance(arg, str) else None)
        elif name in ("BINPUT", "LONG_BINPUT", "PUT"):
            memo[arg] = stack[-1]
        elif name == "MEMOIZE":
            memo[len(memo)] = stack[-1]
        elif name in ("BINGET", "LONG_BINGET", "GET"):
            stack.append(memo.get(arg))
        elif name == "MARK":
            marks.append(len(stack))
        elif name == "REDUCE":
            stack.pop()
            called.append(stack.pop() or "?")
            stack.append(None)
        elif name == "INST":
            called.append(str(arg).replace(" ", "."))
            del stack[marks.pop() :]
            stack.append(None)
        elif name == "OBJ":
            items = stack[marks.pop() :]
            del stack[len(stack) - len(items) :]
            called.append((items[0] if items else None) or "?")
            stack.append(None)
        else:  # the opcode's own stack effect, on values that are not names
            before = list(op.stack_before)
            if pickletools.markobject in before:
                del stack[marks.pop() :]
                before = [b for b in before if b not in (pickletools.markobject, pickletools.stackslice)]
            del stack[len(stack) - len(before) :]
            stack.extend([None] * len(op.stack_after))
    return called


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
    refused += [f"{name} (called)" for name in _calls_into(path, allowed)]
    if refused:
        listed = ", ".join(sorted(refused)[:4]) + (" ..." if len(refused) > 4 else "")
        raise _refuse(
            path,
            f"it asks to run or build {listed}, which segmentation weights never hold; loading it could "
            "run code the file brings. Use weights saved by ultralytics from a source you trust",
        )
    return allowed


def _calls_into(path: Path, allowed: list) -> list[str]:
    """The allowed classes the checkpoint would call instead of only building."""
    names = {f"{(a[0] if isinstance(a, tuple) else a).__module__}.{(a[0] if isinstance(a, tuple) else a).__qualname__}"
             for a in allowed} | {a[1] for a in allowed if isinstance(a, tuple)}  # fmt: skip
    with zipfile.ZipFile(path) as archive:
        pickles = [n for n in archive.namelist() if n.endswith("data.pkl")]
        if len(pickles) != 1 or archive.getinfo(pickles[0]).file_size > 64 << 20:
            raise _refuse(path, "not a PyTorch checkpoint (one data.pkl of a sane size)")
        data = archive.read(pickles[0])
    try:
        called = called_globals(data)
    except Exception as exc:  # a pickle pickletools cannot follow is not one torch.save wrote
        raise _refuse(path, f"its pickle cannot be read safely ({exc})") from None
    return sorted({name for name in called if name in names or name == "?"})


def read_checkpoint(path: Path) -> dict:
    """The checkpoint's contents, unpickled with only the allowed classes."""
    import torch

    allowed = check_checkpoint(path)
    # Allowed for this load only (a lock: the allow-list is the process's, and another
    # load's block must not remove entries under this one).
    with _register_lock, torch.serialization.safe_globals(allowed):
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
