"""Decoding photographs: every odd or bad input becomes a normal BGR image or a clear ImageError.

The bad files are written in tmp_path from a real photograph of ../shared/faces.
"""

from __future__ import annotations

import struct
import zlib

import cv2
import numpy as np
import pytest

from edge.errors import EdgeError, ImageError
from edge.recognition import decode_image, load_image
from edge.recognition.images import MAX_SIDE, image_header


@pytest.fixture(scope="module")
def photo_path(faces_dir):
    return faces_dir / "face_recognition_examples" / "obama" / "obama.jpg"


@pytest.fixture(scope="module")
def photo(photo_path):
    return load_image(photo_path)


def test_jpeg_decodes_to_bgr_uint8(photo, photo_path):
    assert photo.dtype == np.uint8 and photo.ndim == 3 and photo.shape[2] == 3
    # Same pixels as OpenCV's own reader: nothing converted to RGB on the way.
    assert np.array_equal(photo, cv2.imread(str(photo_path), cv2.IMREAD_COLOR))


def test_missing_file_and_folder_are_image_errors(tmp_path):
    with pytest.raises(ImageError, match="no such file"):
        load_image(tmp_path / "absent.jpg")
    with pytest.raises(ImageError, match="folder"):
        load_image(tmp_path)


def test_empty_and_text_files_are_refused(tmp_path):
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    with pytest.raises(ImageError, match="empty"):
        load_image(empty)
    text = tmp_path / "notes.jpg"
    text.write_text("this is not a photograph\n" * 20)
    with pytest.raises(ImageError, match="not an image file"):
        load_image(text)
    assert issubclass(ImageError, EdgeError)


def test_truncated_jpeg_is_refused(tmp_path, photo_path):
    data = photo_path.read_bytes()
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError, match="truncated|damaged"):
        load_image(cut)
    header_only = tmp_path / "header.jpg"
    header_only.write_bytes(data[:200])
    with pytest.raises(ImageError, match=str(header_only.name)):
        load_image(header_only)


def test_grayscale_becomes_three_equal_channels(tmp_path, photo):
    grey = cv2.cvtColor(photo, cv2.COLOR_BGR2GRAY)
    path = tmp_path / "grey.png"
    cv2.imwrite(str(path), grey)
    image = load_image(path)
    assert image.shape == photo.shape and image.dtype == np.uint8
    assert np.array_equal(image[:, :, 0], grey) and np.array_equal(image[:, :, 2], grey)


def test_16_bit_png_is_scaled_to_8_bits(tmp_path, photo):
    deep = photo.astype(np.uint16) * 257          # 8-bit value v becomes 16-bit v*257
    path = tmp_path / "deep.png"
    cv2.imwrite(str(path), deep)
    assert image_header(path.read_bytes()[:64])[3] is True     # header says: keep the depth for scaling
    image = load_image(path)
    assert image.dtype == np.uint8
    assert np.abs(image.astype(int) - photo.astype(int)).max() <= 1


def test_rgba_transparency_is_composited_on_white(tmp_path, photo):
    alpha = np.full(photo.shape[:2], 255, np.uint8)
    alpha[:, : photo.shape[1] // 4] = 0             # left quarter fully transparent
    path = tmp_path / "rgba.png"
    cv2.imwrite(str(path), np.dstack([photo, alpha]))
    image = load_image(path)
    assert image.shape == photo.shape
    assert (image[:, : photo.shape[1] // 4] == 255).all()
    assert np.array_equal(image[:, photo.shape[1] // 2:], photo[:, photo.shape[1] // 2:])


def test_real_rgba_png_from_the_photo_set(faces_dir):
    image = load_image(faces_dir / "face_recognition_examples" / "obama" / "rgba_32bit.png")
    assert image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8


def _png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims a huge size: a decompression bomb in spirit."""
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + \
        chunk(b"IEND", b"")


def test_decompression_bomb_is_refused_from_the_header(tmp_path):
    path = tmp_path / "bomb.png"
    path.write_bytes(_png_claiming(30000, 30000))
    with pytest.raises(ImageError, match="too large .*30000 x 30000"):
        load_image(path)


def test_pixel_limit_applies_to_real_images(photo):
    ok, encoded = cv2.imencode(".jpg", photo)
    h, w = photo.shape[:2]
    with pytest.raises(ImageError, match="too large"):
        decode_image(encoded.tobytes(), max_pixels=h * w - 1)
    assert decode_image(encoded.tobytes(), max_pixels=h * w).shape == photo.shape


def test_jpeg_header_size_matches_decoded_size(photo_path, photo):
    kind, width, height, _ = image_header(photo_path.read_bytes(), photo_path.read_bytes())
    assert (kind, width, height) == ("JPEG", photo.shape[1], photo.shape[0])


def test_tiny_image_is_refused(tmp_path):
    path = tmp_path / "tiny.png"
    cv2.imwrite(str(path), np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(ImageError, match="too small"):
        load_image(path)


def test_exif_orientation_is_applied(tmp_path, photo):
    """A JPEG stored sideways with orientation tag 6 (rotate 90 degrees clockwise) comes out upright."""
    sideways = cv2.rotate(photo, cv2.ROTATE_90_COUNTERCLOCKWISE)
    ok, encoded = cv2.imencode(".jpg", sideways, [cv2.IMWRITE_JPEG_QUALITY, 95])
    data = encoded.tobytes()
    # Minimal EXIF APP1 segment: TIFF header (little endian), one IFD entry: Orientation (0x0112) = 6.
    tiff = b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", 1) + \
        struct.pack("<HHIHH", 0x0112, 3, 1, 6, 0) + struct.pack("<I", 0)
    app1 = b"Exif\x00\x00" + tiff
    exif = b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1
    path = tmp_path / "rotated.jpg"
    path.write_bytes(data[:2] + exif + data[2:])
    image = load_image(path)
    assert image.shape == photo.shape
    assert np.abs(image.astype(int) - photo.astype(int)).mean() < 6


def test_formats_without_a_readable_size_are_refused_before_decoding(tmp_path, photo):
    """A TIFF decodes fine in OpenCV, but its size is not checked from the header, so it is not decoded."""
    path = tmp_path / "scan.tiff"
    cv2.imwrite(str(path), photo)
    with pytest.raises(ImageError, match="JPEG or PNG"):
        load_image(path)


def test_webp_and_bmp_are_read(tmp_path, photo):
    for suffix in (".webp", ".bmp"):
        path = tmp_path / f"photo{suffix}"
        cv2.imwrite(str(path), photo)
        image = load_image(path)
        assert image.shape == photo.shape
        assert np.abs(image.astype(int) - photo.astype(int)).mean() < 4


# -- memory: a photograph is decoded small, or refused from its header (issue 11, item 1) -----------------------

def test_one_colour_7000_pixel_png_is_refused_from_its_header():
    """The attack of issue 11: a 156 KB PNG that decodes to 147 MB. Refused before any pixel is allocated."""
    with pytest.raises(ImageError, match="too large .*7000 x 7000.*at most 16"):
        decode_image(_png_claiming(7000, 7000), name="flat.png")


def test_a_large_baseline_jpeg_is_decoded_reduced_to_the_side_a_face_needs(photo):
    scale = 6000 / max(photo.shape[:2])                 # a 6000-pixel photograph: decoded at 1/2, then 2048
    big = cv2.resize(photo, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
    ok, encoded = cv2.imencode(".jpg", big)
    image = decode_image(encoded.tobytes())
    assert max(image.shape[:2]) == MAX_SIDE
    # the same picture, only smaller: the aspect ratio and the content survive the reduced decode
    assert image.shape[0] / image.shape[1] == pytest.approx(big.shape[0] / big.shape[1], abs=0.01)
    again = cv2.resize(image, (photo.shape[1], photo.shape[0]), interpolation=cv2.INTER_AREA)
    assert np.abs(again.astype(int) - photo.astype(int)).mean() < 6


def test_progressive_jpegs_and_pngs_are_capped_at_what_one_full_decode_allocates(photo):
    """libjpeg scales only baseline JPEGs while decoding; a progressive one needs the full image's memory."""
    big = cv2.resize(photo, (3000, 2000))
    baseline = cv2.imencode(".jpg", big)[1].tobytes()
    progressive = cv2.imencode(".jpg", big, [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])[1].tobytes()
    png = cv2.imencode(".png", big)[1].tobytes()
    limit = 4_000_000                      # below the 6 MP of the full image, above the 1.5 MP of a 1/2 decode
    assert decode_image(baseline, max_pixels=limit, max_side=1000).shape == (667, 1000, 3)
    for data in (progressive, png):
        with pytest.raises(ImageError, match="too large .*3000 x 2000"):
            decode_image(data, max_pixels=limit, max_side=1000)


def test_a_16_bit_rgba_png_is_reduced_before_its_8_bit_conversion(photo):
    big = cv2.resize(photo, (2600, 2600))
    alpha = np.full(big.shape[:2], 65535, np.uint16)
    deep = np.dstack([big.astype(np.uint16) * 257, alpha])
    image = decode_image(cv2.imencode(".png", deep)[1].tobytes())
    assert image.shape == (MAX_SIDE, MAX_SIDE, 3) and image.dtype == np.uint8


def test_full_size_decoding_is_still_available(photo):
    big = cv2.resize(photo, (2400, 2400))
    assert decode_image(cv2.imencode(".jpg", big)[1].tobytes(), max_side=None).shape == (2400, 2400, 3)
