"""Frame sources behind one small interface, and a capture thread that survives them failing.

A source has ``open()``, ``read() -> BGR uint8 (H, W, 3)`` and ``close()``; ``read`` raises
:class:`~edge.errors.CameraError` when the camera fails, stalls past its timeout or ends. Sources:

* :class:`PicameraSource` - the Pi camera through picamera2 (``RGB888`` is B,G,R in memory: no conversion);
* :class:`OpenCVSource` - ``cv2.VideoCapture`` on a USB camera index, a video file or a stream URL;
* :class:`FolderSource` - the images of a folder, played at a frame rate (development and tests).

:class:`CameraFeed` runs the capture thread: it keeps only the latest frame (a slow consumer never works on
stale pictures), and on failure closes the source and retries with exponential backoff, reporting each
failure and recovery, while the rest of the daemon stays up.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol

import cv2
import numpy as np

from .errors import CameraError, ConfigError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}


class FrameSource(Protocol):
    """What :class:`CameraFeed` needs of a camera: ``read`` raises CameraError on failure, stall or end."""

    name: str

    def open(self) -> None: ...

    def read(self) -> np.ndarray: ...

    def close(self) -> None: ...


def _as_bgr(frame) -> np.ndarray:
    """Frames must be (H, W, 3) uint8 BGR; a 4-channel or grey frame is converted, anything else refused."""
    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8:
        raise CameraError("the camera delivered something that is not an 8-bit image")
    if frame.ndim == 2:
        return cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
    if frame.ndim == 3 and frame.shape[2] == 4:
        return np.ascontiguousarray(frame[:, :, :3])  # XRGB8888 is B,G,R,X in memory
    if frame.ndim == 3 and frame.shape[2] == 3:
        return frame
    raise CameraError(f"the camera delivered frames of shape {frame.shape}, expected (height, width, 3)")


class PicameraSource:
    """The Pi camera via picamera2 (apt's ``python3-picamera2``).

    Requests ``main={"format": "RGB888", "size": (w, h)}`` in a video configuration, so ``capture_array("main")``
    returns B,G,R; each capture waits at most ``timeout`` seconds (``capture_array(wait=False)`` then
    ``wait(job, timeout=...)``), so a stalled camera raises instead of hanging the capture thread.
    ``Picamera2()`` raises IndexError when no camera is attached: that becomes a CameraError.
    """

    name = "picamera"

    def __init__(self, *, width: int = 640, height: int = 480, fps: float = 15.0, timeout: float = 2.0,
                 camera_num: int = 0, picamera2_class=None):
        self.width, self.height, self.fps, self.timeout = width, height, fps, timeout
        self.camera_num = camera_num
        self._class = picamera2_class
        self._cam = None

    @staticmethod
    def available() -> bool:
        try:
            import picamera2  # noqa: F401
        except Exception:
            return False
        return True

    def open(self) -> None:
        cls = self._class
        if cls is None:
            try:
                from picamera2 import Picamera2
                cls = Picamera2
            except Exception as exc:
                raise CameraError("picamera2 is not installed (on Raspberry Pi OS: sudo apt install "
                                  f"python3-picamera2) ({exc.__class__.__name__})") from None
        try:
            cam = cls(self.camera_num)
        except IndexError:
            raise CameraError("no Raspberry Pi camera is attached (Picamera2 found no camera); check the "
                              "ribbon cable or choose camera.source = \"opencv\"") from None
        except Exception as exc:
            raise CameraError(f"the Pi camera cannot be opened: {exc}") from None
        try:
            frame_us = int(1_000_000 / self.fps)
            config = cam.create_video_configuration(
                main={"format": "RGB888", "size": (self.width, self.height)},
                controls={"FrameDurationLimits": (frame_us, frame_us)})
            cam.configure(config)
            cam.start()
        except Exception as exc:
            _quietly(cam.close)
            raise CameraError(f"the Pi camera cannot be started: {exc}") from None
        self._cam = cam
        log.info("Pi camera started at %dx%d, %g fps", self.width, self.height, self.fps)

    def read(self) -> np.ndarray:
        if self._cam is None:
            raise CameraError("the Pi camera is not open")
        try:
            job = self._cam.capture_array("main", wait=False)
            frame = self._cam.wait(job, timeout=self.timeout)
        except TimeoutError:
            raise CameraError(f"the Pi camera delivered no frame for {self.timeout:g} s") from None
        except Exception as exc:
            raise CameraError(f"the Pi camera failed: {exc}") from None
        return _as_bgr(frame)

    def close(self) -> None:
        cam, self._cam = self._cam, None
        if cam is not None:
            _quietly(cam.stop)
            _quietly(cam.close)


class OpenCVSource:
    """``cv2.VideoCapture``: a camera index ("0"), a video file or a stream URL.

    Video files are paced at ``fps`` (they would otherwise be read as fast as the disk allows) and, with
    ``loop``, replayed from the start when they end; live sources deliver at their own rate.
    """

    name = "opencv"

    def __init__(self, *, device: str = "0", width: int = 640, height: int = 480, fps: float = 15.0,
                 timeout: float = 2.0, loop: bool = True):
        self.device = str(device)
        self.width, self.height, self.fps, self.timeout, self.loop = width, height, fps, timeout, loop
        self._cap: cv2.VideoCapture | None = None
        self._is_file = False
        self._pacer = _Pacer(fps)

    def _target(self):
        return int(self.device) if self.device.strip().isdigit() else self.device

    def open(self) -> None:
        target = self._target()
        self._is_file = isinstance(target, str) and Path(target).is_file()
        if isinstance(target, str) and "://" not in target and not self._is_file:
            raise CameraError(f"camera.device: {target} is neither a camera index, an existing video file "
                              "nor a stream URL")
        timeout_ms = int(self.timeout * 1000)
        params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, timeout_ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, timeout_ms]
        try:
            cap = cv2.VideoCapture(target, cv2.CAP_ANY, params)
        except (cv2.error, TypeError):
            cap = cv2.VideoCapture(target)
        if not cap.isOpened():
            cap.release()
            what = f"camera {target}" if isinstance(target, int) else str(target)
            raise CameraError(f"OpenCV cannot open {what}")
        if isinstance(target, int):
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.width)
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.height)
            cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # latest frame, not a queue of old ones
        self._cap = cap
        self._pacer.reset()
        log.info("OpenCV source %s opened", target if isinstance(target, int) else Path(str(target)).name)

    def read(self) -> np.ndarray:
        if self._cap is None:
            raise CameraError("the OpenCV camera is not open")
        ok, frame = self._cap.read()
        if not ok and self._is_file and self.loop:
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, frame = self._cap.read()
        if not ok or frame is None:
            raise CameraError("the video ended" if self._is_file else "the camera delivered no frame")
        if self._is_file:
            self._pacer.wait()
        return _as_bgr(frame)

    def close(self) -> None:
        cap, self._cap = self._cap, None
        if cap is not None:
            cap.release()


class FolderSource:
    """The images of a folder in name order, played at ``fps``; with ``loop`` it starts again at the end."""

    name = "folder"

    def __init__(self, *, folder: str | Path, fps: float = 15.0, loop: bool = True):
        self.folder = Path(folder)
        self.fps, self.loop = fps, loop
        self._files: list[Path] = []
        self._index = 0
        self._pacer = _Pacer(fps)
        self._cache: dict[Path, np.ndarray] = {}

    def open(self) -> None:
        if not self.folder.is_dir():
            raise CameraError(f"camera.folder: {self.folder} is not a folder")
        self._files = sorted(p for p in self.folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self._files:
            raise CameraError(f"camera.folder: {self.folder} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
        self._index = 0
        self._pacer.reset()

    def read(self) -> np.ndarray:
        if not self._files:
            raise CameraError("the folder source is not open")
        if self._index >= len(self._files):
            if not self.loop:
                raise CameraError(f"the last image of {self.folder} has been played")
            self._index = 0
        path = self._files[self._index]
        self._index += 1
        frame = self._cache.get(path)
        if frame is None:
            frame = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if frame is None:
                raise CameraError(f"{path.name} in the camera folder is not a readable image")
            if len(self._cache) < 256:  # replays cost no decoding, bounded memory
                self._cache[path] = frame
        self._pacer.wait()
        return frame

    def close(self) -> None:
        self._files = []


class _Pacer:
    """Sleeps so that successive frames are 1/fps apart (without drifting)."""

    def __init__(self, fps: float):
        self.period = 1.0 / fps
        self._next: float | None = None

    def reset(self) -> None:
        self._next = None

    def wait(self) -> None:
        now = time.monotonic()
        if self._next is None or now - self._next > self.period:  # first frame, or we fell behind: resync
            self._next = now
        elif self._next > now:
            time.sleep(self._next - now)
        self._next = (self._next or now) + self.period


def _quietly(fn) -> None:
    try:
        fn()
    except Exception:
        log.debug("ignored error while closing the camera", exc_info=True)


def source_from_config(cam_cfg, *, picamera2_class=None):
    """The source named by ``cfg.camera``; for "auto": Picamera2 if a Pi camera opens, else OpenCV device 0
    if it opens, else ``None`` (no camera: the daemon and its web page still run)."""
    timeout = cam_cfg.frame_timeout_seconds
    source = cam_cfg.source
    if source == "none":
        return None
    if source == "picamera":
        return PicameraSource(width=cam_cfg.width, height=cam_cfg.height, fps=cam_cfg.fps, timeout=timeout,
                              picamera2_class=picamera2_class)
    if source == "opencv":
        return OpenCVSource(device=cam_cfg.device, width=cam_cfg.width, height=cam_cfg.height, fps=cam_cfg.fps,
                            timeout=timeout, loop=cam_cfg.loop)
    if source == "folder":
        return FolderSource(folder=cam_cfg.folder, fps=cam_cfg.fps, loop=cam_cfg.loop)
    if source != "auto":
        raise ConfigError(f"camera.source: unknown source {source!r}")
    candidates = []
    if picamera2_class is not None or PicameraSource.available():
        candidates.append(PicameraSource(width=cam_cfg.width, height=cam_cfg.height, fps=cam_cfg.fps,
                                         timeout=timeout, picamera2_class=picamera2_class))
    candidates.append(OpenCVSource(device="0", width=cam_cfg.width, height=cam_cfg.height, fps=cam_cfg.fps,
                                   timeout=timeout, loop=cam_cfg.loop))
    for candidate in candidates:
        try:
            candidate.open()
        except CameraError as exc:
            log.info("camera auto: %s not usable: %s", candidate.name, exc)
            continue
        candidate.close()
        log.info("camera auto: using %s", candidate.name)
        return candidate
    log.warning("camera auto: no camera found (no Pi camera, no OpenCV device 0); running without a camera")
    return None


@dataclass
class CameraState:
    state: str  # "none" | "starting" | "running" | "retrying" | "stopped"
    source: str
    error: str = ""
    failures: int = 0
    frames: int = 0
    fps: float = 0.0
    retry_in: float = 0.0


class CameraFeed:
    """The capture thread: opens the source, keeps the latest frame, retries with backoff when it fails.

    ``on_failure(message)`` / ``on_recovered()`` are called from the capture thread (the service logs them to
    the access log). ``latest(after=seq, timeout=...)`` waits for a frame newer than ``seq``.
    """

    def __init__(self, source: FrameSource | None, *, retry_initial: float = 1.0, retry_max: float = 30.0,
                 on_failure: Callable[[str], None] | None = None, on_recovered: Callable[[], None] | None = None):
        self.source = source
        self.retry_initial, self.retry_max = retry_initial, retry_max
        self._on_failure, self._on_recovered = on_failure, on_recovered
        self._cond = threading.Condition()
        self._frame: np.ndarray | None = None
        self._frame_time = 0.0
        self._seq = 0
        self._stop = threading.Event()
        self._state = CameraState(state="none" if source is None else "starting",
                                  source="none" if source is None else source.name)
        self._rate: deque[float] = deque(maxlen=256)
        self._thread: threading.Thread | None = None

    def start(self) -> "CameraFeed":
        if self.source is not None and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="capture", daemon=True)
            self._thread.start()
        return self

    def state(self) -> dict:
        with self._cond:
            s = self._state
            return {"state": s.state, "source": s.source, "error": s.error, "failures": s.failures,
                    "frames": s.frames, "fps": round(s.fps, 1), "retry_in": round(s.retry_in, 1)}

    def latest(self, *, after: int = 0, timeout: float | None = None) -> tuple[int, float, np.ndarray | None]:
        """(sequence number, monotonic capture time, frame) of the newest frame newer than ``after``;
        ``(after, 0.0, None)`` if none came within ``timeout``."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._seq > after or self._stop.is_set(), timeout=timeout):
                return after, 0.0, None
            if self._seq <= after:
                return after, 0.0, None
            return self._seq, self._frame_time, self._frame

    def _publish(self, frame: np.ndarray) -> None:
        now = time.monotonic()
        with self._cond:
            self._frame, self._frame_time = frame, now
            self._seq += 1
            self._state.frames += 1
            self._rate.append(now)
            while self._rate and now - self._rate[0] > 2.0:
                self._rate.popleft()
            if len(self._rate) > 1:
                self._state.fps = (len(self._rate) - 1) / max(self._rate[-1] - self._rate[0], 1e-6)
            self._cond.notify_all()

    def _set(self, **fields) -> None:
        with self._cond:
            for key, value in fields.items():
                setattr(self._state, key, value)

    def _run(self) -> None:
        source = self.source
        assert source is not None              # start() runs this thread only for a source
        delay = self.retry_initial
        failed = False
        while not self._stop.is_set():
            try:
                source.open()
                try:
                    self._set(state="running", error="", retry_in=0.0)
                    if failed:
                        log.info("camera %s recovered", source.name)
                        failed = False
                        _call(self._on_recovered)
                    first = True
                    while not self._stop.is_set():
                        self._publish(source.read())
                        if first:  # a source that opens but never delivers must not reset the backoff
                            delay, first = self.retry_initial, False
                finally:
                    _quietly(source.close)
            except Exception as exc:  # CameraError, or anything a driver throws: the thread must survive
                if self._stop.is_set():
                    break
                message = str(exc) if isinstance(exc, CameraError) else f"{type(exc).__name__}: {exc}"
                with self._cond:
                    self._state.failures += 1
                    self._state.state, self._state.error, self._state.retry_in = "retrying", message, delay
                    self._state.fps = 0.0
                log.warning("camera %s failed: %s; retrying in %g s", source.name, message, delay)
                if not failed:
                    failed = True
                    _call(self._on_failure, message)
                self._stop.wait(delay)
                delay = min(delay * 2, self.retry_max)
        self._set(state="stopped")

    def stop(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            if self._thread.is_alive():
                log.warning("capture thread did not stop within 5 s (camera read blocked)")
            self._thread = None

    close = stop


def _call(fn, *args) -> None:
    if fn is None:
        return
    try:
        fn(*args)
    except Exception:
        log.exception("camera callback failed")
