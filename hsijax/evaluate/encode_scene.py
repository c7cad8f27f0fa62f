"""Whole-scene encoding to a .npy of (H, W, c) codes, in row blocks so memory does not grow, and
batch encoding of an archive of scene files across processes.

The cube is read, normalised, padded and encoded a block of rows at a time (the jitted encoder
compiles once per bucket), and the codes are appended to a .npy written beside the target and
renamed when complete. Peak memory is the process plus one block, whatever the scene's size.

An archive (`encode_archive`): many files, or folders of them, each encoded to ``OUT/STEM.npy``.
Process ``i`` of ``n`` takes every file whose place in the sorted list is ``i`` modulo ``n``; an
output already there is complete (outputs appear whole or not at all) and is skipped, so a
preempted archive job resumes by running the same command again.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

from tqdm.auto import tqdm

from hsijax.data.loading import ImportOptions, SceneInput, scene_input
from hsijax.data.readers import CUBE_SUFFIXES
from hsijax.data.scene import Scene
from hsijax.errors import HsijaxError
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


def archive_files(inputs: list[Path]) -> list[Path]:
    """The scene files of ``inputs``: files as given, and the files of each folder whose suffix is a
    cube's (an ENVI scene by its .hdr), sorted. Two with the same stem would write one output: refused."""
    files = []
    for path in map(Path, inputs):
        if path.is_dir():
            files += sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in CUBE_SUFFIXES)
        else:
            files.append(path)
    stems = {}
    for path in files:
        if path.stem in stems:
            raise HsijaxError(f"{path}: its output {path.stem}.npy would also be that of {stems[path.stem]}")
        stems[path.stem] = path
    if not files:
        raise HsijaxError(f"{', '.join(map(str, inputs))}: no scene files ({', '.join(CUBE_SUFFIXES)})")
    return sorted(files)


def encode_archive(checkpoint, inputs: list[Path], options: ImportOptions, output_dir: Path,
                   process_id: int = 0, num_processes: int = 1, progress: bool = True) -> dict[str, list[Path]]:
    """Encode this process's share of the scene files of ``inputs`` (read with ``options``, their
    ``file`` replaced) into ``output_dir/STEM.npy``; {"encoded": [...], "skipped": [...]}."""
    if not 0 <= process_id < num_processes:
        raise HsijaxError(f"--process-id {process_id}: expected 0 to {num_processes - 1} for --num-processes "
                          f"{num_processes}")
    output_dir = check_output(output_dir, "directory")
    files = archive_files(inputs)[process_id::num_processes]
    model = load_model(checkpoint)
    output_dir.mkdir(parents=True, exist_ok=True)
    done = {"encoded": [], "skipped": []}
    for path in files:
        target = output_dir / f"{path.stem}.npy"
        for leftover in output_dir.glob(f".{target.name}.*.tmp"):  # a write of this process's, killed
            leftover.unlink(missing_ok=True)
        if target.is_file():
            done["skipped"].append(target)
            continue
        scene = scene_input(None, dataclasses.replace(options, file=path)).scene
        check_band_count(scene.cube.shape[-1], model.config.buckets, str(path))
        done["encoded"].append(encode_scene(model, scene, target, progress=progress))
    return done
