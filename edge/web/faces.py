"""Photographs in, verdicts out: decoding uploads, the enrolment quality check, test recognition."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field

import cv2
import numpy as np

from ..decision import Candidate, door_policy, votes_for
from ..enrolment import enrol, turn_advice
from ..errors import ImageError
from ..recognition import decode_image
from ..recognition.match import Ranker

MAX_PHOTOS = 20


@dataclass
class Verdict:
    """What happened to one photograph: accepted or not, why, and the face crop to show."""

    name: str
    ok: bool
    reasons: list[str] = field(default_factory=list)
    crop_uri: str = ""
    quality: float | None = None
    decoded: bool = True          # False: the file was not a photograph we can read
    pending: str | None = None    # stored, but waits for an administrator's approval (why)
    warnings: list[str] = field(default_factory=list)


def crop_data_uri(crop: np.ndarray | None, side: int = 160) -> str:
    """A small inline JPEG of a face crop (the CSP allows data: images, nothing else inline)."""
    if crop is None or not isinstance(crop, np.ndarray) or crop.size == 0:
        return ""
    h, w = crop.shape[:2]
    scale = side / max(h, w)
    if scale < 1:
        crop = cv2.resize(crop, (max(1, int(w * scale)), max(1, int(h * scale))), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, 85])
    return "data:image/jpeg;base64," + base64.b64encode(buf.tobytes()).decode("ascii") if ok else ""


def decode_upload(upload) -> np.ndarray:
    """A BGR image from a Bottle FileUpload, or ImageError with a message naming the file."""
    data = upload.file.read()
    try:
        return decode_image(data, name=str(upload.raw_filename)[:100])
    except ImageError as exc:
        raise ImageError(f"not a photograph we can read: {exc}") from None


def enrol_images(web, user, named_images, source: str, choose: int | None = None) -> list[Verdict]:
    """The shared enrolment (:func:`edge.enrolment.enrol`, also used by ``edge-face enroll``), as verdicts.

    An administrator's enrolment is used at once; a member's own is reviewed against the door's threshold
    (:func:`edge.enrolment.review`). Faces that look like another enrolled person at that threshold carry a
    warning."""
    return [_verdict(r) for r in _enrol(web, user, named_images, source, choose)]


def enrol_camera_frames(web, user, named_frames, keep: int) -> tuple[list[Verdict], str | None]:
    """:func:`enrol_images` for door-camera frames (the ``keep`` most different good ones), and a sentence when
    the frames were mostly one look because the person did not turn their head (:func:`turn_advice`)."""
    results = _enrol(web, user, named_frames, "camera", keep)
    return [_verdict(r) for r in results], turn_advice(results, wanted=keep)


def _enrol(web, user, named_images, source: str, choose: int | None):
    rank = Ranker.for_gallery(web.store.gallery(web.engine.model_id), aggregation=web.cfg.decision.aggregation,
                              centre=getattr(web.engine, "score_centre", None))
    policy, _source = door_policy(web.cfg.decision, web.store.settings, security=web.engine.security,
                                  model_threshold=web.engine.threshold, people=len(rank))
    review_threshold = None if web.is_admin() else policy.threshold
    return enrol(web.store, web.engine, user.id, named_images, source=source, choose=choose,
                 review_threshold=review_threshold, lookalike_threshold=policy.threshold)


def _verdict(r) -> Verdict:
    return Verdict(r.name, r.ok, r.reasons, crop_data_uri(r.crop), r.quality, r.decoded, r.pending, r.warnings)


def enrol_uploads(web, user, uploads, source: str = "upload") -> list[Verdict]:
    """:func:`enrol_images` for uploaded files, each decoded only when its turn comes, so one decoded photograph
    is in memory at a time (issue 11: twenty large uploads decoded up front took 3 GB)."""
    return enrol_images(web, user, ((u.raw_filename, _decoded(u)) for u in uploads), source)


def _decoded(upload) -> np.ndarray | ImageError:
    try:
        return decode_upload(upload)
    except ImageError as exc:
        return exc


@dataclass
class Match:
    crop_uri: str
    username: str | None
    similarity: float | None
    accepted: bool
    runner_up: tuple[str, float] | None = None


def recognise(web, image: np.ndarray) -> tuple[list[Match], float]:
    """Every face in the image with its best match among active users, and the threshold used.

    Ranked exactly as the door ranks a frame (same aggregation, threshold and margin), so a match here means one
    frame that would vote for that person at the door.
    """
    rank = Ranker.for_gallery(web.store.gallery(web.engine.model_id), aggregation=web.cfg.decision.aggregation,
                              centre=getattr(web.engine, "score_centre", None))
    policy, _source = door_policy(web.cfg.decision, web.store.settings, security=web.engine.security,
                                  model_threshold=web.engine.threshold, people=len(rank))
    threshold = policy.threshold
    faces = web.engine.faces(image)          # the engine serialises its own models
    results = []
    for face in faces:
        names = [(_username(web, uid), float(score)) for uid, score in rank(face.embedding, top=2)]
        best = names[0] if names else (None, None)
        runner_up = names[1] if len(names) > 1 else None
        matched = best[1] is not None and votes_for(policy, Candidate(
            user_id=best[0], score=best[1], runner_up=runner_up[1] if runner_up else -1.0,
            embedding=face.embedding))
        results.append(Match(crop_data_uri(face.crop), best[0], best[1], matched, runner_up))
    return results, threshold


def _username(web, user_id) -> str:
    user = web.store.get_user(user_id)
    return user.username if user else str(user_id)
