"""state_of_sparsity: the techniques of "The State of Sparsity in Deep Neural Networks"
(Gale, Elsen, Hooker 2019) for Keras 3.

    import state_of_sparsity as sos
    model = sos.sparsify(model, "magnitude_pruning",
                         schedule=sos.PolynomialDecay(0.0, 0.9, begin_step=1000, end_step=9000))
    model.compile(...); model.fit(..., callbacks=[sos.SparsityCallback()])
    print(sos.sparsity_report(model))
"""

from state_of_sparsity import layers, ops, optional
from state_of_sparsity.callbacks import SparsityCallback, StepCallback, update_masks
from state_of_sparsity.export import export_saved_model
from state_of_sparsity.exporting import export
from state_of_sparsity.layers.techniques import TECHNIQUES
from state_of_sparsity.report import LayerSparsity, SparsityReport, sparsity_report
from state_of_sparsity.schedules import ConstantSparsity, PolynomialDecay, PruningSchedule, Ramp
from state_of_sparsity.sparsify import set_threshold, sparsify, strip
from state_of_sparsity.storage import SparseFile, load_sparse, save_sparse
from state_of_sparsity.summaries import SparsitySummaries

__version__ = "0.1.0"

__all__ = [
    "TECHNIQUES",
    "ConstantSparsity",
    "LayerSparsity",
    "PolynomialDecay",
    "PruningSchedule",
    "Ramp",
    "SparseFile",
    "SparsityCallback",
    "SparsityReport",
    "StepCallback",
    "SparsitySummaries",
    "export",
    "export_saved_model",
    "set_threshold",
    "layers",
    "load_sparse",
    "ops",
    "optional",
    "save_sparse",
    "sparsify",
    "sparsity_report",
    "strip",
    "update_masks",
]
