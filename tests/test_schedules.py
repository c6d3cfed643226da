"""Learning-rate schedules against hand-computed sequences, ReduceLROnPlateau's patience/cooldown/min_lr,
state_dict round trips, and the weight EMA's update/apply/restore."""
import math

import numpy as np
import pytest

from convkit.optim import SGD
from convkit.parameter import Parameter
from convkit.schedules import (
    CosineDecay,
    ExponentialMovingAverage,
    InverseTimeDecay,
    MultiStepLR,
    ReduceLROnPlateau,
    StepLR,
)


def sequence(schedule, epochs):
    return [schedule.lr_at(e) for e in range(epochs)]


def test_step_lr():
    s = StepLR(initial_lr=0.1, step_size=3, gamma=0.5)
    assert sequence(s, 8) == pytest.approx([0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025], rel=1e-15)


def test_multi_step_lr_drops_at_each_milestone():
    s = MultiStepLR(initial_lr=1.0, milestones=[2, 5], gamma=0.1)
    assert sequence(s, 7) == pytest.approx([1, 1, 0.1, 0.1, 0.1, 0.01, 0.01], rel=1e-15)


def test_inverse_time_decay():
    s = InverseTimeDecay(initial_lr=0.5, decay=0.25)
    assert sequence(s, 5) == pytest.approx([0.5, 0.4, 1 / 3, 0.5 / 1.75, 0.25], rel=1e-15)


def test_cosine_decay_with_linear_warmup():
    s = CosineDecay(initial_lr=1.0, total_epochs=6, warmup_epochs=2, min_lr=0.1)
    # warm-up 1/2, 2/2; then t = 0, 1/4, 2/4, 3/4 over the 4 cosine epochs; from epoch 6 on, min_lr
    expected = [0.5, 1.0] + [0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * t)) for t in (0, 0.25, 0.5, 0.75)] + [0.1, 0.1]
    assert sequence(s, 8) == pytest.approx(expected, rel=1e-15)
    assert CosineDecay(initial_lr=2.0, total_epochs=4).lr_at(2) == pytest.approx(1.0)


def test_step_writes_the_next_epochs_lr_into_the_optimizer():
    opt = SGD([Parameter("w", np.ones(1))], lr=0.2)
    s = StepLR(opt, step_size=1, gamma=0.5)
    assert s.initial_lr == 0.2
    assert [s.step() for _ in range(3)] == pytest.approx([0.1, 0.05, 0.025])
    assert opt.lr == pytest.approx(0.025) and s.epoch == 3


def test_reduce_on_plateau_patience_and_factor():
    s = ReduceLROnPlateau(initial_lr=1.0, patience=2, factor=0.1)
    losses = [1.0, 0.9, 0.95, 0.91, 0.92, 0.93, 0.5, 0.6, 0.6, 0.6]
    lrs = [s.step(v) for v in losses]
    # 0.9 is the best; the 3rd epoch after it without improvement (more than patience=2) cuts to 0.1;
    # 0.93 is bad, 0.5 improves; the 3rd epoch after it without improvement cuts to 0.01.
    assert lrs == pytest.approx([1, 1, 1, 1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.01])


def test_reduce_on_plateau_equals_torch():
    torch = pytest.importorskip("torch")
    metrics = np.random.default_rng(0).permutation(np.r_[np.linspace(1, 0.5, 12), np.full(20, 0.8)])
    options = dict(mode="min", factor=0.5, patience=2, threshold=0.01, cooldown=1, min_lr=0.01)
    ours = ReduceLROnPlateau(initial_lr=1.0, **options)
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    theirs = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, **options)
    for m in metrics:
        theirs.step(float(m))
        assert ours.step(m) == pytest.approx(opt.param_groups[0]["lr"], rel=1e-12)
    assert ours.lr_at(0) == 0.01  # the sequence reached min_lr


def test_reduce_on_plateau_max_mode_cooldown_min_lr_threshold():
    s = ReduceLROnPlateau(initial_lr=1.0, mode="max", patience=0, cooldown=1, min_lr=0.05, factor=0.5,
                          threshold=0.1, threshold_mode="abs")
    accuracies = [0.5, 0.55, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7]
    lrs = [s.step(a) for a in accuracies]
    # 0.55 is not 0.1 better than 0.5 -> cut; cooldown 1 epoch; 0.7 improves; then cut every other epoch.
    assert lrs == pytest.approx([1, 0.5, 0.5, 0.25, 0.25, 0.125, 0.125, 0.0625, 0.0625, 0.05])


def test_reduce_on_plateau_needs_the_metric():
    with pytest.raises(ValueError, match="needs the epoch's 'val_loss'"):
        ReduceLROnPlateau(initial_lr=1.0).step()


@pytest.mark.parametrize("make", [
    lambda: StepLR(initial_lr=0.1, step_size=2),
    lambda: CosineDecay(initial_lr=0.1, total_epochs=10, warmup_epochs=2),
    lambda: ReduceLROnPlateau(initial_lr=0.1, patience=1),
])
def test_state_dict_round_trip(make):
    a = make()
    metrics = [1.0, 1.0, 1.0, 0.5, 0.7]
    for m in metrics[:3]:
        a.step(m)
    state = a.state_dict()
    assert all(isinstance(v, (int, float)) for v in state.values())
    b = make()
    b.load_state_dict(state)
    assert [a.step(m) for m in metrics[3:]] == [b.step(m) for m in metrics[3:]]


def test_bad_schedule_arguments():
    with pytest.raises(ValueError, match="milestones must be increasing"):
        MultiStepLR(initial_lr=1.0, milestones=[5, 2])
    with pytest.raises(ValueError, match="warmup_epochs must be < total_epochs=3, got 3"):
        CosineDecay(initial_lr=1.0, total_epochs=3, warmup_epochs=3)
    with pytest.raises(ValueError, match="factor must be in \\(0, 1\\), got 1.5"):
        ReduceLROnPlateau(initial_lr=1.0, factor=1.5)
    with pytest.raises(RuntimeError, match="has no initial_lr"):
        StepLR(step_size=1).step()


def test_ema_update_apply_restore():
    p = Parameter("w", np.array([1.0, 2.0]))
    ema = ExponentialMovingAverage([p], decay=0.5)
    p.assign([3.0, 4.0])
    ema.update()  # 0.5 * [1, 2] + 0.5 * [3, 4]
    p.assign([5.0, 6.0])
    ema.update()  # 0.5 * [2, 3] + 0.5 * [5, 6]
    array = p.value
    ema.apply()
    np.testing.assert_array_equal(p.value, [3.5, 4.5])
    assert p.value is array  # in place: layers holding the array see the averages
    with pytest.raises(RuntimeError, match="already applied"):
        ema.apply()
    ema.restore()
    np.testing.assert_array_equal(p.value, [5.0, 6.0])
    state = ema.state_dict()
    other = ExponentialMovingAverage([Parameter("w", np.zeros(2))], decay=0.9)
    other.load_state_dict(state)
    assert other.decay == 0.5 and np.array_equal(other.shadow["w"], [3.5, 4.5])
