"""The linear network on the wavelength grid: the folded path (one matrix per list of band centres)
and the per-pixel path agree with float64 least squares, the shared-grid PCA is only its
parameters, a classifier fine-tunes through the fold, and band centres are required everywhere."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from conftest import count_compilations

import hsijax
from hsijax import HsijaxError
from hsijax.data.scene import load_indian_pines
from hsijax.data.shared_grid import grid_interpolation, to_grid
from hsijax.models.classifier import SpectralClassifier
from hsijax.models.inference import jitted_encode, jitted_reconstruct
from hsijax.models.linear_code import SharedGridPCA
from hsijax.spectral import fit_normalization, make_batch

BOUND = 2e-4  # largest relative difference from float64 least squares, per pixel (the bound)


def float64_codes(model, spectra: np.ndarray, wavelengths: np.ndarray) -> np.ndarray:
    """The linear network's codes by float64 `lstsq` on the covered grid points: the reference."""
    encoder = model.variables["params"]["encoder"]
    basis, mean = (np.asarray(encoder[key], np.float64) for key in ("basis", "mean"))
    interpolation = grid_interpolation(wavelengths)
    covered = interpolation.covered
    grid = to_grid(spectra.astype(np.float64), interpolation)
    codes, *_ = np.linalg.lstsq(basis[:, covered].T, (grid - mean)[:, covered].T, rcond=None)
    return codes.T


def per_pixel(function, model, spectra, wavelengths, rows: int = 4096) -> np.ndarray:
    """The per-pixel (training) path over padded batches of ``rows``."""
    batch = make_batch(spectra, wavelengths, model.config.buckets)
    parts = [np.asarray(function(model.config)(model.variables, type(batch)(*(a[s:s + rows] for a in batch))))
             for s in range(0, len(spectra), rows)]
    return np.concatenate(parts)


def relative(codes: np.ndarray, reference: np.ndarray) -> float:
    return float((np.linalg.norm(codes - reference, axis=1) / np.linalg.norm(reference, axis=1)).max())


def scenes(shared_dir):
    """(name, normalised spectra, band centres): 2,048 pixels of Indian Pines (200 bands, tensorly)
    always, 4,096 of the 48-band Houston 2018 CASI (380-1050 nm) when ../shared/data is here."""
    scene = load_indian_pines()
    spectra = fit_normalization(scene.cube, scene.name).apply(scene.cube).reshape(-1, 200)
    found = [("indian_pines", spectra[np.random.default_rng(0).choice(len(spectra), 2048, replace=False)],
              scene.wavelengths_nm)]
    if shared_dir.is_dir():
        from hsijax.data.loading import parse_import_options, read_scene_file

        options = parse_import_options(f"{shared_dir}/Houston2018/houston_dataset.mat --key hyprImg "
                                       "--wavelengths linspace:380:1050")
        houston = read_scene_file(options, "houston2018")
        spectra = fit_normalization(houston.cube, "houston").apply(houston.cube).reshape(-1, 48)
        found.append(("houston2018", spectra[::4], houston.wavelengths_nm))  # 4,096 of its pixels
    return found


def test_both_paths_agree_with_float64_least_squares_on_a_full_range_and_a_vnir_sensor():
    """The shipped network, both paths, within `BOUND` of a float64 solve on every pixel; the folded
    reconstruction equals the per-pixel one. On Houston 2018 the covered basis has condition number
    ~600, where the float32 normal equations alone were 1e-3 off."""
    from conftest import SHARED_DATA

    model = hsijax.load_pretrained()
    for name, spectra, wavelengths in scenes(SHARED_DATA):
        reference = float64_codes(model, spectra, wavelengths)
        folded = hsijax.encode(model, spectra, wavelengths=wavelengths)
        assert relative(folded, reference) < BOUND, name
        assert relative(per_pixel(jitted_encode, model, spectra, wavelengths), reference) < BOUND, name
        padded = per_pixel(jitted_reconstruct, model, spectra, wavelengths)[:, :spectra.shape[1]]
        np.testing.assert_allclose(hsijax.reconstruct(model, spectra, wavelengths=wavelengths), padded, atol=2e-5)
    if not SHARED_DATA.is_dir():
        pytest.skip("Houston 2018 not available; checked Indian Pines only")


def test_the_folded_path_compiles_per_band_count_and_caches_its_matrices_per_wavelength_list():
    model = SharedGridPCA.fit([(np.random.default_rng(0).random((200, 60)), np.linspace(400, 2500, 60))],
                              4).to_model()
    rng = np.random.default_rng(1)
    wavelengths = np.linspace(420, 2400, 50)
    hsijax.encode(model, rng.random((300, 50)), wavelengths=wavelengths)  # fold and compile
    assert list(model.operators) == [tuple(wavelengths)]
    with count_compilations() as compiled:
        for pixels in (1, 7, 64, 65, 300, 20_000):  # chunks of 8 k rows; a short last one in a power of two
            assert hsijax.encode(model, rng.random((pixels, 50)), wavelengths=wavelengths).shape == (pixels, 4)
    assert compiled() <= 4  # the row classes 128 and 512 (20,000 = 2 x 8192 + 3,616), and the 8 k chunk
    assert len(model.operators) == 1


def test_the_grid_pca_is_the_network_s_parameters_whitened_or_not():
    """`SharedGridPCA` only produces parameters: its codes are the unwhitened network's, the shipped
    (whitened) network's codes are those divided by ``scale``, reconstructions the same."""
    rng = np.random.default_rng(12)
    bands = {"full": np.linspace(400, 2500, 200), "vnir": np.linspace(380, 1050, 48)}
    sets = [(np.clip(np.cumsum(rng.normal(size=(300, len(w))), axis=-1) * 0.02 + 0.5, 0, 1), w) for w in bands.values()]
    pca = SharedGridPCA.fit(sets, 6)
    raw, whitened = pca.to_model(whiten=False), pca.to_model()
    assert raw.config == whitened.config == hsijax.LinearGridConfig(code_width=6)
    for spectra, wavelengths in sets:
        codes = pca.encode(spectra, wavelengths)
        assert relative(codes, float64_codes(raw, spectra, wavelengths)) < BOUND
        assert relative(hsijax.encode(whitened, spectra, wavelengths=wavelengths) * pca.scale, codes) < BOUND
        np.testing.assert_allclose(hsijax.reconstruct(whitened, spectra, wavelengths=wavelengths),
                                   pca.reconstruct(spectra, wavelengths), atol=1e-5)
    alone = SharedGridPCA.fit(sets[:1], 6)  # a sensor that covers nearly the whole grid: scale = codes' std
    np.testing.assert_allclose(alone.scale, alone.encode(*sets[0]).std(axis=0), rtol=0.02)


def test_a_classifier_fine_tunes_the_basis_through_the_folded_matrix():
    rng = np.random.default_rng(3)
    wavelengths = np.linspace(380, 1050, 48)
    model = SharedGridPCA.fit([(rng.random((100, 48)), wavelengths)], 5).to_model()
    classifier, variables = SpectralClassifier.from_model(model, 3, band_count=48, wavelengths=wavelengths)
    encoder = variables["params"]["encoder"]
    np.testing.assert_array_equal(encoder["basis"], model.variables["params"]["encoder"]["basis"])
    spectra = make_batch(rng.random((8, 48)).astype(np.float32), wavelengths, (64,)).spectra
    gradient = jax.jit(jax.grad(lambda params: classifier.apply({"params": params}, spectra).sum()))(
        variables["params"])
    assert np.abs(np.asarray(gradient["encoder"]["basis"])).max() > 0
    assert np.abs(np.asarray(gradient["encoder"]["mean"])).max() > 0


@pytest.mark.parametrize("kind", ["linear_grid", "grid_cnn"])
def test_a_network_that_needs_band_centres_refuses_in_one_line_everywhere_in_python(kind):
    model = hsijax.create_model(4, kind=kind, **({"widths": (4, 4)} if kind == "grid_cnn" else {}))
    spectra = np.random.default_rng(4).random((3, 30)).astype(np.float32)
    message = "places spectra by their band centres and none were given: pass wavelengths=... .* --wavelengths"
    for call in (lambda: hsijax.encode(model, spectra), lambda: hsijax.reconstruct(model, spectra),
                 lambda: SpectralClassifier.from_model(model, 3, band_count=30),
                 lambda: SpectralClassifier(model.config, 3, 30).init_variables()):
        with pytest.raises(HsijaxError, match=message) as raised:
            call()
        assert "\n" not in str(raised.value)
    assert hsijax.encode(model, spectra, wavelengths=np.linspace(400, 900, 30)).shape == (3, 4)  # given: fine
    with pytest.raises(HsijaxError, match="has 29 values but the spectra have 30 bands"):
        hsijax.encode(model, spectra, wavelengths=np.linspace(400, 900, 29))


def test_the_poster_cnn_accepts_band_centres_and_ignores_them():
    model = hsijax.create_model(8, seed=5)
    spectra = np.random.default_rng(5).random((4, 103)).astype(np.float32)
    np.testing.assert_array_equal(hsijax.encode(model, spectra),
                                  hsijax.encode(model, spectra, wavelengths=np.linspace(430, 860, 103)))


def test_a_sensor_covering_fewer_grid_points_than_the_code_width_is_refused():
    model = SharedGridPCA.fit([(np.random.default_rng(6).random((50, 60)), np.linspace(400, 2500, 60))], 8).to_model()
    with pytest.raises(HsijaxError, match="cover 5 points of the shared grid, fewer than the code width 8"):
        hsijax.encode(model, np.ones((2, 5)), wavelengths=[500, 505, 510, 515, 520])
