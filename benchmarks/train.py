"""Training-step speed: hsijax's jit-compiled pretraining step against the same step in PyTorch.

    .venv/bin/pip install torch==2.13.0          # optional: the PyTorch reference
    .venv/bin/python benchmarks/train.py --json benchmarks/results/train.json

One step = the poster's autoencoder (faithful decoder) forward, the masked reconstruction MSE plus
alpha * ||theta||^2, backward and an Adam update, on a batch of padded pixels; for 103, 200 and
436 bands at c = 16. The PyTorch step uses the same weights, loss and optimiser; its loss and
gradients are checked against JAX's before timing. FLOPs per pixel come from XLA's cost
analysis, the reference rate from a float32 4096^2 matmul in the same run. The conditioned
decoder (hsijax only, no PyTorch twin) is timed too, for scale.
"""

from __future__ import annotations

import numpy as np
from common import (
    compiled_flops,
    finish,
    machine,
    matmul_rates,
    median_of,
    optional_torch,
    parser,
    seconds_per_call,
    table,
)

BANDS = (103, 200, 436)
WEIGHT_DECAY = 1e-6
LEARNING_RATE = 1e-3


def batch_of(bands: int, rows: int, buckets):
    from hsijax.spectral import make_batch

    spectra = np.random.default_rng(bands).random((rows, bands), np.float32)
    return make_batch(spectra, None, buckets)


def jax_step_rate(model, batch, repeats: int) -> tuple[float, float]:
    """(pixels/s, FLOPs per pixel) of hsijax's training step (donated buffers, as in pretraining)."""
    import jax
    import optax

    from hsijax.train.mesh import make_mesh
    from hsijax.train.step import make_train_step

    optimizer = optax.adam(LEARNING_RATE)
    step = make_train_step(model.module, optimizer, WEIGHT_DECAY, make_mesh())
    state = {"variables": jax.tree.map(np.array, model.variables)}
    state["opt_state"] = optimizer.init(state["variables"])
    device_batch = jax.device_put(batch)
    flops = compiled_flops(step, state["variables"], state["opt_state"], device_batch)

    def one_step():
        state["variables"], state["opt_state"], mse = step(state["variables"], state["opt_state"], device_batch)
        mse.block_until_ready()

    return len(batch.spectra) / seconds_per_call(one_step, repeats, warmup=2), flops / len(batch.spectra)


def jax_loss_and_grads(model, batch):
    import jax

    from hsijax.train.step import loss_fn

    (loss, _), grads = jax.value_and_grad(loss_fn, has_aux=True)(
        model.variables, model.module, batch, WEIGHT_DECAY)
    return float(loss), grads


def torch_step_rate(torch, model, batch, repeats: int) -> dict:
    """pixels/s of the same step in PyTorch eager, after checking its loss and gradients against JAX."""
    from torch_mirror import build, check_equal

    _, autoencoder = build(torch, model)
    spectra = torch.from_numpy(batch.spectra)
    real = torch.arange(spectra.shape[1])[None, :] < torch.from_numpy(batch.band_count)[:, None]
    count = torch.from_numpy(batch.band_count).float()
    optimizer = torch.optim.Adam(autoencoder.parameters(), lr=LEARNING_RATE)

    def loss():
        squared = torch.where(real, (autoencoder(spectra) - spectra) ** 2, 0.0)
        mse = (squared.sum(dim=1) / count).mean()
        return mse + WEIGHT_DECAY * sum((p**2).sum() for p in autoencoder.parameters())

    value = loss()
    value.backward()
    want_loss, want_grads = jax_loss_and_grads(model, batch)
    check_equal(torch, value, want_loss, "training loss")
    first_conv = autoencoder.encoder.stages[0].weight.grad.numpy().transpose(2, 1, 0)
    scale = float(np.abs(want_grads["params"]["encoder"]["Conv_0"]["kernel"]).max())
    check_equal(torch, first_conv / scale, want_grads["params"]["encoder"]["Conv_0"]["kernel"] / scale,
                "first-layer gradient (relative)")

    def one_step():
        optimizer.zero_grad(set_to_none=True)
        loss().backward()
        optimizer.step()

    return {"torch_eager_px_s": len(batch.spectra) / seconds_per_call(one_step, repeats, warmup=2)}


def configuration(torch, bands: int, decoder: str, rows: int, repeats: int, matmul: float) -> dict:
    from hsijax.models.model import create_model

    model = create_model(code_width=16, decoder=decoder, seed=0)
    batch = batch_of(bands, rows, model.config.buckets)
    rate, flops = jax_step_rate(model, batch, repeats)
    row = {"bands": bands, "decoder": decoder, "batch": rows, "jax_px_s": rate, "mflop_per_px": flops / 1e6,
           "gflop_s": rate * flops / 1e9}
    row["fraction_of_matmul_rate"] = row["gflop_s"] / matmul
    if torch is not None and decoder == "faithful":
        row.update(torch_step_rate(torch, model, batch, repeats))
        row["ratio_vs_torch_eager"] = rate / row["torch_eager_px_s"]
    return row


def main() -> None:
    arguments = parser(__doc__.splitlines()[0])
    arguments.add_argument("--batch", type=int, default=256, help="pixels per step (the configs' default)")
    arguments.add_argument("--repeats", type=int, default=20)
    args = arguments.parse_args()
    measured = BANDS
    if args.quick:  # checks the script: one band count (200, as pipeline.py --quick: the same compiled steps),
        args.batch, args.repeats, measured = 32, 1, BANDS[1:2]  # small batches, one timed step, no PyTorch
    torch = None if args.quick else optional_torch()
    matmul = matmul_rates(1024 if args.quick else 4096, with_torch=torch is not None)
    print(f"float32 matmul GFLOP/s: {matmul}", flush=True)
    rows = [configuration(torch, bands, decoder, args.batch, args.repeats, max(matmul.values()))
            for decoder in ("faithful", "conditioned") for bands in measured]
    print(table(rows, ["bands", "decoder", "jax_px_s", "torch_eager_px_s", "ratio_vs_torch_eager",
                       "mflop_per_px", "gflop_s", "fraction_of_matmul_rate"]), flush=True)
    faithful = [row for row in rows if row["decoder"] == "faithful"]
    report = {
        **machine(), "command": "python benchmarks/train.py" + (" --quick" if args.quick else ""),
        "matmul_gflops": matmul, "batch": args.batch,
        "ratio_vs_torch_eager": median_of(faithful, "ratio_vs_torch_eager"),
        "fraction_of_matmul_rate": median_of(faithful, "fraction_of_matmul_rate"),
        "configurations": rows,
    }
    finish(report, args.json)


if __name__ == "__main__":
    main()
