"""Pretraining configurations (ml_collections). Each file's docstring holds the command that runs it.

`base.get_config` holds every field with its default; `tiny`, `local` and `poster` change sizes and
scenes. Any field can be overridden on the command line: ``--config.train.steps=100``.
"""
