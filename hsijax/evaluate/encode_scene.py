"""Whole-scene encoding to a .npy of (H, W, c) codes, in row blocks so memory does not grow.

The cube is read, normalised, padded and encoded a block of rows at a time (the jitted encoder
compiles once per bucket), and the codes are appended to a .npy written beside the target and
renamed when complete. Peak memory is the process plus one block, whatever the scene's size.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tqdm.auto import tqdm

from hsijax.data.loading import SceneInput
from hsijax.data.scene import Scene
from hsijax.files import check_output, release_pages, write_npy_atomic
from hsijax.models.autoencoder import Model
from hsijax.models.inference import encode
from hsijax.models.saved_model import load_model
from hsijax.spectral import check_band_count, fit_normalization

BLOCK_PIXELS = 16384


def encode_scene(model: Model, scene: Scene, output, progress: bool = True) -> Path:
    """Write the (H, W, c) float32 codes of ``scene`` to the .npy ``output``; returns its path.

    Neither the scene nor the codes are ever whole in memory: the cube is read (and, when it is
    memory-mapped, released) a block of rows at a time, and each block's codes are appended to
    the file, which is renamed into place only when complete.
    """
    output = check_output(output, "file")
    output.parent.mkdir(parents=True, exist_ok=True)
    height, width, _ = scene.cube.shape
    norm = fit_normalization(scene.cube, scene.name)
    rows_per_block = max(1, BLOCK_PIXELS // width)

    def blocks():
        with tqdm(total=height, desc="encode", unit="row", disable=not progress) as bar:
            for start in range(0, height, rows_per_block):
                rows = scene.cube[start:start + rows_per_block]
                block = norm.apply(rows)
                release_pages(rows)
                yield encode(model, block, scene.wavelengths_nm)
                bar.update(len(block))

    return write_npy_atomic(output, (height, width, model.config.code_width), "<f4", blocks())


def encode_to(checkpoint, scene_of: Callable[[], SceneInput], output, progress: bool = True):
    """`hsijax encode`: (path, codes' shape) of the scene ``scene_of()`` gives, encoded by the model of
    ``checkpoint`` into the .npy ``output``. The output path, the model and the scene's band count
    are checked before any work."""
    check_output(output, "file")
    model = load_model(checkpoint)
    scene, source, _ = scene_of()
    check_band_count(scene.cube.shape[-1], model.config.buckets, source)
    path = encode_scene(model, scene, output, progress=progress)
    return path, (*scene.cube.shape[:2], model.config.code_width)
