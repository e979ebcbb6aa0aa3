#!/usr/bin/env python3
"""Launcher for ``state_of_sparsity.paper.cli.list_recipes`` (also a console script)."""

from state_of_sparsity.paper.cli.list_recipes import main

if __name__ == "__main__":
    main()
