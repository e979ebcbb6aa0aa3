#!/usr/bin/env python3
"""Launcher for ``state_of_sparsity.cli.train_lenet`` (also the ``train_lenet`` console script)."""

from state_of_sparsity.cli.train_lenet import main

if __name__ == "__main__":
    main()
