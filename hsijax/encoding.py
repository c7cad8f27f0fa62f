"""Whole-scene encoding to a .npy of (H, W, c) codes, in row blocks so memory does not grow.

The cube is read, normalised, padded and encoded a block of rows at a time (the jitted encoder
compiles once per bucket), and the codes go straight into a memory-mapped .npy written beside the
target and renamed when complete.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from hsijax.inference import encode
from hsijax.model import Model
from hsijax.scenes import Scene
from hsijax.spectral import fit_normalization

BLOCK_PIXELS = 16384


def encode_scene(model: Model, scene: Scene, output, progress: bool = True) -> Path:
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    height, width, _ = scene.cube.shape
    norm = fit_normalization(scene.cube, scene.name)
    rows_per_block = max(1, BLOCK_PIXELS // width)
    handle, temporary = tempfile.mkstemp(dir=output.parent, prefix=f".{output.name}.", suffix=".npy")
    os.close(handle)
    try:
        codes = np.lib.format.open_memmap(temporary, mode="w+", dtype=np.float32,
                                          shape=(height, width, model.config.code_width))
        for start in tqdm(range(0, height, rows_per_block), desc="encode", unit="block", disable=not progress):
            block = norm.apply(np.asarray(scene.cube[start:start + rows_per_block], np.float32))
            codes[start:start + rows_per_block] = encode(model, block, scene.wavelengths_nm)
        codes.flush()
        del codes
        os.replace(temporary, output)
    finally:
        Path(temporary).unlink(missing_ok=True)
    return output
