"""An image view with zoom (wheel at the cursor, fit, 1:1), pan, an overlay picture and
prompt markers.

Masks and outlines come as one overlay picture made off the GUI thread. Prompt markers
(points, boxes) are scene items of a constant size on screen, whatever the zoom and the
image's size; a point can be dragged to another place and a box resized by its corners,
each reported once, when the button is released.
"""

from __future__ import annotations

import cv2
import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QImage, QMouseEvent, QPainter, QPen, QPixmap, QWheelEvent
from PySide6.QtWidgets import (
    QGraphicsEllipseItem,
    QGraphicsItem,
    QGraphicsPixmapItem,
    QGraphicsRectItem,
    QGraphicsScene,
    QGraphicsView,
)

POINT_RADIUS = 6  # on screen, in device-independent pixels, at every zoom
HANDLE_SIZE = 8  # a box's corner handle, on screen
GRAB_DISTANCE = 9  # how near (on screen) a press must be to a point or handle to grab it
DRAG_START = 4  # how far (on screen) the mouse moves before a press is a drag

PointMarker = tuple[str, int, float, float, tuple[int, int, int]]  # kind, index, x, y, BGR colour
BoxMarker = tuple[str, int, tuple[float, float, float, float], tuple[int, int, int]]  # kind, index, box, BGR


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


def _colour(bgr: tuple[int, int, int]) -> QColor:
    return QColor(bgr[2], bgr[1], bgr[0])


def _fixed_size(item: QGraphicsItem) -> QGraphicsItem:
    item.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations)
    item.setZValue(3)
    return item


class ImageView(QGraphicsView):
    """Shows one image with an overlay and prompt markers; reports clicks and drags in
    image pixels.

    Signals:
        clicked(x, y, button): a click without drag (button: Qt.MouseButton value).
        dragged(x1, y1, x2, y2): a left-button drag, as a box in image pixels.
        point_moved(kind, index, x, y): a point marker dragged to (x, y).
        box_resized(kind, index, x1, y1, x2, y2): a box marker resized by a corner.
    """

    clicked = Signal(float, float, int)
    dragged = Signal(float, float, float, float)
    point_moved = Signal(str, int, float, float)
    box_resized = Signal(str, int, float, float, float, float)

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
        # The wheel keeps the image point under the cursor in place itself (wheelEvent):
        # Qt's own anchor follows the cursor only as far as mouse moves reached it.
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.NoAnchor)
        self.setBackgroundBrush(QColor(40, 40, 40))
        self.setDragMode(QGraphicsView.DragMode.NoDrag)
        self._press: QPointF | None = None
        self._pan_from: QPointF | None = None
        self._fit = True
        self.image_size: tuple[int, int] | None = None
        self._markers: list[QGraphicsItem] = []
        self._points: list[tuple[str, int, QGraphicsEllipseItem]] = []
        self._boxes: list[tuple[str, int, QGraphicsRectItem, list[QGraphicsRectItem]]] = []
        self._grab: tuple | None = None  # ("point", kind, index, item) or ("box", kind, index, fixed corner)
        self._press_at: QPointF | None = None  # where (on screen) the press was, to tell a drag

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

    def set_markers(self, points: list[PointMarker], boxes: list[BoxMarker]) -> None:
        """Prompt markers in image pixels, drawn at a constant size on screen."""
        for item in self._markers:
            self._scene.removeItem(item)
        self._markers, self._points, self._boxes = [], [], []
        for kind, index, (x1, y1, x2, y2), bgr in boxes:
            pen = QPen(_colour(bgr), 2)
            pen.setCosmetic(True)  # as wide on screen at every zoom
            rect = QGraphicsRectItem(QRectF(QPointF(x1, y1), QPointF(x2, y2)).normalized())
            rect.setPen(pen)
            rect.setZValue(2)
            handles = []
            for corner in self._corners(rect.rect()):
                half = HANDLE_SIZE / 2
                handle = _fixed_size(QGraphicsRectItem(-half, -half, HANDLE_SIZE, HANDLE_SIZE))
                handle.setBrush(QBrush(_colour(bgr)))
                handle.setPen(QPen(QColor(255, 255, 255), 1))
                handle.setPos(corner)
                handles.append(handle)
            self._boxes.append((kind, index, rect, handles))
            self._markers += [rect, *handles]
        for kind, index, x, y, bgr in points:
            r = POINT_RADIUS
            dot = _fixed_size(QGraphicsEllipseItem(-r, -r, 2 * r, 2 * r))
            dot.setBrush(QBrush(_colour(bgr)))
            dot.setPen(QPen(QColor(255, 255, 255), 2))
            dot.setPos(x + 0.5, y + 0.5)  # the middle of the pixel the prompt names
            self._points.append((kind, index, dot))
            self._markers.append(dot)
        for item in self._markers:
            self._scene.addItem(item)

    @property
    def markers(self) -> list[QGraphicsItem]:
        """The prompt markers on show (boxes, their handles, points)."""
        return list(self._markers)

    @staticmethod
    def _corners(rect: QRectF) -> list[QPointF]:
        return [rect.topLeft(), rect.topRight(), rect.bottomRight(), rect.bottomLeft()]

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
        """Zoom keeping the image point under the cursor where it is."""
        if event.angleDelta().y() == 0:
            return
        at = event.position()
        before = self.mapToScene(at.toPoint())
        self.zoom(1.25 if event.angleDelta().y() > 0 else 0.8)
        moved = self.mapFromScene(before) - at.toPoint()
        self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() + moved.x())
        self.verticalScrollBar().setValue(self.verticalScrollBar().value() + moved.y())
        event.accept()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if self._fit:
            self.fit()

    # -- mouse -----------------------------------------------------------------------------

    def _image_point(self, event: QMouseEvent) -> QPointF:
        return self.mapToScene(event.position().toPoint())

    def _grabbed(self, at: QPointF) -> tuple | None:
        """The point marker, else the box corner, within reach of ``at`` (on screen)."""

        def near(scene_point: QPointF) -> bool:
            return (QPointF(self.mapFromScene(scene_point)) - at).manhattanLength() <= GRAB_DISTANCE

        for kind, index, dot in reversed(self._points):  # the one drawn on top first
            if near(dot.pos()):
                return ("point", kind, index, dot)
        for kind, index, rect, _ in reversed(self._boxes):
            corners = self._corners(rect.rect())
            for k, corner in enumerate(corners):
                if near(corner):
                    return ("box", kind, index, corners[(k + 2) % 4])
        return None

    def _clamped(self, point: QPointF) -> QPointF:
        w, h = self.image_size or (0, 0)
        return QPointF(min(max(point.x(), 0.0), w), min(max(point.y(), 0.0), h))

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.MiddleButton or (
            event.button() == Qt.MouseButton.LeftButton and event.modifiers() & Qt.KeyboardModifier.ShiftModifier
        ):
            self._pan_from = event.position()
            return
        self._press = self._image_point(event)
        self._press_button = event.button()
        self._press_at = event.position()
        self._grab = self._grabbed(event.position()) if event.button() == Qt.MouseButton.LeftButton else None

    def _dragging(self, event: QMouseEvent) -> bool:
        return self._press_at is not None and (event.position() - self._press_at).manhattanLength() > DRAG_START

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        super().mouseMoveEvent(event)  # the view keeps track of the cursor
        if self._pan_from is not None:
            delta = event.position() - self._pan_from
            self._pan_from = event.position()
            self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() - int(delta.x()))
            self.verticalScrollBar().setValue(self.verticalScrollBar().value() - int(delta.y()))
            return
        if self._grab is not None:
            if self._dragging(event):
                self._drag_marker(self._clamped(self._image_point(event)))
            return
        if self._press is not None and self._press_button == Qt.MouseButton.LeftButton:
            self._rubber.setRect(QRectF(self._press, self._image_point(event)).normalized())
            self._rubber.setVisible(True)

    def _drag_marker(self, to: QPointF) -> None:
        """Show the grabbed marker where the mouse is; the edit comes on release."""
        if self._grab[0] == "point":
            self._grab[3].setPos(to)
            return
        _, kind, index, fixed = self._grab
        for k, i, rect, handles in self._boxes:
            if (k, i) == (kind, index):
                rect.setRect(QRectF(fixed, to).normalized())
                for handle, corner in zip(handles, self._corners(rect.rect()), strict=True):
                    handle.setPos(corner)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if self._pan_from is not None:
            self._pan_from = None
            return
        grab, self._grab = self._grab, None
        if self._press is None or self.image_size is None:
            self._press = None
            return
        if grab is not None and self._dragging(event):
            self._press = None
            self._release_marker(grab, self._clamped(self._image_point(event)))
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

    def _release_marker(self, grab: tuple, to: QPointF) -> None:
        w, h = self.image_size
        if grab[0] == "point":
            _, kind, index, _ = grab
            self.point_moved.emit(kind, index, min(to.x(), w - 1), min(to.y(), h - 1))
            return
        _, kind, index, fixed = grab
        box = QRectF(fixed, to).normalized()
        self.box_resized.emit(kind, index, box.left(), box.top(), box.right(), box.bottom())
