"""Frame sources: the Pi camera adapter against picamera2's documented calls; real OpenCV video files and
folders made from the photographs in ../shared/faces; the capture thread's retry and latest-frame behaviour."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import camera_frame
from edge import config
from edge.camera import (CameraFeed, FolderSource, OpenCVSource, PicameraSource, source_from_config)
from edge.errors import CameraError


# ---------------------------------------------------------------- a recording stand-in for picamera2.Picamera2
class FakePicamera2:
    """Follows picamera2's documented API: Picamera2(camera_num) (IndexError without a camera),
    create_video_configuration(main={...}), configure, start, capture_array(name, wait=False) -> job,
    wait(job, timeout=...) -> array or TimeoutError, stop, close. It records every call."""

    attached = True
    stall_after: int | None = None
    instances: list = []

    def __init__(self, camera_num=0):
        if not type(self).attached:
            raise IndexError("list index out of range")  # what picamera2 raises with no camera
        self.calls = [("init", camera_num)]
        self.config = None
        self.started = False
        self.captured = 0
        type(self).instances.append(self)

    def create_video_configuration(self, main=None, controls=None, **kwargs):
        self.calls.append(("create_video_configuration", main, controls))
        return {"use_case": "video", "main": dict(main or {}), "controls": controls or {}}

    def configure(self, config):
        assert config["main"]["format"] == "RGB888"
        self.calls.append(("configure", config))
        self.config = config

    def start(self):
        assert self.config is not None, "start() before configure()"
        self.calls.append(("start",))
        self.started = True

    def capture_array(self, name="main", wait=None, signal_function=None):
        assert self.started, "capture before start()"
        self.calls.append(("capture_array", name, wait))
        assert wait is False, "the adapter must not block without a timeout"
        return ("job", name)

    def wait(self, job, timeout=None):
        self.calls.append(("wait", timeout))
        assert timeout is not None and timeout > 0
        if type(self).stall_after is not None and self.captured >= type(self).stall_after:
            raise TimeoutError()
        self.captured += 1
        w, h = self.config["main"]["size"]
        frame = np.zeros((h, w, 3), np.uint8)
        frame[..., 0] = 255  # RGB888 = B,G,R in memory: channel 0 is blue
        return frame

    def stop(self):
        self.calls.append(("stop",))
        self.started = False

    def close(self):
        self.calls.append(("close",))


@pytest.fixture
def fake_picamera2():
    class Cam(FakePicamera2):
        attached = True
        stall_after = None
        instances = []

    return Cam


def test_picamera_adapter_requests_bgr_at_the_configured_size_and_times_out(fake_picamera2):
    src = PicameraSource(width=640, height=480, fps=15, timeout=1.5, picamera2_class=fake_picamera2)
    src.open()
    frame = src.read()
    assert frame.shape == (480, 640, 3) and frame.dtype == np.uint8
    assert frame[0, 0].tolist() == [255, 0, 0]  # delivered as BGR, no conversion
    cam = fake_picamera2.instances[0]
    names = [c[0] for c in cam.calls]
    assert names == ["init", "create_video_configuration", "configure", "start", "capture_array", "wait"]
    assert cam.calls[1][1] == {"format": "RGB888", "size": (640, 480)}
    assert ("capture_array", "main", False) in cam.calls and ("wait", 1.5) in cam.calls
    src.close()
    assert [c[0] for c in cam.calls][-2:] == ["stop", "close"]


def test_picamera_stall_becomes_a_camera_error(fake_picamera2):
    fake_picamera2.stall_after = 2
    src = PicameraSource(timeout=0.2, picamera2_class=fake_picamera2)
    src.open()
    src.read(), src.read()
    with pytest.raises(CameraError, match="no frame for 0.2 s"):
        src.read()
    src.close()


def test_no_pi_camera_attached_is_a_clear_error(fake_picamera2):
    fake_picamera2.attached = False
    with pytest.raises(CameraError, match="no Raspberry Pi camera is attached"):
        PicameraSource(picamera2_class=fake_picamera2).open()


def test_missing_picamera2_library_is_explained():
    try:  # picamera2 exists only on Raspberry Pi OS
        import picamera2  # noqa: F401
    except ImportError:
        with pytest.raises(CameraError, match="python3-picamera2"):
            PicameraSource().open()
    else:  # pragma: no cover - running on a Pi
        pytest.skip("picamera2 is installed here")


def test_auto_prefers_the_pi_camera(fake_picamera2):
    cfg = config.Config().camera
    src = source_from_config(cfg, picamera2_class=fake_picamera2)
    assert isinstance(src, PicameraSource)


def test_auto_without_any_camera_is_none(fake_picamera2):
    fake_picamera2.attached = False
    assert source_from_config(config.Config().replace("camera", device="0").camera,
                              picamera2_class=fake_picamera2) is None  # no /dev/video0 here either


# ---------------------------------------------------------------- real OpenCV and folder sources from photos
def photos(faces_dir: Path, count: int) -> list[Path]:
    people = sorted(p for p in (faces_dir / "lfw_view1").iterdir() if p.is_dir())
    return [sorted(p.glob("*.jpg"))[0] for p in people[:count]]


def write_video(path: Path, frames: list[np.ndarray], fps=15.0) -> Path:
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    assert writer.isOpened()
    for f in frames:
        writer.write(f)
    writer.release()
    return path


def test_video_file_of_real_photos_plays_in_order_and_loops(faces_dir, tmp_path):
    frames = [camera_frame(p) for p in photos(faces_dir, 4)]
    video = write_video(tmp_path / "door.avi", frames)
    src = OpenCVSource(device=str(video), fps=120, loop=True)
    src.open()
    got = [src.read() for _ in range(6)]
    src.close()
    assert all(g.shape == (480, 640, 3) and g.dtype == np.uint8 for g in got)
    # MJPG is lossy: frames match their source closely, and the 5th frame is the first again
    diffs = [float(np.abs(g.astype(int) - frames[i % 4].astype(int)).mean()) for i, g in enumerate(got)]
    assert max(diffs) < 6.0
    assert float(np.abs(got[0].astype(int) - frames[1].astype(int)).mean()) > 10.0


def test_video_file_without_loop_ends_with_camera_error(faces_dir, tmp_path):
    video = write_video(tmp_path / "short.avi", [camera_frame(p) for p in photos(faces_dir, 2)])
    src = OpenCVSource(device=str(video), fps=120, loop=False)
    src.open()
    src.read(), src.read()
    with pytest.raises(CameraError, match="video ended"):
        src.read()
    src.close()


def test_opencv_bad_device_is_a_clear_error(tmp_path):
    with pytest.raises(CameraError, match="neither a camera index"):
        OpenCVSource(device=str(tmp_path / "nope.avi")).open()
    with pytest.raises(CameraError, match="cannot open camera 9"):
        OpenCVSource(device="9", timeout=0.5).open()


def test_folder_source_plays_real_photos_at_the_frame_rate(faces_dir, tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, p in enumerate(photos(faces_dir, 3)):
        cv2.imwrite(str(folder / f"{i:03d}.png"), camera_frame(p))
    (folder / "notes.txt").write_text("not an image")
    src = FolderSource(folder=folder, fps=20, loop=True)
    src.open()
    start = time.monotonic()
    got = [src.read() for _ in range(7)]
    elapsed = time.monotonic() - start
    src.close()
    assert np.array_equal(got[0], got[3]) and np.array_equal(got[1], got[4])
    assert not np.array_equal(got[0], got[1])
    assert elapsed >= 6 / 20 * 0.9  # paced, not as fast as the disk (a lower bound, not a speed test)


def test_folder_without_images_is_a_clear_error(tmp_path):
    with pytest.raises(CameraError, match="holds no images"):
        FolderSource(folder=tmp_path).open()
    with pytest.raises(CameraError, match="is not a folder"):
        FolderSource(folder=tmp_path / "missing").open()


# ---------------------------------------------------------------- the capture thread
class FlakySource:
    """A real folder source that fails on cue: opening fails `open_failures` times, reads stop after `reads`."""

    name = "flaky"

    def __init__(self, inner, *, open_failures=0, reads_before_failure=None):
        self.inner = inner
        self.open_failures = open_failures
        self.reads_left = reads_before_failure
        self.opens = 0

    def open(self):
        self.opens += 1
        if self.open_failures > 0:
            self.open_failures -= 1
            raise CameraError("camera unplugged")
        self.inner.open()

    def read(self):
        if self.reads_left is not None:
            if self.reads_left <= 0:
                self.reads_left = None
                raise CameraError("camera stalled")
            self.reads_left -= 1
        return self.inner.read()

    def close(self):
        self.inner.close()


@pytest.fixture
def photo_folder(faces_dir, tmp_path):
    folder = tmp_path / "cam"
    folder.mkdir()
    for i, p in enumerate(photos(faces_dir, 3)):
        cv2.imwrite(str(folder / f"{i}.jpg"), camera_frame(p))
    return folder


def test_feed_retries_a_failing_camera_with_backoff_and_reports_recovery(photo_folder):
    events = []
    src = FlakySource(FolderSource(folder=photo_folder, fps=50), open_failures=2, reads_before_failure=3)
    feed = CameraFeed(src, retry_initial=0.05, retry_max=0.2, on_failure=lambda m: events.append(("fail", m)),
                      on_recovered=lambda: events.append(("ok",))).start()
    try:
        seq = 0
        for _ in range(10):
            seq, _, frame = feed.latest(after=seq, timeout=3)
            assert frame is not None
        state = feed.state()
    finally:
        feed.stop()
    assert src.opens >= 4  # two failed opens, one stall, then it came back
    assert events[0] == ("fail", "camera unplugged") and ("ok",) in events
    assert ("fail", "camera stalled") in events
    assert state["state"] == "running" and state["failures"] == 3


def test_feed_keeps_only_the_latest_frame(photo_folder):
    feed = CameraFeed(FolderSource(folder=photo_folder, fps=100)).start()
    try:
        seq1, _, _ = feed.latest(timeout=3)
        time.sleep(0.3)  # a slow consumer
        seq2, _, frame = feed.latest(after=seq1, timeout=3)
    finally:
        feed.stop()
    assert seq2 - seq1 > 5  # the frames in between were dropped, not queued
    assert frame is not None


def test_feed_without_camera_reports_none_and_times_out_quietly():
    feed = CameraFeed(None).start()
    assert feed.state()["state"] == "none"
    assert feed.latest(timeout=0.05) == (0, 0.0, None)
    feed.stop()


def test_feed_survives_an_unexpected_driver_exception(photo_folder):
    class Broken(FlakySource):
        def read(self):
            if self.reads_left == 0:
                self.reads_left = None
                raise RuntimeError("driver bug")
            if self.reads_left is not None:
                self.reads_left -= 1
            return self.inner.read()

    feed = CameraFeed(Broken(FolderSource(folder=photo_folder, fps=50), reads_before_failure=1),
                      retry_initial=0.05).start()
    try:
        seq = 0
        for _ in range(4):
            seq, _, frame = feed.latest(after=seq, timeout=3)
            assert frame is not None
        assert feed.state()["failures"] == 1 and feed.state()["state"] == "running"
    finally:
        feed.stop()
    assert not any(t.name == "capture" for t in threading.enumerate())
