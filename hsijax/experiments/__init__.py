"""This project's experiments, above the library: ``demo`` (the main job), ``study`` and
``study_report`` (the decoder study and its page), ``model_card`` (``hsijax export``). They import
the library; the library never imports them."""
