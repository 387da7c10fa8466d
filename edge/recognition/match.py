"""Compare embeddings: cosine similarity, and the best score of each enrolled person.

Embeddings are L2-normalised, so cosine similarity is a dot product and a whole gallery is one matrix-vector
product. A person enrolled with several photographs gets one score, the best of their templates, so that the
caller can compare the best person with the runner-up (the decision's margin). :class:`Ranker` is what the
door and the web page's "test recognition" both use, so the page shows what the door would decide.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two vectors in [-1, 1] (normalises them, so raw model outputs work too)."""
    a = np.asarray(a, np.float32).ravel()
    b = np.asarray(b, np.float32).ravel()
    if a.shape != b.shape:
        raise ValueError(f"embeddings of different sizes ({a.size} and {b.size}) cannot be compared")
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    if na == 0.0 or nb == 0.0:
        return 0.0
    return float(np.clip(np.dot(a, b) / (na * nb), -1.0, 1.0))


def similarities(probe: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Cosine similarity of one probe (D,) with every row of ``matrix`` (N, D) whose rows are normalised."""
    matrix = np.asarray(matrix, np.float32)
    if matrix.size == 0:
        return np.zeros(0, np.float32)
    probe = np.asarray(probe, np.float32).ravel()
    if matrix.ndim != 2 or matrix.shape[1] != probe.size:
        raise ValueError(f"gallery rows have {matrix.shape[-1]} values, the probe has {probe.size}")
    norm = float(np.linalg.norm(probe))
    if norm == 0.0:
        return np.zeros(len(matrix), np.float32)
    return np.clip(matrix @ (probe / norm), -1.0, 1.0)


def centred(vectors: np.ndarray, centre: np.ndarray | None) -> np.ndarray:
    """``vectors`` (D,) or (N, D) minus ``centre`` (the mean embedding of many people), L2-normalised again.

    Every face shares a component with every other (the mean face); taking it away before the cosine lowers
    strangers' scores more than a person's own: scripts/bench_door.py measured more residents let in at every
    security level (the calibration, edge.recognition.security, is made in the same centred space)."""
    vectors = np.asarray(vectors, np.float32)
    if centre is None:
        return vectors
    out = vectors - np.asarray(centre, np.float32)
    norms = np.linalg.norm(out, axis=-1, keepdims=True)
    return out / np.where(norms > 0, norms, 1.0)


def best_per_user(probe: np.ndarray, gallery: Any) -> list[tuple[str, float]]:
    """``[(user_id, score), ...]`` best first, one entry per person: the best of that person's templates.

    ``gallery`` has ``user_ids`` (one per row) and ``matrix`` (N, D) of normalised templates, like
    :meth:`edge.store.Store.gallery`; a ``(user_ids, matrix)`` pair works too.
    """
    if isinstance(gallery, tuple):
        user_ids, matrix = gallery
    else:
        user_ids, matrix = gallery.user_ids, gallery.matrix
    return Ranker(user_ids, matrix, aggregation="best")(probe)


class Ranker:
    """Scores a face against the gallery, one score per user, best first.

    ``aggregation="mean"`` compares with each user's mean template (normalised), ``"best"`` with each user's
    best template (:func:`best_per_user`). scripts/bench_door.py measured the mean
    template to keep strangers out at a higher share of enrolled people let in: one bad enrolment photograph
    can no longer match a stranger on its own. ``centre``: compare in the centred space (:func:`centred`) of the
    model's security calibration (``FaceEngine.score_centre``); templates and probes alike.
    """

    def __init__(self, user_ids: Sequence[str], matrix: np.ndarray, *, aggregation: str = "mean",
                 centre: np.ndarray | None = None):
        if aggregation not in ("mean", "best"):
            raise ValueError(f"aggregation must be 'mean' or 'best', not {aggregation!r}")
        self.centre = None if centre is None else np.asarray(centre, np.float32).ravel()
        matrix = np.asarray(matrix, dtype=np.float32)
        if self.centre is not None and matrix.size:
            matrix = centred(matrix, self.centre)
        if len(user_ids) != len(matrix):
            raise ValueError(f"gallery has {len(user_ids)} user ids for {len(matrix)} templates")
        self.aggregation = aggregation
        self.users = list(dict.fromkeys(user_ids))
        index = {u: i for i, u in enumerate(self.users)}
        rows_user = np.fromiter((index[u] for u in user_ids), dtype=np.intp, count=len(user_ids))
        if aggregation == "mean":
            sums = np.zeros((len(self.users), matrix.shape[1] if matrix.ndim == 2 else 0), np.float32)
            np.add.at(sums, rows_user, matrix)
            norms = np.linalg.norm(sums, axis=1, keepdims=True)
            self._matrix = sums / np.where(norms > 0, norms, 1.0)
            self._starts = None
        else:
            # Rows grouped by user, so one reduceat takes every user's best template in a single pass.
            order = np.argsort(rows_user, kind="stable")
            self._matrix = matrix[order]
            self._starts = np.flatnonzero(np.r_[True, np.diff(rows_user[order]) != 0]) if len(order) else None

    @classmethod
    def for_gallery(cls, gallery, *, aggregation: str = "mean", centre: np.ndarray | None = None) -> "Ranker":
        return cls(gallery.user_ids, gallery.matrix, aggregation=aggregation, centre=centre)

    def __len__(self) -> int:
        return len(self.users)

    def __call__(self, probe: np.ndarray, *, top: int | None = None) -> list[tuple[str, float]]:
        """``[(user_id, score), ...]`` best first; ``top`` keeps only the best few (the door needs two)."""
        if not self.users:
            return []
        if self.centre is not None:
            probe = centred(np.asarray(probe, np.float32).ravel(), self.centre)
        scores = similarities(probe, self._matrix)
        if self._starts is not None:
            scores = np.maximum.reduceat(scores, self._starts)
        if top is not None and top < len(scores):
            candidates = np.argpartition(-scores, top - 1)[:top]
            order = candidates[np.argsort(-scores[candidates], kind="stable")]
        else:
            order = np.argsort(-scores, kind="stable")
        return [(self.users[i], float(scores[i])) for i in order]
