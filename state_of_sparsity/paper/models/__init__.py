"""Models of the paper's experiments, built from plain Keras layers (sparsifiable)."""
