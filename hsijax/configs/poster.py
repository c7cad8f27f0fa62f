"""The poster's twelve scenes, sized for a TPU VM (v4-8 or larger; batch split over all chips).

    hsijax prepare botswana ... (each of the twelve, see datasets/README.md), then
    hsijax pretrain --config hsijax/configs/poster.py --workdir ~/runs/poster \
        --config.data.data_dir=/mnt/tfds
    (or the whole thing with launch/tpu_pretrain.py, see launch/README.md)
"""

from hsijax.configs import base
from hsijax.data.catalog import SCENES


def get_config():
    config = base.get_config()
    config.model.decoder = "faithful"  # the poster's decoder (base.py's default is the conditioned one)
    config.data.scenes = ",".join(sorted(SCENES))
    config.data.mixing = "uniform"  # Xiong'an alone has more pixels than the other eleven together
    config.data.held_out_pixels = 4096
    config.train.steps = 100_000
    config.train.batch_size = 8192
    config.train.log_every = 100
    config.train.eval_every = 5000
    config.train.checkpoint_every = 2000
    config.train.keep_checkpoints = 3
    return config
