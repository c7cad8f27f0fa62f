"""PNG figures of reconstructions and classifications (matplotlib, no display needed).

Every figure is saved to a temporary file and renamed into place, so a figure appears whole or not
at all. matplotlib is imported on the first figure (`pyplot`): a command that draws none does not
pay its import.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from hsijax.files import atomic_output


@functools.cache
def pyplot():
    """matplotlib's pyplot on the Agg backend (files only, no display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot

    return matplotlib.pyplot

RGB_NM = (640.0, 550.0, 460.0)


def save_atomic(figure, path: Path) -> Path:
    try:
        with atomic_output(path, suffix=".png") as temporary:
            figure.savefig(temporary, dpi=120)
    finally:
        pyplot().close(figure)
    return Path(path)


def rgb_bands(bands: int, wavelengths_nm=None) -> list[int]:
    """Bands nearest 640/550/460 nm when the wavelengths are known, else at 3/4, 1/2, 1/4 of the range."""
    if wavelengths_nm is not None and min(wavelengths_nm) < 500 < max(wavelengths_nm):
        return [int(np.abs(np.asarray(wavelengths_nm) - target).argmin()) for target in RGB_NM]
    return [int(bands * f) for f in (0.75, 0.5, 0.25)]


def false_colour(cube: np.ndarray, bands: list[int], limits: tuple[np.ndarray, np.ndarray] | None = None):
    """(H, W, 3) in [0, 1]: the chosen bands stretched between their 2nd and 98th percentiles."""
    image = cube[..., bands].astype(np.float64)
    low, high = limits if limits is not None else (np.percentile(image, 2, axis=(0, 1)),
                                                     np.percentile(image, 98, axis=(0, 1)))
    return np.clip((image - low) / np.maximum(high - low, 1e-12), 0, 1), (low, high)


def reconstruction_figures(original: np.ndarray, reconstruction: np.ndarray, per_band_psnr: np.ndarray,
                           wavelengths_nm, title: str, out: Path, seed: int = 0) -> list[Path]:
    """False colour beside reconstruction, per-band PSNR curve, a few spectra: three PNGs."""
    bands = rgb_bands(original.shape[-1], wavelengths_nm)
    left, limits = false_colour(original, bands)
    right, _ = false_colour(reconstruction, bands, limits)  # the same stretch for a fair comparison
    figure, axes = pyplot().subplots(1, 2, figsize=(8, 4.2))
    for axis, image, name in zip(axes, (left, right), ("original", "reconstruction")):
        axis.imshow(image)
        axis.set_title(f"{title}: {name}")
        axis.axis("off")
    paths = [save_atomic(figure, out / "false_colour.png")]

    x = np.asarray(wavelengths_nm) if wavelengths_nm is not None else np.arange(1, len(per_band_psnr) + 1)
    figure, axis = pyplot().subplots(figsize=(7, 3.5))
    axis.plot(x, per_band_psnr, ".-", markersize=3)
    axis.set_xlabel("wavelength (nm)" if wavelengths_nm is not None else "band")
    axis.set_ylabel("PSNR (dB)")
    axis.set_title(f"{title}: per-band PSNR, mean {per_band_psnr.mean():.2f} dB")
    axis.grid(alpha=0.3)
    paths.append(save_atomic(figure, out / "per_band_psnr.png"))

    pixels = np.random.default_rng(seed).choice(original.shape[0] * original.shape[1], 4, replace=False)
    figure, axes = pyplot().subplots(1, 4, figsize=(13, 3), sharey=True)
    for axis, pixel in zip(axes, pixels):
        row, col = divmod(int(pixel), original.shape[1])
        axis.plot(x, original[row, col], label="original")
        axis.plot(x, reconstruction[row, col], "--", label="reconstruction")
        axis.set_title(f"pixel ({row}, {col})")
    axes[0].legend()
    figure.tight_layout()
    paths.append(save_atomic(figure, out / "spectra.png"))
    return paths


def classification_maps(maps: dict[str, np.ndarray], labels: np.ndarray, shape: tuple[int, int],
                        out: Path) -> Path:
    """The ground truth beside each method's predictions, on the labelled pixels."""
    panels = {"ground truth": labels, **maps}
    figure, axes = pyplot().subplots(1, len(panels), figsize=(3.2 * len(panels), 3.4), squeeze=False)
    for axis, (title, values) in zip(axes[0], panels.items()):
        image = np.where(labels > 0, values, 0).reshape(shape)
        axis.imshow(np.ma.masked_equal(image, 0), cmap="tab20", interpolation="nearest",
                    vmin=1, vmax=max(int(labels.max()), 1))
        axis.set_title(title)
        axis.axis("off")
    figure.tight_layout()
    return save_atomic(figure, out / "classification_maps.png")
