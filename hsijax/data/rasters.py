"""Rasters by windows, with rasterio (GDAL, the field's library): GeoTIFF and ENVI cubes read a block
of rows at a time, and codes or maps written as tiled GeoTIFFs that keep the input's georeferencing.

`WindowedCube` is a (H, W, b) cube in a file that is never whole in memory: ``cube[start:stop]``
reads those rows (band-last, whatever the file's interleave), ``np.asarray(cube)`` the whole.
The code that slices scenes by rows (normalisation fits, imports, `hsijax encode`) therefore
streams a file larger than memory with flat memory. Uncompressed striped GeoTIFFs and ENVI data
files are read with ``pread`` (`RawTiffCube`, `EnviCube`: GDAL reads the first at 40 % of that
speed here, and its raw driver maps an ENVI file, leaving what it read resident: +157 MiB reading
a 183 MiB file); any other GeoTIFF by GDAL (`GdalCube`), whose block cache is capped
(`CACHE_BYTES`) so that it does not grow to its default of 5 % of the machine's memory. A cube
from a band-sequential file also gives its rows band-first (`WindowedCube.band_first`), as read.

`write_geotiff` streams blocks of rows into a new float32 GeoTIFF, tiled, with the input's CRS,
transform and nodata when it had them, and tags saying what made it; it appears whole or not at
all (a temporary sibling renamed into place).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import warnings
import weakref
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from hsijax.errors import HsijaxError, describe
from hsijax.files import atomic_output

CACHE_BYTES = 64 * 2**20  # GDAL's block cache (its default is 5 % of the machine's memory)
TILE = 256  # output tiles, pixels a side


def _environment():
    import rasterio

    return rasterio.Env(GDAL_CACHEMAX=CACHE_BYTES, GDAL_PAM_ENABLED="NO")  # PAM: no .aux.xml sidecars


@dataclasses.dataclass(frozen=True)
class GeoReference:
    """Where a raster lies: its CRS (WKT, or None when the file has none) and its affine transform
    (GDAL's six numbers, or None for a plain pixel grid)."""

    crs: str | None
    transform: tuple[float, ...] | None

    def to_dict(self) -> dict:
        return {"crs": self.crs, "transform": None if self.transform is None else list(self.transform)}


class WindowedCube:
    """A band-last (H, W, b) cube in a file, read by blocks of rows on demand (`rows`).

    ``bands``: which of the file's bands (0-based indices) the cube holds; ``nodata``: the file's
    nodata value, if it declares one; ``georeference``: its CRS and transform, if it has them;
    ``block_rows``: the rows the file stores together (reads of whole blocks are cheapest).
    Subclasses read the rows: `RawTiffCube` and `GdalCube` (GeoTIFF), `EnviCube` (ENVI's data file).
    """

    ndim = 3

    def __init__(self, path, shape: tuple[int, int, int], dtype, bands=None, nodata=None, georeference=None,
                 block_rows: int = 1):
        self.path = Path(path)
        self.bands = np.arange(shape[2]) if bands is None else np.asarray(bands)
        self.shape = (shape[0], shape[1], len(self.bands))
        self.dtype, self.nodata, self.georeference, self.block_rows = np.dtype(dtype), nodata, georeference, block_rows

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.itemsize

    def __len__(self) -> int:
        return self.shape[0]

    def rows(self, start: int, stop: int) -> np.ndarray:
        """Rows ``start:stop`` as a (rows, W, b) array."""
        start, stop = max(0, start), min(stop, self.shape[0])
        if stop <= start:
            return np.zeros((0, *self.shape[1:]), self.dtype)
        return self._read(start, stop)

    def _read(self, start: int, stop: int) -> np.ndarray:
        raise NotImplementedError

    def band_first(self, start: int, stop: int) -> np.ndarray:
        """Rows ``start:stop`` as a (b, rows, W) array, however the file lays them out: for a
        band-sequential file (a GeoTIFF's bands, ENVI BSQ) what it reads without a transpose, which
        costs as much as the read itself (1.2 s a pass over a 1.5 GiB GeoTIFF here)."""
        return np.moveaxis(self.rows(start, stop), -1, 0)

    def band_first_blocks(self, block_bytes: int = 16 * 2**20):
        """(b, rows, W) blocks of about ``block_bytes`` covering every row in order."""
        rows = max(1, block_bytes // max(1, self.shape[1] * self.shape[2] * self.dtype.itemsize))
        for start in range(0, self.shape[0], rows):
            yield self.band_first(start, start + rows)

    def with_bands(self, bands: np.ndarray) -> WindowedCube:
        """The same file, holding only the file's bands ``bands``."""
        raise NotImplementedError

    def __getitem__(self, key):
        if isinstance(key, tuple) and len(key) == 2 and key[0] is Ellipsis:  # cube[..., kept bands]
            return self.with_bands(self.bands[np.arange(self.shape[-1])[key[1]]])
        if isinstance(key, slice) and key.step in (None, 1):
            start, stop, _ = key.indices(self.shape[0])
            return self.rows(start, stop)
        if isinstance(key, (int, np.integer)):
            index = int(key) + (self.shape[0] if key < 0 else 0)
            return self.rows(index, index + 1)[0]
        return np.asarray(self)[key]

    def __array__(self, dtype=None, copy=None):
        whole = self.rows(0, self.shape[0])
        return whole if dtype is None else whole.astype(dtype)


def _georeference(dataset) -> GeoReference | None:
    crs = dataset.crs.to_wkt() if dataset.crs else None
    identity = dataset.transform.is_identity
    return GeoReference(crs, None if identity else tuple(dataset.transform)[:6]) if crs or not identity else None


def _open(path):
    import rasterio

    with _environment(), warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)  # a plain pixel grid
        return rasterio.open(path)


class GdalCube(WindowedCube):
    """A raster GDAL reads (GeoTIFF), by row windows through its (capped) block cache."""

    def __init__(self, path, bands=None):
        try:
            dataset = _open(path)
        except Exception as error:  # rasterio raises its own types for unreadable files
            raise HsijaxError(f"{path}: not a raster GDAL can read ({describe(error)})") from None
        self._dataset = dataset
        super().__init__(path, (dataset.height, dataset.width, dataset.count), dataset.dtypes[0], bands, dataset.nodata,
                         _georeference(dataset), dataset.block_shapes[0][0] if dataset.block_shapes else 1)

    def band_first(self, start: int, stop: int) -> np.ndarray:
        from rasterio.windows import Window

        start, stop = max(0, start), min(stop, self.shape[0])
        try:
            with _environment():
                return self._dataset.read([int(b) + 1 for b in self.bands],
                                          window=Window(0, start, self.shape[1], stop - start))
        except Exception as error:
            raise HsijaxError(f"{self.path}: rows {start}-{stop} cannot be read ({describe(error)})") from None

    def _read(self, start: int, stop: int) -> np.ndarray:
        return np.ascontiguousarray(np.moveaxis(self.band_first(start, stop), 0, -1))

    def with_bands(self, bands: np.ndarray) -> GdalCube:
        return GdalCube(self.path, bands)


class RawTiffCube(WindowedCube):
    """An uncompressed, striped TIFF read with ``pread`` strip by strip (runs of adjacent strips in one
    read), as `EnviCube` reads ENVI: 2.5 times GDAL's speed on a band-interleaved 1.5 GiB GeoTIFF
    here, with nothing left resident. Separate planes (band-sequential) give `band_first` blocks
    directly. The georeference and nodata are GDAL's reading of the file's tags."""

    def __init__(self, path, bands=None):
        import tifffile

        with tifffile.TiffFile(path) as tiff:
            page = tiff.pages[0]
            self.separate = page.planarconfig == tifffile.PLANARCONFIG.SEPARATE
            count = self.samples = page.samplesperpixel
            height, width = page.imagelength, page.imagewidth
            self.rows_per_strip = min(page.rowsperstrip or height, height)
            self.offsets = np.asarray(page.dataoffsets, np.int64)
            self.counts = np.asarray(page.databytecounts, np.int64)
            self.file_dtype = np.dtype(page.dtype).newbyteorder(tiff.byteorder)
        self.strips = -(-height // self.rows_per_strip)  # per plane
        with _open(path) as dataset:
            nodata, georeference = dataset.nodata, _georeference(dataset)
        super().__init__(path, (height, width, count), self.file_dtype.newbyteorder("="), bands, nodata, georeference,
                         self.rows_per_strip)
        self._descriptor = os.open(path, os.O_RDONLY)
        weakref.finalize(self, os.close, self._descriptor)

    @staticmethod
    def usable(page) -> bool:
        """Whether a TIFF page is one this reader reads: uncompressed, striped, one image."""
        import tifffile

        return (page.compression == tifffile.COMPRESSION.NONE and not page.is_tiled and page.predictor == 1
                and page.dtype is not None and page.bitspersample == 8 * np.dtype(page.dtype).itemsize
                and len(page.dataoffsets) == (page.samplesperpixel if page.planarconfig == 2 else 1)
                * -(-page.imagelength // min(page.rowsperstrip or page.imagelength, page.imagelength)))

    def _strips(self, index: int, count: int, target: np.ndarray) -> None:
        """Read the ``count`` strips from ``index`` on into ``target``, one ``pread`` per run of strips
        that lie end to end in the file."""
        view, done, last = memoryview(target).cast("B"), 0, index + count
        while done < len(view):
            stop = index + 1
            while stop < last and self.offsets[stop] == self.offsets[stop - 1] + self.counts[stop - 1]:
                stop += 1
            size = min(int(self.offsets[stop - 1] + self.counts[stop - 1] - self.offsets[index]), len(view) - done)
            if os.preadv(self._descriptor, [view[done:done + size]], int(self.offsets[index])) != size:
                raise HsijaxError(f"{self.path}: the TIFF ended early; it is truncated")
            done, index = done + size, stop

    def _block(self, start: int, stop: int, plane: int | None) -> np.ndarray:
        """Rows ``start:stop`` of one plane (separate: (rows, W)) or of all bands (contig: (rows, W, b))."""
        height, width, _ = self.shape
        first, last = start // self.rows_per_strip, -(-stop // self.rows_per_strip)
        rows = min(last * self.rows_per_strip, height) - first * self.rows_per_strip
        shape = (rows, width) if plane is not None else (rows, width, self.samples)
        block = np.empty(shape, self.file_dtype)
        self._strips((plane or 0) * self.strips + first, last - first, block)
        offset = start - first * self.rows_per_strip
        return block[offset:offset + stop - start]

    def band_first(self, start: int, stop: int) -> np.ndarray:
        if not self.separate:
            return super().band_first(start, stop)
        start, stop = max(0, start), min(stop, self.shape[0])
        block = np.empty((len(self.bands), stop - start, self.shape[1]), self.dtype)
        for index, band in enumerate(self.bands):
            block[index] = self._block(start, stop, int(band))
        return block

    def _read(self, start: int, stop: int) -> np.ndarray:
        if self.separate:
            return np.ascontiguousarray(np.moveaxis(self.band_first(start, stop), 0, -1))
        block = self._block(start, stop, None)
        cube = block[..., self.bands] if len(self.bands) != block.shape[-1] else block
        return np.ascontiguousarray(cube, self.dtype)

    def with_bands(self, bands: np.ndarray) -> RawTiffCube:
        return RawTiffCube(self.path, bands)


# ENVI "data type" codes -> NumPy dtypes (the numeric ones).
ENVI_DTYPES = {1: "u1", 2: "i2", 3: "i4", 4: "f4", 5: "f8", 12: "u2", 13: "u4", 14: "i8", 15: "u8"}
INTERLEAVES = ("bsq", "bil", "bip")


class EnviCube(WindowedCube):
    """An ENVI raw data file read with ``pread`` by rows -- one read per band (BSQ) or one in all
    (BIL, BIP) -- into new arrays: no memory map and no block cache, so what was read leaves memory
    with its block. ``header``: the ENVI header's fields (lower-case keys, as spectral reads them).
    Its georeference is GDAL's reading of the header's ``map info``, when GDAL can open the file."""

    def __init__(self, data_path, header: dict, bands=None):
        try:
            height, width, count = (int(header[key]) for key in ("lines", "samples", "bands"))
            code, interleave = int(header.get("data type", 0)), str(header.get("interleave", "bsq")).lower()
            self.offset = int(header.get("header offset", 0))
        except (KeyError, ValueError) as error:
            raise HsijaxError(f"{data_path}: its ENVI header lacks or garbles {error}") from None
        if code not in ENVI_DTYPES or interleave not in INTERLEAVES:
            raise HsijaxError(f"{data_path}: ENVI data type {code} / interleave {interleave!r} is not one hsijax reads")
        order = ">" if int(header.get("byte order", 0)) == 1 else "<"
        self.file_dtype, self.interleave, self.header = np.dtype(order + ENVI_DTYPES[code]), interleave, header
        expected = self.offset + height * width * count * self.file_dtype.itemsize
        if Path(data_path).stat().st_size < expected:
            raise HsijaxError(f"{data_path}: the data file is truncated ({Path(data_path).stat().st_size:,} bytes, "
                              f"its header promises {expected:,})")
        nodata = header.get("data ignore value")
        georeference = None
        with contextlib.suppress(Exception):  # map info GDAL cannot read: the cube is still read
            with _open(data_path) as dataset:
                georeference = _georeference(dataset)
        super().__init__(data_path, (height, width, count), self.file_dtype.newbyteorder("="), bands,
                         None if nodata is None else float(nodata), georeference)
        self._descriptor = os.open(data_path, os.O_RDONLY)
        weakref.finalize(self, os.close, self._descriptor)

    def _pread(self, offset: int, array: np.ndarray) -> None:
        view = memoryview(array).cast("B")
        if os.preadv(self._descriptor, [view], self.offset + offset) != len(view):
            raise HsijaxError(f"{self.path}: the data file ended early; it is truncated")

    def band_first(self, start: int, stop: int) -> np.ndarray:
        if self.interleave != "bsq":
            return super().band_first(start, stop)
        height, width, _ = self.shape
        start, stop = max(0, start), min(stop, height)
        block = np.empty((len(self.bands), stop - start, width), self.file_dtype)
        for index, band in enumerate(self.bands):
            self._pread((int(band) * height + start) * width * self.file_dtype.itemsize, block[index])
        return block.astype(self.dtype, copy=False)

    def _read(self, start: int, stop: int) -> np.ndarray:
        height, width, _ = self.shape
        count, rows, item = int(self.header["bands"]), stop - start, self.file_dtype.itemsize
        if self.interleave == "bsq":
            cube = np.moveaxis(self.band_first(start, stop), 0, -1)
        elif self.interleave == "bil":
            block = np.empty((rows, count, width), self.file_dtype)
            self._pread(start * count * width * item, block)
            cube = np.moveaxis(block, 1, -1)[..., self.bands]
        else:
            block = np.empty((rows, width, count), self.file_dtype)
            self._pread(start * width * count * item, block)
            cube = block[..., self.bands] if len(self.bands) != count else block
        return np.ascontiguousarray(cube, self.dtype)

    def with_bands(self, bands: np.ndarray) -> EnviCube:
        return EnviCube(self.path, self.header, bands)


def opens_with_gdal(path, band_count: int) -> bool:
    """Whether GDAL reads ``path`` as a raster of ``band_count`` bands (how a TIFF's own axes said)."""
    import rasterio

    try:
        with _environment(), warnings.catch_warnings():
            warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
            with rasterio.open(path) as dataset:
                return dataset.count == band_count
    except Exception:  # noqa: BLE001 -- anything GDAL cannot open is read another way
        return False


def write_geotiff(path, shape: tuple[int, int, int], blocks: Iterable[np.ndarray], georeference: GeoReference | None,
                  nodata: float | None = None, tags: dict[str, str] | None = None,
                  band_names: list[str] | None = None, dtype: str = "float32",
                  colormap: dict[int, tuple[int, int, int, int]] | None = None) -> Path:
    """Write a (H, W, c) GeoTIFF (float32 codes; ``dtype="uint8"`` with a ``colormap`` for a class map)
    from ``blocks`` of consecutive rows (each (rows, W, c)), tiled `TILE` x `TILE`, pixel-interleaved,
    uncompressed, with ``georeference``, ``nodata``, the dataset ``tags`` and one name per band;
    returns its path. Nothing is left behind on failure."""
    import rasterio
    from rasterio.transform import Affine
    from rasterio.windows import Window

    height, width, count = shape
    profile = {"driver": "GTiff", "height": height, "width": width, "count": count, "dtype": dtype,
               "tiled": True, "blockxsize": TILE, "blockysize": TILE, "interleave": "pixel", "BIGTIFF": "IF_SAFER"}
    if georeference is not None:
        profile["crs"] = georeference.crs
        if georeference.transform is not None:
            profile["transform"] = Affine(*georeference.transform)
    if nodata is not None:
        profile["nodata"] = nodata
    with atomic_output(path, suffix=".tif") as temporary, _environment():
        with rasterio.open(temporary, "w", **profile) as target:
            start = 0
            for block in blocks:
                block = np.asarray(block, dtype)
                target.write(np.moveaxis(block, -1, 0), window=Window(0, start, width, len(block)))
                start += len(block)
            if start != height:
                raise ValueError(f"write_geotiff: {start} rows written of {height}")
            target.update_tags(**(tags or {}))
            if colormap:
                target.write_colormap(1, colormap)
            for index, name in enumerate(band_names or [], start=1):
                target.set_band_description(index, name)
    return Path(path)
