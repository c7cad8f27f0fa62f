"""Training: ``step`` (the objective and the data-parallel optimiser step), ``mesh`` (devices and
host transfers), ``loop`` (pretraining, for the command and the Python API), ``checkpoint`` (Orbax:
model, optimiser, data iterator, config), ``metrics_log`` (JSONL and TensorBoard), ``fine_tune``
(classifiers on few labels). Imports ``data`` and ``models``."""
