"""The model manifest, hash-checked model files and the TFLite interpreter.

Why: the door decides who comes in from what these files compute. A model that is missing, truncated or swapped
for another must stop the service with a message saying how to rebuild it, never run with different numbers
than the thresholds were measured for. ``models/manifest.json`` (written by ``scripts/build_models.py``) names
every file with its sha256; nothing is loaded before its hash matches.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from pathlib import Path

from ..errors import ModelError

log = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.json"
REBUILD_HINT = "run `edge-face models build` (scripts/build_models.py in the source checkout)"

# (resolved path, size, mtime_ns, inode) -> sha256: a process that opens the same file twice hashes it once.
_hash_cache: dict[tuple, str] = {}
_hash_lock = threading.Lock()


def load_manifest(models_dir: str | os.PathLike) -> dict:
    """The parsed ``manifest.json`` of a models folder; ModelError if it is missing or unreadable."""
    path = Path(models_dir) / MANIFEST_NAME
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ModelError(f"the models are not built: {path} is missing; {REBUILD_HINT}") from None
    except OSError as exc:
        raise ModelError(f"cannot read {path} ({exc.strerror}); {REBUILD_HINT}") from None
    try:
        manifest = json.loads(text)
    except ValueError as exc:
        raise ModelError(f"{path} is not valid JSON ({exc}); {REBUILD_HINT}") from None
    models = manifest.get("models") if isinstance(manifest, dict) else None
    if not isinstance(models, list) or not all(
            isinstance(m, dict) and {"id", "file", "sha256"} <= m.keys() for m in models):
        raise ModelError(f"{path} does not list models with id, file and sha256; {REBUILD_HINT}")
    return manifest


def model_ids(manifest: dict) -> list[str]:
    return [m["id"] for m in manifest["models"]]


def model_entry(manifest: dict, model_id: str) -> dict:
    """The manifest entry of one model (an embedder such as ``facenet-int8``, or the detector ``yunet``)."""
    for entry in manifest["models"]:
        if entry["id"] == model_id:
            return entry
    raise ModelError(f"model {model_id!r} is not in the manifest; available: {', '.join(model_ids(manifest))} "
                     f"(full int8 is only built with `edge-face models build --calibration-dir DIR`)")


def versioned_id(entry: dict) -> str:
    """``id:sha256-prefix``: what templates record, so embeddings of a different build are never compared."""
    return f"{entry['id']}:{entry['sha256'][:16]}"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _cached_sha256(path: Path, stat: os.stat_result) -> str:
    key = (str(path), stat.st_size, stat.st_mtime_ns, stat.st_ino)
    with _hash_lock:
        known = _hash_cache.get(key)
    if known is None:
        known = sha256_file(path)
        with _hash_lock:
            _hash_cache[key] = known
    return known


def verified_path(models_dir: str | os.PathLike, entry: dict) -> Path:
    """The file of a manifest entry, after checking that its sha256 is the one the manifest records."""
    path = (Path(models_dir) / entry["file"]).resolve()
    try:
        stat = path.stat()
        actual = _cached_sha256(path, stat)
    except FileNotFoundError:
        raise ModelError(f"model file {path} ({entry['id']}) is missing; {REBUILD_HINT}") from None
    except OSError as exc:
        raise ModelError(f"cannot read model file {path} ({exc.strerror}); {REBUILD_HINT}") from None
    if actual != entry["sha256"]:
        raise ModelError(f"model file {path} ({entry['id']}) does not match the manifest (sha256 {actual[:16]}..., "
                         f"expected {entry['sha256'][:16]}...): it is corrupt or from another build; {REBUILD_HINT}")
    log.debug("model %s verified: %s", entry["id"], path)
    return path


def _interpreter_class():
    """ai-edge-litert (numpy 2) first, then the older tflite-runtime (needs numpy<2)."""
    try:
        from ai_edge_litert.interpreter import Interpreter
        return Interpreter
    except ImportError as first:
        try:
            from tflite_runtime.interpreter import Interpreter
            return Interpreter
        except Exception:  # tflite-runtime built for numpy 1 fails in several ways under numpy 2
            raise ModelError(f"no TFLite runtime can be imported ({first}); install it with "
                             "`pip install ai-edge-litert`") from None


def make_interpreter(path: str | os.PathLike, num_threads: int = 0):
    """A ready (tensors allocated) TFLite interpreter; ``num_threads=0`` uses every core.

    Call :func:`verified_path` first: this only turns a file that TFLite cannot load into a ModelError.
    """
    if num_threads < 0:
        raise ValueError(f"num_threads must be 0 (all cores) or more, not {num_threads}")
    threads = num_threads or os.cpu_count() or 1
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"model file {path} is missing; {REBUILD_HINT}")
    Interpreter = _interpreter_class()
    try:
        interpreter = Interpreter(model_path=str(path), num_threads=threads)
        interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"TFLite cannot load {path} ({reason}); the file is corrupt; {REBUILD_HINT}") from None
    log.debug("interpreter for %s with %d threads", path.name, threads)
    return interpreter
