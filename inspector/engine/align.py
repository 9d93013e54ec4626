"""Registration of each image to the recipe's reference image (ORB + RANSAC homography).

Recipe coordinates are reference pixels; warping every image into the reference frame
lets them follow a part that moved or turned. Reference features are taken on the part
only, so a fixed background cannot pull the registration to the identity.
"""

from __future__ import annotations

import cv2
import numpy as np

from inspector.errors import EngineError

_WORK_SIDE = 800  # features are found on images scaled to at most this side
_MIN_SIDE = 32  # below this, ORB finds nothing to match
_MIN_CORRELATION = 0.4  # edge-image ECC: wrong registrations score under 0.2, right ones 0.45 and up


class AlignmentFailed(EngineError):
    """An image could not be registered to the reference."""


def _edges(gray: np.ndarray) -> np.ndarray:
    """Gradient magnitude, lightly blurred: outlines weigh more than flat areas, so a part
    that lost a print still registers by its shape."""
    smooth = cv2.GaussianBlur(gray, (0, 0), 1.5).astype(np.float32)
    magnitude = cv2.magnitude(cv2.Sobel(smooth, cv2.CV_32F, 1, 0), cv2.Sobel(smooth, cv2.CV_32F, 0, 1))
    return cv2.GaussianBlur(magnitude, (0, 0), 2.0)


def _gray_scaled(image: np.ndarray) -> tuple[np.ndarray, float]:
    """Gray, at most ``_WORK_SIDE`` on its longer side, and the scale that took it there."""
    h, w = image.shape[:2]
    scale = min(1.0, _WORK_SIDE / max(h, w))
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
        self._image_orb = cv2.ORB_create(nfeatures=4 * max_features, fastThreshold=10)
        self._matcher = cv2.BFMatcher(cv2.NORM_HAMMING)
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

    def homography(self, image: np.ndarray) -> np.ndarray:
        """3x3 matrix mapping image pixels to reference pixels.

        ORB features with RANSAC first; when a plain part offers too few distinctive
        corners, an intensity-based (ECC) registration of the part region, which needs
        no corners, is tried before giving up.
        """
        if min(image.shape[:2]) < _MIN_SIDE:
            raise AlignmentFailed(f"alignment failed: a {image.shape[1]}x{image.shape[0]} image is too small to align")
        try:
            matrix = self._features(image)
        except AlignmentFailed as by_features:
            try:
                return self._intensity(image)
            except AlignmentFailed as by_intensity:
                raise AlignmentFailed(f"{by_features}; {by_intensity}") from None
        return self._refine(image, matrix)

    def _refine(self, image: np.ndarray, matrix: np.ndarray) -> np.ndarray:
        """Sharpen a feature-based registration with ECC on edges; keep it if ECC disagrees."""
        if image.shape[:2] != self._ref_shape or abs(matrix[2, :2]).max() > 1e-6:
            return matrix  # only affine registrations at the reference's size are refined
        gray, _ = _gray_scaled(image)
        s = self._ref_scale
        to_image = np.diag([s, s, 1.0]) @ np.linalg.inv(matrix) @ np.diag([1 / s, 1 / s, 1.0])
        warp = to_image[:2].astype(np.float32)
        criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 50, 1e-5)
        try:
            rho, warp = cv2.findTransformECC(
                _edges(self._ref_gray), _edges(gray), warp, cv2.MOTION_AFFINE, criteria, self._ref_mask, 5
            )
        except cv2.error:
            return matrix
        if rho < _MIN_CORRELATION:
            return matrix
        refined = np.linalg.inv(np.diag([1 / s, 1 / s, 1.0]) @ np.vstack([warp, [0, 0, 1]]) @ np.diag([s, s, 1.0]))
        return refined if _close(refined, matrix, self.size, tolerance=8.0) else matrix

    def _intensity(self, image: np.ndarray) -> np.ndarray:
        if image.shape[:2] != self._ref_shape:
            raise AlignmentFailed("intensity alignment needs an image of the reference's size")
        gray, _ = _gray_scaled(image)
        warp = np.eye(2, 3, dtype=np.float32)
        warp[:, 2] = self._coarse_shift(gray)
        criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 100, 1e-5)
        rho = 0.0
        for factor in (0.5, 1.0):  # coarse to fine
            template = _edges(cv2.resize(self._ref_gray, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA))
            mask = cv2.resize(self._ref_mask, (template.shape[1], template.shape[0]), interpolation=cv2.INTER_NEAREST)
            target = _edges(cv2.resize(gray, (template.shape[1], template.shape[0]), interpolation=cv2.INTER_AREA))
            level = warp.copy()
            level[:, 2] *= factor
            try:
                rho, level = cv2.findTransformECC(template, target, level, cv2.MOTION_EUCLIDEAN, criteria, mask, 5)
            except cv2.error:
                raise AlignmentFailed("intensity alignment did not converge") from None
            warp = level.copy()
            warp[:, 2] /= factor
        self.last_correlation = rho
        if rho < _MIN_CORRELATION:
            raise AlignmentFailed(f"intensity alignment matched poorly (correlation {rho:.2f})")
        # ECC maps reference -> image on the working scale; invert and return to pixels.
        s = self._ref_scale
        to_image = np.diag([1 / s, 1 / s, 1.0]) @ np.vstack([warp, [0, 0, 1]]) @ np.diag([s, s, 1.0])
        return np.linalg.inv(to_image)

    def _coarse_shift(self, gray: np.ndarray) -> np.ndarray:
        """Where the reference's part region lies in ``gray``, as a shift (template matching)."""
        ys, xs = np.nonzero(self._ref_mask)
        x0, y0, x1, y1 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
        if x1 - x0 >= gray.shape[1] or y1 - y0 >= gray.shape[0]:
            return np.zeros(2, np.float32)  # the part fills the image: start from no shift
        scores = cv2.matchTemplate(_edges(gray), _edges(self._ref_gray)[y0:y1, x0:x1], cv2.TM_CCOEFF_NORMED)
        _, _, _, (bx, by) = cv2.minMaxLoc(scores)
        return np.float32([bx - x0, by - y0])

    def _features(self, image: np.ndarray) -> np.ndarray:
        gray, scale = _gray_scaled(image)
        kp, desc = self._image_orb.detectAndCompute(gray, None)
        if desc is None or len(kp) < self.min_inliers:
            raise AlignmentFailed(f"alignment failed: only {len(kp or [])} features found in the image")
        pairs = self._matcher.knnMatch(desc, self._ref_desc, k=2)
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

    def warp(self, image: np.ndarray, matrix: np.ndarray, *, scale: float = 1.0) -> np.ndarray:
        """The image in the reference frame (edges replicated, not black).

        With ``scale`` < 1 the result is the reference frame shrunk by that factor, made
        in one pass: the cost follows the output's size, not the image's.
        """
        w, h = self.size
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        shrink = np.diag([size[0] / w, size[1] / h, 1.0])
        return cv2.warpPerspective(
            image, shrink @ matrix, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        )


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
