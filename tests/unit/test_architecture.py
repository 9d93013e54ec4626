"""The core runs headless: the CLI and pure modules never pay for Qt or torch."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "inspector"


def _imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_qt_only_in_gui_and_torch_only_in_engine():
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        part = path.relative_to(PACKAGE).parts[0]
        roots = _imported_roots(path)
        if part != "gui" and roots & {"PySide6", "PyQt5", "PyQt6", "qtpy"}:
            offenders.append(f"{path}: Qt")
        if part != "engine" and roots & {"torch", "torchvision", "ultralytics", "open_clip"}:
            offenders.append(f"{path}: torch/ultralytics")
    assert not offenders, offenders


def test_importing_the_cli_loads_neither_qt_nor_torch():
    code = (
        "import sys, inspector.cli, inspector.engine.prompts, inspector.synthetic.scene;"
        "print(sorted(m for m in ('torch', 'ultralytics', 'PySide6') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_inspecting_an_image_never_imports_torchvision():
    # torchvision pulls in torch's compiler stack: seconds of every cold start.
    code = (
        "import sys, numpy as np;"
        "from inspector.engine.segmenter import FastSAMSegmenter;"
        "FastSAMSegmenter(device='cpu').segment(np.full((96, 128, 3), 90, np.uint8));"
        "print('torchvision' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
