"""hsijax: one encoder for hyperspectral pixels from any sensor, in JAX/Flax.

A JAX/Flax reimplementation of "A Shared Encoder for Multisource Hyperspectral Image" (Kong & Liu):
reflection padding to a bucket length, a downsampling 1-D CNN, max-pooling over the band axis to a
fixed-size code, and a decoder that repeats the code and upsamples back. Beside it, a linear
network on one shared wavelength grid, the code that transfers to sensors it never saw, which is
what `load_pretrained()` ships. Each network has its own config (`PosterCNNConfig`,
`GridCNNConfig`, `LinearGridConfig`); all are used the same way.

    >>> import hsijax
    >>> model = hsijax.load_pretrained()               # shipped (offline): the linear network on the grid
    >>> codes = hsijax.encode(model, spectra, wavelengths=wavelengths_nm)  # (N, b) -> (N, 16), b <= 512
    >>> recon = hsijax.reconstruct(model, spectra, wavelengths=wavelengths_nm)  # (N, b) -> (N, b)
    >>> hsijax.encode(model, spectra)                  # HsijaxError: it needs the band centres
    >>> poster = hsijax.load_pretrained("poster")      # the poster's CNN (wavelength-blind), 20 scenes
    >>> model = hsijax.create_model(code_width=16)     # a fresh poster CNN; kind="linear_grid", "grid_cnn"
    >>> model = hsijax.load_model("runs/local")        # the newest checkpoint of a pretraining run
    >>> linear = hsijax.SharedGridPCA.fit([(spectra, wavelengths_nm)], code_width=16)  # your own code
    >>> model = linear.to_model()                      # ... as the linear network

The package is laid out by stage, each importing only the stages before it (a test checks it):
``spectral``, ``metrics``, ``files``, ``errors`` (pure functions) -> ``data`` (file -> dataset ->
batch) -> ``models`` (the networks, applying and saving them) -> ``train`` (the step, the loop,
checkpoints, fine-tuning) -> ``evaluate`` (reconstruction, classification) -> ``experiments``
(demo, decoder study, model card) -> ``cli``. ``configs`` holds the ml_collections configs.
"""

import importlib

__version__ = "0.2.0"

# The public names and the modules that define them, imported on first use (PEP 562): `import
# hsijax` and every `hsijax` command start in a fraction of a second instead of importing Grain,
# TFDS, scikit-learn and the training loop up front.
_PUBLIC = {
    "TrainingSet": "hsijax.data.pipeline",
    "Scene": "hsijax.data.scene",
    "load_indian_pines": "hsijax.data.scene",
    "HsijaxError": "hsijax.errors",
    "ModelConfig": "hsijax.models.autoencoder",  # hsijax 0.1's single config, for one release
    "SpectralClassifier": "hsijax.models.classifier",
    "encode": "hsijax.models.inference",
    "reconstruct": "hsijax.models.inference",
    "SharedGridPCA": "hsijax.models.linear_code",
    "MapClassifier": "hsijax.models.map_classifier",
    "load_classifier": "hsijax.models.map_classifier",
    "Model": "hsijax.models.model",
    "create_model": "hsijax.models.model",
    "GridCNNConfig": "hsijax.models.networks",
    "LinearGridConfig": "hsijax.models.networks",
    "PosterCNNConfig": "hsijax.models.networks",
    "load_model": "hsijax.models.checkpoints",
    "load_pretrained": "hsijax.models.checkpoints",
    "save_model": "hsijax.models.checkpoints",
    "DEFAULT_BUCKETS": "hsijax.spectral",
    "bucket_for": "hsijax.spectral",
    "crop": "hsijax.spectral",
    "fit_normalization": "hsijax.spectral",
    "pad_to_bucket": "hsijax.spectral",
    "pretrain": "hsijax.train.loop",
}


def __getattr__(name: str):
    if name in _PUBLIC:
        value = getattr(importlib.import_module(_PUBLIC[name]), name)
        globals()[name] = value  # once imported, a plain attribute
        return value
    raise AttributeError(f"module 'hsijax' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_PUBLIC])


__all__ = [
    "DEFAULT_BUCKETS",
    "GridCNNConfig",
    "HsijaxError",
    "LinearGridConfig",
    "MapClassifier",
    "Model",
    "ModelConfig",
    "PosterCNNConfig",
    "Scene",
    "SharedGridPCA",
    "SpectralClassifier",
    "TrainingSet",
    "bucket_for",
    "create_model",
    "crop",
    "encode",
    "fit_normalization",
    "load_classifier",
    "load_indian_pines",
    "load_model",
    "load_pretrained",
    "pad_to_bucket",
    "pretrain",
    "reconstruct",
    "save_model",
]
