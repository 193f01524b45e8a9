"""Where a generation's transfers run: the executors behind the evaluator.

The :class:`~evostyle.search.evaluator.Evaluator` is the only way a search reaches the style-transfer
engine; its executor decides where that work runs. ``local`` (the default) evaluates in this process,
on one device. ``ray`` (:mod:`evostyle.search.ray_executor`) spreads each generation's candidates over
Ray actors, each holding one engine on one device, and hands the scores and images back to this
process, which alone writes the run directory. A candidate's K outputs always stay on one worker,
because its diversity is measured across them.

An executor is a small class registered in :data:`EXECUTORS`: ``check(cfg)`` (before anything is
written), ``start()``, ``evaluate(values, compile)`` -> :class:`~evostyle.search.evaluator.Evaluation`,
``describe()`` (for summary.json) and ``close()``; it is a context manager (``with make_executor(cfg,
evaluator) as executor:`` starts it and closes it, also when starting fails half-way). ``ray``
registers itself when :mod:`evostyle.search` is imported (its module imports Ray only when an executor starts).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from evostyle.errors import EvostyleError, flag
from evostyle.registry import Registry

if TYPE_CHECKING:  # annotations only
    import torch

    from evostyle.search.evaluator import Evaluation, Evaluator, Fidelity
    from evostyle.search.settings import SearchConfig


class Executor:
    """Runs an evaluator's work. Subclass and register in :data:`EXECUTORS` to add one."""

    @classmethod
    def check(cls, cfg: SearchConfig) -> None:
        """Refuse, in one line, settings this executor cannot run (called by config validation)."""
        if cfg.run.ray_address is not None or cfg.run.ray_actors is not None:
            raise EvostyleError(f"ray-address and ray-actors go with {flag('executor', 'ray')}; drop them or add "
                                f"{flag('executor', 'ray')}")

    def __init__(self, cfg: SearchConfig, evaluator: Evaluator):
        self.cfg, self.evaluator = cfg, evaluator

    def start(self) -> Executor:
        return self

    def evaluate(self, values: dict[str, torch.Tensor], compile: bool | None = None,
                 fidelity: Fidelity | None = None) -> Evaluation:
        """Evaluate candidates {name: (P,)} (as :meth:`Evaluator.evaluate_here
        <evostyle.search.evaluator.Evaluator.evaluate_here>`, ``fidelity`` included) and return one
        :class:`~evostyle.search.evaluator.Evaluation` of them in order."""
        raise NotImplementedError

    def describe(self) -> dict:
        """What ran the search, for summary.json."""
        return {"name": self.name}

    def close(self) -> None:
        pass

    def __enter__(self) -> Executor:
        try:
            return self.start()
        except BaseException:  # what a failed start began (workers, a cluster) is stopped again
            self.close()
            raise

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def name(self) -> str:
        return next((n for n, c in EXECUTORS.items() if c is type(self)), type(self).__name__)


EXECUTORS: Registry[type[Executor]] = Registry("executor")


@EXECUTORS.register("local")
class LocalExecutor(Executor):
    """This process, the engine's device: the whole population in one batched transfer."""

    def evaluate(self, values: dict[str, torch.Tensor], compile: bool | None = None,
                 fidelity: Fidelity | None = None) -> Evaluation:
        return self.evaluator.evaluate_here(values, compile, fidelity=fidelity)


def make_executor(cfg: SearchConfig, evaluator: Evaluator) -> Executor:
    """The executor ``cfg.run.executor`` names, for ``evaluator``; use it as a context manager, which
    starts it and closes it again (no worker or cluster it began is left behind)."""
    return EXECUTORS.get(cfg.run.executor)(cfg, evaluator)
