"""The paper's best configurations as absl flagfiles, one per technique and sparsity level.

``resnet50/*.flags`` (for ``train_resnet50``) and ``transformer/*.flags`` (``train_transformer``)
are made by ``catalog`` from the paper's CSVs (``paper.results``) and checked against them by
the tests. Use one as ``train_resnet50 --flagfile=<recipe> --data_dir=... --output_dir=...``;
``list_recipes`` lists them with their paths.
"""
