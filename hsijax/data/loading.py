"""Getting a scene by name or from a file: the one place that reads, imports or prepares a scene.

Every command, the pretraining loop and the experiments come here:
- `read_scene_file` reads any supported file with the `hsijax import` options (`ImportOptions`);
- `ensure_scene` returns a dataset directory, preparing a catalogued scene or importing a file
  (configs list ``data.imports``: name -> the import options' fields, `import_options_of`) when it
  is missing;
- `load_scene` returns a whole scene in memory, by name, and `open_scenes` the prepared datasets.

A data dir may be an object-store URI (``gs://BUCKET/tensorflow_datasets``, what a TPU pod's hosts
share): each dataset a run names is then copied once to this host's cache (`DATA_CACHE`), because
ArrayRecord and the dense pixel copies are read from local files (memory-mapped); a dataset is
never prepared or imported into a URI -- prepare it locally and copy it there.

The import options are defined here once (`ImportOptions`, `add_file_options`), for the ``hsijax
import`` command, for the evaluation commands that take a FILE, and for the configs' entries.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shlex
import shutil
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

import jax
import numpy as np

from hsijax.data.builders import build_dataset, prepare_scene
from hsijax.data.catalog import SCENES, hyperion_nominal_wavelengths
from hsijax.data.provenance import FileRecord, catalogue_options, check_provenance
from hsijax.data.readers import (
    LAYOUTS,
    block_majority,
    read_band_selection,
    read_cube,
    read_labels,
    read_wavelengths,
)
from hsijax.data.scene import Scene
from hsijax.data.storage import (
    DEFAULT_DATA_DIR,
    VERSION,
    SceneDataset,
    SceneStats,
    check_scene_content,
    load_dataset,
    locked_staging,
    read_scene,
    remove_abandoned_builds,
    summary_line,
)
from hsijax.data.wavelengths import AVIRIS_224_WAVELENGTHS_NM
from hsijax.errors import HsijaxError, describe
from hsijax.files import is_uri, storage_path


def positive_int(text: str) -> int:
    """argparse type: a whole number of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def add_file_options(parser: argparse.ArgumentParser) -> None:
    """The options that say how to read a scene FILE (every command that reads one takes them)."""
    parser.add_argument("--gt", type=Path, help="ground-truth label map (0 = unlabelled)")
    parser.add_argument("--key", help="variable holding the cube in a .mat file")
    parser.add_argument("--gt-key", help="variable holding the labels in a .mat file")
    parser.add_argument("--gt-majority", action="store_true", default=None,
                        help="the ground truth is finer than the image by a whole factor: each pixel takes "
                             "its block's most frequent label")
    parser.add_argument("--wavelengths", metavar="FILE|TABLE",
                        help="band centres in nm: a file (text, .npy, .mat, or an ENVI .hdr), a sensor's table "
                             f"({', '.join(WAVELENGTH_TABLES)}), or linspace:FIRST:LAST (evenly spaced)")
    parser.add_argument("--wavelengths-key", help="variable holding the wavelengths in a .mat file")
    parser.add_argument("--keep-bands", type=Path,
                        help="which bands of the wavelength list the cube holds (0/1 list or 1-based numbers); "
                             "a cube with every listed band is cut to them")
    parser.add_argument("--keep-bands-key", help="variable holding the band selection in a .mat file")
    parser.add_argument("--shape", type=positive_int, nargs=2, metavar=("H", "W"),
                        help="image size, for a bands x pixels matrix (column-major)")
    parser.add_argument("--layout", choices=LAYOUTS, default="auto",
                        help="axis order of a 3-D cube; auto: as the file, --gt, --shape and --wavelengths say, "
                             "else the format's convention (see the README)")


@dataclasses.dataclass(frozen=True)
class ImportOptions:
    """A scene file and how to read it: what `hsijax import FILE [options]` is given."""

    file: Path
    gt: Path | None = None
    key: str | None = None
    gt_key: str | None = None
    gt_majority: bool = False
    wavelengths: str | None = None
    wavelengths_key: str | None = None
    keep_bands: Path | None = None
    keep_bands_key: str | None = None
    shape: tuple[int, int] | None = None
    layout: str = "auto"
    sensor: str = "unknown"

    def __post_init__(self):
        if self.wavelengths is not None:  # a path, a table name or linspace:FIRST:LAST
            object.__setattr__(self, "wavelengths", str(self.wavelengths))

    def record(self) -> dict:
        """The options as a dataset records them (`hsijax.data.provenance`): paths absolute, JSON types."""
        record = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, Path) or (field.name == "wavelengths" and value and Path(value).is_file()):
                value = str(Path(value).expanduser().resolve())
            record[field.name] = list(value) if isinstance(value, tuple) else value
        return record

    def source_paths(self) -> list[Path]:
        """The files these options read (the scene, its ground truth, a wavelength list, a band selection)."""
        paths = [self.file, self.gt, self.keep_bands]
        if self.wavelengths and Path(self.wavelengths).is_file():
            paths.append(Path(self.wavelengths))
        return [Path(p) for p in paths if p is not None]

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> ImportOptions:
        """The options of a parsed command line (fields it lacks keep their defaults)."""
        values = {field.name: getattr(args, field.name) for field in dataclasses.fields(cls)
                  if getattr(args, field.name, None) is not None}
        if values.get("shape") is not None:
            values["shape"] = tuple(values["shape"])
        return cls(**values)


class _OptionParser(argparse.ArgumentParser):
    """Parses a config's option string; a mistake is an `HsijaxError`, not an exit."""

    def error(self, message: str):
        raise HsijaxError(message)


PATH_OPTIONS = ("file", "gt", "keep_bands")


def import_options_of(entry, where: str, source_dir="") -> ImportOptions:
    """The `ImportOptions` of a config's ``data.imports`` entry: a mapping of their fields (paths
    relative to ``source_dir``, the config's ``data.source_dir``), or -- as configs before 0.3 wrote
    them -- one ``"FILE [--key K] ..."`` string (paths as they are)."""
    if isinstance(entry, str):
        return parse_import_options(entry, where)
    fields = {field.name for field in dataclasses.fields(ImportOptions)}
    values = dict(entry)
    unknown = sorted(set(values) - fields)
    if unknown:
        raise HsijaxError(f"{where}: unknown import option(s) {', '.join(unknown)}; the options are "
                          f"{', '.join(sorted(fields))}")
    if "file" not in values:
        raise HsijaxError(f"{where}: needs a file")
    base = Path(source_dir).expanduser() if source_dir else Path()
    for key in PATH_OPTIONS:
        if values.get(key) is not None:
            values[key] = base / Path(values[key]).expanduser()
    wavelengths = values.get("wavelengths")
    if wavelengths and wavelengths.lower() not in WAVELENGTH_TABLES and not wavelengths.startswith("linspace:"):
        values["wavelengths"] = str(base / Path(wavelengths).expanduser())
    if values.get("shape") is not None:
        values["shape"] = tuple(values["shape"])
    return ImportOptions(**{key: value for key, value in values.items() if value is not None})


def parse_import_options(text: str, where: str = "import options") -> ImportOptions:
    """``"FILE [--key K] [--shape H W] ..."``, as configs before 0.3 gave them, into `ImportOptions`."""
    parser = _OptionParser(prog=where, add_help=False)
    parser.add_argument("file", type=Path)
    add_file_options(parser)
    parser.add_argument("--sensor", default="unknown")
    try:
        return ImportOptions.from_args(parser.parse_args(shlex.split(text)))
    except HsijaxError as error:
        raise HsijaxError(f"{where} {text!r}: {error}") from None


WAVELENGTH_TABLES = {"aviris": AVIRIS_224_WAVELENGTHS_NM, "hyperion": tuple(hyperion_nominal_wavelengths())}


def listed_wavelengths(options: ImportOptions) -> np.ndarray | None:
    """The band centres ``--wavelengths`` names (before ``--keep-bands``); None for ``linspace``,
    whose length is the cube's (`read_scene_file`) and for no list."""
    spec = options.wavelengths
    if spec is None or spec.startswith("linspace:"):
        return None
    if spec.lower() in WAVELENGTH_TABLES:
        return np.asarray(WAVELENGTH_TABLES[spec.lower()], np.float64)
    return read_wavelengths(Path(spec), options.wavelengths_key)


def linspace_wavelengths(spec: str, band_count: int) -> np.ndarray:
    try:
        first, last = (float(value) for value in spec.split(":")[1:])
    except ValueError:
        raise HsijaxError(f"--wavelengths {spec}: expected linspace:FIRST:LAST in nm, e.g. linspace:380:1050") from None
    if not 0 < first < last:
        raise HsijaxError(f"--wavelengths {spec}: need 0 < FIRST < LAST (nm)")
    return np.linspace(first, last, band_count)


def read_scene_file(options: ImportOptions, name: str) -> Scene:
    """A `Scene` read from ``options.file`` with its ground truth and wavelengths, if given."""
    labels = read_labels(options.gt, options.gt_key) if options.gt is not None else None
    wavelengths = listed_wavelengths(options)
    keep = None
    if options.keep_bands is not None:
        if wavelengths is None:
            raise HsijaxError(f"--keep-bands {options.keep_bands}: needs a wavelength list (--wavelengths FILE|TABLE)")
        keep = read_band_selection(options.keep_bands, options.keep_bands_key, len(wavelengths))
        listed, wavelengths = wavelengths, wavelengths[keep]
    reading = read_cube(options.file, options.key, options.shape, options.layout,
                        labels_shape=None if labels is None or options.gt_majority else labels.shape,
                        band_count=None if wavelengths is None or keep is not None
                        else (len(wavelengths), "the wavelength list"))
    cube = reading.cube
    if keep is not None and cube.shape[-1] == len(listed) != len(wavelengths):
        cube = cube[..., keep]  # a cube with every listed band (e.g. NaN in its bad bands): keep the good ones
    if options.wavelengths is not None and options.wavelengths.startswith("linspace:"):
        wavelengths = linspace_wavelengths(options.wavelengths, cube.shape[-1])
    if wavelengths is not None and len(wavelengths) != cube.shape[-1]:
        raise HsijaxError(f"{options.wavelengths}: {len(wavelengths)} wavelengths for {cube.shape[-1]} "
                          f"bands of {options.file}")
    if labels is not None and options.gt_majority:
        labels = block_majority(labels, cube.shape[:2], options.gt)
    if labels is not None and labels.shape != cube.shape[:2]:
        raise HsijaxError(
            f"{options.gt}: ground truth shape {labels.shape} differs from the image's {cube.shape[:2]}"
        )
    return Scene(name, options.sensor, cube, labels, reading.wavelengths_nm if wavelengths is None else wavelengths,
                 layout=reading.layout, layout_decided_by=reading.decided_by,
                 georeference=getattr(cube, "georeference", None), nodata=getattr(cube, "nodata", None))


def import_scene(options: ImportOptions, name: str, data_dir=DEFAULT_DATA_DIR, rebuild: bool = False) -> Path:
    """`hsijax import`: read ``options.file`` and write it as the dataset ``name``; its directory.

    A dataset ``name`` that exists already is kept when it was imported with the same options
    from files that have not changed since, and refused otherwise (`check_provenance`), unless
    ``rebuild``."""
    directory = Path(data_dir).expanduser() / name / VERSION
    if not rebuild and (directory / "dataset_info.json").is_file():
        check_provenance(directory, load_dataset(directory).metadata, options.record())
        return directory
    scene = read_scene_file(options, name)
    files = [FileRecord.of(path) for path in options.source_paths()]
    data_file = getattr(scene.cube, "path", None)  # an ENVI header's data file
    if data_file is not None and Path(data_file).resolve() not in {Path(f.path) for f in files}:
        files.append(FileRecord.of(data_file))
    return build_dataset(scene, data_dir, source=str(options.file), files=files, options=options.record())


def summary(directory) -> str:
    """The line an import or prepare prints: what the dataset holds and how its file was read."""
    dataset = load_dataset(directory)
    return summary_line(dataset.name, dataset.metadata)


# Where datasets read from a URI data dir are staged (HSIJAX_DATA_CACHE overrides it).
DATA_CACHE = Path(os.environ.get("HSIJAX_DATA_CACHE", Path.home() / ".cache" / "hsijax" / "datasets"))


_REBUILT: set[Path] = set()  # the datasets --rebuild built again in this process


def ensure_scene(name: str, data_dir, imports: Mapping | None = None, rebuild: bool = False,
                 source_dir="") -> Path:
    """``data_dir/NAME/VERSION``, prepared (catalogued scene) or imported (``imports[name]``) if
    missing (``source_dir``: where the relative paths of ``imports`` are); under a URI data dir, its
    local copy (`stage_dataset`).

    A dataset that exists is used only when it was built as asked: from the catalogue for a
    catalogued name, else with ``imports[name]``'s options from files unchanged since
    (`hsijax.data.provenance`); otherwise it is refused in one line, or (``rebuild``) built again."""
    imports = imports or {}
    options = (import_options_of(imports[name], f"config.data.imports.{name}", source_dir)
               if name in imports else None)
    wanted = options.record() if options is not None else catalogue_options(name) if name in SCENES else None
    if is_uri(data_dir):
        directory = stage_dataset(storage_path(data_dir) / name / VERSION)
        if wanted is not None:
            check_provenance(directory, load_dataset(directory).metadata, wanted, check_files=False)
        return directory
    data_dir = Path(data_dir).expanduser()
    directory = data_dir / name / VERSION
    rebuild = rebuild and directory not in _REBUILT  # once a process: a run's later reads take that build
    if (directory / "dataset_info.json").is_file() and not rebuild:
        if wanted is not None:
            check_provenance(directory, load_dataset(directory).metadata, wanted, check_files=options is not None)
        return directory
    if jax.process_count() > 1:
        raise HsijaxError(f"{directory}: not prepared; prepare every scene before a multi-process run")
    _REBUILT.add(directory)
    if options is not None:
        directory = import_scene(options, name, data_dir, rebuild=True)
    elif name in SCENES:
        directory = prepare_scene(name, data_dir)
    else:
        raise HsijaxError(f"scene {name!r} is not prepared in {data_dir}, not catalogued, and has no "
                          f"config.data.imports entry; run `hsijax import FILE --name {name}` first")
    print(f"hsijax: prepared {summary(directory)}", file=sys.stderr, flush=True)
    return directory


def stage_dataset(remote) -> Path:
    """The local copy (under `DATA_CACHE`) of the prepared dataset folder ``remote`` (a URI), copied
    now when this host has none, into a locked staging folder moved into place when every file is
    there (`hsijax.data.storage.locked_staging`, as a prepare does): a copy killed half-way is never
    taken for a dataset, and its leftovers are removed by the next copy."""
    local = DATA_CACHE / os.fspath(remote).replace("://", "/", 1)
    if (local / "dataset_info.json").is_file():
        if _same_info(remote, local):
            return local
        print(f"hsijax: {remote} changed since this host copied it to {local}; copying it again",
              file=sys.stderr, flush=True)
        aside = local.with_name(f".replaced-{local.name}-{os.getpid()}")
        local.rename(aside)
        shutil.rmtree(aside, ignore_errors=True)
    cache_dir, name = local.parents[1], local.parent.name
    try:
        if not (remote / "dataset_info.json").exists():
            raise HsijaxError(f"{remote}: no prepared dataset there (prepare or import it locally, then copy "
                              f"its data dir to {remote.parents[1]})")
        files = [f for f in remote.iterdir() if not f.is_dir()]
        cache_dir.mkdir(parents=True, exist_ok=True)
        remove_abandoned_builds(cache_dir)
        staging, lock = locked_staging(cache_dir, name)
    except HsijaxError:
        raise
    except Exception as error:  # fsspec backends raise their own types (no credentials, no network)
        raise HsijaxError(f"{remote}: cannot be copied to {local} ({describe(error)})") from None
    try:
        copy = staging / name / VERSION
        copy.mkdir(parents=True)
        for file in files:
            with file.open("rb") as source, open(copy / file.name, "wb") as target:
                shutil.copyfileobj(source, target, 16 * 2**20)
        local.parent.mkdir(parents=True, exist_ok=True)
        try:
            copy.rename(local)
        except OSError:  # another process on this host staged it first: use that copy
            if not (local / "dataset_info.json").is_file():
                raise
    except Exception as error:  # as above
        raise HsijaxError(f"{remote}: cannot be copied to {local} ({describe(error)})") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        os.close(lock)
    print(f"hsijax: copied {remote} to {local}", file=sys.stderr, flush=True)
    return local


def _same_info(remote, local: Path) -> bool:
    """Whether the bucket's dataset is the one this host copied: the same ``dataset_info.json``
    (which holds the dataset's metadata, its source files' hashes among them, and its shard
    lengths). A bucket that cannot be read leaves the copy in use."""
    try:
        return (remote / "dataset_info.json").read_bytes() == (local / "dataset_info.json").read_bytes()
    except Exception:  # fsspec backends raise their own types (no credentials, no network)
        return True


def load_scene(name: str, data_dir=DEFAULT_DATA_DIR, imports: Mapping | None = None,
               nominal: Mapping[str, str] | None = None, rebuild: bool = False, source_dir="") -> Scene:
    """The whole scene ``name`` in memory, prepared or imported first when missing (`ensure_scene`);
    ``nominal``: name -> the ``--wavelengths`` of a scene that lists no band centres."""
    scene = read_scene(load_dataset(ensure_scene(name, data_dir, imports, rebuild, source_dir)))
    if nominal and name in nominal and scene.wavelengths_nm is None:
        scene = with_wavelengths(scene, nominal[name], f"dataset {name}")
    return scene


class SceneInput(NamedTuple):
    """A scene an evaluation command was given, and what to name in a message about it."""

    scene: Scene
    source: str  # the dataset or the file
    labels_source: str  # the ground-truth file, or the dataset
    stats: SceneStats | None = None  # what checking a file found (its own normalisation among them)


def wavelengths_for(spec: str, band_count: int, where: str) -> np.ndarray:
    """The band centres a ``--wavelengths`` form names (a file, a table, ``linspace:FIRST:LAST``) for
    ``band_count`` bands of ``where``; a list of another length is refused."""
    wavelengths = listed_wavelengths(ImportOptions(Path(where), wavelengths=spec))
    if wavelengths is None:
        wavelengths = linspace_wavelengths(spec, band_count)
    if len(wavelengths) != band_count:
        raise HsijaxError(f"--wavelengths {spec}: {len(wavelengths)} wavelengths for the {band_count} bands of {where}")
    return np.asarray(wavelengths, np.float64)


def with_wavelengths(scene: Scene, spec: str, where: str) -> Scene:
    """``scene`` with the band centres ``--wavelengths SPEC`` names (a file, a table, ``linspace:``),
    for a scene that lists none; one that lists its own keeps them, and a different list is refused."""
    wavelengths = wavelengths_for(spec, scene.cube.shape[-1], where)
    if scene.wavelengths_nm is not None:
        if np.allclose(scene.wavelengths_nm, wavelengths):
            return scene
        raise HsijaxError(f"{where}: lists its own band centres ({scene.wavelengths_nm[0]:.1f}-"
                          f"{scene.wavelengths_nm[-1]:.1f} nm), which --wavelengths {spec} contradicts")
    return dataclasses.replace(scene, wavelengths_nm=wavelengths)


def scene_input(dataset: str | None, options: ImportOptions | None, data_dir=DEFAULT_DATA_DIR,
                wavelengths: str | None = None) -> SceneInput:
    """What an evaluation command is given: a dataset name (with ``wavelengths``, a ``--wavelengths``
    for a dataset that lists none), or a file with its import options, checked as an import would
    check it (NaN, overflow: named by the file, before any work)."""
    if (dataset is None) == (options is None):
        raise HsijaxError("give either --dataset NAME or a scene FILE")
    if dataset:
        scene = load_scene(dataset, data_dir)
        if wavelengths is not None:
            scene = with_wavelengths(scene, wavelengths, f"dataset {dataset}")
        return SceneInput(scene, f"dataset {dataset}", dataset)
    scene = read_scene_file(options, options.file.stem.lower())
    stats = check_scene_content(scene, str(options.file))
    return SceneInput(scene, str(options.file), str(options.gt or options.file), stats)


def open_scenes(names: Sequence[str], data_dir, imports: Mapping | None = None,
                nominal: Mapping[str, str] | None = None, rebuild: bool = False,
                source_dir="") -> list[SceneDataset]:
    """The prepared datasets ``names``, each prepared or imported first when missing; ``nominal``:
    name -> the ``--wavelengths`` of a dataset that lists no band centres (recorded in its metadata
    as read, never written to the dataset)."""
    if not names:
        raise HsijaxError("no scene named (config.data.scenes is empty)")
    datasets = [load_dataset(ensure_scene(name, data_dir, imports, rebuild, source_dir)) for name in names]
    for index, dataset in enumerate(datasets):
        if nominal and dataset.name in nominal and dataset.wavelengths_nm is None:
            wavelengths = wavelengths_for(nominal[dataset.name], dataset.bands, f"dataset {dataset.name}")
            metadata = {**dataset.metadata, "wavelengths_nm": [float(w) for w in wavelengths]}
            datasets[index] = dataclasses.replace(dataset, metadata=metadata)
    return datasets


def scene_names(names) -> list[str]:
    """Scene names as configs give them: a tuple, or (before 0.3) one comma-separated string."""
    if isinstance(names, str):
        names = names.split(",")
    return [name.strip() for name in names if name.strip()]
