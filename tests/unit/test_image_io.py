"""Reading every kind of image file into 8-bit BGR, and clear errors for the rest."""

from __future__ import annotations

import struct
import zlib

import cv2
import numpy as np
import pytest

from inspector.engine.image import read_image, write_image
from inspector.errors import SourceError


@pytest.mark.parametrize(
    ("name", "pixels"),
    [
        ("gray.bmp", np.full((20, 30), 200, np.uint8)),
        ("rgba.png", np.dstack([np.full((20, 30, 3), 90, np.uint8), np.full((20, 30), 255, np.uint8)])),
        ("deep.tif", np.full((20, 30, 3), 40000, np.uint16)),
        ("tiny.png", np.full((1, 1, 3), 7, np.uint8)),
        ("still.gif", np.full((20, 30, 3), 120, np.uint8)),
    ],
)
def test_formats_are_normalised_to_8bit_bgr(tmp_path, name, pixels):
    path = tmp_path / name
    assert cv2.imwrite(str(path), pixels)
    image = read_image(path)
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    assert image.shape[:2] == pixels.shape[:2]
    if pixels.dtype == np.uint16:
        assert image[0, 0, 0] == 40000 >> 8


def test_non_ascii_paths_round_trip(tmp_path):
    path = tmp_path / "prüfteil_测试.png"
    write_image(path, np.full((8, 8, 3), 120, np.uint8))
    assert read_image(path)[0, 0].tolist() == [120, 120, 120]


def png_claiming(width: int, height: int) -> bytes:
    """A small PNG whose header (with a valid checksum) claims ``width`` x ``height`` pixels."""
    data = bytearray(cv2.imencode(".png", np.zeros((4, 4, 3), np.uint8))[1].tobytes())
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


@pytest.mark.parametrize(
    ("setup", "fragment"),
    [
        (lambda p: p.write_bytes(b""), "empty file"),
        (lambda p: p.write_text("not an image at all"), "not a readable image"),
        (lambda p: None, "no such file"),
        (lambda p: p.write_bytes(png_claiming(100_000, 100_000)), "too large to decode"),
    ],
)
def test_bad_files_raise_errors_naming_the_file(tmp_path, setup, fragment):
    path = tmp_path / "broken.png"
    setup(path)
    with pytest.raises(SourceError, match=fragment) as err:
        read_image(path)
    assert "broken.png" in str(err.value)


def test_a_jpeg_decodes_smaller_and_says_how_large_it_is(tmp_path):
    from inspector.engine.image import decode_reduced, jpeg_size, read_bytes

    gradient = np.tile(np.linspace(0, 255, 1001, dtype=np.uint8), (603, 1))
    image = cv2.merge([gradient, gradient[:, ::-1], np.full_like(gradient, 90)])
    write_image(tmp_path / "big.jpg", image)
    write_image(tmp_path / "big.png", image)
    data = np.frombuffer(read_bytes(tmp_path / "big.jpg"), np.uint8)
    assert jpeg_size(data) == (1001, 603)
    small = decode_reduced(data, name="big.jpg", min_side=250)
    assert small.full_size == (1001, 603) and small.pixels.shape == (151, 251, 3)  # a quarter, sides rounded up
    assert small.reduction == 4
    assert decode_reduced(data, name="big.jpg", min_side=300).pixels.shape == (302, 501, 3)  # a quarter is too small
    expected = cv2.resize(image, (251, 151), interpolation=cv2.INTER_AREA)
    assert np.abs(small.pixels.astype(int) - expected).mean() < 4
    png = decode_reduced(read_bytes(tmp_path / "big.png"), name="big.png", min_side=250)
    assert png.full_size == (1001, 603) and png.pixels.shape == (603, 1001, 3)  # no cheap way to shrink a PNG
    assert png.reduction == 1
    with pytest.raises(SourceError, match=r"cut\.jpg: truncated JPEG"):
        decode_reduced(data[: len(data) // 2].tobytes(), name="cut.jpg", min_side=250)


def test_pictures_that_cannot_be_written_raise_errors_naming_the_file(tmp_path):
    image = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(SourceError, match=r"o\.xyz: cannot encode a 8x8x3 uint8 image as '\.xyz'"):
        write_image(tmp_path / "o.xyz", image)
    (tmp_path / "taken").write_text("a file, not a folder")
    with pytest.raises(SourceError, match=r"taken/o\.png: cannot write"):
        write_image(tmp_path / "taken" / "o.png", image)


def test_a_pipe_a_device_or_an_oversized_file_is_refused_without_reading_it(tmp_path):
    import os

    from inspector.engine.image import read_bytes

    os.mkfifo(tmp_path / "pipe.png")  # reading it would wait forever for a writer
    with pytest.raises(SourceError, match=r"pipe\.png: not a regular file"):
        read_bytes(tmp_path / "pipe.png")
    (tmp_path / "zero.png").symlink_to("/dev/zero")  # reading it would never end
    with pytest.raises(SourceError, match=r"zero\.png: not a regular file"):
        read_bytes(tmp_path / "zero.png")
    (tmp_path / "big.png").write_bytes(b"\0" * 2048)
    with pytest.raises(SourceError, match=r"big\.png: 2048 bytes is larger than an image is read"):
        read_bytes(tmp_path / "big.png", limit=1024)


def test_twelve_bit_camera_data_in_a_sixteen_bit_file_keeps_its_brightness(tmp_path):
    twelve_bit = np.full((20, 30), 3000, np.uint16)  # a mid-grey part from a 12-bit camera
    cv2.imwrite(str(tmp_path / "part.tif"), twelve_bit)
    image = read_image(tmp_path / "part.tif")
    assert image[0, 0, 0] == 3000 >> 4  # its top 8 bits of 12, not of 16 (which would be 11: black)


def test_an_image_claiming_more_pixels_than_allowed_is_refused_before_decoding(tmp_path, monkeypatch):
    monkeypatch.setenv("INSPECTOR_MAX_IMAGE_PIXELS", "10000")
    for name in ("small.png", "small.jpg", "small.tif"):
        write_image(tmp_path / name, np.full((90, 100, 3), 128, np.uint8))  # 9,000 pixels: allowed
        assert read_image(tmp_path / name).shape == (90, 100, 3)
    for name in ("big.png", "big.jpg", "big.tif"):
        write_image(tmp_path / name, np.full((120, 100, 3), 128, np.uint8))  # 12,000 pixels
        with pytest.raises(SourceError, match=rf"{name}: too large to decode \(100x120 pixels; at most 10000"):
            read_image(tmp_path / name)
