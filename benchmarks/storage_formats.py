"""On-disk formats for a scene, read the way training reads it: which one can be the only copy?

    .venv/bin/python benchmarks/storage_formats.py --json benchmarks/results/storage_formats.json

The same scene -- Indian Pines tiled ten times (1450 x 145 x 200, float32 in sensor units, what
`benchmarks/pipeline.py` trains on) -- stored five ways, each read whole in ascending blocks of
about 9,000 pixels (the blocks the training pipeline's windows read), pixels/s of spectra delivered
as float32 arrays:
- ``tfds_pixel_examples``: hsijax's TFDS dataset, one example per pixel (ArrayRecord), decoded by
  TFDS's data source (what ``tfds.data_source`` / ``as_data_source`` gives a user);
- ``tfds_row_examples``: one example per image row (``spectra`` (W, b) as bytes, ``labels``,
  ``row``), written and decoded by TFDS;
- ``array_record_rows``: the same rows as bare float32 bytes in ArrayRecord as TFDS writes it
  (``group_size:1``, its default zstd compression), not decoded by TFDS;
- ``array_record_rows_uncompressed``: the same, ``group_size:1,uncompressed``;
- ``dense_npy``: hsijax's dense copy (``pixels.npy``) read with ``pread``
  (`hsijax.data.storage.DenseReader`), what training reads today.
The goal the format must keep: the training pipeline at >= 1,000,000 pixels/s at 10x Indian Pines.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
from common import finish, machine, parser, table

BLOCK_ROWS = 64  # image rows a read asks for: 64 x 145 = 9,280 pixels


def tiled_scene(copies: int):
    from hsijax.data.scene import Scene, load_indian_pines

    scene = load_indian_pines()
    return Scene(f"indian_pines_x{copies}", scene.sensor, np.tile(scene.cube, (copies, 1, 1)).astype(np.float32),
                 np.tile(scene.labels, (copies, 1)), scene.wavelengths_nm)


def rate(read_block, rows: int, width: int, repeats: int) -> float:
    """Best pixels/s of reading rows 0..rows in blocks of `BLOCK_ROWS` (each block -> float32 spectra)."""
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        for first in range(0, rows, BLOCK_ROWS):
            spectra = read_block(first, min(rows, first + BLOCK_ROWS))
            assert spectra.dtype == np.float32 and spectra.ndim == 2
        best = min(best, time.perf_counter() - start)
    return rows * width / best


def row_examples_builder(scene, folder: Path):
    import tensorflow_datasets as tfds

    height, width, bands = scene.cube.shape

    class RowExamples(tfds.core.GeneratorBasedBuilder, skip_registration=True):
        name = "row_examples"
        VERSION = tfds.core.Version("1.0.0")

        def _info(self):
            features = tfds.features.FeaturesDict({
                "spectra": tfds.features.Tensor(shape=(width, bands), dtype=np.float32,
                                                encoding=tfds.features.Encoding.BYTES),
                "labels": tfds.features.Tensor(shape=(width,), dtype=np.int32),
                "row": tfds.features.Scalar(dtype=np.int32),
            })
            return tfds.core.DatasetInfo(builder=self, features=features, disable_shuffling=True)

        def _split_generators(self, dl_manager):
            return {"train": self._generate_examples()}

        def _generate_examples(self):
            for row in range(height):
                yield row, {"spectra": scene.cube[row], "labels": scene.labels[row].astype(np.int32), "row": row}

    builder = RowExamples(data_dir=str(folder), file_format="array_record")
    builder.download_and_prepare()
    return builder.as_data_source()["train"]


def bare_rows(scene, path: Path, options: str):
    from array_record.python import array_record_module
    from array_record.python.array_record_data_source import ArrayRecordDataSource

    writer = array_record_module.ArrayRecordWriter(str(path), options)
    for row in scene.cube:
        writer.write(np.ascontiguousarray(row, np.float32).tobytes())
    writer.close()
    return ArrayRecordDataSource([str(path)])


def measure(copies: int, repeats: int) -> list[dict]:
    from hsijax.data.builders import build_dataset
    from hsijax.data.storage import DENSE_LABELS, DENSE_PIXELS, DenseReader, load_dataset

    scene = tiled_scene(copies)
    height, width, bands = scene.cube.shape
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        dataset = load_dataset(build_dataset(scene, folder / "pixels"))
        dense = DenseReader(dataset.directory / DENSE_PIXELS, dataset.directory / DENSE_LABELS)
        row_source = row_examples_builder(scene, folder / "rows")
        compressed = bare_rows(scene, folder / "rows.array_record", "group_size:1")
        uncompressed = bare_rows(scene, folder / "rows_uncompressed.array_record", "group_size:1,uncompressed")

        def pixel_examples(first, last):
            return dataset.read(range(first * width, last * width))["spectrum"]

        def row_examples(first, last):
            return np.concatenate([e["spectra"] for e in row_source.__getitems__(list(range(first, last)))])

        def bare(source):
            return lambda first, last: np.frombuffer(b"".join(source.__getitems__(list(range(first, last)))),
                                                     np.float32).reshape(-1, bands)

        readers = {
            "tfds_pixel_examples": (pixel_examples, min(height, 2 * BLOCK_ROWS)),  # 12 k px/s: a sample
            "tfds_row_examples": (row_examples, height),
            "array_record_rows": (bare(compressed), height),
            "array_record_rows_uncompressed": (bare(uncompressed), height),
            "dense_npy": (lambda first, last: dense.rows(first * width, last * width), height),
        }
        sizes = {
            "tfds_pixel_examples": sum(f.stat().st_size for f in dataset.directory.glob("*.array_record*")),
            "tfds_row_examples": sum(f.stat().st_size for f in (folder / "rows").rglob("*.array_record*")),
            "array_record_rows": (folder / "rows.array_record").stat().st_size,
            "array_record_rows_uncompressed": (folder / "rows_uncompressed.array_record").stat().st_size,
            "dense_npy": (dataset.directory / DENSE_PIXELS).stat().st_size,
        }
        for name, (reader, read_rows) in readers.items():
            np.testing.assert_array_equal(reader(0, 2), scene.cube[:2].reshape(-1, bands))  # the same pixels
            rows.append({"format": name, "pixels_read": read_rows * width, "mib_on_disk": sizes[name] / 2**20,
                         "pixels_per_second": rate(reader, read_rows, width, repeats)})
    return rows


def main() -> None:
    args = parser(__doc__.splitlines()[0]).parse_args()
    copies, repeats = (1, 1) if args.quick else (10, 3)
    rows = measure(copies, repeats)
    print(table(rows, ["format", "pixels_read", "mib_on_disk", "pixels_per_second"]))
    rates = {row["format"]: round(row["pixels_per_second"]) for row in rows}
    finish({**machine(), "command": "python benchmarks/storage_formats.py" + (" --quick" if args.quick else ""),
            "copies": copies, "block_rows": BLOCK_ROWS, "px_s": rates, "formats": rows}, args.json)


if __name__ == "__main__":
    main()
