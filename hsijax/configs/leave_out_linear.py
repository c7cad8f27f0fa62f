"""Leave-sensor-out evaluation of the linear network on the wavelength grid, the network that
`hsijax.load_pretrained()` ships (`hsijax/experiments/leave_out.py`):

    hsijax leave-out --config hsijax/configs/leave_out_linear.py --workdir runs/leave_out_linear \
        --report docs/leave_out_linear

(the same as ``--config leave_out:linear_grid``).

The `leave_out` config's cells, scenes, validation scenes and classification protocol; each cell's
network is fitted in closed form (the grid PCA of its pretraining scenes plus the USGS library, the
shipping recipe) instead of pretrained, so the command takes minutes, most of them fine-tuning.
"""

from hsijax.configs import leave_out


def get_config():
    return leave_out.get_config("linear_grid")
