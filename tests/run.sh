#!/usr/bin/env bash
# Install everything the test suite needs on a fresh machine with Python 3.11, then run it all.
# OS packages come from Debian (apt-get, as root or with sudo); Python packages from PyPI into
# .venv-test; the converter test fetches the pinned nsfwjs package from the npm registry.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3

need_os=()
command -v node >/dev/null || need_os+=(nodejs)
command -v npm >/dev/null || need_os+=(npm)
command -v ffprobe >/dev/null || need_os+=(ffmpeg)   # the independent check of video outputs
command -v Xvfb >/dev/null || need_os+=(xvfb)         # a real X server for the screen and overlay tests
command -v xwininfo >/dev/null || need_os+=(x11-utils) # the X server's window list, as the tests read it
command -v trayer >/dev/null || need_os+=(trayer)     # a real system tray for the tray icon to dock into
command -v xdotool >/dev/null || need_os+=(xdotool)   # real clicks and key presses on the tray's menu and PIN dialog
"$PYTHON" -c "import tkinter" 2>/dev/null || need_os+=(python3-tk)  # the overlay window (Debian's Python)
if [ ${#need_os[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "tests/run.sh: installing OS packages: ${need_os[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_os[@]}" >/dev/null
fi

# The installer checks use the standard validators when they can be had; their tests skip without.
optional_os=()
command -v systemd-analyze >/dev/null || optional_os+=(systemd)
command -v desktop-file-validate >/dev/null || optional_os+=(desktop-file-utils)
if [ ${#optional_os[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  (DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${optional_os[@]}" >/dev/null 2>&1) \
    || echo "tests/run.sh: could not install ${optional_os[*]}; the installer validation tests will skip"
fi

if [ ! -x .venv-test/bin/python ]; then
  "$PYTHON" -m venv .venv-test
fi
.venv-test/bin/python -m pip install -q --upgrade pip
# Every backend in one environment: LiteRT (default), tflite-runtime, and TensorFlow (converter).
.venv-test/bin/python -m pip install -q -e ".[test,convert,tflite-runtime]"

export VEIL_REQUIRE_BACKENDS=litert,tflite_runtime,tensorflow
export VEIL_REQUIRE_TOOLS=ffmpeg,ffprobe,xvfb,trayer,xdotool
exec .venv-test/bin/python -m pytest -q -p no:cacheprovider "$@"
