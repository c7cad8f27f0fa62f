"""The networks and their use: ``autoencoder`` (the shared encoder/decoder), ``classifier`` (the
encoder with a head), ``inference`` (jit-compiled encoding and reconstruction, one compilation per
bucket), ``saved_model`` (models on disk and the shipped weights). Imports the core modules only."""
