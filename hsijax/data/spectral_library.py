"""Laboratory spectra as training data: the USGS Spectral Library Version 7 (splib07a), ASD spectra.

Scenes are few (ten or so here) and each holds a handful of materials; the library holds 1,195
measured spectra of minerals, vegetation, soils, man-made and organic materials at 1 nm over
350-2500 nm. Scene pixels are mixtures of materials, so random mixtures of library spectra widen
what a shared code is fitted on. Measured with the shared wavelength-grid PCA (`hsijax leave-out`,
docs/leave_out): adding the library to the pretraining scenes raises its MPSNR on the validation
scenes (two AVIRIS scenes) by 2-8 dB at every width, but not on the left-out sensors (40.67 vs
40.89 dB at c = 16).

Kokaly et al. 2017, USGS Spectral Library Version 7, USGS Data Series 1035, doi:10.3133/ds1035
(no accuracy guarantee; here spectra with deleted channels are dropped, the rest subsampled to every
``STEP_NM``-th channel, mixed at random and scaled to [0, 1] together).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hsijax.errors import HsijaxError

DELETED = -1e30  # the library marks deleted channels with -1.23e34
CHANNELS = 2151
STEP_NM = 5  # every 5th 1-nm channel: the shared grid's spacing


def read_usgs_library(directory) -> tuple[np.ndarray, np.ndarray]:
    """(spectra (n, b), band centres (b,) nm) of every complete ASD spectrum under ``directory``
    (the splib07a ASCII release: ``Chapter*/splib07a_*_ASD*_AREF.txt`` and the ASD wavelength file),
    at every ``STEP_NM``-th channel."""
    directory = Path(directory).expanduser()
    wavelength_files = sorted(directory.glob("splib07a_Wavelengths_ASD*.txt"))
    if not wavelength_files:
        raise HsijaxError(f"{directory}: no splib07a_Wavelengths_ASD*.txt (the USGS splib07a ASCII release)")
    wavelengths = np.loadtxt(wavelength_files[0], skiprows=1) * 1000.0  # micrometres -> nm
    spectra = []
    for path in sorted(directory.glob("Chapter*/splib07a_*_ASD*_AREF.txt")):
        values = np.loadtxt(path, skiprows=1)
        if len(values) == CHANNELS and (values > DELETED).all():
            spectra.append(values)
    if not spectra:
        raise HsijaxError(f"{directory}: no complete ASD spectrum (Chapter*/splib07a_*_ASD*_AREF.txt)")
    return np.asarray(spectra)[:, ::STEP_NM], wavelengths[::STEP_NM]


def library_mixtures(spectra: np.ndarray, count: int, endmembers: int = 3, seed: int = 0) -> np.ndarray:
    """The library's spectra and ``count`` random mixtures of ``endmembers`` of them (abundances
    drawn uniformly from the simplex), scaled to [0, 1] by their common min-max, as a scene is."""
    rng = np.random.default_rng(seed)
    chosen = rng.integers(0, len(spectra), (count, endmembers))
    abundances = rng.dirichlet(np.ones(endmembers), count)
    mixed = np.concatenate([spectra, (spectra[chosen] * abundances[..., None]).sum(axis=1)])
    low, high = mixed.min(), mixed.max()
    return ((mixed - low) / (high - low)).astype(np.float32)
