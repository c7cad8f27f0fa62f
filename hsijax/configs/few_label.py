"""The few-label study (`hsijax/experiments/few_label.py`): every classifier on every labelled scene here.

    hsijax few-label --workdir runs/few_label --report docs/few_label

Scenes: Indian Pines (the poster's), Houston 2018 (CASI, its 0.5-m labels brought to the 1-m image by
block majority) and the 2,832 Houston 2013 training spectra (CASI, spectra without an image: per pixel
only). Methods may be added to ``per_pixel`` and ``spatial`` and the study run again in its workdir:
only the new ones run. Each seed draws one split per fraction, and every method runs on that same split (paired).
Splits: ``random``, the poster's per-class rule; ``blocks``, the spatially disjoint one (training
pixels from whole 8 x 8 blocks, test pixels beyond the largest window's radius from them), for the
spatial methods and the per-pixel baselines beside them.
"""

import ml_collections

from hsijax.configs import base, local


def get_config():
    config = ml_collections.ConfigDict()
    config.checkpoint = "pretrained"  # the shared code every code method uses
    config.poster_checkpoint = "poster"  # the poster's CNN, fine-tuned (``poster_cnn``) and its architecture (``scratch``)

    data = local.get_config().data
    config.data = ml_collections.ConfigDict()
    config.data.data_dir = data.data_dir
    config.data.source_dir = data.source_dir
    config.data.rebuild = False
    config.data.imports = ml_collections.ConfigDict({
        "houston2018": base.import_fields(local.IMPORTS["houston2018"]),
        "houston2013": base.import_fields(local.HOUSTON2013),
    })

    config.scenes = "indian_pines,houston2018,houston2013"
    config.fractions = "0.01,0.05"
    config.seeds = 5
    config.splits = "random,blocks"
    # Per pixel, on the random split (names: hsijax.evaluate.methods and the networks below).
    config.per_pixel = ("svm,linear_codes,svm_codes,svm_grid_pca_8,svm_grid_pca_24,svm_grid_pca_32,svm_scene_pca,"
                        "map,label_spreading,self_training,poster_cnn,scratch,fine_tuned,fine_tuned_ensemble")
    # With spatial context, on both splits, beside the per-pixel `baselines`; images only.
    config.spatial = ("spatial_svm,spatial_codes,svm_smoothed,map_smoothed,spatial_svm_smoothed,spatial_codes_smoothed,"
                      "cnn_spectra,cnn_codes")
    config.baselines = "svm,map"

    # The poster's CNN (poster_cnn, scratch) and fine_tuned_ensemble train on these scenes only: 1-4
    # minutes a run on this 2-core machine, 10 runs a method for Indian Pines alone.
    config.cnn_scenes = "indian_pines"
    # ``fine_tuned`` (hsijax.train.fine_tune.fine_tune_refit): its defaults, chosen on validation pixels
    # of Indian Pines at 5 % (seeds 0-2): at 1000 steps and 1e-3 the best step was often the last.
    config.fine_tune = ml_collections.ConfigDict()
    config.fine_tune.steps = 2000
    config.fine_tune.learning_rate = 3e-3
    config.network = ml_collections.ConfigDict()  # the poster's CNN (poster_cnn, scratch)
    config.network.steps = 1000  # at most; the step kept is chosen on validation pixels
    config.network.learning_rate = 1e-3
    config.network.validation_fraction = 0.25
    config.network.eval_every = 100
    return config
