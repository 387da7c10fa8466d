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
from typing import Any, Iterable, Sequence

import cv2
import numpy as np

from .errors import ImageError
from .recognition.diversity import NEAR_DUPLICATE, farthest_points, lookalikes
from .recognition.engine import Face, enrollment_choice
from .recognition.match import Ranker, centred
from .recognition.track import face_weight


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
    warnings: list[str] = field(default_factory=list)     # accepted, but worth a look
    near_duplicate: bool = False  # the same look as a frame accepted before it
    spare: bool = False           # a good, different face, left out because enough more different ones were kept


def review(store: Any, engine: Any, user_id: str, embedding: np.ndarray, threshold: float) -> str | None:
    """None when a member's new template may be used at once, else why an administrator must approve it."""
    user = store.get_user(user_id)
    active = [t.embedding for t in (user.templates if user else ()) if t.status == "active"
              and t.model_id == engine.model_id]
    if not active:
        return "a member's first photographs are checked by an administrator before the door uses them"
    centre = getattr(engine, "score_centre", None)         # the door's score space
    probe = centred(embedding, centre)
    best = max(float(np.dot(centred(e, centre), probe)) for e in active)
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


def check_images(engine: Any, images: Iterable[tuple[str, np.ndarray | ImageError]], *,
                 near_duplicate: float = NEAR_DUPLICATE) -> tuple[list[EnrolmentResult], list[tuple[EnrolmentResult, Face]]]:
    """Every (name, image) judged, nothing stored: (results in order, the accepted ones with their face). A face
    nearly identical to one accepted before it in the same batch adds nothing to the door and is rejected.
    ``images`` may be a generator that decodes each photograph only when its turn comes: one is judged and let
    go before the next is decoded."""
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
        twin = next((r for r, f in chosen if float(f.embedding @ face.embedding) >= near_duplicate), None)
        if twin is not None:
            results.append(EnrolmentResult(name, False, [f"a near-duplicate of {twin.name}: it adds nothing; "
                                                         "use photographs from other angles or light"], face.crop,
                                           near_duplicate=True))
            continue
        result = EnrolmentResult(name, True, [], face.crop, face.score)
        results.append(result)
        chosen.append((result, face))
    return results, chosen


def store_templates(store: Any, engine: Any, user_id: str, chosen: Sequence[tuple[EnrolmentResult, Face]], *,
                    source: str) -> None:
    """The accepted faces as templates of ``user_id``, in one transaction."""
    if chosen:
        with store.transaction():
            for result, face in chosen:
                template = store.add_template(user_id, face.embedding, model_id=engine.model_id, source=source,
                                              quality=face.score, pending=result.pending is not None,
                                              thumbnail=thumbnail(face.crop) if result.pending else None)
                result.template_id = template.id


def choose_diverse(chosen: list[tuple[EnrolmentResult, Face]], count: int) -> list[tuple[EnrolmentResult, Face]]:
    """At most ``count`` of the accepted faces, the most different ones (farthest-point selection from the best
    frame, :func:`edge.recognition.diversity.farthest_points`); the others are marked as not needed."""
    if len(chosen) <= count:
        return chosen
    keep = set(farthest_points(np.stack([f.embedding for _, f in chosen]),
                               [face_weight(f) for _, f in chosen], count))
    for i, (result, _face) in enumerate(chosen):
        if i not in keep:
            result.ok, result.spare = False, True
            result.reasons = [f"not needed: the {count} most different frames were kept"]
    return [c for i, c in enumerate(chosen) if i in keep]


def turn_advice(results: Sequence[EnrolmentResult], *, wanted: int) -> str | None:
    """Camera enrolment: a sentence when the frames were mostly one look - the person did not turn their head,
    so fewer than ``wanted`` different good faces could be kept; None when the set is diverse enough (or the
    frames were refused for other reasons, which each frame's own reasons already say)."""
    looks = sum(r.ok or r.spare for r in results)
    repeats = sum(r.near_duplicate for r in results)
    if looks >= wanted or not repeats:
        return None
    return (f"Only {looks} different look{'' if looks == 1 else 's'} in {len(results)} camera frames "
            f"({repeats} were near-duplicates): the head hardly moved. Enrol again and turn your head slowly "
            "a little left, right, up and down while the green and red lights alternate.")


def warn_lookalikes(store: Any, engine: Any, user_id: str, chosen: Sequence[tuple[EnrolmentResult, Face]], *,
                    threshold: float) -> None:
    """Add a warning to each accepted face that reaches another enrolled person at the door's threshold: the
    door could let one in as the other (the same person enrolled twice, or a twin)."""
    gallery = store.gallery(engine.model_id)
    if not len(gallery.user_ids):
        return
    rank = Ranker(gallery.user_ids, gallery.matrix, centre=getattr(engine, "score_centre", None))
    for result, face in chosen:
        for other, score in lookalikes(face.embedding, rank, own_user=user_id, threshold=threshold):
            user = store.get_user(other)
            result.warnings.append(f"looks like {user.username if user else other} (similarity {score:.2f}); "
                                   "check that these are different people")


def enrol(store: Any, engine: Any, user_id: str, images: Iterable[tuple[str, np.ndarray | ImageError]], *,
          source: str, review_threshold: float | None = None, choose: int | None = None,
          lookalike_threshold: float | None = None) -> list[EnrolmentResult]:
    """Check each (name, image) and store a template for every good face. An image that could not be read is
    passed as its ImageError and reported as rejected. ``images`` may be a generator that decodes each photograph
    only when its turn comes: one is judged and let go before the next is decoded. ``review_threshold``: a
    member's own enrolment (see the module docstring); ``choose``: keep only that many, the most different
    (camera frames); ``lookalike_threshold``: warn about faces that reach another enrolled person there."""
    results, chosen = check_images(engine, images)
    if choose is not None:
        chosen = choose_diverse(chosen, choose)
    if review_threshold is not None:
        for result, face in chosen:
            result.pending = review(store, engine, user_id, face.embedding, review_threshold)
    if lookalike_threshold is not None:
        warn_lookalikes(store, engine, user_id, chosen, threshold=lookalike_threshold)
    store_templates(store, engine, user_id, chosen, source=source)
    return results
