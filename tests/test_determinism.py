"""The same seed gives the same results, bit for bit: `hsijax pretrain` and `run_classification`.

(`tests/test_train.py` checks the library's `pretrain` twice, `tests/test_pretrain.py` that a killed
and resumed run matches an uninterrupted one; here the command itself runs twice, in-process.)
"""

from __future__ import annotations

import jax
import numpy as np
from conftest import small_pretraining

from hsijax.evaluate.classification import ClassifySettings, run_classification
from hsijax.models.checkpoints import load_model
from hsijax.train.metrics_log import read_metrics


def test_pretraining_twice_gives_identical_parameters(tmp_path, small_run):
    again = small_pretraining(tmp_path)
    first, second = load_model(small_run / "work"), load_model(again)
    leaves = list(zip(jax.tree.leaves(first.variables), jax.tree.leaves(second.variables)))
    assert leaves and all(np.array_equal(a, b) for a, b in leaves)
    losses = [[r["mse"] for r in read_metrics(w) if r["kind"] == "train"] for w in (small_run / "work", again)]
    assert losses[0] and losses[0] == losses[1]


def test_classification_twice_gives_identical_metrics():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(1, 4), 20)
    spectra = (rng.random((60, 12)) + labels[:, None] * np.linspace(0, 0.3, 12)).astype(np.float32)
    settings = ClassifySettings(fraction=0.3, seeds=1, steps=4, eval_every=2)
    (first, first_maps), (second, second_maps) = (run_classification(spectra, labels, settings) for _ in range(2))
    assert set(first["methods"]) == {"scratch", "svm"}
    assert first == second
    for method in first_maps:
        np.testing.assert_array_equal(first_maps[method], second_maps[method])
