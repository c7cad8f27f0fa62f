"""Seconds-long pretraining for tests and smoke checks: Indian Pines, a small model, 40 steps.

    hsijax pretrain --config hsijax/configs/tiny.py --workdir /tmp/hsijax_tiny
    hsijax pretrain --config tiny:linear_grid --workdir /tmp/hsijax_tiny_linear   # any network kind
"""

from hsijax.configs import base


def get_config(kind=None):
    config = base.get_config(kind)
    base.set_model_fields(config, widths=(8, 16), code_width=8, fourier_frequencies=2)
    config.data.held_out_pixels = 256
    config.train.steps = 40
    config.train.batch_size = 64
    config.train.log_every = 5
    config.train.eval_every = 20
    config.train.checkpoint_every = 10
    config.train.keep_checkpoints = 2
    return config
