"""Rasters by windows, with rasterio (GDAL, the field's library): GeoTIFF and ENVI cubes read a block
of rows at a time, and codes or maps written as tiled GeoTIFFs that keep the input's georeferencing.

`WindowedCube` is a (H, W, b) cube in a file that is never whole in memory: ``cube[start:stop]``
reads those rows (band-last, whatever the file's interleave), ``np.asarray(cube)`` the whole.
The code that slices scenes by rows (normalisation fits, imports, `hsijax encode`) therefore
streams a file larger than memory with flat memory. GDAL's block cache is capped (`CACHE_BYTES`) so
that it does not grow to its default of 5 % of the machine's memory.

`write_geotiff` streams blocks of rows into a new float32 GeoTIFF, tiled, with the input's CRS,
transform and nodata when it had them, and tags saying what made it; it appears whole or not at
all (a temporary sibling renamed into place).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from hsijax.errors import HsijaxError, describe
from hsijax.files import atomic_output

CACHE_BYTES = 256 * 2**20  # GDAL's block cache (its default is 5 % of the machine's memory)
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
    """A band-last (H, W, b) view of a raster file GDAL reads, read by blocks of rows on demand.

    ``bands``: which of the file's bands (0-based indices) the cube holds (default all). ``nodata``:
    the file's nodata value, if it declares one; ``georeference``: its CRS and transform.
    """

    ndim = 3

    def __init__(self, path, bands: np.ndarray | None = None):
        import rasterio

        self.path = Path(path)
        try:
            with _environment():
                self._dataset = rasterio.open(self.path)
        except Exception as error:  # rasterio raises its own types for unreadable files
            raise HsijaxError(f"{path}: not a raster GDAL can read ({describe(error)})") from None
        dataset = self._dataset
        self.bands = np.arange(dataset.count) if bands is None else np.asarray(bands)
        self.shape = (dataset.height, dataset.width, len(self.bands))
        self.dtype = np.dtype(dataset.dtypes[0])
        self.nodata = dataset.nodata
        crs = dataset.crs.to_wkt() if dataset.crs else None
        identity = dataset.transform.is_identity
        self.georeference = (GeoReference(crs, None if identity else tuple(dataset.transform)[:6])
                             if crs or not identity else None)
        self.block_rows = dataset.block_shapes[0][0] if dataset.block_shapes else 1

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
        from rasterio.windows import Window

        start, stop = max(0, start), min(stop, self.shape[0])
        if stop <= start:
            return np.zeros((0, *self.shape[1:]), self.dtype)
        try:
            with _environment():
                block = self._dataset.read([int(b) + 1 for b in self.bands],
                                           window=Window(0, start, self.shape[1], stop - start))
        except Exception as error:
            raise HsijaxError(f"{self.path}: rows {start}-{stop} cannot be read ({describe(error)})") from None
        return np.ascontiguousarray(np.moveaxis(block, 0, -1))

    def __getitem__(self, key):
        if isinstance(key, tuple) and len(key) == 2 and key[0] is Ellipsis:  # cube[..., kept bands]
            kept = np.arange(self.shape[-1])[key[1]]
            return WindowedCube(self.path, self.bands[kept])
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

    def close(self) -> None:
        self._dataset.close()


def opens_with_gdal(path, band_count: int) -> bool:
    """Whether GDAL reads ``path`` as a raster of ``band_count`` bands (how a TIFF's own axes said)."""
    import rasterio

    try:
        with _environment(), rasterio.open(path) as dataset:
            return dataset.count == band_count
    except Exception:  # noqa: BLE001 -- anything GDAL cannot open is read another way
        return False


def write_geotiff(path, shape: tuple[int, int, int], blocks: Iterable[np.ndarray], georeference: GeoReference | None,
                  nodata: float | None = None, tags: dict[str, str] | None = None,
                  band_names: list[str] | None = None) -> Path:
    """Write a (H, W, c) float32 GeoTIFF from ``blocks`` of consecutive rows (each (rows, W, c)),
    tiled `TILE` x `TILE`, pixel-interleaved, uncompressed, with ``georeference``, ``nodata``, the
    dataset ``tags`` and one name per band; returns its path. Nothing is left behind on failure."""
    import rasterio
    from rasterio.transform import Affine
    from rasterio.windows import Window

    height, width, count = shape
    profile = {"driver": "GTiff", "height": height, "width": width, "count": count, "dtype": "float32",
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
                block = np.asarray(block, np.float32)
                target.write(np.moveaxis(block, -1, 0), window=Window(0, start, width, len(block)))
                start += len(block)
            if start != height:
                raise ValueError(f"write_geotiff: {start} rows written of {height}")
            target.update_tags(**(tags or {}))
            for index, name in enumerate(band_names or [], start=1):
                target.set_band_description(index, name)
    return Path(path)
