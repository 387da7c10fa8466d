"""The door's hardware, through gpiozero: relay, LEDs, buzzer, exit button, door contact, alarm.

What the LEDs say: green steady = open; red flash and a beep = refused; green blinking = a face waits to be
confirmed live; both flash with a chirp = "blink now" (strict liveness); green and red alternating slowly after
a chirp = camera enrolment, "turn your head slowly" (:meth:`Door.enrolment_prompt`).

One device per class, keyword-only options and ``close()`` everywhere, like gpiozero itself. The relay is the
part that matters: it starts released, every pulse is capped at ``max_on_seconds``, and the cap is enforced by
the relay's own watchdog thread, so a stalled recognition loop can never hold the door open. ``close()`` (and
an ``atexit`` hook) drive it to released before giving the pin back.

Every output change is logged (``pin relay GPIO17 on``), so a development machine with simulated pins shows
what the door would do.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

from gpiozero import Button, DigitalOutputDevice

from .errors import ConfigError

log = logging.getLogger(__name__)

EventCallback = Callable[..., None]

PROMPT_STEP = 0.4          # enrolment prompt: each LED lit this long in turn ("turn your head slowly")
PROMPT_MAX_SECONDS = 30.0  # the prompt ends by itself after this, whatever the caller does


def on_a_raspberry_pi() -> bool:
    """True on Raspberry Pi hardware (the device tree names the board)."""
    try:
        return "raspberry pi" in Path("/proc/device-tree/model").read_text(errors="replace").lower()
    except OSError:
        return False


def make_pin_factory(name: str):
    """The gpiozero pin factory for ``door.pin_factory``; ``None`` means gpiozero's own choice (lgpio on a Pi 5).

    "auto" simulates the pins when not on a Pi, and says so loudly: a simulated relay opens no door.
    """
    if name == "auto":
        if on_a_raspberry_pi():
            return None
        log.warning("not a Raspberry Pi: GPIO pins are SIMULATED (gpiozero MockFactory); no real door moves")
        name = "mock"
    if name == "mock":
        from gpiozero.pins.mock import MockFactory

        return MockFactory()
    modules = {"lgpio": ("gpiozero.pins.lgpio", "LGPIOFactory"),
               "rpigpio": ("gpiozero.pins.rpigpio", "RPiGPIOFactory"),
               "pigpio": ("gpiozero.pins.pigpio", "PiGPIOFactory"),
               "native": ("gpiozero.pins.native", "NativeFactory")}
    if name not in modules:
        raise ConfigError(f"door.pin_factory: unknown pin factory {name!r}")
    module_name, class_name = modules[name]
    try:
        import importlib

        return getattr(importlib.import_module(module_name), class_name)()
    except Exception as exc:  # the library is missing or the GPIO chip cannot be opened
        raise ConfigError(f"door.pin_factory = {name!r} cannot be used here ({exc}); install its library, "
                          f"run on the Pi, or set door.pin_factory = \"mock\" for development") from None


def is_simulated(pin_factory) -> bool:
    return pin_factory is not None and type(pin_factory).__name__ == "MockFactory"


class Closing:
    """Devices are context managers, like gpiozero's: ``with Door(cfg) as door: ...`` closes (relay released)."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class Output(Closing):
    """A logged on/off output (LED, buzzer, alarm): a gpiozero DigitalOutputDevice that starts off."""

    def __init__(self, pin: int, *, name: str, active_high: bool = True, pin_factory=None):
        self.name = name
        self.pin_number = pin
        self._device = DigitalOutputDevice(pin, active_high=active_high, initial_value=False,
                                           pin_factory=pin_factory)
        self._lock = threading.Lock()
        self._closed = False

    @property
    def is_active(self) -> bool:
        return not self._closed and bool(self._device.value)

    def on(self) -> None:
        self._set(True)

    def off(self) -> None:
        self._set(False)

    def flash(self, seconds: float) -> None:
        """On now, off after ``seconds``: gpiozero's own ``blink(n=1)`` in the background (the caller does not
        wait); a later flash, on() or off() replaces it."""
        with self._lock:
            if self._closed:
                return
            self._device.blink(on_time=seconds, off_time=0, n=1, background=True)
            log.info("pin %s GPIO%d on for %.1f s", self.name, self.pin_number, seconds)

    def blink(self, on_time: float = 0.25, off_time: float = 0.25) -> None:
        """Blink until on(), off() or flash() (gpiozero's background blink; logged once)."""
        with self._lock:
            if self._closed:
                return
            self._device.blink(on_time=on_time, off_time=off_time, n=None, background=True)
            log.info("pin %s GPIO%d blinking", self.name, self.pin_number)

    def _set(self, active: bool, *, quiet: bool = False) -> None:
        with self._lock:
            if self._closed:
                return
            was = bool(self._device.value)
            if active:
                self._device.on()             # on()/off() also stop a running blink
            else:
                self._device.off()
            if was != active and not quiet:
                log.info("pin %s GPIO%d %s", self.name, self.pin_number, "on" if active else "off")

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._device.off()
                self._closed = True
                self._device.close()


class LedSequence(Closing):
    """LED states stepped in a thread ("led-sequence") until :meth:`close` or ``max_seconds``, then all off.

    ``steps``: ``[({output: on?, ...}, seconds), ...]``, repeated. The hard ``max_seconds`` means a caller that
    hangs cannot leave the LEDs in the pattern; changes are not logged one by one (the door logs the pattern)."""

    def __init__(self, steps: list[tuple[dict, float]], *, max_seconds: float,
                 on_end: Callable[[], None] | None = None):
        if not steps or any(seconds <= 0 for _, seconds in steps):
            raise ValueError("an LED sequence needs steps of positive duration")
        self._steps = steps
        self._outputs = {out for states, _ in steps for out in states}
        self._max_seconds = float(max_seconds)
        self._on_end = on_end
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="led-sequence", daemon=True)
        self._thread.start()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        deadline = time.monotonic() + self._max_seconds
        try:
            while not self._stop.is_set():
                for states, seconds in self._steps:
                    for out, on in states.items():
                        out._set(on, quiet=True)
                    left = deadline - time.monotonic()
                    if left <= 0 or self._stop.wait(min(seconds, left)):
                        return
        finally:
            for out in self._outputs:
                out._set(False, quiet=True)
            if self._on_end is not None:
                self._on_end()

    def close(self) -> None:
        """Stop the pattern and wait until the LEDs are off (safe to call twice, also after the maximum)."""
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=2.0)


class Relay(Closing):
    """The door strike's relay: released at start, pulses capped at ``max_on_seconds`` by its own watchdog.

    The watchdog thread ("relay-watchdog") owns the release deadline; it does not depend on whoever asked for
    the pulse, so a hung caller cannot keep the door unlocked.
    """

    def __init__(self, pin: int, *, active_high: bool = True, max_on_seconds: float = 10.0, pin_factory=None,
                 on_change: Callable[[bool, str], None] | None = None):
        if max_on_seconds <= 0:
            raise ValueError("max_on_seconds must be positive")
        self.pin_number = pin
        self.max_on_seconds = float(max_on_seconds)
        self._on_change = on_change
        self._device = DigitalOutputDevice(pin, active_high=active_high, initial_value=False,
                                           pin_factory=pin_factory)
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._deadline: float | None = None
        self._on_since: float | None = None
        self._closed = False
        self.last_reason = "start"
        self._watchdog = threading.Thread(target=self._watch, name="relay-watchdog", daemon=True)
        self._watchdog.start()
        atexit.register(self.close)

    @property
    def is_active(self) -> bool:
        with self._lock:
            return self._on_since is not None

    def pulse(self, seconds: float, *, reason: str = "unlock") -> float:
        """Energise the relay for ``seconds`` (capped at the maximum); returns the granted duration."""
        seconds = max(0.0, min(float(seconds), self.max_on_seconds))
        with self._lock:
            if self._closed:
                raise RuntimeError("relay is closed")
            now = time.monotonic()
            if self._on_since is None:
                self._on_since = now
                self._device.on()
                self._log_change(True, reason)
            # Extending a pulse never goes past max_on_seconds from when the relay came on.
            self._deadline = min(now + seconds, self._on_since + self.max_on_seconds)
            self._wake.notify_all()
            return self._deadline - now

    def release(self, *, reason: str = "release") -> None:
        with self._lock:
            self._release_locked(reason)

    def _release_locked(self, reason: str) -> None:
        self._deadline = None
        if self._on_since is not None:
            self._on_since = None
            self._device.off()
            self._log_change(False, reason)
        self._wake.notify_all()

    def _log_change(self, active: bool, reason: str) -> None:
        self.last_reason = reason
        log.info("pin relay GPIO%d %s (%s)", self.pin_number, "on" if active else "off", reason)
        if self._on_change is not None:
            try:
                self._on_change(active, reason)
            except Exception:  # an observer must never keep the relay from changing
                log.exception("relay observer failed")

    def _watch(self) -> None:
        with self._lock:
            while not self._closed:
                if self._on_since is None:
                    self._wake.wait()
                    continue
                now = time.monotonic()
                hard_limit = self._on_since + self.max_on_seconds
                deadline = min(self._deadline if self._deadline is not None else hard_limit, hard_limit)
                if now >= deadline:
                    self._release_locked("maximum on-time" if now >= hard_limit else "pulse ended")
                    continue
                self._wake.wait(deadline - now)

    def close(self) -> None:
        """Release, stop the watchdog and free the pin; safe to call twice, from atexit or a signal handler."""
        with self._lock:
            if self._closed:
                return
            self._release_locked("shutdown")
            self._closed = True
            self._wake.notify_all()
        atexit.unregister(self.close)
        self._device.close()


class ExitButton(Closing):
    """The push button inside: pressing it calls ``when_pressed`` (the service opens the door)."""

    def __init__(self, pin: int, *, when_pressed: Callable[[], None], pull_up: bool = True,
                 bounce_time: float | None = 0.05, pin_factory=None):
        self.pin_number = pin
        self._callback = when_pressed
        self._button = Button(pin, pull_up=pull_up, bounce_time=bounce_time, pin_factory=pin_factory)
        self._button.when_pressed = self._pressed

    @property
    def is_pressed(self) -> bool:
        return bool(self._button.is_pressed)

    def _pressed(self) -> None:
        log.info("pin exit_button GPIO%d pressed", self.pin_number)
        try:
            self._callback()
        except Exception:
            log.exception("exit button handler failed")

    def close(self) -> None:
        self._button.when_pressed = None
        self._button.close()


class DoorContact(Closing):
    """A reed switch that is closed while the door is shut; raises the alarm when the door stays open too long.

    Wired between the pin and ground with the internal pull-up: pin low = contact closed = door shut.
    ``on_event(kind)`` receives ``door_opened``, ``door_closed`` and ``door_held_open``.
    """

    def __init__(self, pin: int, *, held_open_seconds: float, alarm: Output | None = None,
                 on_event: Callable[[str], None] | None = None, pin_factory=None):
        self.pin_number = pin
        self.held_open_seconds = float(held_open_seconds)
        self._alarm = alarm
        self._on_event = on_event
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._open_since: float | None = None
        self.held_open = False
        self._closed = False
        # One watcher for the device's life (not a timer per opening) times how long the door stays open.
        self._watcher = threading.Thread(target=self._watch, name="door-held-open", daemon=True)
        self._watcher.start()
        self._contact = Button(pin, pull_up=True, bounce_time=None, pin_factory=pin_factory)
        if is_simulated(pin_factory):
            self._contact.pin.drive_low()  # a simulated door starts shut, as a real one normally does
        self._contact.when_released = self._opened
        self._contact.when_pressed = self._shut
        if not self._contact.is_pressed:  # already open at start: time it from now
            self._opened()

    @property
    def is_open(self) -> bool:
        return not self._contact.is_pressed

    def _opened(self) -> None:
        with self._lock:
            if self._closed:
                return
            log.info("pin door_contact GPIO%d open", self.pin_number)
            if self._open_since is None:
                self._open_since = time.monotonic()
                self._wake.notify_all()
        self._emit("door_opened")

    def _shut(self) -> None:
        with self._lock:
            if self._closed:
                return
            log.info("pin door_contact GPIO%d closed", self.pin_number)
            self._open_since = None
            self._wake.notify_all()
            self.held_open = False
            if self._alarm is not None:
                self._alarm.off()
        self._emit("door_closed")

    def _watch(self) -> None:
        with self._lock:
            while not self._closed:
                if self._open_since is None or self.held_open:
                    self._wake.wait()
                    continue
                left = self._open_since + self.held_open_seconds - time.monotonic()
                if left > 0:
                    self._wake.wait(left)
                    continue
                self.held_open = True
                log.warning("door held open for more than %g s: alarm", self.held_open_seconds)
                if self._alarm is not None:
                    self._alarm.on()
                self._lock.release()          # the event handler may log to disk: not under the lock
                try:
                    self._emit("door_held_open")
                finally:
                    self._lock.acquire()

    def _emit(self, kind: str) -> None:
        if self._on_event is not None:
            try:
                self._on_event(kind)
            except Exception:
                log.exception("door event handler failed")

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._wake.notify_all()
        self._contact.when_released = None
        self._contact.when_pressed = None
        self._contact.close()


class Door(Closing):
    """All the door's devices from ``cfg.door``; the service talks to this, not to single pins.

    ``on_event(kind, **details)`` receives ``exit_button``, ``door_opened``, ``door_closed``,
    ``door_held_open`` (the service writes them to the access log).
    """

    def __init__(self, door_cfg, *, unlock_seconds: Callable[[], float] | float = 3.0, pin_factory=None,
                 on_event: EventCallback | None = None, feedback_seconds: float = 1.0,
                 on_relay_change: Callable[[bool, str], None] | None = None):
        self.cfg = door_cfg
        self.pin_factory = pin_factory
        self.simulated = is_simulated(pin_factory)
        self._unlock_seconds = unlock_seconds if callable(unlock_seconds) else (lambda: float(unlock_seconds))
        self._on_event = on_event
        self.feedback_seconds = feedback_seconds
        self._devices: list = []
        self._waiting = False
        self._prompt: LedSequence | None = None      # camera enrolment: the LEDs ask for a head turn
        self._prompt_lock = threading.Lock()
        try:
            self.relay = self._add(Relay(door_cfg.relay_pin, active_high=door_cfg.relay_active_high,
                                         max_on_seconds=door_cfg.max_unlock_seconds, pin_factory=pin_factory,
                                         on_change=on_relay_change))
            self.green = self._output(door_cfg.green_led_pin, "green_led")
            self.red = self._output(door_cfg.red_led_pin, "red_led")
            self.buzzer = self._output(door_cfg.buzzer_pin, "buzzer")
            self.alarm = self._output(door_cfg.alarm_pin, "alarm")
            self.exit_button = None
            if door_cfg.exit_button_pin is not None:
                self.exit_button = self._add(ExitButton(door_cfg.exit_button_pin, when_pressed=self._exit_pressed,
                                                        pin_factory=pin_factory))
            self.contact = None
            if door_cfg.door_contact_pin is not None:
                self.contact = self._add(DoorContact(door_cfg.door_contact_pin,
                                                     held_open_seconds=door_cfg.held_open_seconds,
                                                     alarm=self.alarm, on_event=self._emit,
                                                     pin_factory=pin_factory))
        except Exception:
            self.close()
            raise
        log.info("door ready (%s pins): %s", "SIMULATED" if self.simulated else "real",
                 ", ".join(f"{name} GPIO{p['pin']} {p['state']}" for name, p in self.pins().items()))

    def _add(self, device):
        self._devices.append(device)
        return device

    def _output(self, pin: int | None, name: str) -> Output | None:
        if pin is None:
            return None
        return self._add(Output(pin, name=name, pin_factory=self.pin_factory))

    def unlock(self, seconds: float | None = None, *, reason: str = "unlock") -> float:
        """Pulse the relay (default: the current ``unlock_seconds``) and show green; returns the duration."""
        duration = self.relay.pulse(self._unlock_seconds() if seconds is None else seconds, reason=reason)
        if self.green is not None and not self.prompting:
            self.green.flash(max(duration, self.feedback_seconds))
        return duration

    def signal_deny(self) -> None:
        """Red LED and a short beep: someone was refused."""
        if self.prompting:
            return                      # the enrolment prompt owns the LEDs (the relay still works)
        if self.red is not None:
            self.red.flash(self.feedback_seconds)
        if self.buzzer is not None:
            self.buzzer.flash(min(0.3, self.feedback_seconds))

    def signal_waiting(self, waiting: bool) -> None:
        """Green LED blinking while a face is in view and not yet confirmed live (liveness); off when not."""
        if self.green is None or waiting == self._waiting:
            return
        self._waiting = waiting
        if self.relay.is_active or self.prompting:
            return                      # a grant's steady green stays; so does the enrolment prompt
        if waiting:
            self.green.blink()
        else:
            self.green.off()

    def signal_request(self) -> None:
        """Liveness challenge: "blink now" - both LEDs and a short chirp (called once per request)."""
        if self.prompting:
            return
        for out in (self.green, self.red):
            if out is not None:
                out.flash(0.8)
        if self.buzzer is not None:
            self.buzzer.flash(0.1)

    # -- camera enrolment: "turn your head slowly" ------------------------------------------------------------
    @property
    def prompting(self) -> bool:
        prompt = self._prompt
        return prompt is not None and prompt.running

    @contextmanager
    def enrolment_prompt(self, *, max_seconds: float = PROMPT_MAX_SECONDS):
        """``with door.enrolment_prompt(): capture...`` - while the camera collects enrolment frames, the LEDs ask
        the person to turn their head slowly: green and red alternate, ``PROMPT_STEP`` seconds each (a slow
        left-right sweep, unlike any other signal), after one short chirp. On every way out of the block
        (success, an exception, the caller giving up) and at the latest after ``max_seconds`` the pattern
        stops, and the LEDs go back to what the door shows otherwise (off, or green blinking while a face waits
        for liveness)."""
        leds = [out for out in (self.green, self.red) if out is not None]
        with self._prompt_lock:
            if self._prompt is not None:
                self._prompt.close()
            steps = [({out: i == k for i, out in enumerate(leds)}, PROMPT_STEP) for k in range(len(leds))] \
                if leds else []
            self._prompt = LedSequence(steps, max_seconds=max_seconds, on_end=self._prompt_ended) if steps else None
        log.info("enrolment prompt: green and red LEDs alternate (turn your head slowly)")
        if self.buzzer is not None:
            self.buzzer.flash(0.1)
        try:
            yield self
        finally:
            with self._prompt_lock:
                prompt, self._prompt = self._prompt, None
            if prompt is not None:
                prompt.close()
            log.info("enrolment prompt ended")

    def _prompt_ended(self) -> None:
        """The prompt's LEDs are off: show the door's normal state again (a face waiting for liveness)."""
        if self._waiting and self.green is not None and not self.relay.is_active:
            self.green.blink()

    def lock(self, *, reason: str = "release") -> None:
        self.relay.release(reason=reason)

    def _exit_pressed(self) -> None:
        self.unlock(reason="exit button")          # the door first: logging may wait on a lock or a disk
        self._emit("exit_button")

    def _emit(self, kind: str, **details) -> None:
        if self._on_event is not None:
            try:
                self._on_event(kind, **details)
            except Exception:
                log.exception("door event handler failed")

    def pins(self) -> dict:
        """Pin states for the log and the dashboard: name -> {pin, state}."""
        states = {"relay": {"pin": self.cfg.relay_pin, "state": "on" if self.relay.is_active else "off"}}
        for name in ("green", "red", "buzzer", "alarm"):
            out = getattr(self, name, None)
            if out is not None:
                states[out.name] = {"pin": out.pin_number, "state": "on" if out.is_active else "off"}
        button = getattr(self, "exit_button", None)
        if button is not None:
            states["exit_button"] = {"pin": button.pin_number, "state": "pressed" if button.is_pressed else "released"}
        contact = getattr(self, "contact", None)
        if contact is not None:
            states["door_contact"] = {"pin": contact.pin_number, "state": "open" if contact.is_open else "closed"}
        return states

    def status(self) -> dict:
        contact = getattr(self, "contact", None)
        return {"unlocked": self.relay.is_active, "simulated": self.simulated,
                "door_open": None if contact is None else contact.is_open,
                "held_open": bool(contact and contact.held_open), "pins": self.pins()}

    def close(self) -> None:
        """Relay first (the one that matters), then everything else."""
        prompt = self._prompt
        if prompt is not None:
            prompt.close()
        for device in sorted(self._devices, key=lambda d: not isinstance(d, Relay)):
            try:
                device.close()
            except Exception:
                log.exception("closing %s failed", type(device).__name__)
        self._devices.clear()
