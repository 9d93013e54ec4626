"""Reading any OpenCV-readable image into the one format the engine works on: 8-bit BGR."""

from __future__ import annotations

import io
import os
import stat
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from inspector import settings
from inspector.errors import SourceError

# Pillow's own reader, taken before ultralytics is imported: ultralytics replaces
# ``Image.open`` with one that, on a file Pillow does not know, tries to install a HEIF
# plugin (printing a warning to stdout, where `run --json` writes its lines).
_pil_open = Image.open


def normalise(image: np.ndarray, *, name: str = "image") -> np.ndarray:
    """Gray, BGRA, 16-bit or float images to (H, W, 3) uint8 BGR."""
    if image is None or image.size == 0:
        raise SourceError(f"{name}: empty image")
    if image.dtype == np.uint16:
        # By the bits the data uses: a 10-, 12- or 14-bit camera's values in a 16-bit file
        # keep their top 8 bits (the top 8 of 16 would make a good part near black).
        bits = max(8, int(image.max()).bit_length())
        image = (image >> (bits - 8)).astype(np.uint8)
    elif image.dtype in (np.float32, np.float64):
        scale = 255.0 if float(np.nanmax(image)) <= 1.0 else 1.0
        image = np.clip(np.nan_to_num(image) * scale, 0, 255).astype(np.uint8)
    elif image.dtype != np.uint8:
        raise SourceError(f"{name}: unsupported pixel type {image.dtype}")
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.ndim == 3 and image.shape[2] == 1:
        return cv2.cvtColor(image[..., 0], cv2.COLOR_GRAY2BGR)
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    if image.ndim == 3 and image.shape[2] == 3:
        return np.ascontiguousarray(image)
    raise SourceError(f"{name}: unsupported image shape {image.shape}")


def _truncated_jpeg(data: np.ndarray) -> bool:
    """A JPEG whose end-of-image marker is missing was cut off while being written."""
    if data.size < 4 or data[0] != 0xFF or data[1] != 0xD8:
        return False
    tail = data[-64:].tobytes().rstrip(b"\x00")
    return not tail.endswith(b"\xff\xd9")


def _imdecode(buffer: np.ndarray, flags: int, name: str) -> np.ndarray:
    """cv2.imdecode, with a SourceError naming ``name`` for an image it cannot decode."""
    try:
        image = cv2.imdecode(buffer, flags)
    except cv2.error as exc:  # e.g. a header claiming more pixels than OpenCV will allocate
        if "CV_IO_MAX_IMAGE_PIXELS" in str(exc):
            raise SourceError(f"{name}: too large to decode (its header claims over 2^30 pixels)") from None
        raise SourceError(f"{name}: cannot be decoded ({exc.err or exc})") from None
    if image is None:
        raise SourceError(f"{name}: not a readable image (corrupt, truncated or not an image format)")
    return image


def decode_image(data: bytes | np.ndarray, *, name: str = "image") -> np.ndarray:
    """Decode encoded image bytes to (H, W, 3) uint8 BGR, or raise SourceError naming ``name``."""
    buffer = np.frombuffer(data, np.uint8) if isinstance(data, (bytes, bytearray, memoryview)) else data
    if buffer.size == 0:
        raise SourceError(f"{name}: empty file (0 bytes)")
    if _truncated_jpeg(buffer):
        raise SourceError(f"{name}: truncated JPEG (the file ends before the image does)")
    _refuse_bombs(buffer, name)
    return normalise(_imdecode(buffer, cv2.IMREAD_UNCHANGED, name), name=name)


def header_size(data: np.ndarray) -> tuple[int, int] | None:
    """(width, height) an image file's header claims, read without decoding it: JPEG and PNG
    here, other formats by Pillow's header reader; None where it cannot be told."""
    size = jpeg_size(data)
    if size is not None:
        return size
    if data.size >= 24 and data[:8].tobytes() == b"\x89PNG\r\n\x1a\n" and data[12:16].tobytes() == b"IHDR":
        return int.from_bytes(data[16:20].tobytes(), "big"), int.from_bytes(data[20:24].tobytes(), "big")
    try:
        with _pil_open(io.BytesIO(data.tobytes())) as image:  # reads the header only
            return image.size
    except Exception:  # not a format Pillow knows, or Pillow's own bomb guard: OpenCV decides
        return None


def _refuse_bombs(data: np.ndarray, name: str) -> None:
    """A file whose header claims more pixels than an image may have is refused before it
    is decoded (a 379 KB PNG claiming 2.4 GB of pixels took that much memory)."""
    size = header_size(data)
    limit = settings.max_image_pixels()
    if size is not None and size[0] * size[1] > limit:
        raise SourceError(
            f"{name}: too large to decode ({size[0]}x{size[1]} pixels; at most {limit}, INSPECTOR_MAX_IMAGE_PIXELS)"
        )


def jpeg_size(data: np.ndarray) -> tuple[int, int] | None:
    """(width, height) from a JPEG's frame header without decoding it; None when not a JPEG."""
    if data.size < 4 or data[0] != 0xFF or data[1] != 0xD8:
        return None
    i, end = 2, data.size - 9
    while i < end:
        if data[i] != 0xFF:
            return None
        marker = int(data[i + 1])
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:  # markers without a length
            i += 2
            continue
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # start of frame
            height = int(data[i + 5]) << 8 | int(data[i + 6])
            width = int(data[i + 7]) << 8 | int(data[i + 8])
            return (width, height) if width and height else None
        i += 2 + (int(data[i + 2]) << 8 | int(data[i + 3]))
    return None


# Largest first: the smallest decode that still keeps the pixels asked for.
_REDUCED_READS = {8: cv2.IMREAD_REDUCED_COLOR_8, 4: cv2.IMREAD_REDUCED_COLOR_4, 2: cv2.IMREAD_REDUCED_COLOR_2}


@dataclass(frozen=True)
class Picture:
    """An image to inspect: its pixels, perhaps decoded smaller than the file holds them
    (see :func:`decode_reduced`), and the (width, height) of the full-size image.

    Results are always in the full-size image's pixels.
    """

    pixels: np.ndarray
    full_size: tuple[int, int]

    @classmethod
    def of(cls, pixels: np.ndarray) -> Picture:
        """Pixels that are the whole image."""
        return cls(pixels, (pixels.shape[1], pixels.shape[0]))

    @cached_property
    def reduction(self) -> int:
        """The factor the pixels were decoded smaller by (1 when they were not)."""
        return reduction_of((self.pixels.shape[1], self.pixels.shape[0]), self.full_size)

    @cached_property
    def to_full(self) -> np.ndarray:
        """3x3 map from the pixels at hand to the full-size image's."""
        return from_reduced(self.reduction)


def decode_reduced(data: bytes | np.ndarray, *, name: str = "image", min_side: int | None = None) -> Picture:
    """Decode as small as keeps ``min_side`` pixels on the longer side, where that is cheap.

    A JPEG decoder can skip the fine detail of every block: a 12-megapixel photograph
    decodes at a quarter of the size in a fraction of the time (2, 4 or 8 times smaller;
    reduced pixel ``r`` covers full pixels ``k * r`` to ``k * r + k - 1``). Other formats,
    and ``min_side`` None, decode in full.
    """
    buffer = np.frombuffer(data, np.uint8) if isinstance(data, (bytes, bytearray, memoryview)) else data
    size = jpeg_size(buffer) if min_side else None
    factor = next((k for k in _REDUCED_READS if size and max(size) / k >= min_side), 1)
    if factor == 1 or _truncated_jpeg(buffer):
        return Picture.of(decode_image(buffer, name=name))
    _refuse_bombs(buffer, name)
    # EXIF orientation is ignored, as the full-size decode does.
    image = _imdecode(buffer, _REDUCED_READS[factor] | cv2.IMREAD_IGNORE_ORIENTATION, name)
    return Picture(normalise(image, name=name), size)


def colour_share(image: np.ndarray, *, spread: int = 20) -> float:
    """The share of (a sample of) a BGR image's pixels whose channels differ by more than
    ``spread`` levels: about 0 for a grey scene, 0 exactly for a monochrome camera's."""
    sample = image[::7, ::7].astype(np.int16)
    return float(np.mean(sample.max(axis=2) - sample.min(axis=2) > spread))


def is_monochrome(image: np.ndarray) -> bool:
    """Whether a BGR image's three channels are equal (on a sample of its pixels), as a
    monochrome camera's or a grey file's are once expanded to BGR."""
    sample = image[::7, ::7]
    return bool((sample[..., 0] == sample[..., 1]).all() and (sample[..., 1] == sample[..., 2]).all())


def reduction_of(image_size: tuple[int, int], full_size: tuple[int, int]) -> int:
    """The factor an image of ``full_size`` was decoded smaller by (1 when it was not)."""
    return max(1, round(full_size[0] / image_size[0]))


def from_reduced(factor: int) -> np.ndarray:
    """3x3 map from the pixels of an image decoded ``factor`` times smaller to the full image's."""
    offset = (factor - 1) / 2  # a reduced pixel's centre is the centre of the block it covers
    return np.array([[factor, 0.0, offset], [0.0, factor, offset], [0.0, 0.0, 1.0]])


# Largest image file read: a 100-megapixel 16-bit TIFF is 600 MB; a file beyond this is
# not a photograph of a part (or /dev/zero behind a link), and is refused unread.
MAX_FILE_BYTES = 1 << 30


def read_bytes(path: str | os.PathLike, *, limit: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes, or a SourceError that says
    why not. A FIFO, a device or a socket (a link to /dev/zero among the images) would
    block or never end: such a file is refused without reading it."""
    path = Path(path)
    try:
        info = path.stat()
        if stat.S_ISDIR(info.st_mode):
            raise IsADirectoryError
        if not stat.S_ISREG(info.st_mode):
            raise SourceError(f"{path}: not a regular file (a pipe, device or socket); not read")
        if info.st_size > limit:
            raise SourceError(f"{path}: {info.st_size} bytes is larger than an image is read ({limit} at most)")
        with path.open("rb") as f:
            data = f.read(limit + 1)
        if len(data) > limit:  # grew while it was read
            raise SourceError(f"{path}: larger than an image is read ({limit} bytes at most)")
        return data
    except FileNotFoundError:
        raise SourceError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise SourceError(f"{path}: is a folder, not an image") from None
    except OSError as exc:
        raise SourceError(f"{path}: cannot read ({exc.strerror or exc})") from None


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as (H, W, 3) uint8 BGR.

    Bytes are decoded in memory, so non-ASCII paths work on every platform.

    Raises:
        SourceError: the file is missing, unreadable, empty or not a decodable image;
            the message names the file.
    """
    return decode_image(read_bytes(path), name=str(path))


def write_image(path: str | os.PathLike, image: np.ndarray) -> Path:
    """Write an image; the format follows the extension. Works on non-ASCII paths."""
    path = Path(path)
    try:
        ok, encoded = cv2.imencode(path.suffix or ".png", image)
    except cv2.error:  # an extension no encoder knows, or pixels none can take
        ok = False
    if not ok:
        shape = "x".join(map(str, image.shape))
        raise SourceError(f"{path}: cannot encode a {shape} {image.dtype} image as {path.suffix or '.png'!r}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        encoded.tofile(path)
    except OSError as exc:
        raise SourceError(f"{path}: cannot write ({exc.strerror or exc})") from None
    return path
