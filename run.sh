#!/usr/bin/env bash
# AIGC Desktop: set up (once) and run.
#   ./run.sh            set up, then launch the app
#   ./run.sh test       set up, then run the whole test suite (extra args go to pytest)
#   ./run.sh cli ARGS   set up, then run the command-line tool (aigc-desktop ARGS)
#
# Set-up: Qt's system libraries (apt, when missing and we may), a virtual environment in .venv,
# torch (the CPU wheel torch==2.13.0 unless a torch is already installed there: GPU users install the
# CUDA build first, see README), then this package with its test extras. Re-running is fast: pip runs
# only when pyproject.toml changed.
set -euo pipefail
cd "$(dirname "$0")"

PYTHON=${PYTHON:-python3}
VENV=${AIGC_VENV:-.venv}
TORCH_SPEC=${AIGC_TORCH_SPEC:-torch==2.13.0}
MODE=${1:-app}
[ $# -gt 0 ] && shift

say() { printf '[aigc-desktop] %s\n' "$*" >&2; }

QT_LIBS=(libegl1 libgl1 libglx0 libxkbcommon0 libfontconfig1 libfreetype6 libdbus-1-3 libglib2.0-0 fonts-dejavu-core)
XCB_LIBS=(libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxkbcommon-x11-0 libxcb-image0 libxcb-render-util0
          libxcb-shape0 libxcb-randr0 libxcb-xfixes0 libxcb-xkb1 libx11-xcb1)

ensure_system_packages() {
  command -v dpkg-query >/dev/null 2>&1 || { say "not a Debian/Ubuntu system: make sure Qt 6's libraries are installed (${QT_LIBS[*]})"; return 0; }
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo="sudo"; else
      say "missing system packages: ${missing[*]}"
      say "install them with: sudo apt-get install -y ${missing[*]}"
      exit 1
    fi
  fi
  say "installing system packages: ${missing[*]}"
  $sudo apt-get update -qq || true
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}

ensure_venv() {
  "$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' \
    || { say "Python 3.10 or newer is needed (found $("$PYTHON" --version 2>&1))"; exit 1; }
  [ -x "$VENV/bin/python" ] || { say "creating $VENV"; "$PYTHON" -m venv "$VENV"; }
  local pip=("$VENV/bin/python" -m pip -q --disable-pip-version-check)
  # Is torch there? find_spec looks for the package without importing it (importing costs ~2 s).
  if ! "$VENV/bin/python" -c 'import importlib.util, sys; sys.exit(0 if importlib.util.find_spec("torch") else 1)' \
      >/dev/null 2>&1; then
    say "installing $TORCH_SPEC (before anything that depends on torch)"
    "${pip[@]}" install "$TORCH_SPEC"
  fi
  local stamp="$VENV/.aigc-installed"
  local want; want=$(sha256sum pyproject.toml | cut -d' ' -f1)
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    say "installing aigc-desktop and its dependencies"
    "${pip[@]}" install -e ".[test]"
    echo "$want" > "$stamp"
  fi
}

case "$MODE" in
  app)
    ensure_system_packages "${QT_LIBS[@]}" "${XCB_LIBS[@]}"
    ensure_venv
    exec "$VENV/bin/aigc-desktop" app "$@"
    ;;
  test)
    ensure_system_packages "${QT_LIBS[@]}"
    ensure_venv
    export QT_QPA_PLATFORM=offscreen
    exec "$VENV/bin/python" -m pytest "$@"
    ;;
  cli)
    ensure_venv
    exec "$VENV/bin/aigc-desktop" "$@"
    ;;
  *)
    say "usage: ./run.sh [app|test|cli] [args...]"
    exit 2
    ;;
esac
