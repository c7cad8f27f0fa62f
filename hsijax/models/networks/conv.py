"""The convolutional stages both CNNs share: the downsampling encoder f_D and the upsampling decoder f_U.

Flax Linen, not NNX: the parameters are a plain pytree, which is what the rest of hsijax passes
around functionally -- `jax.jit` per bucket, `shard_map` with an explicit gradient `pmean`, Orbax
checkpoints that plain Orbax can restore, and an encoder subtree that a classifier can adopt.

Parameter names (``encoder/Conv_0`` ..., ``decoder/Conv_0`` ..., in order of creation) are those of
hsijax 0.1's ``Encoder`` and ``Decoder``, so its checkpoints restore into these modules unchanged:
the encoder's convolutions are created inside each network's encoder module (`conv_features`), the
decoder is a child module of its own.
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from hsijax.errors import HsijaxError


def fourier_features(values, frequencies: int):
    """``values`` (..., ) in about [0, 1] -> (..., 1 + 2 * frequencies): the value, then sin and cos
    of pi * 2**k * value. A plain coordinate channel only lets a CNN draw smooth functions of
    position; these let it place narrow absorption features at the right band.
    """
    scales = jnp.pi * 2.0 ** jnp.arange(frequencies)
    angles = values[..., None] * scales
    return jnp.concatenate([values[..., None], jnp.sin(angles), jnp.cos(angles)], axis=-1)


def pool_bands(features, steps: int):
    """Average (N, B, C) over blocks of consecutive bands down to (N, steps, C)."""
    rows, length, channels = features.shape
    return features.reshape(rows, steps, length // steps, channels).mean(axis=2)


def duplicated_padding(code, steps: int):
    """The poster's f_Dup: repeat the code (N, c) at ``steps`` positions -> (N, steps, c)."""
    return jnp.repeat(code[:, None, :], steps, axis=1)


def conv_features(inputs, widths: tuple[int, ...], kernel_size: int, code_width: int):
    """f_D inside the calling module's compact method (its convolutions are that module's
    ``Conv_0`` ...): (N, L) or (N, L, channels) -> (N, L / 2**len(widths), code_width), one stride-2
    convolution (GELU) per width, then a convolution to the code width."""
    kernel = (kernel_size,)
    features = inputs[..., None] if inputs.ndim == 2 else inputs
    for width in widths:
        features = nn.gelu(nn.Conv(width, kernel, strides=2, padding="SAME")(features))
    return nn.Conv(code_width, kernel, padding="SAME")(features)


class ConvDecoder(nn.Module):
    """f_U: (N, b_hat, c) -> (N, b_hat * 2**stages), the encoder's mirror image.

    Each stage doubles the length and runs a convolution with the width the encoder had at that
    length. Upsampling is nearest-neighbour repetition followed by a convolution rather than a
    transposed convolution: the same receptive field, no checkerboard artefacts, and much cheaper
    gradients on XLA's CPU backend. With ``conditioning`` (N, L, C), those channels, averaged to the
    current length, are concatenated before every convolution.
    """

    widths: tuple[int, ...]
    kernel_size: int

    @nn.compact
    def __call__(self, repeated_code, conditioning=None):
        kernel = (self.kernel_size,)

        def conv(features, width):
            if conditioning is not None:
                extra = pool_bands(conditioning, features.shape[1]).astype(features.dtype)
                features = jnp.concatenate([features, extra], axis=-1)
            return nn.Conv(width, kernel, padding="SAME")(features)

        features = nn.gelu(conv(repeated_code, self.widths[-1]))
        for width in reversed(self.widths[:-1]):
            features = nn.gelu(conv(jnp.repeat(features, 2, axis=1), width))
        return conv(jnp.repeat(features, 2, axis=1), 1)[..., 0]


def check_conv_fields(widths: tuple[int, ...], kernel_size: int, fourier_frequencies: int) -> None:
    """The CNN fields' checks, shared by both CNN configs."""
    if not widths or min(widths) < 1:
        raise HsijaxError(f"widths must be a non-empty list of positive ints, got {widths}")
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise HsijaxError(f"kernel_size must be a positive odd int, got {kernel_size}")
    if fourier_frequencies < 0:
        raise HsijaxError(f"fourier_frequencies must be >= 0, got {fourier_frequencies}")
