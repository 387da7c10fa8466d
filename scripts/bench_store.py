#!/usr/bin/env python3
"""Benchmark the encrypted store at door-fleet scale: 10,000 users x 5 templates.

Reports load+decrypt time, one save, the file size, gallery construction and matching a probe against all
50,000 templates (one float32 matrix product). Targets: load <= 1 s, save <= 1 s, matching far below the
~2-3 ms of one embedding. The bcrypt hashes use cost 4 to build the fixture quickly (the product uses 12;
the cost does not change the size of a hash or the store's speed).

Usage: python scripts/bench_store.py [--users 10000] [--templates 5] [--repeat 5] [--dir DIR]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from edge.keys import KeyRing
from edge.store import Store


def timed(fn, repeat):
    times = []
    result = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return result, times


def fmt(times, unit=1e3, suffix="ms"):
    return (f"median {statistics.median(times) * unit:.2f} {suffix}, min {min(times) * unit:.2f}, "
            f"max {max(times) * unit:.2f} (n={len(times)})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=10_000)
    ap.add_argument("--templates", type=int, default=5)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--dir", help="folder for the database (default: a temporary folder)")
    args = ap.parse_args()

    folder = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="bench-store-"))
    path = folder / "edge-face.db"
    for p in folder.glob("edge-face.db*"):
        p.unlink()
    ring = KeyRing.generate()
    rng = np.random.default_rng(0)
    store = Store.create(path, ring, bcrypt_rounds=4)
    t0 = time.perf_counter()
    with store.transaction():
        for i in range(args.users):
            # A real bcrypt hash (the store was made with cost 4) so the records have their real size.
            user = store.add_user(username=f"user{i:05d}", email=f"user{i:05d}@example.org",
                                  display_name=f"User Number {i}", status="active", password="benchmark-password")
            for _ in range(args.templates):
                store.add_template(user.id, rng.normal(size=128), model_id="facenet-int8:bench", source="cli",
                                   quality=0.9)
    build = time.perf_counter() - t0
    n_templates = args.users * args.templates
    size = os.stat(path).st_size
    print(f"fixture: {args.users} users x {args.templates} templates = {n_templates} templates, "
          f"built and saved in {build:.1f} s")
    print(f"file size: {size / 1e6:.1f} MB ({size / n_templates:.0f} bytes per template)")

    opened, load_times = timed(lambda: Store(path, ring), args.repeat)
    assert opened.revision == store.revision and len(opened.users()) == args.users
    print(f"load + decrypt + parse: {fmt(load_times, 1, 's')}")

    counter = iter(range(10**9))
    _, save_times = timed(lambda: store.update_settings(margin=0.01 + next(counter) % 50 / 1000), args.repeat)
    print(f"one save (transaction: lock, serialise, encrypt, write, fsync, rename): {fmt(save_times, 1, 's')}")

    _, refresh_times = timed(lambda: opened.refresh(), args.repeat)
    print(f"refresh after another process's commit (first) / unchanged: "
          f"{refresh_times[0]:.3f} s / {statistics.median(refresh_times[1:]) * 1e6:.0f} us")

    gallery, gallery_times = timed(lambda: (store._gallery_cache.clear(), store.gallery("facenet-int8:bench"))[1],
                                   args.repeat)
    print(f"gallery matrix {gallery.matrix.shape} {gallery.matrix.dtype}: built in {fmt(gallery_times)} "
          "(once per revision, cached)")

    probe = rng.normal(size=128).astype(np.float32)
    probe /= np.linalg.norm(probe)
    _, match_times = timed(lambda: gallery.matrix @ probe, 200)
    print(f"matrix product, probe vs {len(gallery)} templates: {fmt(match_times)}")
    from edge.recognition.match import Ranker
    for aggregation in ("mean", "best"):
        ranker, build_times = timed(lambda: Ranker.for_gallery(gallery, aggregation=aggregation), 3)
        _, rank_times = timed(lambda: ranker(probe, top=2), 200)
        print(f"door ranking ({aggregation} template per user, top 2 of {len(ranker)} users): {fmt(rank_times)}; "
              f"built once per revision in {fmt(build_times)}")
    if not args.dir:
        for p in folder.iterdir():
            p.unlink()
        folder.rmdir()


if __name__ == "__main__":
    main()
