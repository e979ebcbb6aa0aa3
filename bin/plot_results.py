#!/usr/bin/env python3
"""Launcher for ``state_of_sparsity.paper.cli.plot_results`` (also a console script)."""

from state_of_sparsity.paper.cli.plot_results import main

if __name__ == "__main__":
    main()
