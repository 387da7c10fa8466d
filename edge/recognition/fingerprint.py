"""A short fingerprint of what the recognition pipeline computes, for caches of embeddings.

Benchmarks and the security calibration cache embeddings of thousands of photographs. Keying the cache by the
source code re-embeds after every cosmetic edit; keying it by the model alone misses a change of alignment.
The fingerprint is a hash of the faces (boxes and embeddings, rounded) the engine finds in a few fixed
photographs: any change of detection, alignment, preprocessing or model changes it, and nothing else does.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Iterable

import numpy as np


def fingerprint(engine, photographs: Iterable[str | Path]) -> str:
    """12 hex digits over the engine's faces in ``photographs`` (decoded with the pipeline's own loader)."""
    from .images import load_image

    digest = hashlib.sha256(engine.model_id.encode())
    for path in photographs:
        for face in engine.faces(load_image(path)):
            digest.update(np.round(np.asarray(face.box, np.float64), 0).tobytes())
            digest.update(np.round(face.embedding.astype(np.float64), 3).tobytes())
    return digest.hexdigest()[:12]
