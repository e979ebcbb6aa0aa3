#!/usr/bin/env python3
"""Launcher for ``state_of_sparsity.cli.train_resnet50`` (also the ``train_resnet50`` script)."""

from state_of_sparsity.cli.train_resnet50 import main

if __name__ == "__main__":
    main()
