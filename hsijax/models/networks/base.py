"""What every network's config shares, and the band-centre refusal every network that needs them makes.

Each network kind (`hsijax.models.networks`) has its own frozen dataclass config holding only the
fields that mean something for it, plus a ``kind`` name recorded with every saved model, so a
saved model is rebuilt as exactly the network it was (`config_from_dict`). What they share:

- ``code_width``: the size of the shared code, the same for every sensor;
- ``buckets``: the band-count lengths spectra are padded to on the per-pixel path (a batch that
  mixes sensors, e.g. pretraining), so jit compiles once per bucket rather than once per sensor;
- ``needs_wavelengths``: whether the network places spectra by their band centres (the wavelength
  grid networks) -- such a network refuses spectra given without them (`require_wavelengths`)
  rather than assuming where the bands lie;
- ``folds_per_sensor``: whether, for spectra that share their band centres, the network's encoder
  and decoder are affine maps that fold into one matrix and an offset (`hsijax.models.inference`).
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

from hsijax.errors import HsijaxError
from hsijax.spectral import DEFAULT_BUCKETS, check_band_count

# The forms band centres take on every command (`hsijax.data.loading.add_file_options`).
WAVELENGTH_FORMS = "a file (text, .npy, .mat or an ENVI .hdr), a sensor table (aviris, hyperion) or linspace:FIRST:LAST"


def missing_wavelengths_message(description: str) -> str:
    """The one line every path gives when a network that needs band centres gets none."""
    return (f"{description} places spectra by their band centres and none were given: pass wavelengths=... "
            f"(nm, one per band) in Python, or --wavelengths with {WAVELENGTH_FORMS} on the command line")


@dataclasses.dataclass(frozen=True)
class NetworkConfig:
    """Fields every network has; subclasses add their own and set the class attributes."""

    kind: ClassVar[str] = ""
    needs_wavelengths: ClassVar[bool] = False
    folds_per_sensor: ClassVar[bool] = False

    code_width: int = 16
    buckets: tuple[int, ...] = DEFAULT_BUCKETS

    def __post_init__(self):
        object.__setattr__(self, "buckets", tuple(sorted(int(b) for b in self.buckets)))
        if self.code_width < 1:
            raise HsijaxError(f"code_width must be at least 1, got {self.code_width}")
        self._validate()

    def _validate(self) -> None:
        """The kind's own checks (bucket lengths, widths); `HsijaxError` on a bad field."""
        self.check_buckets(1)

    def check_buckets(self, block: int) -> None:
        bad = [length for length in self.buckets if length < block or length % block]
        if not self.buckets or bad:
            raise HsijaxError(f"buckets {self.buckets}: each must be a positive multiple of 2**stages = {block}")

    @property
    def description(self) -> str:
        """The network in a few words, for reports, messages and model cards."""
        raise NotImplementedError

    def require_wavelengths(self, wavelengths, where: str = "") -> None:
        """Refuse missing band centres for a network that needs them (one line, naming the forms and
        ``where`` the spectra come from)."""
        if wavelengths is None and self.needs_wavelengths:
            raise HsijaxError(f"{where}: " * bool(where) + missing_wavelengths_message(self.description))

    def check_scene(self, band_count: int, wavelengths, where: str) -> None:
        """What a command checks of a scene before any work: its band count fits the buckets, and it
        lists band centres if this network needs them."""
        check_band_count(band_count, self.buckets, where)
        self.require_wavelengths(wavelengths, where)

    def to_dict(self) -> dict[str, Any]:
        """JSON fields, ``kind`` first: what a saved model records."""
        fields = {key: list(value) if isinstance(value, tuple) else value
                  for key, value in dataclasses.asdict(self).items()}
        return {"kind": self.kind, **fields}

    @classmethod
    def field_names(cls) -> list[str]:
        return [field.name for field in dataclasses.fields(cls)]

    @classmethod
    def from_fields(cls, fields: dict[str, Any]):
        """This kind's config from its JSON fields (``kind`` may be present); unknown fields refused."""
        fields = {key: value for key, value in fields.items() if key != "kind"}
        unknown = sorted(set(fields) - set(cls.field_names()))
        if unknown:
            raise HsijaxError(f"model config field(s) {unknown} do not apply to the {cls.kind} network; "
                              f"its fields: {cls.field_names()}")
        return cls(**fields)
