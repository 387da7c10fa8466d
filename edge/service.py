"""The door daemon: one process, named threads, the relay released on every way out.

Threads:

* ``capture`` (:class:`edge.camera.CameraFeed`) keeps the latest frame and retries a failing camera;
* ``recognition`` runs :class:`edge.doorloop.DoorLoop`: frames into faces, votes (:mod:`edge.decision`), grant
  checks, and actions on the door and the access log;
* ``events`` (:class:`edge.events.EventHub`, started by the first listener) hands typed events to listeners
  (``service.events.add_listener(fn)``) without ever blocking the door;
* ``mqtt`` (:class:`edge.mqtt.publisher.MqttPublisher`, with ``[mqtt] enabled``) publishes the door to the
  home's broker and Home Assistant; it is fed by an event listener and never blocks the door;
* ``reload`` re-reads the configuration after SIGHUP (one worker: signals that arrive during a reload coalesce);
* ``web`` (:mod:`edge.web`) serves the admin page, which sees the daemon through the
  :class:`edge.controller.Controller` protocol (:meth:`DoorService.status` returns a typed
  :class:`edge.status.Status`);
* ``relay-watchdog`` (:class:`edge.door.Relay`) releases the relay at the end of a pulse and at
  ``door.max_unlock_seconds`` whatever the other threads do;
* the main thread handles signals, follows the database (``store.refresh()`` every second) and talks to systemd.

systemd watchdog (design decision): ``WATCHDOG=1`` is sent only while the recognition loop is alive, i.e. it
completed an iteration recently. The loop waits for frames with a short timeout and counts a wait as an
iteration, so a missing or failing camera (reported in ``STATUS=`` and the access log, retried with backoff)
does not get the daemon killed: restarting would not bring a camera back. A recognition loop stuck inside
the model or a lock stops the pings, and systemd restarts the service.

Exit paths: SIGTERM/SIGINT stop the main loop and the door is closed (relay released) before anything else
is torn down; an exception in any thread releases the relay (``threading.excepthook``); the relay also has
an ``atexit`` hook. A crash in the recognition loop releases the relay and restarts the loop; if it keeps
crashing (``MAX_CRASHES`` within ``CRASH_WINDOW`` seconds) the daemon exits with status 1 for systemd to
restart it.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import threading
import time
from collections import deque
from typing import Any, Callable, Hashable

import numpy as np

from . import config as _config
from .camera import CameraFeed, source_from_config
from .config import check_runtime
from .decision import Decider, Decision, Policy
from .diskspace import free_bytes
from .door import Door, make_pin_factory
from .doorloop import DoorLoop, FrameResult
from .errors import EdgeError, SettingError
from .eventfaces import EventFaces, encode_thumbnail
from .events import EventHub
from .health import FILE_NAME as HEALTH_FILE, HealthRecorder, HealthSeries
from .liveview import LiveView, Stream
from .sdnotify import Notifier
from .status import CameraStatus, MqttStatus, PinStatus, Status

log = logging.getLogger(__name__)

MAX_CRASHES = 3
CRASH_WINDOW = 60.0
LOOP_WAIT = 0.5  # longest the recognition loop waits for a frame before it counts as alive anyway
_AUTO: Any = object()


class DoorService:
    """The running daemon: builds the parts, runs the threads, talks to systemd; the web page's controller."""

    def __init__(self, cfg: _config.Config, *, engine: Any, store: Any, log_: Any = None, source: Any = _AUTO,
                 pin_factory: Any = _AUTO, notifier: Notifier | None = None, config_path: str | None = None,
                 web: bool | None = None, clock: Callable[[], float] = time.monotonic,
                 wall_clock: Callable[[], float] = time.time):
        self.cfg = cfg
        self.config_path = config_path
        self.engine = engine
        self.store = store
        self.access_log = log_
        self.notifier = notifier or Notifier()
        self.clock = clock
        self.wall_clock = wall_clock
        self.web_enabled = cfg.web.enabled if web is None else web
        self.exit_code = 0
        self.events = EventHub(clock=wall_clock)
        self._stop = threading.Event()
        self._hup = threading.Event()
        self._heartbeat = self.clock()
        self._crashes: deque[float] = deque()
        self._threads: list[threading.Thread] = []
        self._web_server: Any = None
        self._status_line = ""
        self.started_at = wall_clock()
        self.relay_history: deque[tuple[float, bool, str]] = deque(maxlen=100)  # (clock, on, reason)

        factory = make_pin_factory(cfg.door.pin_factory) if pin_factory is _AUTO else pin_factory
        self.door = Door(cfg.door, unlock_seconds=self._unlock_seconds, pin_factory=factory,
                         on_event=self._door_event, on_relay_change=self._relay_changed)
        self.illuminator: Any = None
        try:
            self.illuminator = self._make_illuminator(cfg, factory)
            if source is _AUTO:
                source = source_from_config(cfg.camera)
            self.feed = CameraFeed(source, retry_initial=cfg.camera.retry_initial_seconds,
                                   retry_max=cfg.camera.retry_max_seconds, on_failure=self._camera_failed,
                                   on_recovered=self._camera_recovered)
            faces = EventFaces.open(cfg, store.keyring, days=cfg.store.face_days,
                                    max_bytes=int(cfg.store.face_max_mb * 1_000_000), clock=wall_clock)
            self._liveness_models: Any = None
            self.loop = DoorLoop(cfg, engine=engine, store=store, access_log=log_, door=self.door,
                                 events=self.events, clock=clock, wall_clock=wall_clock, faces=faces,
                                 make_liveness=self._make_liveness)
            self.mqtt = self._make_mqtt() if cfg.mqtt.enabled else None
            self.health = HealthRecorder(path=cfg.state_dir / HEALTH_FILE, clock=wall_clock)
            self.live = LiveView(self.feed.latest, lambda: self.loop.last_sighting, name_of=self._user_name,
                                 clock=clock)
        except BaseException:
            self.door.close()
            if self.illuminator is not None:
                self.illuminator.close()
            raise

    @staticmethod
    def _make_illuminator(cfg: _config.Config, factory):
        """The liveness illuminator on ``[liveness] illuminator_pin`` (None when not fitted); it labels frames
        by the camera feed's capture times, so it runs on the same clock (``time.monotonic``)."""
        if cfg.liveness.illuminator_pin is None:
            return None
        from .illuminator import Illuminator

        settle = max(0.1, 2.0 / cfg.camera.fps)       # the exposure and the camera's pipeline
        return Illuminator(cfg.liveness.illuminator_pin, settle_seconds=settle, slot_seconds=2 * settle,
                           pin_factory=factory, clock=time.monotonic)

    def _make_liveness(self, cfg: _config.Config):
        """The liveness stage for ``cfg.liveness`` (None when off); its models are loaded (hash-checked) once."""
        if cfg.liveness.mode == "off":
            log.warning("liveness check off: a photograph or a screen of an enrolled person opens the door")
            if self.illuminator is not None:
                self.illuminator.stop()          # turned off by SIGHUP: nothing steps the LED any more
            return None
        from .liveness import LivenessModels
        from .liveness.stage import LivenessStage

        if self._liveness_models is None:
            self._liveness_models = LivenessModels(models_dir=cfg.models_dir,
                                                   num_threads=min(2, cfg.recognition.num_threads or 2))
        log.info("liveness check %s (window %.1f s)", cfg.liveness.mode, cfg.liveness.window_seconds)
        return LivenessStage(mode=cfg.liveness.mode, window_seconds=cfg.liveness.window_seconds,
                             models=self._liveness_models, illuminator=self.illuminator)

    # ------------------------------------------------------------------ building from a configuration
    @classmethod
    def from_config(cls, cfg: _config.Config, *, config_path: str | None = None, **options) -> "DoorService":
        """Open the model, the database and the access log named by ``cfg`` (EdgeError if any is unusable)."""
        from .accesslog import AccessLog
        from .recognition import FaceEngine
        from .store import Store

        store = Store.open(cfg, allow_backup=True)  # first: a missing database is the likeliest problem
        # a full disk must not stop the door: events wait in memory and are written when space returns
        access_log = AccessLog.open(cfg, keyring=store.keyring, pending_limit=cfg.store.log_pending_events)
        engine = FaceEngine.from_config(cfg)
        try:
            return cls(cfg, engine=engine, store=store, log_=access_log, config_path=config_path, **options)
        except BaseException:
            engine.close()
            raise

    # ------------------------------------------------------------------ the door loop, seen from outside
    @property
    def policy(self) -> Policy:
        return self.loop.policy

    @property
    def decider(self) -> Decider:
        return self.loop.decider

    @property
    def processed_frames(self) -> int:
        return self.loop.processed_frames

    def process_frame(self, frame: np.ndarray, now: float | None = None) -> Decision:
        """One frame through the door loop; the vote's decision (``process_frame_result`` for all of it)."""
        return self.loop.process(frame, now).decision

    def process_frame_result(self, frame: np.ndarray, now: float | None = None) -> FrameResult:
        return self.loop.process(frame, now)

    def _unlock_seconds(self) -> float:
        return float(self.store.settings["unlock_seconds"])

    # ------------------------------------------------------------------ reloading
    def reload(self) -> None:
        """Gallery and settings changed (web page, CLI, SIGHUP): applied before the next frame."""
        self.loop.request_reload()

    def reload_config(self) -> None:
        """SIGHUP: re-read the configuration file; decision defaults and log level apply at once, camera,
        door and web changes need a restart (said in the log)."""
        if self.config_path:
            try:
                new: _config.Config | None = _config.load(self.config_path)
            except EdgeError as exc:
                log.error("SIGHUP: configuration not reloaded: %s", exc)
                new = None
            if new is not None:
                try:
                    check_runtime(self.store.settings_with_defaults(new),
                                  max_unlock_seconds=self.cfg.door.max_unlock_seconds)
                except SettingError as exc:
                    log.error("SIGHUP: configuration not reloaded: with the settings saved on the admin page, "
                              "%s", exc)
                    new = None
            if new is not None:
                for section in ("paths", "recognition", "camera", "door", "store", "web", "mqtt"):
                    if getattr(new, section) != getattr(self.cfg, section):
                        log.warning("SIGHUP: [%s] changed; restart the service to apply it", section)
                if new.liveness.illuminator_pin != self.cfg.liveness.illuminator_pin:
                    log.warning("SIGHUP: liveness.illuminator_pin changed; restart the service to apply it")
                    new = dataclasses.replace(new, liveness=dataclasses.replace(
                        new.liveness, illuminator_pin=self.cfg.liveness.illuminator_pin))
                self.cfg = dataclasses.replace(self.cfg, decision=new.decision, liveness=new.liveness,
                                               logging=new.logging)
                self.store.set_defaults(self.cfg)
                logging.getLogger().setLevel(new.logging.level)
                log.info("SIGHUP: configuration %s reloaded", self.config_path)
        self.store.refresh()
        self.loop.request_reload(self.cfg)

    def _reload_worker(self) -> None:
        """One reload at a time: SIGHUPs that arrive while a reload runs are folded into the next one."""
        while not self._stop.is_set():
            if not self._hup.wait(timeout=1.0):
                continue
            self._hup.clear()
            if self._stop.is_set():
                return
            try:
                self.reload_config()
            except Exception:
                log.exception("SIGHUP: reload failed; the previous configuration stays in force")

    # ------------------------------------------------------------------ the recognition thread
    def _recognition_loop(self) -> None:
        self.engine.prefer_current_thread()      # the door before the admin page's photographs
        seq = 0
        while not self._stop.is_set():
            self._heartbeat = self.clock()
            seq, taken, frame = self.feed.latest(after=seq, timeout=LOOP_WAIT)
            if frame is None:
                self.loop.idle()
                continue
            started = time.perf_counter()
            self.loop.process(frame, taken=taken)
            self.health.frame(time.perf_counter() - started)

    def _recognition_thread(self) -> None:
        """Runs the loop; a crash releases the relay, is logged, and the loop restarts (or the daemon exits)."""
        while not self._stop.is_set():
            try:
                self._recognition_loop()
                return
            except Exception:
                if self._stop.is_set():  # shutting down: the door is already closed
                    return
                self.door.lock(reason="recognition crashed")
                if self.illuminator is not None:
                    self.illuminator.stop()
                now = self.clock()
                self._crashes.append(now)
                while self._crashes and now - self._crashes[0] > CRASH_WINDOW:
                    self._crashes.popleft()
                log.exception("recognition loop crashed (%d in %g s); relay released", len(self._crashes),
                              CRASH_WINDOW)
                if len(self._crashes) >= MAX_CRASHES:
                    log.critical("recognition keeps crashing; stopping so that systemd restarts the service")
                    self.exit_code = 1
                    self._stop.set()
                    return
                self.loop.decider.reset()
                self._stop.wait(1.0)

    # ------------------------------------------------------------------ MQTT and Home Assistant
    def _make_mqtt(self) -> Any:
        """The publisher and the listener that feeds it (:mod:`edge.mqtt`); the door never waits for either."""
        from .mqtt.bridge import DoorBridge   # here: a door without MQTT never loads paho
        from .mqtt.publisher import MqttPublisher

        publisher = MqttPublisher(self.cfg.mqtt, on_unlock=self._mqtt_unlock, on_unlock_refused=self._mqtt_refused,
                                  on_lock=lambda: self.door.lock(reason="lock command from mqtt"),
                                  clock=self.wall_clock)
        door = self.door.status()
        face = self._face_jpeg if self.cfg.mqtt.publish_faces else None
        self.events.add_listener(DoorBridge(publisher, unlocked=door["unlocked"], door_open=door["door_open"],
                                            held_open=door["held_open"], face=face))
        return publisher

    def _mqtt_unlock(self) -> None:
        """Home Assistant's lock, with the right code (checked by the publisher): the access log says mqtt."""
        self.loop.remote_unlock(None, source="mqtt")

    def _mqtt_refused(self, reason: str) -> None:
        log.warning("remote unlock from mqtt refused: %s", reason)
        self.loop.record("remote_unlock", decision="deny", source="mqtt", reason=reason)

    def _face_jpeg(self) -> bytes | None:
        candidate = self.loop.last_candidate
        if candidate is None or candidate.crop is None:
            return None
        try:
            return encode_thumbnail(candidate.crop)      # the same small JPEG the log keeps (encrypted)
        except ValueError:
            return None

    def _mqtt_health(self) -> None:
        if self.mqtt is not None:
            self.mqtt.set_health(fps=self.loop.fps(), camera=self.feed.state()["state"])

    # ------------------------------------------------------------------ events from the devices
    def _door_event(self, kind: str, **details: Any) -> None:
        self.loop.record(kind, **details)

    def _relay_changed(self, active: bool, reason: str) -> None:
        self.relay_history.append((self.clock(), active, reason))
        self.events.emit("relay", active=active, reason=reason)

    def _camera_failed(self, message: str) -> None:
        self.loop.record("camera_failure", error=message)

    def _camera_recovered(self) -> None:
        self.loop.record("camera_recovered")

    # ------------------------------------------------------------------ controller (the web page's view)
    @property
    def config(self) -> _config.Config:
        """The configuration in force (SIGHUP replaces it); the web page reads it from here."""
        return self.cfg

    def status(self) -> Status:
        """Everything the daemon knows about itself, as typed data; the web layer words it."""
        cam = self.feed.state()
        door = self.door.status()
        decider = self.loop.decider.status(self.clock())
        try:
            free: float | None = free_bytes(self.cfg.state_dir) / (1024 * 1024)
        except OSError:
            free = None
        return Status(
            camera=CameraStatus(state=cam["state"], source=cam["source"], fps=cam["fps"], error=cam["error"],
                                retry_in=cam["retry_in"], frames=cam["frames"]),
            unlocked=door["unlocked"], door_open=door["door_open"], held_open=door["held_open"],
            pins=tuple(PinStatus(name, p["pin"], p["state"]) for name, p in door["pins"].items()),
            simulated_pins=self.door.simulated, fps=round(self.loop.fps(), 1),
            last_decision=self.loop.last_decision, users=self.loop.user_count, model=self.engine.model_id,
            uptime_seconds=round(self.wall_clock() - self.started_at),
            cooldown_seconds=decider["cooldown_seconds"], locked_faces=decider["locked_faces"],
            disk_free_mb=round(free, 1) if free is not None else None,
            disk_low=free is not None and free < self.cfg.store.low_disk_mb,
            log_pending=self.access_log.pending if self.access_log is not None else 0,
            mqtt=self._mqtt_status(), **self._liveness_status())

    def _mqtt_status(self) -> MqttStatus | None:
        if self.mqtt is None:
            return None
        m = self.mqtt.status()
        return MqttStatus(state=m["state"], broker=m["broker"], last_error=m["last_error"], retry_in=m["retry_in"],
                          queued=m["queued"], dropped=m["dropped"], sent=m["sent"])

    def _liveness_status(self) -> dict:
        stage = self.loop.liveness
        if stage is None:
            return {"liveness_mode": "off"}
        return {"liveness_mode": stage.mode, "liveness_state": stage.verdict.state,
                "liveness_reason": stage.verdict.reason}

    def snapshot_jpeg(self) -> bytes | None:
        """The latest frame as the live view draws it (scaled, the face and its match marked); None without
        a camera."""
        return self.live.snapshot()

    def live_stream(self, viewer: Hashable | None = None) -> Stream | None:
        """An MJPEG stream of the live view, or None when enough people are watching already; a ``viewer`` that
        asks again ends its previous stream."""
        return self.live.stream(viewer)

    def health_series(self) -> HealthSeries:
        """The door's health over the last 24 hours (fps, time per frame, camera restarts, relay, alarms)."""
        return self.health.series()

    def _user_name(self, user_id: str) -> str | None:
        user = self.store.get_user(user_id)
        return user.username if user is not None else None

    def capture_frames(self, count: int, seconds: float) -> list[np.ndarray]:
        """Up to ``count`` frames within ``seconds`` (enrolment from the door camera): the current one at
        once, then new ones spread over the time, so they show different moments rather than one blink."""
        frames: list[np.ndarray] = []
        seq, _t, frame = self.feed.latest(after=0, timeout=0)
        if frame is not None and count > 0:
            frames.append(frame.copy())
        start = self.clock()
        deadline = start + max(0.0, seconds)
        spacing = seconds / max(count, 1)
        while len(frames) < count:
            next_at = min(deadline, start + spacing * len(frames))     # spread over the whole time
            if next_at > self.clock():
                time.sleep(next_at - self.clock())
            left = deadline - self.clock()
            if left <= 0:
                break
            seq, _t, frame = self.feed.latest(after=seq, timeout=min(left, 1.0))
            if frame is not None:
                frames.append(frame.copy())
        return frames

    def capture_enrolment_frames(self, count: int, seconds: float) -> list[np.ndarray]:
        """:meth:`capture_frames` for camera enrolment, while the door's LEDs ask the person to turn their head
        slowly (:meth:`edge.door.Door.enrolment_prompt`); the LEDs are back to normal on every way out."""
        with self.door.enrolment_prompt(max_seconds=seconds + 5.0):
            return self.capture_frames(count, seconds)

    def remote_unlock(self, admin_username: str, *, admin_id: str | None = None,
                      address: str | None = None) -> None:
        self.loop.remote_unlock(admin_username, admin_id=admin_id, address=address)

    # ------------------------------------------------------------------ running
    def start(self) -> "DoorService":
        """Start the threads (capture, recognition, reload, web); returns at once."""
        threading.excepthook = self._thread_crashed
        self.events.add_listener(self.health.on_event)
        if self.loop.faces is not None:
            self.loop.faces.prune()             # retention applies even to a door that sees nobody for days
        self.feed.start()
        for target, name in ((self._recognition_thread, "recognition"), (self._reload_worker, "reload")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        if self.web_enabled:
            self._start_web()
        if self.mqtt is not None:
            self.mqtt.start()
            self._mqtt_health()
        self.loop.record("service_start", source="service", camera=self.feed.state()["source"],
                         simulated_pins=self.door.simulated)
        return self

    def _start_web(self) -> None:
        from .web import WebServer, create_app  # here, so a door without the admin page never loads Bottle

        app = create_app(self.cfg, store=self.store, log=self.access_log, engine=self.engine, controller=self)
        self._web_server = WebServer(self.cfg, app)
        self._web_server.start()  # it logs its address and certificate fingerprint
        app.web.index.warm()      # the first look at the log after an upgrade must not wait for the build

    def _thread_crashed(self, args) -> None:
        """Any thread dying of an exception: release the relay first, then report."""
        try:
            self.door.lock(reason=f"thread {args.thread.name if args.thread else '?'} crashed")
        finally:
            threading.__excepthook__(args)

    def _wait_for_camera(self) -> None:
        """READY waits for the first frame, but not forever: a missing camera is reported, not fatal."""
        if self.feed.source is None:
            return
        deadline = self.clock() + max(2 * self.cfg.camera.frame_timeout_seconds, 3.0)
        while self.clock() < deadline and not self._stop.is_set():
            if self.feed.state()["frames"] > 0 or self.feed.state()["state"] == "retrying":
                return
            self._stop.wait(0.05)

    def status_line(self) -> str:
        """systemd's ``STATUS=`` wording of the daemon's state."""
        cam = self.feed.state()
        camera = {"running": f"camera {cam['source']} {cam['fps']:.0f} fps", "none": "no camera",
                  "retrying": f"camera {cam['source']} failing ({cam['error']}), retrying",
                  "starting": f"camera {cam['source']} starting"}.get(cam["state"], f"camera {cam['state']}")
        door = "UNLOCKED" if self.door.relay.is_active else "locked"
        pins = " (simulated pins)" if self.door.simulated else ""
        return f"{camera}; {self.loop.user_count} users; door {door}{pins}"

    def run(self, *, install_signals: bool = True) -> int:
        """Start, notify systemd, follow the database until a signal; returns the exit status."""
        if install_signals:
            self._install_signals()
        try:
            self.start()
            self._wait_for_camera()
            self._status_line = self.status_line()
            self.notifier.ready(self._status_line)
            log.info("ready: %s", self._status_line)
            self._main_loop()
        finally:
            self.close()
        return self.exit_code

    def _main_loop(self) -> None:
        watchdog = self.notifier.watchdog_seconds
        tick = min(1.0, watchdog / 3) if watchdog else 1.0
        alive_for = max(LOOP_WAIT * 4, (watchdog or 0) / 2, 2.0)
        ticks = 0
        while not self._stop.wait(tick):
            ticks += 1
            if ticks % 5 == 0:
                self._mqtt_health()
            try:
                # Compare revisions rather than trust refresh()'s answer: it is True only for the first
                # caller after a change, and a grant or a web request may have refreshed the store already.
                self.store.refresh()
                if self.store.revision != self.loop.gallery_revision and not self.loop.reload_pending:
                    log.info("database changed (revision %d): reloading gallery and settings", self.store.revision)
                    self.reload()
            except Exception:
                log.exception("database refresh failed; keeping the gallery in memory")
            if self.access_log is not None and self.access_log.pending:
                try:
                    self.access_log.flush_pending()      # space again? write what waited, with its times
                except Exception:
                    log.exception("access log: writing the delayed events failed")
            if watchdog and self.clock() - self._heartbeat < alive_for:
                self.notifier.watchdog()
            line = self.status_line()
            if line != self._status_line:
                self._status_line = line
                self.notifier.status(line)

    def stop(self) -> None:
        self._stop.set()

    def _install_signals(self) -> None:
        def stop(signum, _frame):
            log.info("%s: stopping", signal.Signals(signum).name)
            self._stop.set()

        def hup(_signum, _frame):
            log.info("SIGHUP: reloading configuration, settings and gallery")
            self._hup.set()          # the reload worker does it; a second SIGHUP meanwhile is folded in

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGHUP, hup)

    def close(self) -> None:
        """Door first (relay released), then systemd, camera, web, threads, log, listeners."""
        self._stop.set()
        self.door.close()
        if self.illuminator is not None:
            self.illuminator.close()
        self.notifier.stopping("stopping")
        self.live.close()                    # ends the live view streams, so the web server can stop
        self.feed.stop()
        if self._web_server is not None:
            try:
                self._web_server.stop()
            except Exception:
                log.exception("stopping the web server failed")
            self._web_server = None
        for thread in self._threads:
            thread.join(timeout=5.0)
        self._threads.clear()
        self.loop.record("service_stop", source="service", exit_code=self.exit_code)
        if self._liveness_models is not None:
            self._liveness_models.close()
        self.events.close()
        if self.mqtt is not None:
            self.mqtt.close()        # after the listeners: the last events are queued; it says "offline"
        self.health.save()
        self.notifier.close()
        if threading.excepthook == self._thread_crashed:
            threading.excepthook = threading.__excepthook__
        log.info("stopped (exit status %d)", self.exit_code)


def run_from_config(cfg: _config.Config, *, config_path: str | None = None) -> int:
    logging.getLogger().setLevel(cfg.logging.level)
    log.info("edge-face starting (pid %d)", os.getpid())
    service = DoorService.from_config(cfg, config_path=config_path)
    return service.run()
