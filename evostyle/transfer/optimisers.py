"""The inner optimisers over a batch of images: Adam fused with sanitising and clamping, and a per-row L-BFGS;
each has its own default learning rate (:func:`learning_rate`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:  # annotations only
    from collections.abc import Callable


def sanitise(grad: torch.Tensor, failed: torch.Tensor) -> torch.Tensor:
    """The gradient (B, 3, H, W) with NaN/inf replaced by finite values and failed rows (B,) zeroed."""
    return torch.where(failed.view(-1, 1, 1, 1), torch.zeros_like(grad), torch.nan_to_num(grad))


def adam_clamp(
    x: torch.Tensor,
    m: torch.Tensor,
    v: torch.Tensor,
    grad: torch.Tensor,
    failed: torch.Tensor,
    step_size: torch.Tensor,
    bc2_sqrt: torch.Tensor,
    b1: float,
    b2: float,
    eps: float,
) -> None:
    """In place: one Adam step of the images x on the sanitised gradient, then x clamped to [0, 1].

    x, m, v, grad: (B, 3, H, W); failed: (B,) bool; step_size = lr / (1 - b1^t) and bc2_sqrt =
    sqrt(1 - b2^t) are 0-d tensors, so that one compiled version (one fused kernel) serves every step.
    """
    g = sanitise(grad, failed)
    m.lerp_(g, 1 - b1)
    v.mul_(b2).addcmul_(g, g, value=1 - b2)
    x.sub_(step_size * m / (v.sqrt() / bc2_sqrt + eps))
    x.clamp_(0.0, 1.0)


class Adam:
    """Adam (Kingma & Ba 2015) on one tensor, the arithmetic of ``torch.optim.Adam`` to rounding
    (elementwise, so rows stay independent); kept here to avoid torch.optim's import-time cost and to
    fuse the update into one kernel when compiled."""

    DEFAULT_LR = 0.05
    """Its learning rate when a config names none: 0.05 per step on images in [0, 1], calibrated with
    the style weight (README, "Weights")."""

    def __init__(self, x: torch.Tensor, lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
        self.x, self.lr, self.b1, self.b2, self.eps = x, lr, betas[0], betas[1], eps
        self.m = torch.zeros_like(x)
        self.v = torch.zeros_like(x)
        self.t = 0
        self._step_size, self._bc2_sqrt = x.new_zeros(()), x.new_zeros(())  # 0-d: filled each step

    def state(self) -> dict[str, torch.Tensor]:
        """Its state, batch-first, on the CPU: the moments m and v (B, 3, H, W) and the step count t (B,)."""
        b = self.x.shape[0]
        return {"m": self.m.detach().cpu(), "v": self.v.detach().cpu(), "t": torch.full((b,), self.t)}

    def load(self, state: dict[str, torch.Tensor]) -> None:
        """Continue from :meth:`state`'s rows (all at one step count: a chunk goes on as one)."""
        t = state["t"].unique()
        if t.numel() != 1:
            raise ValueError(f"rows at different Adam steps {t.tolist()} cannot continue as one batch")
        self.m.copy_(state["m"]), self.v.copy_(state["v"])
        self.t = int(t)

    @torch.no_grad()
    def step(self, grad: torch.Tensor, failed: torch.Tensor, fn: Callable = adam_clamp) -> None:
        """Sanitise the gradient, step and clamp the images to [0, 1], through ``fn`` (``adam_clamp``
        or its compiled version)."""
        self.t += 1
        self._step_size.fill_(self.lr / (1 - self.b1 ** self.t))
        self._bc2_sqrt.fill_((1 - self.b2 ** self.t) ** 0.5)
        fn(self.x, self.m, self.v, grad, failed, self._step_size, self._bc2_sqrt, self.b1, self.b2, self.eps)


class BatchedLBFGS:
    """L-BFGS without line search (as torch.optim.LBFGS with line_search_fn=None) kept per row."""

    DEFAULT_LR = 1.0
    """Its learning rate when a config names none: 1, torch.optim.LBFGS's default and the one
    neural-style's L-BFGS runs with (a quasi-Newton step carries its own scale; as in torch, the first
    step is scaled by min(1, 1 / sum |g|))."""

    def __init__(self, x: torch.Tensor, lr: float, history: int = 10):
        self.x, self.lr, self.m = x, lr, history
        self.s, self.y, self.rho = [], [], []
        self.gamma = torch.ones(x.shape[0], device=x.device)
        self.prev_x = self.prev_g = None

    def state(self) -> dict[str, torch.Tensor]:
        """Its state, batch-first, on the CPU: the history pairs s, y (B, n, D) and rho (B, n), gamma
        (B,), the last point and gradient (B, D) (empty (B, 0) before the first step)."""
        b, d = self.x.shape[0], self.x[0].numel()
        hist = lambda xs, *shape: torch.stack(xs, 1).cpu() if xs else torch.zeros(b, 0, *shape, dtype=torch.float64)
        last = lambda t: t.cpu() if t is not None else torch.zeros(b, 0, dtype=torch.float64)
        return {"s": hist(self.s, d), "y": hist(self.y, d), "rho": hist(self.rho), "gamma": self.gamma.double().cpu(),
                "prev_x": last(self.prev_x), "prev_g": last(self.prev_g)}

    def load(self, state: dict[str, torch.Tensor]) -> None:
        """Continue from :meth:`state`'s rows."""
        dev = self.x.device
        self.s, self.y, self.rho = ([t.to(dev) for t in state[k].unbind(1)] for k in ("s", "y", "rho"))
        self.gamma = state["gamma"].to(dev)
        self.prev_x, self.prev_g = ((state[k].to(dev) if state[k].shape[1] else None) for k in ("prev_x", "prev_g"))

    @torch.no_grad()
    def step(self, grad: torch.Tensor) -> None:
        b = grad.shape[0]
        g = grad.reshape(b, -1).double()
        x = self.x.detach().reshape(b, -1).double().clone()  # a copy: self.x changes in place
        if self.prev_g is not None:
            s, y = x - self.prev_x, g - self.prev_g
            ys = (s * y).sum(1)
            ok = ys > 1e-10
            rho = torch.where(ok, 1.0 / ys.clamp_min(1e-10), torch.zeros_like(ys))
            self.s.append(s * ok[:, None]), self.y.append(y * ok[:, None]), self.rho.append(rho)
            if len(self.s) > self.m:
                self.s.pop(0), self.y.pop(0), self.rho.pop(0)
            yy = (y * y).sum(1).clamp_min(1e-30)
            self.gamma = torch.where(ok, ys / yy, self.gamma.double())
        q, alphas = g.clone(), []
        for s, y, r in zip(reversed(self.s), reversed(self.y), reversed(self.rho)):
            a = r * (s * q).sum(1)
            q -= a[:, None] * y
            alphas.append(a)
        z = self.gamma.double()[:, None] * q
        for (s, y, r), a in zip(zip(self.s, self.y, self.rho), reversed(alphas)):
            z += s * (a - r * (y * z).sum(1))[:, None]
        if self.prev_g is None:
            t = (self.lr * torch.clamp(1.0 / g.abs().sum(1).clamp_min(1e-30), max=1.0))[:, None]
        else:
            t = self.lr
        self.prev_x, self.prev_g = x, g
        new = (x - t * z).reshape(self.x.shape)
        self.x.copy_(new.to(self.x.dtype))


INNER_OPTIMIZERS = {"adam": Adam, "lbfgs": BatchedLBFGS}
"""The inner optimisers by name (``TransferConfig.optimizer``)."""


def learning_rate(optimizer: str, lr: float | None) -> float:
    """The learning rate ``optimizer`` runs with: ``lr``, or the optimiser's own ``DEFAULT_LR`` when
    ``lr`` is None (the one place this rule lives)."""
    return INNER_OPTIMIZERS[optimizer].DEFAULT_LR if lr is None else lr
