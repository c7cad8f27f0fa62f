"""TFDS builders for the catalogued scenes: find the published files, read them, write one example per pixel.

`PublishedSceneBuilder` does the work for every scene; ``datasets/<name>/<name>_dataset_builder.py``
only names its `SceneSpec` (so ``tfds build datasets/<name>`` works), and `hsijax prepare NAME`
builds the same class through `builder_class`.

Where the files come from, in order: the manual directory when it holds every expected file; else
the official download when the scene has one; else (Indian Pines only) the copy inside the
tensorly wheel. When none works the error names the expected files and where to get them.
Features and metadata are those of `hsijax.data.storage`, the same as ``hsijax import``.
"""

from __future__ import annotations

import socket
import types
import urllib.parse
from pathlib import Path

import numpy as np
import tensorflow_datasets as tfds

from hsijax.data.catalog import SCENES, SceneSpec
from hsijax.data.readers import read_cube, read_labels
from hsijax.data.scene import Scene, load_indian_pines
from hsijax.data.storage import (
    DEFAULT_DATA_DIR,
    VERSION,
    check_scene,
    pixel_examples,
    pixel_features,
    prepare_staged,
    scene_metadata,
)
from hsijax.errors import HsijaxError


class PublishedSceneBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """Builds the catalogued scene ``SPEC``; subclasses only set ``SPEC``."""

    SPEC: SceneSpec
    VERSION = tfds.core.Version(VERSION)
    RELEASE_NOTES = {str(VERSION): "One example per pixel; float32 spectra in sensor units."}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "SPEC" in cls.__dict__:
            cls.MANUAL_DOWNLOAD_INSTRUCTIONS = cls.SPEC.manual_instructions()

    def _info(self):
        spec = self.SPEC
        return tfds.core.DatasetInfo(
            builder=self,
            description=f"{spec.title}: {spec.sensor}, {spec.bands} bands, one example per pixel.",
            features=pixel_features(spec.bands),
            homepage=spec.homepage,
            citation=spec.citation,
            disable_shuffling=True,  # record i is pixel i (row-major): random access by pixel
            metadata=tfds.core.MetadataDict(),
        )

    def _split_generators(self, dl_manager):
        scene, source = self._read_scene(dl_manager)
        metadata = scene_metadata(scene, check_scene(scene, f"{self.SPEC.name} ({source})"), source)
        metadata.update(wavelength_source=self.SPEC.wavelength_source, licence=self.SPEC.licence)
        self.info.metadata.update(metadata)
        return {"train": self._generate_examples(scene)}

    def _generate_examples(self, scene: Scene):
        return pixel_examples(scene)

    def _read_scene(self, dl_manager) -> tuple[Scene, str]:
        paths, source = self._locate_files(dl_manager)
        if paths is None:
            raise HsijaxError(self._missing_files_message(dl_manager, source))
        return read_published_scene(self.SPEC, paths), source

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
    """Indian Pines also works with no download at all, from the tensorly wheel."""

    def _read_scene(self, dl_manager) -> tuple[Scene, str]:
        paths, source = self._locate_files(dl_manager)
        if paths is None:
            return load_indian_pines(), "tensorly wheel (Indian_pines_corrected.npy)"
        return read_published_scene(self.SPEC, paths), source


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
    """The builder of catalogued scene ``name`` (the same one ``datasets/<name>/`` defines)."""
    if name not in SCENES:
        raise HsijaxError(f"unknown scene {name!r}; choose one of: {', '.join(sorted(SCENES))}")
    base = IndianPinesBuilder if name == "indian_pines" else PublishedSceneBuilder
    namespace = {"name": name, "SPEC": SCENES[name]}
    return types.new_class(name, (base,), {"skip_registration": True}, lambda ns: ns.update(namespace))


def prepare_scene(name: str, data_dir=DEFAULT_DATA_DIR, manual_dir=None) -> Path:
    """Build catalogued scene ``name`` under ``data_dir/NAME/VERSION``; downloads go to ``data_dir/downloads``."""
    builder = builder_class(name)
    data_dir = Path(data_dir)
    if manual_dir is not None and not Path(manual_dir).exists():
        raise HsijaxError(f"{manual_dir}: the manual directory does not exist")
    if manual_dir is not None and not Path(manual_dir).is_dir():
        raise HsijaxError(f"{manual_dir}: the manual directory is not a directory")
    config = tfds.download.DownloadConfig(manual_dir=None if manual_dir is None else str(manual_dir))
    return prepare_staged(
        name, data_dir, lambda staging: builder(data_dir=str(staging), file_format="array_record"),
        download_dir=str(data_dir / "downloads"), download_config=config,
    )
