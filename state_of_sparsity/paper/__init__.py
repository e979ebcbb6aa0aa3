"""The paper's harness: models, data, training, translation and the binaries that reproduce
"The State of Sparsity in Deep Neural Networks" (Gale, Elsen, Hooker 2019).

It imports the library (``state_of_sparsity``) and is never imported by it. Its dependencies
come with ``pip install "state-of-sparsity[paper]"``.
"""
