"""Drawing masks and outlines over an image for people to look at."""

from __future__ import annotations

from collections.abc import Iterable

import cv2
import numpy as np

# The one palette of every picture Inspector draws (BGR), on saved overlays and in the
# GUI alike: what each colour means is the same everywhere.
PART = (80, 200, 60)  # the part region, part boxes, foreground points
DEFECT = (60, 60, 230)  # reported defects, background points
NORMAL = (230, 140, 40)  # normal surfaces and their points
FEATURE = (40, 210, 240)  # features of a good part the reference shows
CANDIDATE = (200, 90, 220)  # segments the rules would report as defects
IGNORED = (180, 180, 180)  # ignore boxes
SAVED_DEFECT = (40, 40, 230)  # outlines burnt into saved overlay pictures

# Distinct, colour-blind-friendly BGR colours (Okabe-Ito), cycled over instances.
PALETTE: tuple[tuple[int, int, int], ...] = (
    (0, 159, 230),
    (233, 180, 86),
    (115, 158, 0),
    (66, 228, 240),
    (178, 114, 0),
    (0, 94, 213),
    (167, 121, 204),
)


def draw_regions(
    image: np.ndarray,
    masks: Iterable[np.ndarray],
    *,
    colors: Iterable[tuple[int, int, int]] | None = None,
    alpha: float = 0.45,
    outline: int = 2,
) -> np.ndarray:
    """A copy of ``image`` with each (H, W) bool mask tinted and outlined."""
    out = image.copy()
    colors = list(colors) if colors is not None else None
    for k, mask in enumerate(masks):
        if not mask.any():
            continue
        color = colors[k % len(colors)] if colors else PALETTE[k % len(PALETTE)]
        tint = np.array(color, np.float32)
        out[mask] = (out[mask] * (1 - alpha) + tint * alpha).astype(np.uint8)
        contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(out, contours, -1, color, outline, lineType=cv2.LINE_AA)
    return out


def draw_prompts(image: np.ndarray, *, points=None, labels=None, boxes=None) -> np.ndarray:
    """Mark point prompts (green foreground, red background) and boxes on ``image``."""
    out = image
    if boxes is not None:
        for x1, y1, x2, y2 in np.asarray(boxes, np.int64).reshape(-1, 4):
            cv2.rectangle(out, (int(x1), int(y1)), (int(x2), int(y2)), (255, 255, 255), 2)
    if points is not None:
        pts = np.asarray(points, np.int64).reshape(-1, 2)
        labs = np.ones(len(pts), np.int64) if labels is None else np.asarray(labels)
        for (x, y), label in zip(pts, labs, strict=True):
            color = PART if label else DEFECT
            cv2.circle(out, (int(x), int(y)), 6, (255, 255, 255), -1, lineType=cv2.LINE_AA)
            cv2.circle(out, (int(x), int(y)), 4, color, -1, lineType=cv2.LINE_AA)
    return out


LABEL_FONT = cv2.FONT_HERSHEY_SIMPLEX


def load_label_font() -> None:
    """Load the labels' font now: OpenCV loads it on first use, which takes tens of
    milliseconds that would otherwise land on the first picture drawn."""
    cv2.getTextSize("0", LABEL_FONT, 1.0, 1)


def draw_findings(image: np.ndarray, findings, *, color: tuple[int, int, int] = SAVED_DEFECT) -> np.ndarray:
    """A copy of ``image`` with each defect outlined and labelled."""
    out = image.copy()
    thickness = max(1, round(max(image.shape[:2]) / 400))
    for finding in findings:
        if len(finding.outline) >= 2:
            pts = np.round(finding.outline).astype(np.int32).reshape(-1, 1, 2)
            cv2.polylines(out, [pts], True, color, thickness + 1, lineType=cv2.LINE_AA)
        x1, y1, _, _ = (int(v) for v in finding.box)
        text = f"{finding.label} {finding.score:.2f}"
        scale = 0.4 * thickness
        (tw, th), _ = cv2.getTextSize(text, LABEL_FONT, scale, 1)
        y = max(th + 4, y1 - 4)
        cv2.rectangle(out, (x1, y - th - 3), (x1 + tw + 4, y + 2), color, -1)
        cv2.putText(out, text, (x1 + 2, y), LABEL_FONT, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return out
