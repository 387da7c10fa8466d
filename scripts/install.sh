#!/usr/bin/env bash
# Install edge-face on Raspberry Pi OS (64-bit, Bookworm or Trixie) and run it under systemd.
#
#   sudo scripts/install.sh                   install or update, enable and start the service, run the doctor
#   sudo scripts/install.sh --credential      keep the database key in a systemd credential (/etc/credstore)
#   sudo scripts/install.sh --no-camera-stack install without picamera2/libcamera, e.g. on plain Debian where the
#                                             Raspberry Pi archive is absent (USB camera or folder instead)
#   sudo scripts/install.sh --models DIR      copy models built elsewhere (manifest.json + files), e.g. after
#                                             rsync -a models/ pi@door.local:edge-face-models/   (on the PC)
#   sudo scripts/install.sh --uninstall       remove the service and the program; keep configuration and data
#   sudo scripts/install.sh --purge           ... and delete configuration, database, key and the user
#   scripts/install.sh --root DIR --no-venv   lay the files out under DIR only (packaging, tests): no apt,
#                                             no user, no systemctl, no chown (DESTDIR=DIR works too)
#
# Running it again changes nothing that is already right: the configuration, the key and the database are
# never overwritten, files are only replaced when their content differs, modes and owners are re-applied.
set -euo pipefail
umask 022

APP=edge-face
APP_USER=edge-face
PREFIX=/opt/edge-face
VENV=$PREFIX/venv
MODELS_DIR=$PREFIX/models
CONF_DIR=/etc/edge-face
CONF_FILE=$CONF_DIR/config.toml
STATE_DIR=/var/lib/edge-face
UNIT_DIR=/etc/systemd/system
UNIT=$UNIT_DIR/$APP.service
DROPIN_DIR=$UNIT_DIR/$APP.service.d
CREDSTORE=/etc/credstore
WRAPPER=/usr/local/bin/edge-face

SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ROOT="${DESTDIR:-}"
USE_VENV=1
START=1
COPY_MODELS=1
MODELS_FROM=""
WANT_CREDENTIAL=0
CAMERA_STACK=1
ACTION=install

usage() {
    sed -n '2,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

say() { printf '%s: %s\n' "$APP" "$*"; }
die() { printf '%s: error: %s\n' "$APP" "$*" >&2; exit 1; }

while [ $# -gt 0 ]; do
    case "$1" in
        --root) [ $# -ge 2 ] || die "--root needs a directory"; ROOT="$2"; shift ;;
        --root=*) ROOT="${1#--root=}" ;;
        --no-venv) USE_VENV=0 ;;
        --no-start) START=0 ;;
        --no-models) COPY_MODELS=0 ;;
        --models) [ $# -ge 2 ] || die "--models needs a directory"; MODELS_FROM="$2"; shift ;;
        --models=*) MODELS_FROM="${1#--models=}" ;;
        --credential) WANT_CREDENTIAL=1 ;;
        --no-camera-stack) CAMERA_STACK=0 ;;
        --uninstall) ACTION=uninstall ;;
        --purge) ACTION=purge ;;
        -h|--help) usage; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
    shift
done

if [ -n "$ROOT" ]; then
    mkdir -p "$ROOT"
    ROOT="$(cd "$ROOT" && pwd)"
    [ "$ROOT" != / ] || ROOT=""
fi

# In --root mode nothing outside the tree is touched: system commands are reported instead of run.
system() {
    if [ -n "$ROOT" ]; then
        say "skipped (--root): $*"
    else
        "$@"
    fi
}

# chown only on a real system: in a --root tree the user does not exist.
own() {
    local owner="$1"; shift
    [ -n "$ROOT" ] || chown "$owner" "$@"
}

make_dir() {  # make_dir MODE OWNER:GROUP PATH
    local mode="$1" owner="$2" path="$ROOT$3"
    mkdir -p "$path"
    chmod "$mode" "$path"
    own "$owner" "$path"
}

put_file() {  # put_file SOURCE MODE OWNER:GROUP DEST - replaced (atomically) only when the content differs
    local source="$1" mode="$2" owner="$3" dest="$ROOT$4" tmp
    if ! cmp -s "$source" "$dest" 2>/dev/null; then
        tmp="$(mktemp "$(dirname "$dest")/.install.XXXXXX")"
        cat "$source" >"$tmp"
        chmod "$mode" "$tmp"
        own "$owner" "$tmp"
        mv -f "$tmp" "$dest"
        say "installed $4"
    fi
    chmod "$mode" "$dest"
    own "$owner" "$dest"
}

put_text() {  # put_text MODE OWNER:GROUP DEST <<< text
    local tmp
    tmp="$(mktemp)"
    cat >"$tmp"
    put_file "$tmp" "$1" "$2" "$3"
    rm -f "$tmp"
}

toml_value() {  # toml_value FILE SECTION KEY DEFAULT - read one setting with Python's own TOML parser
    python3 - "$1" "$2" "$3" "$4" <<'EOF'
import sys, tomllib
path, section, key, default = sys.argv[1:]
try:
    with open(path, "rb") as fh:
        print(tomllib.load(fh).get(section, {}).get(key, default))
except FileNotFoundError:
    print(default)
EOF
}

# ---------------------------------------------------------------------------------------------------------------
# Release and Python dependencies

os_release_file() {
    if [ -n "$ROOT" ] && [ -f "$ROOT/etc/os-release" ]; then echo "$ROOT/etc/os-release"; else echo /etc/os-release; fi
}

detect_release() {
    # shellcheck disable=SC1090
    CODENAME="$(. "$(os_release_file)"; echo "${VERSION_CODENAME:-unknown}")"
    case "$CODENAME" in
        bookworm|trixie) say "Debian/Raspberry Pi OS release: $CODENAME" ;;
        *) say "warning: release '$CODENAME' is not Bookworm or Trixie; treating it like Trixie" ;;
    esac
}

write_constraints() {
    # pip constraints that keep the venv compatible with apt's picamera2/libcamera, which are compiled against
    # the release's numpy. Bookworm ships numpy 1.24: a numpy 2 pulled into the venv shadows it and picamera2
    # fails to import ("compiled using NumPy 1.x"). opencv-python-headless 4.11 and later are built for numpy 2
    # (4.12 requires it), so Bookworm stays below 4.11; 4.8 is the first with the YuNet 2023mar detector.
    # ai-edge-litert's aarch64 wheels accept numpy>=1.23; if the one pip picks does not import with numpy 1,
    # tflite-runtime 2.14 (built for numpy 1) is installed instead (see install_venv).
    {
        echo "# Written by scripts/install.sh for $CODENAME; see the comment in write_constraints()."
        if [ "$CODENAME" = bookworm ]; then
            echo "numpy<2"
            echo "opencv-python-headless>=4.8,<4.11"
        else
            echo "opencv-python-headless>=4.8"
        fi
    } | put_text 0644 root:root "$PREFIX/constraints.txt"
}

apt_install() {
    # python3-setuptools: the --no-build-isolation install below needs it, and from Trixie on python3-pip does not
    # bring it along.
    local packages=(python3 python3-venv python3-pip python3-setuptools python3-numpy ca-certificates)
    local camera_stack=(python3-picamera2 python3-libcamera)
    system apt-get update -q
    # The Pi camera stack comes from the Raspberry Pi archive (archive.raspberrypi.com), which Raspberry Pi OS
    # configures and plain Debian does not have. Without it there is no picamera2: refuse rather than install a
    # door that cannot see, unless asked to go on (a USB camera through OpenCV, or a folder of images).
    if [ "$CAMERA_STACK" = 0 ]; then
        say "skipped (--no-camera-stack): ${camera_stack[*]} from the Raspberry Pi archive; use camera.source = opencv or folder"
    elif [ -n "$ROOT" ] || apt-cache show "${camera_stack[0]}" >/dev/null 2>&1; then
        packages+=("${camera_stack[@]}")
    else
        die "${camera_stack[*]} are not available from apt: the Raspberry Pi archive (archive.raspberrypi.com) is \
not configured here. On Raspberry Pi OS run 'sudo apt update' and try again; on plain Debian (a PC, an emulated \
root) run again with --no-camera-stack to install without the Pi camera (USB camera or folder of images)"
    fi
    # lgpio drives the pins on a Pi 5 (and on a Pi 4 from Bookworm on); gpiozero falls back to others without it.
    if [ -n "$ROOT" ] || apt-cache show python3-lgpio >/dev/null 2>&1; then
        packages+=(python3-lgpio)
    else
        say "warning: python3-lgpio is not available from apt here (not Raspberry Pi OS?): GPIO needs another pin factory"
    fi
    system env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${packages[@]}"
}

install_venv() {
    local venv="$ROOT$VENV" pip stamp requirements
    # --system-site-packages: apt's picamera2, libcamera and lgpio are compiled for the system Python.
    [ -x "$venv/bin/python" ] || python3 -m venv --system-site-packages "$venv"
    pip=("$venv/bin/python" -m pip --disable-pip-version-check --quiet)
    local system_numpy
    if system_numpy="$(python3 -c 'import numpy; print(numpy.__version__)' 2>/dev/null)"; then
        # Keep exactly the system's (apt's) numpy: picamera2's compiled parts were built against it, and the
        # OpenCV cap follows its major version rather than the release name.
        {
            grep -v -e '^numpy' -e '^opencv' "$ROOT$PREFIX/constraints.txt"
            echo "numpy==$system_numpy"
            if [ "${system_numpy%%.*}" -lt 2 ]; then
                echo "opencv-python-headless>=4.8,<4.11"
            else
                echo "opencv-python-headless>=4.8"
            fi
        } >"$venv/constraints.txt"
    else
        cp "$ROOT$PREFIX/constraints.txt" "$venv/constraints.txt"
    fi
    # Reinstall the program only when its source changed (running the script twice changes nothing).
    stamp="$( (cd "$SRC" && find edge setup.cfg pyproject.toml -type f ! -name '*.pyc' -print0 | sort -z |
               xargs -0 sha256sum) | sha256sum | cut -d' ' -f1)"
    if [ "$(cat "$venv/.edge-face-source" 2>/dev/null)" = "$stamp" ]; then
        say "program unchanged in $VENV"
        return
    fi
    # Built from a copy, so that the checkout gets no root-owned build/ folder.
    local build
    build="$(mktemp -d)"
    cp -r "$SRC/edge" "$SRC/setup.cfg" "$SRC/pyproject.toml" "$build/"
    [ ! -f "$SRC/README.md" ] || cp "$SRC/README.md" "$build/"
    # The system's setuptools first (python3-setuptools, installed by apt_install): no build environment to
    # download and install, which takes minutes on a Pi; an isolated build if that setuptools cannot build it.
    "${pip[@]}" install --no-deps --force-reinstall --no-build-isolation "$build" ||
        "${pip[@]}" install --no-deps --force-reinstall "$build"
    rm -rf "$build"
    # Dependencies from the package's own metadata (setup.cfg), without test extras.
    requirements="$("$venv/bin/python" -c 'import importlib.metadata as m
print("\n".join(r for r in m.requires("edge-face") or [] if "extra ==" not in r))')"
    # All of them in one go (pip resolves them together); the TFLite runtime is ai-edge-litert if it installs and
    # imports with this numpy, else the rest without it and tflite-runtime.
    if "${pip[@]}" install -c "$venv/constraints.txt" -r /dev/stdin <<<"$requirements" &&
            "$venv/bin/python" -c 'from ai_edge_litert.interpreter import Interpreter'; then
        say "TFLite runtime: ai-edge-litert"
    else
        say "ai-edge-litert does not work with numpy ${system_numpy:-?} here: installing tflite-runtime instead"
        "${pip[@]}" uninstall -y ai-edge-litert >/dev/null 2>&1 || true
        grep -v '^ai-edge-litert' <<<"$requirements" | "${pip[@]}" install -c "$venv/constraints.txt" -r /dev/stdin ||
            die "pip could not install the dependencies with the pins in $VENV/constraints.txt"
        "${pip[@]}" install -c "$venv/constraints.txt" "tflite-runtime>=2.14" ||
            die "neither ai-edge-litert nor tflite-runtime can be installed for this Python and numpy"
    fi
    "$venv/bin/python" -c 'import numpy, cv2; cv2.FaceDetectorYN' ||
        die "the installed numpy/OpenCV do not work together; see $VENV/constraints.txt"
    echo "$stamp" >"$venv/.edge-face-source"
    say "program installed in $VENV"
}

# ---------------------------------------------------------------------------------------------------------------
# User, files, key, models, unit

create_user() {
    system sh -c "getent group gpio >/dev/null || groupadd --system gpio"
    system sh -c "getent group video >/dev/null || groupadd --system video"
    system sh -c "getent passwd $APP_USER >/dev/null || useradd --system --user-group --home-dir $STATE_DIR \
--no-create-home --shell /usr/sbin/nologin --comment 'edge-face door service' $APP_USER"
    system usermod --append --groups video,gpio "$APP_USER"
}

lay_out_files() {
    make_dir 0755 root:root "$PREFIX"
    make_dir 0755 root:root "$MODELS_DIR"
    make_dir 0750 "root:$APP_USER" "$CONF_DIR"
    make_dir 0700 "$APP_USER:$APP_USER" "$STATE_DIR"
    make_dir 0755 root:root "$UNIT_DIR"
    make_dir 0755 root:root /usr/local/bin

    put_file "$SRC/config/edge-face.example.toml" 0644 root:root "$PREFIX/edge-face.example.toml"
    [ ! -f "$SRC/README.md" ] || put_file "$SRC/README.md" 0644 root:root "$PREFIX/README.md"

    # The configuration is the administrator's: written once from the example, never overwritten.
    if [ ! -e "$ROOT$CONF_FILE" ]; then
        if [ "$WANT_CREDENTIAL" = 1 ]; then
            sed 's/^key_source = "file"/key_source = "credential"/' "$SRC/config/edge-face.example.toml"
        else
            cat "$SRC/config/edge-face.example.toml"
        fi | put_text 0640 "root:$APP_USER" "$CONF_FILE"
    else
        chmod 0640 "$ROOT$CONF_FILE"
        own "root:$APP_USER" "$ROOT$CONF_FILE"
        say "kept $CONF_FILE (compare with $PREFIX/edge-face.example.toml after an update)"
    fi
    KEY_SOURCE="$(toml_value "$ROOT$CONF_FILE" store key_source file)"
    CREDENTIAL_NAME="$(toml_value "$ROOT$CONF_FILE" store credential_name edge-face-key)"
    if [ "$WANT_CREDENTIAL" = 1 ] && [ "$KEY_SOURCE" != credential ]; then
        die "--credential, but $CONF_FILE has store.key_source = \"$KEY_SOURCE\": edit it first (and move the key)"
    fi

    put_text 0755 root:root "$WRAPPER" <<EOF
#!/bin/sh
# Installed by edge-face's scripts/install.sh: the command line with the service's configuration.
exec $VENV/bin/edge-face --config $CONF_FILE "\$@"
EOF
}

set_up_credential() {
    # store.key_source = "credential": the key lives in root's credential store and systemd hands it to the
    # service in $CREDENTIALS_DIRECTORY (LoadCredential=); the service user cannot read it anywhere else.
    local key="$CREDSTORE/$CREDENTIAL_NAME"
    if [ "$KEY_SOURCE" != credential ]; then
        if [ -e "$ROOT$DROPIN_DIR/credential.conf" ]; then
            rm -f "$ROOT$DROPIN_DIR/credential.conf"
            rmdir "$ROOT$DROPIN_DIR" 2>/dev/null || true
            say "removed $DROPIN_DIR/credential.conf (store.key_source is $KEY_SOURCE)"
        fi
        return
    fi
    make_dir 0700 root:root "$CREDSTORE"
    if [ ! -e "$ROOT$key" ]; then
        (umask 077; python3 -c 'import base64, os; print(base64.urlsafe_b64encode(os.urandom(32)).decode())' \
            >"$ROOT$key")
        say "created the database key $key: keep a copy somewhere safe, away from the Pi"
    fi
    chmod 0400 "$ROOT$key"
    own root:root "$ROOT$key"
    make_dir 0755 root:root "$DROPIN_DIR"
    put_text 0644 root:root "$DROPIN_DIR/credential.conf" <<EOF
# Written by scripts/install.sh because $CONF_FILE has store.key_source = "credential".
[Service]
LoadCredential=$CREDENTIAL_NAME:$key
EOF
}

install_models() {
    # Models come from (1) --models DIR, (2) the checkout's models/ when built or copied there, or (3) a
    # build on this machine (edge-face models build: needs a TensorFlow download and some minutes).
    local from="$MODELS_FROM"
    if [ "$COPY_MODELS" = 0 ]; then say "models not touched (--no-models)"; return; fi
    if [ -z "$from" ]; then
        from="$SRC/models"
        if [ ! -f "$from/manifest.json" ]; then
            [ -x "$ROOT$VENV/bin/python" ] || die "no models in $from and no venv to build them: use --models DIR"
            say "building the models in $from (this downloads TensorFlow once and takes a while)"
            "$ROOT$VENV/bin/python" "$SRC/scripts/build_models.py" --models-dir "$from"
        fi
    fi
    [ -f "$from/manifest.json" ] || die "$from/manifest.json not found: build the models (edge-face models build) or copy them"
    # Every listed file must match its sha256 before anything is copied: a half-copied model never lands.
    local listing name sum
    listing="$(python3 - "$from/manifest.json" <<'EOF'
import json, sys
for entry in json.load(open(sys.argv[1], encoding="utf-8"))["models"]:
    print(entry["file"], entry["sha256"])
EOF
)"
    while read -r name sum; do
        [ -n "$name" ] || continue
        case "$name" in */*|.*) die "manifest names an unsafe file: $name" ;; esac
        [ -f "$from/$name" ] || die "$from/$name (listed in the manifest) is missing"
        [ "$(sha256sum "$from/$name" | cut -d' ' -f1)" = "$sum" ] ||
            die "$from/$name does not match its sha256 in the manifest: copy or build it again"
    done <<<"$listing"
    while read -r name _; do
        [ -n "$name" ] || continue
        put_file "$from/$name" 0644 root:root "$MODELS_DIR/$name"
    done <<<"$listing"
    put_file "$from/manifest.json" 0644 root:root "$MODELS_DIR/manifest.json"
}

install_unit() {
    put_file "$SRC/systemd/edge-face.service" 0644 root:root "$UNIT"
    system systemctl daemon-reload
}

as_service_user() {  # run a command as the service user, as the unit would (credential included)
    local work status=0
    work="$(mktemp -d)"  # lgpio writes a notification pipe into the working directory
    chown "$APP_USER:$APP_USER" "$work"
    if [ "$KEY_SOURCE" = credential ]; then
        systemd-run --quiet --wait --pipe --collect --service-type=exec --uid="$APP_USER" --gid="$APP_USER" \
            -p SupplementaryGroups="video gpio" -p WorkingDirectory="$work" -p UMask=0077 \
            -p LoadCredential="$CREDENTIAL_NAME:$CREDSTORE/$CREDENTIAL_NAME" -- "$@" || status=$?
    else
        (cd "$work" && umask 077 && runuser -u "$APP_USER" -- "$@") || status=$?
    fi
    rm -rf "$work"
    return "$status"
}

init_database() {
    if [ -e "$ROOT$STATE_DIR/edge-face.db" ]; then
        say "kept the database $STATE_DIR/edge-face.db"
        return
    fi
    if [ -n "$ROOT" ] || [ "$USE_VENV" = 0 ]; then
        say "skipped: edge-face db init (run it as $APP_USER once the program is installed)"
        return
    fi
    say "creating the database (edge-face db init, as $APP_USER)"
    as_service_user "$VENV/bin/edge-face" --config "$CONF_FILE" db init
}

start_service() {
    if [ -n "$ROOT" ]; then
        # systemctl can enable offline inside a tree (the multi-user.target.wants link); it starts nothing.
        if command -v systemctl >/dev/null; then
            systemctl --root="$ROOT" --quiet enable "$APP.service"
        else
            say "skipped (--root, no systemctl): systemctl enable $APP.service"
        fi
        return
    fi
    if [ "$USE_VENV" = 0 ]; then
        systemctl enable "$APP.service"
        say "enabled, not started: no program installed (--no-venv)"
        return
    fi
    say "health check before starting (edge-face doctor, as $APP_USER):"
    as_service_user "$VENV/bin/edge-face" --config "$CONF_FILE" doctor ||
        say "the doctor found problems (above); the service starts anyway and retries the camera"
    if [ "$START" = 1 ]; then
        systemctl enable "$APP.service"
        systemctl restart "$APP.service" || die "the service did not start: journalctl -u $APP -n 50"
        say "$(systemctl show --property=StatusText --value "$APP.service")"
        say "running. Logs: journalctl -u $APP -f    Check again: sudo edge-face doctor"
    else
        systemctl enable "$APP.service"
        say "enabled, not started (--no-start): sudo systemctl start $APP"
    fi
}

# ---------------------------------------------------------------------------------------------------------------

uninstall() {
    system systemctl disable --now "$APP.service" || true
    rm -f "$ROOT$UNIT" "$ROOT$WRAPPER"
    # ${VAR:?} guards the paths themselves: ROOT is empty on a real install, so it must not be guarded.
    rm -rf "$ROOT${DROPIN_DIR:?}" "$ROOT${PREFIX:?}"
    system systemctl daemon-reload
    say "removed the service and the program"
    if [ "$ACTION" = purge ]; then
        local credential
        credential="$(toml_value "$ROOT$CONF_FILE" store credential_name edge-face-key)"
        rm -f "$ROOT$CREDSTORE/${credential:?}"
        rm -rf "$ROOT${CONF_DIR:?}" "$ROOT${STATE_DIR:?}"
        system sh -c "! getent passwd $APP_USER >/dev/null || userdel $APP_USER"
        say "purged $CONF_DIR, $STATE_DIR (database, key, access log) and the user $APP_USER"
    else
        say "kept $CONF_DIR and $STATE_DIR (configuration, database, key); --purge deletes them"
    fi
}

main() {
    if [ -z "$ROOT" ] && [ "$(id -u)" -ne 0 ]; then
        die "run as root (sudo $0), or use --root DIR to lay the files out in a directory"
    fi
    if [ "$ACTION" != install ]; then
        uninstall
        return
    fi
    [ -z "$ROOT" ] || say "installing into $ROOT (no apt, no user, no systemctl)"
    detect_release
    apt_install
    create_user
    lay_out_files
    write_constraints
    if [ "$USE_VENV" = 1 ]; then install_venv; else say "skipped: virtual environment (--no-venv)"; fi
    set_up_credential
    install_models
    install_unit
    init_database
    start_service
    say "done"
}

main
