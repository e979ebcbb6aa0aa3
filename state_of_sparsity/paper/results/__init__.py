"""The paper's results and the explorer that sets a user's runs beside them.

- ``paper_runs``: the paper's released CSVs (``data/``, Apache-2.0) as typed rows.
- ``benchmarks``: what each benchmark measures and the sparsity levels the paper reports.
- ``selection``: a run's sparsity level, the best run per level, Pareto fronts.
- ``run_dirs``: a run directory of ``train_resnet50``, ``train_transformer`` or ``train_lenet``
  read into the same terms.
- ``layer_roles``: per-layer sparsity grouped by role (the paper's Figures 2 and 4).
- ``tables`` and ``plots``: the text table and the figures of ``plot_results``.
"""
