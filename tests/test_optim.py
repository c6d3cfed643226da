"""Optimizers: SGD (momentum, Nesterov, weight decay, dampening), Adam and AdamW against hand-written NumPy
references step by step (bit for bit: same operations in the same dtype) and against torch.optim when it is
installed; parameter groups, frozen parameters, state_dict resume, thread-count independence, bad arguments."""
import io

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import convkit
from convkit import _C
from convkit.optim import SGD, Adam, AdamW, param_groups_by_decay
from convkit.parameter import Parameter

DTYPES = [np.float32, np.float64]
STEPS = 5


def sgd_reference(p, grads, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
    """PyTorch's SGD written out in NumPy, in p's dtype with the hyperparameters rounded to it."""
    t = p.dtype.type
    p, v = p.copy(), None
    for g in grads:
        d = g + t(weight_decay) * p if weight_decay else g
        if momentum:
            v = d.copy() if v is None else t(momentum) * v + t(1.0 - dampening) * d
            d = d + t(momentum) * v if nesterov else v
        p = p - t(lr) * d
    return p


def adam_reference(p, grads, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, decoupled=False):
    t = p.dtype.type
    beta1, beta2 = betas
    p, m, s = p.copy(), np.zeros_like(p), np.zeros_like(p)
    for step, g in enumerate(grads, start=1):
        if weight_decay and decoupled:
            p = p * t(1.0 - lr * weight_decay)
        elif weight_decay:
            g = g + t(weight_decay) * p
        w1 = t(1.0 - beta1)  # torch.lerp from the nearer end
        m = m + w1 * (g - m) if w1 < 0.5 else g - (g - m) * (t(1) - w1)
        s = s * t(beta2) + t(1.0 - beta2) * g * g
        step_size = t(lr / (1.0 - beta1 ** step))
        denom = np.sqrt(s) / t(np.sqrt(1.0 - beta2 ** step)) + t(eps)
        p = p - step_size * (m / denom)
    return p


def random_case(rng, shapes, dtype, steps=STEPS):
    values = [rng.standard_normal(shape).astype(dtype) for shape in shapes]
    grads = [[rng.standard_normal(shape).astype(dtype) for _ in range(steps)] for shape in shapes]
    return values, grads


def run(optimizer_cls, values, grads, **options):
    params = [Parameter(f"p{i}", v.copy()) for i, v in enumerate(values)]
    opt = optimizer_cls(params, **options)
    for step in range(len(grads[0])):
        for p, g in zip(params, grads):
            p.grad[...] = g[step]
        opt.step()
    return params, opt


SGD_OPTIONS = [
    dict(lr=0.1, momentum=0.0),
    dict(lr=0.1, momentum=0.9),
    dict(lr=0.05, momentum=0.9, nesterov=True),
    dict(lr=0.1, momentum=0.9, weight_decay=0.01),
    dict(lr=0.1, momentum=0.8, dampening=0.3),
    dict(lr=0.1, momentum=0.0, weight_decay=0.1),
    dict(lr=0.02, momentum=0.5, nesterov=True, weight_decay=5e-4),
]
ADAM_OPTIONS = [dict(lr=0.01), dict(lr=0.01, weight_decay=0.1), dict(lr=0.003, betas=(0.3, 0.9), eps=1e-6)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("options", SGD_OPTIONS)
def test_sgd_equals_numpy_reference(options, dtype):
    # The middle shape is big enough for two threads to split it (and the run of all three) mid-tensor.
    values, grads = random_case(np.random.default_rng(0), [(3, 4), (300, 257), (7,)], dtype)
    params, _ = run(SGD, values, grads, **options)
    for p, v, g in zip(params, values, grads):
        assert p.value.dtype == dtype
        np.testing.assert_array_equal(p.value, sgd_reference(v, g, **options))


@given(lr=st.floats(1e-4, 1.0), momentum=st.sampled_from([0.0, 0.5, 0.9, 0.99]), dampening=st.floats(0, 0.9),
       weight_decay=st.sampled_from([0.0, 1e-4, 0.1]), size=st.integers(0, 40), seed=st.integers(0, 2**16))
def test_sgd_reference_any_hyperparameters(lr, momentum, dampening, weight_decay, size, seed):
    values, grads = random_case(np.random.default_rng(seed), [(size,), (3, size)], np.float64, steps=3)
    options = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay)
    params, _ = run(SGD, values, grads, **options)
    for p, v, g in zip(params, values, grads):
        np.testing.assert_array_equal(p.value, sgd_reference(v, g, **options))


def test_sgd_first_step_ignores_dampening():
    # PyTorch starts the buffer as the gradient itself: with dampening 0.5, step 1 moves by lr * g, not lr * g / 2.
    p = Parameter("w", np.zeros(3))
    opt = SGD([p], lr=1.0, momentum=0.9, dampening=0.5)
    p.grad[...] = [1.0, 2.0, 3.0]
    opt.step()
    np.testing.assert_array_equal(p.value, [-1.0, -2.0, -3.0])
    opt.step()  # v = 0.9 * g + 0.5 * g
    np.testing.assert_allclose(p.value, [-2.4, -4.8, -7.2], rtol=1e-15)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("decoupled", [False, True])
@pytest.mark.parametrize("options", ADAM_OPTIONS)
def test_adam_equals_numpy_reference(options, decoupled, dtype):
    values, grads = random_case(np.random.default_rng(1), [(5, 6), (300, 257)], dtype)
    cls = AdamW if decoupled else Adam
    options = {"weight_decay": 0.0, **options}
    params, _ = run(cls, values, grads, **options)
    for p, v, g in zip(params, values, grads):
        np.testing.assert_array_equal(p.value, adam_reference(v, g, decoupled=decoupled, **options))


@given(lr=st.floats(1e-5, 0.1), beta1=st.floats(0.0, 0.99), beta2=st.floats(0.5, 0.9999), eps=st.floats(1e-10, 1e-3),
       weight_decay=st.sampled_from([0.0, 1e-2]), decoupled=st.booleans(), dtype=st.sampled_from(DTYPES),
       seed=st.integers(0, 2**16))
def test_adam_reference_any_hyperparameters(lr, beta1, beta2, eps, weight_decay, decoupled, dtype, seed):
    values, grads = random_case(np.random.default_rng(seed), [(13,)], dtype, steps=3)
    options = dict(lr=lr, betas=(beta1, beta2), eps=eps, weight_decay=weight_decay)
    params, _ = run(AdamW if decoupled else Adam, values, grads, **options)
    np.testing.assert_array_equal(params[0].value, adam_reference(values[0], grads[0], decoupled=decoupled, **options))


def test_adamw_default_weight_decay_is_pytorchs():
    assert AdamW().defaults["weight_decay"] == 0.01 and Adam().defaults["weight_decay"] == 0.0


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name,options", [("SGD", o) for o in SGD_OPTIONS] + [("Adam", o) for o in ADAM_OPTIONS]
                         + [("AdamW", o) for o in ADAM_OPTIONS])
def test_equals_torch_optim(name, options, dtype):
    torch = pytest.importorskip("torch")
    values, grads = random_case(np.random.default_rng(2), [(40, 30), (17,)], dtype)
    params, _ = run({"SGD": SGD, "Adam": Adam, "AdamW": AdamW}[name], values, grads, **options)
    tensors = [torch.tensor(v.copy(), requires_grad=True) for v in values]
    opt = getattr(torch.optim, name)(tensors, **options)
    for step in range(STEPS):
        for t, g in zip(tensors, grads):
            t.grad = torch.tensor(g[step])
        opt.step()
    # PyTorch fuses some multiply-adds (one rounding instead of two): agreement to a few ulps of the values.
    tol = 2e-6 if dtype == np.float32 else 1e-14
    for p, t in zip(params, tensors):
        np.testing.assert_allclose(p.value, t.detach().numpy(), rtol=tol, atol=tol)


def test_parameter_groups_use_their_own_options():
    rng = np.random.default_rng(3)
    (a, b), (ga, gb) = random_case(rng, [(4, 4), (4,)], np.float64)
    pa, pb = Parameter("a", a.copy()), Parameter("b", b.copy())
    opt = SGD([{"params": [pa], "weight_decay": 0.1}, {"params": [pb], "lr": 0.5}], lr=0.1, momentum=0.9)
    for step in range(STEPS):
        pa.grad[...], pb.grad[...] = ga[step], gb[step]
        opt.step()
    np.testing.assert_array_equal(pa.value, sgd_reference(a, ga, lr=0.1, momentum=0.9, weight_decay=0.1))
    np.testing.assert_array_equal(pb.value, sgd_reference(b, gb, lr=0.5, momentum=0.9))


def test_param_groups_by_decay_spares_biases_and_norm_parameters():
    kernel, bias, gamma = Parameter("k", np.ones(3)), Parameter("b", np.ones(3), decay=False), \
        Parameter("g", np.ones(3), decay=False)
    groups = param_groups_by_decay([kernel, bias, gamma], 5e-4)
    assert [([p.name for p in g["params"]], g["weight_decay"]) for g in groups] == [(["k"], 5e-4), (["b", "g"], 0.0)]
    opt = SGD(groups, lr=0.1, momentum=0.0)
    opt.step()  # zero gradients: only the weight decay moves anything
    np.testing.assert_array_equal(kernel.value, 1 - 0.1 * 5e-4 * np.ones(3))
    np.testing.assert_array_equal(bias.value, np.ones(3))
    assert param_groups_by_decay([bias], 0.1) == [{"params": [bias], "weight_decay": 0.0}]


@pytest.mark.parametrize("cls", [SGD, Adam])
def test_frozen_parameters_stay_bit_identical(cls):
    rng = np.random.default_rng(4)
    frozen = Parameter("frozen", rng.standard_normal(10), trainable=False)
    live = Parameter("live", rng.standard_normal(10))
    before = frozen.value.copy()
    opt = cls([frozen, live], lr=0.1)
    for _ in range(3):
        frozen.grad[...] = live.grad[...] = rng.standard_normal(10)
        opt.step()
    assert frozen.value.tobytes() == before.tobytes()
    assert "frozen" not in opt.state and not np.array_equal(live.value, before)


def test_mixed_dtypes_in_one_group():
    values32, grads32 = random_case(np.random.default_rng(5), [(6,)], np.float32)
    values64, grads64 = random_case(np.random.default_rng(6), [(6,)], np.float64)
    params, _ = run(SGD, values32 + values64, grads32 + grads64, lr=0.1, momentum=0.9)
    np.testing.assert_array_equal(params[0].value, sgd_reference(values32[0], grads32[0], lr=0.1, momentum=0.9))
    np.testing.assert_array_equal(params[1].value, sgd_reference(values64[0], grads64[0], lr=0.1, momentum=0.9))


@pytest.mark.parametrize("cls,options", [(SGD, dict(lr=0.1, momentum=0.9, nesterov=True)),
                                         (Adam, dict(lr=0.01)), (AdamW, dict(lr=0.01))])
@pytest.mark.parametrize("dtype", DTYPES)
def test_state_dict_resume_is_bit_identical(cls, options, dtype):
    values, grads = random_case(np.random.default_rng(7), [(8, 3), (5,)], dtype, steps=6)
    params, opt = run(cls, values, [g[:3] for g in grads], **options)
    state = opt.state_dict()
    assert all(isinstance(k, str) and isinstance(v, (np.ndarray, float, int)) for k, v in state.items()), state
    assert state["iterations"] == 3 and state["group.0.lr"] == options["lr"]
    assert {k for k in state if k.startswith("state.p0.")} == (
        {"state.p0.momentum_buffer"} if cls is SGD else {"state.p0.exp_avg", "state.p0.exp_avg_sq", "state.p0.step"})
    # through a file, as a checkpoint would: np.load gives every scalar back as a 0-d array
    file = io.BytesIO()
    np.savez(file, **state)
    file.seek(0)
    loaded = dict(np.load(file))

    resumed = [Parameter(p.name, p.value.copy()) for p in params]
    resumed_opt = cls(resumed, **{**options, "lr": 123.0})  # the state dict restores the lr too
    resumed_opt.load_state_dict(loaded)
    for step in range(3, 6):
        for original, copy, g in zip(params, resumed, grads):
            original.grad[...] = copy.grad[...] = g[step]
        opt.step()
        resumed_opt.step()
    for original, copy in zip(params, resumed):
        assert original.value.tobytes() == copy.value.tobytes()


def test_load_state_dict_refuses_foreign_state():
    opt = SGD([Parameter("w", np.ones(2))])
    with pytest.raises(ValueError, match="state for parameter 'v', which is not bound"):
        opt.load_state_dict({"state.v.momentum_buffer": np.ones(2)})
    with pytest.raises(ValueError, match="has shape \\(3,\\), parameter 'w' \\(2,\\)"):
        opt.load_state_dict({"state.w.momentum_buffer": np.ones(3)})


def test_state_dict_restores_changed_hyperparameters():
    p = Parameter("w", np.ones(2))
    opt = SGD([p], lr=0.1)
    opt.lr = 0.025
    other = SGD([Parameter("w", np.ones(2))], lr=0.1)
    other.load_state_dict(opt.state_dict())
    assert other.lr == 0.025 and other.param_groups[0]["lr"] == 0.025


def test_keras_style_bind_then_step():
    opt = SGD(lr=0.1, momentum=0.0)
    with pytest.raises(RuntimeError, match="no parameters"):
        opt.step()
    p = Parameter("w", np.ones(3, np.float32))
    opt.bind([p])
    p.grad[...] = 1.0
    opt.step()
    np.testing.assert_array_equal(p.value, np.float32(1) - np.float32(0.1))
    opt.zero_grad()
    assert not p.grad.any()


def test_setting_lr_keeps_group_ratios():
    a, b = Parameter("a", np.ones(1)), Parameter("b", np.ones(1))
    opt = SGD([{"params": [a]}, {"params": [b], "lr": 0.02}], lr=0.1)
    opt.lr = 0.05
    assert [g["lr"] for g in opt.param_groups] == [0.05, pytest.approx(0.01)]


@pytest.mark.parametrize("cls", [SGD, Adam])
def test_results_do_not_depend_on_thread_count(cls):
    values, grads = random_case(np.random.default_rng(8), [(70001,), (3, 40000)], np.float32)
    results = []
    for threads in (1, 2):
        convkit.set_num_threads(threads)
        results.append([p.value.tobytes() for p in run(cls, values, grads, lr=0.01)[0]])
    assert results[0] == results[1]


def test_bad_arguments_name_the_argument():
    p = Parameter("w", np.ones(2))
    with pytest.raises(ValueError, match="lr must be >= 0, got -1"):
        SGD([p], lr=-1)
    with pytest.raises(TypeError, match="momentum must be a real number"):
        SGD([p], momentum="0.9")
    with pytest.raises(ValueError, match="nesterov needs momentum > 0"):
        SGD([p], momentum=0.0, nesterov=True)
    with pytest.raises(ValueError, match="betas\\[1\\] must be in \\[0, 1\\), got 1.0"):
        Adam([p], betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="unknown option 'momentum'"):
        Adam([{"params": [p], "momentum": 0.9}])
    with pytest.raises(ValueError, match="two parameters are named 'w'"):
        SGD([p, Parameter("w", np.ones(2))])
    with pytest.raises(TypeError, match="expected convkit.Parameter, got ndarray"):
        SGD([np.ones(2)])
    with pytest.raises(ValueError, match="params is empty"):
        SGD([])
    with pytest.raises(ValueError, match="optimizer must be one of"):
        convkit.optim.get("rmsprop")


def test_core_refuses_bad_arrays():
    # The last line of defence for direct callers of convkit._C: an error, never a wild write.
    p, g = np.ones(4), np.ones(3)
    with pytest.raises(ValueError, match="grads\\[0\\] has 3 elements"):
        _C.sgd_step([p], [g], [], [False], lr=0.1, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False)
    with pytest.raises(TypeError, match="grads\\[0\\] must have dtype float64"):
        _C.sgd_step([p], [np.ones(4, np.float32)], [], [False], lr=0.1, momentum=0.0, dampening=0.0,
                    weight_decay=0.0, nesterov=False)
    with pytest.raises(ValueError, match="exp_avgs has 0 arrays for 1 parameters"):
        _C.adam_step([p], [np.ones(4)], [], [], [1], lr=0.1, beta1=0.9, beta2=0.99, eps=1e-8, weight_decay=0.0,
                     decoupled_weight_decay=False)
    with pytest.raises(ValueError, match="arrays of parameter 0 overlap in memory"):
        _C.sgd_step([p], [p], [], [False], lr=0.1, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False)
    buffer = np.zeros(6)
    with pytest.raises(ValueError, match="arrays of parameter 0 overlap in memory"):
        _C.adam_step([p], [np.ones(4)], [buffer[:4]], [buffer[2:]], [1], lr=0.1, beta1=0.9, beta2=0.99,
                     eps=1e-8, weight_decay=0.0, decoupled_weight_decay=False)
    readonly = np.ones(4)
    readonly.flags.writeable = False
    with pytest.raises(ValueError, match="params\\[0\\] is read-only"):
        _C.sgd_step([readonly], [np.ones(4)], [], [False], lr=0.1, momentum=0.0, dampening=0.0, weight_decay=0.0,
                    nesterov=False)
