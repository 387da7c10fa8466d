"""Enrolment: photographs in, face templates stored. One function for every way in (CLI, uploaded photographs,
the door camera), so they accept and reject the same photographs and write the database the same way.

The engine runs outside the database lock; the accepted templates are then stored in one transaction (one
write of the database, all or nothing), not one rewrite per photograph. The template records the detector's
confidence as its quality.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np

from .errors import ImageError
from .recognition.engine import Face, enrollment_choice


@dataclass
class EnrolmentResult:
    """One photograph: accepted (with its stored template id) or not, and why; the face crop to show."""

    name: str
    ok: bool
    reasons: list[str] = field(default_factory=list)
    crop: np.ndarray | None = None
    quality: float | None = None
    template_id: str | None = None
    decoded: bool = True          # False: the file could not be read as a photograph


def enrol(store: Any, engine: Any, user_id: str, images: Iterable[tuple[str, np.ndarray | ImageError]], *,
          source: str) -> list[EnrolmentResult]:
    """Check each (name, image) and store a template for every good face. An image that could not be read is
    passed as its ImageError and reported as rejected. ``images`` may be a generator that decodes each photograph
    only when its turn comes: one is judged and let go before the next is decoded."""
    results: list[EnrolmentResult] = []
    chosen: list[tuple[EnrolmentResult, Face]] = []
    for name, image in images:
        if isinstance(image, ImageError):
            results.append(EnrolmentResult(name, False, [str(image)], decoded=False))
            continue
        faces: list[Face] = []
        try:
            faces = engine.faces(image)
            face = enrollment_choice(faces)
        except ImageError as exc:
            results.append(EnrolmentResult(name, False, [str(exc)], faces[0].crop if len(faces) == 1 else None))
            continue
        result = EnrolmentResult(name, True, [], face.crop, face.score)
        results.append(result)
        chosen.append((result, face))
    if chosen:
        with store.transaction():
            for result, face in chosen:
                template = store.add_template(user_id, face.embedding, model_id=engine.model_id, source=source,
                                              quality=face.score)
                result.template_id = template.id
    return results
