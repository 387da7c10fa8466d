"""Turn bytes from a file or an upload into the one image format the pipeline uses: BGR ``uint8`` (H, W, 3).

Photographs arrive from phones, scanners and web forms: grayscale, with an alpha channel, 16 bits per channel,
rotated by an EXIF tag, enormous, truncated or not images at all. Each case either becomes a normal BGR image
or an :class:`~edge.errors.ImageError` that says what is wrong. The pixel count is read from the file header
*before* decoding, so a small file that claims to be a gigapixel image (a decompression bomb) is refused
without allocating memory for it.

A face needs far fewer pixels than a camera delivers (it is detected at 1280 pixels and aligned to 160), so
every image comes out with its longer side at most :data:`MAX_SIDE`. A baseline JPEG is decoded already reduced
by libjpeg (1/2, 1/4 or 1/8: memory for the small image only); other formats must be decoded whole, so their cap
(:data:`MAX_PIXELS`) is what one full-size decode may allocate. A 156 KB PNG claiming 7000 x 7000 pixels (147 MB
once decoded) is refused from its header.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import cv2
import numpy as np

from ..errors import ImageError

MAX_PIXELS = 16_000_000          # what one decode may allocate: 16 MP = 48 MB of BGR (a 12 MP phone photo fits)
MAX_SCALED_PIXELS = 120_000_000  # a baseline JPEG header may claim this much: it is decoded reduced
MAX_SIDE = 2048                  # longer side of every decoded image: plenty for a face (detected at 1280)
MAX_FILE_BYTES = 100 * 1024 * 1024
MIN_SIDE = 16                    # nothing smaller can contain a face the model can use

_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def load_image(path: str | os.PathLike, *, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Read a photograph from disk as BGR uint8; every failure is an ImageError naming the file."""
    p = Path(path)
    try:
        size = p.stat().st_size
        if p.is_dir():
            raise ImageError(f"{p}: is a folder, not a photograph")
        if size > MAX_FILE_BYTES:
            raise ImageError(f"{p}: the file is too large ({size // (1024 * 1024)} MB; "
                             f"at most {MAX_FILE_BYTES // (1024 * 1024)} MB)")
        data = p.read_bytes()
    except FileNotFoundError:
        raise ImageError(f"{p}: no such file") from None
    except PermissionError:
        raise ImageError(f"{p}: permission denied when reading the file") from None
    except OSError as exc:
        raise ImageError(f"{p}: cannot read the file ({exc.strerror or exc})") from None
    return decode_image(data, name=str(p), max_pixels=max_pixels)


def decode_image(data: bytes, *, name: str = "the photograph", max_pixels: int = MAX_PIXELS,
                 max_side: int | None = MAX_SIDE) -> np.ndarray:
    """Decode an encoded image (JPEG, PNG, WebP, BMP or GIF) into BGR uint8 (H, W, 3).

    Grayscale is expanded to three channels, transparency is composited on white, 16-bit and float images are
    scaled to 8 bits, and the EXIF orientation of a JPEG is applied. The longer side of the result is at most
    ``max_side`` (``None``: full size); ``max_pixels`` bounds what the decoder allocates.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ImageError(f"{name}: expected the bytes of an image file")
    if len(data) == 0:
        raise ImageError(f"{name}: the file is empty")
    head = bytes(data[:65536])
    header = image_header(head, data)
    if header is None:
        # Only formats whose size can be read before decoding get decoded: anything else could be a bomb.
        if head.startswith(b"\xff\xd8"):
            raise ImageError(f"{name}: cannot decode this JPEG file (damaged or truncated); use the whole file")
        raise ImageError(f"{name}: not an image file this program reads; use a JPEG or PNG photograph "
                         f"(WebP, BMP and GIF work too)")
    kind, width, height, needs_unchanged = header
    reduce = _jpeg_reduction(data, width, height, max_side) if kind == "JPEG" else 1
    _check_dimensions(name, width, height, max_pixels, reduce)
    buf = np.frombuffer(data, dtype=np.uint8)
    # IMREAD_UNCHANGED keeps alpha and 16 bits but ignores EXIF orientation, so it is used only when the header
    # says there is something to keep (PNG/WebP with alpha or 16-bit channels, BMP/GIF with possible alpha).
    flags = cv2.IMREAD_UNCHANGED if needs_unchanged else _REDUCED_COLOR[reduce]
    try:
        image = cv2.imdecode(buf, flags)
    except cv2.error:
        image = None
    if image is None or image.size == 0:
        raise ImageError(f"{name}: cannot decode this {kind} file (damaged, truncated or an unsupported "
                         f"variant); use a JPEG or PNG photograph")
    if max_side:
        image = downscale(image, max_side)[0]      # before to_bgr8: its conversions then work on the small copy
    image = to_bgr8(image)
    h, w = image.shape[:2]
    _check_dimensions(name, w, h, max_pixels)
    if kind == "JPEG" and _jpeg_truncated(data):
        # libjpeg fills the missing part with grey and only warns; a half-grey face must not become a template.
        raise ImageError(f"{name}: the JPEG file is truncated (incomplete download or copy); use the whole file")
    return image


_REDUCED_COLOR = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4,
                  8: cv2.IMREAD_REDUCED_COLOR_8}
_JPEG_BASELINE = {0xC0, 0xC1}    # sequential Huffman: libjpeg decodes these scaled, row by row


def _jpeg_reduction(data, width: int, height: int, max_side: int | None) -> int:
    """The largest libjpeg scale (1, 2, 4, 8) that still leaves at least ``max_side`` pixels on the longer side.

    Only baseline JPEGs: a progressive one keeps every coefficient of the full image in memory whatever the
    output size, so it is treated like any full-size decode.
    """
    if not max_side or max(width, height) <= max_side or _jpeg_frame(bytes(data))[2] not in _JPEG_BASELINE:
        return 1
    for factor in (8, 4, 2):
        if max(width, height) / factor >= max_side:
            return factor
    return 1


def to_bgr8(image: np.ndarray) -> np.ndarray:
    """Any decoded array (gray, gray+alpha, BGR, BGRA; 8/16-bit or float) as contiguous BGR uint8."""
    if image.dtype == np.uint16:
        image = (image.astype(np.float32) * (255.0 / 65535.0) + 0.5).astype(np.uint8)
    elif image.dtype in (np.float32, np.float64):
        top = 1.0 if float(np.nanmax(image)) <= 1.0 else 255.0
        image = np.clip(np.nan_to_num(image) * (255.0 / top) + 0.5, 0, 255).astype(np.uint8)
    elif image.dtype != np.uint8:
        raise ImageError(f"unsupported pixel type {image.dtype}; use an 8-bit JPEG or PNG photograph")
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    elif image.ndim == 3 and image.shape[2] == 1:
        image = cv2.cvtColor(image[:, :, 0], cv2.COLOR_GRAY2BGR)
    elif image.ndim == 3 and image.shape[2] == 2:
        image = _composite_on_white(cv2.cvtColor(image[:, :, 0], cv2.COLOR_GRAY2BGR), image[:, :, 1])
    elif image.ndim == 3 and image.shape[2] == 4:
        image = _composite_on_white(image[:, :, :3], image[:, :, 3])
    elif not (image.ndim == 3 and image.shape[2] == 3):
        raise ImageError(f"unsupported image layout {image.shape}; use a colour or grayscale photograph")
    return np.ascontiguousarray(image)


def _composite_on_white(bgr: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Transparent pixels have arbitrary colour underneath: show them as the white a viewer would show."""
    if alpha.min() == 255:
        return bgr
    a = alpha.astype(np.float32)[:, :, None] / 255.0
    return (bgr.astype(np.float32) * a + 255.0 * (1.0 - a) + 0.5).astype(np.uint8)


def _check_dimensions(name: str, width: int, height: int, max_pixels: int, reduce: int = 1) -> None:
    """``reduce`` > 1: the decoder allocates only 1/reduce of each side (a baseline JPEG decoded scaled)."""
    if width <= 0 or height <= 0:
        raise ImageError(f"{name}: the image header gives no size; the file is damaged")
    allocated = -(-width // reduce) * -(-height // reduce)
    if allocated > max_pixels or width * height > max(max_pixels, MAX_SCALED_PIXELS):
        limit = max_pixels if allocated > max_pixels else MAX_SCALED_PIXELS
        raise ImageError(f"{name}: the image is too large ({width} x {height} = {width * height / 1e6:.0f} "
                         f"megapixels; at most {limit / 1e6:.0f}); scale it down first "
                         f"(a face needs about 2000 pixels on the longer side)")
    if min(width, height) < MIN_SIDE:
        raise ImageError(f"{name}: the image is too small ({width} x {height} pixels) to show a face")


def _jpeg_truncated(data) -> bool:
    """A complete JPEG ends with the EOI marker (FF D9), possibly followed by padding or a trailer."""
    tail = bytes(data[-4096:]) if len(data) > 4096 else bytes(data)
    return b"\xff\xd9" not in tail


def image_header(head: bytes, data=None) -> tuple[str, int, int, bool] | None:
    """(format, width, height, needs_unchanged_decode) read from the header without decoding, or None.

    ``data`` is the whole file when available: JPEG size markers can sit after large EXIF blocks.
    """
    try:
        if head.startswith(b"\x89PNG\r\n\x1a\n") and head[12:16] == b"IHDR":
            width, height, depth, colour = struct.unpack(">IIBB", head[16:26])
            has_alpha = colour in (4, 6) or b"tRNS" in head
            return "PNG", width, height, has_alpha or depth == 16
        if head.startswith(b"\xff\xd8"):
            width, height, _marker = _jpeg_frame(bytes(data) if data is not None else head)
            return ("JPEG", width, height, False) if width else None
        if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
            return _webp_header(head)
        if head[:2] == b"BM" and len(head) >= 26:
            width, height = struct.unpack("<ii", head[18:26])
            return "BMP", abs(width), abs(height), True
        if head[:6] in (b"GIF87a", b"GIF89a"):
            width, height = struct.unpack("<HH", head[6:10])
            return "GIF", width, height, True
    except struct.error:
        return None
    return None


def _jpeg_frame(data: bytes) -> tuple[int, int, int]:
    """(width, height, start-of-frame marker) of a JPEG, or (0, 0, 0) when no frame header is found."""
    i, n = 2, len(data)
    while i + 4 <= n:
        if data[i] != 0xFF:
            i += 1
            continue
        marker = data[i + 1]
        if marker == 0xFF:
            i += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        if i + 4 > n:
            return 0, 0, 0
        length = struct.unpack(">H", data[i + 2:i + 4])[0]
        if marker in _JPEG_SOF:
            if i + 9 > n:
                return 0, 0, 0
            height, width = struct.unpack(">HH", data[i + 5:i + 9])
            return width, height, marker
        if marker == 0xDA:        # start of scan before any frame header: not a valid JPEG
            return 0, 0, 0
        i += 2 + length
    return 0, 0, 0


def _webp_header(head: bytes) -> tuple[str, int, int, bool] | None:
    chunk = head[12:16]
    if chunk == b"VP8 ":
        width, height = struct.unpack("<HH", head[26:30])
        return "WebP", width & 0x3FFF, height & 0x3FFF, False
    if chunk == b"VP8L":
        bits = struct.unpack("<I", head[21:25])[0]
        return "WebP", (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1, True
    if chunk == b"VP8X":
        width = int.from_bytes(head[24:27], "little") + 1
        height = int.from_bytes(head[27:30], "little") + 1
        return "WebP", width, height, True
    return None


def downscale(image: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """A copy whose longer side is at most ``max_side``, and the factor to map its coordinates back."""
    h, w = image.shape[:2]
    side = max(h, w)
    if side <= max_side:
        return image, 1.0
    scale = max_side / side
    small = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    return small, side / max_side
