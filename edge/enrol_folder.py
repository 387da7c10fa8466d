"""Bulk enrolment from a folder: one sub-folder per person, named after the user.

Why a module of its own: moving a household or an office from another system means dozens of people with a
few photographs each, and one bad photograph must not stop the rest. Every photograph is checked like an
upload (exactly one good face); near-duplicates of a photograph already taken for that person add nothing and
are skipped; a person whose folder gives no usable photograph is not created. Everything skipped is reported
with its reason, and a template that looks like another enrolled person is reported too, because the door
could then let one in as the other.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .enrolment import check_images, store_templates
from .errors import EdgeError, ImageError
from .recognition.diversity import lookalikes
from .recognition.match import Ranker

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


class FolderError(EdgeError):
    """The folder to enrol from cannot be used; the message says why."""


@dataclass
class FolderReport:
    created: list[str] = field(default_factory=list)              # usernames of the users created
    enrolled: dict[str, int] = field(default_factory=dict)        # username -> templates added
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    lookalikes: list[tuple[str, str, float]] = field(default_factory=list)  # (path, other username, score)

    @property
    def templates(self) -> int:
        return sum(self.enrolled.values())


def person_folders(folder: str | Path) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise FolderError(f"{folder} is not a folder; give a folder with one sub-folder per person")
    people = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not people:
        raise FolderError(f"{folder} has no sub-folders; put each person's photographs in a sub-folder named "
                          "after the user (e.g. {folder}/alice/1.jpg)")
    return people


def enrol_folder(store, engine, folder: str | Path, *, threshold: float, source: str = "cli") -> FolderReport:
    """Enrol every sub-folder of ``folder`` as the user of that name (created as an active member when
    missing), through the same checks as every other enrolment (:mod:`edge.enrolment`). ``threshold`` is the
    door's: a template reaching another person at it is reported."""
    from .recognition import load_image
    from .store import StoreError

    report = FolderReport()
    for person in person_folders(folder):
        files = sorted(p for p in person.iterdir() if p.is_file() and not p.name.startswith("."))
        images: list[tuple[str, Any]] = []
        for path in files:
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                report.skipped.append((str(path), "not a photograph (JPEG, PNG, BMP or WebP)"))
                continue
            try:
                images.append((str(path), load_image(path)))
            except ImageError as exc:
                images.append((str(path), exc))
        results, chosen = check_images(engine, images)
        report.skipped.extend((r.name, "; ".join(r.reasons)) for r in results if not r.ok)
        if not chosen:
            report.skipped.append((str(person), "no usable photograph: nobody enrolled"))
            continue
        user = store.find_user(person.name)
        if user is None:
            try:
                user = store.add_user(username=person.name, role="member", status="active")
            except StoreError as exc:
                report.skipped.append((str(person), f"cannot create user {person.name!r}: {exc}"))
                continue
            report.created.append(user.username)
        gallery = store.gallery(engine.model_id)
        rank = (Ranker(gallery.user_ids, gallery.matrix, centre=getattr(engine, "score_centre", None))
                if len(gallery.user_ids) else None)
        for result, face in chosen:
            if rank is not None:
                for other, score in lookalikes(face.embedding, rank, own_user=user.id, threshold=threshold):
                    other_user = store.get_user(other)
                    report.lookalikes.append((result.name, other_user.username if other_user else other, score))
        store_templates(store, engine, user.id, chosen, source=source)
        report.enrolled[user.username] = report.enrolled.get(user.username, 0) + len(chosen)
    return report
