"""The door's pins on gpiozero's MockFactory: relay pulses, its hard cap, LEDs, exit button, door contact."""

from __future__ import annotations

import threading
import time

import pytest
from gpiozero.pins.mock import MockFactory

from edge import config
from edge.door import Door, Relay, make_pin_factory


def wait_until(predicate, timeout=5.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


@pytest.fixture
def factory():
    f = MockFactory()
    yield f
    f.close()


def door_cfg(**changes):
    return config.Config().replace("door", **changes).door


def test_relay_starts_released_and_a_pulse_switches_it_on_then_off(factory):
    relay = Relay(17, max_on_seconds=5.0, pin_factory=factory)
    pin = factory.pin(17)
    assert pin.state is False
    granted = relay.pulse(0.3)
    assert granted == pytest.approx(0.3, abs=0.01)
    assert pin.state is True and relay.is_active
    assert wait_until(lambda: not pin.state)
    assert [s.state for s in pin.states] == [False, True, False]
    assert pin.states[2].timestamp == pytest.approx(0.3, abs=0.25)  # on-time, tolerant of a busy machine
    assert relay.last_reason == "pulse ended"
    relay.close()


def test_active_low_relay_board_idles_high(factory):
    relay = Relay(17, active_high=False, max_on_seconds=5.0, pin_factory=factory)
    pin = factory.pin(17)
    assert pin.state is True  # released = high on an active-low board
    relay.pulse(0.2)
    assert pin.state is False
    relay.close()
    assert pin.state is True


def test_a_pulse_longer_than_the_maximum_is_cut_to_the_maximum(factory):
    relay = Relay(17, max_on_seconds=0.5, pin_factory=factory)
    assert relay.pulse(60) == pytest.approx(0.5, abs=0.01)
    assert wait_until(lambda: not factory.pin(17).state, timeout=3)
    relay.close()


def test_extending_pulses_cannot_hold_the_relay_past_the_maximum(factory):
    """A caller that keeps asking (a stuck loop re-granting) still gets the relay released at the cap."""
    relay = Relay(17, max_on_seconds=0.6, pin_factory=factory)
    pin = factory.pin(17)
    for _ in range(6):  # re-asked every 0.1 s for 0.5 s: each request alone would end after 0.5 s
        relay.pulse(0.5)
        time.sleep(0.1)
    assert wait_until(lambda: not pin.state, timeout=2)
    assert [s.state for s in pin.states] == [False, True, False]  # one continuous pulse
    assert pin.states[2].timestamp == pytest.approx(0.6, abs=0.25)  # not 0.5 s after the last request
    assert relay.last_reason == "maximum on-time"
    relay.close()


def test_close_releases_the_relay_immediately(factory):
    relay = Relay(17, max_on_seconds=30.0, pin_factory=factory)
    relay.pulse(30)
    relay.close()
    assert factory.pin(17).state is False
    assert relay.last_reason == "shutdown"
    relay.close()  # twice is harmless


def door(factory, events, **changes):
    cfg = door_cfg(held_open_seconds=1.0, **changes)
    return Door(cfg, unlock_seconds=0.4, pin_factory=factory,
                on_event=lambda kind, **details: events.append(kind), feedback_seconds=0.2)


def test_unlock_pulses_relay_and_green_and_deny_flashes_red_and_buzzer(factory):
    events = []
    d = door(factory, events)
    cfg = d.cfg
    d.unlock()
    assert factory.pin(cfg.relay_pin).state and factory.pin(cfg.green_led_pin).state
    assert not factory.pin(cfg.red_led_pin).state
    assert wait_until(lambda: not factory.pin(cfg.relay_pin).state and not factory.pin(cfg.green_led_pin).state)
    d.signal_deny()
    assert factory.pin(cfg.red_led_pin).state and factory.pin(cfg.buzzer_pin).state
    assert not factory.pin(cfg.relay_pin).state
    assert wait_until(lambda: not factory.pin(cfg.red_led_pin).state and not factory.pin(cfg.buzzer_pin).state)
    d.close()


def test_exit_button_opens_the_door_and_reports_it(factory):
    events = []
    d = door(factory, events)
    button = factory.pin(d.cfg.exit_button_pin)
    button.drive_low()  # pressed (pull-up, switch to ground)
    assert wait_until(lambda: factory.pin(d.cfg.relay_pin).state)
    button.drive_high()
    assert "exit_button" in events
    assert d.relay.last_reason == "exit button"
    assert wait_until(lambda: not factory.pin(d.cfg.relay_pin).state)
    d.close()


def test_exit_button_opens_before_the_event_is_logged(factory):
    """Logging may wait on a file lock or a slow SD card; a person leaving must not wait for it."""
    logging_may_finish = threading.Event()
    d = Door(door_cfg(), unlock_seconds=0.4, pin_factory=factory, feedback_seconds=0.2,
             on_event=lambda kind, **details: logging_may_finish.wait(5))
    press = threading.Thread(target=factory.pin(d.cfg.exit_button_pin).drive_low)
    press.start()
    try:
        assert wait_until(lambda: factory.pin(d.cfg.relay_pin).state, timeout=2), "the door waited for the log"
    finally:
        logging_may_finish.set()
        press.join(5)
        d.close()


def test_door_held_open_raises_the_alarm_until_it_is_shut(factory):
    events = []
    d = door(factory, events)
    contact, alarm = factory.pin(d.cfg.door_contact_pin), factory.pin(d.cfg.alarm_pin)
    assert d.status()["door_open"] is False  # simulated door starts shut
    contact.drive_high()  # door opened
    assert d.status()["door_open"] is True
    assert not alarm.state
    assert wait_until(lambda: alarm.state, timeout=4)
    assert events == ["door_opened", "door_held_open"]
    contact.drive_low()  # shut
    assert not alarm.state
    assert events[-1] == "door_closed"
    d.close()


def test_door_opened_briefly_raises_no_alarm(factory):
    events = []
    d = door(factory, events)
    contact = factory.pin(d.cfg.door_contact_pin)
    contact.drive_high()
    time.sleep(0.2)
    contact.drive_low()
    time.sleep(1.3)
    assert events == ["door_opened", "door_closed"]
    assert not factory.pin(d.cfg.alarm_pin).state
    d.close()


def test_unconnected_pins_are_optional_and_pins_are_reported(factory):
    d = Door(door_cfg(green_led_pin=None, red_led_pin=None, buzzer_pin=None, exit_button_pin=None,
                      door_contact_pin=None, alarm_pin=None), pin_factory=factory)
    assert set(d.pins()) == {"relay"}
    d.unlock(0.2)
    d.signal_deny()
    assert d.pins()["relay"]["state"] == "on"
    d.close()
    assert factory.pin(17).state is False


def test_door_close_releases_relay_during_an_unlock(factory):
    d = door(factory, [])
    d.unlock(5)
    d.close()
    assert factory.pin(d.cfg.relay_pin).state is False


def test_pin_factory_mock_is_simulated_and_logged(caplog):
    from edge.door import is_simulated

    assert is_simulated(make_pin_factory("mock"))
    with caplog.at_level("WARNING"):
        f = make_pin_factory("auto")  # this machine is not a Pi
    assert is_simulated(f) and "SIMULATED" in caplog.text


def test_pin_changes_are_logged(factory, caplog):
    with caplog.at_level("INFO", logger="edge.door"):
        d = door(factory, [])
        d.unlock(0.2)
        d.close()
    assert f"pin relay GPIO{d.cfg.relay_pin} on" in caplog.text
    assert f"pin relay GPIO{d.cfg.relay_pin} off" in caplog.text


def test_door_is_a_context_manager_and_openings_start_no_new_threads(factory):
    events = []
    with door(factory, events) as d:
        contact = factory.pin(d.cfg.door_contact_pin)
        before = {t.ident for t in threading.enumerate()}
        for _ in range(5):                       # five openings: timed by the one watcher, no Timer each
            contact.drive_high()
            contact.drive_low()
        assert {t.ident for t in threading.enumerate()} - before == set()
        d.unlock()
        assert factory.pin(d.cfg.relay_pin).state
    assert factory.pin(d.cfg.relay_pin).state is False        # leaving the block released the relay
    assert events.count("door_opened") == 5 and "door_held_open" not in events


def test_liveness_signals_blink_green_and_ask_with_both_leds_and_a_chirp(factory):
    with Door(door_cfg(), pin_factory=factory) as d:
        green = factory.pin(d.cfg.green_led_pin)
        d.signal_waiting(True)
        assert wait_until(lambda: green.state) and wait_until(lambda: not green.state)   # blinking
        assert wait_until(lambda: green.state)
        d.signal_waiting(False)
        assert wait_until(lambda: not green.state) and not d.relay.is_active
        d.signal_request()
        assert d.green.is_active and d.red.is_active and d.buzzer.is_active
        d.unlock(1.0)
        d.signal_waiting(True)                            # never blinks over a grant's steady green
        assert d.green.is_active
    assert not factory.pin(17).state
