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

from hsijax.data.pipeline import TrainingSet
from hsijax.data.scene import Scene, load_indian_pines
from hsijax.errors import HsijaxError
from hsijax.models.autoencoder import ModelConfig  # hsijax 0.1's single config, for one release
from hsijax.models.classifier import SpectralClassifier
from hsijax.models.inference import encode, reconstruct
from hsijax.models.linear_code import SharedGridPCA
from hsijax.models.model import Model, create_model
from hsijax.models.networks import GridCNNConfig, LinearGridConfig, PosterCNNConfig
from hsijax.models.saved_model import load_model, load_pretrained, save_model
from hsijax.spectral import DEFAULT_BUCKETS, bucket_for, crop, fit_normalization, pad_to_bucket
from hsijax.train.loop import pretrain

__version__ = "0.2.0"

__all__ = [
    "DEFAULT_BUCKETS",
    "GridCNNConfig",
    "HsijaxError",
    "LinearGridConfig",
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
    "load_indian_pines",
    "load_model",
    "load_pretrained",
    "pad_to_bucket",
    "pretrain",
    "reconstruct",
    "save_model",
]
