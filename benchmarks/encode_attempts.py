"""What was tried to make encoding faster, measured side by side (the record behind hsijax's choices).

    .venv/bin/python benchmarks/encode_attempts.py --json results/encode_attempts.json

For 103, 200 and 436 bands at c = 16, pixels/s of:
- ``conv_2048``: Flax ``nn.Conv`` (XLA's convolution), 2048 rows per call -- hsijax before;
- ``conv_chunk``: the same with `hsijax.models.inference.chunk_rows` rows per call -- hsijax now;
- ``im2col``: each convolution as one matrix product over stacked shifted slices, same chunk;
- ``im2col_bf16``: the same in bfloat16 with float32 accumulation, and its largest code error.
"""

from __future__ import annotations

import numpy as np
from common import finish, machine, parser, seconds_per_call, table

BANDS = (103, 200, 436)


def conv_as_matmul(features, kernel, bias, stride: int, dtype):
    """A "SAME" 1-D convolution (Flax's padding) as one matmul: (N, L, Cin) -> (N, L / stride, Cout)."""
    import jax.numpy as jnp

    width, inputs, outputs = kernel.shape
    length = features.shape[1] // stride
    before = (width - 2) // 2 if stride == 2 else width // 2
    padded = jnp.pad(features, ((0, 0), (before, width // 2), (0, 0)))
    patches = jnp.concatenate(
        [padded[:, j:j + stride * (length - 1) + 1:stride, :] for j in range(width)], axis=-1)
    product = jnp.dot(patches.astype(dtype), kernel.reshape(width * inputs, outputs).astype(dtype),
                      preferred_element_type=jnp.float32)
    return product + bias


def im2col_encoder(dtype):
    import jax

    def encode(variables, spectra):
        params = variables["params"]["encoder"]
        last = len(params) - 1
        features = spectra[..., None]
        for index in range(last + 1):
            layer = params[f"Conv_{index}"]
            features = conv_as_matmul(features, layer["kernel"], layer["bias"], 2 if index < last else 1, dtype)
            if index < last:
                features = jax.nn.gelu(features)
        return features.max(axis=1)

    return jax.jit(encode)


def rate(encode, variables, padded: np.ndarray, rows: int, repeats: int) -> float:
    """pixels/s of a jitted ``encode(variables, padded spectra)`` in chunks of ``rows``, dispatched as
    hsijax does (all chunks, then wait)."""
    import jax

    chunks = [jax.device_put(padded[start:start + rows]) for start in range(0, len(padded), rows)]
    run = lambda: jax.block_until_ready([encode(variables, chunk) for chunk in chunks])
    return len(padded) / seconds_per_call(run, repeats)


def attempts(bands: int, pixels: int, repeats: int) -> dict:
    import jax
    import jax.numpy as jnp

    from hsijax.models.inference import chunk_rows
    from hsijax.models.model import create_model
    from hsijax.spectral import pad_to_bucket

    model = create_model(code_width=16, seed=0)
    padded, _ = pad_to_bucket(np.random.default_rng(bands).random((pixels, bands), np.float32))
    rows = chunk_rows(padded.shape[1])
    module = model.module  # the poster's CNN, pooling over every position: no band count needed
    conv = jax.jit(lambda variables, spectra: module.apply(variables, spectra, method="encode"))
    reference = np.asarray(conv(model.variables, padded))
    row = {"bands": bands, "chunk_rows": rows,
           "conv_2048": rate(conv, model.variables, padded, 2048, repeats),
           "conv_chunk": rate(conv, model.variables, padded, rows, repeats)}
    for name, dtype in (("im2col", jnp.float32), ("im2col_bf16", jnp.bfloat16)):
        encode = im2col_encoder(dtype)
        error = float(np.abs(np.asarray(encode(model.variables, padded)) - reference).max())
        row[name] = rate(encode, model.variables, padded, rows, repeats)
        row[f"{name}_max_code_error"] = error
    row["code_range"] = float(np.abs(reference).max())
    return row


def main() -> None:
    arguments = parser(__doc__.splitlines()[0])
    arguments.add_argument("--pixels", type=int, default=16384)
    arguments.add_argument("--repeats", type=int, default=5)
    args = arguments.parse_args()
    bands = BANDS
    if args.quick:  # checks the script: one band count
        args.pixels, args.repeats, bands = 512, 2, BANDS[:1]
    rows = [attempts(count, args.pixels, args.repeats) for count in bands]
    print(table(rows, ["bands", "chunk_rows", "conv_2048", "conv_chunk", "im2col", "im2col_bf16",
                       "im2col_max_code_error", "im2col_bf16_max_code_error", "code_range"]))
    report = {**machine(), "command": "python benchmarks/encode_attempts.py" + (" --quick" if args.quick else ""),
              "pixels": args.pixels, "attempts": rows}
    finish(report, args.json)


if __name__ == "__main__":
    main()
