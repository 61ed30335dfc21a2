#!/usr/bin/env bash
# PyTorch for the virtual environment given as $1, before the plugin is installed:
# PyPI's Linux wheels of torch (and torchvision) are CUDA builds, about 6.4 GB with their
# nvidia libraries. Without an NVIDIA GPU, the CPU builds (about 0.3 GB) come from
# PyTorch's own index; pip then keeps them when it installs the plugin.
# Nothing happens where a GPU is present, torch is already installed, or on macOS/Windows
# (their PyPI wheels are already CPU builds). NAPARI_TEXTSEG_TORCH=cpu|cuda overrides the guess.
# If PyTorch's index cannot be reached (offline, a mirror-only network), it says so in
# one line and the plugin's install takes torch from the usual index.
set -euo pipefail

venv="${1:?usage: install_torch.sh VENV}"
pip="$venv/bin/pip"
python="$venv/bin/python"
index="${NAPARI_TEXTSEG_TORCH_INDEX:-https://download.pytorch.org/whl/cpu}"

want="${NAPARI_TEXTSEG_TORCH:-auto}"
if [ "$want" = auto ]; then
  if [ "$(uname -s)" != Linux ] || command -v nvidia-smi >/dev/null 2>&1; then
    want=default
  else
    want=cpu
  fi
fi
case "$want" in
  cpu) ;;
  cuda|default) echo "install_torch.sh: PyTorch from the usual index (GPU build where there is one)."; exit 0 ;;
  *) echo "install_torch.sh: NAPARI_TEXTSEG_TORCH must be cpu or cuda, not '$want'" >&2; exit 2 ;;
esac

if "$python" -c "import torch" >/dev/null 2>&1; then
  echo "install_torch.sh: torch is already installed here; keeping it."
  exit 0
fi
if "$pip" install --quiet --timeout 15 --retries 1 --index-url "$index" torch torchvision; then
  build=$("$python" -c "import torch; print(torch.__version__, 'CUDA ' + torch.version.cuda if torch.version.cuda else 'CPU')")
  echo "install_torch.sh: no NVIDIA GPU found; PyTorch $build installed."
else
  echo "install_torch.sh: PyTorch's CPU index ($index) could not be used; the plugin's install" \
       "takes torch from the usual index (a CUDA build on Linux)." >&2
fi
