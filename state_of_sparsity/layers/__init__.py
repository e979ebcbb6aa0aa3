"""Sparsity wrappers: one per technique, over every layer type in the registry."""

from state_of_sparsity.layers.attention import SparseMultiHeadAttention
from state_of_sparsity.layers.base import SparsityWrapper
from state_of_sparsity.layers.l0_regularization import L0Regularization
from state_of_sparsity.layers.nested import SparseSublayers
from state_of_sparsity.layers.penalized import PenalizedWrapper
from state_of_sparsity.layers.pruning import MagnitudePruning, PruningWrapper, RandomPruning
from state_of_sparsity.layers.registry import TiedEmbedding, register_layer, supported_layer_types
from state_of_sparsity.layers.sparsifiable import Sparsifiable
from state_of_sparsity.layers.variational_dropout import VariationalDropout

__all__ = [
    "L0Regularization",
    "MagnitudePruning",
    "PenalizedWrapper",
    "PruningWrapper",
    "RandomPruning",
    "SparseMultiHeadAttention",
    "SparseSublayers",
    "Sparsifiable",
    "SparsityWrapper",
    "TiedEmbedding",
    "VariationalDropout",
    "register_layer",
    "supported_layer_types",
]
