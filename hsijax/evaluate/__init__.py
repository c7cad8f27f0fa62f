"""The poster's experiments as reusable protocols: ``reconstruction`` (whole-scene MPSNR, MSSIM),
``classification`` (pretrained vs scratch vs SVM on few labels) with ``splits`` and ``spatial``,
``encode_scene`` (a scene's codes to a file), ``figures``. Imports ``data``, ``models``, ``train``;
never an experiment or the CLI."""
