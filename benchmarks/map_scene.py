"""Time and peak memory of `hsijax map` end to end, on a large synthetic scene and on Indian Pines.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/map_scene.py --json benchmarks/results/map_scene.json

1. **A 2,000 x 2,000 x 200 uint16 GeoTIFF** (1.5 GiB; band-interleaved, striped, a CRS and transform,
   written a block of rows at a time as `encode.py` writes its scene): eight materials, each a smooth
   spectrum, in Voronoi regions, their brightness varying smoothly across the scene, with noise; a
   label image (.npy) with 40 pixels of each class (320 in all), drawn at random inside each region.
   `hsijax map SCENE --labels LABELS --checkpoint pretrained --wavelengths linspace:400:2500` in a
   child process (warm page cache; --quick: in this one): wall time (start-up and compilation
   included), pixels/s, the command's peak RSS, and how much of the map agrees with the regions the
   scene was made of.
2. **Indian Pines, 5 % of its labels** (`hsijax.evaluate.splits.stratified_split`, seed 0: 505
   pixels) written as a .npy with its band centres and label image: the same command, seconds and
   peak RSS, and the map's overall accuracy on the other labelled pixels.

``--workdir DIR`` keeps the synthetic scene (made again only when missing) and every map there.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from common import finish, machine, parser, table

CLASSES = 8
LABELS_PER_CLASS = 40
# Runs `hsijax map` and writes its peak RSS (VmHWM, kB): a child's getrusage ru_maxrss would keep the
# RSS of the forked parent from before its exec.
MEASURED_MAP = """
import sys
from hsijax.cli import main
code = main(sys.argv[2:])
peak = next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM:"))
open(sys.argv[1], "w").write(peak)
sys.exit(code)
"""


def materials(bands: int, seed: int = 0) -> np.ndarray:
    """(CLASSES, bands) smooth spectra in sensor units: a baseline and three Gaussian features each."""
    rng = np.random.default_rng(seed)
    grid = np.linspace(0, 1, bands)
    spectra = np.empty((CLASSES, bands))
    for index in range(CLASSES):
        centres, widths, depths = rng.uniform(0, 1, 3), rng.uniform(0.04, 0.2, 3), rng.uniform(-1500, 2500, 3)
        spectra[index] = (rng.uniform(2500, 5000) + rng.uniform(-1500, 1500) * grid
                          + (depths * np.exp(-0.5 * ((grid[:, None] - centres) / widths) ** 2)).sum(1))
    return spectra


def region_rows(seeds: np.ndarray, start: int, stop: int, width: int) -> np.ndarray:
    """Class numbers 1..CLASSES (rows, W) of image rows start..stop: the nearest of the seed points."""
    rows, cols = np.mgrid[start:stop, 0:width]
    distances = (rows[..., None] - seeds[:, 0]) ** 2 + (cols[..., None] - seeds[:, 1]) ** 2
    return (np.argmin(distances, axis=-1) + 1).astype(np.uint8)


def write_scene(shape: tuple[int, int, int], folder: Path, block: int = 50) -> tuple[Path, Path, np.ndarray]:
    """(the GeoTIFF, its label image .npy, its regions (H, W) uint8): `materials` in Voronoi regions,
    brightness varying smoothly, Gaussian noise; written a block of rows at a time. Kept in
    ``folder`` and reused when it is there (the same shape makes the same scene)."""
    import rasterio
    from rasterio.transform import from_origin
    from rasterio.windows import Window

    height, width, bands = shape
    rng = np.random.default_rng(0)
    seeds = rng.uniform(0, 1, (CLASSES, 2)) * (height, width)
    spectra = materials(bands).astype(np.float32)
    regions = np.concatenate([region_rows(seeds, s, min(s + block, height), width) for s in range(0, height, block)])
    name = f"scene_{height}x{width}x{bands}"
    tiff, labels_path = folder / f"{name}.tif", folder / f"{name}_labels.npy"
    if not tiff.is_file():
        profile = {"driver": "GTiff", "height": height, "width": width, "count": bands, "dtype": "uint16",
                   "crs": "EPSG:32615", "transform": from_origin(500000, 4000000, 30, 30), "interleave": "band"}
        staging = tiff.with_name(f".{tiff.name}")
        with rasterio.open(staging, "w", **profile) as target:
            for start in range(0, height, block):
                stop = min(start + block, height)
                rows, cols = np.mgrid[start:stop, 0:width].astype(np.float32)
                brightness = 1 + 0.15 * np.sin(rows / 310 + 1.0) * np.cos(cols / 270)
                values = spectra[regions[start:stop] - 1] * brightness[..., None]
                values += rng.normal(0, 120, values.shape).astype(np.float32)
                target.write(np.moveaxis(values.clip(0, 65535).astype(np.uint16), -1, 0),
                             window=Window(0, start, width, stop - start))
        staging.rename(tiff)
    if not labels_path.is_file():
        labels = np.zeros((height, width), np.uint8)
        picker = np.random.default_rng(1)
        for c in range(1, CLASSES + 1):
            members = np.flatnonzero(regions.reshape(-1) == c)
            labels.reshape(-1)[picker.choice(members, min(LABELS_PER_CLASS, len(members)), replace=False)] = c
        np.save(labels_path, labels)
    return tiff, labels_path, regions


def indian_pines(folder: Path, rows: int | None = None) -> tuple[Path, Path, Path, np.ndarray]:
    """(cube .npy, band centres .txt, 5 % label image .npy, the other labelled pixels' labels (H, W),
    0 elsewhere) of Indian Pines (its first ``rows`` image rows: --quick)."""
    from hsijax import load_indian_pines
    from hsijax.evaluate.splits import stratified_split

    scene = load_indian_pines()
    cube, truth = scene.cube[:rows], np.asarray(scene.labels[:rows])
    train, test = stratified_split(truth, 0.05, 0)
    labels, held_out = np.zeros(truth.size, np.uint8), np.zeros(truth.size, np.uint8)
    labels[train], held_out[test] = truth.reshape(-1)[train], truth.reshape(-1)[test]
    np.save(folder / "indian_pines.npy", np.ascontiguousarray(cube))
    np.savetxt(folder / "indian_pines_wavelengths.txt", scene.wavelengths_nm)
    np.save(folder / "indian_pines_labels.npy", labels.reshape(truth.shape))
    return (folder / "indian_pines.npy", folder / "indian_pines_wavelengths.txt", folder / "indian_pines_labels.npy",
            held_out.reshape(truth.shape))


def warm(path: Path) -> None:
    with open(path, "rb") as stream:
        while stream.read(64 * 2**20):
            pass


def run_map(scene: Path, labels: Path, wavelengths: str, out: Path, peak_file: Path, in_process: bool = False) -> dict:
    """`hsijax map` of ``scene`` in a child process: its seconds, peak RSS (MiB) and the map read back;
    ``in_process`` (--quick): here, the peak RSS then this process's."""
    import contextlib
    import io
    import warnings

    import rasterio

    warm(scene)
    command = ["map", str(scene), "--labels", str(labels), "--checkpoint", "pretrained", "--wavelengths", wavelengths,
               "--out", str(out)]
    start = time.perf_counter()
    if in_process:
        from hsijax.cli import main as hsijax_main

        with contextlib.redirect_stdout(io.StringIO()) as printed:
            code = hsijax_main(command)
        status = Path("/proc/self/status").read_text()
        peak_file.write_text(status.split("VmHWM:")[1].split()[0])
        result = subprocess.CompletedProcess(command, code, printed.getvalue(), "")
    else:
        result = subprocess.run([sys.executable, "-c", MEASURED_MAP, str(peak_file), *command], capture_output=True,
                                text=True, check=False)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"hsijax map failed ({result.returncode}): {result.stderr[-3000:]}")
    with warnings.catch_warnings():  # a .npy scene's map has no georeference
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        with rasterio.open(out / "map.tif") as source:
            class_map = source.read(1)
    return {"seconds": round(seconds, 2), "peak_rss_mib": round(int(peak_file.read_text()) / 1024),
            "class_map": class_map, "stdout": result.stdout.strip()}


def measure(name: str, shape, labelled: int, mapped: dict, agreement: float) -> dict:
    pixels = shape[0] * shape[1]
    return {"scene": name, "shape": list(shape), "labelled_pixels": labelled, "seconds": mapped["seconds"],
            "pixels_per_second": round(pixels / mapped["seconds"]), "peak_rss_mib": mapped["peak_rss_mib"],
            "agreement": round(agreement, 4), "summary": mapped["stdout"]}


def main() -> None:
    arguments = parser(__doc__.splitlines()[0])
    arguments.add_argument("--scene", type=int, nargs=3, default=(2000, 2000, 200), metavar=("H", "W", "B"))
    arguments.add_argument("--workdir", type=Path, help="keep the synthetic scene here (reused if present) and "
                                                          "the maps; default: a temporary folder")
    args = arguments.parse_args()
    global LABELS_PER_CLASS
    ip_rows = None
    if args.quick:  # checks the script: a small scene, a crop of Indian Pines
        args.scene, LABELS_PER_CLASS, ip_rows = (48, 40, 200), 6, 36
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(args.workdir or temporary)
        folder.mkdir(parents=True, exist_ok=True)
        shape = tuple(args.scene)
        began = time.perf_counter()
        scene, labels, regions = write_scene(shape, folder)
        print(f"scene {scene} ({scene.stat().st_size / 2**20:,.0f} MiB) ready in {time.perf_counter() - began:.1f} s",
              flush=True)
        outs = folder / "maps"
        outs.mkdir(exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        mapped = run_map(scene, labels, "linspace:400:2500", outs / f"synthetic-{stamp}", folder / "peak.txt",
                         in_process=args.quick)
        rows = [measure("synthetic", shape, int((np.load(labels) > 0).sum()), mapped,
                        float((mapped["class_map"] == regions).mean()))]
        print(table(rows[-1:], ["scene", "seconds", "pixels_per_second", "peak_rss_mib", "agreement"]), flush=True)
        cube, wavelengths, ip_labels, held_out = indian_pines(folder, ip_rows)
        mapped = run_map(cube, ip_labels, str(wavelengths), outs / f"indian_pines-{stamp}", folder / "peak.txt",
                         in_process=args.quick)
        test = held_out > 0
        rows.append(measure("indian_pines_5pct", np.load(cube, mmap_mode="r").shape, int((np.load(ip_labels) > 0).sum()),
                            mapped, float((mapped["class_map"][test] == held_out[test]).mean())))
        print(table(rows[-1:], ["scene", "seconds", "pixels_per_second", "peak_rss_mib", "agreement"]), flush=True)
    synthetic, pines = rows
    report = {
        **machine(), "command": "python benchmarks/map_scene.py" + (" --quick" if args.quick else ""),
        "scene_shape": synthetic["shape"], "scene_seconds": synthetic["seconds"],
        "scene_px_s": synthetic["pixels_per_second"], "scene_peak_rss_mib": synthetic["peak_rss_mib"],
        "scene_agreement": synthetic["agreement"],
        "indian_pines_5pct_seconds": pines["seconds"], "indian_pines_5pct_peak_rss_mib": pines["peak_rss_mib"],
        "indian_pines_5pct_test_oa": pines["agreement"], "runs": rows,
    }
    finish(report, args.json)


if __name__ == "__main__":
    main()
