#!/usr/bin/env bash
# System packages napari needs on Debian or Ubuntu: Qt's xcb libraries, Mesa OpenGL,
# Xvfb (a virtual display, for the tests and for machines without a screen), and
# python3-venv where Python's ensurepip is missing (Debian splits it out).
# Runs as root or through sudo, without prompts; elsewhere it says what to install.
set -euo pipefail

packages=(
  xvfb xauth libgl1-mesa-dri libegl1 libgl1 libglib2.0-0 libfontconfig1 libxkbcommon-x11-0
  libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-render-util0
  libxcb-xinerama0 libxcb-shape0 libxcb-randr0 libxcb-xfixes0 libxcb-xkb1 libdbus-1-3
)

if ! command -v apt-get >/dev/null; then
  echo "system_packages.sh: no apt-get here; install Qt's xcb libraries, OpenGL (Mesa) and Xvfb" \
       "with your system's package manager (see README.md), then run the next step." >&2
  exit 0
fi
if ! python3 -c "import ensurepip" 2>/dev/null; then
  packages+=(python3-venv)
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if ! command -v sudo >/dev/null; then
    echo "system_packages.sh: run this as root, or install sudo: it installs system packages." >&2
    exit 1
  fi
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
echo "system_packages.sh: ${#packages[@]} system packages installed or already present."
