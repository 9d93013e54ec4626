"""The recipe settings form: model, point mode, alignment, defect rules, classes.

The form shows a Recipe and emits an edited copy; it never holds recipe state of its
own, so undo / redo and the image tools stay the single source of truth.
"""

from __future__ import annotations

from dataclasses import replace

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QLineEdit,
    QSpinBox,
    QWidget,
)

from inspector.recipe.model import Recipe

_ERROR_STYLE = "border:2px solid #c0392b"

# What each setting does, with its unit and range: the field's tooltip (a field marked
# bad shows its problem instead, until it is put right).
HELP = {
    "product.name": "The product this recipe inspects: named in results, reports and Operate.",
    "model.weights": "The segmentation network: a name from the model folder (inspector-seg-n) or a .pt file.",
    "model.imgsz": "Pixels of the longer side the network is shown (32-4096, a multiple of 32). Larger finds "
    "smaller things and is slower. Segments the reference again.",
    "model.conf": "How sure the network must be of a segment to keep it (0-1). Lower finds fainter defects and "
    "more false ones. Segments the reference again.",
    "model.iou": "Overlap (0-1) above which two segments count as one and the weaker is dropped. "
    "Segments the reference again.",
    "model.point_mode": "How part points choose segments: merge (each point adds or removes the segment under it) "
    "or instances (every segment holding a foreground point).",
    "model.window": "What the network sees: the whole image, or the window around the part, at full detail. "
    "Segments the reference again.",
    "alignment.method": "Align each image to the reference before comparing: none (parts held in a fixture) or "
    "orb (parts that move or turn).",
    "defects.min_area": "Smallest defect reported, in image pixels (0 and up).",
    "defects.max_area": "Largest defect reported, in image pixels; anything larger is taken as part of the scene.",
    "defects.allowed": "How many defects a part may have and still PASS (0 and up).",
    "defects.detect": "Where defects come from: segments held against the reference's, the anomaly map of a "
    "taught recipe, or both (auto: the anomaly map once taught).",
    "defects.match_reference": "On: a segment the reference part also shows is a feature, not a defect (yellow "
    "in the preview). Off: every segment the rules keep is a defect (magenta).",
    "defects.missing_features": "Report a feature of the reference that an image lacks (a missing print or hole).",
    "defects.changed_fraction": "Share (0-1) of a defect's pixels that must look different from the reference; "
    "0: not checked.",
    "defects.differences": "Also report places that differ from the reference where no segment explains it.",
    "defects.classes": "Names of defect kinds, comma separated (scratch, stain): each defect is labelled with "
    "the closest one. Needs CLIP weights.",
    "defects.negative_classes": "Names of things that are not defects, comma separated: a defect closest to one "
    "of these is dropped.",
    "defects.class_threshold": "Probability (0-1) a class needs to label a defect; below it the defect stays "
    "unlabelled.",
}


def _names(text: str) -> tuple[str, ...]:
    return tuple(c.strip() for c in text.split(",") if c.strip())


class RecipeForm(QWidget):
    edited = Signal(object, str)  # new Recipe, description of the change

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._recipe: Recipe | None = None
        self._updating = False
        self.name = QLineEdit()
        self.weights = QLineEdit()
        self.imgsz = QSpinBox(minimum=32, maximum=4096, singleStep=32)
        self.conf = QDoubleSpinBox(minimum=0.0, maximum=1.0, singleStep=0.05, decimals=2)
        self.iou = QDoubleSpinBox(minimum=0.0, maximum=1.0, singleStep=0.05, decimals=2)
        self.point_mode = QComboBox()
        self.point_mode.addItems(["merge", "instances"])
        self.window = QComboBox()
        self.window.addItems(["image", "part"])
        self.alignment = QComboBox()
        self.alignment.addItems(["none", "orb"])
        self.min_area = QDoubleSpinBox(minimum=0, maximum=1e9, decimals=0, singleStep=10)
        self.max_area = QDoubleSpinBox(minimum=0, maximum=1e9, decimals=0, singleStep=1000)
        self.allowed = QSpinBox(minimum=0, maximum=1000)
        self.detect = QComboBox()
        self.detect.addItems(["auto", "segments", "anomaly", "both"])
        self.match_reference = QCheckBox("ignore segments the reference part also has")
        self.missing_features = QCheckBox("report reference features the part lacks")
        self.changed_fraction = QDoubleSpinBox(
            minimum=0.0,
            maximum=1.0,
            singleStep=0.02,
            decimals=2,
        )
        self.differences = QCheckBox("report differences from the reference no segment explains")
        self.classes = QLineEdit(placeholderText="scratch, stain (needs CLIP weights)")
        self.negative_classes = QLineEdit(placeholderText="a normal surface")
        self.class_threshold = QDoubleSpinBox(minimum=0.0, maximum=1.0, singleStep=0.05, decimals=3)
        self.fields = {
            "product.name": self.name,
            "model.weights": self.weights,
            "model.imgsz": self.imgsz,
            "model.conf": self.conf,
            "model.iou": self.iou,
            "model.point_mode": self.point_mode,
            "model.window": self.window,
            "alignment.method": self.alignment,
            "defects.min_area": self.min_area,
            "defects.max_area": self.max_area,
            "defects.allowed": self.allowed,
            "defects.detect": self.detect,
            "defects.match_reference": self.match_reference,
            "defects.missing_features": self.missing_features,
            "defects.changed_fraction": self.changed_fraction,
            "defects.differences": self.differences,
            "defects.classes": self.classes,
            "defects.negative_classes": self.negative_classes,
            "defects.class_threshold": self.class_threshold,
        }
        form = QFormLayout(self)
        labels = [
            "Product",
            "Weights",
            "Image size",
            "Confidence",
            "NMS IoU",
            "Point mode",
            "Network sees",
            "Alignment",
            "Min defect area (px)",
            "Max defect area (px)",
            "Defects allowed",
            "Defects from",
            "Reference",
            "Features",
            "Changed share",
            "Differences",
            "Text classes",
            "Not defects",
            "Class threshold",
        ]
        self._labels = dict(zip(self.fields, labels, strict=True))
        for (name, widget), label in zip(self.fields.items(), labels, strict=True):
            widget.setToolTip(HELP[name])
            form.addRow(label, widget)
            form.labelForField(widget).setToolTip(HELP[name])
        for line in (self.name, self.weights, self.classes, self.negative_classes):
            line.editingFinished.connect(self._emit)
        spins = (
            self.imgsz,
            self.conf,
            self.iou,
            self.min_area,
            self.max_area,
            self.allowed,
            self.changed_fraction,
            self.class_threshold,
        )
        for spin in spins:
            # A number is committed on Enter, on leaving the field or by a step of its
            # arrows, not per keystroke: "0.15" typed would otherwise be taken as 0,
            # shown back as "0.00" under the cursor, and segment the reference each time.
            spin.setKeyboardTracking(False)
            spin.valueChanged.connect(self._emit)
        for combo in (self.point_mode, self.window, self.alignment, self.detect):
            combo.currentTextChanged.connect(self._emit)
        for box in (self.match_reference, self.missing_features, self.differences):
            box.toggled.connect(self._emit)

    def show_recipe(self, recipe: Recipe | None) -> None:
        """Display ``recipe`` without emitting edits (no echo back into the undo stack)."""
        self._recipe = recipe
        self.setEnabled(recipe is not None)
        if recipe is None:
            return
        self._updating = True
        try:
            self.name.setText(recipe.name)
            self.weights.setText(recipe.model.weights)
            self.imgsz.setValue(recipe.model.imgsz)
            self.conf.setValue(recipe.model.conf)
            self.iou.setValue(recipe.model.iou)
            self.point_mode.setCurrentText(recipe.model.point_mode)
            self.window.setCurrentText(recipe.model.window)
            self.alignment.setCurrentText(recipe.alignment.method)
            self.min_area.setValue(recipe.defects.min_area)
            self.max_area.setValue(recipe.defects.max_area)
            self.allowed.setValue(recipe.defects.allowed)
            self.detect.setCurrentText(recipe.defects.detect)
            self.match_reference.setChecked(recipe.defects.match_reference)
            self.missing_features.setChecked(recipe.defects.missing_features)
            self.changed_fraction.setValue(recipe.defects.changed_fraction)
            self.differences.setChecked(recipe.defects.differences)
            self.classes.setText(", ".join(recipe.defects.classes))
            self.negative_classes.setText(", ".join(recipe.defects.negative_classes))
            self.class_threshold.setValue(recipe.defects.class_threshold)
        finally:
            self._updating = False

    def _emit(self) -> None:
        if self._updating or self._recipe is None:
            return
        r = self._recipe
        classes = _names(self.classes.text())
        new = replace(
            r,
            name=self.name.text().strip() or r.name,
            model=replace(
                r.model,
                weights=self.weights.text().strip() or r.model.weights,
                imgsz=self.imgsz.value(),
                conf=self.conf.value(),
                iou=self.iou.value(),
                point_mode=self.point_mode.currentText(),
                window=self.window.currentText(),
            ),
            alignment=replace(r.alignment, method=self.alignment.currentText()),
            defects=replace(
                r.defects,
                min_area=self.min_area.value(),
                max_area=self.max_area.value(),
                allowed=self.allowed.value(),
                detect=self.detect.currentText(),
                match_reference=self.match_reference.isChecked(),
                missing_features=self.missing_features.isChecked(),
                changed_fraction=self.changed_fraction.value(),
                differences=self.differences.isChecked(),
                classes=classes,
                negative_classes=_names(self.negative_classes.text()),
                class_threshold=self.class_threshold.value(),
            ),
        )
        if new != r:
            self.edited.emit(new, self._describe(r, new))

    def _describe(self, old: Recipe, new: Recipe) -> str:
        """The edit's name in the undo list: the field and its new value when one changed."""

        def value(recipe: Recipe, name: str):
            section, _, attribute = name.partition(".")
            return recipe.name if name == "product.name" else getattr(getattr(recipe, section), attribute)

        changed = [name for name in self.fields if value(old, name) != value(new, name)]
        if len(changed) != 1:
            return "edit settings"
        (name,) = changed
        shown = value(new, name)
        if isinstance(shown, tuple):
            shown = ", ".join(shown) or "none"
        elif isinstance(shown, bool):
            shown = "on" if shown else "off"
        elif isinstance(shown, float):
            shown = f"{shown:g}"
        return f"set {self._labels[name]} to {shown}"

    def show_errors(self, problems: list[str]) -> None:
        """Mark the fields named in validation messages ("field: message") and explain on hover."""
        by_field: dict[str, list[str]] = {}
        for problem in problems:
            field, _, text = problem.partition(": ")
            by_field.setdefault(field.split("[")[0], []).append(text or problem)
        for name, widget in self.fields.items():
            messages = by_field.get(name)
            widget.setStyleSheet(_ERROR_STYLE if messages else "")
            widget.setToolTip("\n".join(messages) if messages else HELP[name])
