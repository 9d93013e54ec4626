"""An image view with zoom (wheel, fit, 1:1), pan, and layers drawn over the image.

Layers are plain data (masks, outlines, points, boxes) turned into one overlay pixmap,
so redrawing after a prompt change costs a repaint, not a model run.
"""

from __future__ import annotations

import cv2
import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QImage, QMouseEvent, QPainter, QPen, QPixmap, QWheelEvent
from PySide6.QtWidgets import QGraphicsPixmapItem, QGraphicsRectItem, QGraphicsScene, QGraphicsView


def qimage_from_bgr(image: np.ndarray) -> QImage:
    """A QImage that owns a copy of a (H, W, 3) BGR or (H, W, 4) BGRA uint8 array.

    It comes in the formats raster pixmaps keep (RGB32, premultiplied ARGB32), so
    ``QPixmap.fromImage`` shares its pixels instead of converting them on the GUI thread.
    """
    h, w = image.shape[:2]
    if image.ndim == 3 and image.shape[2] == 4:
        rgba = cv2.cvtColor(image, cv2.COLOR_BGRA2RGBA)
        source = QImage(rgba.data, w, h, 4 * w, QImage.Format.Format_RGBA8888)
        return source.convertToFormat(QImage.Format.Format_ARGB32_Premultiplied)
    bgr = np.ascontiguousarray(image)
    return QImage(bgr.data, w, h, 3 * w, QImage.Format.Format_BGR888).convertToFormat(QImage.Format.Format_RGB32)


class ImageView(QGraphicsView):
    """Shows one image with an overlay; reports clicks and drags in image pixels.

    Signals:
        clicked(x, y, button): a click without drag (button: Qt.MouseButton value).
        dragged(x1, y1, x2, y2): a left-button drag, as a box in image pixels.
    """

    clicked = Signal(float, float, int)
    dragged = Signal(float, float, float, float)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._scene = QGraphicsScene(self)
        self.setScene(self._scene)
        self._image_item = QGraphicsPixmapItem()
        self._overlay_item = QGraphicsPixmapItem()
        self._image_item.setTransformationMode(Qt.TransformationMode.SmoothTransformation)
        self._scene.addItem(self._image_item)
        self._scene.addItem(self._overlay_item)
        self._rubber = QGraphicsRectItem()
        self._rubber.setPen(QPen(QColor(255, 255, 255), 0, Qt.PenStyle.DashLine))
        self._rubber.setVisible(False)
        self._scene.addItem(self._rubber)
        self.setRenderHints(QPainter.RenderHint.Antialiasing | QPainter.RenderHint.SmoothPixmapTransform)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setBackgroundBrush(QColor(40, 40, 40))
        self.setDragMode(QGraphicsView.DragMode.NoDrag)
        self._press: QPointF | None = None
        self._pan_from: QPointF | None = None
        self._fit = True
        self.image_size: tuple[int, int] | None = None

    # -- content -----------------------------------------------------------------------

    def set_image(self, image: np.ndarray | QImage | None) -> None:
        """A BGR array, or a QImage from ``qimage_from_bgr`` (made on a worker thread), or None."""
        if image is None:
            self._image_item.setPixmap(QPixmap())
            self._overlay_item.setPixmap(QPixmap())
            self.image_size = None
            return
        if not isinstance(image, QImage):
            image = qimage_from_bgr(image)
        new_size = (image.width(), image.height())
        self._image_item.setPixmap(QPixmap.fromImage(image))
        self._scene.setSceneRect(QRectF(0, 0, *new_size))
        if new_size != self.image_size:
            self.image_size = new_size
            self._overlay_item.setPixmap(QPixmap())
            self.fit()
        elif self._fit:
            self.fit()

    def set_overlay(self, rgba: np.ndarray | QImage | None) -> None:
        """An (H, W, 4) BGRA overlay the size of the image (or its ``qimage_from_bgr``), or None."""
        if rgba is not None and not isinstance(rgba, QImage):
            rgba = qimage_from_bgr(rgba)
        self._overlay_item.setPixmap(QPixmap() if rgba is None else QPixmap.fromImage(rgba))

    @property
    def overlay(self) -> QImage:
        """What is drawn over the image (an empty image when nothing is)."""
        return self._overlay_item.pixmap().toImage()

    # -- zoom and pan --------------------------------------------------------------------

    def fit(self) -> None:
        self._fit = True
        if self.image_size:
            self.fitInView(self._scene.sceneRect(), Qt.AspectRatioMode.KeepAspectRatio)

    def actual_size(self) -> None:
        self._fit = False
        self.resetTransform()

    def zoom(self, factor: float) -> None:
        self._fit = False
        scale = self.transform().m11() * factor
        if 0.02 < scale < 64:
            self.scale(factor, factor)

    @property
    def zoom_level(self) -> float:
        return self.transform().m11()

    def wheelEvent(self, event: QWheelEvent) -> None:
        self.zoom(1.25 if event.angleDelta().y() > 0 else 0.8)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if self._fit:
            self.fit()

    # -- mouse -----------------------------------------------------------------------------

    def _image_point(self, event: QMouseEvent) -> QPointF:
        return self.mapToScene(event.position().toPoint())

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.MiddleButton or (
            event.button() == Qt.MouseButton.LeftButton and event.modifiers() & Qt.KeyboardModifier.ShiftModifier
        ):
            self._pan_from = event.position()
            return
        self._press = self._image_point(event)
        self._press_button = event.button()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if self._pan_from is not None:
            delta = event.position() - self._pan_from
            self._pan_from = event.position()
            self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() - int(delta.x()))
            self.verticalScrollBar().setValue(self.verticalScrollBar().value() - int(delta.y()))
            return
        if self._press is not None and self._press_button == Qt.MouseButton.LeftButton:
            self._rubber.setRect(QRectF(self._press, self._image_point(event)).normalized())
            self._rubber.setVisible(True)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if self._pan_from is not None:
            self._pan_from = None
            return
        if self._press is None or self.image_size is None:
            self._press = None
            return
        end = self._image_point(event)
        start, self._press = self._press, None
        self._rubber.setVisible(False)
        w, h = self.image_size
        if (end - start).manhattanLength() * self.zoom_level > 6 and self._press_button == Qt.MouseButton.LeftButton:
            x1, x2 = sorted((min(max(start.x(), 0), w), min(max(end.x(), 0), w)))
            y1, y2 = sorted((min(max(start.y(), 0), h), min(max(end.y(), 0), h)))
            if x2 - x1 >= 2 and y2 - y1 >= 2:
                self.dragged.emit(x1, y1, x2, y2)
        elif 0 <= start.x() < w and 0 <= start.y() < h:
            self.clicked.emit(start.x(), start.y(), int(self._press_button.value))
