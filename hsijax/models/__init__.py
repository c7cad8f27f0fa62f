"""The networks and their use: ``networks`` (one module per network, with its config), ``model`` (a
config and its parameters), ``classifier`` (an encoder with a head), ``inference`` (encoding and
reconstruction: one compilation per bucket, or one matrix per list of band centres),
``checkpoints`` (everything on disk: saved and shipped models, a pretraining run's checkpoints, other
arrays with a JSON record), ``linear_code`` (the shared-grid PCA, the linear network's parameters),
``autoencoder`` and ``saved_model`` (hsijax 0.1's module names, for one release). Imports
the core and data modules only."""
