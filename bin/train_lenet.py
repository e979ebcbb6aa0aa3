#!/usr/bin/env python3
"""Launcher for ``state_of_sparsity.paper.cli.train_lenet`` (also a console script)."""

from state_of_sparsity.paper.cli.train_lenet import main

if __name__ == "__main__":
    main()
