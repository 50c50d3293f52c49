#!/usr/bin/env bash
# Set up latent-explorer on a Debian/Ubuntu machine: system packages, then a virtual
# environment with the pinned Python packages. Idempotent: a second run only checks stamps.
#
#   scripts/setup.sh            system packages (when root or sudo works) + .venv
#   SKIP_APT=1 scripts/setup.sh only the virtual environment
#   TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu scripts/setup.sh
#                               take torch from that index (CPU-only wheel: PyPI's Linux wheel
#                               pulls the CUDA libraries; .../whl/cu128 for an NVIDIA GPU)
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}

APT_PACKAGES=(
  # sound output and the data builders
  libportaudio2 libsndfile1 fluidsynth libfluidsynth3 fluid-soundfont-gm espeak-ng hydrogen-drumkits
  # Qt's xcb platform plugin (a real window), and Xvfb for screenshots without a display
  libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-randr0 libxcb-render-util0
  libxcb-render0 libxcb-shape0 libxcb-shm0 libxcb-sync1 libxcb-xfixes0 libxcb-xkb1 libxcb-util1
  libxcb-glx0 libxcb1 libx11-xcb1 libxkbcommon0 libxkbcommon-x11-0 libegl1 libgl1 libglib2.0-0
  libfontconfig1 libdbus-1-3 xvfb
)

install_system_packages() {
  if [ "${SKIP_APT:-0}" = 1 ] || ! command -v apt-get >/dev/null; then
    return
  fi
  local missing=()
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return
  local sudo=""
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null; then sudo="sudo"; else
      echo "setup: missing system packages (${missing[*]}); install them as root" >&2; return
    fi
  fi
  echo "setup: installing system packages: ${missing[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

install_python_packages() {
  local stamp="$VENV/.latent-explorer-stamp"
  local want
  want=$(cat pyproject.toml requirements/constraints.txt | sha256sum | cut -c1-16)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$VENV/bin/python" ]; then
    return
  fi
  [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip >&2
  # torch first and pinned: an open range would pull a multi-GB CUDA build.
  local torch_index=()
  [ -n "${TORCH_INDEX_URL:-}" ] && torch_index=(--index-url "$TORCH_INDEX_URL")
  "$VENV/bin/python" -m pip install -q -c requirements/constraints.txt "${torch_index[@]}" "torch==2.13.0" >&2
  "$VENV/bin/python" -m pip install -q -c requirements/constraints.txt -e ".[dev]" >&2
  echo "$want" > "$stamp"
}

install_system_packages
install_python_packages
echo "setup: ready ($VENV)" >&2
