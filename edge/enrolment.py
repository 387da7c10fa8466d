"""Enrolment: photographs in, face templates stored. One function for every way in (CLI, uploaded photographs,
the door camera), so they accept and reject the same photographs and write the database the same way.

The engine runs outside the database lock; the accepted templates are then stored in one transaction (one
write of the database, all or nothing), not one rewrite per photograph. The template records the detector's
confidence as its quality.

A member enrolling themself (``review_threshold`` given) cannot add someone else's face: a new template is used
at once only if it matches one of the member's active templates at the door's threshold; otherwise, and always
for a member's first photographs, it is stored *pending*, with a thumbnail, until an administrator approves it.
An administrator's enrolment and the CLI are trusted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

import cv2
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
    pending: str | None = None    # why the template waits for an administrator (None: in use at once)


def review(store: Any, engine: Any, user_id: str, embedding: np.ndarray, threshold: float) -> str | None:
    """None when a member's new template may be used at once, else why an administrator must approve it."""
    user = store.get_user(user_id)
    active = [t.embedding for t in (user.templates if user else ()) if t.status == "active"
              and t.model_id == engine.model_id]
    if not active:
        return "a member's first photographs are checked by an administrator before the door uses them"
    best = max(float(np.dot(e, embedding)) for e in active)
    if best >= threshold:
        return None
    return (f"this face does not match your enrolled photographs (similarity {best:.2f}, the door needs "
            f"{threshold:.2f}); an administrator must approve it before the door uses it")


def thumbnail(crop: np.ndarray | None, side: int = 96) -> bytes | None:
    """A small JPEG of a face crop for the administrator's review."""
    if crop is None or crop.size == 0:
        return None
    small = cv2.resize(crop, (side, side), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, 80])
    return buf.tobytes() if ok else None


def enrol(store: Any, engine: Any, user_id: str, images: Iterable[tuple[str, np.ndarray | ImageError]], *,
          source: str, review_threshold: float | None = None) -> list[EnrolmentResult]:
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
        if review_threshold is not None:
            result.pending = review(store, engine, user_id, face.embedding, review_threshold)
        results.append(result)
        chosen.append((result, face))
    if chosen:
        with store.transaction():
            for result, face in chosen:
                template = store.add_template(user_id, face.embedding, model_id=engine.model_id, source=source,
                                              quality=face.score, pending=result.pending is not None,
                                              thumbnail=thumbnail(face.crop) if result.pending else None)
                result.template_id = template.id
    return results
