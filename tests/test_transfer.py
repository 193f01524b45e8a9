import pytest
import torch

from evostyle.errors import EvostyleError
from evostyle.style.targets import StyleTargets
from evostyle.transfer import compiling, losses, optimisers
from evostyle.transfer import run as transfer_run
from evostyle.transfer.config import TransferConfig
from evostyle.transfer.run import run_transfer

LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")


def _targets(model, style, angles, mode="channel"):
    st = StyleTargets(model, [style], LAYERS, rotation_mode=mode)
    n = len(angles)
    return st.build(torch.ones(n, 1), torch.tensor(angles, dtype=torch.float64), torch.ones(n))


@pytest.fixture(scope="module")
def small(content64):
    from evostyle.io.images import resize
    return resize(content64, 32)


@pytest.fixture(scope="module")
def small_style(style64, small):
    from evostyle.io.images import resize
    return resize(style64, tuple(small.shape[-2:]))


def test_style_loss_falls_by_half_in_50_adam_steps(model, content64, style64):
    cfg = TransferConfig(steps=50)
    t = _targets(model, style64, [0.0])
    res = run_transfer(model, content64, t, cfg)
    assert res.images.shape == (1, 3) + tuple(content64.shape[-2:])
    assert res.final["style"][0] <= 0.5 * res.initial["style"][0], (res.initial["style"], res.final["style"])
    assert res.initial["content"][0] == pytest.approx(0.0, abs=1e-6)  # initialised from the content
    assert 0 <= res.images.min() and res.images.max() <= 1
    assert res.history.shape == (len(res.history_steps), 1) and res.history_steps[-1] == 50
    assert res.history[-1, 0] < res.history[0, 0]


def test_batched_equals_one_at_a_time(model, small, small_style):
    """Rows are independent: exactly so in float64. In fp32 the CPU's convolution kernels round
    differently for a batch of 3 and of 1 (how much depends on the processor: up to 0.034 per pixel
    after 8 steps on an AVX-512/AMX Xeon, under 0.03 on others), and Adam's first, sign-like steps
    turn such last-bit differences into steps of up to lr; on average they stay under half a step."""
    angles = [0.0, 45.0, 120.0]
    t = _targets(model, small_style, angles)
    for precision in ("fp64", "fp32"):
        cfg = TransferConfig(steps=8, init="content+noise", precision=precision)
        batched = run_transfer(model, small, t, cfg, noise_seeds=[5, 6, 7])
        for i in range(3):
            one = run_transfer(model, small, {l: v[i:i + 1] for l, v in t.items()}, cfg, noise_seeds=[5 + i])
            diff = (batched.images[i] - one.images[0]).abs()
            total, alone = float(batched.final["total"][i]), float(one.final["total"][0])
            if precision == "fp64":
                assert diff.max() == 0 and total == alone
            else:
                assert diff.mean() < cfg.resolved_lr / 2 and diff.max() < 2 * cfg.resolved_lr * cfg.steps
                assert total == pytest.approx(alone, rel=3e-2)
    cfg = TransferConfig(steps=8, init="content+noise", precision="fp64", max_batch=2)
    chunked = run_transfer(model, small, t, cfg, noise_seeds=[5, 6, 7])
    full = run_transfer(model, small, t, TransferConfig(steps=8, init="content+noise", precision="fp64"),
                        noise_seeds=[5, 6, 7])
    assert chunked.chunk_size == 2
    assert torch.allclose(chunked.images, full.images, atol=1e-6)


def test_lbfgs_rows_are_independent_and_reduce_loss(model, small, small_style):
    cfg = TransferConfig(steps=15, optimizer="lbfgs", lr=1.0, precision="fp64")
    t = _targets(model, small_style, [0.0, 90.0])
    both = run_transfer(model, small, t, cfg)
    one = run_transfer(model, small, {l: v[1:] for l, v in t.items()}, cfg, noise_seeds=[1])
    assert torch.allclose(both.images[1], one.images[0], atol=1e-6)
    assert (both.final["total"] < both.initial["total"]).all()


def test_nan_row_is_flagged_and_others_go_on(model, small, small_style):
    cfg = TransferConfig(steps=5)
    t = _targets(model, small_style, [0.0, 0.0, 0.0])
    t["relu3_1"] = t["relu3_1"].clone()
    t["relu3_1"][1] = float("nan")
    res = run_transfer(model, small, t, cfg)
    assert res.failed.tolist() == [False, True, False]
    assert torch.isfinite(res.final["total"][[0, 2]]).all()
    assert torch.isfinite(res.images).all()
    assert torch.allclose(res.images[0], res.images[2])


def test_per_row_weights(model, small, small_style):
    """Each row's style weight applies to that row alone: in a batch with weights (1, 0) the first row
    is exactly what it is alone (fp64), and the row without style pull stays far closer to the
    content. (Not exactly on it: the content target comes from a batch of 1 and the image's features
    from a batch of 2, whose kernels may round differently, and Adam turns a 1e-30 loss into steps of
    up to lr.)"""
    cfg = TransferConfig(steps=10, precision="fp64")
    t = _targets(model, small_style, [0.0, 0.0])
    res = run_transfer(model, small, t, cfg, style_weights=torch.tensor([1.0, 0.0]))
    one = run_transfer(model, small, {l: v[:1] for l, v in t.items()}, cfg, style_weights=torch.tensor([1.0]))
    assert torch.equal(res.images[0], one.images[0])
    assert res.final["content"][0] > 1e-3
    assert res.final["content"][1] < res.final["content"][0] / 5


def test_bf16_matches_fp32_at_small_size(model, small, small_style):
    t = _targets(model, small_style, [0.0, 60.0])
    a = run_transfer(model, small, t, TransferConfig(steps=20, precision="fp32"))
    b = run_transfer(model, small, t, TransferConfig(steps=20, precision="bf16"))
    assert b.precision == "bf16"
    for term in ("style", "content"):
        rel = (a.final[term] - b.final[term]).abs() / a.final[term].abs()
        assert (rel < 0.10).all(), (term, a.final[term], b.final[term])


def test_oom_halves_the_chunk(model, small, small_style, monkeypatch):
    real = transfer_run._optimise_chunk
    sizes = []

    def fake(*args):
        n = args[5].shape[0]
        sizes.append(n)
        if n > 1:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (injected)")
        return real(*args)
    monkeypatch.setattr(transfer_run, "_optimise_chunk", fake)
    t = _targets(model, small_style, [0.0, 30.0, 60.0])
    res = run_transfer(model, small, t, TransferConfig(steps=3))
    assert res.chunk_size == 1 and res.images.shape[0] == 3
    assert sizes[:3] == [3, 1, 1] or sizes[0] == 3
    assert any("out of memory" in m for m in res.log)


@pytest.mark.parametrize("where", ["step", "update"])
def test_oom_in_compiled_code_halves_the_chunk_and_keeps_compiling(model, small, small_style, monkeypatch, where):
    """Out of memory inside the compiled step or update is not a failed compilation: the chunk is
    halved and the transfer goes on compiled."""

    def oom_above_one_row(fn, rows_arg):
        def call(*args, **kw):
            if args[rows_arg].shape[0] > 1:
                raise torch.cuda.OutOfMemoryError("CUDA out of memory (injected)")
            return fn(*args, **kw)
        return call
    step = oom_above_one_row(losses.loss_terms, 1) if where == "step" else losses.loss_terms
    update = oom_above_one_row(optimisers.adam_clamp, 0) if where == "update" else optimisers.adam_clamp
    monkeypatch.setattr(compiling, "_COMPILED", {(losses.loss_terms, "default"): step,
                                                 (optimisers.adam_clamp, "default"): update})
    monkeypatch.setattr(compiling, "_COMPILE_FAILED", False)
    t = _targets(model, small_style, [0.0, 90.0])
    res = run_transfer(model, small, t, TransferConfig(steps=3, compile=True))
    assert res.chunk_size == 1 and res.images.shape[0] == 2
    assert any("out of memory at 2 rows" in m for m in res.log)
    assert not any("torch.compile failed" in m for m in res.log) and not compiling.compile_disabled()


@pytest.mark.parametrize("field,value,msg", [
    ("steps", 0, "steps must be an integer >= 1"), ("optimizer", "sgd", "valid: adam, lbfgs"),
    ("measure", "cos", "unknown measure"), ("style_weight", -1.0, "style-weight must be finite"),
    ("content_weight", float("nan"), "content-weight"), ("init", "zeros", "unknown image init"),
    ("style_layers", ("relu7_1",), "unknown vgg19 layer"), ("max_batch", 0, "max-batch must be >= 1"),
    ("compile_mode", "fast", "unknown compile mode 'fast'")])
def test_config_errors(field, value, msg):
    with pytest.raises(EvostyleError, match=msg):
        TransferConfig(**{field: value}).validate()


def test_adam_matches_torch_optim():
    """Our update = torch.optim.Adam on the sanitised gradient (NaN -> 0, failed rows zeroed), then
    the clamp to [0, 1]."""
    from evostyle.transfer.optimisers import Adam
    torch.manual_seed(0)
    a = torch.rand(3, 3, 4, 4)
    start = a.clone()
    b = a.clone().requires_grad_(True)
    ours, ref = Adam(a, 0.02), torch.optim.Adam([b], lr=0.02)
    failed = torch.tensor([False, False, True])
    for i in range(6):
        g = torch.randn_like(a)
        g[0, 0, 0, i % 4] = float("nan")
        ours.step(g, failed)
        b.grad = torch.nan_to_num(g) * (~failed).view(-1, 1, 1, 1)
        ref.step()
        with torch.no_grad():
            b.clamp_(0.0, 1.0)
    assert torch.allclose(a, b.detach(), atol=1e-6)
    assert torch.equal(a[2], start[2]) and (a[:2] - start[:2]).abs().min() > 0  # only live rows move


def test_channels_last_layout_gives_the_same_result(model, small, small_style):
    """The GPU default layout (channels_last) is only a memory layout: same numbers to rounding."""
    t = _targets(model, small_style, [0.0, 45.0])
    a = run_transfer(model, small, t, TransferConfig(steps=5, precision="fp64", channels_last=False))
    b = run_transfer(model, small, t, TransferConfig(steps=5, precision="fp64", channels_last=True))
    assert torch.allclose(a.images, b.images, atol=1e-6)
    assert torch.allclose(a.final["total"], b.final["total"], rtol=1e-6)
    assert b.images.is_contiguous() and b.images.dtype == torch.float32  # handed back NCHW float32


@pytest.mark.skipif(not torch.cuda.is_available(), reason="the page-locked copy needs a GPU")
def test_to_host_from_the_gpu_is_page_locked_and_nchw():
    from evostyle.network.device import to_host
    x = torch.rand(2, 3, 8, 8, device="cuda").contiguous(memory_format=torch.channels_last)
    h = to_host(x)
    assert h.device.type == "cpu" and h.is_pinned() and h.is_contiguous()
    assert torch.equal(h, x.cpu())


def test_precision_auto_is_fp32_on_cpu(model, small, small_style):
    t = _targets(model, small_style, [0.0])
    assert run_transfer(model, small, t, TransferConfig(steps=1)).precision == "fp32"


@pytest.mark.parametrize("when", ["forward", "backward", "update"])
def test_compile_failure_falls_back_to_eager(model, small, small_style, monkeypatch, when):
    """If the compiled step fails (while tracing the forward pass, when its backward is first built, or
    in the compiled Adam update), the transfer logs it once, goes on eager with the same result, and
    later transfers skip compiling."""

    class _FailingBackward(torch.autograd.Function):
        @staticmethod
        def forward(ctx, t):
            return t.clone()

        @staticmethod
        def backward(ctx, g):
            raise RuntimeError("backward compiler error (injected)")

    def broken(*args, **kw):
        if when == "forward":
            raise RuntimeError()  # no message at all
        terms = losses.loss_terms(*args, **kw)
        if when == "update":
            return terms
        return {**terms, "total": _FailingBackward.apply(terms["total"])}

    def broken_update(*args):
        raise RuntimeError("update compiler error (injected)")

    monkeypatch.setattr(compiling, "_COMPILED", {(losses.loss_terms, "default"): broken,
                                                 (optimisers.adam_clamp, "default"): broken_update})
    monkeypatch.setattr(compiling, "_COMPILE_FAILED", False)
    t = _targets(model, small_style, [0.0, 90.0])
    eager = run_transfer(model, small, t, TransferConfig(steps=5))
    res = run_transfer(model, small, t, TransferConfig(steps=5, compile=True))
    assert len(res.log) == 1 and "torch.compile failed (RuntimeError" in res.log[0]
    assert torch.equal(res.images, eager.images)
    assert run_transfer(model, small, t, TransferConfig(steps=2, compile=True)).log == []  # no new attempt
    assert compiling.compiled(losses.loss_terms) is losses.loss_terms
    assert compiling.compiled(optimisers.adam_clamp, "reduce-overhead") is optimisers.adam_clamp


@pytest.mark.parametrize("mode,used,graphs", [("reduce-overhead", "reduce-overhead", True),
                                             ("max-autotune-no-cudagraphs", "max-autotune-no-cudagraphs", False),
                                             ("auto", "default", False)])  # auto on the CPU
def test_compile_mode_reaches_torch_compile(model, small, small_style, monkeypatch, fake_compile, mode, used,
                                            graphs):
    """``compile_mode`` is torch.compile's mode for the step and the update, each compiled once per
    mode; with CUDA graphs each optimisation step is marked as a new iteration (so a replay may reuse
    the last step's outputs, which are all consumed by then)."""
    marks = []
    monkeypatch.setattr(torch.compiler, "cudagraph_mark_step_begin", lambda: marks.append(1))
    t = _targets(model, small_style, [0.0, 90.0])
    eager = run_transfer(model, small, t, TransferConfig(steps=3))
    for _ in range(2):
        res = run_transfer(model, small, t, TransferConfig(steps=3, compile=True, compile_mode=mode))
    assert fake_compile == [("loss_terms", {"dynamic": False, "mode": used}),
                            ("adam_clamp", {"dynamic": False, "mode": used})]
    assert len(marks) == (2 * 3 if graphs else 0)  # 3 compiled steps per transfer; the last evaluation is eager
    assert torch.equal(res.images, eager.images)


def test_auto_compile_mode_is_cuda_graphs_on_cuda_only():
    """``auto`` means reduce-overhead (CUDA graphs) on any CUDA device and default elsewhere; other
    modes are themselves. The default of TransferConfig is auto."""
    from evostyle.transfer.compiling import resolve_compile_mode
    from evostyle.transfer.config import COMPILE_MODES
    assert TransferConfig().compile_mode == "auto"
    assert resolve_compile_mode("auto", "cuda") == "reduce-overhead"
    assert resolve_compile_mode("auto", torch.device("cuda", 1)) == "reduce-overhead"
    assert resolve_compile_mode("auto", torch.device("cpu")) == "default"
    assert resolve_compile_mode("auto", "mps") == "default"
    for m in COMPILE_MODES[1:]:
        assert resolve_compile_mode(m, "cuda") == m and resolve_compile_mode(m, "cpu") == m


@pytest.mark.parametrize("tv_weight", [0.0, 0.5])
def test_fixed_work_is_done_once_per_transfer(model, small, small_style, monkeypatch, tv_weight):
    """The targets' squared norms (the normalised terms' denominators) are computed once per
    transfer, not at every step; an unweighted total variation is computed only for the report (the
    initial and final terms), a weighted one at every step. The reported terms do not change."""
    from evostyle.style.measures import sq_norm, total_variation
    norms, tvs = [], []
    monkeypatch.setattr(losses, "sq_norm", lambda t: norms.append(1) or sq_norm(t))
    counted = lambda x: tvs.append(1) or total_variation(x)
    monkeypatch.setattr(losses, "total_variation", counted)  # the steps' and the last evaluation's
    monkeypatch.setattr(transfer_run, "total_variation", counted)  # the initial report's
    t = _targets(model, small_style, [0.0, 90.0])
    res = run_transfer(model, small, t, TransferConfig(steps=5, tv_weight=tv_weight))
    assert len(norms) == len(LAYERS) + 1  # five style layers and the content
    assert len(tvs) == (2 if tv_weight == 0 else 5 + 1)  # report only / 5 steps + the last evaluation
    assert list(res.initial) == list(res.final)  # the same terms, in the same order, tv included
    assert torch.allclose(res.initial["tv"], total_variation(small[None]).expand(2))  # from the content image
    assert torch.allclose(res.final["style"], sum(res.final[f"style_{l}"] for l in LAYERS), rtol=1e-6)
    total = res.final["content"] + TransferConfig.style_weight * res.final["style"] + tv_weight * res.final["tv"]
    assert torch.allclose(res.final["total"], total, rtol=1e-6)


def test_autotune_setting_is_restored(model, small, small_style):
    before = torch.backends.cudnn.benchmark
    run_transfer(model, small, _targets(model, small_style, [0.0]), TransferConfig(steps=2, autotune=True))
    assert torch.backends.cudnn.benchmark == before


def test_compiled_step_matches_eager(model, small, small_style, monkeypatch):
    """torch.compile of the forward pass and losses computes the same loss terms and gradient (or falls
    back, logged).

    Compared at one step, not after several: a compiled kernel rounds differently, and Adam's first
    step moves a pixel by +-lr whatever the size of its gradient, so where a gradient is near zero a
    last-bit difference flips a whole step (torch 2.4 on the CPU: 0.3% of pixels, final losses 0.2%
    apart after 4 steps, although the gradients agree to 0.5% of their largest value).
    """
    from evostyle.network.device import resolve_precision
    monkeypatch.setattr(compiling, "_COMPILED", {})  # a fresh process: not built, not failed
    monkeypatch.setattr(compiling, "_COMPILE_FAILED", False)
    t = _targets(model, small_style, [0.0, 90.0])
    res = run_transfer(model, small, t, TransferConfig(steps=2, compile=True))
    assert res.log == [] or "torch.compile failed" in res.log[0]
    cfg, cpu = TransferConfig(), torch.device("cpu")
    with torch.no_grad():
        content_feat = model(small[None])[cfg.content_layer]
    x = (small[None].repeat(2, 1, 1, 1) + 0.05 * torch.rand(2, *small.shape)).clamp(0, 1).requires_grad_(True)
    args = (model, x, content_feat, t, losses.denominators(content_feat, t, cfg), torch.rand(2, len(LAYERS)) + 0.5,
            torch.ones(2), torch.full((2,), 10.0), cfg, resolve_precision("fp32", cpu), cpu)
    eager, g_eager = losses.evaluate_step(losses.loss_terms, args, torch.zeros(2, dtype=torch.bool), False)
    comp, g_comp = losses.evaluate_step(compiling.compiled(losses.loss_terms), args, torch.zeros(2, dtype=torch.bool),
                                        False)
    for k in eager:
        assert torch.allclose(comp[k], eager[k], rtol=1e-4, atol=1e-7), k
    assert float((g_comp - g_eager).abs().max() / g_eager.abs().max()) < 1e-2


def test_each_inner_optimiser_owns_its_default_lr():
    """``lr`` None means the optimiser's own: Adam 0.05 (the calibrated default searches have always
    used), L-BFGS 1 (torch's and neural-style's); a given lr wins for either."""
    from evostyle.transfer.optimisers import Adam, BatchedLBFGS, learning_rate
    assert TransferConfig().lr is None and TransferConfig().validate().resolved_lr == 0.05 == Adam.DEFAULT_LR
    assert TransferConfig(optimizer="lbfgs").resolved_lr == 1.0 == BatchedLBFGS.DEFAULT_LR
    assert TransferConfig(optimizer="lbfgs", lr=0.3).resolved_lr == 0.3 == learning_rate("adam", 0.3)
    with pytest.raises(EvostyleError, match="lr must be a positive number"):
        TransferConfig(lr=0.0).validate()


def test_an_engine_checks_its_config_once_and_holds_it_resolved(monkeypatch, model, small, small_style):
    """Built, the engine has checked its config; its runs (a search's generations) do not check it
    again. A direct ``run_transfer`` checks its own."""
    from evostyle.transfer.engine import StyleEngine
    calls, real = [], TransferConfig.validate
    monkeypatch.setattr(TransferConfig, "validate", lambda self: calls.append(self) or real(self))
    engine = StyleEngine(small, [small_style], TransferConfig(steps=1, optimizer="lbfgs"), size=32,
                         rotation_mode="channel", model=model)
    for _ in range(2):
        engine.run(torch.ones(2, 1), torch.tensor([0.0, 90.0]), torch.ones(2))
    assert len(calls) == 1 and engine.cfg.lr == 1.0
    run_transfer(model, small, _targets(model, small_style, [0.0]), TransferConfig(steps=1))
    assert len(calls) == 2
