#!/usr/bin/env python3
"""Launcher for ``state_of_sparsity.paper.cli.checkpoint_sparsity`` (also a console script)."""

from state_of_sparsity.paper.cli.checkpoint_sparsity import main

if __name__ == "__main__":
    main()
