#!/usr/bin/env python3
"""Train the texture cue (``edge/liveness/texture.py``): uniform-LBP colour histograms + logistic regression.

Data (``../shared/liveness``, never copied into the repository), with the split of ``scripts/bench_liveness.py``
so that its held-out figures stay held out:
- training: NUAA subjects 0001-0004 (live and printed-photo frames), clips lp_d0, lp_d3, lp_d9, lp_d10 (live),
  and synthetic attacks (``edge.liveness.synth``) made from those only: prints on moving/bent sheets and phone
  photos of stills from them, laptop and phone replays of the clips. The live frames are also used shrunk and
  through ``synth.camera`` (the blur and noise every synthetic attack gets), so that neither face size nor that
  rendering artefact tells the classes apart. ``bare-replay`` (no border, glare or moire: by construction the
  same pixels as the clip) is not trained on.
- held out: NUAA 0005-0009, the other clips, and the bench's synthetic attacks made from them.

Every frame goes through the door's own detector (YuNet at 320 px, the largest face) and crop. The model is a
logistic regression (numpy, Newton's method, L2) on standardised features, classes and sources balanced; the
L2 strength (lowest out-of-fold log-loss) and the track-level veto threshold are chosen by 4-fold
cross-validation grouped by subject/clip on the training split only (threshold: the highest out-of-fold mean
probability any live track of 3 looks or more reached, plus half the way to 1). Everything is deterministic
(fixed seeds, sorted inputs): the same data gives the same ``models/texture_lbp.npz``.

Outputs: ``models/texture_lbp.npz``, ``models/texture_training_list.txt`` (the exact frames and renders used),
and a report: the combined model on the held-out split (per frame and per track APCER/BPCER), and across
datasets: trained on NUAA only -> synthetic screen attacks from held-out clips; trained on clip-derived
synthetic attacks only -> held-out NUAA prints.

Usage: scripts/train_texture.py [--data ../shared/liveness] [--out models/texture_lbp.npz] [--no-write]
                                [--cache FILE] [--json report.json]
       scripts/train_texture.py --cost      # time the committed model per frame beside a FaceNet invoke
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from edge.liveness import datasets, synth, texture  # noqa: E402
from edge.recognition import FaceEngine  # noqa: E402

log = logging.getLogger("train_texture")

TRAIN_NUAA = ("0001", "0002", "0003", "0004")           # as scripts/bench_liveness.py
TRAIN_CLIPS = ("lp_d0", "lp_d3", "lp_d9", "lp_d10")
LOOK_FPS = 7.5         # the judge scores every second frame of a ~15 fps door camera
WINDOW, STEP = 3.0, 1.5  # live clips are judged in 3-s windows (as the bench's BPCER)
LAMBDAS = (10.0, 100.0, 1000.0, 10000.0)
MARGIN = 0.5           # threshold = worst out-of-fold live track + MARGIN of the way to 1
MIN_LOOKS = 3          # the judge confirms "live" after 5 usable frames: looks at frames 1, 3, 5
SEED = 20260
STILL_FAMILIES = ("print-moving", "phone-photo")
REPLAY_FAMILIES = ("laptop-replay", "phone-replay")


@dataclass
class Track:
    """One presentation: its frames' features (one row per look), label 1 = attack, and where it came from."""

    name: str
    label: int
    source: str          # nuaa / clip / the synthetic family
    group: str           # subject or clip: the cross-validation group
    split: str           # train / test
    items: list          # what was used, for the data list (one string per frame or render)
    times: np.ndarray
    feats: np.ndarray
    augmented: bool = False


# ---------------------------------------------------------------------------------------------------------------
# frames -> features


class Extractor:
    def __init__(self, models_dir: Path, threads: int):
        self.engine = FaceEngine(models_dir=models_dir, num_threads=threads)

    def face(self, frame):
        found = self.engine.detect(frame, max_side=320)
        if not found:
            return None
        best = max(found, key=lambda d: d.box[2] * d.box[3])
        x, y, w, h = best.box
        H, W = frame.shape[:2]
        if w < 24 or h < 24 or x < 1 or y < 1 or x + w > W - 1 or y + h > H - 1:
            return None  # the judge does not look at such faces either
        return best

    def features(self, frames) -> tuple[np.ndarray, np.ndarray, list[int]]:
        """(times, features, indices of the frames that had a usable face) of (time, frame) pairs."""
        times, rows, kept = [], [], []
        for i, (t, frame) in enumerate(frames):
            face = self.face(frame)
            if face is None:
                continue
            rows.append(texture.features(texture.face_crop(frame, face.box, face.landmarks)))
            times.append(t)
            kept.append(i)
        feats = np.asarray(rows, np.float32).reshape(-1, texture.N_FEATURES)
        return np.asarray(times, np.float64), feats, kept


def shrink(frame, rng):
    """A live frame as if the person stood further away, through the synthetic camera (augmentation)."""
    s = float(rng.uniform(0.4, 0.75))
    small = cv2.resize(frame, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
    out = np.zeros_like(frame) + np.uint8(rng.integers(60, 160))
    h, w = small.shape[:2]
    y0, x0 = (frame.shape[0] - h) // 2, (frame.shape[1] - w) // 2
    out[y0:y0 + h, x0:x0 + w] = small
    return synth.camera(out, rng)


def split_of_subject(subject: str) -> str:
    return "train" if subject in TRAIN_NUAA or subject in TRAIN_CLIPS else "test"


def collect(ex: Extractor, data: Path, *, quick: bool = False) -> list[Track]:
    """Every track of both splits, in a fixed order."""
    tracks: list[Track] = []
    rel = lambda p: str(Path(p).resolve().relative_to(data.resolve()))  # noqa: E731
    nuaa = {k: datasets.nuaa_sequences(data, k) for k in ("live", "spoof")}
    clips = datasets.clip_sequences(data)
    if quick:
        nuaa = {k: [s for s in v if s.subject in ("0001", "0005")][:3] for k, v in nuaa.items()}
        clips = [c for c in clips if c.subject in ("lp_d0", "lp_d13")]
    clip_frames = {c.subject: datasets.decimate(list(c.frames()), 15.0) for c in clips}

    def add(name, label, source, group, items, frames, augmented=False):
        times, feats, kept = ex.features(frames)
        tracks.append(Track(name=name, label=label, source=source, group=group, split=split_of_subject(group),
                            items=[items[i] for i in kept], times=times, feats=feats, augmented=augmented))
        log.info("%-52s %3d looks", name, len(times))

    # 1. NUAA: every frame as recorded (live and printed photographs)
    for kind in ("live", "spoof"):
        for s in nuaa[kind]:
            frames = list(s.frames())
            add(s.name, int(kind == "spoof"), "nuaa", s.subject, [rel(p) for p in s.paths], frames)
    # 2. live clips at the look rate
    for c in clips:
        frames = datasets.decimate(clip_frames[c.subject], LOOK_FPS)
        add(c.name, 0, "clip", c.subject, [f"{rel(c.clip)} t={t:.3f}" for t, _ in frames], frames)
    # 3. live frames shrunk and through the synthetic camera (training split only)
    for k, s in enumerate([s for s in nuaa["live"] if split_of_subject(s.subject) == "train"]
                          + [c for c in clips if split_of_subject(c.subject) == "train"]):
        rng = np.random.default_rng(SEED + k)
        frames = list(s.frames()) if s.clip is None else datasets.decimate(clip_frames[s.subject], LOOK_FPS)
        frames = frames[::2]
        names = ([rel(p) for p in s.paths][::2] if s.clip is None
                 else [f"{rel(s.clip)} t={t:.3f}" for t, _ in frames])
        add(f"{s.name}-shrunk", 0, "clip" if s.clip is not None else "nuaa", s.subject,
            [f"{n} shrunk+camera seed={SEED + k}" for n in names], [(t, shrink(f, rng)) for t, f in frames],
            augmented=True)
    # 4. synthetic attacks of the training split: several stills per source, several seeds
    seed = SEED
    for s in [s for s in nuaa["live"] + clips if split_of_subject(s.subject) == "train"]:
        frames = list(s.frames()) if s.clip is None else clip_frames[s.subject]
        picks = sorted({0, len(frames) // 3, (2 * len(frames)) // 3})
        for i in picks:
            t0, still = frames[i]
            face = ex.face(still)
            if face is None:
                continue
            photo = synth.portrait(still, face.box)
            what = rel(s.paths[i]) if s.clip is None else f"{rel(s.clip)} t={t0:.3f}"
            for fam in STILL_FAMILIES:
                seed += 1
                renders = datasets.decimate(synth.attack(fam, photo, seed=seed, seconds=4.0), LOOK_FPS)
                add(f"synth-{fam}-{s.name}-{i}", 1, fam, s.subject,
                    [f"{fam} of {what} seed={seed} t={t:.3f}" for t, _ in renders], renders)
    for c in [c for c in clips if split_of_subject(c.subject) == "train"]:
        src = clip_frames[c.subject]
        for part, (a, b) in enumerate(((0.0, 8.0), (8.0, 16.0))):
            piece = [(t - a, f) for t, f in src if a <= t < b]
            if len(piece) < 15:
                continue
            for fam in REPLAY_FAMILIES:
                seed += 1
                renders = datasets.decimate(synth.attack(fam, piece, seed=seed), LOOK_FPS)
                add(f"synth-{fam}-{c.name}-{part}", 1, fam, c.subject,
                    [f"{fam} of {rel(c.clip)} {a:.0f}-{b:.0f} s seed={seed} t={t:.3f}" for t, _ in renders],
                    renders)
    # 5. the bench's held-out synthetic attacks (same sources, seeds and order as scripts/bench_liveness.py)
    stills = [(s.name, s.subject, next(s.frames())[1]) for s in nuaa["live"] if split_of_subject(s.subject) == "test"]
    stills += [(c.name, c.subject, clip_frames[c.subject][0][1]) for c in clips
               if split_of_subject(c.subject) == "test"]
    for k, (name, subject, frame) in enumerate(stills):
        face = ex.face(frame)
        if face is None:
            continue
        photo = synth.portrait(frame, face.box)
        for fam in STILL_FAMILIES:
            renders = datasets.decimate(synth.attack(fam, photo, seed=k, seconds=4.0), LOOK_FPS)
            add(f"synth-{fam}-{name}", 1, fam, subject, [f"{fam} of {name} seed={k}"] * len(renders), renders)
    for k, c in enumerate([c for c in clips if split_of_subject(c.subject) == "test"]):
        src = [(t, f) for t, f in clip_frames[c.subject] if t < 8.0]
        for fam in REPLAY_FAMILIES + ("bare-replay",):
            renders = datasets.decimate(synth.attack(fam, src, seed=100 + k), LOOK_FPS)
            add(f"synth-{fam}-{c.name}", 1, fam, c.subject, [f"{fam} of {c.name} seed={100 + k}"] * len(renders),
                renders)
    return tracks


# ---------------------------------------------------------------------------------------------------------------
# the linear model


def fit_logistic(X: np.ndarray, y: np.ndarray, w: np.ndarray, lam: float, iterations: int = 25):
    """Weighted L2 logistic regression by Newton's method on standardised features: (weights, bias, mean,
    scale). ``w`` are sample weights (they sum to the number of samples); ``lam`` the L2 strength."""
    X = np.asarray(X, np.float64)
    mean = X.mean(axis=0)
    scale = X.std(axis=0)
    scale[scale < 1e-6] = 1.0
    Z = np.hstack([(X - mean) / scale, np.ones((len(X), 1))])
    beta = np.zeros(Z.shape[1])
    ridge = np.full(Z.shape[1], lam)
    ridge[-1] = 0.0  # the bias is not shrunk
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-np.clip(Z @ beta, -30, 30)))
        grad = Z.T @ (w * (p - y)) + ridge * beta
        hess = (Z * (w * p * (1 - p))[:, None]).T @ Z + np.diag(ridge)
        step = np.linalg.solve(hess, grad)
        beta -= step
        if np.max(np.abs(step)) < 1e-5:
            break
    return beta[:-1], float(beta[-1]), mean, scale


def sample_weights(tracks: list[Track]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stacked (X, y, weights): each (label, source) cell weighs the same in total, and within it each track
    the same, so long clips or many NUAA frames do not dominate."""
    cells: dict = {}
    for t in tracks:
        cells.setdefault((t.label, t.source), []).append(t)
    X, y, w = [], [], []
    for members in cells.values():
        for t in members:
            n = len(t.feats)
            if not n:
                continue
            X.append(t.feats)
            y.append(np.full(n, t.label, np.float64))
            w.append(np.full(n, 1.0 / (len(cells) * len(members) * n)))
    X, y, w = np.vstack(X), np.concatenate(y), np.concatenate(w)
    return X, y, w * len(y)


def train(tracks: list[Track], lam: float) -> texture.TextureModel:
    X, y, w = sample_weights(tracks)
    weights, bias, mean, scale = fit_logistic(X, y, w, lam)
    return texture.TextureModel(weights=weights.astype(np.float32), bias=float(np.float32(bias)),
                                mean=mean.astype(np.float32), scale=scale.astype(np.float32),
                                threshold=0.5, min_looks=MIN_LOOKS)


def live_windows(t: Track) -> list[np.ndarray]:
    """Row indices of the 3-s windows (every 1.5 s) of a live clip; a NUAA sequence is one track."""
    if t.source != "clip" or not len(t.times):
        return [np.arange(len(t.times))]
    out, start = [], 0.0
    while True:
        out.append(np.flatnonzero((t.times >= start) & (t.times < start + WINDOW)))
        start += STEP
        if start + WINDOW > t.times[-1] + 1e-6:
            return out


def worst_running_mean(probs: np.ndarray, min_looks: int = MIN_LOOKS) -> float:
    """The highest mean-so-far a track reaches once it has ``min_looks`` looks (what the veto compares)."""
    if len(probs) < min_looks:
        return 0.0
    means = np.cumsum(probs) / np.arange(1, len(probs) + 1)
    return float(means[min_looks - 1:].max())


def choose(tracks: list[Track]) -> tuple[float, float, dict]:
    """(L2 strength, veto threshold, out-of-fold figures) by 4-fold cross-validation grouped by subject/clip."""
    groups = sorted({t.group for t in tracks})
    nuaa_groups = [g for g in groups if g in TRAIN_NUAA]
    clip_groups = [g for g in groups if g not in TRAIN_NUAA]
    if len(nuaa_groups) >= 4 and len(clip_groups) >= 4:   # the full split: one subject and one clip per fold
        folds = [set(nuaa_groups[k::4] + clip_groups[k::4]) for k in range(4)]
    else:                                                  # fewer sources (--quick, one dataset): one per fold
        folds = [{g} for g in groups]
    best = None
    for lam in LAMBDAS:
        oof: dict[str, np.ndarray] = {}
        for fold in folds:
            fit_on = [t for t in tracks if t.group not in fold]
            if len({t.label for t in fit_on}) < 2:
                continue
            model = train(fit_on, lam)
            for t in tracks:
                if t.group in fold and len(t.feats):
                    oof[t.name] = model.probability(t.feats)
        losses, live_worst, attack_means = [], [], []
        for t in tracks:
            p = oof.get(t.name)
            if p is None:
                continue
            losses.append(float(np.mean(-np.log(np.clip(p if t.label else 1 - p, 1e-6, 1)))))
            if t.label == 0 and not t.augmented:
                live_worst += [worst_running_mean(p[idx]) for idx in live_windows(t)]
            elif t.label == 1:
                attack_means.append(float(np.mean(p[:MIN_LOOKS])) if len(p) >= MIN_LOOKS else 0.0)
        if not live_worst:
            continue
        worst = max(live_worst)
        threshold = worst + MARGIN * (1 - worst)
        caught = float(np.mean([m >= threshold for m in attack_means])) if attack_means else 0.0
        loss = float(np.mean(losses))
        log.info("lambda %g: out-of-fold log-loss %.3f, worst live track %.3f -> threshold %.3f, attacks vetoed "
                 "within %d looks %.0f%%", lam, loss, worst, threshold, MIN_LOOKS, 100 * caught)
        key = loss
        if best is None or key < best[0]:
            best = (key, lam, threshold, {"oof_log_loss": loss, "oof_worst_live": worst,
                                          "oof_attacks_vetoed_in_3_looks": caught})
    assert best is not None, "no fold could be trained (both classes needed)"
    return best[1], best[2], best[3]


def fitted(tracks: list[Track]) -> tuple[texture.TextureModel, dict]:
    lam, threshold, cv = choose(tracks)
    model = train(tracks, lam)
    model = texture.TextureModel(weights=model.weights, bias=model.bias, mean=model.mean, scale=model.scale,
                                 threshold=float(np.float32(threshold)), min_looks=MIN_LOOKS)
    return model, dict(cv, l2=lam, threshold=threshold)


# ---------------------------------------------------------------------------------------------------------------
# figures


def evaluate(model: texture.TextureModel, tracks: list[Track]) -> dict:
    """Per source: per-frame error (probability >= threshold) and per-track error (the judge's veto rule),
    plus the share of attacks vetoed within ``min_looks`` looks (before the judge could have said live)."""
    out: dict = {}
    for t in tracks:
        if not len(t.feats):
            continue
        p = model.probability(t.feats)
        row = out.setdefault(t.source + ("" if t.label else " (live)"), {"frames": 0, "frame_errors": 0,
                                                                          "tracks": 0, "track_errors": 0,
                                                                          "early": 0, "label": t.label})
        row["frames"] += len(p)
        row["frame_errors"] += int(np.sum(p >= model.threshold)) if t.label == 0 else int(np.sum(p < model.threshold))
        if t.label == 0:
            for idx in live_windows(t):
                row["tracks"] += 1
                row["track_errors"] += int(worst_running_mean(p[idx], model.min_looks) >= model.threshold)
        else:
            row["tracks"] += 1
            row["track_errors"] += int(worst_running_mean(p, model.min_looks) < model.threshold)
            row["early"] += int(len(p) >= model.min_looks and np.mean(p[:model.min_looks]) >= model.threshold)
    return out


def print_table(title: str, figures: dict) -> None:
    print(f"\n== {title}")
    print(f"  {'source':24s} {'per frame':>22s} {'per track':>18s}  vetoed in first {MIN_LOOKS} looks")
    for name in sorted(figures, key=lambda n: (figures[n]["label"], n)):
        r = figures[name]
        kind = "BPCER" if r["label"] == 0 else "APCER"
        early = f"{r['early']}/{r['tracks']}" if r["label"] else ""
        print(f"  {name:24s} {kind} {100 * r['frame_errors'] / r['frames']:5.1f}% ({r['frame_errors']:4d}/"
              f"{r['frames']:4d}) {100 * r['track_errors'] / r['tracks']:5.1f}% ({r['track_errors']:2d}/"
              f"{r['tracks']:2d})  {early}")


def data_list(tracks: list[Track]) -> str:
    """The training data, exactly: every NUAA file, and for clips and renders the source, seed and the times
    of the frames that had a usable face."""
    lines = ["# What the texture model (models/texture_lbp.npz) was trained on, as written by",
             "# scripts/train_texture.py; paths relative to ../shared/liveness. label (live/attack), source, cross-validation group, what:",
             "# a NUAA file, or a clip / synthetic render with its seed and the times (s) of the frames used.", ""]
    for t in tracks:
        if t.split != "train" or not t.items:
            continue
        label = "attack" if t.label else "live"
        if t.source == "nuaa" and not t.augmented:
            lines += [f"{label}\t{t.source}\t{t.group}\t{item}" for item in t.items]
        else:
            what = re.sub(r" t=[0-9.]+", "", t.items[0])
            lines.append(f"{label}\t{t.source}\t{t.group}\t{what} t=" + ",".join(f"{x:.2f}" for x in t.times))
    return "\n".join(lines) + "\n"


def measure_cost(args) -> int:
    """Cost per scored frame of the committed model (crop, features, model) beside a FaceNet invoke, same run."""
    import os
    import statistics

    model = texture.load_texture_model(args.out)
    ex = Extractor(args.models_dir, args.threads)
    clip = next(c for c in datasets.clip_sequences(args.data) if c.subject == "lp_d13")
    texture_ms, facenet_ms = [], []
    for k, (_, frame) in enumerate(datasets.decimate(clip.frames(), LOOK_FPS)):
        face = ex.face(frame)
        if face is None:
            continue
        start = time.perf_counter()
        texture.texture_score(model, frame, face.box, face.landmarks)
        texture_ms.append((time.perf_counter() - start) * 1000)
        crop = ex.engine.align(frame, face)
        start = time.perf_counter()
        ex.engine.embed(crop[None])
        facenet_ms.append((time.perf_counter() - start) * 1000)
    tm, fm = statistics.median(texture_ms), statistics.median(facenet_ms)
    print(f"texture_score median {tm:.2f} ms (p90 {np.percentile(texture_ms, 90):.2f}) over {len(texture_ms)} "
          f"frames, FaceNet invoke median {fm:.2f} ms, ratio {tm / fm:.3f}; load average {os.getloadavg()[0]:.1f}")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "liveness")
    parser.add_argument("--models-dir", type=Path, default=REPO / "models", help="where YuNet is (manifest.json)")
    parser.add_argument("--out", type=Path, default=REPO / "models" / texture.TEXTURE_FILE)
    parser.add_argument("--list", type=Path, default=REPO / "models" / "texture_training_list.txt")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-write", action="store_true", help="report only")
    parser.add_argument("--quick", action="store_true", help="a few sequences (development, tests)")
    parser.add_argument("--cache", type=Path, help="keep the extracted features in this file (development)")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON")
    parser.add_argument("--cost", action="store_true", help="only time the committed model per frame (lp_d13)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.cost:
        return measure_cost(args)
    start = time.perf_counter()
    if args.cache and args.cache.is_file():
        import pickle
        tracks = [Track(**fields) for fields in pickle.loads(args.cache.read_bytes())]
    else:
        tracks = collect(Extractor(args.models_dir, args.threads), args.data, quick=args.quick)
        if args.cache:
            import pickle
            args.cache.write_bytes(pickle.dumps([vars(t) for t in tracks]))
    log.info("features of %d tracks, %d looks in %.0f s", len(tracks), sum(len(t.feats) for t in tracks),
             time.perf_counter() - start)
    train_tracks = [t for t in tracks if t.split == "train"]
    test_tracks = [t for t in tracks if t.split == "test"]
    report: dict = {}

    model, cv = fitted(train_tracks)
    report["combined"] = {"cv": cv, "held_out": evaluate(model, test_tracks)}
    print_table(f"combined model (L2 {cv['l2']:g}, veto threshold {model.threshold:.3f} over >= {MIN_LOOKS} looks) "
                f"on the held-out split", report["combined"]["held_out"])

    if args.quick:  # too few subjects to cross-validate the one-dataset models
        return finish(args, model, tracks, report, start)
    nuaa_only, cv_n = fitted([t for t in train_tracks if t.source == "nuaa" and not t.augmented])
    screens = [t for t in test_tracks if t.source in REPLAY_FAMILIES + ("bare-replay", "phone-photo")
               or t.source == "clip"]
    report["nuaa_to_screens"] = {"cv": cv_n, "held_out": evaluate(nuaa_only, screens)}
    print_table(f"trained on NUAA only (threshold {nuaa_only.threshold:.3f}) -> held-out clips and synthetic "
                f"screen attacks made from them", report["nuaa_to_screens"]["held_out"])

    synth_only, cv_s = fitted([t for t in train_tracks if t.source != "nuaa"])
    prints = [t for t in test_tracks if t.source == "nuaa"]
    report["synthetic_to_nuaa"] = {"cv": cv_s, "held_out": evaluate(synth_only, prints)}
    print_table(f"trained on clip-derived synthetic attacks only (threshold {synth_only.threshold:.3f}) -> held-out "
                f"NUAA prints and live", report["synthetic_to_nuaa"]["held_out"])

    return finish(args, model, tracks, report, start)


def finish(args, model, tracks, report, start) -> int:
    if not args.no_write:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        listing = data_list(tracks)
        args.list.write_text(listing, encoding="utf-8")
        model.save(args.out, data_list_sha256=np.asarray(hashlib.sha256(listing.encode()).hexdigest()))
        print(f"\nwrote {args.out} ({args.out.stat().st_size / 1024:.1f} KiB) and {args.list}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    print(f"time {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
