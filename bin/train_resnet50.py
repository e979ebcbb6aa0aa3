#!/usr/bin/env python3
"""Launcher for ``state_of_sparsity.paper.cli.train_resnet50`` (also a console script)."""

from state_of_sparsity.paper.cli.train_resnet50 import main

if __name__ == "__main__":
    main()
