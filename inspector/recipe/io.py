"""Recipe files: YAML load / save with validation that names the file and the field.

Every problem in a file is collected and reported at once, as
``recipes/demo.yaml: defects.min_area: must be >= 0, got -5``.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
from collections.abc import Hashable
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from inspector.errors import RecipeError
from inspector.recipe.checks import LABEL_LENGTH, PRODUCT_NAME_LENGTH, Checker, finite_number, text_problem
from inspector.recipe.model import (
    SCHEMA_VERSION,
    AlignmentSettings,
    AnomalySettings,
    ClipSettings,
    DefectRules,
    Exemplar,
    ModelSettings,
    PartPrompts,
    Recipe,
)

_SECTIONS = {
    "schema_version",
    "product",
    "model",
    "alignment",
    "part",
    "normal",
    "ignore",
    "defects",
    "clip",
    "anomaly",
}


def _check_version(check: Checker, top: dict, origin: str) -> None:
    version = top.get("schema_version")
    if version is None:
        check.fail("schema_version", "missing (required)")
    elif not isinstance(version, int) or isinstance(version, bool) or version < 1:
        check.fail("schema_version", f"must be a positive whole number, got {version!r}")
    elif version > SCHEMA_VERSION:
        raise RecipeError(
            f"{origin}: schema_version {version} is newer than this Inspector supports ({SCHEMA_VERSION}); "
            "upgrade Inspector to use this recipe"
        )


def _model(check: Checker, data: Any) -> ModelSettings:
    m = check.section(data, "model", {"weights", "sha256", "imgsz", "conf", "iou", "point_mode", "window"})
    return ModelSettings(
        weights=check.text(m, "weights", "model", ModelSettings.weights),
        sha256=check.text(m, "sha256", "model", None),
        imgsz=check.number(m, "imgsz", "model", 640, low=32, high=4096, integer=True),
        conf=check.number(m, "conf", "model", 0.25, low=0.0, high=1.0),
        iou=check.number(m, "iou", "model", 0.7, low=0.0, high=1.0),
        point_mode=check.text(m, "point_mode", "model", "merge", choices=("merge", "instances")),
        window=check.text(m, "window", "model", "image", choices=("image", "part")),
    )


def _alignment(check: Checker, data: Any) -> AlignmentSettings:
    a = check.section(data, "alignment", {"method", "max_features", "min_inliers"})
    # ORB takes its feature count as a C int and allocates for it: a bound keeps a typo
    # from failing every image (or the machine's memory) at run time.
    alignment = AlignmentSettings(
        method=check.text(a, "method", "alignment", "none", choices=("none", "orb")),
        max_features=check.number(a, "max_features", "alignment", 1500, low=50, high=100_000, integer=True),
        min_inliers=check.number(a, "min_inliers", "alignment", 12, low=4, high=100_000, integer=True),
    )
    if alignment.min_inliers > alignment.max_features:
        check.fail(
            "alignment.min_inliers",
            f"{alignment.min_inliers} is more than alignment.max_features {alignment.max_features} can give",
        )
    return alignment


def _part(check: Checker, data: Any) -> PartPrompts:
    p = check.section(data, "part", {"boxes", "points"})
    points = []
    for i, pt in enumerate(check.tuples(p, "points", "part", (2, 3))):
        label = pt[2] if len(pt) == 3 else 1  # a bare x, y is a foreground point
        if label not in (0, 1):
            check.fail(f"part.points[{i}]", f"label must be 1 (foreground) or 0 (background), got {label:g}")
        points.append((pt[0], pt[1], int(label)))
    return PartPrompts(boxes=check.tuples(p, "boxes", "part", (4,)), points=tuple(points))


_DEFECT_KEYS = {
    "min_area",
    "max_area",
    "allowed",
    "inside_fraction",
    "match_reference",
    "match_iou",
    "missing_features",
    "changed_fraction",
    "differences",
    "classes",
    "negative_classes",
    "class_threshold",
    "exemplars",
    "detect",
}


def _names(check: Checker, d: dict, key: str) -> tuple[str, ...]:
    names = d.get(key) or []
    if not isinstance(names, list) or not all(isinstance(c, str) and c.strip() for c in names):
        check.fail(f"defects.{key}", f"must be a list of non-empty strings, got {names!r}")
        return ()
    for k, name in enumerate(names):
        problem = text_problem(name.strip(), LABEL_LENGTH)
        if problem:
            check.fail(f"defects.{key}[{k}]", problem)
    return tuple(c.strip() for c in names)


def _exemplars(check: Checker, d: dict) -> tuple[Exemplar, ...]:
    """``[x, y]`` / ``[x, y, label]`` on the reference image, or ``{point, label, image}``."""
    value = d.get("exemplars") or []
    if not isinstance(value, list):
        check.fail("defects.exemplars", f"must be a list, got {type(value).__name__}")
        return ()
    out = []
    for i, item in enumerate(value):
        where = f"defects.exemplars[{i}]"
        fields: dict = {}
        if isinstance(item, dict):
            check.section(item, where, {"point", "label", "image"})
            point = item.get("point")
            fields["name"] = check.text(item, "label", where, None, max_length=LABEL_LENGTH)
            fields["image"] = check.text(item, "image", where, None)
            where = f"{where}.point"
        else:
            point = item
        numbers = isinstance(point, list) and len(point) in (2, 3)
        if not (numbers and all(finite_number(v) for v in point)):
            check.fail(where, f"must be [x, y] or [x, y, label] (finite numbers), got {point!r}")
            continue
        if len(point) == 3 and point[2] not in (0, 1):
            check.fail(where, f"label must be 1 (example defect) or 0 (normal surface), got {point[2]!r}")
            continue
        label = int(point[2]) if len(point) == 3 else 1
        out.append(Exemplar(float(point[0]), float(point[1]), label, **fields))
    return tuple(out)


def _clip(check: Checker, data: Any) -> ClipSettings:
    c = check.section(data, "clip", {"model", "weights", "image_size"})
    size = None
    if c.get("image_size") is not None:
        size = check.number(c, "image_size", "clip", 224, low=32, high=1024, integer=True)
    return ClipSettings(
        model=check.text(c, "model", "clip", ClipSettings.model),
        weights=check.text(c, "weights", "clip", None),
        image_size=size,
    )


def _anomaly(check: Checker, data: Any) -> AnomalySettings:
    a = check.section(data, "anomaly", {"model", "threshold", "resolution", "false_rejects", "border"})
    threshold = None
    if a.get("threshold") is not None:
        threshold = check.number(a, "threshold", "anomaly", None, low=0.0)
    return AnomalySettings(
        model=check.text(a, "model", "anomaly", None),
        threshold=threshold,
        resolution=check.number(a, "resolution", "anomaly", 192, low=64, high=4096, integer=True),
        false_rejects=check.number(a, "false_rejects", "anomaly", 0.01, low=1e-6, high=0.5),
        border=check.number(a, "border", "anomaly", 0.0, low=0.0, high=10_000.0),
    )


def _defects(check: Checker, data: Any) -> DefectRules:
    d = check.section(data, "defects", _DEFECT_KEYS)
    rules = DefectRules(
        min_area=check.number(d, "min_area", "defects", 30.0, low=0.0),
        max_area=check.number(d, "max_area", "defects", 50_000.0, low=0.0),
        allowed=check.number(d, "allowed", "defects", 0, low=0, integer=True),
        inside_fraction=check.number(d, "inside_fraction", "defects", 0.8, low=0.0, high=1.0),
        match_reference=check.flag(d, "match_reference", "defects", True),
        match_iou=check.number(d, "match_iou", "defects", 0.5, low=0.0, high=1.0),
        missing_features=check.flag(d, "missing_features", "defects", True),
        changed_fraction=check.number(d, "changed_fraction", "defects", 0.0, low=0.0, high=1.0),
        differences=check.flag(d, "differences", "defects", False),
        classes=_names(check, d, "classes"),
        negative_classes=_names(check, d, "negative_classes"),
        class_threshold=check.number(d, "class_threshold", "defects", 0.5, low=0.0, high=1.0),
        exemplars=_exemplars(check, d),
        detect=check.text(d, "detect", "defects", "auto", choices=("auto", "segments", "anomaly", "both")),
    )
    if rules.min_area > rules.max_area:
        check.fail("defects.min_area", f"{rules.min_area:g} is larger than defects.max_area {rules.max_area:g}")
    return rules


def _check_boxes(check: Checker, path: str, boxes: tuple) -> None:
    for i, (x1, y1, x2, y2) in enumerate(boxes):
        if x2 <= x1 or y2 <= y1:
            check.fail(f"{path}[{i}]", f"box ({x1:g}, {y1:g}, {x2:g}, {y2:g}) is empty: need x1 < x2 and y1 < y2")


def _parse(raw: Any, origin: str) -> Recipe:
    check = Checker()
    top = check.section(raw, "", _SECTIONS)
    if not isinstance(raw, dict):
        raise RecipeError(f"{origin}: a recipe must be a YAML mapping, got {type(raw).__name__}")
    _check_version(check, top, origin)
    if "product" not in top:
        check.fail("product", "missing (required)")
    product = check.section(top.get("product"), "product", {"name", "description", "reference_image"})
    name = check.text(product, "name", "product", required=True, max_length=PRODUCT_NAME_LENGTH)
    reference = check.text(product, "reference_image", "product", required=True)
    description = check.text(product, "description", "product", "")
    model, alignment = _model(check, top.get("model")), _alignment(check, top.get("alignment"))
    part, defects = _part(check, top.get("part")), _defects(check, top.get("defects"))
    clip = _clip(check, top.get("clip"))
    anomaly = _anomaly(check, top.get("anomaly"))
    if defects.detect in ("anomaly", "both") and anomaly.model is None:
        check.fail(
            "defects.detect",
            f"{defects.detect!r} needs a taught recipe (anomaly.model): run `inspector teach` with good images first",
        )
    normal = check.tuples(check.section(top.get("normal"), "normal", {"points"}), "points", "normal", (2,))
    ignore = check.tuples(check.section(top.get("ignore"), "ignore", {"boxes"}), "boxes", "ignore", (4,))
    _check_boxes(check, "part.boxes", part.boxes)
    _check_boxes(check, "ignore.boxes", ignore)
    if check.problems:
        raise RecipeError(f"{origin}: " + f"\n{origin}: ".join(check.problems))
    return Recipe(
        name=name,
        reference_image=reference,
        description=description or "",
        model=model,
        alignment=alignment,
        part=part,
        normal_points=normal,
        ignore_boxes=ignore,
        defects=defects,
        clip=clip,
        anomaly=anomaly,
        schema_version=SCHEMA_VERSION,
    )


class _Loader(yaml.SafeLoader):
    """Safe YAML that refuses a key given twice in one mapping (PyYAML keeps the last one,
    so a section pasted twice would silently replace the first) and refuses aliases
    (``*name``): a few nested aliases expand to billions of values (a "billion laughs"),
    and a recipe written by Inspector never holds one."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.events.AliasEvent):
            mark = self.peek_event().start_mark
            raise yaml.composer.ComposerError(None, None, "aliases (*name) are not allowed in a recipe", mark)
        return super().compose_node(parent, index)

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # "<<" merges are PyYAML's to resolve
                continue
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, Hashable):  # PyYAML's own error follows
                continue
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"{key!r} is given twice in the same mapping", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def parse_recipe(text: str, *, source: Path | None = None) -> Recipe:
    """Parse and validate recipe YAML text (no file checks)."""
    origin = str(source) if source is not None else "recipe"
    try:
        raw = yaml.load(text, Loader=_Loader)  # a SafeLoader
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" (line {where.line + 1}, column {where.column + 1})" if where else ""
        raise RecipeError(f"{origin}: not valid YAML{at}: {getattr(exc, 'problem', exc)}") from None
    except ValueError as exc:  # e.g. an integer of more digits than Python converts
        raise RecipeError(f"{origin}: not a usable recipe: {str(exc)[:200]}") from None
    return replace(_parse(raw, origin), source=source)


MAX_RECIPE_BYTES = 1 << 20  # a recipe is a page of YAML; a file this large is not one


def load_recipe(path: str | os.PathLike) -> Recipe:
    """Read and validate a recipe file.

    Raises:
        RecipeError: the file is missing or unreadable, is not YAML, or has invalid
            fields; the message names the file and every bad field.
    """
    path = Path(path)
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode) and not stat.S_ISDIR(info.st_mode):
            raise RecipeError(f"{path}: not a regular file (a pipe, device or socket); not read")
        if info.st_size > MAX_RECIPE_BYTES:
            raise RecipeError(f"{path}: {info.st_size} bytes is too large for a recipe ({MAX_RECIPE_BYTES} at most)")
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RecipeError(f"{path}: no such recipe file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RecipeError(f"{path}: cannot read ({exc})") from None
    return parse_recipe(text, source=path.resolve())


class _Row(list):
    """A point or box: written on one line, [x, y] style."""


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(
    _Row, lambda dumper, row: dumper.represent_sequence("tag:yaml.org,2002:seq", row, flow_style=True)
)


def _plain(values) -> list:
    """Numbers as YAML shows them best: whole numbers without a trailing .0."""
    return [_Row(int(v) if float(v).is_integer() else round(float(v), 3) for v in item) for item in values]


def _exemplar_to_yaml(e: Exemplar):
    point = _plain([(e.x, e.y) if e.label == 1 else (e.x, e.y, 0)])[0]
    if e.name is None and e.image is None:
        return point
    item = {"point": point}
    if e.name is not None:
        item["label"] = e.name
    if e.image is not None:
        item["image"] = e.image
    return item


def recipe_to_dict(recipe: Recipe) -> dict:
    d = recipe.defects
    out = {
        "schema_version": SCHEMA_VERSION,
        "product": {"name": recipe.name, "description": recipe.description, "reference_image": recipe.reference_image},
        "model": {
            "weights": recipe.model.weights,
            "sha256": recipe.model.sha256,
            "imgsz": recipe.model.imgsz,
            "conf": recipe.model.conf,
            "iou": recipe.model.iou,
            "point_mode": recipe.model.point_mode,
        },
        "alignment": {
            "method": recipe.alignment.method,
            "max_features": recipe.alignment.max_features,
            "min_inliers": recipe.alignment.min_inliers,
        },
        "part": {"boxes": _plain(recipe.part.boxes), "points": _plain(recipe.part.points)},
        "normal": {"points": _plain(recipe.normal_points)},
        "ignore": {"boxes": _plain(recipe.ignore_boxes)},
        "defects": {
            "min_area": d.min_area,
            "max_area": d.max_area,
            "allowed": d.allowed,
            "inside_fraction": d.inside_fraction,
            "match_reference": d.match_reference,
            "match_iou": d.match_iou,
            "missing_features": d.missing_features,
            "classes": list(d.classes),
            "exemplars": [_exemplar_to_yaml(e) for e in d.exemplars],
        },
    }
    # Written only when used, so that recipes written before them keep their content hash.
    if recipe.model.window != "image":
        out["model"]["window"] = recipe.model.window
    if d.changed_fraction:
        out["defects"]["changed_fraction"] = d.changed_fraction
    if d.differences:
        out["defects"]["differences"] = True
    if d.detect != "auto":
        out["defects"]["detect"] = d.detect
    if recipe.anomaly != AnomalySettings():
        a = recipe.anomaly
        out["anomaly"] = {
            "model": a.model,
            "threshold": a.threshold,
            "resolution": a.resolution,
            "false_rejects": a.false_rejects,
        }
        if a.border:
            out["anomaly"]["border"] = a.border
    if d.uses_clip:
        out["defects"]["negative_classes"] = list(d.negative_classes)
        out["defects"]["class_threshold"] = d.class_threshold
        out["clip"] = {"model": recipe.clip.model, "weights": recipe.clip.weights}
        if recipe.clip.image_size is not None:
            out["clip"]["image_size"] = recipe.clip.image_size
    return out


def dump_recipe(recipe: Recipe) -> str:
    """Canonical YAML text of a recipe (the content hash is taken over it)."""
    return yaml.dump(
        recipe_to_dict(recipe), Dumper=_Dumper, sort_keys=False, default_flow_style=False, allow_unicode=True, width=100
    )


def recipe_hash(recipe: Recipe) -> str:
    """SHA-256 of the canonical YAML text: the recipe version recorded with results."""
    return hashlib.sha256(dump_recipe(recipe).encode("utf-8")).hexdigest()


def save_recipe(recipe: Recipe, path: str | os.PathLike) -> Recipe:
    """Write a recipe atomically; returns it with ``source`` set to the new file."""
    path = Path(path)
    parse_recipe(dump_recipe(recipe), source=path)  # never write a file that would not load back
    if path.is_dir():
        raise RecipeError(f"{path}: is a folder; give the recipe file's name")
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(dump_recipe(recipe), encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)  # no half-made file left beside the recipe
        raise RecipeError(f"{path}: cannot write ({exc.strerror or exc})") from None
    return replace(recipe, source=path.resolve())
