"""What each colour over the reference means, in one row under the image."""

from __future__ import annotations

from PySide6.QtWidgets import QHBoxLayout, QLabel, QWidget

from inspector.gui import render

# (colour, name, what it means): the palette of engine/overlay.py, said in words.
ENTRIES = (
    (render.PART, "Part", "The part: defects are searched inside it (part boxes and foreground points)"),
    (render.NORMAL, "Normal surface", "Segments the normal points mark: never a defect"),
    (
        render.FEATURE,
        "Feature",
        "A segment the good part shows: held against each image, it is no defect where the image shows it too "
        "(Reference on)",
    ),
    (
        render.CANDIDATE,
        "Candidate defect",
        "A segment the rules would report as a defect wherever an image shows it (Reference off)",
    ),
    (render.IGNORED, "Ignore box", "Nothing inside is reported"),
    (render.DEFECT, "Background point", "A place that is not the part"),
)


class Legend(QWidget):
    """A coloured swatch and a name for each colour; hover a name for its meaning."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        self.labels: dict[str, QLabel] = {}
        for (b, g, r), name, meaning in ENTRIES:
            label = QLabel(f'<span style="color:rgb({r},{g},{b})">&#9632;</span>&nbsp;{name}', toolTip=meaning)
            row.addWidget(label)
            self.labels[name] = label
        row.addStretch(1)
