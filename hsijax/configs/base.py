"""Every pretraining field and its default; the named configs start from here.

Network: ``model.kind`` names the network (`hsijax.models.networks`: ``poster_cnn``, the default
here with the conditioned decoder; ``grid_cnn``; ``linear_grid``) and the other ``model`` fields
are that network's own. A config file takes the kind as its argument, so any network trains with
any config that forwards it: ``--config tiny:linear_grid`` (`model_fields`).

Scenes: ``data.scenes`` is a comma-separated list of dataset names under ``data.data_dir`` (a string,
so that ``--config.data.scenes=a,b`` works on the command line). A scene that is not prepared yet is
built first: a catalogued scene with `hsijax prepare`, any other with the `hsijax import` options
given in ``data.imports`` (name -> the options' fields, `import_fields`; relative paths are under
``data.source_dir``).
"""

from __future__ import annotations

import ml_collections

from hsijax.models.networks import PosterCNNConfig, config_class


def import_fields(options: dict) -> ml_collections.ConfigDict:
    """A ``data.imports`` entry: `hsijax.data.loading.ImportOptions`'s fields (``file``, ``gt``, ``key``,
    ``wavelengths``, ``shape``, ...), the options of ``hsijax import``, as config fields."""
    return ml_collections.ConfigDict(dict(options))


def model_fields(kind: str | None = None, **fields) -> ml_collections.ConfigDict:
    """``config.model`` for the network ``kind`` (default: the poster's CNN, conditioned decoder): its
    default fields, then those of ``fields`` the network has -- the others are left out, so a config
    that sizes the CNNs (widths, kernel) also runs the linear network, which has none of them."""
    cls = config_class(kind or PosterCNNConfig.kind)
    defaults = cls(decoder="conditioned") if cls is PosterCNNConfig else cls()
    model = {key: tuple(value) if isinstance(value, list) else value for key, value in defaults.to_dict().items()}
    model.update({key: value for key, value in fields.items() if key in model})
    return ml_collections.ConfigDict(model)


def set_model_fields(config: ml_collections.ConfigDict, **fields) -> None:
    """Set those of ``fields`` that ``config.model``'s network has (see `model_fields`)."""
    config.model.update({key: value for key, value in fields.items() if key in config.model})


def get_config(kind: str | None = None) -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.seed = 0
    # Start from a saved model instead of random weights (a workdir, a step, or a shipped model:
    # "pretrained", "poster"), whose network overrules config.model; a run that resumes ignores it.
    config.init_from = ""
    config.model = model_fields(kind)

    config.data = ml_collections.ConfigDict()
    config.data.data_dir = "~/tensorflow_datasets"
    config.data.scenes = "indian_pines"
    config.data.imports = ml_collections.ConfigDict()  # name -> import_fields(file=..., key=..., ...)
    config.data.source_dir = ""  # where the relative paths of data.imports are ("": where the command runs)
    # name -> a --wavelengths form (file, table, linspace:FIRST:LAST), for a scene that lists no band
    # centres: said here, never assumed; a grid PCA never fits a scene placed by a nominal list.
    config.data.nominal_wavelengths = ml_collections.ConfigDict()
    # Build every named dataset again (`hsijax ... --rebuild`), rather than refuse one that was built
    # with other options or from files that changed since (hsijax.data.provenance).
    config.data.rebuild = False
    config.data.mixing = "pixels"  # or "uniform"
    config.data.held_out_pixels = 512  # per scene, never trained on; PSNR is measured on them
    # How the pipeline shuffles and reads (hsijax.data.pipeline.PIPELINE_FORMATS): 2, dense windows;
    # 1, hsijax 0.1's per-pixel records (what the README's earlier pretraining numbers ran with).
    config.data.pipeline_format = 2

    config.optim = ml_collections.ConfigDict()
    config.optim.learning_rate = 1e-3
    config.optim.final_learning_rate_fraction = 0.05  # cosine decay to this fraction
    config.optim.weight_decay = 1e-6  # the poster's alpha in alpha * ||theta||^2, inside the loss

    config.train = ml_collections.ConfigDict()
    config.train.steps = 1000
    config.train.batch_size = 256  # global: split over processes, then over devices
    config.train.log_every = 50
    config.train.eval_every = 250
    config.train.checkpoint_every = 250
    config.train.keep_checkpoints = 3
    # Wavelength-grid networks only: the fraction of pixels encoded from a random wavelength window
    # and decoded whole (`hsijax.train.step.visible_windows`); 0: every pixel sees all its bands.
    config.train.visible_window = 0.0
    return config
