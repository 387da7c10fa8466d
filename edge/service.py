"""The door daemon: one process, named threads, the relay released on every way out.

Threads:

* ``capture`` (:class:`edge.camera.CameraFeed`) keeps the latest frame and retries a failing camera;
* ``recognition`` (this module) turns frames into faces, votes (:mod:`edge.decision`) and acts on the door and
  the access log;
* ``web`` (:mod:`edge.web`) serves the admin page, which sees the daemon through the controller methods
  :meth:`DoorService.status`, :meth:`snapshot_jpeg`, :meth:`capture_frames`, :meth:`remote_unlock`,
  :meth:`reload`;
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

import cv2
import numpy as np

from . import config as _config
from .camera import CameraFeed, source_from_config
from .decision import Candidate, Decider, Decision, Policy, candidate_from_faces
from .door import Door, make_pin_factory
from .config import check_runtime
from .errors import EdgeError, SettingError
from .recognition.match import Ranker
from .sdnotify import Notifier

log = logging.getLogger(__name__)

MAX_CRASHES = 3
CRASH_WINDOW = 60.0
UNKNOWN_PHOTOS_KEPT = 200
LOOP_WAIT = 0.5  # longest the recognition loop waits for a frame before it counts as alive anyway
_AUTO = object()


class DoorService:
    """The running daemon and the controller the web page uses."""

    def __init__(self, cfg: _config.Config, *, engine, store=None, log_=None, source=_AUTO, pin_factory=_AUTO,
                 notifier: Notifier | None = None, config_path: str | None = None, web: bool | None = None):
        self.cfg = cfg
        self.config_path = config_path
        self.engine = engine
        self.store = store
        self.access_log = log_
        self.notifier = notifier or Notifier()
        self.clock = time.monotonic
        self.web_enabled = cfg.web.enabled if web is None else web
        self.exit_code = 0
        self._stop = threading.Event()
        self._reload = threading.Event()
        self._lock = threading.RLock()
        self._heartbeat = self.clock()
        self._crashes: deque[float] = deque()
        self._processed: deque[float] = deque()
        self.processed_frames = 0
        self._last_decision: dict | None = None
        self._last_candidate: Candidate | None = None
        self._threads: list[threading.Thread] = []
        self._web_server = None
        self._gallery_revision: int | None = None   # the store revision the gallery and policy were built from
        self._ranker: Ranker | None = None
        self._status_line = ""
        self.started_at = time.time()

        factory = make_pin_factory(cfg.door.pin_factory) if pin_factory is _AUTO else pin_factory
        self.policy = self._make_policy()
        self.relay_history: deque[tuple[float, bool, str]] = deque(maxlen=100)  # (monotonic, on, reason)
        self.door = Door(cfg.door, unlock_seconds=self._unlock_seconds, pin_factory=factory,
                         on_event=self._log_event, on_relay_change=self._relay_changed)
        try:
            if source is _AUTO:
                source = source_from_config(cfg.camera)
            self.feed = CameraFeed(source, retry_initial=cfg.camera.retry_initial_seconds,
                                   retry_max=cfg.camera.retry_max_seconds, on_failure=self._camera_failed,
                                   on_recovered=self._camera_recovered)
            self.decider = Decider(self.policy)
            self._load_gallery()
        except BaseException:
            self.door.close()
            raise

    # ------------------------------------------------------------------ building from a configuration
    @classmethod
    def from_config(cls, cfg: _config.Config, *, config_path: str | None = None, **options) -> "DoorService":
        """Open the model, the database and the access log named by ``cfg`` (EdgeError if any is unusable)."""
        from .accesslog import AccessLog
        from .recognition import FaceEngine
        from .store import Store

        store = Store.open(cfg, allow_backup=True)  # first: a missing database is the likeliest problem
        access_log = AccessLog.open(cfg, keyring=store.keyring)
        engine = FaceEngine.from_config(cfg)
        try:
            return cls(cfg, engine=engine, store=store, log_=access_log, config_path=config_path, **options)
        except BaseException:
            engine.close()
            raise

    # ------------------------------------------------------------------ settings and gallery
    def _settings(self) -> dict:
        return self.store.settings if self.store is not None else {}   # a fresh dict each time

    def _make_policy(self) -> Policy:
        return Policy.from_settings(self.cfg.decision, self._settings(), model_threshold=self.engine.threshold)

    def _unlock_seconds(self) -> float:
        return float(self._settings().get("unlock_seconds", self.cfg.decision.unlock_seconds))

    def _load_gallery(self) -> None:
        if self.store is None:
            self._ranker = None
            return
        self._gallery_revision = self.store.revision
        gallery = self.store.gallery(self.engine.model_id)
        self._ranker = Ranker.for_gallery(gallery, aggregation=self.cfg.decision.aggregation)
        log.info("gallery: %d templates of %d active users (revision %d)", len(gallery.user_ids),
                 len(set(gallery.user_ids)), self.store.revision)

    def _user_count(self) -> int:
        return len(self._ranker) if self._ranker is not None else 0

    def _apply_reload(self) -> None:
        """Runs in the recognition thread between frames, so a frame never sees half a change."""
        self._reload.clear()
        self._load_gallery()
        policy = self._make_policy()
        if policy != self.decider.policy:
            log.info("decision policy now %s", policy)
        self.decider.update_policy(policy)
        self.policy = policy

    def reload(self) -> None:
        """Gallery and settings changed (web page, CLI, SIGHUP): applied before the next frame."""
        self._reload.set()

    def reload_config(self) -> None:
        """SIGHUP: re-read the configuration file; decision defaults and log level apply at once, camera,
        door and web changes need a restart (said in the log)."""
        if self.config_path:
            try:
                new = _config.load(self.config_path)
            except EdgeError as exc:
                log.error("SIGHUP: configuration not reloaded: %s", exc)
                new = None
            if new is not None and self.store is not None:
                try:
                    check_runtime(self.store.settings_with_defaults(new),
                                  max_unlock_seconds=self.cfg.door.max_unlock_seconds)
                except SettingError as exc:
                    log.error("SIGHUP: configuration not reloaded: with the settings saved on the admin page, "
                              "%s", exc)
                    new = None
            if new is not None:
                for section in ("paths", "recognition", "camera", "door", "store", "web"):
                    if getattr(new, section) != getattr(self.cfg, section):
                        log.warning("SIGHUP: [%s] changed; restart the service to apply it", section)
                self.cfg = dataclasses.replace(self.cfg, decision=new.decision, logging=new.logging)
                if self.store is not None:
                    self.store.set_defaults(dataclasses.replace(new, door=self.cfg.door))
                logging.getLogger().setLevel(new.logging.level)
                log.info("SIGHUP: configuration %s reloaded", self.config_path)
        if self.store is not None:
            self.store.refresh()
        self.reload()

    # ------------------------------------------------------------------ the recognition loop
    def _rank(self, embedding: np.ndarray) -> list:
        ranker = self._ranker
        return ranker(embedding, top=2) if ranker is not None else []

    def process_frame(self, frame: np.ndarray, now: float | None = None) -> Decision:
        """One frame through detection, embedding, matching, voting and the door."""
        now = self.clock() if now is None else now
        faces = self.engine.faces(frame, limit=1, detect_max_side=self.cfg.recognition.frame_detect_side)
        candidate = candidate_from_faces(faces, self._rank, min_face_px=self.policy.min_face_px)
        decision = self.decider.observe(candidate, now)
        self._last_candidate = candidate
        self._act(decision)
        self._processed.append(now)
        self.processed_frames += 1
        while self._processed and now - self._processed[0] > 2.0:
            self._processed.popleft()
        return decision

    def _recognition_loop(self) -> None:
        seq = 0
        while not self._stop.is_set():
            self._heartbeat = self.clock()
            if self._reload.is_set():
                self._apply_reload()
            seq, _taken, frame = self.feed.latest(after=seq, timeout=LOOP_WAIT)
            if frame is None:
                self.decider.observe(None, self.clock())
                continue
            self.process_frame(frame)

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
                self.decider.reset()
                self._stop.wait(1.0)

    # ------------------------------------------------------------------ acting on a decision
    def _user(self, user_id: str | None):
        if user_id is None or self.store is None:
            return None
        return self.store.get_user(user_id)

    def _user_name(self, user_id: str | None) -> str | None:
        user = self._user(user_id)
        if user is not None:
            return user.username
        return user_id

    def _act(self, decision: Decision) -> None:
        kind = decision.kind
        if kind in ("idle", "collecting", "cooldown", "locked_out"):
            return
        name = self._user_name(decision.user_id)
        if kind == "grant":
            if self.store is not None:
                self.store.refresh()  # a user disabled a moment ago (CLI, web) must not get in
            user = self._user(decision.user_id)
            if self.store is not None and (user is None or user.status != "active"):
                status = "removed" if user is None else user.status
                self.door.signal_deny()
                self._remember("deny", name, decision.score)
                log.warning("DENY %s: user is %s", name, status)
                self._log_event("deny", user=name, similarity=decision.score, decision="deny",
                                reason=f"user is {status}")
                self.reload()
                return
            seconds = self.door.unlock(reason=f"grant {name}")
            self._remember("grant", name, decision.score)
            log.info("GRANT %s (similarity %.3f, %d of %d frames); unlocked for %.1f s", name, decision.score,
                     decision.votes, decision.frames, seconds)
            self._log_event("grant", user=name, similarity=decision.score, decision="grant",
                            votes=decision.votes, frames=decision.frames)
            return
        if kind in ("deny", "unknown"):
            self.door.signal_deny()
            self._remember(kind, name, decision.score)
            log.info("%s %s (best similarity %.3f): %s", kind.upper(), name or "-", decision.score or -1,
                     decision.reason)
            photo = self._keep_photo() if kind == "unknown" else None
            self._log_event(kind, user=name if kind == "deny" else None, similarity=decision.score,
                            decision="deny", reason=decision.reason, **({"photo": photo} if photo else {}))
            return
        if kind == "lockout":
            self.door.signal_deny()
            self._remember(kind, name, decision.score)
            log.warning("LOCKOUT: %s", decision.reason)
            self._log_event("lockout", similarity=decision.score, decision="deny", reason=decision.reason,
                            seconds=self.policy.lockout_seconds)

    def _keep_photo(self) -> str | None:
        """With decision.keep_unknown_photos, the unknown face's crop, encrypted with the database key; the
        newest ``UNKNOWN_PHOTOS_KEPT`` are kept. Returns the file name for the access log."""
        candidate = self._last_candidate
        if not self.cfg.decision.keep_unknown_photos or self.store is None or candidate is None \
                or candidate.crop is None:
            return None
        try:
            ok, data = cv2.imencode(".jpg", candidate.crop, [cv2.IMWRITE_JPEG_QUALITY, 90])
            if not ok:
                raise ValueError("the crop could not be encoded as JPEG")
            folder = self.cfg.state_dir / "unknown"
            folder.mkdir(mode=0o700, exist_ok=True)
            name = time.strftime("%Y%m%d-%H%M%S") + f"-{time.time_ns() % 1_000_000:06d}.jpg.fernet"
            path = folder / name
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(self.store.keyring.encrypt(bytes(data)))
            for old in sorted(folder.glob("*.jpg.fernet"))[:-UNKNOWN_PHOTOS_KEPT]:
                old.unlink(missing_ok=True)
            return name
        except Exception as exc:
            log.error("cannot keep the photograph of an unknown face: %s", exc)
            return None

    def _remember(self, kind: str, name: str | None, score: float | None) -> None:
        self._last_decision = {"kind": kind, "user": name, "similarity": None if score is None else round(score, 3),
                               "time": time.time()}

    def _log_event(self, kind: str, **fields) -> None:
        """Access log write; a full disk must not take the door down, so failures are logged, not raised."""
        if self.access_log is None:
            return
        fields.setdefault("source", "door")
        try:
            self.access_log.append(kind, **fields)
        except Exception as exc:
            log.error("cannot write %s to the access log: %s", kind, exc)

    def _relay_changed(self, active: bool, reason: str) -> None:
        self.relay_history.append((time.monotonic(), active, reason))

    def _camera_failed(self, message: str) -> None:
        self._log_event("camera_failure", error=message)

    def _camera_recovered(self) -> None:
        self._log_event("camera_recovered")

    # ------------------------------------------------------------------ controller (the web page's view)
    @property
    def config(self) -> _config.Config:
        """The configuration in force (SIGHUP replaces it); the web page reads it from here."""
        return self.cfg

    def fps(self) -> float:
        seen = list(self._processed)
        if len(seen) < 2:
            return 0.0
        return (len(seen) - 1) / max(seen[-1] - seen[0], 1e-6)

    def status_details(self) -> dict:
        """Everything the daemon knows about itself, as data (benchmarks, tests, `status()`)."""
        door = self.door.status()
        return {"camera": self.feed.state(), "door": door, "pins": door["pins"],
                "fps": round(self.fps(), 1), "last_decision": self._last_decision, "users": self._user_count(),
                "decision": self.decider.status(self.clock()), "policy": dict(vars(self.policy)),
                "simulated_pins": self.door.simulated, "uptime_seconds": round(time.time() - self.started_at),
                "model": self.engine.model_id}

    def status(self) -> dict:
        """Short readable values for the dashboard (which shows each key and value as they are)."""
        d = self.status_details()
        cam = d["camera"]
        camera = cam["state"] if cam["state"] != "running" else f"running ({cam['source']}, {cam['fps']:.0f} fps)"
        if cam["state"] == "retrying":
            camera = f"failing, retrying in {cam['retry_in']:g} s: {cam['error']}"
        door = d["door"]
        door_text = "UNLOCKED" if door["unlocked"] else "locked"
        if door["door_open"] is not None:
            door_text += ", door open" if door["door_open"] else ", door shut"
        if door["held_open"]:
            door_text += " - HELD OPEN (alarm)"
        pins = ", ".join(f"{name} GPIO{p['pin']} {p['state']}" for name, p in d["pins"].items())
        last = d["last_decision"]
        last_text = "none yet"
        if last:
            when = time.strftime("%H:%M:%S", time.localtime(last["time"]))
            score = f" ({last['similarity']:.3f})" if last["similarity"] is not None else ""
            last_text = f"{last['kind']} {last['user'] or ''}{score} at {when}".replace("  ", " ")
        return {"camera": camera, "door": door_text,
                "pins": pins + (" (simulated)" if d["simulated_pins"] else ""),
                "fps": d["fps"], "last_decision": last_text, "users": d["users"], "model": d["model"]}

    def snapshot_jpeg(self) -> bytes | None:
        """The latest frame as JPEG, with the face being judged outlined; None without a camera."""
        _seq, _t, frame = self.feed.latest(after=0, timeout=0)
        if frame is None:
            return None
        frame = frame.copy()
        candidate = self._last_candidate
        if candidate is not None:
            x, y, w, h = candidate.box
            cv2.rectangle(frame, (x, y), (x + w, y + h), (0, 200, 0), 2)
        ok, data = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 85])
        return bytes(data) if ok else None

    def capture_frames(self, count: int, seconds: float) -> list[np.ndarray]:
        """Up to ``count`` frames within ``seconds`` (enrolment from the door camera): the current one at
        once, then new ones spread over the time, so they show different moments rather than one blink."""
        frames: list[np.ndarray] = []
        seq, _t, frame = self.feed.latest(after=0, timeout=0)
        if frame is not None and count > 0:
            frames.append(frame.copy())
        deadline = time.monotonic() + max(0.0, seconds)
        spacing = seconds / max(count, 1)
        while len(frames) < count:
            next_at = min(deadline, time.monotonic() + spacing * 0.5)
            if next_at > time.monotonic():
                time.sleep(next_at - time.monotonic())
            left = deadline - time.monotonic()
            if left <= 0:
                break
            seq, _t, frame = self.feed.latest(after=seq, timeout=min(left, 1.0))
            if frame is not None:
                frames.append(frame.copy())
        return frames

    def remote_unlock(self, admin_username: str) -> None:
        seconds = self.door.unlock(reason=f"remote unlock by {admin_username}")
        self._remember("remote_unlock", admin_username, None)
        log.info("REMOTE UNLOCK by %s for %.1f s", admin_username, seconds)
        self._log_event("remote_unlock", user=admin_username, decision="grant", source="web")

    # ------------------------------------------------------------------ running
    def start(self) -> "DoorService":
        """Start the threads (capture, recognition, web); returns at once."""
        threading.excepthook = self._thread_crashed
        self.feed.start()
        worker = threading.Thread(target=self._recognition_thread, name="recognition", daemon=True)
        worker.start()
        self._threads.append(worker)
        if self.web_enabled:
            self._start_web()
        self._log_event("service_start", source="service", camera=self.feed.state()["source"],
                        simulated_pins=self.door.simulated)
        return self

    def _start_web(self) -> None:
        from .web import WebServer, create_app  # here, so a door without the admin page never loads Bottle

        app = create_app(self.cfg, store=self.store, log=self.access_log, engine=self.engine, controller=self)
        self._web_server = WebServer(self.cfg, app)
        self._web_server.start()  # it logs its address and certificate fingerprint

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
        deadline = time.monotonic() + max(2 * self.cfg.camera.frame_timeout_seconds, 3.0)
        while time.monotonic() < deadline and not self._stop.is_set():
            if self.feed.state()["frames"] > 0 or self.feed.state()["state"] == "retrying":
                return
            time.sleep(0.05)

    def status_line(self) -> str:
        cam = self.feed.state()
        camera = {"running": f"camera {cam['source']} {cam['fps']:.0f} fps", "none": "no camera",
                  "retrying": f"camera {cam['source']} failing ({cam['error']}), retrying",
                  "starting": f"camera {cam['source']} starting"}.get(cam["state"], f"camera {cam['state']}")
        users = self._user_count()
        door = "UNLOCKED" if self.door.relay.is_active else "locked"
        pins = " (simulated pins)" if self.door.simulated else ""
        return f"{camera}; {users} users; door {door}{pins}"

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
        while not self._stop.wait(tick):
            if self.store is not None:
                try:
                    # Compare revisions rather than trust refresh()'s answer: it is True only for the first
                    # caller after a change, and a grant or a web request may have refreshed the store already.
                    self.store.refresh()
                    if self.store.revision != self._gallery_revision and not self._reload.is_set():
                        log.info("database changed (revision %d): reloading gallery and settings",
                                 self.store.revision)
                        self.reload()
                except Exception:
                    log.exception("database refresh failed; keeping the gallery in memory")
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
            threading.Thread(target=self.reload_config, name="reload", daemon=True).start()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGHUP, hup)

    def close(self) -> None:
        """Door first (relay released), then systemd, camera, web, recognition, log."""
        self._stop.set()
        self.door.close()
        self.notifier.stopping("stopping")
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
        self._log_event("service_stop", source="service", exit_code=self.exit_code)
        self.notifier.close()
        if threading.excepthook == self._thread_crashed:
            threading.excepthook = threading.__excepthook__
        log.info("stopped (exit status %d)", self.exit_code)


def run_from_config(cfg: _config.Config, *, config_path: str | None = None) -> int:
    logging.getLogger().setLevel(cfg.logging.level)
    log.info("edge-face starting (pid %d)", os.getpid())
    service = DoorService.from_config(cfg, config_path=config_path)
    return service.run()
