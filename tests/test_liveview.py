"""The live view: MJPEG parts from a real folder camera, scaled down with the door's judgement drawn, a
bounded number of viewers, a placeholder when there is no picture, and the door's frames never written to."""

from __future__ import annotations

import shutil
import time

import cv2
import numpy as np
import pytest

from edge.camera import CameraFeed, FolderSource
from edge.liveview import BOUNDARY, LiveView, Sighting, camera_available

OBAMA = "face_recognition_examples/obama/obama.jpg"


def parse_part(part: bytes) -> np.ndarray:
    head, _, body = part.partition(b"\r\n\r\n")
    assert head.startswith(f"--{BOUNDARY}\r\nContent-Type: image/jpeg".encode())
    length = int(head.split(b"Content-Length: ")[1])
    assert body[length:] == b"\r\n"
    return cv2.imdecode(np.frombuffer(body[:length], np.uint8), cv2.IMREAD_COLOR)


@pytest.fixture
def feed(tmp_path, faces_dir):
    folder = tmp_path / "camera"
    folder.mkdir()
    shutil.copy(faces_dir / OBAMA, folder / "a.jpg")
    feed = CameraFeed(FolderSource(folder=folder, fps=20)).start()
    yield feed
    feed.stop()


def test_stream_shows_scaled_frames_with_the_face_box_and_leaves_the_door_frame_alone(feed, faces_dir):
    original = cv2.imread(str(faces_dir / OBAMA))
    h, w = original.shape[:2]
    box = (w // 4, h // 4, w // 2, h // 2)
    sighting = Sighting(time=time.monotonic() + 3600, box=box, user_id="u1", score=0.81, passes=True)
    view = LiveView(feed.latest, lambda: sighting, name_of={"u1": "barack"}.get, fps=10, width=240)
    stream = view.stream()
    parts = iter(stream)
    frames = [parse_part(next(parts)) for _ in range(3)]
    stream.close()
    assert view.viewers == 0
    scale = 240 / w
    for frame in frames:
        assert frame.shape[1] == 240 and abs(frame.shape[0] - round(h * scale)) <= 1
        x, y, bw, bh = (round(v * scale) for v in box)
        edge = frame[y + bh // 2 - 3: y + bh // 2 + 3, x - 1: x + 2].reshape(-1, 3).astype(int)
        assert np.all(edge[:, 1] > edge[:, 2] + 60), edge             # the box's left side is green
    _seq, _t, door_frame = feed.latest(after=0, timeout=1)
    assert np.array_equal(door_frame, original)                        # the door's frame is untouched


def test_a_stale_sighting_is_not_drawn(feed, faces_dir):
    original = cv2.imread(str(faces_dir / OBAMA))
    sighting = Sighting(time=time.monotonic() - 10, box=(10, 10, 100, 100), user_id=None, score=0.2, passes=False)
    view = LiveView(feed.latest, lambda: sighting, fps=10, width=original.shape[1])
    frame = cv2.imdecode(np.frombuffer(view.snapshot(timeout=2), np.uint8), cv2.IMREAD_COLOR)
    where = np.s_[20:100, 8:13]                                        # where the box's left side would be
    assert np.abs(frame[where].astype(int) - original[where].astype(int)).mean() < 10


def test_viewers_are_bounded_and_get_their_place_back_even_unstarted(feed):
    view = LiveView(feed.latest, lambda: None, fps=10, max_viewers=2)
    first, second = view.stream(), view.stream()
    assert view.stream() is None and view.viewers == 2
    first.close()
    second.close()
    second.close()                                                     # closing twice gives back one place
    assert view.viewers == 0
    third = view.stream()
    next(iter(third))
    del third
    assert view.viewers == 0


def test_no_picture_gives_a_placeholder_and_closing_ends_every_stream():
    view = LiveView(lambda after, timeout: (after, 0.0, None), lambda: None, fps=10, no_frame_seconds=0.01,
                    width=320)
    assert view.snapshot() is None
    stream = view.stream()
    parts = iter(stream)
    image = parse_part(next(parts))
    assert image.shape == (240, 320, 3) and image.max() > 150          # dark frame with light text
    view.close()
    assert list(parts) == [] and view.viewers == 0
    assert view.stream() is None
    assert camera_available("running") and camera_available("retrying") and not camera_available("none")


def test_a_viewer_that_asks_again_ends_its_previous_stream_at_once(feed):
    view = LiveView(feed.latest, lambda: None, fps=10, max_viewers=1)
    first = iter(view.stream(viewer="browser-a"))
    next(first)
    assert view.stream(viewer="browser-b") is None                     # full
    second = view.stream(viewer="browser-a")                           # the same browser reloads the page
    assert second is not None
    assert list(first) == [] and view.viewers == 1                     # the old stream ended by itself
    parse_part(next(iter(second)))
    second.close()
    assert view.viewers == 0
