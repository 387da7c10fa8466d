"""The door threshold from a security level: how often may a stranger get in, and how many people are enrolled.

The administrator chooses a false-accept rate per stranger attempt (default 1 in 100,000). A stranger at the
door is compared with every enrolled person, so the chance that one comparison passes must be that rate divided
by the number of comparisons (a union bound: safe whatever the people look like). The threshold for that
per-comparison rate comes from the different-person score distribution that ``scripts/build_models.py
--calibrate`` measured on LFW DevTrain and stored per model in ``manifest.json`` (``security``), for what the
door really compares (:func:`door_looks`): a track's averaged embedding is re-ranked on every frame, so a
stranger whose pose changes gets several looks (each photograph and their mean), and that distribution has a
heavier tail than one photograph's. ``scripts/bench_security.py`` checks the calibration against held-out people:

* ``far``: per-comparison false-accept rate -> cosine threshold, "1e-03" ... "1e-09"; rates with enough
  different-person pairs above them are measured, the rest follow the fitted tail (``measured_to`` says where);
* ``tail``: ``log10(rate) = a + b * threshold``, fitted to the measured tail, for rates below the table; a
  straight line in log space lies above a Gaussian-like tail, so extrapolation errs towards a higher threshold;
* ``same_person``: share of same-person comparisons at or above each threshold (``thresholds``/``granted``):
  the expected share of residents' single-frame attempts granted, for the settings page.

Everything here is a plain function of numbers; :func:`calibrate` computes the manifest entry from embeddings.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

DEFAULT_FAR_PER_ATTEMPT = 1e-5
TABLE_RATES = (1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8, 1e-9)
MAX_THRESHOLD = 0.99
# Without a calibration (models built before it existed) the door keeps the threshold it used before: 0.80,
# measured with scripts/bench_door.py for 189 people (0 of 2,912 strangers), never the weaker per-pair one.
UNCALIBRATED_DOOR_THRESHOLD = 0.80
MIN_COUNT = 20   # a rate is "measured" when at least this many different-person comparisons lie above it


@dataclass(frozen=True)
class Security:
    """The calibrated score distributions of one model (the manifest's ``security`` entry)."""

    far: dict[float, float]                 # per-comparison false-accept rate -> threshold
    tail: tuple[float, float]               # log10(rate) = a + b * threshold
    same_thresholds: tuple[float, ...]
    same_granted: tuple[float, ...]
    measured_to: float = 1e-5
    centre: np.ndarray | None = field(default=None, compare=False)   # scores: cosines with this taken away

    @classmethod
    def from_manifest(cls, entry: dict) -> "Security":
        """From a model entry of ``manifest.json`` (or its ``security`` dict); ValueError if absent or broken."""
        data = entry.get("security", entry) if isinstance(entry, dict) else None
        try:
            far = {float(k): float(v) for k, v in data["far"].items()}
            tail = (float(data["tail"]["a"]), float(data["tail"]["b"]))
            same = data["same_person"]
            thresholds = tuple(float(v) for v in same["thresholds"])
            granted = tuple(float(v) for v in same["granted"])
            centre = np.asarray(data["centre"], np.float32) if data.get("centre") is not None else None
        except (KeyError, TypeError, ValueError, AttributeError):
            raise ValueError("the model manifest has no usable security calibration; rebuild the models "
                             "with `edge-face models build`") from None
        if centre is not None and (centre.ndim != 1 or not np.all(np.isfinite(centre))):
            raise ValueError("the model manifest's security calibration has a broken centre; rebuild the models")
        if not far or len(thresholds) != len(granted) or len(thresholds) < 2 or tail[1] >= 0:
            raise ValueError("the model manifest's security calibration is incomplete; rebuild the models")
        return cls(far=far, tail=tail, same_thresholds=thresholds, same_granted=granted,
                   measured_to=float(data.get("measured_to", 1e-5)), centre=centre)

    def threshold_for(self, rate: float) -> float:
        """The cosine threshold at which one different-person comparison passes with probability ``rate``."""
        if not 0 < rate < 1:
            raise ValueError(f"a false-accept rate must be between 0 and 1, not {rate}")
        points = sorted(self.far.items(), reverse=True)           # (rate, threshold), largest rate first
        lr = math.log10(rate)
        if rate >= points[0][0]:
            return points[0][1]                                   # never below the loosest calibrated point
        for (r1, t1), (r2, t2) in zip(points, points[1:]):
            if r2 <= rate <= r1:
                f = (lr - math.log10(r1)) / (math.log10(r2) - math.log10(r1))
                return min(MAX_THRESHOLD, t1 + f * (t2 - t1))
        a, b = self.tail                                          # below the table: the fitted tail
        return min(MAX_THRESHOLD, max(points[-1][1], (lr - a) / b))

    def granted_share(self, threshold: float) -> float:
        """Expected share of same-person comparisons (one photograph against a mean template) that pass."""
        return float(np.interp(threshold, self.same_thresholds, self.same_granted))


def comparisons_per_attempt(people: int, templates: int | None = None, *, aggregation: str = "mean") -> int:
    """How many chances a stranger gets per attempt: one per person for mean templates, one per template for
    the best-template ranking."""
    if aggregation == "best" and templates:
        return max(1, int(templates))
    return max(1, int(people))


def door_threshold(security: Security, *, far_per_attempt: float = DEFAULT_FAR_PER_ATTEMPT, people: int,
                   templates: int | None = None, aggregation: str = "mean") -> float:
    """The threshold that lets a stranger in with at most ``far_per_attempt`` per attempt, ``people`` enrolled."""
    if not 0 < far_per_attempt < 1:
        raise ValueError(f"the false-accept rate per attempt must be between 0 and 1, not {far_per_attempt}")
    n = comparisons_per_attempt(people, templates, aggregation=aggregation)
    return round(security.threshold_for(far_per_attempt / n), 4)


@dataclass(frozen=True)
class DoorLevel:
    """What a security level means for the door today (for the settings page and the log)."""

    far_per_attempt: float
    people: int
    threshold: float
    expected_granted: float     # share of residents' single-photograph comparisons above the threshold


def door_level(security: Security, *, far_per_attempt: float = DEFAULT_FAR_PER_ATTEMPT, people: int,
               templates: int | None = None, aggregation: str = "mean") -> DoorLevel:
    thr = door_threshold(security, far_per_attempt=far_per_attempt, people=people, templates=templates,
                         aggregation=aggregation)
    return DoorLevel(far_per_attempt=far_per_attempt, people=people, threshold=thr,
                     expected_granted=security.granted_share(thr))


# ---------------------------------------------------------------------------------------------------------------
# Calibration (run by scripts/build_models.py --calibrate)


def person_templates(embeddings: np.ndarray, identities: np.ndarray, *, per_person: int = 3,
                     exclude: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Each identity's mean template of its first ``per_person`` photographs (normalised), like an enrolment;
    returns (templates (P, D), identity of each)."""
    names = np.unique(identities)
    out = np.zeros((len(names), embeddings.shape[1]), np.float32)
    for i, name in enumerate(names):
        rows = np.flatnonzero(identities == name)
        if exclude is not None:
            rows = rows[rows != exclude]
        mean = embeddings[rows[:per_person]].sum(axis=0)
        out[i] = mean / max(float(np.linalg.norm(mean)), 1e-12)
    return out, names


def door_looks(embeddings: np.ndarray, identities: np.ndarray, *,
               pairs_per_person: int = 10) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray, np.ndarray]:
    """What a stranger shows the door, as sets of "looks" (each an L2-normalised embedding the door may match):

    * one photograph: that photograph;
    * two photographs of one person (a visitor whose pose and light change during the attempt): each of them
      and their mean, since the door re-ranks its track's averaged embedding on every frame and a stranger gets
      in if any of them passes (up to ``pairs_per_person`` pairs per person).

    Returns (looks of one-photograph probes (N1, 1, D), looks of two-photograph probes (N2, 3, D), identity of
    each one-photograph probe, identity of each two-photograph probe)."""
    singles = [embeddings[i:i + 1] for i in range(len(embeddings))]
    pairs, pair_ids = [], []
    for name in np.unique(identities):
        rows = np.flatnonzero(identities == name)
        combos = [(a, b) for n, a in enumerate(rows) for b in rows[n + 1:]][:pairs_per_person]
        for a, b in combos:
            mean = embeddings[a] + embeddings[b]
            mean = mean / max(float(np.linalg.norm(mean)), 1e-12)
            pairs.append(np.stack([embeddings[a], embeddings[b], mean]))
            pair_ids.append(name)
    return singles, pairs, identities, np.array(pair_ids, dtype=identities.dtype)


def _different_person_scores(looks: list[np.ndarray], probe_ids: np.ndarray, templates: np.ndarray,
                             names: np.ndarray) -> np.ndarray:
    """Every probe's best look against every other person's template, sorted descending."""
    if not looks:
        return np.zeros(0, np.float32)
    stack = np.stack(looks)                                               # (N, L, D)
    scores = np.einsum("nld,pd->nlp", stack, templates).max(axis=1)       # (N, P)
    return np.sort(scores[probe_ids[:, None] != names[None, :]])[::-1]


def _tail_table(negatives: np.ndarray, rates: tuple[float, ...]) -> tuple[dict[float, float], float, float, float]:
    """(rate -> threshold, a, b, measured_to) of one sorted (descending) different-person distribution: measured
    where at least MIN_COUNT comparisons lie above the threshold, else the exponential tail fitted to the measured
    part below 1e-3 (checked against held-out people by scripts/bench_security.py: lighter tails, Gaussian on
    Fisher-z or a generalised Pareto, understate how often real look-alikes score 0.76-0.82)."""
    n_neg = len(negatives)
    top = min(n_neg, max(int(1e-3 * n_neg), 5 * MIN_COUNT))
    ks = np.unique(np.geomspace(MIN_COUNT, top, 40).astype(int))
    b, a = (float(v) for v in np.polyfit(negatives[ks - 1], np.log10(ks / n_neg), 1))
    table, measured_to = {}, 1.0
    for rate in rates:
        allowed = int(math.floor(rate * n_neg))
        if allowed >= MIN_COUNT:
            table[rate] = math.floor(float(negatives[allowed]) * 1000) / 1000 + 0.001
            measured_to = rate
        else:
            table[rate] = math.ceil((math.log10(rate) - a) / b * 1000) / 1000
    return table, a, b, measured_to


def calibrate(embeddings: np.ndarray, identities: np.ndarray, *, per_person: int = 3,
              rates: tuple[float, ...] = TABLE_RATES, pairs_per_person: int = 10, centre: bool = True) -> dict:
    """The ``security`` manifest entry from embeddings (N, D) of photographs and their identities (N,).

    Different-person comparisons are what the door computes for a stranger (:func:`door_looks`): one
    photograph, and the best of two photographs and their mean, against every other person's mean template of
    up to ``per_person`` photographs, pooled; the thresholds and the exponential tail come from the pooled
    distribution (scripts/bench_security.py: on held-out LFW people its predicted counts match the door's
    observed ones from 0.70 to 0.84, where one photograph alone understates them by a third at 0.74-0.76).
    ``by_probe`` keeps each kind's own table for comparison. With ``centre`` every score is taken in the
    centred space the door ranks in (:func:`edge.recognition.match.centred`, the mean of ``embeddings``).
    Same-person: every photograph of a person with at least two against the mean template of up to
    ``per_person`` of their other photographs.
    """
    from .match import centred

    raw = np.asarray(embeddings, np.float32)
    identities = np.asarray(identities)
    centre_vec = raw.mean(axis=0) if centre else None
    embeddings = centred(raw, centre_vec)
    templates, names = person_templates(embeddings, identities, per_person=per_person)
    singles, pairs, single_ids, pair_ids = door_looks(raw, identities, pairs_per_person=pairs_per_person)
    singles = [centred(looks, centre_vec) for looks in singles]
    pairs = [centred(looks, centre_vec) for looks in pairs]
    by_probe, pooled = {}, []
    for label, looks, ids in (("one photograph", singles, single_ids), ("two photographs", pairs, pair_ids)):
        negatives = _different_person_scores(looks, ids, templates, names)
        pooled.append(negatives)
        if len(negatives) >= 10 * MIN_COUNT:
            table, a, b, measured_to = _tail_table(negatives, rates)
            by_probe[label] = {"comparisons": int(len(negatives)), "measured_to": measured_to,
                               "far": {f"{r:.0e}": round(min(MAX_THRESHOLD, t), 3) for r, t in table.items()},
                               "tail": {"a": round(a, 4), "b": round(b, 4)}}
    negatives = np.sort(np.concatenate(pooled))[::-1]
    if len(negatives) < 10 * MIN_COUNT:
        raise ValueError("too few different-person comparisons to calibrate")
    table, a, b, measured_to = _tail_table(negatives, rates)
    far = {f"{r:.0e}": round(min(MAX_THRESHOLD, t), 3) for r, t in table.items()}
    # keep the table monotonic (a fitted point never below a measured one)
    values = list(far.values())
    for i in range(1, len(values)):
        values[i] = max(values[i], values[i - 1])
    far = dict(zip(far.keys(), values))

    same_scores: list[float] = []
    for i in range(len(embeddings)):
        rows = np.flatnonzero(identities == identities[i])
        others = rows[rows != i][:per_person]
        if len(others):
            mean = embeddings[others].sum(axis=0)
            same_scores.append(float(embeddings[i] @ (mean / max(float(np.linalg.norm(mean)), 1e-12))))
    same = np.array(same_scores)
    grid = np.round(np.arange(0.40, 1.0001, 0.01), 2)
    granted = [round(float(np.mean(same >= t)), 4) for t in grid]
    return {
        "source": "LFW View 1 DevTrain (deep-funneled)",
        "comparison": (f"what the door compares for a stranger: one photograph, or the best of two photographs "
                       f"and their mean, against another person's mean template of up to {per_person} "
                       f"photographs (pooled)"),
        "different_person_comparisons": int(len(negatives)),
        "same_person_comparisons": int(len(same)),
        "far": far,
        "measured_to": measured_to,
        "tail": {"a": round(a, 4), "b": round(b, 4)},
        "by_probe": by_probe,
        **({"centre": [round(float(v), 6) for v in centre_vec]} if centre_vec is not None else {}),
        "same_person": {"thresholds": [float(t) for t in grid], "granted": granted},
    }


def effective_threshold(*, override: float | None, far_per_attempt: float, security: Security | None,
                        people: int, model_threshold: float) -> tuple[float, str]:
    """The threshold the door uses and, in words, where it comes from: the administrator's explicit override,
    else the security level for the people enrolled, else (models built without a calibration) the door's
    earlier default, :data:`UNCALIBRATED_DOOR_THRESHOLD`."""
    if override is not None:
        return float(override), "set by the administrator"
    if security is None:   # models built before the calibration existed: the door's earlier measured default
        return (max(float(model_threshold), UNCALIBRATED_DOOR_THRESHOLD),
                "no security calibration in the model manifest (rebuild the models): the earlier default")
    thr = door_threshold(security, far_per_attempt=far_per_attempt, people=people)
    return thr, (f"security level: at most 1 stranger in {1 / far_per_attempt:,.0f} attempts with "
                 f"{people} {'person' if people == 1 else 'people'} enrolled")
