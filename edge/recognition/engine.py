"""FaceEngine: image in, faces with embeddings out; the one object the service, the web page and the CLI share.

It owns the two models (YuNet detector, FaceNet embedder), loaded only after their sha256 matches the
manifest, and knows which threshold the manifest measured for this embedder. The daemon's recognition thread
and the web thread both call it, so each model sits behind its own lock (OpenCV's detector and a TFLite
interpreter are not thread-safe); detection of one image can overlap with embedding of another. The door's
thread (:meth:`FaceEngine.prefer_current_thread`) has a detector of its own, so detecting faces in a large upload
never makes it wait, and it goes first at the shared embedder: while it waits, other threads queue behind it.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..config import DEFAULT_MODELS_DIR
from ..errors import ImageError, ModelError
from . import align, models
from .detect import Detection, create_detector, detect_faces
from .images import MIN_SIDE
from .embed import embed_crops, run_model
from .quality import MIN_FACE_PX, Quality, assess
from .security import Security

log = logging.getLogger(__name__)

# Another face counts as "a second person in the photograph" at enrolment when its box is at least this
# fraction of the largest face's size; smaller faces are people far in the background.
OTHER_FACE_FRACTION = 0.4


class DoorFirstLock:
    """A lock whose preferred threads, while waiting, go before every other waiter."""

    def __init__(self, preferred: set[int]):
        self._preferred = preferred
        self._cond = threading.Condition()
        self._held = False
        self._preferred_waiting = 0

    def __enter__(self):
        urgent = threading.get_ident() in self._preferred
        with self._cond:
            if urgent:
                self._preferred_waiting += 1
            try:
                while self._held or (not urgent and self._preferred_waiting):
                    self._cond.wait()
            finally:
                if urgent:
                    self._preferred_waiting -= 1
            self._held = True
        return self

    def __exit__(self, *exc):
        with self._cond:
            self._held = False
            self._cond.notify_all()


@dataclass(frozen=True, eq=False)
class Face:
    """One detected face. ``box`` is (x, y, w, h) and ``landmarks`` (5, 2) in image pixels; ``crop`` is the
    aligned BGR crop the embedding was computed from; ``embedding`` is float32 and L2-normalised."""

    box: tuple[int, int, int, int]
    landmarks: np.ndarray
    score: float
    quality: Quality
    embedding: np.ndarray
    crop: np.ndarray

    @property
    def size(self) -> float:
        return float(min(self.box[2], self.box[3]))


class FaceEngine:
    """Detect, align, embed. All options are keyword-only; :meth:`from_config` reads them from the config."""

    def __init__(self, *, models_dir: str | Path = DEFAULT_MODELS_DIR, model: str = "facenet-int8",
                 num_threads: int = 0, detector_score: float = 0.8, flip_average: bool = True,
                 detect_max_side: int = 1280, min_face_px: float = MIN_FACE_PX):
        self._models_dir = Path(models_dir)
        manifest = models.load_manifest(self._models_dir)
        entry = models.model_entry(manifest, model)
        if entry.get("kind", "embedder") != "embedder":
            raise ModelError(f"model {model!r} is a {entry.get('kind')}, not a face embedder; "
                             f"set recognition.model to one of the facenet models")
        detector_entry = models.model_entry(manifest, manifest.get("detector", "yunet"))
        self._entry = entry
        self.model_id: str = models.versioned_id(entry)
        self.threshold: float = float(entry["threshold"])
        self.security: Security | None = None     # the score distributions the door threshold is derived from
        if "security" in entry:
            try:
                self.security = Security.from_manifest(entry)
            except ValueError as exc:
                log.warning("%s: %s", model, exc)
        else:
            log.warning("%s: the manifest has no security calibration, so the security level cannot be applied; "
                        "the door uses its earlier default threshold unless one is set (rebuild the models with "
                        "`edge-face models build`)", model)
        # The door compares in the calibration's centred space (edge.recognition.match.centred), or plainly
        # when the calibration has no centre.
        self.score_centre: np.ndarray | None = self.security.centre if self.security is not None else None
        self.flip_average = bool(flip_average)
        self.detect_max_side = int(detect_max_side)
        self.min_face_px = float(min_face_px)
        self._colour_order = str(entry.get("colour_order", "RGB"))
        self._input_size = int(entry.get("input_size", [160, 160])[0])
        self._interpreter = models.make_interpreter(models.verified_path(self._models_dir, entry), num_threads)
        self._detector_path = models.verified_path(self._models_dir, detector_entry)
        self._detector_score = detector_score
        self._detector: Any = create_detector(self._detector_path, score_threshold=detector_score)
        self._door_detector: Any = None     # made by prefer_current_thread: the door never queues behind the web
        self.embedding_size: int = self._check_model_shape(int(entry.get("output_size", 128)))
        self._preferred: set[int] = set()
        self._detect_lock = DoorFirstLock(self._preferred)
        self._door_detect_lock = threading.Lock()
        self._embed_lock = DoorFirstLock(self._preferred)
        log.debug("face engine ready: %s (threshold %.3f, flip averaging %s)", self.model_id, self.threshold,
                 "on" if self.flip_average else "off")

    @classmethod
    def from_config(cls, cfg) -> "FaceEngine":
        """The engine described by ``cfg.recognition`` and ``cfg.models_dir``."""
        r = cfg.recognition
        return cls(models_dir=cfg.models_dir, model=r.model, num_threads=r.num_threads,
                   detector_score=r.detector_score, flip_average=r.flip_average,
                   detect_max_side=r.detect_max_side, min_face_px=cfg.decision.min_face_px)

    def faces(self, image: np.ndarray, *, limit: int | None = None,
              detect_max_side: int | None = None) -> list[Face]:
        """Every face in a BGR image, largest first, each with its embedding and quality.

        ``limit`` embeds only the largest faces (the door looks at the nearest person only);
        ``detect_max_side`` overrides the detection size, e.g. smaller for camera frames where faces are near.
        """
        image = _check_image(image)
        detections = self.detect(image, max_side=detect_max_side)
        if not detections:
            return []
        if limit is not None:                       # detect_faces returns them largest first
            detections = detections[:limit]
        crops = np.stack([self.align(image, d) for d in detections])
        embeddings = self.embed(crops)
        faces = [Face(box=_int_box(d.box), landmarks=d.landmarks, score=d.score,
                      quality=assess(crop, d.size, min_face_px=self.min_face_px), embedding=emb, crop=crop)
                 for d, crop, emb in zip(detections, crops, embeddings)]
        faces.sort(key=lambda f: f.box[2] * f.box[3], reverse=True)   # stable: by the boxes callers see
        return faces

    def prefer_current_thread(self) -> None:
        """The calling thread (the door's recognition loop) gets a detector of its own and the embedder before
        any other waiting thread."""
        with self._door_detect_lock:
            if self._door_detector is None:
                self._door_detector = create_detector(self._detector_path, score_threshold=self._detector_score)
        self._preferred.add(threading.get_ident())

    def enrollment_face(self, image: np.ndarray) -> Face:
        """The one good face of an enrolment photograph, or an ImageError listing every reason it is not."""
        return enrollment_choice(self.faces(image))

    # The stages, public for benchmarks and tools that need one of them alone.

    def detect(self, image: np.ndarray, *, max_side: int | None = None) -> list[Detection]:
        side = max_side or self.detect_max_side
        if threading.get_ident() in self._preferred:
            with self._door_detect_lock:
                return detect_faces(self._require(self._door_detector), image, max_side=side)
        with self._detect_lock:
            return detect_faces(self._require(self._detector), image, max_side=side)

    def align(self, image: np.ndarray, detection: Detection) -> np.ndarray:
        return align.align_face(image, detection.landmarks, size=self._input_size)

    def embed(self, crops: np.ndarray) -> np.ndarray:
        """L2-normalised embeddings (N, D) of aligned BGR crops (N, S, S, 3)."""
        interpreter = self._require(self._interpreter)
        with self._embed_lock:
            return embed_crops(interpreter, crops, flip_average=self.flip_average, colour_order=self._colour_order)

    def close(self) -> None:
        """Release the models; the engine cannot be used afterwards. Safe to call twice."""
        with self._embed_lock, self._detect_lock, self._door_detect_lock:
            self._interpreter = None
            self._detector = None
            self._door_detector = None

    def __enter__(self) -> "FaceEngine":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _require(self, part):
        if part is None:
            raise RuntimeError("the face engine has been closed")
        return part

    def _check_model_shape(self, expected_outputs: int) -> int:
        """The model must take the manifest's input and produce its output size, or thresholds mean nothing."""
        inp = self._interpreter.get_input_details()[0]
        shape = tuple(int(v) for v in inp["shape"][1:])
        if shape != (self._input_size, self._input_size, 3):
            raise ModelError(f"model {self._entry['id']} takes input {shape}, the manifest says "
                             f"{self._input_size}x{self._input_size}x3; {models.REBUILD_HINT}")
        probe = np.zeros((1, self._input_size, self._input_size, 3), np.float32)
        outputs = run_model(self._interpreter, probe).shape[1]
        if outputs != expected_outputs:
            raise ModelError(f"model {self._entry['id']} gives {outputs} values, the manifest says "
                             f"{expected_outputs}; {models.REBUILD_HINT}")
        return outputs


def _check_image(image) -> np.ndarray:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        desc = f"{image.dtype} {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
        raise ImageError(f"expected a BGR image of 8-bit pixels (H, W, 3), got {desc}; "
                         f"decode files with edge.recognition.load_image")
    if min(image.shape[:2]) < MIN_SIDE:
        raise ImageError(f"the image is too small ({image.shape[1]} x {image.shape[0]} pixels) to show a face")
    return image


def _int_box(box: tuple[float, float, float, float]) -> tuple[int, int, int, int]:
    x, y, w, h = (int(round(v)) for v in box)
    return x, y, w, h


def enrollment_choice(found: list[Face]) -> Face:
    """The one good face among ``found`` (largest first), or an ImageError listing every reason there is none.

    A plain function so that a caller that already has the faces (the web page shows a rejected photograph's
    crop) does not detect and embed the photograph a second time.
    """
    if not found:
        raise ImageError("no face was found in the photograph: use a well-lit photograph that shows the "
                         "whole face from the front")
    main = found[0]
    others = [f for f in found[1:] if f.size >= OTHER_FACE_FRACTION * main.size]
    reasons = []
    if others:
        count = len(others) + 1
        reasons.append(f"{_number_word(count)} faces in the photograph: use a photograph of one person only")
    reasons.extend(main.quality.reasons)
    if reasons:
        raise ImageError("the photograph cannot be used for enrolment: " + "; ".join(reasons))
    return main


def _number_word(n: int) -> str:
    words = {2: "two", 3: "three", 4: "four", 5: "five", 6: "six"}
    return words.get(n, str(n))
