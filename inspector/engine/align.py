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


class AlignmentFailed(EngineError):
    """An image could not be registered to the reference."""


def _gray_scaled(image: np.ndarray) -> tuple[np.ndarray, float]:
    scale = min(1.0, _WORK_SIDE / max(image.shape[:2]))
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    if scale < 1.0:
        gray = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
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
        self._orb = cv2.ORB_create(nfeatures=max_features)
        self._matcher = cv2.BFMatcher(cv2.NORM_HAMMING)
        gray, self._ref_scale = _gray_scaled(reference)
        mask = None
        if region is not None and region.any():
            grown = cv2.dilate(region.astype(np.uint8) * 255, np.ones((15, 15), np.uint8))
            mask = cv2.resize(grown, (gray.shape[1], gray.shape[0]), interpolation=cv2.INTER_NEAREST)
        self._ref_kp, self._ref_desc = self._orb.detectAndCompute(gray, mask)
        if self._ref_desc is None or len(self._ref_kp) < min_inliers:
            raise AlignmentFailed(
                f"the reference image has only {len(self._ref_kp or [])} distinctive features on the part; "
                "alignment needs a textured part (or set alignment.method: none)"
            )

    def homography(self, image: np.ndarray) -> np.ndarray:
        """3x3 matrix mapping image pixels to reference pixels."""
        if min(image.shape[:2]) < _MIN_SIDE:
            raise AlignmentFailed(f"alignment failed: a {image.shape[1]}x{image.shape[0]} image is too small to align")
        gray, scale = _gray_scaled(image)
        kp, desc = self._orb.detectAndCompute(gray, None)
        if desc is None or len(kp) < self.min_inliers:
            raise AlignmentFailed(f"alignment failed: only {len(kp or [])} features found in the image")
        pairs = self._matcher.knnMatch(desc, self._ref_desc, k=2)
        good = [p[0] for p in pairs if len(p) == 2 and p[0].distance < 0.8 * p[1].distance]
        if len(good) < self.min_inliers:
            raise AlignmentFailed(f"alignment failed: {len(good)} matching features (need {self.min_inliers})")
        src = np.float32([kp[m.queryIdx].pt for m in good]) / scale
        dst = np.float32([self._ref_kp[m.trainIdx].pt for m in good]) / self._ref_scale
        matrix, inliers = cv2.findHomography(src, dst, cv2.RANSAC, 4.0)
        count = int(inliers.sum()) if inliers is not None else 0
        if matrix is None or count < self.min_inliers:
            raise AlignmentFailed(f"alignment failed: {count} consistent matches (need {self.min_inliers})")
        # A registration that folds or collapses the image is a wrong match, not a pose.
        det = float(np.linalg.det(matrix[:2, :2]))
        if not 0.25 < det < 4.0:
            raise AlignmentFailed(f"alignment failed: implausible transform (area scale {det:.2f})")
        return matrix

    def warp(self, image: np.ndarray, matrix: np.ndarray) -> np.ndarray:
        """The image in the reference frame (edges replicated, not black)."""
        return cv2.warpPerspective(image, matrix, self.size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a homography to (K, 2) points."""
    if len(points) == 0:
        return np.asarray(points, np.float32).reshape(0, 2)
    return cv2.perspectiveTransform(np.asarray(points, np.float32).reshape(-1, 1, 2), matrix).reshape(-1, 2)
