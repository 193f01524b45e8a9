"""Batched Gatys style transfer: B images optimised together, each row with its own targets.

:class:`TransferConfig` holds the settings, :func:`run_transfer` optimises a batch, and
:class:`StyleEngine` bundles images, network and targets for the command line and the search.
``python -m evostyle.transfer`` is the command line (:mod:`evostyle.cli.transfer`).
"""

from evostyle.transfer.compiling import compile_disabled, reset_compile, resolve_compile_mode
from evostyle.transfer.config import COMPILE_MODES, CUDA_GRAPH_MODES, INITS, TransferConfig
from evostyle.transfer.engine import StyleEngine
from evostyle.transfer.optimisers import INNER_OPTIMIZERS
from evostyle.transfer.run import TransferResult, rows_that_fit, run_transfer

__all__ = ["TransferConfig", "TransferResult", "run_transfer", "StyleEngine", "rows_that_fit", "COMPILE_MODES",
           "CUDA_GRAPH_MODES", "INITS", "INNER_OPTIMIZERS", "resolve_compile_mode", "reset_compile", "compile_disabled"]
