"""Intensity windows and normalisation (methods.md section 4, after Text3DSAM).

The same functions serve the display (contrast limits) and the models (8-bit-range
input), so what the user sees is what the model is fed.

- CT: a window preset (width / level) is mapped linearly onto [0, 255].
- Anything else: clip to the 0.5th-99.5th percentiles, then rescale to [0, 255];
  data already inside [0, 255] is left as it is.
- NaN and infinite voxels are ignored when statistics are computed and become 0 in
  the normalised output.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "WINDOW_PRESETS",
    "Window",
    "apply_window",
    "challenge_uint8",
    "contrast_limits",
    "no_contrast_reason",
    "finite_percentiles",
    "finite_range",
    "normalize_for_model",
    "percentile_normalize",
]

# Above this many voxels, percentiles are estimated on a regular subsample: exact to
# well within one grey level, and a 512x512x600 CT costs milliseconds instead of seconds.
_PERCENTILE_SAMPLE = 4_000_000


@dataclass(frozen=True)
class Window:
    """A CT display window in Hounsfield units."""

    width: float
    level: float

    def __post_init__(self) -> None:
        if not np.isfinite(self.width) or self.width <= 0:
            raise ValueError(f"window width must be a positive number, got {self.width}")
        if not np.isfinite(self.level):
            raise ValueError(f"window level must be a finite number, got {self.level}")

    @property
    def limits(self) -> tuple[float, float]:
        """(low, high) HU of the window."""
        return (self.level - self.width / 2, self.level + self.width / 2)


WINDOW_PRESETS: dict[str, Window] = {
    "soft_tissue": Window(width=400, level=40),
    "lung": Window(width=1500, level=-160),
    "brain": Window(width=80, level=40),
    "bone": Window(width=1800, level=400),
}


def _resolve_window(window: str | Window) -> Window:
    if isinstance(window, Window):
        return window
    try:
        return WINDOW_PRESETS[window]
    except KeyError:
        known = ", ".join(WINDOW_PRESETS)
        raise ValueError(f"unknown CT window preset {window!r}; known presets: {known}") from None


def _rescale(data: np.ndarray, low: float, high: float) -> np.ndarray:
    """Map [low, high] linearly onto [0, 255] as float32; NaN becomes 0."""
    out = np.asarray(data, dtype=np.float32)
    scale = np.float32(255.0 / (high - low)) if high > low else np.float32(0.0)
    out = (out - np.float32(low)) * scale
    np.clip(out, 0.0, 255.0, out=out)
    # np.clip keeps NaN; the model must never see one.
    np.nan_to_num(out, copy=False, nan=0.0)
    return out


def apply_window(data: np.ndarray, window: str | Window = "soft_tissue") -> np.ndarray:
    """Window CT data (HU) and rescale it linearly to float32 in [0, 255].

    Examples
    --------
    >>> apply_window(np.array([-160.0, 40.0, 240.0]), "soft_tissue").tolist()
    [0.0, 127.5, 255.0]
    """
    low, high = _resolve_window(window).limits
    return _rescale(data, low, high)


def finite_percentiles(data: np.ndarray, q: tuple[float, float]) -> tuple[float, float]:
    """Percentiles of the finite voxels (NaN and inf ignored); (0, 0) if there are none."""
    flat = np.asarray(data).reshape(-1)
    if flat.size > _PERCENTILE_SAMPLE:
        flat = flat[:: flat.size // _PERCENTILE_SAMPLE + 1]
    if flat.dtype.kind == "f":
        flat = flat[np.isfinite(flat)]
    if flat.size == 0:
        return (0.0, 0.0)
    low, high = np.percentile(flat, q)
    return (float(low), float(high))


def finite_range(data: np.ndarray) -> tuple[float, float]:
    """(min, max) of the finite voxels; (0, 0) if there are none."""
    arr = np.asarray(data)
    if arr.size == 0:
        return (0.0, 0.0)
    if arr.dtype.kind != "f":
        return (float(arr.min()), float(arr.max()))
    finite = np.isfinite(arr)
    if not finite.any():
        return (0.0, 0.0)
    if finite.all():
        return (float(arr.min()), float(arr.max()))
    return (float(arr[finite].min()), float(arr[finite].max()))


def percentile_normalize(data: np.ndarray, lower: float = 0.5, upper: float = 99.5) -> np.ndarray:
    """Clip to the [lower, upper] percentiles and rescale to float32 in [0, 255].

    Data whose finite values already lie inside [0, 255] is returned unchanged (as
    float32), so 8-bit images are not stretched.
    """
    if not 0 <= lower < upper <= 100:
        raise ValueError(
            f"percentiles must satisfy 0 <= lower < upper <= 100, got {lower}, {upper}"
        )
    lo_all, hi_all = finite_range(data)
    if lo_all >= 0 and hi_all <= 255:
        return _rescale(data, 0.0, 255.0)
    low, high = finite_percentiles(data, (lower, upper))
    return _rescale(data, low, high)


def normalize_for_model(
    data: np.ndarray, modality: str, window: str | Window = "soft_tissue"
) -> np.ndarray:
    """The model input for a volume: CT windowed, anything else percentile-normalised."""
    if modality == "CT":
        return apply_window(data, window)
    return percentile_normalize(data)


def _minmax_uint8(data: np.ndarray, low: float, high: float, chunk: int = 16) -> np.ndarray:
    """``np.uint8((clip(x, low, high) - low) / (high - low) * 255)`` in float64, a few slices at a
    time."""
    out = np.zeros(data.shape, dtype=np.uint8)
    if not high > low:
        return out
    for start in range(0, data.shape[0], chunk):
        part = np.clip(np.asarray(data[start : start + chunk], dtype=np.float64), low, high)
        part = (part - low) / (high - low) * 255.0
        out[start : start + chunk] = np.nan_to_num(part, nan=0.0).astype(
            np.uint8
        )  # truncation, as np.uint8()
    return out


def challenge_uint8(
    data: np.ndarray, modality: str, window: str | Window = "soft_tissue"
) -> np.ndarray:
    """A (z, y, x) volume as the uint8 volume the MedSAM / LiteMedSAM challenge recipe reads.

    - CT (``pre_CT_MR.py``): clip to the window, min-max of the clipped volume to 0-255,
      truncated to uint8.
    - MR (``pre_CT_MR.py``): clip to the 0.5th-99.5th percentiles of the positive voxels,
      min-max to 0-255, zero voxels stay 0, truncated.
    - Anything else (``pre_grey_rgb.py``, microscopy): a volume whose maximum exceeds 255
      is min-max scaled to 0-255 and truncated; an 8-bit-range one is kept as it is.

    NaN voxels become 0. Statistics are taken over the whole volume, as the scripts do.
    """
    data = np.asarray(data)
    if data.ndim != 3:
        raise ValueError(f"expected a (z, y, x) volume, got shape {data.shape}")
    lo_all, hi_all = finite_range(data)
    if modality == "CT":
        low, high = _resolve_window(window).limits
        # min and max of the clipped volume: the clipped extremes of the data
        return _minmax_uint8(
            data, float(np.clip(lo_all, low, high)), float(np.clip(hi_all, low, high))
        )
    if modality == "MR":
        flat = np.asarray(data).reshape(-1)
        positive = (
            flat[np.isfinite(flat) & (flat > 0)] if flat.dtype.kind == "f" else flat[flat > 0]
        )
        if positive.size == 0:
            return np.zeros(data.shape, dtype=np.uint8)
        low, high = (float(v) for v in np.percentile(positive, (0.5, 99.5)))
        out = _minmax_uint8(
            data, float(np.clip(lo_all, low, high)), float(np.clip(hi_all, low, high))
        )
        out[data == 0] = 0
        return out
    if hi_all > 255.0 or lo_all < 0:
        return _minmax_uint8(data, lo_all, hi_all)
    return np.nan_to_num(data, nan=0.0).astype(np.uint8)


def no_contrast_reason(data: np.ndarray) -> str:
    """Why a volume holds nothing to segment ("all voxels are NaN", "every voxel is 7"), or
    ``""``."""
    arr = np.asarray(data)
    if arr.size == 0:
        return "the volume is empty"
    low, high = finite_range(arr)
    if low != high:
        return ""
    # (0, 0) is also what finite_range gives when nothing is finite: only then look again
    if arr.dtype.kind == "f" and not np.isfinite(arr).any():
        return "all voxels are NaN or infinite"
    return f"every voxel is {low:g}"


def contrast_limits(
    data: np.ndarray, modality: str, window: str | Window = "soft_tissue"
) -> tuple[float, float]:
    """Display contrast limits matching :func:`normalize_for_model`."""
    if modality == "CT":
        return _resolve_window(window).limits
    low, high = finite_percentiles(data, (0.5, 99.5))
    if high <= low:
        high = low + 1.0
    return (low, high)
