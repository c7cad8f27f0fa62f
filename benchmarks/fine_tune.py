"""Fine-tuning speed: hsijax's compiled chunks of steps against one jitted call per step.

Indian Pines (from the tensorly wheel), 5 % of the labels, seed 0, the scratch network (c = 16),
validation every 100 steps, as `hsijax classify` runs it. In the same run and on the same batches:
- ``chunked``: `hsijax.train.fine_tune` (steps unrolled in compiled chunks, data on the device);
- ``per_step``: the previous design, one jitted optax step per call with the batch gathered on
  the host (the parameters of both are checked equal first);
- ``scan``: the same steps inside ``lax.scan`` (a few steps only: on XLA's CPU backend it is the slow one).
Prints the table and writes JSON (`--json`): wall time, the share inside compiled calls, s/step.
"""

from __future__ import annotations

import time

import numpy as np
from common import finish, machine, parser, table


def setup(fraction: float = 0.05, seed: int = 0):
    from hsijax.data.scene import load_indian_pines
    from hsijax.evaluate.splits import stratified_split, validation_split
    from hsijax.spectral import fit_normalization, pad_to_bucket

    scene = load_indian_pines()
    spectra = fit_normalization(scene.cube).apply(scene.cube.reshape(-1, 200))
    labels = scene.labels.reshape(-1)
    targets = np.searchsorted(np.unique(labels[labels > 0]), labels)
    padded, _ = pad_to_bucket(spectra)
    fit, validate = validation_split(labels, stratified_split(labels, fraction, seed)[0], 0.25, seed)
    return padded[fit], targets[fit].astype(np.int32), (padded[validate], targets[validate])


def per_step(classifier, variables, spectra, labels, steps, validation, eval_every=100):
    """The reference: one jitted step per call, each batch gathered on the host."""
    import jax
    import optax

    from hsijax.models.classifier import predict
    from hsijax.train.fine_tune import FINAL_LEARNING_RATE_FRACTION, batch_draws

    optimizer = optax.adam(optax.cosine_decay_schedule(1e-3, steps, alpha=FINAL_LEARNING_RATE_FRACTION))
    loss = lambda p, x, y: optax.softmax_cross_entropy_with_integer_labels(
        classifier.apply({"params": p}, x), y).mean()

    @jax.jit
    def step(params, state, x, y):
        updates, state = optimizer.update(jax.grad(loss)(params, x, y), state, params)
        return optax.apply_updates(params, updates), state

    params, state = variables["params"], optimizer.init(variables["params"])
    inside = 0.0
    for number, rows in enumerate(batch_draws(len(labels), min(256, len(labels)), steps, 0), start=1):
        tick = time.perf_counter()
        params, state = step(params, state, spectra[rows], labels[rows])
        jax.block_until_ready(params)
        inside += time.perf_counter() - tick
        if number % eval_every == 0:
            tick = time.perf_counter()
            np.mean(predict(classifier, {"params": params}, validation[0]) == validation[1])
            inside += time.perf_counter() - tick
    return params, inside


def scan_seconds_per_step(classifier, variables, spectra, labels, steps: int = 3) -> float:
    import jax
    import optax

    optimizer = optax.adam(1e-3)
    loss = lambda p, x, y: optax.softmax_cross_entropy_with_integer_labels(
        classifier.apply({"params": p}, x), y).mean()
    draws = np.stack([np.random.default_rng(i).choice(len(labels), 256, replace=False) for i in range(steps)])
    spectra, labels = jax.device_put((spectra, labels))

    @jax.jit
    def run(params, state, draws):
        def body(carry, rows):
            params, state = carry
            updates, state = optimizer.update(jax.grad(loss)(params, spectra[rows], labels[rows]), state, params)
            return (optax.apply_updates(params, updates), state), None
        return jax.lax.scan(body, (params, state), draws)[0]

    params, state = variables["params"], optimizer.init(variables["params"])
    jax.block_until_ready(run(params, state, draws))  # compile
    tick = time.perf_counter()
    jax.block_until_ready(run(params, state, draws))
    return (time.perf_counter() - tick) / steps


def main() -> None:
    args = parser(__doc__.splitlines()[0]).parse_args()
    import jax

    from hsijax.models.classifier import SpectralClassifier
    from hsijax.models.networks import PosterCNNConfig
    from hsijax.train.fine_tune import fine_tune

    steps = 10 if args.quick else 500
    spectra, labels, validation = setup()
    # --quick checks the script with a one-stage network (compiling the default one dominates it)
    classifier = SpectralClassifier(PosterCNNConfig(widths=(8,)) if args.quick else PosterCNNConfig(), 16)
    variables = classifier.init_variables(0)
    rows = []
    for run in ("first (compiles)", "again"):
        tuned = fine_tune(classifier, variables, spectra, labels, steps, validation=validation, seed=0)
        rows.append({"method": f"chunked, {run}", "seconds": tuned.seconds, "s_per_step": tuned.seconds / steps,
                     "compiled_share": tuned.compiled_seconds / tuned.seconds})
    full = fine_tune(classifier, variables, spectra, labels, steps, seed=0)  # no early stopping: the last step
    began = time.perf_counter()
    params, inside = per_step(classifier, variables, spectra, labels, steps, validation)
    seconds = time.perf_counter() - began
    for got, want in zip(jax.tree.leaves(full.variables["params"]), jax.tree.leaves(params)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    rows.append({"method": "per step (reference)", "seconds": seconds, "s_per_step": seconds / steps,
                 "compiled_share": inside / seconds})
    scan = scan_seconds_per_step(classifier, variables, spectra, labels)
    rows.append({"method": "lax.scan (3 steps)", "s_per_step": scan})
    print(table(rows, ["method", "seconds", "s_per_step", "compiled_share"]))
    finish({"command": "python benchmarks/fine_tune.py" + (" --quick" if args.quick else ""), **machine(), "steps": steps, "train_pixels": len(labels), "rows": rows,
            "chunked_s_per_step": round(rows[1]["s_per_step"], 4),
            "per_step_s_per_step": round(rows[2]["s_per_step"], 4),
            "speedup_over_per_step": round(rows[2]["seconds"] / rows[1]["seconds"], 2),
            "chunked_compiled_share": round(rows[1]["compiled_share"], 4),
            "scan_s_per_step": round(scan, 4)}, args.json)


if __name__ == "__main__":
    main()
