"""The shared autoencoder: a downsampling 1-D CNN encoder, max-pooling to a fixed-size code, and a
decoder that repeats the code ("duplicated padding") and upsamples back to the bucket length.

Flax Linen, not NNX: the parameters are a plain pytree, which is what the rest of hsijax passes
around functionally -- `jax.jit` per bucket, `shard_map` with an explicit gradient `pmean`, Orbax
checkpoints that plain Orbax can restore, and an encoder subtree that a classifier can adopt. NNX's
mutable objects would have to be split into the same pytree at each of those boundaries.

Shapes: spectra arrive padded to a bucket length B (see `hsijax.spectral`) as (N, B). The encoder
has L stride-2 stages, so it ends at b_hat = B / 2**L positions with ``code_width`` channels; the
code is their maximum over the band axis, (N, code_width), the same size for every sensor.

Decoders (one config switch):
- ``faithful``: the poster's. The repeated code is all the decoder sees, so its only positional
  signal is the distance to the ends of the sequence (through the convolutions' zero padding),
  and that reaches only as far as the decoder's receptive field (about 30 bands with the defaults).
- ``conditioned``: the band position (where in the real spectrum each padded position's source
  band sits), the wavelength when it is known, and a "wavelength known" flag are concatenated to
  the repeated code -- and again before every later convolution, averaged to that stage's length.
  Position and wavelength enter as Fourier features (``fourier_frequencies`` sin/cos pairs beside
  the raw value): on Indian Pines, 600 steps, c = 16, this took held-out MPSNR from 31.7 dB (raw
  channels at the code only) to 40.6 dB.

The wavelength-grid variant (``axis="wavelength_grid"``) runs the same encoder and decoder over the
shared 5-nm grid instead of band positions: each spectrum is interpolated onto the grid points its
sensor covers (`hsijax.data.shared_grid`), the encoder sees (value, covered) per point, the code
pools only covered positions, the decoder is conditioned on the grid wavelength and its output is
interpolated back to the spectrum's band centres. Bucket lengths still shape the inputs, so it
compiles once per bucket like the band network.

The linear network (``network="linear"``, on the grid only) replaces both CNNs by one basis: the
code is the least-squares fit of a spectrum's covered grid points by ``code_width`` basis vectors
around a mean, and the decoder is that mean plus the code times the basis (tied weights). With the
parameters of a `hsijax.SharedGridPCA` (`linear_code.SharedGridPCA.to_model`) it is that code in
network form (whitened: the same subspace and reconstructions, unit-variance code numbers): it
encodes, reconstructs and fine-tunes inside a classifier like the CNN.
On sensors it never saw it is the best shared code measured here (docs/leave_out_linear), so
`load_pretrained()` ships it; the poster's CNN stays loadable as ``load_pretrained("poster")``.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from hsijax.data.shared_grid import (
    DEFAULT_RANGE_NM,
    GRID_POINTS,
    SHARED_GRID_NM,
    from_grid,
    grid_interpolation,
    to_grid,
)
from hsijax.errors import HsijaxError
from hsijax.spectral import DEFAULT_BUCKETS, reflect_indices

DECODERS = ("faithful", "conditioned")
AXES = ("bands", "wavelength_grid")
POOLINGS = ("all", "real")
NETWORKS = ("cnn", "linear")
REFINEMENTS = 2  # of the linear code's least squares, see `LinearGridCode`
RIDGE = 1e-6  # added to the linear code's normal equations: a pixel covering no grid point gets code 0


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild the network; stored as JSON inside every checkpoint."""

    code_width: int = 16
    decoder: str = "faithful"
    widths: tuple[int, ...] = (32, 64, 128)
    kernel_size: int = 5
    fourier_frequencies: int = 6  # conditioned decoder only; see `fourier_features`
    buckets: tuple[int, ...] = DEFAULT_BUCKETS
    # "bands": the poster's network, convolving over band positions; "wavelength_grid": the same
    # network convolving over the shared 5-nm grid (`hsijax.data.shared_grid`; `on_grid`).
    axis: str = "bands"
    # Band axis: "all" (the poster's) max-pools over every padded position, so the same spectrum in
    # another bucket gets another code (18-34 % relative change, 200-band Indian Pines in 256 vs 512,
    # shipped weights); "real" pools only the positions the real bands reach (`real_positions`).
    # The wavelength-grid network always pools over the positions its sensor covers.
    pooling: str = "all"
    # "cnn": the poster's convolutional encoder and decoder; "linear": one basis on the wavelength
    # grid, least-squares codes and a tied linear decoder (`LinearGridCode`; `decoder`, `widths`,
    # `kernel_size` and `pooling` do not apply).
    network: str = "cnn"

    def __post_init__(self):
        object.__setattr__(self, "widths", tuple(int(w) for w in self.widths))
        object.__setattr__(self, "buckets", tuple(sorted(int(b) for b in self.buckets)))
        self._validate()

    @property
    def description(self) -> str:
        """The network in a few words, for reports and model cards."""
        if self.network == "linear":
            return "the linear network on the shared wavelength grid"
        return f"the CNN, {self.decoder} decoder" + (", on the shared wavelength grid" if self.axis != "bands" else "")

    @property
    def stages(self) -> int:
        """L, the number of stride-2 stages; each bucket must be a multiple of 2**L."""
        return len(self.widths)

    def _validate(self):
        if self.axis not in AXES:
            raise HsijaxError(f"axis must be one of {AXES}, got {self.axis!r}")
        if self.axis == "wavelength_grid" and GRID_POINTS % 2**self.stages:
            raise HsijaxError(f"the wavelength grid's {GRID_POINTS} points need widths with at most 3 stages, "
                              f"got {len(self.widths)}")
        if self.network not in NETWORKS:
            raise HsijaxError(f"network must be one of {NETWORKS}, got {self.network!r}")
        if self.network == "linear" and self.axis != "wavelength_grid":
            raise HsijaxError('network "linear" needs axis "wavelength_grid": its basis lives on the shared grid')
        if self.pooling not in POOLINGS:
            raise HsijaxError(f"pooling must be one of {POOLINGS}, got {self.pooling!r}")
        if self.decoder not in DECODERS:
            raise HsijaxError(f"decoder must be one of {DECODERS}, got {self.decoder!r}")
        if self.code_width < 1:
            raise HsijaxError(f"code_width must be at least 1, got {self.code_width}")
        if not self.widths or min(self.widths) < 1:
            raise HsijaxError(f"widths must be a non-empty list of positive ints, got {self.widths}")
        if self.fourier_frequencies < 0:
            raise HsijaxError(f"fourier_frequencies must be >= 0, got {self.fourier_frequencies}")
        if self.kernel_size < 1 or self.kernel_size % 2 == 0:
            raise HsijaxError(f"kernel_size must be a positive odd int, got {self.kernel_size}")
        block = 2**self.stages
        bad = [length for length in self.buckets if length < block or length % block]
        if not self.buckets or bad:
            raise HsijaxError(
                f"buckets {self.buckets}: each must be a positive multiple of 2**stages = {block}"
            )

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "widths": list(self.widths), "buckets": list(self.buckets)}

    @classmethod
    def from_dict(cls, fields: dict[str, Any]) -> ModelConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(fields) - known)
        if unknown:
            raise HsijaxError(f"unknown model config field(s) {unknown}; known: {sorted(known)}")
        return cls(**fields)


def fourier_features(values, frequencies: int):
    """``values`` (..., ) in about [0, 1] -> (..., 1 + 2 * frequencies): the value, then sin and cos
    of pi * 2**k * value. A plain coordinate channel only lets a CNN draw smooth functions of
    position; these let it place narrow absorption features at the right band.
    """
    scales = jnp.pi * 2.0 ** jnp.arange(frequencies)
    angles = values[..., None] * scales
    return jnp.concatenate([values[..., None], jnp.sin(angles), jnp.cos(angles)], axis=-1)


def band_conditioning(band_count, wavelengths, has_wavelengths, length: int, frequencies: int):
    """The conditioned decoder's extra channels for each of ``length`` padded bands: (N, B, C).

    Band position: where the real band that a position copies sits in the spectrum (0 = first,
    1 = last; padded positions carry the position of the band they reflect). Wavelength: the
    band centre mapped from 350-2550 nm to [0, 1], zero when unknown, then a 0/1 "known" flag.
    Works with a traced ``band_count`` (N,), so it compiles once per bucket.
    """
    source = reflect_indices(band_count, length, xp=jnp)
    position = source / jnp.maximum(band_count - 1, 1)[:, None]
    known = has_wavelengths.astype(jnp.float32)[:, None]
    wavelength = known * (wavelengths - 350.0) / 2200.0
    return jnp.concatenate(
        [
            fourier_features(position, frequencies),
            known[..., None] * fourier_features(wavelength, frequencies),
            jnp.broadcast_to(known, position.shape)[..., None],
        ],
        axis=-1,
    )


def pool_bands(features, steps: int):
    """Average (N, B, C) over blocks of consecutive bands down to (N, steps, C)."""
    rows, length, channels = features.shape
    return features.reshape(rows, steps, length // steps, channels).mean(axis=2)


class Encoder(nn.Module):
    """f_D: (N, B) -> (N, B / 2**L, code_width), one stride-2 convolution per stage."""

    config: ModelConfig

    @nn.compact
    def __call__(self, spectra):
        kernel = (self.config.kernel_size,)
        features = spectra[..., None] if spectra.ndim == 2 else spectra  # (N, L) or (N, L, channels)
        for width in self.config.widths:
            features = nn.gelu(nn.Conv(width, kernel, strides=2, padding="SAME")(features))
        return nn.Conv(self.config.code_width, kernel, padding="SAME")(features)


class LinearGridCode(nn.Module):
    """The linear network's encoder: a mean (G,) and a basis (code_width, G) on the shared grid.

    Encoding solves, per spectrum, least squares on the grid points its sensor covers (so a
    VNIR-only sensor is fitted on its own range, not on zeros): (B M B^T + ridge I) z = B M (x - m),
    M the covered mask; `decode` maps codes back onto the whole grid. A random start is an
    orthonormal basis around a zero mean.
    """

    config: ModelConfig

    def setup(self):
        self.mean = self.param("mean", nn.initializers.zeros, (GRID_POINTS,))
        self.basis = self.param("basis", nn.initializers.orthogonal(), (self.config.code_width, GRID_POINTS))

    def __call__(self, grid, covered):
        """Values on the grid (N, G) and their covered mask (N, G) -> codes (N, code_width)."""
        mask = covered.astype(grid.dtype)
        gram = jnp.einsum("cg,ng,dg->ncd", self.basis, mask, self.basis)
        gram = gram + RIDGE * jnp.eye(self.config.code_width, dtype=gram.dtype)
        centred = (grid - self.mean) * mask
        code = jnp.zeros(grid.shape[:-1] + (self.config.code_width,), grid.dtype)
        # Solved, then refined twice on the residual: on a narrow sensor the covered part of the basis
        # is far from orthogonal (the normal equations' condition number reaches ~1e4-1e5) and one
        # float32 solve loses the code's smaller components (15 % off on a 48-band VNIR sensor);
        # after two refinements they agree with float64 least squares to ~2e-4 relative.
        for _ in range(REFINEMENTS + 1):
            residual = (centred - code @ self.basis) * mask
            code = code + jnp.linalg.solve(gram, jnp.einsum("cg,ng->nc", self.basis, residual)[..., None])[..., 0]
        return code

    def decode(self, code):
        """Codes (N, code_width) -> values on the whole grid (N, G)."""
        return self.mean + code @ self.basis


def make_encoder(config: ModelConfig, name: str | None = None) -> nn.Module:
    """The encoder of ``config``'s network: `Encoder` (CNN) or `LinearGridCode`."""
    return LinearGridCode(config, name=name) if config.network == "linear" else Encoder(config, name=name)


def shared_code(encoder: nn.Module, config: ModelConfig, spectra, band_count=None, wavelengths=None,
                has_wavelengths=None, visible_nm=None):
    """(N, B) padded spectra -> (N, code_width) codes through a bound ``encoder`` (`make_encoder`):
    what the autoencoder and the classifier share. The band count and wavelengths are needed (and
    used) only on the wavelength grid, and by the band axis's pooling over real positions."""
    if config.axis == "bands":
        return pool_codes(encoder(spectra), config, band_count)
    grid, covered, _ = on_grid(spectra, band_count, wavelengths, has_wavelengths, visible_nm)
    if config.network == "linear":
        return encoder(grid, covered)
    features = encoder(jnp.stack([grid, covered.astype(grid.dtype)], axis=-1))
    # Pool only over code positions whose grid points the sensor covers: elsewhere the input is
    # zero-filled, and a maximum over it would make codes depend on the sensor's range.
    real = covered.reshape(*covered.shape[:-1], features.shape[1], -1).any(axis=-1)
    pooled = jnp.where(real[..., None], features, -jnp.inf).max(axis=1)
    return jnp.where(real.any(axis=-1, keepdims=True), pooled, 0.0)


def duplicated_padding(code, steps: int):
    """The poster's f_Dup: repeat the code (N, c) at ``steps`` positions -> (N, steps, c)."""
    return jnp.repeat(code[:, None, :], steps, axis=1)


class Decoder(nn.Module):
    """f_U: (N, b_hat, c) -> (N, B = b_hat * 2**L), the encoder's mirror image.

    Each of the L stages doubles the length and runs a convolution with the width the encoder
    had at that length. Upsampling is nearest-neighbour repetition followed by a convolution
    rather than a transposed convolution: the same receptive field, no checkerboard artefacts,
    and much cheaper gradients on XLA's CPU backend. With ``conditioning`` (N, B, C), those
    channels, averaged to the current length, are concatenated before every convolution.
    """

    config: ModelConfig

    @nn.compact
    def __call__(self, repeated_code, conditioning=None):
        kernel = (self.config.kernel_size,)
        widths = self.config.widths

        def conv(features, width):
            if conditioning is not None:
                extra = pool_bands(conditioning, features.shape[1]).astype(features.dtype)
                features = jnp.concatenate([features, extra], axis=-1)
            return nn.Conv(width, kernel, padding="SAME")(features)

        features = nn.gelu(conv(repeated_code, widths[-1]))
        for width in reversed(widths[:-1]):
            features = nn.gelu(conv(jnp.repeat(features, 2, axis=1), width))
        return conv(jnp.repeat(features, 2, axis=1), 1)[..., 0]


class SharedAutoencoder(nn.Module):
    """Encoder, band-axis max-pooling, duplicated padding and decoder, as in the poster; with
    ``axis="wavelength_grid"`` the same stages run on the shared wavelength grid (`on_grid`); with
    ``network="linear"`` one basis on that grid encodes and decodes (`LinearGridCode`)."""

    config: ModelConfig

    def setup(self):
        self.encoder = make_encoder(self.config)
        if self.config.network == "cnn":
            self.decoder = Decoder(self.config)

    def encode(self, spectra, band_count=None, wavelengths=None, has_wavelengths=None, visible_nm=None):
        """(N, B) padded spectra -> (N, code_width) shared codes (`shared_code`); see `__call__`."""
        return shared_code(self.encoder, self.config, spectra, band_count, wavelengths, has_wavelengths,
                           visible_nm)

    def __call__(self, spectra, band_count, wavelengths, has_wavelengths, visible_nm=None):
        """Reconstruct padded spectra (N, B); the caller crops or masks to the real bands.

        ``band_count`` (N,) int and ``has_wavelengths`` (N,) bool are per pixel, so one batch may
        mix scenes of one bucket; ``wavelengths`` (N, B) are padded like the spectra.
        ``visible_nm`` (N, 2), grid network only: the encoder sees only grid points in this range
        (a masked-band objective); the decoder still reconstructs every band.
        """
        length = spectra.shape[-1]
        if self.config.network == "linear":
            grid = self.encoder.decode(self.encode(spectra, band_count, wavelengths, has_wavelengths, visible_nm))
            return from_grid(grid, band_wavelengths(band_count, wavelengths, has_wavelengths, length), xp=jnp)
        if self.config.axis == "wavelength_grid":
            code = self.encode(spectra, band_count, wavelengths, has_wavelengths, visible_nm)
            steps = GRID_POINTS // 2**self.config.stages
            span = SHARED_GRID_NM[-1] - SHARED_GRID_NM[0]
            features = fourier_features(jnp.asarray((SHARED_GRID_NM - SHARED_GRID_NM[0]) / span),
                                        self.config.fourier_frequencies)
            conditioning = jnp.broadcast_to(features, (spectra.shape[0], *features.shape))
            grid = self.decoder(duplicated_padding(code, steps), conditioning)
            return from_grid(grid, band_wavelengths(band_count, wavelengths, has_wavelengths, length), xp=jnp)
        conditioning = None
        if self.config.decoder == "conditioned":
            conditioning = band_conditioning(
                band_count, wavelengths, has_wavelengths, length, self.config.fourier_frequencies
            )
        steps = length // 2**self.config.stages
        return self.decoder(duplicated_padding(self.encode(spectra, band_count), steps), conditioning)


def real_positions(band_count, positions: int, stages: int):
    """(N, positions) bool: the code positions whose stride-2**stages block starts at a real band
    (position p covers bands p * 2**stages ...), i.e. p < ceil(band_count / 2**stages)."""
    reached = (jnp.asarray(band_count) + 2**stages - 1) // 2**stages
    return jnp.arange(positions) < reached[..., None]


def pool_codes(features, config: ModelConfig, band_count=None):
    """Max over the band axis of the encoder's (N, P, c) features -> (N, c), over every position
    (``pooling="all"``) or over the real ones."""
    if config.pooling == "all":
        return features.max(axis=1)
    if band_count is None:
        raise HsijaxError('pooling "real" needs each spectrum\'s band count')
    real = real_positions(band_count, features.shape[1], config.stages)
    return jnp.where(real[..., None], features, -jnp.inf).max(axis=1)


def band_wavelengths(band_count, wavelengths, has_wavelengths, length: int):
    """(N, B) band centres, evenly over `shared_grid.DEFAULT_RANGE_NM` for pixels whose scene lists none."""
    first, last = DEFAULT_RANGE_NM
    steps = jnp.arange(length) / jnp.maximum(band_count - 1, 1)[:, None]
    return jnp.where(has_wavelengths[:, None], wavelengths, first + (last - first) * steps)


def on_grid(spectra, band_count, wavelengths, has_wavelengths, visible_nm=None):
    """Padded spectra (N, B) -> (values on the grid (N, G), covered (N, G) bool, band centres (N, B))."""
    if band_count is None:
        raise HsijaxError("the wavelength-grid network needs each spectrum's band count and wavelengths")
    centres = band_wavelengths(band_count, wavelengths, has_wavelengths, spectra.shape[-1])
    interpolation = grid_interpolation(centres, band_count, xp=jnp)
    covered = interpolation.covered
    if visible_nm is not None:
        grid_nm = jnp.asarray(SHARED_GRID_NM, jnp.float32)
        covered = covered & (grid_nm >= visible_nm[:, :1]) & (grid_nm <= visible_nm[:, 1:])
    values = to_grid(spectra, interpolation._replace(covered=covered), xp=jnp)
    return values, covered, centres


@dataclasses.dataclass(frozen=True)
class Model:
    """A configured network and its parameters (a Flax variables dict: ``{"params": ...}``)."""

    config: ModelConfig
    variables: Any

    @property
    def module(self) -> SharedAutoencoder:
        return SharedAutoencoder(self.config)

    def replace(self, variables) -> Model:
        return dataclasses.replace(self, variables=variables)

    @property
    def parameter_count(self) -> int:
        return sum(leaf.size for leaf in jax.tree.leaves(self.variables))


def init_variables(config: ModelConfig, seed: int):
    """Fresh parameters; convolution kernels do not depend on the length, so any bucket will do."""
    return _compiled_init(config)(jax.random.key(seed))


@functools.lru_cache(maxsize=None)
def _compiled_init(config: ModelConfig):
    """One compiled initialiser per configuration: run eagerly, Flax's init compiles each of its
    ~120 small operations separately (8 s on a CPU core, for every run and every seed)."""
    length = config.buckets[0]

    def init(key):
        dummy = jnp.zeros((1, length), jnp.float32)
        return SharedAutoencoder(config).init(key, dummy, jnp.ones((1,), jnp.int32), jnp.zeros((1, length)),
                                              jnp.zeros((1,), bool))

    return jax.jit(init)


def create_model(code_width: int = 16, decoder: str = "faithful", seed: int = 0, **config) -> Model:
    """A freshly initialised shared autoencoder. ``config`` takes the other `ModelConfig` fields."""
    model_config = ModelConfig.from_dict({"code_width": code_width, "decoder": decoder, **config})
    return Model(model_config, init_variables(model_config, seed))
