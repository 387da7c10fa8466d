"""The dashboard's live view: a low-rate MJPEG stream of what the door sees, with its judgement drawn in.

It never slows the door: it *reuses* what the door already has (the capture thread's latest frame and the door
loop's latest :class:`Sighting`) and does all its own work (scaling down, drawing, JPEG encoding) in the web
thread that serves the stream, at most :attr:`LiveView.fps` frames a second, shared between viewers (two
viewers cost one encode per frame), with at most :attr:`LiveView.max_viewers` streams at once. Nothing runs
when nobody watches: the stream is a generator that ends when the browser goes away (the write fails), the
service stops, or after ``max_seconds`` (a forgotten tab does not hold a web thread for ever).

No camera is a state, not an error: the stream then shows a "no picture" frame, and the page shows a
placeholder instead of the stream (see :func:`camera_available`).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Callable, Generator, Hashable, Iterator

import cv2
import numpy as np

log = logging.getLogger(__name__)

BOUNDARY = "frame"
CONTENT_TYPE = f"multipart/x-mixed-replace; boundary={BOUNDARY}"
GREEN, AMBER, RED, WHITE = (60, 170, 40), (0, 160, 230), (40, 40, 210), (255, 255, 255)


@dataclass(frozen=True)
class Sighting:
    """What the door made of its latest frame with a face (drawn on the live view).

    ``time`` is the door loop's clock (monotonic); ``box`` (x, y, w, h) in the frame's pixels; ``passes``: the
    frame votes for ``user_id`` under the current policy; ``liveness``: the liveness verdict of the face's track,
    "live", "spoof" or "undecided" (None: liveness is off)."""

    time: float
    box: tuple
    user_id: str | None
    score: float
    passes: bool
    liveness: str | None = None


def camera_available(state: str) -> bool:
    """Whether a stream is worth showing for a camera in ``state`` (``edge.status.CameraStatus.state``)."""
    return state in ("starting", "running", "retrying")


class LiveView:
    """MJPEG frames from ``latest(after=seq, timeout=s) -> (seq, t, frame|None)`` (:meth:`CameraFeed.latest`)
    and ``sighting() -> Sighting|None``; ``name_of(user_id)`` turns the candidate into a name, in the web
    thread (the door loop does no extra work for the live view)."""

    def __init__(self, latest: Callable[..., tuple], sighting: Callable[[], Sighting | None], *,
                 name_of: Callable[[str], str | None] = lambda uid: uid, fps: float = 3.0, width: int = 480,
                 max_viewers: int = 2, max_seconds: float = 900.0, sighting_max_age: float = 1.0,
                 no_frame_seconds: float = 2.0, clock: Callable[[], float] = time.monotonic):
        self._latest = latest
        self._sighting = sighting
        self._name_of = name_of
        self.fps = float(fps)
        self.width = int(width)
        self.max_viewers = int(max_viewers)
        self.max_seconds = float(max_seconds)
        self.sighting_max_age = float(sighting_max_age)
        self.no_frame_seconds = float(no_frame_seconds)
        self.clock = clock
        self._lock = threading.Lock()
        self._viewers = 0
        self._cache: tuple[int, bytes] | None = None       # (frame sequence, encoded JPEG) shared by viewers
        self._closed = threading.Event()
        self._streams: dict[Hashable, threading.Event] = {}   # viewer -> its stream's stop signal
        self.encoded = 0                                    # frames encoded (tests, benchmark)

    @property
    def viewers(self) -> int:
        with self._lock:
            return self._viewers

    # ------------------------------------------------------------------ one picture
    def render(self, frame: np.ndarray, sighting: Sighting | None = None) -> np.ndarray:
        """``frame`` scaled down to :attr:`width` with the sighting drawn on a copy (the door's frame is shared
        with the door loop and is never written to)."""
        h, w = frame.shape[:2]
        scale = min(1.0, self.width / w)
        if scale < 1.0:
            image = cv2.resize(frame, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
        else:
            image = frame.copy()
        if sighting is not None:
            self._draw(image, sighting, scale)
        return image

    def _draw(self, image: np.ndarray, s: Sighting, scale: float) -> None:
        x, y, w, h = (round(v * scale) for v in s.box)
        name = self._name_of(s.user_id) if s.user_id else None
        if s.liveness == "spoof":
            colour, label = RED, f"SPOOF? {name or 'unknown'} {s.score:.2f}"
        elif s.passes:
            colour, label = GREEN, f"{name} {s.score:.2f}"
        elif name:
            colour, label = AMBER, f"{name}? {s.score:.2f}"
        else:
            colour, label = RED, f"unknown {s.score:.2f}"
        if s.liveness == "live":
            label += " live"
        elif s.liveness == "undecided":
            label += " checking"
        cv2.rectangle(image, (x, y), (x + w, y + h), colour, 2)
        font, size, thick = cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1
        (tw, th), base = cv2.getTextSize(label, font, size, thick)
        top = y - th - base - 4 if y - th - base - 4 >= 0 else y + h
        cv2.rectangle(image, (x, top), (x + tw + 6, top + th + base + 4), colour, -1)
        cv2.putText(image, label, (x + 3, top + th + 2), font, size, WHITE, thick, cv2.LINE_AA)

    def placeholder(self, text: str = "No picture from the camera") -> bytes:
        return placeholder_jpeg(text, width=self.width)

    def snapshot(self, timeout: float = 0.0) -> bytes | None:
        """The latest frame with the sighting drawn, as JPEG; None when there is no frame."""
        seq, _t, frame = self._latest(after=0, timeout=timeout)
        if frame is None:
            return None
        return self._encoded(seq, frame)

    def _encoded(self, seq: int, frame: np.ndarray) -> bytes:
        with self._lock:
            if self._cache is not None and self._cache[0] == seq:
                return self._cache[1]
        sighting = self._sighting()
        if sighting is not None and self.clock() - sighting.time > self.sighting_max_age:
            sighting = None                             # the face has gone: do not draw a stale box
        data = _jpeg(self.render(frame, sighting))
        with self._lock:
            self._cache = (seq, data)
            self.encoded += 1
        return data

    # ------------------------------------------------------------------ the stream
    def stream(self, viewer: Hashable | None = None) -> "Stream | None":
        """The MJPEG body (an iterable of parts with ``close()``, as WSGI wants), or None when
        :attr:`max_viewers` are already watching. A ``viewer`` (the browser's session) that asks again (a reload,
        back to the dashboard) ends its previous stream at once, rather than when the server next writes to a
        connection the browser has already left."""
        with self._lock:
            if self._closed.is_set():
                return None
            previous = self._streams.get(viewer) if viewer is not None else None
            if previous is not None:
                previous.set()
            elif self._viewers >= self.max_viewers:
                return None
            stop = threading.Event()
            if viewer is not None:
                self._streams[viewer] = stop
            self._viewers += 1
        return Stream(self, stop, viewer)

    def close(self) -> None:
        """End every stream (the service is stopping)."""
        with self._lock:
            self._closed.set()
            for stop in self._streams.values():
                stop.set()

    def _left(self, stop: threading.Event, viewer: Hashable | None) -> None:
        with self._lock:
            self._viewers -= 1
            if viewer is not None and self._streams.get(viewer) is stop:
                del self._streams[viewer]

    def _parts(self, stop: threading.Event) -> Generator[bytes, None, None]:
        seq = 0
        period = 1.0 / self.fps
        deadline = self.clock() + self.max_seconds
        while not stop.is_set() and not self._closed.is_set() and self.clock() < deadline:
            started = self.clock()
            new_seq, _t, frame = self._latest(after=seq, timeout=self.no_frame_seconds)
            if stop.is_set():
                break
            if frame is None:
                yield _part(self.placeholder())
                continue
            seq = new_seq
            yield _part(self._encoded(seq, frame))
            wait = period - (self.clock() - started)
            if wait > 0 and stop.wait(wait):
                break


class Stream:
    """One viewer's stream; the viewer's place is given back on ``close()`` (the WSGI server calls it when the
    browser goes away) or when the stream ends, exactly once, even if it was never iterated."""

    def __init__(self, view: LiveView, stop: threading.Event, viewer: Hashable | None):
        self._view = view
        self._stop = stop
        self._viewer = viewer
        self._parts = view._parts(stop)
        self._open = True

    def __iter__(self) -> Iterator[bytes]:
        try:
            yield from self._parts
        finally:
            self.close()

    def close(self) -> None:
        if self._open:
            self._open = False
            self._parts.close()
            self._view._left(self._stop, self._viewer)

    def __del__(self):
        self.close()


def placeholder_jpeg(text: str, *, width: int = 480) -> bytes:
    """A dark 4:3 frame saying why there is no picture (so the page never shows a broken image)."""
    height = round(width * 3 / 4)
    image = np.full((height, width, 3), 40, np.uint8)
    font = cv2.FONT_HERSHEY_SIMPLEX
    (tw, th), _ = cv2.getTextSize(text, font, 0.6, 1)
    cv2.putText(image, text, ((width - tw) // 2, (height + th) // 2), font, 0.6, (220, 220, 220), 1, cv2.LINE_AA)
    return _jpeg(image)


def _jpeg(image: np.ndarray, quality: int = 70) -> bytes:
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("the live view frame could not be encoded")
    return bytes(data)


def _part(jpeg: bytes) -> bytes:
    return (f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n".encode("ascii")
            + jpeg + b"\r\n")
