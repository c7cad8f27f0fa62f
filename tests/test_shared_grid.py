"""The shared wavelength grid, the linear baseline on it, the wavelength-grid network, the
wavelength import options, and codes-vs-spectra scoring."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
from conftest import count_compilations

import hsijax
from hsijax import HsijaxError, create_model
from hsijax.data.loading import ImportOptions, parse_import_options, read_scene_file
from hsijax.data.shared_grid import SHARED_GRID_NM, from_grid, grid_interpolation, to_grid
from hsijax.evaluate.codes import compare_features, rx_auc
from hsijax.models.linear_code import SharedGridPCA, own_pca_reconstruction
from hsijax.spectral import make_batch


def smooth_spectra(rng, rows: int, wavelengths: np.ndarray) -> np.ndarray:
    """Sums of a few broad Gaussian features: spectra a 5-nm grid samples without loss."""
    centres = rng.uniform(400, 2500, (rows, 3, 1))
    heights = rng.uniform(0.1, 0.5, (rows, 3, 1))
    return (heights * np.exp(-((wavelengths - centres) / 300.0) ** 2)).sum(axis=1)


def test_round_trip_through_the_grid_keeps_smooth_spectra():
    wavelengths = np.linspace(420, 2400, 180)
    spectra = smooth_spectra(np.random.default_rng(0), 20, wavelengths)
    interpolation = grid_interpolation(wavelengths)
    back = from_grid(to_grid(spectra, interpolation), wavelengths)
    np.testing.assert_allclose(back, spectra, atol=1e-3)  # linear interpolation at 5 nm: > 60 dB
    covered = SHARED_GRID_NM[interpolation.covered]
    assert covered.min() >= 417.5 and covered.max() <= 2402.5


def test_gaps_and_band_order():
    """A water-band gap is not covered; unsorted band centres (AVIRIS' overlapping spectrometers) are
    sorted before interpolating."""
    wavelengths = np.concatenate([np.arange(400, 1300, 10.0), np.arange(1500, 2400, 10.0)])
    covered = grid_interpolation(wavelengths).covered
    assert not covered[(SHARED_GRID_NM > 1310) & (SHARED_GRID_NM < 1490)].any()
    assert covered[(SHARED_GRID_NM >= 400) & (SHARED_GRID_NM <= 1290)].all()
    spectra = np.sin(wavelengths / 200.0)[None]
    order = np.random.default_rng(1).permutation(len(wavelengths))
    shuffled = to_grid(spectra[:, order], grid_interpolation(wavelengths[order]))
    np.testing.assert_allclose(shuffled, to_grid(spectra, grid_interpolation(wavelengths)), atol=1e-6)


def test_jax_and_padded_rows_agree_with_numpy():
    wavelengths = np.linspace(400, 1000, 100)
    spectra = smooth_spectra(np.random.default_rng(2), 3, wavelengths).astype(np.float32)
    batch = make_batch(spectra, wavelengths, (128,))
    interpolation = grid_interpolation(jnp.asarray(batch.wavelengths), jnp.asarray(batch.band_count), xp=jnp)
    in_graph = to_grid(jnp.asarray(batch.spectra), interpolation, xp=jnp)
    np.testing.assert_allclose(in_graph, to_grid(spectra, grid_interpolation(wavelengths)), atol=1e-5)


def test_shared_grid_pca_reconstructs_what_it_spans_on_a_partial_sensor():
    """A spectrum in the span of the fitted basis is recovered from a sensor that sees only part of
    the range (least squares on the covered grid points), at that sensor's own band centres."""
    rng = np.random.default_rng(3)
    full = np.linspace(400, 2500, 211)
    fitted = SharedGridPCA.fit([(smooth_spectra(rng, 400, full), full)], code_width=8)
    vnir = np.linspace(400, 1000, 120)
    codes = rng.normal(size=(5, 8)) * 0.05
    spectra = fitted.decode(codes, vnir)
    np.testing.assert_allclose(fitted.reconstruct(spectra, vnir), spectra, atol=2e-4)  # interpolation only
    with pytest.raises(HsijaxError, match="cover 5 points of the shared grid, fewer than the code width 8"):
        fitted.encode(spectra[:, :5], vnir[:5] * 0 + np.arange(400, 425, 5))


def test_own_pca_is_exact_at_full_rank():
    cube = np.random.default_rng(4).random((6, 5, 7)).astype(np.float32)
    np.testing.assert_allclose(own_pca_reconstruction(cube, 7), cube, atol=1e-5)


def test_wavelength_grid_network_compiles_once_per_bucket_and_ignores_padding():
    """Codes pool over the grid points the sensor covers: the same spectrum padded to two buckets
    gives the same code."""
    model = create_model(8, kind="grid_cnn", buckets=(128, 256), widths=(8, 16, 16))
    rng = np.random.default_rng(5)
    wavelengths = np.linspace(400, 1000, 100)
    spectra = smooth_spectra(rng, 4, wavelengths).astype(np.float32)
    with count_compilations() as compiled:
        small = hsijax.encode(model, spectra, wavelengths=wavelengths)
        recon = hsijax.reconstruct(model, spectra, wavelengths=wavelengths)
        full = np.linspace(400, 2500, 200)
        hsijax.encode(model, smooth_spectra(rng, 3, full), wavelengths=full)
        hsijax.encode(model, spectra[:, :90], wavelengths=wavelengths[:90])
    assert compiled() == 3  # encode at 128 and 256, reconstruct at 128
    assert recon.shape == spectra.shape and np.isfinite(recon).all()
    padded_further = make_batch(spectra, wavelengths, (256,))
    from hsijax.models.inference import jitted_encode

    np.testing.assert_allclose(jitted_encode(model.config)(model.variables, padded_further), small, atol=1e-5)
    with pytest.raises(HsijaxError, match="at most 3 stages"):
        create_model(8, kind="grid_cnn", widths=(8, 8, 8, 8))


def test_import_options_attach_wavelengths(tmp_path):
    import scipy.io

    cube = np.random.default_rng(6).random((4, 5, 6)).astype(np.float32)
    cube[..., 2] = np.nan  # a bad band, as in the Salton Sea file
    path = tmp_path / "scene.mat"
    scipy.io.savemat(path, {"I": cube, "wl": np.linspace(0.4, 0.9, 6)[None], "bbl": np.array([[1, 1, 0, 1, 1, 1]]),
                            "picked": np.array([[1, 2, 4, 5, 6]])})
    scene = read_scene_file(parse_import_options(f"{path} --key I --wavelengths {path} --wavelengths-key wl "
                                                 f"--keep-bands {path} --keep-bands-key bbl"), "s")
    assert scene.cube.shape == (4, 5, 5) and np.isfinite(scene.cube).all()
    np.testing.assert_allclose(scene.wavelengths_nm, np.delete(np.linspace(400, 900, 6), 2))  # micrometres -> nm
    by_number = read_scene_file(parse_import_options(f"{path} --key I --wavelengths {path} --wavelengths-key wl "
                                                     f"--keep-bands {path} --keep-bands-key picked"), "s")
    np.testing.assert_allclose(by_number.wavelengths_nm, scene.wavelengths_nm)
    clean = tmp_path / "clean.npy"
    np.save(clean, np.nan_to_num(cube))
    spaced = read_scene_file(ImportOptions(clean, wavelengths="linspace:380:1050"), "s")
    np.testing.assert_allclose(spaced.wavelengths_nm, np.linspace(380, 1050, 6))
    with pytest.raises(HsijaxError, match="linspace:FIRST:LAST"):
        read_scene_file(ImportOptions(clean, wavelengths="linspace:380"), "s")
    with pytest.raises(HsijaxError, match="need 0 < FIRST < LAST"):
        read_scene_file(ImportOptions(clean, wavelengths="linspace:1050:380"), "s")
    with pytest.raises(HsijaxError, match="needs a wavelength list"):
        read_scene_file(ImportOptions(clean, keep_bands=path), "s")
    scipy.io.savemat(tmp_path / "bad.mat", {"k": np.array([[0, 7]])})
    with pytest.raises(HsijaxError, match="band numbers 1..6"):
        read_scene_file(ImportOptions(clean, wavelengths=str(path), wavelengths_key="wl",
                                      keep_bands=tmp_path / "bad.mat"), "s")


def test_rx_finds_planted_anomalies_and_codes_are_compared_on_equal_splits():
    rng = np.random.default_rng(7)
    cube = rng.normal(size=(20, 20, 6))
    anomalies = np.zeros((20, 20), np.uint8)
    anomalies[3, 4] = anomalies[10, 12] = 1
    cube[anomalies > 0] += 8.0
    assert rx_auc(cube, anomalies) > 0.99
    labels = np.repeat([1, 2], 60)
    spectra = rng.normal(size=(120, 5)) + labels[:, None]
    results = compare_features({"spectra": spectra, "noise": rng.normal(size=(120, 3))}, labels, 0.25, seeds=2)
    assert set(results) == {"svm", "linear"}
    assert all(len(runs) == 2 for by in results.values() for runs in by.values())
    assert np.mean([r["oa"] for r in results["svm"]["spectra"]]) > np.mean([r["oa"] for r in results["svm"]["noise"]])


def test_finer_labels_by_block_majority_and_a_table_of_spectra(tmp_path):
    """Houston 2018's 0.5-m labels on its 1-m image; Houston 2013's training spectra as N x 1 pixels."""
    cube = np.random.default_rng(8).random((2, 3, 4)).astype(np.float32)
    np.save(tmp_path / "cube.npy", cube)
    fine = np.zeros((4, 6), np.uint8)
    fine[0:2, 0:2] = [[1, 1], [1, 0]]  # mostly class 1
    fine[0:2, 2:4] = [[2, 0], [0, 0]]  # mostly unlabelled
    fine[2:4, 4:6] = 3
    np.save(tmp_path / "fine.npy", fine)
    scene = read_scene_file(ImportOptions(tmp_path / "cube.npy", gt=tmp_path / "fine.npy", gt_majority=True), "s")
    np.testing.assert_array_equal(scene.labels, [[1, 0, 0], [0, 0, 3]])
    with pytest.raises(HsijaxError, match="ground truth shape"):
        read_scene_file(ImportOptions(tmp_path / "cube.npy", gt=tmp_path / "fine.npy"), "s")
    np.save(tmp_path / "odd.npy", np.zeros((5, 6), np.uint8))
    with pytest.raises(HsijaxError, match="not a whole multiple"):
        read_scene_file(ImportOptions(tmp_path / "cube.npy", gt=tmp_path / "odd.npy", gt_majority=True), "s")
    np.save(tmp_path / "table.npy", cube.reshape(6, 4))
    np.save(tmp_path / "column.npy", np.arange(1, 7).reshape(6, 1).astype(np.uint8))
    table = read_scene_file(ImportOptions(tmp_path / "table.npy", shape=(6, 1), gt=tmp_path / "column.npy"), "t")
    assert table.cube.shape == (6, 1, 4) and table.layout == "pixels_by_bands"
    np.testing.assert_array_equal(table.cube[:, 0], cube.reshape(6, 4))
    np.testing.assert_array_equal(table.labels[:, 0], np.arange(1, 7))


@pytest.mark.full
def test_masked_window_pretraining_is_deterministic_resumable_and_grid_only(tmp_path):
    """The masked-band objective draws its windows from the seed and the optimiser's step count:
    two runs agree bit for bit, a run stopped and resumed too, and the windows change the result."""
    import jax

    from hsijax.cli import main
    from hsijax.models.checkpoints import load_model

    rng = np.random.default_rng(9)
    np.save(tmp_path / "scene.npy", (smooth_spectra(rng, 48, np.linspace(400, 2400, 40)) * 1000).reshape(8, 6, 40))
    assert main(["import", str(tmp_path / "scene.npy"), "--name", "scene", "--data-dir", str(tmp_path / "data"),
                 "--wavelengths", "linspace:400:2400"]) == 0
    common = ["--config", "tiny:grid_cnn", f"--config.data.data_dir={tmp_path / 'data'}", "--config.data.scenes=scene",
              "--config.data.held_out_pixels=8", "--config.train.batch_size=16", "--config.train.steps=4",
              "--config.train.checkpoint_every=2", "--no-progress"]

    def run(name: str, *extra: str):
        assert main(["pretrain", *common, "--workdir", str(tmp_path / name), *extra]) == 0
        return jax.tree.leaves(load_model(tmp_path / name).variables)

    masked = run("a", "--config.train.visible_window=0.5")
    assert all(np.array_equal(x, y) for x, y in zip(masked, run("b", "--config.train.visible_window=0.5")))
    import shutil

    shutil.rmtree(tmp_path / "b" / "checkpoints" / "4")  # as if killed after step 2's checkpoint
    resumed = run("b", "--config.train.visible_window=0.5")
    assert all(np.array_equal(x, y) for x, y in zip(masked, resumed))
    plain = run("d")
    assert not all(np.array_equal(x, y) for x, y in zip(masked, plain))
    assert main(["pretrain", "--config", "tiny", "--workdir", str(tmp_path / "e"),
                 "--config.train.visible_window=0.5"]) != 0


@pytest.mark.full
def test_real_pooling_gives_the_same_code_in_every_bucket_and_the_classifier_agrees():
    """The poster's pooling reads padded positions, so a bucket change changes the code; pooling
    over the positions the real bands reach does not (and the classifier pools the same way)."""
    from hsijax.models.classifier import SpectralClassifier
    from hsijax.models.inference import jitted_encode

    spectra = np.random.default_rng(10).random((5, 200)).astype(np.float32)
    for pooling, invariant in (("real", True), ("all", False)):
        model = create_model(8, pooling=pooling, seed=0)
        encode_fn = jitted_encode(model.config)
        codes = [np.asarray(encode_fn(model.variables, make_batch(spectra, None, (b,)))) for b in (256, 512)]
        assert np.allclose(codes[0], codes[1], atol=1e-6) == invariant
    classifier, variables = SpectralClassifier.from_model(create_model(8, pooling="real", seed=0), 3, band_count=200)
    logits = [classifier.apply(variables, make_batch(spectra, None, (b,)).spectra) for b in (256, 512)]
    np.testing.assert_allclose(logits[0], logits[1], atol=1e-5)


def test_the_spectral_library_reader_drops_incomplete_spectra_and_mixes(tmp_path):
    from test_leave_out import write_library

    from hsijax.data.spectral_library import library_mixtures, read_usgs_library

    write_library(tmp_path, np.random.default_rng(11))
    spectra, wavelengths = read_usgs_library(tmp_path)
    assert spectra.shape == (2, 431) and wavelengths[0] == pytest.approx(350) and wavelengths[-1] == pytest.approx(2500)
    mixed = library_mixtures(spectra, 10, endmembers=2)
    assert mixed.shape == (12, 431) and mixed.min() == 0 and mixed.max() == 1
    with pytest.raises(HsijaxError, match="no splib07a_Wavelengths_ASD"):
        read_usgs_library(tmp_path / "ChapterM_Minerals")


def test_the_shipped_grid_pca_loads_offline_nested_and_reconstructs_indian_pines():
    """The code shipped with hsijax: orthonormal components on the grid, the width-c code the first
    c of the 32, its record naming what it was fitted on; Indian Pines (one of those scenes) from
    the tensorly wheel comes back above 35 dB at c = 16 (the shipped network: about 20 dB)."""
    from hsijax.data.scene import load_indian_pines
    from hsijax.metrics import mpsnr
    from hsijax.models.linear_code import SHIPPED, saved_record
    from hsijax.spectral import fit_normalization

    widest = SharedGridPCA.load_pretrained(32)
    np.testing.assert_allclose(widest.basis @ widest.basis.T, np.eye(32), atol=1e-5)
    code = SharedGridPCA.load_pretrained(16)
    np.testing.assert_array_equal(code.basis, widest.basis[:16])
    record = saved_record(SHIPPED)
    assert record["code_width"] == 32 and "indian_pines" in record["scenes"] and record["library_mixtures"] > 0
    scene = load_indian_pines()
    spectra = fit_normalization(scene.cube, scene.name).apply(scene.cube).reshape(-1, scene.cube.shape[-1])
    assert mpsnr(spectra, code.reconstruct(spectra, scene.wavelengths_nm)) > 35
    with pytest.raises(HsijaxError, match="holds 1 to 32 components"):
        SharedGridPCA.load_pretrained(33)


def test_grid_pca_command_fits_saves_a_loadable_code_and_refuses_bad_output(tmp_path, capsys, data_dir):
    """`hsijax grid-pca` on one prepared scene (no library): the saved code equals a fit in Python
    on the same spectra, truncated to any width; ``--network`` saves its first components as the
    linear network with its card; an existing output and bad options are one error line each,
    before anything is written."""
    from hsijax.cli import main
    from hsijax.data.loading import load_scene
    from hsijax.models.linear_code import saved_record
    from hsijax.spectral import fit_normalization

    overrides = [f"--config.pretrain.data.data_dir={data_dir}", "--config.pretrain.data.scenes=indian_pines",
                 "--config.spectral_library="]
    assert main(["grid-pca", "--output", str(tmp_path / "code"), "--code-width", "8", *overrides,
                 "--network", str(tmp_path / "network"), "--network-width", "4", "--card", str(tmp_path / "card.md")]) == 0
    assert "wrote" in capsys.readouterr().out
    saved = SharedGridPCA.load(tmp_path / "code")
    network = hsijax.load_model(tmp_path / "network")
    assert network.config == hsijax.LinearGridConfig(code_width=4)
    np.testing.assert_allclose(np.asarray(network.variables["params"]["encoder"]["basis"]),
                               saved.basis[:4] * saved.scale[:4, None], atol=1e-7)
    card = (tmp_path / "card.md").read_text()
    assert "code width 4" in card and f"{network.parameter_count:,} parameters" in card and "| indian_pines | AVIRIS |" in card
    scene = load_scene("indian_pines", data_dir)
    spectra = fit_normalization(scene.cube, scene.name).apply(scene.cube).astype(np.float32)
    fitted = SharedGridPCA.fit([(spectra, scene.wavelengths_nm)], 8)
    np.testing.assert_allclose(saved.basis, fitted.basis, atol=1e-6)
    assert SharedGridPCA.load(tmp_path / "code", 4).code_width == 4
    assert saved_record(tmp_path / "code")["scenes"] == ["indian_pines"]
    assert main(["grid-pca", "--output", str(tmp_path / "code"), *overrides]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"hsijax grid-pca: error: {tmp_path / 'code'}: already exists; grid-pca saves the code to a new folder"]
    for bad, message in (([ "--network", str(tmp_path / "network")], "grid-pca saves the network to a new folder"),
                         (["--card", str(tmp_path / "c.md")], "--card describes the network: give --network too"),
                         (["--network", str(tmp_path / "n2"), "--network-width", "40"], "must be 1 to --code-width 32"),
                         (["--network", str(tmp_path / "n2"), "--card", str(tmp_path / "c.md"), "--leave-out",
                           str(tmp_path)], "no finished leave-out cell")):
        assert main(["grid-pca", "--output", str(tmp_path / "other"), *overrides, *bad]) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1, err
        assert not (tmp_path / "other").exists() and not (tmp_path / "n2").exists()
    with pytest.raises(HsijaxError, match="not a saved shared-grid PCA"):
        SharedGridPCA.load(tmp_path)
