"""The shared autoencoder (faithful decoder) in PyTorch, with its weights copied from a hsijax model.

The reference a PyTorch user would write: channels-first ``Conv1d``, tanh-GELU like Flax's
default, Flax's "SAME" padding reproduced exactly (a stride-2 convolution of kernel k pads
(k - 2) // 2 before and the rest after; a stride-1 one pads (k - 1) // 2 on both sides), nearest
upsampling by ``repeat_interleave``. `check_equal` proves the copy computes what hsijax computes.
"""

from __future__ import annotations

import numpy as np


def build(torch, model):
    """(encoder, autoencoder) torch modules holding ``model``'s parameters (faithful decoder)."""
    nn, functional = torch.nn, torch.nn.functional
    config = model.config
    params = model.variables["params"]
    kernel = config.kernel_size

    def conv(flax_params, stride: int = 1):
        weight = np.asarray(flax_params["kernel"])  # (k, in, out)
        layer = nn.Conv1d(weight.shape[1], weight.shape[2], kernel, stride=stride)
        with torch.no_grad():
            layer.weight.copy_(torch.from_numpy(weight.transpose(2, 1, 0).copy()))
            layer.bias.copy_(torch.from_numpy(np.array(flax_params["bias"])))
        return layer

    class Encoder(nn.Module):
        def __init__(self):
            super().__init__()
            encoder = params["encoder"]
            self.stages = nn.ModuleList(conv(encoder[f"Conv_{i}"], 2) for i in range(config.stages))
            self.out = conv(encoder[f"Conv_{config.stages}"])

        def forward(self, spectra):  # (N, B) -> (N, c, B / 2**L)
            features = spectra[:, None, :]
            for stage in self.stages:
                features = functional.gelu(stage(functional.pad(features, ((kernel - 2) // 2, kernel // 2))),
                                           approximate="tanh")
            return self.out(functional.pad(features, (kernel // 2, kernel // 2)))

    class Autoencoder(nn.Module):
        def __init__(self, encoder):
            super().__init__()
            self.encoder = encoder
            decoder = params["decoder"]
            self.convs = nn.ModuleList(conv(decoder[f"Conv_{i}"]) for i in range(config.stages + 1))

        def forward(self, spectra):  # (N, B) -> (N, B)
            code = self.encoder(spectra).amax(dim=2)
            steps = spectra.shape[1] // 2**config.stages
            features = code[:, :, None].expand(-1, -1, steps)
            for index, layer in enumerate(self.convs):
                if index:
                    features = features.repeat_interleave(2, dim=2)
                features = layer(functional.pad(features, (kernel // 2, kernel // 2)))
                if index < len(self.convs) - 1:
                    features = functional.gelu(features, approximate="tanh")
            return features[:, 0, :]

    encoder = Encoder()
    return encoder, Autoencoder(encoder)


def encode_fn(encoder):
    """(N, B) -> codes (N, c), as the torch user would call it."""
    return lambda spectra: encoder(spectra).amax(dim=2)


def check_equal(torch, got, want, what: str, tolerance: float = 1e-4) -> float:
    """Largest absolute difference; raises when above ``tolerance``."""
    difference = float(np.max(np.abs(np.asarray(got.detach() if isinstance(got, torch.Tensor) else got)
                                     - np.asarray(want))))
    if difference > tolerance:
        raise AssertionError(f"{what}: PyTorch and JAX differ by {difference:.2e} > {tolerance}")
    return difference
