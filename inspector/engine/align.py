"""Registration of each image to the recipe's reference image (ORB + RANSAC homography).

Recipe coordinates are reference pixels; warping every image into the reference frame
lets them follow a part that moved or turned. Reference features are taken on the part
only, so a fixed background cannot pull the registration to the identity.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import cached_property

import cv2
import numpy as np

from inspector.engine.image import reduction_of
from inspector.errors import EngineError

WORK_SIDE = 800  # features are found on images scaled to at most this side
_MIN_SIDE = 32  # below this, ORB finds nothing to match
_MIN_CORRELATION = 0.4  # edge-image ECC: wrong registrations score under 0.2, right ones 0.45 and up
# ECC that lines the part's edges up this well is right even far from the feature
# estimate: matches on a background that does not move can outvote the part's own.
_SURE_CORRELATION = 0.8
# ECC pyramid levels: (scale of the working image, most iterations). Refining a feature
# registration starts close; registering by edges alone starts from a shift only.
_REFINE_LEVELS = ((0.5, 30), (1.0, 8))
_EDGE_LEVELS = ((0.5, 100), (1.0, 100))
# A refinement whose half-scale level already lines the edges up this well is within
# about 0.4 px of what the full-scale level would give (measured on 100 demo parts: 0.13
# px on average), and the full-scale level costs more than the rest of ECC together.
_SETTLED_CORRELATION = 0.9
_MIN_SILHOUETTE_CORRELATION = 0.9  # blurred part masks: a half-overlapping outline scores about 0.6


class AlignmentFailed(EngineError):
    """An image could not be registered to the reference."""


@dataclass(frozen=True)
class Alignment:
    """``matrix`` maps image pixels to reference pixels; ``fine`` says it does so to about
    a pixel (features, or edges that line up convincingly), so that the image's pixels
    can be compared with the reference's; ``method`` which step registered it
    ("features", or "intensity" for a plain part registered by its edges)."""

    matrix: np.ndarray
    fine: bool
    method: str = "features"


def _edges(gray: np.ndarray) -> np.ndarray:
    """Gradient magnitude, lightly blurred: outlines weigh more than flat areas, so a part
    that lost a print still registers by its shape."""
    smooth = cv2.GaussianBlur(gray, (0, 0), 1.5).astype(np.float32)
    magnitude = cv2.magnitude(cv2.Sobel(smooth, cv2.CV_32F, 1, 0), cv2.Sobel(smooth, cv2.CV_32F, 0, 1))
    return cv2.GaussianBlur(magnitude, (0, 0), 2.0)


_EDGE_REACH = 16  # pixels of context an edge pixel depends on (the two blurs and Sobel)


def _edges_in(gray: np.ndarray, x: int, y: int, width: int, height: int) -> np.ndarray:
    """``_edges(gray)[y : y + height, x : x + width]``, computed on that window only (with
    the context the blurs need), zero where the window leaves the image."""
    h, w = gray.shape
    x1, y1 = max(0, x - _EDGE_REACH), max(0, y - _EDGE_REACH)
    x2, y2 = min(w, x + width + _EDGE_REACH), min(h, y + height + _EDGE_REACH)
    edges = _edges(gray[y1:y2, x1:x2])[y - y1 : y - y1 + height, x - x1 : x - x1 + width]
    if edges.shape != (height, width):
        edges = cv2.copyMakeBorder(
            edges, 0, height - edges.shape[0], 0, width - edges.shape[1], cv2.BORDER_CONSTANT, value=0
        )
    return edges


def _gray_scaled(image: np.ndarray) -> tuple[np.ndarray, float]:
    """Gray, at most ``WORK_SIDE`` on its longer side, and the scale that took it there."""
    h, w = image.shape[:2]
    scale = min(1.0, WORK_SIDE / max(h, w))
    if scale < 0.5:
        # Big images: pick every k-th pixel down to about twice the working size first
        # (cheap), so that the area average below touches 4 pixels each, not 25.
        step = int(0.5 / scale)
        image = image[::step, ::step]
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    if scale < 1.0:
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        gray = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
    return gray, scale


class ReferenceAligner:
    """Registers images to one reference; the reference features are computed once.

    Args:
        reference: the reference image (BGR).
        region: optional (H, W) bool mask of the reference where features may lie.
        max_features: ORB features per image.
        min_inliers: fewest RANSAC inliers accepted as a registration.
    """

    def __init__(
        self,
        reference: np.ndarray,
        *,
        region: np.ndarray | None = None,
        max_features: int = 1500,
        min_inliers: int = 12,
    ) -> None:
        self.size = (reference.shape[1], reference.shape[0])
        self.min_inliers = min_inliers
        # A low FAST threshold finds corners on plain, printed parts too. Images get
        # several times the reference's budget: their background competes for it.
        self._orb = cv2.ORB_create(nfeatures=max_features, fastThreshold=10)
        self._image_features = 4 * max_features
        self._per_thread = threading.local()  # OpenCV's detectors and matchers are not shared between threads
        self._scaled_templates: dict[float, tuple[np.ndarray, np.ndarray]] = {}  # see _template_at
        gray, self._ref_scale = _gray_scaled(reference)
        mask = None
        if region is not None and region.any():
            grown = cv2.dilate(region.astype(np.uint8) * 255, np.ones((15, 15), np.uint8))
            mask = cv2.resize(grown, (gray.shape[1], gray.shape[0]), interpolation=cv2.INTER_NEAREST)
        self._ref_kp, self._ref_desc = self._orb.detectAndCompute(gray, mask)
        self._ref_gray = gray
        self._ref_shape = reference.shape[:2]
        self._ref_mask = mask if mask is not None else np.full(gray.shape, 255, np.uint8)
        if self._ref_desc is None or len(self._ref_kp) < min_inliers:
            raise AlignmentFailed(
                f"the reference image has only {len(self._ref_kp or [])} distinctive features on the part; "
                "alignment needs a textured part (or set alignment.method: none)"
            )

    def homography(self, image: np.ndarray, *, full_size: tuple[int, int] | None = None) -> np.ndarray:
        """3x3 matrix mapping image pixels to reference pixels (see :meth:`align`)."""
        return self.align(image, full_size=full_size).matrix

    def align(self, image: np.ndarray, *, full_size: tuple[int, int] | None = None) -> Alignment:
        """The image registered to the reference.

        ORB features with RANSAC first; when a plain part offers too few distinctive
        corners, an intensity-based (ECC) registration of the part region, which needs
        no corners, is tried before giving up. ``full_size`` is the (width, height) of
        the image when ``image`` is that image decoded smaller: the matrix is then for
        the full-size pixels.
        """
        height, width = image.shape[:2]
        full_width, full_height = full_size or (width, height)
        if min(full_width, full_height) < _MIN_SIDE:
            raise AlignmentFailed(f"alignment failed: a {full_width}x{full_height} image is too small to align")
        gray, scale = _gray_scaled(image)
        scale /= reduction_of((width, height), (full_width, full_height))  # working pixels per full-size pixel
        same_size = (full_height, full_width) == self._ref_shape
        try:
            matrix = self._features(gray, scale)
        except AlignmentFailed as by_features:
            if not same_size:
                raise AlignmentFailed(
                    f"{by_features}; intensity alignment needs an image of the reference's size"
                ) from None
            try:
                matrix, rho = self._intensity(gray)
            except AlignmentFailed as by_intensity:
                raise AlignmentFailed(f"{by_features}; {by_intensity}") from None
            return Alignment(matrix, fine=rho >= _SURE_CORRELATION, method="intensity")
        if not same_size or abs(matrix[2, :2]).max() > 1e-6:
            return Alignment(matrix, fine=True)  # only affine registrations at the reference's size are refined
        return Alignment(self._refine(gray, matrix), fine=True)

    def from_silhouettes(self, reference_part: np.ndarray, image_part: np.ndarray) -> np.ndarray:
        """Register by the part's outline alone: for a part whose prints are gone.

        ``reference_part`` and ``image_part`` are bool masks of the part (any size,
        scaled to the image sizes they stand for). The start comes from the masks'
        centroids and orientations, ECC on the blurred masks refines it.

        Raises:
            AlignmentFailed: the outlines do not match.
        """
        gray_size = self._ref_gray.shape[::-1]
        ref = _silhouette(reference_part, gray_size)
        img = _silhouette(image_part, gray_size)
        (rx, ry), r_angle = _centroid_orientation(ref)
        (ix, iy), i_angle = _centroid_orientation(img)
        turn = (i_angle - r_angle + 90.0) % 180.0 - 90.0  # an outline is the same turned half a turn
        start = cv2.getRotationMatrix2D((rx, ry), -turn, 1.0)
        start[:, 2] += (ix - rx, iy - ry)
        criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 100, 1e-5)
        try:
            rho, to_image = cv2.findTransformECC(
                ref, img, start.astype(np.float32), cv2.MOTION_EUCLIDEAN, criteria, None, 5
            )
        except cv2.error:
            raise AlignmentFailed("alignment by the part's outline did not converge") from None
        if rho < _MIN_SILHOUETTE_CORRELATION:
            raise AlignmentFailed(f"the part's outline does not match the reference's (correlation {rho:.2f})")
        return np.linalg.inv(self._from_work(np.vstack([to_image, [0, 0, 1]])))

    def _to_work(self, matrix: np.ndarray) -> np.ndarray:
        """A reference-to-image map in pixels, as the same map on the working scale."""
        s = self._ref_scale
        return np.diag([s, s, 1.0]) @ matrix @ np.diag([1 / s, 1 / s, 1.0])

    def _from_work(self, matrix: np.ndarray) -> np.ndarray:
        s = self._ref_scale
        return np.diag([1 / s, 1 / s, 1.0]) @ matrix @ np.diag([s, s, 1.0])

    def _refine(self, gray: np.ndarray, matrix: np.ndarray) -> np.ndarray:
        """Sharpen a feature-based registration with ECC on edges; keep it if ECC disagrees
        without lining the edges up convincingly."""
        try:
            rho, to_image = self._ecc(
                gray,
                self._to_work(np.linalg.inv(matrix)),
                cv2.MOTION_AFFINE,
                _REFINE_LEVELS,
                settled=_SETTLED_CORRELATION,
            )
        except cv2.error:
            return matrix
        if rho < _MIN_CORRELATION:
            return matrix
        refined = np.linalg.inv(self._from_work(to_image))
        sure = rho >= _SURE_CORRELATION
        return refined if sure or _close(refined, matrix, self.size, tolerance=8.0) else matrix

    def _intensity(self, gray: np.ndarray) -> tuple[np.ndarray, float]:
        """Registration by the part's edges alone (ECC), and how well they correlate."""
        start = np.eye(3)
        start[:2, 2] = self._coarse_shift(gray)
        try:
            rho, to_image = self._ecc(gray, start, cv2.MOTION_EUCLIDEAN, _EDGE_LEVELS, eps=1e-5)
        except cv2.error:
            raise AlignmentFailed("intensity alignment did not converge") from None
        if rho < _MIN_CORRELATION:
            raise AlignmentFailed(f"intensity alignment matched poorly (correlation {rho:.2f})")
        return np.linalg.inv(self._from_work(to_image)), float(rho)

    def _ecc(
        self,
        gray: np.ndarray,
        to_image: np.ndarray,
        motion: int,
        levels,
        eps: float = 1e-4,
        settled: float | None = None,
    ):
        """ECC of the reference part's edges against the image's, coarse to fine.

        ``to_image`` maps reference to image on the working scale; the refined map is
        returned with the final correlation. For speed the reference is cropped to the
        part's box and the image to a window of that size where the part is expected
        (pixels the warp takes outside the window do not count); both offsets are folded
        into the warp. Levels after one whose correlation reaches ``settled`` are skipped.
        """
        x0, y0, template, mask = self._part_template
        th, tw = template.shape
        warp = to_image @ _shift(x0, y0)
        u0 = int(np.clip(round(warp[0, 2]), 0, max(0, gray.shape[1] - tw)))
        v0 = int(np.clip(round(warp[1, 2]), 0, max(0, gray.shape[0] - th)))
        window = _edges_in(gray, u0, v0, tw, th)
        warp = (_shift(-u0, -v0) @ warp)[:2].astype(np.float32)
        rho = 0.0
        for factor, iterations in levels:
            level = warp.copy()
            level[:, 2] *= factor
            t, m, g = template, mask, window
            if factor != 1.0:
                t, m = self._template_at(factor)
                g = cv2.resize(window, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
            criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, iterations, eps)
            rho, level = cv2.findTransformECC(t, g, level, motion, criteria, m, 5)
            warp = level.copy()
            warp[:, 2] /= factor
            if settled is not None and rho >= settled:
                break
        return rho, _shift(u0, v0) @ np.vstack([warp, [0, 0, 1]]) @ _shift(-x0, -y0)

    def _template_at(self, factor: float) -> tuple[np.ndarray, np.ndarray]:
        """The part template and its mask scaled by ``factor`` (made once per factor)."""
        scaled = self._scaled_templates.get(factor)
        if scaled is None:
            _, _, template, mask = self._part_template
            scaled = tuple(
                cv2.resize(a, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA) for a in (template, mask)
            )
            self._scaled_templates[factor] = scaled
        return scaled

    @cached_property
    def _part_template(self) -> tuple[int, int, np.ndarray, np.ndarray]:
        """The reference's edge image and mask, cropped to the part's box with a margin."""
        ys, xs = np.nonzero(self._ref_mask)
        h, w = self._ref_gray.shape
        x0, y0 = max(0, int(xs.min()) - 16), max(0, int(ys.min()) - 16)
        x1, y1 = min(w, int(xs.max()) + 17), min(h, int(ys.max()) + 17)
        return x0, y0, _edges(self._ref_gray)[y0:y1, x0:x1], self._ref_mask[y0:y1, x0:x1]

    def _coarse_shift(self, gray: np.ndarray) -> np.ndarray:
        """Where the reference's part region lies in ``gray``, as a shift (template matching
        at half the working scale: ECC's first level, also at half scale, takes it from
        there)."""
        x0, y0, template = self._coarse_template
        small = cv2.resize(_edges(gray), None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
        if template.shape[1] >= small.shape[1] or template.shape[0] >= small.shape[0]:
            return np.zeros(2, np.float32)  # the part fills the image: start from no shift
        scores = cv2.matchTemplate(small, template, cv2.TM_CCOEFF_NORMED)
        _, _, _, (bx, by) = cv2.minMaxLoc(scores)
        return np.float32([2 * bx - x0, 2 * by - y0])

    @cached_property
    def _coarse_template(self) -> tuple[int, int, np.ndarray]:
        """The reference part's box (even corner) and its edges at half the working scale."""
        ys, xs = np.nonzero(self._ref_mask)
        x0, y0 = int(xs.min()) // 2 * 2, int(ys.min()) // 2 * 2
        x1, y1 = int(xs.max()) + 1, int(ys.max()) + 1
        edges = _edges(self._ref_gray)[y0:y1, x0:x1]
        return x0, y0, cv2.resize(edges, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)

    def _detector(self) -> tuple[cv2.ORB, cv2.BFMatcher]:
        """This thread's ORB detector and matcher (images may be registered on several)."""
        local = self._per_thread
        if not hasattr(local, "orb"):
            local.orb = cv2.ORB_create(nfeatures=self._image_features, fastThreshold=10)
            local.matcher = cv2.BFMatcher(cv2.NORM_HAMMING)
        return local.orb, local.matcher

    def _features(self, gray: np.ndarray, scale: float) -> np.ndarray:
        orb, matcher = self._detector()
        kp, desc = orb.detectAndCompute(gray, None)
        if desc is None or len(kp) < self.min_inliers:
            raise AlignmentFailed(f"alignment failed: only {len(kp or [])} features found in the image")
        pairs = matcher.knnMatch(desc, self._ref_desc, k=2)
        good = [p[0] for p in pairs if len(p) == 2 and p[0].distance < 0.75 * p[1].distance]
        if len(good) < self.min_inliers:
            raise AlignmentFailed(f"alignment failed: {len(good)} matching features (need {self.min_inliers})")
        src = np.float32([kp[m.queryIdx].pt for m in good]) / scale
        dst = np.float32([self._ref_kp[m.trainIdx].pt for m in good]) / self._ref_scale
        # A part on a line shifts, turns and (with focus) scales a little: a 4-degree-of-
        # freedom similarity is far harder for stray matches to fool than a full
        # homography. The homography is then fitted on the similarity's inliers only,
        # which adds perspective where the camera is not square to the belt.
        similarity, inliers = cv2.estimateAffinePartial2D(src, dst, method=cv2.RANSAC, ransacReprojThreshold=3.0)
        count = int(inliers.sum()) if inliers is not None else 0
        if similarity is None or count < self.min_inliers:
            raise AlignmentFailed(f"alignment failed: {count} consistent matches (need {self.min_inliers})")
        scale_change = float(np.sqrt(abs(np.linalg.det(similarity[:, :2]))))
        if not 0.5 < scale_change < 2.0:
            raise AlignmentFailed(f"alignment failed: implausible transform (scale {scale_change:.2f})")
        matrix = np.vstack([similarity, [0.0, 0.0, 1.0]])
        keep = inliers.ravel().astype(bool)
        if count >= 4 * self.min_inliers:
            refined, _ = cv2.findHomography(src[keep], dst[keep], 0)
            if refined is not None and _close(refined, matrix, self.size):
                matrix = refined
        return matrix

    def warp(
        self,
        image: np.ndarray,
        matrix: np.ndarray,
        *,
        scale: float = 1.0,
        window: tuple[int, int, int, int] | None = None,
    ) -> np.ndarray:
        """The image in the reference frame (see :func:`warp_into`)."""
        return warp_into(image, matrix, self.size, scale=scale, window=window)


def warp_into(
    image: np.ndarray,
    matrix: np.ndarray,
    size: tuple[int, int],
    *,
    scale: float = 1.0,
    window: tuple[int, int, int, int] | None = None,
) -> np.ndarray:
    """The image in a reference frame of ``size`` (width, height) that ``matrix`` maps it
    to (edges replicated, not black).

    With ``window`` (x1, y1, x2, y2 in reference pixels) only that part of the frame;
    with ``scale`` the result is resized by that factor in the same pass: the cost
    follows the output's size, not the image's.
    """
    x1, y1, x2, y2 = window if window is not None else (0, 0, *size)
    w, h = x2 - x1, y2 - y1
    out = (max(1, round(w * scale)), max(1, round(h * scale)))
    to_output = np.diag([out[0] / w, out[1] / h, 1.0]) @ _shift(-x1, -y1)
    return cv2.warpPerspective(image, to_output @ matrix, out, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def _silhouette(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A part mask at the working size, blurred so that ECC has a slope to follow."""
    resized = cv2.resize(mask.astype(np.float32), size, interpolation=cv2.INTER_LINEAR)
    return cv2.GaussianBlur(resized, (0, 0), 3.0)


def _centroid_orientation(image: np.ndarray) -> tuple[tuple[float, float], float]:
    """Centre of mass and principal-axis angle (degrees) of a weight image."""
    m = cv2.moments(image)
    if m["m00"] <= 0:
        raise AlignmentFailed("alignment failed: no part outline to align")
    cx, cy = m["m10"] / m["m00"], m["m01"] / m["m00"]
    angle = 0.5 * np.degrees(np.arctan2(2 * m["mu11"], m["mu20"] - m["mu02"]))
    return (cx, cy), float(angle)


def _shift(dx: float, dy: float) -> np.ndarray:
    """The 3x3 translation by (dx, dy)."""
    return np.array([[1.0, 0.0, dx], [0.0, 1.0, dy], [0.0, 0.0, 1.0]])


def _close(a: np.ndarray, b: np.ndarray, size: tuple[int, int], tolerance: float = 4.0) -> bool:
    """Whether two transforms move the corners of an image of ``size`` to within ``tolerance`` px."""
    w, h = size
    corners = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    return float(np.abs(transform_points(corners, a) - transform_points(corners, b)).max()) < tolerance


def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a homography to (K, 2) points."""
    if len(points) == 0:
        return np.asarray(points, np.float32).reshape(0, 2)
    return cv2.perspectiveTransform(np.asarray(points, np.float32).reshape(-1, 1, 2), matrix).reshape(-1, 2)
