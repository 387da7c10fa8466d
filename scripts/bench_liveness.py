#!/usr/bin/env python3
"""Liveness benchmark (issue 15): APCER per attack family, BPCER, undecided share, time to "live" and the added
cost per frame beside the FaceNet invoke, per mode (passive, strict), in one run.

ISO/IEC 30107-3 terms: APCER = share of attack presentations accepted (judged live at any moment of the
attack: an attacker may keep trying), BPCER = share of live presentations refused (not judged live within
``--window`` seconds). Data: ``../shared/liveness`` (MANIFEST.md there), never copied into the repository.

Split: thresholds are chosen on the training half (NUAA subjects 0001-0004 and clips lp_d0, lp_d3, lp_d9, lp_d10
and attacks made from them) and every figure is reported on the held-out half (NUAA 0005-0009, the other clips
and attacks made from them), so no threshold has seen the data it is measured on.

Trials:
- live, passive: every 3-second window (starting every 1.5 s) of each clip, a new judge per window;
- live, strict (a cooperating person): the judge asks at its random moment; the person answers with a blink
  0.45 s later (the clip jumps to one of its own blinks) and keeps the eyes open otherwise (the clip skips its
  other blinks and eye closures). The blinks are listed by hand in ``bench_liveness_blinks.toml`` (frame
  numbers found by looking at every frame; no detector output), so the detector under test is not the one that
  placed them; a listed blink whose closed frames all fall between the 15-fps frames is not used as an answer;
- NUAA live (still faces, told not to blink): share confirmed live, with the cue that did it;
- attacks: NUAA print sequences (at their recorded timing, frames 0.35-1.8 s apart, and again as if filmed at
  10 fps), and the synthetic families of ``edge.liveness.synth``.

Usage: scripts/bench_liveness.py [--data ../shared/liveness] [--quick] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import statistics
import sys
import time
import tomllib
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from edge.liveness import LIVE, LivenessModels, Thresholds  # noqa: E402
from edge.liveness import datasets, synth  # noqa: E402
from edge.recognition import FaceEngine  # noqa: E402

TRAIN_NUAA = {"0001", "0002", "0003", "0004"}
TRAIN_CLIPS = {"lp_d0", "lp_d3", "lp_d9", "lp_d10"}
MODES = ("passive", "strict")
BLINK_LIST = Path(__file__).with_name("bench_liveness_blinks.toml")
SPLIT = ("training split: NUAA subjects 0001-0004, clips lp_d0, lp_d3, lp_d9, lp_d10 and the attacks made from "
         "them; every figure below is on the held-out rest (NUAA 0005-0009, clips lp_d13, lp_d14, lp_s18, sad_aoc, "
         "sad_katiehill and their attacks)")


class Runner:
    """Detects faces once per frame and feeds the judges; times the judge and a FaceNet invoke per frame."""

    def __init__(self, models_dir: Path, threads: int, liveness_threads: int = 2):
        self.engine = FaceEngine(models_dir=models_dir, num_threads=threads)
        self.models = LivenessModels(models_dir=models_dir, num_threads=liveness_threads)
        self.judge_ms: list[float] = []
        self.facenet_ms: list[float] = []
        self._frames = 0

    def face(self, frame):
        found = self.engine.detect(frame, max_side=320)
        if not found:
            return None
        best = max(found, key=lambda d: d.box[2] * d.box[3])
        self._frames += 1
        if self._frames % 10 == 0:  # FaceNet cost, timed in the same run (the door embeds each voting frame)
            crop = self.engine.align(frame, best)
            start = time.perf_counter()
            self.engine.embed(crop[None])
            self.facenet_ms.append((time.perf_counter() - start) * 1000)
        return best

    def run(self, frames, judges: dict, *, stop_when_live: bool = False):
        """Feed (time, frame) to every judge; per judge: (first time live or None, last verdict)."""
        first_live = {k: None for k in judges}
        last = {}
        t0 = None
        for t, frame in frames:
            t0 = t if t0 is None else t0
            face = self.face(frame)
            for key, judge in judges.items():
                start = time.perf_counter()
                verdict = judge.observe(frame, face, t)
                self.judge_ms.append((time.perf_counter() - start) * 1000)
                last[key] = verdict
                if verdict.state == LIVE and first_live[key] is None:
                    first_live[key] = t - t0
            if stop_when_live and all(v is not None for v in first_live.values()):
                break
        return first_live, last


def split_of(name: str) -> str:
    for tag in TRAIN_NUAA:
        if f"-{tag}_" in name or name.endswith(f"-{tag}"):
            return "train"
    return "train" if any(c in name for c in TRAIN_CLIPS) else "test"


def clip_windows(seq, window: float, step: float, fps_cap: float = 15.0):
    frames = list(seq.frames())
    if not frames:
        return []
    duration = frames[-1][0]
    out = []
    start = 0.0
    while start + window <= duration + 1e-6 or not out:
        chunk = [(t, f) for t, f in frames if start <= t < start + window]
        out.append((start, datasets.decimate(chunk, fps_cap)))
        start += step
        if start + window > duration + 1e-6:
            break
    return out


def listed_blinks(clip, frames) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    """The hand-listed blinks of a clip (``bench_liveness_blinks.toml``): ((start, end) of the blinks the 15-fps
    stream ``frames`` can see - at least one closed frame among them -, (start, end) of every listed blink and
    eye closure, for skipping)."""
    listed = tomllib.loads(BLINK_LIST.read_text()).get(clip.subject)
    if listed is None:
        return [], []
    capture = cv2.VideoCapture(str(clip.clip))
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    capture.release()
    times = np.array([t for t, _ in frames])
    answers, spans = [], []
    for first, last in listed["blinks"]:
        start, end = first / fps, last / fps
        spans.append((start, end))
        if np.any((times >= start - 1e-6) & (times <= end + 1e-6)):
            answers.append((start, end))
    spans += [(first / fps, last / fps) for first, last in listed["closures"]]
    return answers, spans


def cooperating_trial(runner: Runner, frames, answers, spans, thresholds, seed: int, window: float):
    """Strict mode, a person who keeps their eyes open and blinks when asked: play the clip, skipping its own
    blinks and closures (``spans``); whenever the judge asks, jump to 0.45 s before one of the listed blinks
    (``answers``, (start, end)) and play through that blink only. Returns (time to live or None = refused within
    ``window``, the last reason)."""
    rng = random.Random(seed)
    judge = runner.models.judge("strict", thresholds=thresholds, rng=random.Random(seed))
    times = [t for t, _ in frames]
    # a blink can answer when the 0.65 s before it show open eyes (the jump lands there, then plays through)
    usable = [a for a in answers if a[0] - 0.65 >= times[0]
              and not any(span != a and span[0] < a[0] and span[1] > a[0] - 0.65 for span in spans)]
    if not usable:
        return None, "clip has no blink to answer with"

    def index_at(t):
        return min(range(len(times)), key=lambda k: abs(times[k] - t))

    i, now, answered_at, answer, verdict = 0, 0.0, None, None, None
    dt = 1.0 / 15.0
    while now <= window:
        t, frame = frames[i]
        face = runner.face(frame)
        start = time.perf_counter()
        verdict = judge.observe(frame, face, now)
        runner.judge_ms.append((time.perf_counter() - start) * 1000)
        if verdict.state in (LIVE, "spoof"):
            return (now if verdict.state == LIVE else None), verdict.reason
        if verdict.asking and (answered_at is None or now - answered_at > 1.0):  # each request answered once
            answer = rng.choice(usable)
            i = index_at(answer[0] - 0.45)
            answered_at = now
        else:
            i += 1
            if answer is not None and i < len(times) and times[i] > answer[1] + 0.15:
                answer = None  # answered: eyes open again until the next request
            for span in spans:  # every other blink or closure of the clip is skipped
                if span != answer and i < len(times) and span[0] - 0.15 <= times[i] <= span[1] + 0.15:
                    i = index_at(span[1] + 0.2)
            if i >= len(frames) - 1:
                i = 0
        now += dt
    return None, verdict.reason if verdict else "no frames"


def lucky_replay_share(onsets: list[float], duration: float, rounds: int, tries: int = 2000) -> float:
    """Share of random request moments a replay of this clip answers by chance (its own blinks falling in the
    window with a quiet second before), for ``rounds`` requests in a row; by simulation with the real rule."""
    from edge.liveness.challenge import Challenge

    rng = random.Random(7)
    wins = 0
    for _ in range(tries):
        start = rng.uniform(0, max(0.0, duration - 4.0))
        ch = Challenge(rng=random.Random(rng.random()), rounds=rounds)
        ch.start(start)
        now = start
        for b in [b for b in onsets if b >= start]:
            while ch.ask_at is not None and not ch.done and b > ch.ask_at + ch.window[1]:
                ch.update(ch.ask_at + ch.window[1] + 1e-6)
            ch.observe_blink(b)
            now = b
            if ch.done or now > start + 3.0 + 1.5 * rounds:
                break
        wins += ch.done and now <= start + 3.0 + 1.5 * rounds
    return wins / tries


def cue_line(cues: dict) -> str:
    """The confirm and deny cues' values of a verdict, short."""
    names = ("eyelid_travel", "mouth_range", "gaze_range", "parallax_max", "outline_max", "glare_max")
    return ", ".join(f"{n.split('_')[0]} {cues[n]:.2f}" for n in names if n in cues)


def pct(n, d):
    return f"{100.0 * n / d:5.1f}% ({n}/{d})" if d else "  n/a"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "liveness")
    parser.add_argument("--models-dir", type=Path, default=REPO / "models")
    parser.add_argument("--threads", type=int, default=2, help="FaceNet's threads (the door's)")
    parser.add_argument("--liveness-threads", type=int, default=2,
                        help="threads of the face mesh and iris model (the door: 2, or fewer if recognition has fewer)")
    parser.add_argument("--window", type=float, default=3.0, help="seconds a live person may need (BPCER)")
    parser.add_argument("--strict-window", type=float, default=6.0,
                        help="seconds a cooperating person may need in strict mode (request + blink)")
    parser.add_argument("--quick", action="store_true", help="a few sequences per family (development)")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    runner = Runner(args.models_dir, args.threads, args.liveness_threads)
    limit = 3 if args.quick else None

    nuaa_live = datasets.nuaa_sequences(args.data, "live")
    nuaa_print = datasets.nuaa_sequences(args.data, "spoof")
    clips = datasets.clip_sequences(args.data)
    clip_frames = {c.subject: datasets.decimate(list(c.frames()), 15.0) for c in clips}

    def attacks(split: str):
        """(family, name, frame iterator factory) for the attacks of one split."""
        out = []
        prints = [s for s in nuaa_print if split_of(s.name) == split][:limit]
        for s in prints:
            out.append(("nuaa-print", s.name, lambda s=s: s.frames()))
            out.append(("nuaa-print@10fps", s.name,
                        lambda s=s: ((i / 10.0, f) for i, (_, f) in enumerate(s.frames()))))
        stills = []
        for s in [s for s in nuaa_live if split_of(s.name) == split][:limit]:
            t, frame = next(s.frames())
            stills.append((s.name, frame))
        for c in [c for c in clips if split_of(c.name) == split][:limit]:
            stills.append((c.name, clip_frames[c.subject][0][1]))
        for k, (name, frame) in enumerate(stills):
            face = runner.face(frame)
            if face is None:
                continue
            photo = synth.portrait(frame, face.box)
            for fam in ("print-moving", "phone-photo"):
                out.append((fam, name, lambda fam=fam, photo=photo, k=k: synth.attack(fam, photo, seed=k, seconds=4.0)))
        for k, c in enumerate([c for c in clips if split_of(c.name) == split][:limit]):
            src = [(t, f) for t, f in clip_frames[c.subject] if t < 8.0]
            for fam in ("laptop-replay", "phone-replay", "bare-replay"):
                out.append((fam, c.name, lambda fam=fam, src=src, k=k: synth.attack(fam, src, seed=100 + k)))
        return out

    # ---- 1. training split: cue statistics -> thresholds
    t_start = time.perf_counter()
    print(SPLIT + "\n")
    # judges that never decide, so that every cue is measured over the whole sequence
    measuring = replace(Thresholds(), blink_dip=0.0, challenge_dip=0.0, mouth=9.0, gaze=9.0, parallax=9.0,
                        outline=9.0, glare=9.0)
    stats: dict = {"attack_dip": [], "attack_parallax": [], "attack_mouth": [], "attack_gaze": [], "attack_blink": [],
                   "live_dip": [], "live_parallax": [], "live_gaze": []}
    for fam, name, make in attacks("train"):
        if "replay" in fam:
            continue  # replays of live video blink and turn for real: they are for the deny cues and the challenge
        judges = {"p": runner.models.judge("passive", thresholds=measuring)}
        _, last = runner.run(make(), judges)
        cues = last["p"].cues
        stats["attack_dip"].append(cues["eyelid_travel"])
        stats["attack_blink"].append(cues["blink_dip"])
        stats["attack_parallax"].append(cues["parallax_max"])
        stats["attack_mouth"].append(cues["mouth_range"])
        stats["attack_gaze"].append(cues["gaze_range"])
    for c in [c for c in clips if split_of(c.name) == "train"][:limit]:
        judges = {"p": runner.models.judge("passive", thresholds=measuring)}
        _, last = runner.run(clip_frames[c.subject], judges)
        stats["live_dip"].append(last["p"].cues["eyelid_travel"])
        stats["live_parallax"].append(last["p"].cues["parallax_max"])
        stats["live_gaze"].append(last["p"].cues["gaze_range"])
    defaults = Thresholds()
    attack_dip_min = min(stats["attack_dip"]) if stats["attack_dip"] else 1.0
    attack_par_max = max(stats["attack_parallax"]) if stats["attack_parallax"] else 0.0
    attack_mouth_max = max(stats["attack_mouth"]) if stats["attack_mouth"] else 0.0
    attack_gaze_max = max(stats["attack_gaze"]) if stats["attack_gaze"] else 0.0
    attack_blink_min = min(stats["attack_blink"]) if stats["attack_blink"] else 1.0
    chosen = replace(defaults, blink_dip=round(min(defaults.blink_dip, 0.75 * attack_dip_min), 3),
                     challenge_dip=round(min(defaults.challenge_dip, 0.85 * attack_blink_min), 3),
                     parallax=round(max(defaults.parallax, 1.25 * attack_par_max), 3),
                     mouth=round(max(defaults.mouth, 1.5 * attack_mouth_max), 3),
                     gaze=round(max(defaults.gaze, 1.5 * attack_gaze_max), 3))
    print(f"training attacks (prints and still photos, {len(stats['attack_dip'])}): lowest eyelid travel (either "
          f"eye) {attack_dip_min:.2f} of open, largest nose parallax {attack_par_max:.3f}, mouth range "
          f"{attack_mouth_max:.3f}, gaze range {attack_gaze_max:.3f}, deepest dip under the running open level "
          f"{attack_blink_min:.2f}; training live clips: eyelid travel "
          f"{sorted(round(x, 2) for x in stats['live_dip'])}, gaze {sorted(round(x, 2) for x in stats['live_gaze'])}")
    print(f"thresholds chosen on it: eyelid dip < {chosen.blink_dip} (0.75 x), challenge blink dip < "
          f"{chosen.challenge_dip} (0.85 x), parallax >= {chosen.parallax} (1.25 x), mouth range >= {chosen.mouth} "
          f"(1.5 x), gaze range >= {chosen.gaze} (1.5 x); defaults {defaults.blink_dip}, {defaults.challenge_dip}, "
          f"{defaults.parallax}, {defaults.mouth}, {defaults.gaze}\n")

    # ---- 2. held-out split
    results: dict = {"split": SPLIT, "thresholds": {"blink_dip": chosen.blink_dip,
                                                    "challenge_dip": chosen.challenge_dip, "parallax": chosen.parallax,
                                                    "mouth": chosen.mouth, "gaze": chosen.gaze}, "modes": {}}
    per_family: dict = {m: {} for m in MODES}
    seed = 0
    for fam, name, make in attacks("test"):
        seed += 1
        judges = {m: runner.models.judge(m, thresholds=chosen, rng=random.Random(seed)) for m in MODES}
        first_live, last = runner.run(make(), judges)
        for m in MODES:
            per_family[m].setdefault(fam, []).append((name, first_live[m] is not None, last[m].state,
                                                      last[m].reason, last[m].cues))
    live_windows = {m: [] for m in MODES}
    test_clips = [c for c in clips if split_of(c.name) == "test"][:limit]
    for c in test_clips:
        for start, chunk in clip_windows(c, args.window, 1.5):
            judges = {"passive": runner.models.judge("passive", thresholds=chosen)}
            first_live, last = runner.run(chunk, judges, stop_when_live=True)
            live_windows["passive"].append((c.name, start, first_live["passive"], last["passive"].state,
                                            last["passive"].reason, last["passive"].cues))
    coop = []
    lucky = {}
    for k, c in enumerate(test_clips):
        frames = clip_frames[c.subject]
        answers, spans = listed_blinks(c, frames)
        onsets = [start for start, _ in answers]
        lucky[c.name] = (lucky_replay_share(onsets, frames[-1][0], 1), lucky_replay_share(onsets, frames[-1][0], 2),
                         len(onsets) / max(frames[-1][0], 1e-6) * 60)
        for trial in range(4):
            t_live, reason = cooperating_trial(runner, frames, answers, spans, chosen, seed=1000 + 10 * k + trial,
                                               window=args.strict_window)
            coop.append((c.name, trial, t_live, reason))
    still = []
    for s in [s for s in nuaa_live if split_of(s.name) == "test"][:limit]:
        judges = {"p": runner.models.judge("passive", thresholds=chosen)}
        first_live, last = runner.run(s.frames(), judges)
        still.append((s.name, first_live["p"], last["p"].reason, last["p"].cues))

    # ---- report
    for m in MODES:
        print(f"== mode {m} (held-out split)")
        fam_out = {}
        for fam, rows in per_family[m].items():
            accepted = sum(1 for r in rows if r[1])
            spoofed = sum(1 for r in rows if r[2] == "spoof" and not r[1])
            print(f"  APCER {fam:18s} {pct(accepted, len(rows))}   refused as spoof {spoofed}, "
                  f"as undecided {len(rows) - accepted - spoofed}")
            for r in rows:
                if r[1]:
                    print(f"    accepted: {r[0]}: {r[3]} ({cue_line(r[4])})")
            fam_out[fam] = {"apcer": accepted / len(rows), "n": len(rows), "spoof": spoofed,
                            "accepted": [r[0] for r in rows if r[1]]}
        entry = {"apcer": fam_out}
        if m == "passive":
            rows = live_windows["passive"]
            refused = [r for r in rows if r[2] is None]
            spoof = sum(1 for r in refused if r[3] == "spoof")
            times = [r[2] for r in rows if r[2] is not None]
            print(f"  BPCER live clips, {args.window:.0f}-s windows: {pct(len(refused), len(rows))}  "
                  f"(of them wrongly 'spoof' {spoof}, undecided {len(refused) - spoof})")
            if times:
                print(f"  time to live: median {statistics.median(times):.2f} s, max {max(times):.2f} s")
            for r in refused:
                print(f"    refused: {r[0]} window from {r[1]:.1f} s: {r[4]} ({cue_line(r[5])})")
            entry.update({"bpcer": len(refused) / max(1, len(rows)), "undecided_share":
                          (len(refused) - spoof) / max(1, len(rows)), "windows": len(rows),
                          "time_to_live_median": statistics.median(times) if times else None})
            confirmed = [r for r in still if r[1] is not None]
            print(f"  NUAA still live faces confirmed live: {len(confirmed)}/{len(still)}")
            for r in confirmed:
                print(f"    {r[0]} at {r[1]:.1f} s: {r[2]} ({cue_line(r[3])})")
            entry["nuaa_still_confirmed"] = [(r[0], r[1], r[2]) for r in confirmed]
        else:
            refused = [r for r in coop if r[2] is None]
            times = [r[2] for r in coop if r[2] is not None]
            print(f"  BPCER cooperating person (blinks 0.45 s after the request): {pct(len(refused), len(coop))}"
                  + (f"; time to live median {statistics.median(times):.2f} s, max {max(times):.2f} s"
                     if times else ""))
            for r in refused:
                print(f"    refused: {r[0]} trial {r[1]}: {r[3]}")
            print("  chance that a replay's own blinks answer the challenge by luck (1 round / 2 rounds, the default; "
                  "the clip's blinks per minute):")
            for name, (one, two, rate) in lucky.items():
                print(f"    {name:22s} {100 * one:5.1f}% / {100 * two:5.1f}%   ({rate:.0f}/min)")
            entry["lucky_replay"] = lucky
            entry.update({"bpcer": len(refused) / max(1, len(coop)), "trials": len(coop),
                          "time_to_live_median": statistics.median(times) if times else None})
        results["modes"][m] = entry
    judge_ms = statistics.median(runner.judge_ms)
    judge_mean = statistics.fmean(runner.judge_ms)
    facenet_ms = statistics.median(runner.facenet_ms) if runner.facenet_ms else float("nan")
    load = os.getloadavg()
    print(f"\ncost per frame, same run (FaceNet {args.threads} threads, mesh and iris model {args.liveness_threads}): "
          f"liveness judge median {judge_ms:.2f} ms, mean {judge_mean:.2f} ms (p90 "
          f"{np.percentile(runner.judge_ms, 90):.2f}, {len(runner.judge_ms)} frames), FaceNet embedding median "
          f"{facenet_ms:.2f} ms; ratio median {judge_ms / facenet_ms:.2f}, mean {judge_mean / facenet_ms:.2f}; "
          f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} on {os.cpu_count()} cores")
    print(f"bench time {time.perf_counter() - t_start:.0f} s")
    results["cost"] = {"judge_ms": judge_ms, "judge_mean_ms": judge_mean, "facenet_ms": facenet_ms,
                       "ratio": judge_ms / facenet_ms, "ratio_mean": judge_mean / facenet_ms, "load": load}
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
