#!/usr/bin/env bash
# Prove the Raspberry Pi path on a PC: install and test edge-face in an emulated arm64 Debian root.
#
#   sudo scripts/pi-check.sh [--suite bookworm|trixie] [--cache DIR] [--rebuild]
#
# Debian Bookworm (the base of Raspberry Pi OS 12) or Trixie for arm64 is bootstrapped once into DIR (default
# /var/cache/edge-face-pi; kept between runs, rebuilt when broken or with --rebuild) and run under qemu-user
# (binfmt_misc). Each run starts from a fresh copy of that root, copies this checkout in and then, inside it:
#   1. scripts/install.sh as on a fresh Pi: apt packages, system user, venv, config, key, database, models (the
#      host's, with --models), unit file, edge-face doctor. Skipped because they cannot exist in the root: the
#      Raspberry Pi archive's picamera2/libcamera (--no-camera-stack) and starting the service (--no-start).
#   2. systemd-analyze verify on the installed unit.
#   3. the recognition tests on the real models and the shared photographs (the subset in PI_TESTS below).
#   4. embeddings of a fixed set of photographs compared with the host's (scripts/pi_embeddings.py), and one
#      model invoke timed under emulation against the host.
#   5. the door service for 30 s with a folder camera and simulated (mock) pins: an enrolled person is granted.
# Needs root, the photographs in ../shared/faces, the host's development venv with the models
# (scripts/bootstrap.sh), and qemu-user-static, binfmt-support and debootstrap from apt. Nothing is started on
# the host: the root runs in its own mount and PID namespaces, apt inside it is non-interactive and its
# policy-rc.d refuses to start services. A failure ends with one line: "pi-check: FAILED ...".
set -euo pipefail
umask 022

SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SUITE=bookworm
CACHE=/var/cache/edge-face-pi
REBUILD=0
STAGE=host
MIRROR="${PI_CHECK_MIRROR:-http://deb.debian.org/debian}"
# Bumped whenever the base root's recipe changes, so that an old cached root is rebuilt.
# The base holds what Raspberry Pi OS Lite ships and install.sh relies on: systemd, python3 with pip and venv,
# apt's numpy (a picamera2 dependency there) and ca-certificates. install.sh's apt-get still runs (update,
# resolve); installing these under emulation would cost minutes of byte-compiling on every run.
BASE_PACKAGES=systemd,python3,python3-pip,python3-venv,python3-numpy,ca-certificates
BASE_RECIPE="pi-check base 3: debootstrap minbase + $BASE_PACKAGES; policy-rc.d; apt non-interactive"
# Recognition tests run under emulation: one model invoke takes seconds there, so the whole suite would take hours.
# These cover image decoding (OpenCV's aarch64 build), alignment and matching, the TFLite interpreter, the engine
# and enrolment on real photographs; the multi-face scenes are compared face by face in the embeddings step.
PI_TESTS=(
    tests/test_recognition_match.py
    tests/test_recognition_images.py
    tests/test_models.py::test_interpreter_embeds_a_real_face_into_128_floats
    tests/test_recognition.py::test_engine_describes_its_model
    tests/test_recognition.py::test_enrollment_accepts_one_good_face
    tests/test_recognition.py::test_enrollment_refuses_two_faces
    tests/test_recognition.py::test_enrollment_refuses_a_photograph_without_a_face
    tests/test_recognition.py::test_corrupt_model_copy_is_refused
)
DOOR_SECONDS=30
DOOR_LIMIT=180

say() { printf 'pi-check: %s\n' "$*"; }
fail() {
    printf 'pi-check: FAILED (%s, arm64): %s\n' "$SUITE" "$*" >&2
    [ -z "${FAILED_MARK:-}" ] || { : >"$FAILED_MARK"; } 2>/dev/null || true   # the host side: the line is out
    exit 1
}
usage() { sed -n '2,21p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
    case "$1" in
        --suite) [ $# -ge 2 ] || fail "--suite needs bookworm or trixie"; SUITE="$2"; shift ;;
        --suite=*) SUITE="${1#--suite=}" ;;
        --cache) [ $# -ge 2 ] || fail "--cache needs a directory"; CACHE="$2"; shift ;;
        --cache=*) CACHE="${1#--cache=}" ;;
        --rebuild) REBUILD=1 ;;
        --stage=*) STAGE="${1#--stage=}" ;;   # internal: the part that runs inside the namespaces
        -h|--help) usage; exit 0 ;;
        *) fail "unknown option $1 (see --help)" ;;
    esac
    shift
done
case "$SUITE" in bookworm|trixie) ;; *) fail "--suite must be bookworm or trixie, not '$SUITE'" ;; esac

WORK="$CACHE/$SUITE"
BASE="$WORK/base"
ROOT="$WORK/run"
LOGS="$WORK/logs"
FIGURES="$WORK/figures.txt"
FAILED_MARK="$WORK/failed"
HOST_VENV="${EDGE_FACE_VENV:-$SRC/.venv}"
SHARED="$(cd "$SRC/.." && pwd)/shared"
FACES="${EDGE_FACE_FACES_DIR:-$SHARED/faces}"
IN_SRC=/root/edge-face                # the checkout inside the root, as cloned on a Pi
IN_MODELS=/root/edge-face-models      # the host's models, handed to install.sh --models
IN_FACES=/srv/shared-faces            # ../shared/faces, bind-mounted read-only
IN_WORK=/root/pi-check                # scratch files of the checks

now() { date +%s; }
figure() { printf '%s\n' "$*" >>"$FIGURES"; }

# Run a logged step: its output goes to the terminal and to $LOGS/NAME.log; a failure names the step.
# The step runs in a subshell with errexit on (a function called as `f || ...` would ignore it).
step() {  # step NAME DESCRIPTION COMMAND...
    local name="$1" what="$2" status started
    shift 2
    case " ${PI_CHECK_ONLY:-$name} " in *" $name "*) ;; *) return 0 ;; esac
    say "== $what"
    started="$(now)"
    set +e
    (set -e; "$@") > >(tee "$LOGS/$name.log") 2>&1
    status=$?
    set -e
    wait
    [ "$status" = 0 ] || fail "$what (exit $status after $(( $(now) - started )) s; log: $LOGS/$name.log)"
    say "   ($name: $(( $(now) - started )) s)"
}

# ---------------------------------------------------------------------------------------------------------------
# Host side: tools, binfmt, the cached base root, a fresh working copy

# Anything mounted under a directory (in this namespace): it must never be deleted recursively then.
mounted_under() { awk -v d="$1" '$5 == d || index($5, d "/") == 1 {found=1} END {exit !found}' /proc/self/mountinfo; }

remove_tree() {
    [ -e "$1" ] || return 0
    ! mounted_under "$1" || fail "$1 has file systems mounted in it: unmount them first (findmnt -R $1)"
    rm -rf --one-file-system "$1"
}

check_host() {
    [ "$(id -u)" -eq 0 ] || fail "run as root (sudo $0): debootstrap, chroot and mounts need it"
    local missing=() tool
    for tool in debootstrap:debootstrap qemu-aarch64-static:qemu-user-static update-binfmts:binfmt-support \
                unshare:util-linux chroot:coreutils; do
        command -v "${tool%%:*}" >/dev/null || missing+=("${tool#*:}")
    done
    [ ${#missing[@]} -eq 0 ] || fail "missing host tools: apt-get install ${missing[*]}"
    [ -x "$HOST_VENV/bin/python" ] || fail "no development venv at $HOST_VENV: run scripts/bootstrap.sh first"
    [ -f "$SRC/models/manifest.json" ] || fail "no models in $SRC/models: run scripts/bootstrap.sh first"
    [ -f "$FACES/MANIFEST.md" ] || fail "the shared photographs are not at $FACES (set EDGE_FACE_FACES_DIR)"
}

enable_binfmt() {
    [ "$(uname -m)" != aarch64 ] || return 0
    [ -e /proc/sys/fs/binfmt_misc/status ] || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc ||
        fail "cannot mount binfmt_misc (a container without privileges?)"
    [ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] || update-binfmts --enable qemu-aarch64 ||
        fail "update-binfmts --enable qemu-aarch64 failed"
    grep -qx enabled /proc/sys/fs/binfmt_misc/qemu-aarch64 || echo 1 >/proc/sys/fs/binfmt_misc/qemu-aarch64
    grep -qx enabled /proc/sys/fs/binfmt_misc/qemu-aarch64 || fail "the qemu-aarch64 binfmt handler is disabled"
}

# With binfmt's F flag the kernel keeps the interpreter open; without it, the root needs its own copy.
copy_interpreter() {
    local interpreter
    interpreter="$(awk '$1 == "interpreter" {print $2}' /proc/sys/fs/binfmt_misc/qemu-aarch64 2>/dev/null || true)"
    if [ -n "$interpreter" ] && ! grep -q '^flags:.*F' /proc/sys/fs/binfmt_misc/qemu-aarch64; then
        mkdir -p "$1$(dirname "$interpreter")"
        cp "$interpreter" "$1$interpreter"
    fi
}

base_is_usable() {
    [ -f "$BASE/.pi-check-base" ] && [ "$(cat "$BASE/.pi-check-base")" = "$BASE_RECIPE" ] || return 1
    copy_interpreter "$BASE"
    # shellcheck disable=SC2016  # expanded inside the root
    chroot "$BASE" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin sh -c \
        '[ "$(uname -m)" = aarch64 ] && dpkg --audit >/dev/null && systemd-analyze --version >/dev/null &&
         python3 -c "import numpy"' \
        </dev/null >/dev/null 2>&1
}

build_base() {
    local new="$BASE.new" started
    started="$(now)"
    remove_tree "$new"
    say "building the $SUITE arm64 root in $BASE (debootstrap under emulation, a few minutes)"
    debootstrap --arch=arm64 --variant=minbase --include="$BASE_PACKAGES" "$SUITE" "$new" "$MIRROR" \
        >"$LOGS/debootstrap.log" 2>&1 || fail "debootstrap $SUITE arm64 failed (log: $LOGS/debootstrap.log)"
    # Nothing installed in the root may start a service: it would run on this machine's kernel.
    printf '#!/bin/sh\n# pi-check: never start services inside the emulated root.\nexit 101\n' \
        >"$new/usr/sbin/policy-rc.d"
    chmod 0755 "$new/usr/sbin/policy-rc.d"
    cat >"$new/etc/apt/apt.conf.d/90pi-check" <<'EOF'
// pi-check: apt inside the emulated root never asks and keeps the configuration files it has.
APT::Get::Assume-Yes "true";
Dpkg::Options { "--force-confdef"; "--force-confold"; };
Dpkg::Use-Pty "false";
EOF
    echo "edge-face-pi" >"$new/etc/hostname"
    printf '127.0.0.1 localhost\n127.0.1.1 edge-face-pi\n::1 localhost\n' >"$new/etc/hosts"
    rm -f "$new"/var/cache/apt/archives/*.deb   # debootstrap's downloads; every run has a kept cache of its own
    echo "$BASE_RECIPE" >"$new/.pi-check-base"
    remove_tree "$BASE"
    mv "$new" "$BASE"
    figure "root: built ($SUITE arm64 debootstrap) in $(( $(now) - started )) s"
}

copy_checkout() {
    local dest="$ROOT$IN_SRC"
    mkdir -p "$dest" "$ROOT$IN_MODELS" "$ROOT$IN_WORK" "$ROOT$IN_FACES"
    # The files git knows (committed or not, ignored ones left out): what a clone on the Pi would hold.
    (cd "$SRC" && git ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' f; do
        [ ! -e "$f" ] || printf '%s\0' "$f"; done | tar --null --files-from=- -cf -) | tar -xf - -C "$dest"
    # The host's built models: TensorFlow is not built under emulation.
    cp -a "$SRC/models/." "$ROOT$IN_MODELS/"
}

prepare_root() {
    local started
    started="$(now)"
    remove_tree "$ROOT"
    cp -a "$BASE" "$ROOT"
    copy_interpreter "$ROOT"
    cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
    # The host's CA bundle (it may hold a proxy's CA that pip and apt over https must trust).
    if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
        cp /etc/ssl/certs/ca-certificates.crt "$ROOT/etc/pi-check-ca.pem"
    else
        ln -s /etc/ssl/certs/ca-certificates.crt "$ROOT/etc/pi-check-ca.pem"   # the root's own
    fi
    copy_checkout
    say "fresh copy of the root in $ROOT ($(( $(now) - started )) s)"
}

host_embeddings() {
    "$HOST_VENV/bin/python" "$SRC/scripts/pi_embeddings.py" --models "$SRC/models" --faces "$FACES" \
        --out "$ROOT$IN_WORK/host-embeddings.json"
}

host_main() {
    local started reuse
    started="$(now)"
    check_host
    mkdir -p "$WORK" "$LOGS"
    # One run at a time per cache: two would share (and delete) the same working root.
    exec 9>"$WORK/.lock"
    flock -n 9 || fail "another pi-check is running with $WORK (wait for it, or use --cache DIR)"
    rm -f "$LOGS"/*.log "$FAILED_MARK"
    : >"$FIGURES"
    enable_binfmt
    if [ "$REBUILD" = 0 ] && base_is_usable; then
        reuse=1
        figure "root: reused the cached $SUITE arm64 root ($BASE)"
    else
        reuse=0
        [ ! -d "$BASE" ] || say "the cached root in $BASE is missing, old or broken: building it again"
        build_base
    fi
    if [ -n "${PI_CHECK_ONLY:-}" ] && [ -x "$ROOT/opt/edge-face/venv/bin/python" ]; then
        say "PI_CHECK_ONLY=$PI_CHECK_ONLY: reusing the installed root in $ROOT (development shortcut)"
    else
        PI_CHECK_ONLY=""
        prepare_root
    fi
    step host-embeddings "host: embeddings of the fixed photographs ($(uname -m))" host_embeddings
    # Everything that runs in the root runs in private mount and PID namespaces: the mounts vanish and every
    # process in the root is killed when the stage ends, whatever happens.
    local status=0
    unshare --mount --pid --fork --kill-child --propagation private \
        env PI_CHECK_ONLY="${PI_CHECK_ONLY:-}" bash "$0" --stage=inside --suite "$SUITE" --cache "$CACHE" \
        </dev/null || status=$?
    if [ "$status" != 0 ]; then
        [ -e "$FAILED_MARK" ] || fail "the stage inside the root stopped (exit $status) before it could say why"
        exit 1   # the stage printed the line
    fi
    say "== summary ($SUITE arm64 under qemu-user, $(( $(now) - started )) s in all$([ "$reuse" = 1 ] && echo ", cached root"))"
    sed 's/^/pi-check:   /' "$FIGURES"
    say "passed"
}

# ---------------------------------------------------------------------------------------------------------------
# Inside the namespaces: mounts, then every check in the root

mount_root() {
    mount -t proc proc "$ROOT/proc"
    # No /sys: this machine's (x86) CPU description there crashes arm64 code under qemu; without it TFLite's
    # cpuinfo says "Error in cpuinfo: failed to parse ..." and carries on.
    mount -t tmpfs -o mode=0755,nosuid tmpfs "$ROOT/dev"
    local node
    for node in null zero full random urandom tty; do
        touch "$ROOT/dev/$node"
        mount --bind "/dev/$node" "$ROOT/dev/$node"
    done
    mkdir -p "$ROOT/dev/shm" "$ROOT/dev/pts"
    mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$ROOT/dev/shm"
    ln -s /proc/self/fd "$ROOT/dev/fd"
    ln -s /proc/self/fd/0 "$ROOT/dev/stdin"
    ln -s /proc/self/fd/1 "$ROOT/dev/stdout"
    ln -s /proc/self/fd/2 "$ROOT/dev/stderr"
    # A /run of its own: nothing in the root can reach this machine's systemd or D-Bus.
    mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs "$ROOT/run"
    mount --bind "$FACES" "$ROOT$IN_FACES"
    mount -o remount,bind,ro "$ROOT$IN_FACES"
    # Downloads kept between runs: apt's packages and pip's wheels.
    mkdir -p "$WORK/apt-archives/partial" "$WORK/pip-cache" "$ROOT/var/cache/apt/archives" "$ROOT/root/.cache/pip"
    mount --bind "$WORK/apt-archives" "$ROOT/var/cache/apt/archives"
    mount --bind "$WORK/pip-cache" "$ROOT/root/.cache/pip"
}

# A command in the root with a clean environment, like a root login shell on the Pi: "${IN_ROOT[@]}" COMMAND...
IN_ROOT=(chroot "$ROOT" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
         HOME=/root LANG=C.UTF-8 TERM=dumb DEBIAN_FRONTEND=noninteractive PIP_DEFAULT_TIMEOUT=120
         PIP_ROOT_USER_ACTION=ignore)
# The host's CA bundle (copied in by prepare_root) for pip's downloads.
IN_ROOT+=(SSL_CERT_FILE=/etc/pi-check-ca.pem PIP_CERT=/etc/pi-check-ca.pem REQUESTS_CA_BUNDLE=/etc/pi-check-ca.pem)
in_root() { "${IN_ROOT[@]}" "$@"; }

run_install() {
    local started
    started="$(now)"
    in_root bash "$IN_SRC/scripts/install.sh" --no-camera-stack --no-start --models "$IN_MODELS"
    figure "install.sh (apt, user, venv from PyPI, config, key, database, models, unit, doctor): $(( $(now) - started )) s"
}

refuses_without_pi_archive() {
    # Plain Debian has no Raspberry Pi archive: without --no-camera-stack the installer must stop and say so.
    local status=0
    in_root bash "$IN_SRC/scripts/install.sh" --no-start --models "$IN_MODELS" >"$ROOT$IN_WORK/refusal.txt" 2>&1 ||
        status=$?
    tail -1 "$ROOT$IN_WORK/refusal.txt"
    [ "$status" = 1 ] || { echo "install.sh exited $status instead of refusing"; return 1; }
    grep -q "Raspberry Pi archive.*not configured.*--no-camera-stack" "$ROOT$IN_WORK/refusal.txt" ||
        { echo "install.sh did not name the missing archive and --no-camera-stack"; return 1; }
}

check_doctor() {
    # The checks that must pass in the root. Camera and GPIO cannot (no camera, not a Pi), the service is not
    # started, the clock cannot ask timedatectl without systemd running, and the web port is this machine's.
    in_root runuser -u edge-face -- /usr/local/bin/edge-face doctor --json >"$ROOT$IN_WORK/doctor.json" || true
    in_root python3 - "$IN_WORK/doctor.json" <<'EOF'
import json, sys
results = {r["name"]: r for r in json.load(open(sys.argv[1]))["checks"]}
must_pass = ("config", "runtime", "models", "key", "database", "disk")
bad = [f"{n}: {results[n]['status']} ({results[n]['reason']})" for n in must_pass if results[n]["status"] != "ok"]
if results["clock"]["status"] == "failed":
    bad.append(f"clock: {results['clock']['reason']}")
for name, r in results.items():
    print(f"  {name:<9} {r['status']:<8} {r['reason']}")
if bad:
    sys.exit("doctor: " + "; ".join(bad))
print("doctor: " + ", ".join(must_pass) + " ok")
EOF
}

verify_unit() {
    in_root systemd-analyze verify --man=no /etc/systemd/system/edge-face.service
    figure "systemd-analyze verify /etc/systemd/system/edge-face.service: clean"
}

run_tests() {
    local started count
    started="$(now)"
    # Test-only: pytest into the installed venv (the tests import the installed package, not the checkout).
    in_root /opt/edge-face/venv/bin/python -m pip install --quiet --disable-pip-version-check "pytest>=8"
    in_root sh -c "cd $IN_SRC && PYTHONUNBUFFERED=1 EDGE_FACE_STRICT=1 EDGE_FACE_FACES_DIR=$IN_FACES \
        EDGE_FACE_MODELS_DIR=/opt/edge-face/models /opt/edge-face/venv/bin/pytest -p no:cacheprovider -v \
        --durations=5 -o addopts= $*" | tee "$ROOT$IN_WORK/pytest.txt"
    count="$(grep -Eo '[0-9]+ passed' "$ROOT$IN_WORK/pytest.txt" | tail -1)"
    figure "tests in the root: ${count:-?} in $(( $(now) - started )) s: $*"
}

compare_embeddings() {
    in_root /opt/edge-face/venv/bin/python "$IN_SRC/scripts/pi_embeddings.py" --models /opt/edge-face/models \
        --faces "$IN_FACES" --out "$IN_WORK/pi-embeddings.json" --compare "$IN_WORK/host-embeddings.json" \
        --min-cosine 0.999 | tee "$ROOT$IN_WORK/embeddings.txt"
    figure "$(grep '^embedding agreement' "$ROOT$IN_WORK/embeddings.txt")"
    figure "$(grep '^one invoke' "$ROOT$IN_WORK/embeddings.txt")"
}

door_service() {
    local conf="/etc/edge-face/config.toml" cam="/var/lib/edge-face-pi-check/camera"
    # The installed configuration, changed as an administrator would for this test: a folder of frames as the
    # camera, simulated pins, no admin page (its port belongs to this machine), liveness off (still photographs
    # never blink), and, because one frame takes 10 s or more under emulation, no mirror-image averaging and one
    # matching frame enough (the k-of-n vote itself is tested natively).
    in_root sed -i -e '/^\[camera\]/,/^\[/ {s|^source = .*|source = "folder"|; s|^folder = .*|folder = "'"$cam"'"|}' \
        -e '/^\[door\]/,/^\[/ s|^pin_factory = .*|pin_factory = "mock"|' \
        -e '/^\[web\]/,/^\[/ s|^enabled = .*|enabled = false|' \
        -e '/^\[recognition\]/,/^\[/ s|^flip_average = .*|flip_average = false|' \
        -e '/^\[decision\]/,/^\[/ {s|^window_seconds = .*|window_seconds = 30.0|; s|^frames_required = .*|frames_required = 1|; s|^frames_considered = .*|frames_considered = 1|}' \
        -e '/^\[liveness\]/,/^\[/ s|^mode = .*|mode = "off"|' "$conf"
    grep -E '^(source|folder|pin_factory|enabled|flip_average|window_seconds|frames_required|frames_considered|mode) = ' \
        "$ROOT$conf"
    in_root /usr/local/bin/edge-face config check "$conf"
    # One person from the shared photographs: three enrolment photographs, the camera shows the others.
    in_root /opt/edge-face/venv/bin/python - "$IN_FACES" "$cam" <<'EOF'
import sys
from pathlib import Path
import cv2
import numpy as np
faces, cam = Path(sys.argv[1]), Path(sys.argv[2])
# The first LFW person (by name) with at least 6 photographs: 3 to enrol, the others for the camera.
person = next(d for d in sorted((faces / "lfw_view1").iterdir()) if d.is_dir() and len(list(d.glob("*.jpg"))) >= 6)
photos = sorted(person.glob("*.jpg"))
cam.mkdir(parents=True, exist_ok=True)
for i, p in enumerate(photos[3:9]):
    img = cv2.imread(str(p))
    frame = np.full((480, 640, 3), 60, np.uint8)
    frame[115:365, 195:445] = img
    cv2.imwrite(str(cam / f"{i:02d}.png"), frame)
(cam.parent / "enrol.txt").write_text("\n".join(str(p) for p in photos[:3]))
EOF
    in_root chown -R edge-face:edge-face "$(dirname "$cam")"
    # A root reused with PI_CHECK_ONLY may hold the user from before: start from no templates.
    in_root runuser -u edge-face -- /usr/local/bin/edge-face user remove resident >/dev/null 2>&1 || true
    in_root runuser -u edge-face -- /usr/local/bin/edge-face user add resident --active --no-password
    # shellcheck disable=SC2046
    in_root runuser -u edge-face -- /usr/local/bin/edge-face enroll resident \
        $(cat "$ROOT$(dirname "$cam")/enrol.txt")
    say "starting the door service (edge-face run as edge-face, mock pins, folder camera)"
    local status=0 pid waited=0 started
    # chroot, env and setpriv exec one another, and so does the wrapper: $pid is the service itself.
    "${IN_ROOT[@]}" PYTHONUNBUFFERED=1 setpriv --reuid=edge-face --regid=edge-face --init-groups \
        /usr/local/bin/edge-face run >"$LOGS/door-run.log" 2>&1 &
    pid=$!
    started="$(now)"
    # Starting takes a while under emulation (imports, models); the 30 s count from "ready".
    until grep -q "ready: " "$LOGS/door-run.log"; do
        kill -0 "$pid" 2>/dev/null || { cat "$LOGS/door-run.log"; echo "the door service ended before it was ready"; return 1; }
        [ "$waited" -lt 300 ] || { cat "$LOGS/door-run.log"; echo "the door service was not ready within 300 s"; return 1; }
        sleep 1
        waited=$((waited + 1))
    done
    say "door service ready after $(( $(now) - started )) s; running it for $DOOR_SECONDS s (up to $DOOR_LIMIT s until a grant)"
    started="$(now)"
    # At least DOOR_SECONDS; longer only while no grant has come yet (a loaded machine emulates slowly).
    while [ $(( $(now) - started )) -lt "$DOOR_SECONDS" ] ||
          { ! grep -q "pin relay GPIO17 on (grant" "$LOGS/door-run.log" && [ $(( $(now) - started )) -lt "$DOOR_LIMIT" ]; }; do
        kill -0 "$pid" 2>/dev/null || break
        sleep 1
    done
    figure "door service: ran $(( $(now) - started )) s after ready"
    kill -TERM "$pid"
    wait "$pid" || status=$?
    sed 's/^/  | /' "$LOGS/door-run.log" | grep -v -e 'WARN:' -e 'OpenCV(' | tail -25
    [ "$status" = 0 ] || { echo "the door service exited with $status after SIGTERM"; return 1; }
    grep -q "pin relay GPIO17 on (grant" "$LOGS/door-run.log" || { echo "no grant: the relay never opened"; return 1; }
    grep -q "pin relay GPIO17 off" "$LOGS/door-run.log" || { echo "the relay was not released"; return 1; }
    in_root runuser -u edge-face -- /usr/local/bin/edge-face log --kind grant --csv >"$ROOT$IN_WORK/grants.csv"
    grep -q resident "$ROOT$IN_WORK/grants.csv" || { echo "the access log holds no grant for the enrolled person"; return 1; }
    figure "door service, $DOOR_SECONDS s, folder camera, mock pins: $(($(wc -l <"$ROOT$IN_WORK/grants.csv") - 1)) grant(s) in the access log"
}

inside_main() {
    mount_root
    step install "install.sh in the root (skipped: picamera2/libcamera from the Raspberry Pi archive, starting systemd)" \
        run_install
    step refusal "install.sh without --no-camera-stack stops: no Raspberry Pi archive here" refuses_without_pi_archive
    step doctor "edge-face doctor as the service user (camera, GPIO, service and web port cannot pass here)" check_doctor
    step verify "systemd-analyze verify on the installed unit" verify_unit
    step embeddings "embeddings and invoke time: arm64 under emulation vs the host" compare_embeddings
    step door "door service with a folder camera and mock pins: the enrolled person is granted" door_service
    step tests "recognition tests on the real models, under emulation" run_tests "${PI_TESTS[@]}"
}

# Any other error still ends with the one line that says what failed.
trap 'fail "unexpected error (exit $?) at line $LINENO of $0: $BASH_COMMAND"' ERR
if [ "$STAGE" = inside ]; then inside_main; else host_main; fi
