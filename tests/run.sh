#!/usr/bin/env bash
# Install everything the test suite needs on a fresh Debian 12 (or similar) machine with Python
# 3.11, then run it all. OS packages come from Debian (apt-get, as root or with sudo); Python
# packages from PyPI into .venv-test; the converter test fetches the pinned nsfwjs package from
# the npm registry. With CI=true every skip is a failure (tests/conftest.py): a test that cannot
# run there means an install step is missing here.
set -euo pipefail
cd "$(dirname "$0")/.."

# Python 3.11 exactly: tflite-runtime 2.14 (a required backend here) has wheels for <= 3.11 only,
# and the committed models were converted under 3.11. A plain python3 is taken only if it is 3.11.
is_311() { "$1" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; }
PYTHON=${PYTHON:-python3.11}
if ! command -v "$PYTHON" >/dev/null || ! is_311 "$PYTHON"; then
  if command -v python3 >/dev/null && is_311 python3; then
    PYTHON=python3
  else
    echo "tests/run.sh: needs Python 3.11 (python3.11 on PATH, or PYTHON=/path/to/python3.11)" >&2
    exit 2
  fi
fi

# What each tool is for: node/npm the converter's reference (nsfwjs under Node); ffmpeg/ffprobe
# the independent check of video outputs; Xvfb a real X server for screen, overlay and tray;
# x11-utils the X server's window list; trayer a real system tray; xdotool real clicks and keys;
# systemd-analyze and desktop-file-validate check the installers' unit and desktop entry;
# chromium renders the report page.
need_os=()
command -v node >/dev/null || need_os+=(nodejs)
command -v npm >/dev/null || need_os+=(npm)
command -v ffprobe >/dev/null || need_os+=(ffmpeg)
command -v Xvfb >/dev/null || need_os+=(xvfb)
command -v xwininfo >/dev/null || need_os+=(x11-utils)
command -v trayer >/dev/null || need_os+=(trayer)
command -v xdotool >/dev/null || need_os+=(xdotool)
command -v systemd-analyze >/dev/null || need_os+=(systemd)
command -v desktop-file-validate >/dev/null || need_os+=(desktop-file-utils)
command -v dbus-daemon >/dev/null || need_os+=(dbus)  # a real session bus for desktop notifications
command -v chromium >/dev/null || need_os+=(chromium)  # the report page, opened in a real browser (Playwright drives it)
command -v strace >/dev/null || need_os+=(strace)  # the privacy test traces every socket the agent opens
"$PYTHON" -c "import tkinter" 2>/dev/null || need_os+=(python3-tk)  # the overlay and tray windows
# A venv left by another Python (or a half-made one) is made again rather than trusted; Debian's
# system Python has no ensurepip for that until python3-venv is installed (pyenv builds do).
if [ -d .venv-test ] && ! is_311 .venv-test/bin/python; then
  echo "tests/run.sh: .venv-test is not a working Python 3.11 environment; making it again"
  rm -rf .venv-test
fi
[ -x .venv-test/bin/python ] || "$PYTHON" -c "import ensurepip" 2>/dev/null || need_os+=(python3-venv)
if [ ${#need_os[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "tests/run.sh: installing OS packages: ${need_os[*]}"
  $SUDO apt-get update -qq  # a fresh image has no package lists at all
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_os[@]}" >/dev/null
fi

[ -x .venv-test/bin/python ] || "$PYTHON" -m venv .venv-test
.venv-test/bin/python -m pip install -q --upgrade pip
# Every backend in one environment: LiteRT (default), tflite-runtime, and TensorFlow (converter);
# Ray for `veil scan --cluster` (its tests start a two-node cluster here).
# Installing every time brings a reused venv up to date with pyproject.toml.
.venv-test/bin/python -m pip install -q -e ".[test,convert,tflite-runtime,cluster]"

# Lint and types first (configured in pyproject.toml): a minute, and it fails before the suite's ten.
.venv-test/bin/ruff check .
.venv-test/bin/mypy

export VEIL_REQUIRE_BACKENDS=litert,tflite_runtime,tensorflow
export VEIL_REQUIRE_TOOLS=ffmpeg,ffprobe,xvfb,xwininfo,trayer,xdotool,node,npm,systemd-analyze,desktop-file-validate,chromium,dbus-daemon
started=$(date +%s)
status=0
# -rfEs: failures, errors and the reason for every skip in the summary (under CI=true a skip fails anyway).
.venv-test/bin/python -m pytest -q -rfEs -p no:cacheprovider "$@" || status=$?
echo "tests/run.sh: suite wall time $(( $(date +%s) - started )) s on $(nproc) cores"
exit "$status"
