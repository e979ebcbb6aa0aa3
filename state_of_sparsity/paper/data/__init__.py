"""Datasets: MNIST-5k (embedded, no download)."""
