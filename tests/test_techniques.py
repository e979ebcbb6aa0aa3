"""The paper's technique names (paper/techniques.py): aliases, and what each technique does to
a model through the binaries' shared path."""

import keras
import pytest

import state_of_sparsity as sos
from state_of_sparsity import traversal
from state_of_sparsity.paper import techniques


@pytest.mark.parametrize(
    "flag, name, prunes, penalized",
    [
        ("baseline", "dense", False, False),
        ("none", "dense", False, False),
        ("dense", "dense", False, False),
        ("threshold", "magnitude_pruning", True, False),
        ("magnitude_pruning", "magnitude_pruning", True, False),
        ("random_pruning", "random_pruning", True, False),
        ("variational_dropout", "variational_dropout", False, True),
        ("l0_regularization", "l0_regularization", False, True),
    ],
)
def test_flag_values_resolve_to_one_technique(flag, name, prunes, penalized):
    technique = techniques.resolve(flag)
    assert (technique.name, technique.prunes, technique.penalized) == (name, prunes, penalized)
    assert flag in techniques.flag_values()
    assert technique.sparse == (name != "dense")
    if technique.sparse:
        assert technique.name in sos.TECHNIQUES  # the library's names


def test_unknown_flag_value():
    with pytest.raises(
        ValueError, match=r"Unknown technique 'pruning'; allowed: dense, .*threshold"
    ):
        techniques.resolve("pruning")


def model():
    inputs = keras.Input((4,))
    return keras.Model(inputs, keras.layers.Dense(3, name="fc")(inputs))


@pytest.mark.parametrize("flag", techniques.flag_values())
def test_sparsify_takes_the_options_its_wrapper_accepts(flag):
    technique = techniques.resolve(flag)
    schedule = techniques.pruning_schedule(0.5, 0, 10, 2)
    options = {"log_sigma2_init": -12.0, "threshold": 0.5, "log_alpha_init": 1.5}
    sparse = techniques.sparsify(model(), technique, schedule=schedule, seed=1, **options)
    wrappers = [w for _, w in traversal.wrappers(sparse)]
    if not technique.sparse:
        assert wrappers == []
        return
    (wrapper,) = wrappers
    assert wrapper.technique == technique.name
    config = wrapper.technique_config()
    if technique.prunes:
        assert wrapper.schedule == schedule
    elif technique.name == "variational_dropout":
        assert (config["log_sigma2_init"], config["threshold"]) == (-12.0, 0.5)
    else:
        assert config["log_alpha_init"] == 1.5


def test_fixed_schedule_never_fires_and_ramps():
    fixed = techniques.pruning_schedule(0.9, 100, 200, 10, fixed=True)
    assert fixed.first_update_step() is None
    assert techniques.pruning_schedule(0.9, 100, 200, 10).first_update_step() == 100
    vd = techniques.resolve("variational_dropout")
    assert techniques.penalty_ramp(vd, 1e-4, 10, 20, "constant") == sos.Ramp(1e-4)
    assert techniques.penalty_ramp(vd, 1e-4, 10, 20, "cubic") == sos.Ramp(1e-4, 10, 20, "cubic")
    assert techniques.penalty_ramp(techniques.resolve("threshold"), 1e-4, 10, 20) is None


MP, VD = techniques.resolve("magnitude_pruning"), techniques.resolve("variational_dropout")


@pytest.mark.parametrize(
    "technique, pattern, distribution, sparsity, overrides, fixed",
    [
        (MP, "", "uniform", 0.9, None, False),
        (MP, "2:4", "uniform", 0.5, {"stem": 0.0}, False),
        (MP, "1x4", "erk", 0.9, {"fc": 0.8}, False),
        (MP, "", "global", 0.9, {"stem": 0.0}, False),
        (VD, "", "uniform", 0.9, None, False),
        (MP, "", "uniform", 0.9, None, True),
    ],
)
def test_structure_flags_that_fit(technique, pattern, distribution, sparsity, overrides, fixed):
    techniques.check_structure(technique, pattern, distribution, sparsity, overrides, fixed)


@pytest.mark.parametrize(
    "technique, pattern, distribution, sparsity, overrides, fixed, message",
    [
        (VD, "2:4", "uniform", 0.5, None, False, "shape MP / RP pruning, not variational_"),
        (VD, "", "erk", 0.9, None, False, "not variational_dropout"),
        (MP, "", "global", 0.9, None, True, "not fixed masks copied"),
        (MP, "2:4", "uniform", 0.9, None, False, "sets the sparsity at 0.5; .*got 0.9"),
        (MP, "2:4", "erk", 0.5, None, False, "use distribution='uniform'"),
        (MP, "4:2", "uniform", 0.5, None, False, "--sparsity_pattern='4:2'"),
        (MP, "", "global", 0.9, {"fc": 0.8}, False, r"per-layer targets .*'fc': 0.8"),
    ],
)
def test_structure_flags_that_do_not_fit(
    technique, pattern, distribution, sparsity, overrides, fixed, message
):
    with pytest.raises(ValueError, match=message):
        techniques.check_structure(technique, pattern, distribution, sparsity, overrides, fixed)


@pytest.mark.parametrize("distribution", ["global", "erk"])
def test_sparsify_passes_the_structure_to_pruning(distribution):
    schedule = techniques.pruning_schedule(0.5, 0, 10, 2)
    inputs = keras.Input((8,))
    outputs = keras.layers.Dense(4, name="fc2")(keras.layers.Dense(8, name="fc1")(inputs))
    sparse = techniques.sparsify(
        keras.Model(inputs, outputs), MP, schedule=schedule, pattern="1x4",
        distribution=distribution,
    )  # fmt: skip
    for _, wrapper in traversal.wrappers(sparse):
        assert wrapper.technique_config()["pattern"] == "1x4"
        assert wrapper.technique_config()["distribution"] == distribution
