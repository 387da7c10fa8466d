#!/usr/bin/env python3
"""Is the security calibration honest? The door's real comparisons of strangers, predicted against observed.

The door derives its threshold (edge.recognition.security) from the different-person score distribution that
``scripts/build_models.py --calibrate`` stores in the manifest. A door lock must not understate how often a
stranger passes, so this script replays what the door really compares for a stranger, on the photographs of
scripts/bench_faces.py (each seen on camera-like frames), and checks the stored calibration and other tail models
against people that were never used to fit them:

* a stranger *attempt* is the frames of one photograph, or of two photographs of one person in turn; the door
  follows it as one track (edge.recognition.track) and re-ranks the track's quality-weighted mean embedding on
  every frame, so the attempt's score against an enrolled person is the best of those frames;
* the enrolled person is the mean template of their first 3 photographs, as enrolled; scores are taken in the
  centred space the door ranks in when the calibration has a centre (edge.recognition.match.centred);
* fit: LFW DevTrain attempts against DevTrain people (what the calibration sees); held out: every comparison
  with a DevTest person on either side;
* tail models fitted on the DevTrain door comparisons: exponential in the score (the calibration's), Gaussian on
  Fisher-z, generalised Pareto on Fisher-z (maximum likelihood and its 95% upper shape); and the manifest's own.

Photographs whose labelled (central) face is not the one the door takes, and LFW names that are one person,
are left out (they are not strangers).

    .venv/bin/python scripts/bench_security.py
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from statistics import NormalDist

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

import bench_door  # noqa: E402
import bench_faces  # noqa: E402
from bench_faces import FACES  # noqa: E402
from lfw import pair_people  # noqa: E402
from edge.recognition import models as model_files  # noqa: E402
from edge.recognition.match import centred  # noqa: E402
from edge.recognition.security import Security  # noqa: E402
from edge.recognition.track import TrackOptions  # noqa: E402

FRAMES = 16
PAIRS_PER_PERSON = 10
WRONG_FACE = ("Recep_Tayyip_Erdogan_0004.jpg", "Michael_Schumacher_0008.jpg")   # a more central face is another
N01 = NormalDist()


def attempts(shots, centre=None):
    """(identities, template per identity, DevTest flag per identity, attempts: (identity, kind, track frames))."""
    merge = {k.split("/")[1]: v.split("/")[1] for k, v in bench_door.SAME_PERSON.items() if v.startswith("lfw/")}
    test = pair_people(FACES / "lfw_view1" / "pairsDevTest.txt")
    by_name: dict[str, list] = {}
    for key, s in sorted(shots.items()):
        if not key.startswith("lfw_view1/") or not len(s) or s.frames[0] != 0 or key.endswith(WRONG_FACE):
            continue
        middle = s.boxes[0, :2] + s.boxes[0, 2:] / 2
        if not s.largest_is_central or math.hypot(*(middle - 125)) > 50:
            continue
        name = key.split("/")[1]
        by_name.setdefault(merge.get(name, name), []).append((key, s))
    names = sorted(by_name)
    templates = np.stack([_unit(np.sum(centred(np.stack([s.embeddings[0] for _, s in by_name[n][:3]]), centre),
                                       axis=0)) for n in names])
    options = TrackOptions()
    out = []
    for i, n in enumerate(names):
        photos = by_name[n]
        combos = [[p] for p in photos] + [[photos[a], photos[b]] for a in range(len(photos))
                                         for b in range(a + 1, len(photos))][:PAIRS_PER_PERSON]
        for c in combos:
            a = bench_door.build_attempt(None, "lfw/" + n, c, FRAMES, "one" if len(c) == 1 else "two")
            if not a.off_centre:
                out.append((i, len(c), centred(bench_door.track_series(a, options).track_embeddings, centre)))
    return names, templates, np.array([n in test for n in names]), out


def _unit(v):
    return v / max(float(np.linalg.norm(v)), 1e-12)


def scores(atts, templates):
    """(attempt x person) best score over the attempt's frames, and the same for its first photograph alone."""
    door = np.empty((len(atts), len(templates)), np.float32)
    for s in range(0, len(atts), 256):
        chunk = np.stack([t for _, _, t in atts[s:s + 256]])
        door[s:s + 256] = (chunk @ templates.T).max(axis=1)
    return door


def tail_models(train: np.ndarray) -> dict:
    """name -> (rate(t), threshold(rate)) fitted on a descending array of DevTrain different-person scores."""
    n = len(train)
    ks = np.unique(np.geomspace(20, 1e-3 * n, 40).astype(int))
    ts, rates = train[ks - 1], ks / n
    b, a = np.polyfit(ts, np.log10(rates), 1)
    zq = np.array([N01.inv_cdf(1 - r) for r in rates])
    e, c = np.polyfit(np.arctanh(ts), zq, 1)
    models = {"exp": (lambda t: 10 ** (a + b * t), lambda r: (math.log10(r) - a) / b),
              "gauss-z": (lambda t: 1 - N01.cdf(c + e * math.atanh(t)),
                          lambda r: math.tanh((N01.inv_cdf(1 - r) - c) / e))}
    z = np.arctanh(np.clip(train, -0.999999, 0.999999))
    u = z[int(1e-3 * n)]
    y = z[z > u] - u
    pu = len(y) / n

    def profile(xi):
        best = (math.inf, 1.0)
        for sig in np.geomspace(1e-3, 1.0, 300):
            w = 1 + xi * y / sig
            if np.any(w <= 0):
                continue
            nll = len(y) * math.log(sig) + (y.sum() / sig if abs(xi) < 1e-9 else (1 + 1 / xi) * np.log(w).sum())
            best = min(best, (nll, sig))
        return best

    xis = np.linspace(-0.5, 0.3, 81)
    prof = [profile(x) for x in xis]
    nlls = np.array([p[0] for p in prof])
    for label, i in (("gpd-z", int(nlls.argmin())), ("gpd-z xi+", int(np.flatnonzero(nlls <= nlls.min() + 1.92).max()))):
        xi, sig = xis[i], prof[i][1]

        def rate(t, xi=xi, sig=sig):
            yy = math.atanh(t) - u
            if yy <= 0:
                return float("nan")
            return pu * (math.exp(-yy / sig) if abs(xi) < 1e-9 else max(1 + xi * yy / sig, 0) ** (-1 / xi))

        def thr(r, xi=xi, sig=sig):
            q = r / pu
            return math.tanh(u + (-sig * math.log(q) if abs(xi) < 1e-9 else sig / xi * (q ** -xi - 1)))
        models[f"{label} ({xi:+.2f})"] = (rate, thr)
    return models


def main() -> int:
    from edge.recognition import FaceEngine

    engine = FaceEngine(models_dir=REPO / "models", num_threads=1)
    entry = model_files.model_entry(model_files.load_manifest(REPO / "models"), "facenet-int8")
    security = Security.from_manifest(entry)
    people = bench_faces.list_people()
    shots = bench_faces.photo_shots(engine, [p for n, ps in people.items() if n.startswith("lfw/") for p in ps],
                                    bench_door.VARIANTS)
    engine.close()
    names, templates, is_test, atts = attempts(shots, security.centre)
    S = scores(atts, templates)
    who = np.array([i for i, _, _ in atts])
    kind = np.array([k for _, k, _ in atts])
    other = who[:, None] != np.arange(len(names))[None, :]
    fit = other & ~is_test[who][:, None] & ~is_test[None, :]
    held = other & ~fit
    print(f"{len(names)} LFW people, {len(atts)} stranger attempts ({FRAMES} frames; one photograph, or two of one "
          f"person); {int(fit.sum()):,} DevTrain comparisons to fit, {int(held.sum()):,} held out")

    print("\nDevTrain different-person scores at each rate (door = best frame of the track):")
    print("| probe | comparisons | 1e-3 | 1e-4 | 1e-5 | 1e-6 | highest |\n|---|---|---|---|---|---|---|")
    for k, label in ((1, "one photograph, door"), (2, "two photographs, door")):
        v = np.sort(S[fit & (kind[:, None] == k)])[::-1]
        cells = " | ".join(f"{v[int(r * len(v))]:.3f}" for r in (1e-3, 1e-4, 1e-5, 1e-6))
        print(f"| {label} | {len(v):,} | {cells} | {v[0]:.3f} |")
    cal = security.far
    print(f"| the manifest's calibration | {entry['security'].get('different_person_comparisons', 0):,} | "
          + " | ".join(f"{cal[r]:.3f}" for r in (1e-3, 1e-4, 1e-5, 1e-6)) + " | |")

    train = np.sort(S[fit])[::-1].astype(np.float64)
    models = tail_models(train)
    models["manifest"] = (lambda t: _manifest_rate(security, t), security.threshold_for)
    one = entry["security"].get("by_probe", {}).get("one photograph")
    if one:   # the calibration of one photograph alone (what the manifest held before the door's looks)
        alone = Security(far={float(k): float(v) for k, v in one["far"].items()},
                         tail=(one["tail"]["a"], one["tail"]["b"]), same_thresholds=security.same_thresholds,
                         same_granted=security.same_granted)
        models["one photograph alone"] = (lambda t: _manifest_rate(alone, t), alone.threshold_for)
    held_scores = S[held].astype(np.float64)
    n_held = len(held_scores)
    print(f"\nheld out: different-person door comparisons at or above t, observed and predicted "
          f"({n_held:,} comparisons):")
    print("| t | observed | " + " | ".join(models) + " |\n|---|---|" + "---|" * len(models))
    for t in (0.66, 0.70, 0.72, 0.74, 0.76, 0.78, 0.80, 0.82, 0.84, 0.86):
        obs = int((held_scores >= t).sum())
        print(f"| {t:.2f} | {obs} | " + " | ".join(f"{n_held * f(t):.1f}" for f, _ in models.values()) + " |")
    print("\nthreshold per comparison for a rate (fitted on DevTrain door comparisons):")
    print("| rate | " + " | ".join(models) + " |\n|---|" + "---|" * len(models))
    for r, label in ((1e-5, "1e-5"), (1e-6, "1e-6 (1 in 100,000, 10 people)"),
                     (1e-7, "1e-7"), (1e-5 / 414, "2.4e-8 (1 in 100,000, 414 people)")):
        print(f"| {label} | " + " | ".join(f"{inv(r):.3f}" for _, inv in models.values()) + " |")
    return 0


def _manifest_rate(security: Security, t: float) -> float:
    """The per-comparison rate the manifest's calibration gives at threshold t (its table, then its tail)."""
    points = sorted((thr, r) for r, thr in security.far.items())
    if t <= points[0][0]:
        return points[0][1]
    for (t1, r1), (t2, r2) in zip(points, points[1:]):
        if t1 <= t <= t2 and t2 > t1:
            f = (t - t1) / (t2 - t1)
            return 10 ** (math.log10(r1) + f * (math.log10(r2) - math.log10(r1)))
    a, b = security.tail
    return 10 ** (a + b * t)


if __name__ == "__main__":
    sys.exit(main())
