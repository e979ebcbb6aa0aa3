#!/usr/bin/env python3
"""Launcher for ``state_of_sparsity.paper.cli.train_transformer`` (also a console script)."""

from state_of_sparsity.paper.cli.train_transformer import main

if __name__ == "__main__":
    main()
