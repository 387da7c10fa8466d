"""Face recognition: decode, detect (YuNet), align, embed (TFLite FaceNet), check quality, compare.

Everything is plain functions over numpy arrays except :class:`FaceEngine`, which owns the two models.
Images are BGR ``uint8`` (H, W, 3) throughout.
"""

from .engine import Face, FaceEngine
from .images import decode_image, load_image
from .quality import Quality

__all__ = ["Face", "FaceEngine", "Quality", "decode_image", "load_image"]
