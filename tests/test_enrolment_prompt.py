"""Camera enrolment asks for a head turn through the door's LEDs (issue 10): green and red alternate slowly
after a chirp while the frames are collected, and the LEDs are back to normal on every way out (success, an
error, a caller that never comes back). A set of frames that is mostly one look gets a clear sentence.
MockFactory pins, the real service with a folder camera, the real model on real frames."""

from __future__ import annotations

import threading
import time

import pytest
from gpiozero.pins.mock import MockFactory

from edge import config
from edge.door import PROMPT_STEP, Door
from edge.enrolment import check_images, choose_diverse, turn_advice
from edge.errors import CameraError
from edge.liveness import datasets

from door_fixtures import folder_door_service

GREEN, RED, BUZZER, RELAY = 27, 22, 23, 17


@pytest.fixture
def factory():
    f = MockFactory()
    yield f
    f.close()


def make_door(factory):
    return Door(config.Config().door, unlock_seconds=0.4, pin_factory=factory, feedback_seconds=0.2)


def on_durations(pin) -> list[float]:
    """How long each completed "on" lasted (a MockPin's state history holds the time since the last change)."""
    states = pin.states
    return [s.timestamp for prev, s in zip(states, states[1:]) if prev.state and not s.state]


class Sampler:
    """Samples the green and red pins every 10 ms in a thread: what a person at the door would see."""

    def __init__(self, factory):
        self.green, self.red = factory.pin(GREEN), factory.pin(RED)
        self.seen: list[tuple[bool, bool]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run)
        self._thread.start()

    def _run(self):
        while not self._stop.wait(0.01):
            self.seen.append((bool(self.green.state), bool(self.red.state)))

    def stop(self) -> list[tuple[bool, bool]]:
        self._stop.set()
        self._thread.join()
        return self.seen


def assert_alternating(seen: list[tuple[bool, bool]]):
    """Green, then red, then green ...: never both on, and each came on at least twice."""
    assert not any(g and r for g, r in seen), "green and red were on together"
    phases = [("green" if g else "red") for g, r in seen if g or r]
    changes = [p for i, p in enumerate(phases) if i == 0 or p != phases[i - 1]]
    assert changes.count("green") >= 2 and changes.count("red") >= 2, changes


def threads_named(name):
    return [t for t in threading.enumerate() if t.name == name]


def test_the_prompt_alternates_green_and_red_after_a_chirp_and_ends_with_the_leds_off(factory):
    with make_door(factory) as door:
        sampler = Sampler(factory)
        with door.enrolment_prompt():
            assert door.prompting
            time.sleep(4 * PROMPT_STEP + 0.1)
        assert_alternating(sampler.stop())
        for duration in on_durations(factory.pin(GREEN))[:-1]:       # each lit about PROMPT_STEP seconds
            assert PROMPT_STEP * 0.7 < duration < PROMPT_STEP * 2.0
        assert not door.prompting and not threads_named("led-sequence")
        assert factory.pin(GREEN).state is False and factory.pin(RED).state is False
        assert True in [s.state for s in factory.pin(BUZZER).states]      # the chirp
        assert factory.pin(RELAY).state is False


def test_an_error_during_the_capture_still_ends_the_prompt(factory):
    with make_door(factory) as door:
        with pytest.raises(CameraError):
            with door.enrolment_prompt():
                time.sleep(PROMPT_STEP * 1.5)
                raise CameraError("the camera stalled")
        assert not door.prompting and not threads_named("led-sequence")
        assert factory.pin(GREEN).state is False and factory.pin(RED).state is False


def test_a_caller_that_never_returns_cannot_keep_the_prompt_going(factory):
    with make_door(factory) as door:
        with door.enrolment_prompt(max_seconds=0.6):
            time.sleep(1.2)                              # the caller hangs past the maximum
            assert not door.prompting
            assert factory.pin(GREEN).state is False and factory.pin(RED).state is False
            door.signal_deny()                           # the door's own signals work again meanwhile
            assert factory.pin(RED).state is True


def test_leds_go_back_to_the_door_state_and_door_signals_wait_during_the_prompt(factory):
    with make_door(factory) as door:
        door.signal_waiting(True)                        # a face waits for liveness: green blinks
        with door.enrolment_prompt():
            time.sleep(0.2)                              # after the prompt's own chirp
            door.signal_deny()                           # suppressed: the prompt owns the LEDs
            buzzer_changes = len(factory.pin(BUZZER).states)
            assert door.unlock(0.3) > 0 and factory.pin(RELAY).state   # the door itself still works
            time.sleep(3 * PROMPT_STEP)
            assert len(factory.pin(BUZZER).states) == buzzer_changes
            assert factory.pin(RELAY).state is False
        assert factory.pin(RED).state is False
        sampler = Sampler(factory)
        time.sleep(0.8)                                  # green blinks again (gpiozero's 0.25 s blink)
        seen = sampler.stop()
        assert (True, False) in seen and (False, False) in seen and (False, True) not in seen


def test_closing_the_door_ends_a_running_prompt(factory):
    door = make_door(factory)
    prompt = door.enrolment_prompt()
    prompt.__enter__()
    time.sleep(PROMPT_STEP)
    door.close()                                         # the service stops during an enrolment
    assert not threads_named("led-sequence")
    assert factory.pin(GREEN).state is False and factory.pin(RED).state is False
    prompt.__exit__(None, None, None)


# --------------------------------------------------------------------------------------------- the service

@pytest.fixture(scope="module")
def still_face(liveness_dir):
    seq = next(s for s in datasets.nuaa_sequences(liveness_dir, "live") if s.name.endswith("0005_00_00_02"))
    return [f for _, f in seq.frames()][:60:4]


def test_the_service_prompts_while_it_collects_enrolment_frames_and_not_after(tmp_path, engine, still_face,
                                                                              monkeypatch):
    factory = MockFactory()
    svc = folder_door_service(tmp_path, engine, still_face, factory, mode="off").start()
    try:
        sampler = Sampler(factory)
        frames = svc.capture_enrolment_frames(10, 2.0)
        assert len(frames) >= 5
        assert_alternating(sampler.stop())
        assert factory.pin(GREEN).state is False and factory.pin(RED).state is False
        assert not svc.door.prompting

        def failing(count, seconds):
            time.sleep(PROMPT_STEP)
            raise CameraError("the camera delivered no frame for 2 s")

        monkeypatch.setattr(svc, "capture_frames", failing)
        with pytest.raises(CameraError):
            svc.capture_enrolment_frames(10, 2.0)
        assert factory.pin(GREEN).state is False and factory.pin(RED).state is False
        assert not svc.door.prompting and not threads_named("led-sequence")
    finally:
        svc.close()


# --------------------------------------------------------------------------------------------- the message

def test_a_still_face_is_told_to_turn_and_a_turning_face_is_not(engine, still_face, liveness_dir):
    results, chosen = check_images(engine, [(f"frame {i}", f) for i, f in enumerate(still_face)])
    choose_diverse(chosen, 4)
    advice = turn_advice(results, wanted=4)
    assert advice is not None and "turn your head slowly" in advice and "near-duplicates" in advice
    assert sum(r.near_duplicate for r in results) >= 8

    clip = next(c for c in datasets.clip_sequences(liveness_dir) if c.subject == "lp_d3")
    turning = [f for i, (_, f) in enumerate(clip.frames()) if i % 6 == 0][:15]     # 3 s of head turns
    results, chosen = check_images(engine, [(f"frame {i}", f) for i, f in enumerate(turning)])
    kept = choose_diverse(chosen, 4)
    assert len(kept) == 4 and turn_advice(results, wanted=4) is None
