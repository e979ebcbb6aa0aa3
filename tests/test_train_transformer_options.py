"""train_transformer's paper-experiment options at unit level (no data, no training): the
scratch-e / lottery / augmented inits (spec §6), the VD noise and the penalty ramps."""

import numpy as np
import pytest
from absl import flags

import state_of_sparsity as sos
from state_of_sparsity.paper.cli import train_transformer
from state_of_sparsity.paper.training import init_seed
from state_of_sparsity.paper.training.errors import UsageError

pytestmark = pytest.mark.tensorflow_only

VOCAB = 64
SMALL = ["--preset=tiny", "--hidden_size=16", "--filter_size=32", "--num_heads=2",
         "--num_layers=1", "--max_length=16", "--batch_tokens=64"]  # fmt: skip
MP = "--sparsity_technique=magnitude_pruning"


@pytest.fixture(autouse=True)
def clean_flags():
    flags.FLAGS.unparse_flags()
    yield
    flags.FLAGS.unparse_flags()


def parse(*argv):
    flags.FLAGS.unparse_flags()
    flags.FLAGS(["train_transformer", "--output_dir=/nonexistent/out", "--data_dir=/nonexistent",
                 *SMALL, *argv])  # fmt: skip
    train_transformer.validate()


def kernels(model):
    return {p: np.asarray(w.kernel) for p, w in sos.traversal.wrappers(model)}


def test_init_seed_moves_only_scratch_runs():
    offset = init_seed.SCRATCH_SEED_OFFSET
    assert init_seed.init_seed(0, fixed_masks=False, initial_values=False) == 0
    assert init_seed.init_seed(7, fixed_masks=True, initial_values=True) == 7
    assert init_seed.init_seed(7, fixed_masks=True, initial_values=False) == 7 + offset
    assert init_seed.init_seed(2**32 - 1, fixed_masks=True, initial_values=False) == offset - 1
    with pytest.raises(ValueError, match="--seed must be an integer"):
        init_seed.init_seed(1.5, fixed_masks=True, initial_values=False)


def test_scratch_e_is_fresh_lottery_is_step_0_augmented_is_scaled(monkeypatch):
    """Against the mask source's step 0 (same --seed): scratch-e differs everywhere, augmented
    init is scratch-e times (1 - s)^-1/2 (variance ratio 1/(1 - s), spec §6.4) and the lottery
    ticket equals it. The source model stands in for its checkpoints (each flag's load is the
    integration tests')."""
    from state_of_sparsity.paper.training import checkpoints

    parse(MP)
    source = train_transformer.build_model(VOCAB)
    monkeypatch.setattr(checkpoints, "load_model_from_checkpoint", lambda path: (source, 0))
    masks = ["--load_masks_from=source/checkpoints"]
    parse(MP, *masks)
    model = train_transformer.build_model(VOCAB)
    train_transformer.load_masks(model)
    scratch = kernels(model)
    parse(MP, *masks, "--initial_sparsity=0.75")
    train_transformer.load_masks(model)  # scales the kernels it finds: scratch-e's
    augmented = kernels(model)
    parse(MP, *masks, "--load_weights_from=source/checkpoints/ckpt-0.weights.h5")
    train_transformer.load_masks(model)
    want = kernels(source)
    assert set(want) == set(scratch) and len(want) > 5
    for path, kernel in want.items():
        assert not np.isclose(scratch[path], kernel).any(), path
        np.testing.assert_allclose(augmented[path], 2.0 * scratch[path], rtol=1e-6, err_msg=path)
    for path, kernel in kernels(model).items():
        np.testing.assert_array_equal(kernel, want[path], err_msg=path)


def test_vd_noise_flag_reaches_the_wrappers():
    """Per-sequence noise itself (shared across positions, not examples):
    tests/test_variational_dropout.py::test_sequence_noise_is_shared_across_positions_not_examples."""
    parse("--sparsity_technique=variational_dropout", "--vd_noise=sequence")
    model = train_transformer.sparsify(_plain_transformer())
    wrappers = [w for _, w in sos.traversal.wrappers(model)]
    assert wrappers and {w.noise for w in wrappers} == {"sequence"}


def _plain_transformer():
    from state_of_sparsity.paper.models import transformer

    kwargs, _ = train_transformer.model_kwargs()
    return transformer.transformer(flags.FLAGS.preset, VOCAB, **kwargs)


def test_vd_noise_needs_variational_dropout():
    with pytest.raises(UsageError, match="--vd_noise=sequence applies to --sparsity_technique"):
        parse(MP, "--vd_noise=sequence")


def l0_ramp_values(steps, *argv):
    parse("--sparsity_technique=l0_regularization", "--l0_norm_weight=3e-6",
          "--l0_weight_start=10", "--l0_weight_diff=20", *argv)  # fmt: skip
    ramp, values, state = train_transformer.regularizer_weight(), [], 0.0
    for step in steps:
        state = float(ramp(step, state)) if ramp.smoothed else float(ramp(step))
        values.append(state)
    return np.array(values)


def test_l0_ramp_default_and_shapes_follow_the_reference():
    """The reference took the L0 ramp from dkl_weight_fn, default linear (spec §2.7, §9.3);
    linear w(t) = W·min(max(t - s, 0)/(e - s), 1); cubic c(t) = W·min(1 - (1 - x)^3, 1) with
    x = max(t - s, 0)/(e - s), smoothed by v <- 0.9 v + 0.1 c(t) from v = 0 (spec §1.7)."""
    steps = np.arange(0, 45)
    w, start, end = 3e-6, 10, 30
    x = np.maximum(steps - start, 0) / (end - start)
    linear = w * np.minimum(x, 1.0)
    assert flags.FLAGS["l0_weight_fn"].default == "linear"
    np.testing.assert_allclose(l0_ramp_values(steps), linear, rtol=1e-6, atol=1e-12)
    cubic, v = [], 0.0
    for c in w * np.minimum(1.0 - (1.0 - x) ** 3, 1.0):  # (1 - x)^3 < 0 past the end: min
        v = 0.9 * v + 0.1 * c
        cubic.append(v)
    got = l0_ramp_values(steps, "--l0_weight_fn=cubic")
    np.testing.assert_allclose(got, cubic, rtol=1e-5, atol=1e-12)
    assert not np.allclose(got, linear)
