"""Training: ``step`` (the objective and the data-parallel optimiser step), ``mesh`` (devices and
host transfers), ``loop`` (pretraining, for the command and the Python API; its checkpoints are
`hsijax.models.checkpoints`, ``checkpoint`` the old name, for one release), ``metrics_log`` (JSONL
and TensorBoard), ``fine_tune`` (classifiers on few labels). Imports ``data`` and ``models``."""
