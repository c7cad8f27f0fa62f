"""The decoder study (docs/study/README.md): which decoder and code width transfer to scenes that
pretraining never saw, and what pretraining does for Indian Pines classification.

    hsijax study --workdir runs/study --report docs/study

Every cell pretrains the `unseen` config (the local scenes minus three sensors) with one decoder and
one code width, reconstructs the unseen scenes and fine-tunes on Indian Pines; one more cell leaves
Indian Pines out of pretraining too. The scratch network and the SVM run once per label fraction.
The whole study is resumable: finished pretraining, reconstructions and classifications are kept.
"""

import ml_collections

from hsijax.configs import unseen


def get_config():
    config = ml_collections.ConfigDict()
    config.pretrain = unseen.get_config()
    config.decoders = "conditioned,faithful"
    config.code_widths = "16,8,32"  # the default width first: the most informative cells finish first
    config.unseen_scenes = ",".join(unseen.UNSEEN)
    # Leave-scene-out: the shipped model's decoder and width pretrained without these scenes as well
    # (faithful: the better decoder on the unseen scenes, by 4.9 dB at c = 16).
    config.leave_out = "indian_pines"
    config.leave_out_decoder = "faithful"
    config.leave_out_code_width = 16

    config.classify = ml_collections.ConfigDict()
    config.classify.dataset = "indian_pines"
    config.classify.fractions = "0.01,0.05"
    config.classify.seeds = 5
    config.classify.steps = 2000  # most fine-tuning steps; the step kept is chosen on validation pixels
    config.classify.baselines = True  # scratch and SVM on the same splits
    return config
