"""`hsijax grid-pca` across processes: per-device float64 sums over the mesh give what one process
fits, which is what the in-memory estimator fits; and refitting the shipped code on the scenes it
was fitted on gives it back."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from conftest import environment
from test_leave_out import write_library
from test_pretrain import free_port

from hsijax.data.loading import load_scene
from hsijax.models.linear_code import SharedGridPCA
from hsijax.spectral import fit_normalization

pytestmark = pytest.mark.full  # the grid-PCA fit over two processes


def grid_pca_command(output, data_dir, library, *extra: str) -> list[str]:
    return [sys.executable, "-m", "hsijax.cli", "grid-pca", "--output", str(output), "--code-width", "8",
            f"--config.pretrain.data.data_dir={data_dir}", "--config.pretrain.data.scenes=indian_pines",
            f"--config.spectral_library={library}", "--config.library_mixtures=400", *extra]


def test_two_processes_fit_what_one_fits_and_what_the_in_memory_estimator_fits(tmp_path, data_dir):
    write_library(tmp_path / "library", np.random.default_rng(0))
    one = subprocess.run(grid_pca_command(tmp_path / "one", data_dir, tmp_path / "library"), env=environment(1),
                         capture_output=True, text=True, timeout=300)
    assert one.returncode == 0, one.stderr[-3000:]
    coordinator = f"localhost:{free_port()}"
    processes = [subprocess.Popen(grid_pca_command(tmp_path / "two", data_dir, tmp_path / "library", "--coordinator",
                                                   coordinator, "--num-processes", "2", "--process-id", str(index)),
                                  env=environment(2), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for index in range(2)]
    outputs = [process.communicate(timeout=300) for process in processes]
    for process, (_, err) in zip(processes, outputs):
        assert process.returncode == 0, err[-3000:]
    assert "wrote" in outputs[0][0] and "wrote" not in outputs[1][0]  # only the first process writes
    single, double = SharedGridPCA.load(tmp_path / "one"), SharedGridPCA.load(tmp_path / "two")
    from hsijax.models.linear_code import saved_record

    assert saved_record(tmp_path / "two")["processes"] == 2
    scene = load_scene("indian_pines", data_dir)
    spectra = fit_normalization(scene.cube).apply(scene.cube).reshape(-1, 200)
    np.testing.assert_allclose(double.reconstruct(spectra, scene.wavelengths_nm),
                               single.reconstruct(spectra, scene.wavelengths_nm), atol=1e-6)
    np.testing.assert_allclose(double.basis, single.basis, atol=1e-6)  # the same signs: the convention
    np.testing.assert_allclose(double.scale, single.scale, rtol=1e-6)
    # the in-memory estimator on the same spectra (float32 arrays on disk: 1e-6)
    from hsijax.experiments.leave_out import _library

    mixtures, library_nm = _library(str(tmp_path / "library"), 400)
    memory = SharedGridPCA.fit([(spectra, scene.wavelengths_nm), (mixtures, library_nm)], 8)
    np.testing.assert_allclose(single.basis, memory.basis, atol=1e-6)
    np.testing.assert_allclose(single.mean, memory.mean, atol=1e-7)


def test_refitting_the_shipped_code_gives_it_back(shared_data):
    """The shipped 32 components, refitted from the scenes and library its record names (read from
    their files as the leave-out config imports them; the estimator the mesh fit sums, shown equal
    above): the same arrays to float32's precision (they are stored in float32)."""
    from hsijax.configs import LEAVE_OUT, load_config
    from hsijax.data.loading import import_options_of, read_scene_file
    from hsijax.data.scene import load_indian_pines
    from hsijax.experiments.leave_out import library_set
    from hsijax.models.linear_code import SHIPPED, saved_record

    config = load_config("leave_out", [], builtins=LEAVE_OUT)
    record = saved_record(SHIPPED)
    imports = config.pretrain.data.imports
    scenes = [load_indian_pines() if name == "indian_pines" else
              read_scene_file(import_options_of(imports[name], name, config.pretrain.data.source_dir), name)
              for name in record["scenes"]]
    library = library_set(config)
    assert record["library_mixtures"] == config.library_mixtures and record["seed"] == config.pretrain.seed
    sets = [(fit_normalization(s.cube).apply(s.cube), s.wavelengths_nm) for s in scenes]
    refitted = SharedGridPCA.fit([*sets, (library.pixels, library.wavelengths_nm)], 32, seed=record["seed"])
    shipped = SharedGridPCA.load_pretrained(32)
    np.testing.assert_allclose(refitted.mean, shipped.mean, atol=1e-7)
    np.testing.assert_allclose(refitted.basis, shipped.basis, atol=1e-6)
    np.testing.assert_allclose(refitted.scale, shipped.scale, rtol=1e-6)
