"""`hsijax encode`: whole scenes, or an archive of scene files, to (H, W, c) codes -- a .npy, or a
c-band float32 GeoTIFF that keeps the input's CRS, transform and nodata -- in row blocks, so memory
does not grow with the scene.

The cube is read a block of rows at a time (a .npy memory-mapped, ENVI and GeoTIFF by windows,
`hsijax.data.rasters`), its raw values normalised inside the model's folded matrix (the linear
network: `hsijax.models.inference.encode` with ``normalization``), and each block's codes appended
to the output, which appears whole or not at all.

One normalisation for one scene (`NORMALIZATIONS`): the same ground must get the same code, so the
normalisation is an input, recorded with every output:
- ``scene``: fitted on each scene itself (its global min-max, nodata pixels left out) -- the
  default for one scene or a dataset (whose stored normalisation is that fit);
- ``archive``: one fit over every file of an archive (tiles or crops of one flight line), cached
  in ``OUT/normalization.json`` so a resumed or parallel run uses the same one;
- ``dataset:NAME``: a prepared dataset's stored normalisation;
- ``FILE.json``: a saved one (``{"offset": ..., "scale": ...}``, or the record of an earlier
  encode, which holds it).
An archive of several files must say which (tiles want ``archive``, unrelated scenes ``scene``):
hsijax does not guess.

What an output records (``STEM.json`` beside a .npy, tags in a GeoTIFF): the model, the hsijax
version, the code width, the normalisation and where it came from, the band centres used, the
input and its nodata value. Codes of nodata pixels (every band at the nodata value) are NaN.

An archive (`encode_archive`): many files, or folders of them, each encoded to ``OUT/STEM.npy`` or
``OUT/STEM.tif``. Process ``i`` of ``n`` takes every file whose place in the sorted list is ``i``
modulo ``n``; an output already there is complete (outputs appear whole or not at all) and is
skipped, so a preempted archive job resumes by running the same command again.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from hsijax.data.loading import ImportOptions, SceneInput, ensure_scene, scene_input
from hsijax.data.rasters import write_geotiff
from hsijax.data.readers import CUBE_SUFFIXES
from hsijax.data.scene import Scene
from hsijax.data.storage import load_dataset
from hsijax.errors import HsijaxError
from hsijax.files import check_output, release_pages, write_json_atomic, write_npy_atomic
from hsijax.models.checkpoints import load_model
from hsijax.models.inference import dispatch_band_first, encode
from hsijax.models.model import Model
from hsijax.spectral import Normalization, fit_normalization, nodata_pixels

BLOCK_PIXELS = 65536  # pixels per block of rows read, encoded and written
NORMALIZATIONS = ("scene", "archive", "dataset:NAME", "FILE.json")
FORMATS = {".npy": "npy", ".tif": "tif", ".tiff": "tif"}


@dataclasses.dataclass(frozen=True)
class ChosenNormalization:
    """A normalisation and where it came from, as an output records it."""

    normalization: Normalization
    source: str  # "scene", "archive of N files", "dataset NAME", "FILE"

    def to_dict(self) -> dict:
        return {"offset": self.normalization.offset, "scale": self.normalization.scale, "fitted_on": self.source}


def check_normalization_spec(spec: str | None) -> None:
    """Refuse a ``--normalization`` that is none of `NORMALIZATIONS`, before any work."""
    if spec is None or spec in ("scene", "archive") or spec.startswith("dataset:"):
        return
    if not spec.endswith(".json"):
        raise HsijaxError(f"--normalization {spec}: expected one of {', '.join(NORMALIZATIONS)}")
    if not Path(spec).is_file():
        raise HsijaxError(f"--normalization {spec}: no such file")


def saved_normalization(path) -> ChosenNormalization:
    """A normalisation saved as JSON: ``{"offset", "scale"}``, or an encode record holding one."""
    try:
        record = json.loads(Path(path).read_text())
        fields = record.get("normalization", record)
        normalization = Normalization(float(fields["offset"]), float(fields["scale"]))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise HsijaxError(f"{path}: not a saved normalisation ({{\"offset\": ..., \"scale\": ...}}: {error})") from None
    if not np.isfinite([normalization.offset, normalization.scale]).all() or normalization.scale <= 0:
        raise HsijaxError(f"{path}: the scale must be a positive number, the offset finite")
    return ChosenNormalization(normalization, str(path))


def named_normalization(spec: str, data_dir) -> ChosenNormalization | None:
    """The normalisation a ``dataset:NAME`` or ``FILE.json`` names; None for ``scene`` / ``archive``."""
    check_normalization_spec(spec)
    if spec.startswith("dataset:"):
        name = spec.split(":", 1)[1]
        return ChosenNormalization(load_dataset(ensure_scene(name, data_dir)).normalization, f"dataset {name}")
    if spec.endswith(".json"):
        return saved_normalization(spec)
    return None


def scene_normalization(given: SceneInput) -> ChosenNormalization:
    """The scene's own normalisation: what checking its file measured, or else a fit on it."""
    scene = given.scene
    if given.stats is not None:
        return ChosenNormalization(given.stats.normalization, "scene")
    return ChosenNormalization(fit_normalization(scene.cube, given.source, scene.nodata), "scene")


def archive_normalization(files: list[Path], options: ImportOptions, output_dir: Path) -> ChosenNormalization:
    """One min-max over every file of the archive (nodata pixels left out), computed once and kept in
    ``output_dir/normalization.json`` with the files it covers: a resumed run, or another process,
    uses the same; an archive of other files is refused rather than given another one's."""
    cache = output_dir / "normalization.json"
    names = [str(path) for path in files]
    if cache.is_file():
        record = json.loads(cache.read_text())
        if record.get("files") != names:
            raise HsijaxError(f"{cache}: fitted on other files than this archive's; remove it to fit again")
        return ChosenNormalization(Normalization(record["offset"], record["scale"]), record["fitted_on"])
    lows, highs = [], []
    for path in tqdm(files, desc="normalisation", unit="file", disable=len(files) < 2):
        stats = scene_input(None, dataclasses.replace(options, file=path)).stats  # the file checked: its range
        lows.append(stats.low)
        highs.append(stats.high)
    chosen = ChosenNormalization(Normalization.from_range(float(min(lows)), float(max(highs))),
                                 f"archive of {len(files)} files")
    write_json_atomic(cache, {**chosen.to_dict(), "files": names})
    return chosen


def hsijax_version() -> str:
    """The installed hsijax's version (the package's metadata, which pyproject.toml sets)."""
    try:
        return importlib.metadata.version("hsijax")
    except importlib.metadata.PackageNotFoundError:  # a source tree that was never installed
        return "unknown"


def output_record(model: Model, checkpoint, scene: Scene, chosen: ChosenNormalization, source: str) -> dict:
    """What an output of `encode_scene` records about how it was made."""
    wavelengths = None if scene.wavelengths_nm is None else [float(w) for w in scene.wavelengths_nm]
    return {"hsijax_version": hsijax_version(), "model": str(checkpoint), "network": model.config.kind,
            "description": model.config.description, "code_width": model.config.code_width,
            "normalization": chosen.to_dict(), "wavelengths_nm": wavelengths, "input": source,
            "shape": list(scene.cube.shape[:2]), "nodata": scene.nodata}


def code_blocks(models: tuple[Model, ...], scene: Scene, normalization: Normalization, progress: bool = True):
    """For each block of rows of ``scene`` in turn, the codes (rows, W, c) of every model in ``models``
    (NaN where every band holds the file's nodata), normalised by ``normalization``.

    The cube is read once, a block at a time (and, when it is memory-mapped, released), whatever the
    number of models; the next block is read while XLA encodes this one. A band-sequential file is
    read band-first, as stored, when every model folds per sensor (`dispatch_band_first`)."""
    height, width, _ = scene.cube.shape
    rows_per_block = max(1, BLOCK_PIXELS // width)
    if getattr(scene.cube, "block_rows", 1) > 1:  # read whole blocks of the file: rows GDAL decodes together
        rows_per_block = -(-rows_per_block // scene.cube.block_rows) * scene.cube.block_rows
    band_first = all(model.config.folds_per_sensor for model in models) and hasattr(scene.cube, "band_first")

    def encoded(start: int):
        """(every model's codes, or codes still computing; the block's nodata pixels or None)."""
        if band_first:  # a band-sequential file: its blocks as read, (b, rows, W)
            rows = scene.cube.band_first(start, start + rows_per_block)
            empty = nodata_pixels(rows, scene.nodata, band_axis=0)
            if empty is not None and empty.any():
                rows = np.where(empty, 0, rows)  # encoded, then NaN
            return [dispatch_band_first(m, rows, scene.wavelengths_nm, normalization) for m in models], empty
        rows = scene.cube[start:start + rows_per_block]
        empty = nodata_pixels(rows, scene.nodata)
        values = rows if empty is None or not empty.any() else np.where(empty[..., None], 0, rows)
        codes = [encode(m, values, scene.wavelengths_nm, normalization=normalization) for m in models]
        release_pages(rows)
        return codes, empty

    with tqdm(total=height, desc="encode", unit="row", disable=not progress) as bar:
        pending = None
        for start in [*range(0, height, rows_per_block), None]:
            following = None if start is None else encoded(start)
            if pending is not None:
                blocks = tuple(np.array(codes) for codes in pending[0])
                if pending[1] is not None:
                    for codes in blocks:
                        codes[pending[1]] = np.nan
                yield blocks
                bar.update(len(blocks[0]))
            pending = following


def encode_scene(model: Model, scene: Scene, output, chosen: ChosenNormalization, record: dict,
                 progress: bool = True) -> Path:
    """Write the (H, W, c) float32 codes of ``scene``, normalised by ``chosen``, to ``output``: a
    .npy (with ``record`` in ``STEM.json`` beside it, written first) or a GeoTIFF (``record`` in its
    tags, the scene's georeference and NaN as nodata); returns its path.

    Neither the scene nor the codes are ever whole in memory: the cube is read a block of rows at a
    time (`code_blocks`), each block's codes appended to the output, which is renamed into place only
    when complete.
    """
    output = check_output(output, "file")
    output.parent.mkdir(parents=True, exist_ok=True)
    height, width, _ = scene.cube.shape
    code_width = model.config.code_width
    blocks = (codes for (codes,) in code_blocks((model,), scene, chosen.normalization, progress))
    if FORMATS[output.suffix.lower()] == "tif":
        tags = {"HSIJAX_RECORD": json.dumps(record), "HSIJAX_MODEL": record["model"],
                "HSIJAX_VERSION": record["hsijax_version"], "HSIJAX_CODE_WIDTH": str(code_width),
                "HSIJAX_NORMALIZATION": json.dumps(record["normalization"]),
                "HSIJAX_WAVELENGTHS_NM": json.dumps(record["wavelengths_nm"])}
        return write_geotiff(output, (height, width, code_width), blocks, scene.georeference, np.nan, tags,
                             [f"code_{index}" for index in range(code_width)])
    write_json_atomic(record_path(output), record)
    return write_npy_atomic(output, (height, width, code_width), "<f4", blocks)


def record_path(output: Path) -> Path:
    """Where a .npy output's record goes: ``STEM.json`` beside it."""
    return output.with_suffix(".json")


def check_output_format(output: Path) -> None:
    if output.suffix.lower() not in FORMATS:
        raise HsijaxError(f"{output}: give a .npy or a .tif output (codes as an array, or as a GeoTIFF)")


def encode_to(checkpoint, scene_of: Callable[[], SceneInput], output, normalization: str | None = None,
              data_dir=None, progress: bool = True):
    """`hsijax encode`: (path, codes' shape) of the scene ``scene_of()`` gives, encoded by the model of
    ``checkpoint`` into ``output`` (.npy or .tif) with the ``normalization`` chosen (default
    ``scene``). The output path, the normalisation, the model and the scene's band count and band
    centres are checked before any work."""
    output = check_output(output, "file")
    check_output_format(output)
    if normalization == "archive":
        raise HsijaxError("--normalization archive: applies to an archive of several files; one scene is "
                          "normalised by itself (scene), a dataset's or a saved one")
    chosen = named_normalization(normalization or "scene", data_dir)
    model = load_model(checkpoint)
    given = scene_of()
    scene, source = given.scene, given.source
    model.config.check_scene(scene.cube.shape[-1], scene.wavelengths_nm, source)
    chosen = chosen or scene_normalization(given)
    record = output_record(model, checkpoint, scene, chosen, source)
    path = encode_scene(model, scene, output, chosen, record, progress=progress)
    return path, (*scene.cube.shape[:2], model.config.code_width)


def archive_files(inputs: list[Path], suffix: str = ".npy") -> list[Path]:
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
            raise HsijaxError(f"{path}: its output {path.stem}{suffix} would also be that of {stems[path.stem]}")
        stems[path.stem] = path
    if not files:
        raise HsijaxError(f"{', '.join(map(str, inputs))}: no scene files ({', '.join(CUBE_SUFFIXES)})")
    return sorted(files)


def encode_archive(checkpoint, inputs: list[Path], options: ImportOptions, output_dir: Path,
                   normalization: str | None, process_id: int = 0, num_processes: int = 1, output_format: str = "npy",
                   data_dir=None, progress: bool = True) -> dict[str, list[Path]]:
    """Encode this process's share of the scene files of ``inputs`` (read with ``options``, their
    ``file`` replaced) into ``output_dir/STEM.npy`` (or ``.tif``), all with the one ``normalization``
    chosen (`NORMALIZATIONS`, required when there are several files); {"encoded": [...], "skipped": [...]}."""
    if not 0 <= process_id < num_processes:
        raise HsijaxError(f"--process-id {process_id}: expected 0 to {num_processes - 1} for --num-processes "
                          f"{num_processes}")
    output_dir = check_output(output_dir, "directory")
    suffix = f".{output_format}"
    everything = archive_files(inputs, suffix)
    if normalization is None and len(everything) > 1:
        raise HsijaxError(f"an archive of {len(everything)} files needs --normalization: archive (one fit over all "
                          "of them: tiles of one scene), scene (each file its own: unrelated scenes), dataset:NAME "
                          "or a saved FILE.json")
    chosen = named_normalization(normalization or "scene", data_dir)
    model = load_model(checkpoint)
    output_dir.mkdir(parents=True, exist_ok=True)
    if normalization == "archive":
        chosen = archive_normalization(everything, options, output_dir)
    done = {"encoded": [], "skipped": []}
    for path in everything[process_id::num_processes]:
        target = output_dir / f"{path.stem}{suffix}"
        for leftover in output_dir.glob(f".{target.name}.*{'.tif' if output_format == 'tif' else '.tmp'}"):
            leftover.unlink(missing_ok=True)  # a write of this process's, killed
        if target.is_file():
            done["skipped"].append(target)
            continue
        given = scene_input(None, dataclasses.replace(options, file=path))
        scene = given.scene
        model.config.check_scene(scene.cube.shape[-1], scene.wavelengths_nm, str(path))
        used = chosen or scene_normalization(given)
        record = output_record(model, checkpoint, scene, used, str(path))
        done["encoded"].append(encode_scene(model, scene, target, used, record, progress=progress))
    return done
