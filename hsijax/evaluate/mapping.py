"""`hsijax map`: a user's scene and a few labels in, a land-cover map a GIS opens out.

The scene is read as `hsijax import` reads it (any format, the same options, band centres
included) and normalised by its own min-max (label-free: every pixel of the scene may be used
without its label). Every pixel is encoded by the checkpoint's network, and its codes standardised
over the scene's pixels (label-free too). The head is chosen on the training pixels alone, by
3-fold cross-validation (stratified when every class has three pixels): an RBF SVM (C, gamma from
`hsijax.evaluate.classification.SVM_GRID`) or a linear probe (a logistic regression, C from
``LINEAR_GRID``), on the checkpoint's codes or -- for a linear-grid code -- the shipped grid PCA's
32 components (`map_encoders`), whichever classifies the held-out folds best (`choose_map_head`);
the winner is refitted on every training pixel. No label outside the given ones is read.

No array of the whole scene's codes is held in memory, so memory does not grow with the scene's
area (`benchmarks/map_scene.py` maps a 2,000 x 2,000 x 200 scene): the cube is read once, a block
of rows at a time, each candidate encoder's codes appended to a scratch file beside ``--out`` (4
bytes a code entry: 768 MB for that scene's 16 + 32 entries, removed at the end) while the labelled
pixels' codes are kept and the mean is summed; the chosen encoder's file is then read back a chunk
at a time to classify it. Its mean and scale are `standardised`'s, bit for bit (the same sequential
float32 sums); only the uint8 map and a validity mask are whole.

Written in ``--out DIR``, each whole or not at all:
- ``map.tif``: uint8, the class numbers of the label image, 0 where the scene has no data, a colour
  table, and the input's CRS and transform when it has them (`hsijax.data.rasters.write_geotiff`);
- ``map.png``: the map with a legend (class names when given);
- ``classifier/``: the encoder, the standardisation and the head (`hsijax.models.map_classifier`),
  which `hsijax.load_classifier` reloads and ``hsijax map SCENE2 --classifier DIR/classifier`` applies
  to another scene;
- ``report.md`` and ``report.json``: what was chosen and why, the cross-validated scores of each
  candidate, and the chosen one's per-class accuracy, confusion matrix and kappa on the held-out
  folds of the training pixels (the only labels there are).
"""

from __future__ import annotations

import dataclasses
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from hsijax.data.loading import ImportOptions, read_scene_file
from hsijax.data.rasters import write_geotiff
from hsijax.data.readers import read_labels
from hsijax.data.storage import check_scene_content
from hsijax.errors import HsijaxError
from hsijax.evaluate.classification import choose_map_head, map_encoders
from hsijax.evaluate.encode_scene import code_blocks
from hsijax.evaluate.figures import pyplot, save_atomic
from hsijax.files import check_output, write_json_atomic, write_text_atomic
from hsijax.metrics import classification_scores
from hsijax.models.checkpoints import load_model
from hsijax.models.map_classifier import CHUNK, MapClassifier, head_arrays, load_classifier, save_classifier
from hsijax.spectral import Normalization

ROWS_PER_BLOCK = 64  # image rows of the map written at a time


@dataclasses.dataclass(frozen=True)
class MapResult:
    out: Path
    chosen: str
    cross_validated_oa: float
    classes: tuple[int, ...]
    seconds: float


def say(message: str) -> None:
    print(f"hsijax map: {message}", file=sys.stderr, flush=True)


VECTOR_SUFFIXES = (".gpkg", ".shp", ".geojson")


def vector_labels(path: Path, attribute: str, scene) -> np.ndarray:
    """Training polygons burnt onto the scene's grid (H, W): each pixel whose centre a polygon covers
    takes its ``attribute`` (a class number 1..255; a later polygon over an earlier one), 0 elsewhere.
    The scene must be georeferenced in the polygons' CRS (reproject one of them first otherwise)."""
    import pyogrio
    import shapely
    from rasterio.crs import CRS
    from rasterio.features import rasterize
    from rasterio.transform import Affine

    reference = scene.georeference
    if reference is None or reference.transform is None or reference.crs is None:
        raise HsijaxError(f"{path}: polygons need a georeferenced scene (a GeoTIFF or an ENVI file with map info), "
                          "and this one has no CRS or transform; give a label image instead")
    try:
        meta, _, geometry, fields = pyogrio.raw.read(path, columns=[attribute])
    except Exception as error:  # pyogrio raises its own types for missing and unreadable files
        raise HsijaxError(f"{path}: not a readable vector file ({error})") from None
    if attribute not in list(meta["fields"]):
        available = ", ".join(pyogrio.read_info(path)["fields"]) or "none"
        raise HsijaxError(f"{path}: no attribute {attribute!r} (its attributes: {available}); pass --labels-attribute")
    if meta["crs"] is None or CRS.from_user_input(meta["crs"]) != CRS.from_user_input(reference.crs):
        raise HsijaxError(f"{path}: its CRS ({meta['crs']}) is not the scene's ({CRS.from_user_input(reference.crs)}); "
                          "reproject the polygons to the scene's CRS first")
    values = np.asarray(fields[0])
    whole = np.issubdtype(values.dtype, np.number) and np.all(values == np.round(values))
    if not whole or np.any((values < 1) | (values > 255)):
        raise HsijaxError(f"{path}: attribute {attribute!r} must hold class numbers 1..255")
    shapes = [(shapely.from_wkb(g), int(v)) for g, v in zip(geometry, values) if g is not None]
    if not shapes:
        raise HsijaxError(f"{path}: no polygons")
    return rasterize(shapes, out_shape=scene.cube.shape[:2], transform=Affine(*reference.transform), fill=0,
                     dtype="uint8")


def training_labels(path: Path, key: str | None, shape: tuple[int, int], scene=None,
                    attribute: str = "class") -> np.ndarray:
    """The label image (H, W) of the scene's size: 0 = unlabelled, classes 1..255 -- read from an
    image, or from polygons (`vector_labels`) rasterised onto the scene's grid."""
    if Path(path).suffix.lower() in VECTOR_SUFFIXES:
        labels = vector_labels(Path(path), attribute, scene)
    else:
        labels = read_labels(path, key)
    if labels.shape != shape:
        raise HsijaxError(f"{path}: label image of shape {labels.shape}, but the scene is {shape[0]} × {shape[1]}")
    if not np.issubdtype(labels.dtype, np.integer) and not np.all(labels == np.round(labels)):
        raise HsijaxError(f"{path}: labels must be whole numbers (0 = unlabelled)")
    labels = labels.astype(np.int64)
    if labels.min() < 0 or labels.max() > 255:
        raise HsijaxError(f"{path}: labels must lie in 0..255 (0 = unlabelled), found {labels.min()}..{labels.max()}")
    classes = np.unique(labels[labels > 0])
    if len(classes) < 2:
        raise HsijaxError(f"{path}: needs at least two classes of labelled pixels (> 0), found {len(classes)}")
    return labels


def scene_blocks(models: dict, scene, normalization: Normalization):
    """For each block of rows of the scene in turn (`hsijax.evaluate.encode_scene.code_blocks`: the
    cube read once, a block at a time): ({name: codes (pixels, c) float32} of every model in
    ``models``, valid (pixels,) bool). Pixels whose every band holds the file's nodata value are not
    valid (their codes are zeros). Nothing of the whole scene is kept: memory does not grow with it."""
    for block in code_blocks(tuple(models.values()), scene, normalization, progress=False):
        codes = {name: values.reshape(-1, model.config.code_width)
                 for (name, model), values in zip(models.items(), block)}
        valid = ~np.isnan(next(iter(codes.values()))).any(axis=1)
        yield {name: np.nan_to_num(values, nan=0.0, copy=False) for name, values in codes.items()}, valid


def column_sums(total: np.ndarray | None, rows: np.ndarray) -> np.ndarray:
    """``total`` (None: nothing yet) plus the float32 column sums of ``rows``, added one row after
    another: the blocks of an array given in turn sum bit for bit as NumPy sums the whole array
    along its first axis (sequentially), so a statistic of blocks is the whole array's."""
    return rows.sum(0) if total is None else np.concatenate([total[None], rows]).sum(0)


def column_mean(total: np.ndarray, count: int) -> np.ndarray:
    """NumPy's mean from its sum: divided by the count as an intp, rounded to float32."""
    return np.true_divide(total, np.intp(count), out=np.empty_like(total), casting="unsafe")


class CodeFile:
    """A whole scene's codes (pixels, c) float32 on disk: appended a block at a time, read back a
    chunk at a time, never whole in memory."""

    def __init__(self, path: Path, width: int):
        self.path, self.width, self.rows = path, width, 0
        self._stream = open(path, "wb")  # noqa: SIM115 -- closed by `chunks` (or with its folder)

    def append(self, codes: np.ndarray) -> None:
        self._stream.write(np.ascontiguousarray(codes, np.float32).tobytes())
        self.rows += len(codes)

    def chunks(self, rows: int):
        """(start, codes (n, c)) of ``rows`` pixels at a time, in pixel order."""
        self._stream.close()
        with open(self.path, "rb") as stream:
            for start in range(0, self.rows, rows):
                count = min(rows, self.rows - start)
                yield start, np.fromfile(stream, np.float32, count * self.width).reshape(count, self.width)


def scene_features(encoders: dict, scene, normalization: Normalization, labels: np.ndarray, folder: Path):
    """({encoder: (its codes of the labelled valid pixels standardised, in pixel order, mean, scale,
    its `CodeFile` of every pixel)}, valid (H*W,) bool), the scene read once: what
    `hsijax.evaluate.classification.standardised` gives for the whole scene's codes (the same float32
    mean and scale, bit for bit, over every valid pixel), with only a block of codes in memory."""
    flat = labels.reshape(-1)
    files = {name: CodeFile(folder / f"codes_{index}.f32", model.config.code_width)
             for index, (name, model) in enumerate(encoders.items())}
    totals, kept = dict.fromkeys(encoders), {name: [] for name in encoders}
    valid = np.zeros(flat.size, bool)
    start = 0
    for codes, ok in scene_blocks(encoders, scene, normalization):
        stop = start + len(ok)
        valid[start:stop] = ok
        labelled = (flat[start:stop] > 0) & ok
        for name, values in codes.items():
            files[name].append(values)
            totals[name] = column_sums(totals[name], values[ok])
            kept[name].append(values[labelled])
        start = stop
    count = int(valid.sum())
    features = {}
    for name, codes in files.items():
        mean = column_mean(totals[name], count)
        squares = None
        for begin, chunk in codes.chunks(CHUNK):  # the sum of squared deviations, as `np.var` adds them
            deviations = chunk[valid[begin:begin + len(chunk)]] - mean
            squares = column_sums(squares, np.square(deviations, out=deviations))
        scale = np.sqrt(column_mean(squares, count)) + 1e-6
        features[name] = ((np.concatenate(kept[name]) - mean) / scale, mean, scale, codes)
    return features, valid


def predicted_map(classifier: MapClassifier, scene, normalization: Normalization,
                  codes: CodeFile | None = None, valid: np.ndarray | None = None) -> np.ndarray:
    """The class numbers (H, W) uint8 of every pixel of the scene, 0 where it has no data, a chunk of
    `CHUNK` pixels at a time: of ``codes`` (`scene_features`' file of the classifier's encoder) and
    ``valid`` when given, else of the scene, each block of rows encoded, standardised and classified."""
    class_map = np.zeros(scene.cube.shape[0] * scene.cube.shape[1], np.uint8)
    if codes is not None:
        chunks = ((start, chunk, valid[start:start + len(chunk)]) for start, chunk in codes.chunks(CHUNK))
    else:
        chunks = _scene_chunks(classifier.model, scene, normalization)
    for start, chunk, ok in chunks:
        predicted = classifier.predict_codes(classifier.standardise(chunk))
        class_map[start:start + len(ok)] = np.where(ok, predicted, 0)
    return class_map.reshape(scene.cube.shape[:2])


def _scene_chunks(model, scene, normalization: Normalization):
    """(start, codes, valid) of `CHUNK` pixels at a time (the last one fewer) of the scene's blocks of
    rows: cut as `MapClassifier.predict_codes` cuts a whole array, so each chunk is classified by the
    same computation."""
    buffer, mask, start = np.empty((0, model.config.code_width), np.float32), np.empty(0, bool), 0
    for codes, valid in scene_blocks({"encoder": model}, scene, normalization):
        buffer, mask = np.concatenate([buffer, codes["encoder"]]), np.concatenate([mask, valid])
        while len(buffer) >= CHUNK:
            yield start, buffer[:CHUNK], mask[:CHUNK]
            buffer, mask, start = buffer[CHUNK:], mask[CHUNK:], start + CHUNK
    if len(buffer):
        yield start, buffer, mask


COLOURS = "tab20"


def colour_table(classes) -> dict[int, tuple[int, int, int, int]]:
    """{class number: RGBA} (tab20's colours by class number), 0 transparent black: nodata."""
    cmap = pyplot().get_cmap(COLOURS)
    table = {0: (0, 0, 0, 0)}
    for value in classes:
        r, g, b, _ = cmap((int(value) - 1) % 20)
        table[int(value)] = (int(r * 255), int(g * 255), int(b * 255), 255)
    return table


def map_figure(class_map: np.ndarray, classes, names: dict[int, str], path: Path) -> Path:
    plt = pyplot()
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    table = colour_table(classes)
    top = int(max(classes))
    colours = [np.array(table.get(v, (0, 0, 0, 0))) / 255 for v in range(top + 1)]
    height, width = class_map.shape
    side = max(height, width)
    figure, axis = plt.subplots(figsize=(min(12, 3 + 7 * width / side), min(10, 1 + 7 * height / side)),
                                layout="constrained")  # room for the legend beside the map
    axis.imshow(class_map, cmap=ListedColormap(colours), vmin=-0.5, vmax=top + 0.5, interpolation="nearest")
    axis.axis("off")
    handles = [Patch(color=colours[int(v)], label=f"{int(v)}: {names[int(v)]}" if int(v) in names else str(int(v)))
               for v in classes]
    figure.legend(handles=handles, loc="outside right upper", fontsize=8, frameon=False)
    return save_atomic(figure, path)


def write_map(out: Path, class_map: np.ndarray, scene, classes, names: dict[int, str], tags: dict) -> None:
    height, width = class_map.shape
    blocks = (class_map[start:start + ROWS_PER_BLOCK, :, None] for start in range(0, height, ROWS_PER_BLOCK))
    write_geotiff(out / "map.tif", (height, width, 1), blocks, scene.georeference, nodata=0,
                  tags={key: str(value) for key, value in tags.items()}, band_names=["class"], dtype="uint8",
                  colormap=colour_table(classes))
    map_figure(class_map, classes, names, out / "map.png")


def class_names_of(text: str | None, classes) -> dict[int, str]:
    """``--class-names a,b,c``: the names of classes 1, 2, 3, ...; none given, none known."""
    if not text:
        return {}
    names = [name.strip() for name in text.split(",")]
    if len(names) < max(classes):
        raise HsijaxError(f"--class-names: {len(names)} names for class numbers up to {max(classes)}")
    return {index: name for index, name in enumerate(names, start=1)}


def report_lines(scene_source: str, labels_source: str, checkpoint: str, counts: dict[int, int], rows: list[dict],
                 chosen: tuple[str, str], scores: dict, names: dict[int, str], matrix: np.ndarray, classes,
                 seconds: float) -> list[str]:
    label = lambda c: f"{c}: {names[c]}" if c in names else str(c)
    lines = ["# hsijax map", "",
             f"Scene `{scene_source}`, training labels `{labels_source}` ({sum(counts.values()):,} pixels in "
             f"{len(counts)} classes), codes of `{checkpoint}`. The encoder and head were chosen by 3-fold "
             "cross-validation on the training pixels only; the scores below are on their held-out folds "
             f"(no other labels were given). {seconds:.1f} s in all.", "",
             "| encoder | head | settings | cross-validated OA (%) |", "|---|---|---|---|"]
    for row in rows:
        mark = " **(chosen)**" if (row["encoder"], row["head"]) == chosen else ""
        lines.append(f"| {row['encoder']} | {row['head']}{mark} | {row['settings']} | "
                     f"{100 * row['cross_validated_oa']:.2f} |")
    lines += ["", f"The chosen head on the held-out folds: OA {100 * scores['oa']:.2f} %, "
              f"AA {100 * scores['aa']:.2f} %, "
              f"κ {scores['kappa']:.3f}.", "", "| class | training pixels | accuracy (%) |", "|---|---|---|"]
    for c in classes:
        lines.append(f"| {label(c)} | {counts[c]:,} | {100 * scores['per_class'][c]:.1f} |")
    lines += ["", "Confusion matrix (rows: label, columns: predicted):", "",
              "| | " + " | ".join(str(c) for c in classes) + " |", "|---" * (len(classes) + 1) + "|"]
    for c, row in zip(classes, matrix):
        lines.append(f"| {c} | " + " | ".join(str(int(v)) for v in row) + " |")
    return lines + ["", "![map](map.png)", ""]


def make_map(options: ImportOptions, out, labels_path: Path | None = None, labels_key: str | None = None,
             checkpoint: str = "pretrained", classifier_dir: Path | None = None, class_names: str | None = None,
             normalization: str = "saved", seed: int = 0, labels_attribute: str = "class") -> MapResult:
    """`hsijax map`: train a classifier on the labelled pixels (or reuse ``classifier_dir``) and map
    every pixel of the scene; see the module docstring for what is written."""
    began = time.perf_counter()
    if (labels_path is None) == (classifier_dir is None):
        raise HsijaxError("give either --labels FILE (to train a classifier) or --classifier DIR (to apply one)")
    out = check_output(out, "directory")
    if out.exists() and any(out.iterdir()):
        raise HsijaxError(f"{out}: exists and is not empty; give a new --out folder")
    scene = read_scene_file(options, options.file.stem.lower())
    stats = check_scene_content(scene, str(options.file))
    shape = scene.cube.shape[:2]
    if classifier_dir is not None:
        classifier = load_classifier(classifier_dir)
        classifier.model.config.check_scene(scene.cube.shape[-1], scene.wavelengths_nm, str(options.file))
        norm = classifier.normalization if normalization == "saved" else stats.normalization
        say(f"applying {classifier_dir} ({classifier.kind}) to {shape[0] * shape[1]:,} pixels")
        class_map = predicted_map(classifier, scene, norm)
        classes, names = classifier.classes, dict(zip(classifier.classes, classifier.class_names))
        names = {c: n for c, n in names.items() if n}
        record = {"classifier": str(classifier_dir), "normalization": normalization}
        lines = ["# hsijax map", "", f"Scene `{options.file}` mapped with the classifier `{classifier_dir}` "
                 f"({classifier.kind}; its normalisation: {normalization}). {time.perf_counter() - began:.1f} s.", "",
                 "![map](map.png)", ""]
        chosen, oa = classifier.kind, float("nan")
    else:
        labels = training_labels(labels_path, labels_key, shape, scene, labels_attribute)
        checkpoint_model = load_model(checkpoint)
        checkpoint_model.config.check_scene(scene.cube.shape[-1], scene.wavelengths_nm, str(options.file))
        encoders = map_encoders(checkpoint_model)
        say(f"encoding {shape[0] * shape[1]:,} pixels with {checkpoint} ({', '.join(encoders)})")
        # The scene's codes go to files beside the output, not memory (`scene_features`): the chosen
        # encoder's are read back a chunk at a time to classify them.
        out.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=f".{out.name}.codes-", dir=out.parent) as scratch:
            features, valid = scene_features(encoders, scene, stats.normalization, labels, Path(scratch))
            train = (labels.reshape(-1) > 0) & valid
            classes = tuple(int(c) for c in np.unique(labels.reshape(-1)[train]))
            say(f"choosing the encoder and head on {int(train.sum()):,} labelled pixels in {len(classes)} classes "
                "(3-fold CV)")
            encoder, estimator, rows, held_out = choose_map_head(
                {name: values for name, (values, *_) in features.items()}, labels.reshape(-1)[train], seed)
            model = encoders[encoder]
            _, mean, scale, codes = features[encoder]
            kind, arrays = head_arrays(estimator)
            names = class_names_of(class_names, classes)
            classifier = MapClassifier(
                model, kind, {**arrays, "mean": mean.astype(np.float32), "scale": scale.astype(np.float32)}, classes,
                tuple(names.get(c, "") for c in classes), stats.normalization,
                None if scene.wavelengths_nm is None else tuple(float(w) for w in scene.wavelengths_nm),
                {"checkpoint": str(checkpoint), "scene": str(options.file), "labels": str(labels_path)})
            class_map = predicted_map(classifier, scene, stats.normalization, codes, valid)
        truth = labels.reshape(-1)[train]
        scores = classification_scores(truth, held_out)
        from sklearn.metrics import confusion_matrix

        matrix = confusion_matrix(truth, held_out, labels=list(classes))
        counts = {c: int((truth == c).sum()) for c in classes}
        chosen = f"{kind} head on the {encoder} codes"
        oa = next(row["cross_validated_oa"] for row in rows if row["head"] == kind and row["encoder"] == encoder)
        record = {"checkpoint": str(checkpoint), "labels": str(labels_path), "candidates": rows, "chosen": kind,
                  "encoder": encoder, "held_out_folds": scores, "training_pixels": counts}
        lines = report_lines(str(options.file), str(labels_path), str(checkpoint), counts, rows, (encoder, kind),
                             scores, names, matrix, classes, time.perf_counter() - began)
    tags = {"hsijax_map": "class numbers of the training labels; 0 = no data", "scene": str(options.file), **{
        k: v for k, v in record.items() if isinstance(v, str)}}
    # Written in a hidden sibling, moved into place when complete: a failure leaves no half a map.
    staging = out.with_name(f".{out.name}.writing")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        write_map(staging, class_map, scene, classes, names, tags)
        if classifier_dir is None:
            save_classifier(classifier, staging / "classifier")
        write_json_atomic(staging / "report.json", {**record, "scene": str(options.file), "shape": list(shape),
                                                    "classes": list(classes), "seconds": time.perf_counter() - began})
        write_text_atomic(staging / "report.md", "\n".join(lines))
        if out.exists():
            out.rmdir()  # checked empty above
        staging.rename(out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return MapResult(out, chosen, oa, tuple(classes), time.perf_counter() - began)

