"""The TFDS builders of every hsijax dataset: read a scene, check it, record where it came from, write it.

`SceneBuilder` is the one build: `_read_scene` gives the scene, what it was read from (its files'
size, mtime and SHA-256) and how (the import options); the build checks it (`check_scene`), stores
those records in the dataset's metadata (`hsijax.data.provenance`) and writes its examples
(`hsijax.data.storage`). Two kinds of builder read the scene:
- `ImportedSceneBuilder`: `hsijax import` and the configs' ``data.imports``, any file;
- `PublishedSceneBuilder`: the catalogued scenes, one class per folder of ``datasets/`` (installed
  with hsijax as the package `hsijax_datasets`, so that it cannot clash with Hugging Face's
  ``datasets``), which names its `SceneSpec` and sits beside its ``checksums.tsv``. `hsijax prepare
  NAME` runs that class (`builder_class`), as ``tfds build datasets/NAME`` does.

Where a published scene's files come from, in order: the manual directory when it holds every
expected file; else the official download when the scene has one; else (Indian Pines only) the
copy inside the tensorly wheel. When none works the error names the expected files and where to
get them. Every file is checked against the SHA-256 its ``checksums.tsv`` records (TFDS's format:
url, size, sha256, filename; ``manual:FILENAME`` for a file that has no download address): a file
that does not match is refused in one line; a file with none recorded is accepted with one line
saying so, and its hash is kept in the dataset's metadata either way.
"""

from __future__ import annotations

import importlib
import socket
import types
import urllib.parse
from pathlib import Path

import numpy as np
import tensorflow_datasets as tfds

from hsijax.data.catalog import SCENES, SceneSpec
from hsijax.data.provenance import FileRecord, catalogue_options, check_provenance
from hsijax.data.readers import read_cube, read_labels
from hsijax.data.scene import INDIAN_PINES_FILES, Scene, load_indian_pines, tensorly_data_folder
from hsijax.data.storage import (
    DEFAULT_DATA_DIR,
    VERSION,
    SceneStats,
    check_scene,
    load_dataset,
    pixel_examples,
    pixel_features,
    prepare_staged,
    scene_metadata,
    write_dense,
)
from hsijax.errors import HsijaxError, warn

PACKAGE = "hsijax_datasets"  # ``datasets/`` as installed


class SceneBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """Writes one scene as a dataset; subclasses say where the scene comes from (`_read_scene`)."""

    VERSION = tfds.core.Version(VERSION)
    RELEASE_NOTES = {str(VERSION): "One example per pixel; float32 spectra in sensor units."}
    _stats: SceneStats | None = None  # what checking the scene found, when the caller checked it already

    def _read_scene(self, dl_manager) -> tuple[Scene, str, list[FileRecord], dict | None]:
        """(the scene, its source for messages, the files it was read from, the import options; None
        for a scene built from memory, which records none)."""
        raise NotImplementedError

    def _bands(self) -> int:
        raise NotImplementedError

    def _description(self) -> str:
        raise NotImplementedError

    def _info(self):
        return tfds.core.DatasetInfo(
            builder=self,
            description=self._description(),
            features=pixel_features(self._bands()),
            homepage=getattr(self, "HOMEPAGE", None),
            citation=getattr(self, "CITATION", None),
            disable_shuffling=True,  # record i is pixel i (row-major): random access by pixel
            metadata=tfds.core.MetadataDict(),
        )

    def _split_generators(self, dl_manager):
        scene, source, files, options = self._read_scene(dl_manager)
        self.scene_read = scene  # for the dense copy written beside the records (`write_dense_copy`)
        stats = self._stats if self._stats is not None else check_scene(scene, source)
        metadata = scene_metadata(scene, stats, source)
        metadata["source_files"] = [record.as_dict() for record in files]
        if options is not None:
            metadata["import_options"] = options
        self.info.metadata.update(metadata)
        return {"train": self._generate_examples(scene)}

    def _generate_examples(self, scene: Scene):
        return pixel_examples(scene)


class ImportedSceneBuilder(SceneBuilder, skip_registration=True):
    """`hsijax import`: a scene read from the user's files (`hsijax.data.loading.read_scene_file`)."""

    def __init__(self, scene: Scene, stats: SceneStats, source: str, files: list[FileRecord], options: dict | None,
                 **kwargs):
        self.scene, self._stats, self.source, self.files, self.options = scene, stats, source, files, options
        super().__init__(**kwargs)

    @classmethod
    def named(cls, name: str) -> type[ImportedSceneBuilder]:
        """A subclass whose TFDS name is ``name`` (TFDS takes the name from the class)."""
        return types.new_class(
            name, (cls,), {"skip_registration": True}, lambda namespace: namespace.update(name=name)
        )

    def _bands(self) -> int:
        return self.scene.cube.shape[-1]

    def _description(self) -> str:
        return f"{self.scene.name}: {self.scene.sensor} scene, one example per pixel."

    def _read_scene(self, dl_manager):
        return self.scene, self.source, self.files, self.options


def build_dataset(scene: Scene, data_dir=DEFAULT_DATA_DIR, source: str = "", files: list[FileRecord] = (),
                  options: dict | None = None, overwrite: bool = True) -> Path:
    """Write ``scene`` under ``data_dir/NAME/VERSION`` and return that directory; ``files`` and
    ``options``: what it was read from and how, recorded in its metadata."""
    stats = check_scene(scene, source)
    builder = ImportedSceneBuilder.named(scene.name)
    return prepare_staged(
        scene.name, data_dir, lambda staging: builder(
            scene, stats, source, list(files), options, data_dir=str(staging), file_format="array_record"
        ), overwrite=overwrite, after=lambda staging: write_dense_copy(scene, staging / scene.name / VERSION),
    )


def write_dense_copy(scene: Scene, directory: Path) -> None:
    """The dense copy training reads (`hsijax.data.storage.DENSE_PIXELS`), from the scene a build
    read, written beside its records before the dataset moves into place."""
    height, width, bands = scene.cube.shape
    labels = np.zeros(height * width, np.int32) if scene.labels is None else scene.labels.reshape(-1).astype(np.int32)
    rows = max(1, 2**16 // width)
    write_dense(directory, (np.asarray(scene.cube[start:start + rows], np.float32).reshape(-1, bands)
                            for start in range(0, height, rows)), labels, bands)


class PublishedSceneBuilder(SceneBuilder, skip_registration=True):
    """Builds the catalogued scene ``SPEC``; subclasses (``datasets/NAME``) only set ``SPEC``."""

    SPEC: SceneSpec

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "SPEC" in cls.__dict__:
            cls.MANUAL_DOWNLOAD_INSTRUCTIONS = cls.SPEC.manual_instructions()
            cls.HOMEPAGE, cls.CITATION = cls.SPEC.homepage, cls.SPEC.citation

    def _bands(self) -> int:
        return self.SPEC.bands

    def _description(self) -> str:
        spec = self.SPEC
        return f"{spec.title}: {spec.sensor}, {spec.bands} bands, one example per pixel."

    def _split_generators(self, dl_manager):
        splits = super()._split_generators(dl_manager)
        self.info.metadata.update(wavelength_source=self.SPEC.wavelength_source, licence=self.SPEC.licence)
        return splits

    def _read_scene(self, dl_manager):
        paths, source = self._locate_files(dl_manager)
        if paths is None:
            raise HsijaxError(self._missing_files_message(dl_manager, source))
        return self._published_scene(paths, source)

    def _published_scene(self, paths: dict[str, Path], source: str):
        """`_read_scene`'s answer for the published files ``paths``, each checked (`checked`)."""
        files = [self.checked(name, path) for name, path in paths.items()]
        scene = read_published_scene(self.SPEC, paths)
        return scene, f"{self.SPEC.name} ({source})", files, catalogue_options(self.SPEC.name)

    @classmethod
    def recorded_hashes(cls) -> dict[str, str]:
        """{filename: SHA-256} from the builder's ``checksums.tsv``."""
        return {info.filename: info.checksum for info in (cls.url_infos or {}).values() if info.filename}

    @classmethod
    def checked(cls, name: str, path: Path) -> FileRecord:
        """The record of published file ``name`` read from ``path``, its SHA-256 checked against the
        recorded one: a mismatch is refused, a file without one accepted with one line."""
        record = FileRecord.of(path)
        recorded = cls.recorded_hashes().get(name)
        if recorded is None:
            warn(f"{path}: no SHA-256 is recorded for {name} in {cls.SPEC.name}'s checksums.tsv; accepted, "
                 f"and its SHA-256 {record.sha256} kept in the dataset's metadata")
        elif recorded != record.sha256:
            raise HsijaxError(f"{path}: SHA-256 {record.sha256} differs from the one recorded for {name} "
                              f"({recorded}): not the published file; download it again")
        return record

    def _locate_files(self, dl_manager) -> tuple[dict[str, Path] | None, str]:
        """({filename: path} for every expected file, where they came from), or (None, why not)."""
        spec = self.SPEC
        manual = _manual_dir(dl_manager)
        if manual is not None and all((manual / name).is_file() for name in spec.expected_files):
            return {name: manual / name for name in spec.expected_files}, f"manual directory {manual}"
        if not spec.downloadable:
            return None, "the scene has no public download address"
        first_url = spec.archive_url or spec.files[0].url
        if not server_reachable(first_url):
            return None, f"the download server of {first_url} cannot be reached"
        try:
            if spec.archive_url:
                folder = Path(dl_manager.download_and_extract(spec.archive_url)) / spec.archive_dir
                paths = {name: folder / name for name in spec.expected_files}
            else:
                downloaded = dl_manager.download({f.filename: f.url for f in spec.files})
                paths = {name: Path(path) for name, path in downloaded.items()}
        except Exception as error:  # network, HTTP, archive and checksum errors alike
            return None, f"the download failed ({type(error).__name__}: {error})"
        missing = [name for name, path in paths.items() if not path.is_file()]
        if missing:
            return None, f"the download lacks {', '.join(missing)}"
        return paths, "official download"

    def _missing_files_message(self, dl_manager, why: str) -> str:
        manual = _manual_dir(dl_manager, must_exist=False)
        missing = [n for n in self.SPEC.expected_files if manual is None or not (manual / n).is_file()]
        return (
            f"{self.SPEC.name}: {why}, and the manual directory {manual} lacks {', '.join(missing)}.\n"
            + self.SPEC.manual_instructions()
        )


class IndianPinesBuilder(PublishedSceneBuilder, skip_registration=True):
    """Indian Pines also works with no download at all, from the tensorly wheel (its files' SHA-256
    checked on reading, `hsijax.data.scene.load_indian_pines`)."""

    def _read_scene(self, dl_manager):
        paths, source = self._locate_files(dl_manager)
        if paths is not None:
            return self._published_scene(paths, source)
        scene = load_indian_pines()
        folder = tensorly_data_folder()
        files = [FileRecord.of(folder / name, sha256=digest) for name, digest in INDIAN_PINES_FILES.items()]
        return (scene, "indian_pines (tensorly wheel, Indian_pines_corrected.npy)", files,
                catalogue_options(self.SPEC.name))


def server_reachable(url: str, timeout_s: float = 5.0) -> bool:
    """Whether a TCP connection to the URL's host opens: offline, TFDS would retry for minutes."""
    parsed = urllib.parse.urlparse(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        socket.create_connection((parsed.hostname, port), timeout=timeout_s).close()
    except OSError:
        return False
    return True


def _manual_dir(dl_manager, must_exist: bool = True) -> Path | None:
    """The manual directory; TFDS raises when it does not exist, which here just means "none"."""
    try:
        return Path(dl_manager.manual_dir)
    except Exception:  # AssertionError when missing; mocks raise others
        if must_exist:
            return None
        path = getattr(dl_manager, "_manual_dir", None)
        return None if path is None else Path(path)


def read_published_scene(spec: SceneSpec, paths: dict[str, Path]) -> Scene:
    """The scene from its published files, checked against the catalogue's band count."""
    cube_file = spec.cube_file
    cube_path = paths[cube_file.filename]
    reading = read_cube(cube_path, cube_file.key, layout=cube_file.layout,
                        band_count=(spec.bands, f"the catalogue's {spec.title}"))
    cube, file_wavelengths = reading.cube, reading.wavelengths_nm
    if cube.shape[-1] != spec.bands:
        raise HsijaxError(f"{cube_path}: {cube.shape[-1]} bands, but {spec.title} has {spec.bands}")
    labels = None
    for label_file in spec.label_files:
        path = paths[label_file.filename]
        part = read_labels(path, label_file.key)
        if part.shape != cube.shape[:2]:
            raise HsijaxError(f"{path}: ground truth shape {part.shape} differs from the image's {cube.shape[:2]}")
        if spec.class_names and part.size and part.max() > len(spec.class_names):
            raise HsijaxError(f"{path}: label {part.max()} is out of range for {len(spec.class_names)} classes")
        labels = part if labels is None else _merge_labels(labels, part, path)
    wavelengths = file_wavelengths  # an ENVI header's own list beats the catalogue's nominal one
    if wavelengths is None and spec.wavelengths_nm is not None:
        wavelengths = np.asarray(spec.wavelengths_nm)
    return Scene(spec.name, spec.sensor, cube, labels, wavelengths, spec.class_names, reading.layout,
                 reading.decided_by)


def _merge_labels(labels: np.ndarray, more: np.ndarray, path: Path) -> np.ndarray:
    """Union of two label maps whose labelled pixels are disjoint (e.g. official train + test)."""
    if np.any((labels > 0) & (more > 0) & (labels != more)):
        raise HsijaxError(f"{path}: labels disagree with the other ground-truth file on shared pixels")
    return np.where(labels > 0, labels, more)


def builder_class(name: str) -> type[PublishedSceneBuilder]:
    """The builder of catalogued scene ``name``: the class ``datasets/NAME/NAME_dataset_builder.py``
    defines (installed as ``hsijax_datasets.NAME``), so its ``checksums.tsv`` is the one read."""
    if name not in SCENES:
        raise HsijaxError(f"unknown scene {name!r}; choose one of: {', '.join(sorted(SCENES))}")
    return importlib.import_module(f"{PACKAGE}.{name}.{name}_dataset_builder").Builder


def prepare_scene(name: str, data_dir=DEFAULT_DATA_DIR, manual_dir=None, rebuild: bool = True) -> Path:
    """Build catalogued scene ``name`` under ``data_dir/NAME/VERSION``; downloads go to ``data_dir/downloads``.

    Without ``rebuild`` a prepared one is kept when it was built from the catalogue, and refused when
    it was imported under that name (`check_provenance`)."""
    builder = builder_class(name)
    data_dir = Path(data_dir).expanduser()
    existing = data_dir / name / VERSION
    if not rebuild and (existing / "dataset_info.json").is_file():
        check_provenance(existing, load_dataset(existing).metadata, catalogue_options(name), check_files=False)
        return existing
    if manual_dir is not None and not Path(manual_dir).exists():
        raise HsijaxError(f"{manual_dir}: the manual directory does not exist")
    if manual_dir is not None and not Path(manual_dir).is_dir():
        raise HsijaxError(f"{manual_dir}: the manual directory is not a directory")
    config = tfds.download.DownloadConfig(manual_dir=None if manual_dir is None else str(manual_dir))
    built = []

    def make_builder(staging):
        built.append(builder(data_dir=str(staging), file_format="array_record"))
        return built[-1]

    return prepare_staged(
        name, data_dir, make_builder, after=lambda staging: write_dense_copy(built[-1].scene_read,
                                                                            staging / name / VERSION),
        download_dir=str(data_dir / "downloads"), download_config=config,
    )
