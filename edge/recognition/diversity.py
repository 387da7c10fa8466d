"""Choosing enrolment photographs: a few that differ, not many that repeat. Pure functions over embeddings.

Frames captured from a camera over a few seconds are mostly near-duplicates; three templates of the same pose
add little over one, while three poses (a little left, right, up) cover how the person will stand at the door.
So frames are filtered by quality, near-duplicates are dropped, and the rest chosen by farthest-point selection
(each next pick is the frame least like those already picked), starting from the best frame. A new template
that looks more like another enrolled person than the threshold allows is reported, because the door could
then let one in as the other.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

NEAR_DUPLICATE = 0.97     # cosine above which two frames are the same look


def drop_near_duplicates(embeddings: np.ndarray, weights: Sequence[float], *,
                         near_duplicate: float = NEAR_DUPLICATE) -> list[int]:
    """Indices of the frames kept, best weight first: a frame is dropped when a better kept one is within
    ``near_duplicate`` cosine of it."""
    embeddings = np.asarray(embeddings, np.float32)
    order = sorted(range(len(embeddings)), key=lambda i: (-float(weights[i]), i))
    kept: list[int] = []
    for i in order:
        if all(float(embeddings[i] @ embeddings[j]) < near_duplicate for j in kept):
            kept.append(i)
    return kept


def farthest_points(embeddings: np.ndarray, weights: Sequence[float], count: int, *,
                    near_duplicate: float = NEAR_DUPLICATE) -> list[int]:
    """Up to ``count`` indices: the best-weighted frame first, then each time the frame whose highest
    similarity to the chosen ones is lowest (ties to the better weight); near-duplicates never both."""
    if count < 1:
        raise ValueError("count must be at least 1")
    embeddings = np.asarray(embeddings, np.float32)
    candidates = drop_near_duplicates(embeddings, weights, near_duplicate=near_duplicate)
    if not candidates:
        return []
    chosen = [candidates[0]]
    closest = embeddings[candidates] @ embeddings[chosen[0]]           # (C,) max similarity to the chosen set
    while len(chosen) < min(count, len(candidates)):
        score = np.where(np.isin(candidates, chosen), np.inf, closest)
        pick = candidates[int(np.argmin(score))]
        chosen.append(pick)
        closest = np.maximum(closest, embeddings[candidates] @ embeddings[pick])
    return chosen


def lookalikes(template: np.ndarray, rank, *, own_user: str | None, threshold: float) -> list[tuple[str, float]]:
    """Enrolled people other than ``own_user`` whom ``template`` reaches at ``threshold`` or above, best first
    (``rank`` is the door's :class:`edge.recognition.match.Ranker` over the gallery)."""
    return [(user, score) for user, score in rank(template, top=5) if user != own_user and score >= threshold]
