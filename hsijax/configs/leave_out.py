"""Leave-sensor-out evaluation (`hsijax/experiments/leave_out.py`):

    hsijax leave-out --workdir runs/leave_out --report docs/leave_out

Pretraining: the `local` scenes plus Salton Sea (its 20 bad bands dropped), each with the
wavelengths its data provides, mixed uniformly (no sensor dominates), in the faster dense pipeline.
Each cell leaves out one scene and the two validation scenes, which choose models and are never
in the left-out tables. Left out: one scene per non-AVIRIS sensor (SAMSON, the Houston 2018 CASI,
EO-1 Hyperion) and, for AVIRIS, Indian Pines.

The network is the config's argument (``--config leave_out:KIND``, default the poster's CNN with its
faithful decoder); the variants were compared on the validation scenes only, each pretrained like
the cell without Houston 2018 (read ``without_houston2018/reconstruct/{jasper_ridge,salton_sea}.json``):

    only="--config.left_out=houston2018 --config.labelled_scenes= --config.anomaly_scenes= \
          --config.classify.fine_tune=False --config.spectral_library="
    hsijax leave-out --workdir runs/ablation/conditioned_bands $only --config.pretrain.model.decoder=conditioned
    hsijax leave-out --config leave_out:grid_cnn --workdir runs/ablation/grid $only
    hsijax leave-out --config leave_out:grid_cnn --workdir runs/ablation/grid_masked $only \
        --config.pretrain.train.visible_window=0.5
    hsijax leave-out --workdir runs/ablation/faithful_real_pooling $only --config.pretrain.model.pooling=real

San Diego and the ABU chips list no band centres; the wavelength-grid networks need them, so this
config gives them a nominal list (``data.nominal_wavelengths``): AVIRIS's range spread evenly over
their bands (``linspace:400:2500``, what hsijax 0.1 assumed for any scene without a list) --
explicit, and rough: these cubes dropped water-absorption bands that the published files do not
name. Scenes placed by a nominal list are never fitted on by a grid PCA (the shipped code included).
"""

import ml_collections

from hsijax.configs import base, local

NOMINAL_WAVELENGTHS = "linspace:400:2500"  # AVIRIS's range, for the scenes that list none
UNLISTED = ("san_diego", "abu_airport_1", "abu_beach_1", "abu_urban_1", "abu_urban_2")


def get_config(kind=None):
    config = local.get_config()
    if kind:
        config.model = base.model_fields(kind, code_width=config.model.code_width)
    config.data.nominal_wavelengths.update({name: NOMINAL_WAVELENGTHS for name in UNLISTED})
    config.data.imports.salton_sea = base.import_fields(local.SALTON_SEA)
    config.data.imports.houston2013 = base.import_fields(local.HOUSTON2013)  # labelled spectra only, never pretrained on
    config.data.scenes += ",salton_sea"
    config.data.pipeline_format = 2
    base.set_model_fields(config, decoder="faithful")  # the poster CNN's shipped weights' decoder
    config.train.steps = 1500
    config.train.eval_every = 500

    study = ml_collections.ConfigDict()
    study.pretrain = config
    study.left_out = "samson,houston2018,paris_hyperion,indian_pines"
    study.validation_scenes = "jasper_ridge,salton_sea"
    study.code_widths = "8,16,32"  # of the grid PCA and own PCA rows; the network's is pretrain.model
    # Labelled scenes outside the pretraining list, scored with the cell that left their sensor out:
    # the Houston 2013 CASI training spectra with the model that never saw the Houston 2018 CASI.
    study.labelled_scenes = "houston2013:houston2018"
    # The USGS splib07a ASD spectra and random 3-material mixtures of them: a second grid PCA is
    # fitted on the pretraining scenes plus these (skipped when the folder is missing).
    # Under pretrain.data.source_dir when relative.
    study.spectral_library = "SpectralLibraries/USGS_splib07a"
    study.library_mixtures = 19_000
    study.anomaly_scenes = "abu_airport_1,abu_beach_1,abu_urban_1,abu_urban_2,san_diego"
    study.classify = ml_collections.ConfigDict()
    study.classify.dataset = "indian_pines"
    study.classify.fractions = "0.01,0.05"
    study.classify.seeds = 5
    study.classify.steps = 2000
    study.classify.fine_tune = True  # pretrained vs scratch vs SVM on the classification scene
    return study
