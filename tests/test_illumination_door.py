"""The illuminator in the running service (MockFactory pins, a folder camera playing a real still face, the real
models): it pulses while a face is in view, is off when the service stops or its loop keeps crashing, refuses a
pin the door uses, and without ``[liveness] illuminator_pin`` nothing changes."""

from __future__ import annotations

import threading

import pytest
from gpiozero.pins.mock import MockFactory

from edge import config
from edge.config import Config
from edge.errors import SettingError
from edge.liveness import datasets

from door_fixtures import folder_door_service, wait_until

LIGHT = 6
DOOR_PINS = {17, 27, 22, 23, 24, 25, 5}


@pytest.fixture(scope="module")
def still_face(liveness_dir):
    seq = next(s for s in datasets.nuaa_sequences(liveness_dir, "live") if s.name.endswith("0006_00_00_01"))
    return [f for _, f in seq.frames()][:6]


def pin_numbers(factory) -> set[int]:
    return {int(info.name.removeprefix("GPIO")) for info in factory.pins}


def test_the_led_pulses_at_random_while_a_face_is_in_view_and_is_off_after_the_service_stops(
        tmp_path, engine, still_face):
    factory = MockFactory()
    svc = folder_door_service(tmp_path, engine, still_face, factory, illuminator_pin=LIGHT).start()
    light = factory.pin(LIGHT)
    try:
        assert svc.loop.liveness.illuminator is svc.illuminator
        # the folder camera shows a face: the pattern runs (both states, several changes)
        assert wait_until(lambda: len(light.states) >= 6), light.states
        assert {s.state for s in light.states[1:]} == {True, False}
        assert wait_until(lambda: "light_follow" in svc.loop.liveness.verdict.cues)   # the judge gets frames
    finally:
        svc.close()
    assert light.state is False and not svc.illuminator.is_lit


def test_a_recognition_loop_that_keeps_crashing_leaves_the_led_off(tmp_path, engine, still_face, monkeypatch):
    class FailingAfter:
        """The real engine, then a fault on every call (a driver error in recognition)."""

        def __init__(self, inner, good_calls):
            self.inner, self.calls, self.good_calls = inner, 0, good_calls

        def __getattr__(self, name):
            return getattr(self.inner, name)

        def faces(self, image, **options):
            self.calls += 1
            if self.calls > self.good_calls:
                raise RuntimeError("injected fault in recognition")
            return self.inner.faces(image, **options)

    import itertools
    import secrets

    pattern = itertools.cycle([1, 0])                  # on, off, on ...: the LED must have been on before
    monkeypatch.setattr(secrets, "randbits", lambda k: next(pattern))
    factory = MockFactory()
    light = factory.pin(LIGHT)
    svc = folder_door_service(tmp_path, FailingAfter(engine, 12), still_face, factory, illuminator_pin=LIGHT)
    result = {}
    runner = threading.Thread(target=lambda: result.setdefault("code", svc.run(install_signals=False)))
    runner.start()
    runner.join(60)
    assert not runner.is_alive() and result["code"] == 1
    assert True in [s.state for s in light.states]       # it was pulsing before the faults
    assert light.state is False


def test_without_the_pin_the_door_is_exactly_as_before(tmp_path, engine, still_face):
    assert Config().liveness.illuminator_pin is None       # the default: not fitted
    factory = MockFactory()
    svc = folder_door_service(tmp_path, engine, still_face, factory).start()
    try:
        assert svc.illuminator is None and svc.loop.liveness.illuminator is None
        assert wait_until(lambda: svc.loop.liveness.verdict.cues.get("usable_frames", 0) >= 3)
        assert not any(k.startswith("light_") for k in svc.loop.liveness.verdict.cues)
        assert svc.loop.liveness.verdict.state == "undecided"    # a still face, as before
    finally:
        svc.close()
    assert pin_numbers(factory) == DOOR_PINS                # no pin claimed beyond the door's own


def test_the_illuminator_pin_must_not_be_a_door_pin(tmp_path):
    path = tmp_path / "edge-face.toml"
    path.write_text("[liveness]\nilluminator_pin = 17\n")
    with pytest.raises(SettingError, match="illuminator_pin.*already used by door.relay_pin"):
        config.load(path)
    path.write_text('[liveness]\nilluminator_pin = 6\n')
    assert config.load(path).liveness.illuminator_pin == 6
    path.write_text('[liveness]\nilluminator_pin = "none"\n')
    assert config.load(path).liveness.illuminator_pin is None
