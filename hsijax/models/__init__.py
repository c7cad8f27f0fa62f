"""The networks and their use: ``networks`` (one module per network, with its config), ``model`` (a
config and its parameters), ``classifier`` (an encoder with a head), ``inference`` (encoding and
reconstruction: one compilation per bucket, or one matrix per list of band centres),
``saved_model`` (models on disk and the shipped weights), ``linear_code`` (the shared-grid PCA, the
linear network's parameters), ``autoencoder`` (hsijax 0.1's names, for one release). Imports the
core and data modules only."""
