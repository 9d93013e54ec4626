#!/usr/bin/env bash
# The embedded model from scratch, as shipped: three training stages, then the model card.
# About 135 minutes on 2 CPU cores; run it in the background (nohup ... &).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
$PY packaging/train_embedded_model.py --scenes 400 --hours 0.85 --seed 0
$PY packaging/train_embedded_model.py --init inspector/engine/models/inspector-seg-n.pt \
    --scenes 400 --hours 0.65 --seed 2 --work packaging/training-run-2
$PY packaging/train_embedded_model.py --init inspector/engine/models/inspector-seg-n.pt \
    --scenes 400 --hours 0.6 --seed 11 --work packaging/training-run-3
$PY packaging/evaluate_embedded_model.py
