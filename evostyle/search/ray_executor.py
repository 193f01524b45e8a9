"""The ``ray`` executor: one search spread over Ray actors, on every GPU of a machine or a cluster.

Each actor (:class:`_Worker`) builds the search's engine from the run's config on one device: one GPU
per actor where the cluster has GPUs, else one CPU. Every generation the driver (the search process)
cuts the population into contiguous slices of candidates, sized in proportion to each actor's
throughput on its last slice (candidates per second; equal slices at first), sends each actor its
slice's parameter values, and gets back that slice's scores and images. It puts them together in
candidate order, so the DE, the run directory and resume see exactly what a local run sees, and only
the driver writes files.

What travels: once, when an actor starts, the config and the input images' bytes (and a weights file
named by path), so the workers need no shared file system; per generation, a slice's parameter values
out (a few floats per candidate) and its scores and float32 images back (P x K x 3 x H x W x 4 bytes
for the whole population: 50 MB at P = 32, K = 4, 256 x 256 px).

Same results: the rows of a transfer are independent, and in float64 a batch of rows gives each row
exactly what it gets alone, so slicing does not change a candidate's scores (tested against the local
executor). In fp32 and bf16 the kernels round differently for other batch sizes, and Adam's first,
sign-like steps carry that into the images (about 1e-3 relative in the fitness; the local executor's
own halving on out-of-memory does the same).

Faults: when an actor dies during a generation (killed, out of host memory, its node lost), its slice
is run again on a live actor, or on a new one when none is left; the event is kept in state.json
(``events``) and logged, and the generation completes. Before each generation the pool is topped up
to its size where the cluster has room. When no actor is left and none can be started, the search
stops as interrupted, with every finished generation saved, and ``--resume`` continues it later.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from evostyle.errors import EvostyleError, flag
from evostyle.io.atomic import atomic_path
from evostyle.network.weights import identity
from evostyle.search.executors import EXECUTORS, Executor
from evostyle.search.signals import Interrupted, WorkersLost

if TYPE_CHECKING:  # annotations only
    from evostyle.search.evaluator import Evaluation, Evaluator, Fidelity
    from evostyle.search.settings import SearchConfig

log = logging.getLogger("evostyle")
START_TIMEOUT_S = 120.0
"""How long a new actor may take to build its engine before it counts as not startable (seconds)."""


def _ray():
    import ray
    return ray


def _in_ray(fn, *args, **kwargs):
    """``fn(*args, **kwargs)``, a call into Ray that may block. A signal handler that raises while Ray's
    compiled code waits (SIGTERM's :class:`~evostyle.search.signals.Interrupted`) comes out of it as a
    SystemError "returned a result with an exception set" whose cause is the handler's exception;
    that exception is raised instead, so the run stops as interrupted, not failed."""
    try:
        return fn(*args, **kwargs)
    except SystemError as exc:
        cause = exc.__cause__ or exc.__context__
        if isinstance(cause, (Interrupted, KeyboardInterrupt)):
            raise cause from None
        raise


class _Worker:
    """A Ray actor holding one engine (network, images, targets) on one device."""

    def __init__(self, payload: dict, device: str, threads: int):
        import hashlib
        import tempfile

        from evostyle.search.config import make_config
        from evostyle.search.run import build
        torch.set_num_threads(max(1, threads))
        paths = {}
        for key, (name, data) in payload["files"].items():
            # named by content: every actor and every later run with the same inputs reuses one copy
            here = Path(tempfile.gettempdir()) / f"evostyle-inputs-{hashlib.sha256(data).hexdigest()[:16]}"
            here.mkdir(exist_ok=True)
            paths[key] = here / name
            if not paths[key].is_file() or paths[key].stat().st_size != len(data):
                with atomic_path(paths[key]) as tmp:  # whole or not at all, with actors starting side by side
                    tmp.write_bytes(data)
        cfg = payload["config"]
        run = {**cfg["run"], "content": str(paths["content"]),
               "style": [str(paths[f"style_{i}"]) for i in range(len(cfg["run"]["style"]))],
               "device": device, "executor": "local", "ray_address": None, "ray_actors": None}
        if "weights" in paths:
            run["weights"] = str(paths["weights"])
        self.ev = build(make_config({**cfg, "run": run})).evaluator

    def info(self) -> dict:
        import ray
        eng = self.ev.engine
        gpu = torch.cuda.get_device_name(eng.device) if eng.device.type == "cuda" else None
        return {"device": str(eng.device), "gpu": gpu, "node": ray.util.get_node_ip_address(), "pid": os.getpid(),
                "weights": eng.weights_info.get("used"), "weights_identity": identity(eng.weights_info)}

    def evaluate(self, values: dict[str, torch.Tensor], compile: bool | None, fidelity=None) -> Evaluation:
        return self.ev.evaluate_here(values, compile, fidelity=fidelity)


def slice_population(p: int, rates: list[float | None]) -> list[tuple[int, int]]:
    """Contiguous [lo, hi) candidate ranges for the actors, sized in proportion to ``rates``
    (candidates per second; None, before an actor's first slice, counts as the mean of the known
    ones), by largest remainder; every actor gets at least one candidate while there are enough."""
    known = [r for r in rates if r]
    w = [r if r else (sum(known) / len(known) if known else 1.0) for r in rates]
    share = [p * x / sum(w) for x in w]
    sizes = [int(s) for s in share]
    for i in sorted(range(len(w)), key=lambda i: share[i] - sizes[i], reverse=True)[:p - sum(sizes)]:
        sizes[i] += 1
    for i in range(len(sizes)):  # an idle actor takes one from the largest slice
        if sizes[i] == 0 and max(sizes) > 1:
            sizes[sizes.index(max(sizes))] -= 1
            sizes[i] = 1
    out, lo = [], 0
    for s in sizes:
        out.append((lo, lo + s))
        lo += s
    return out


CONNECT_TIMEOUT_S = 10.0
"""How long a cluster's address may take to accept a connection before the search says nothing
listens there (Ray itself retries for minutes, printing its own warnings)."""


def _check_listening(address: str | None) -> None:
    """Refuse in one line, within :data:`CONNECT_TIMEOUT_S`, a ``HOST:PORT`` (or ``ray://HOST:PORT``)
    where nothing accepts a connection; ``auto`` and None (start Ray here) are Ray's to resolve."""
    import socket
    if address is None or address == "auto" or ":" not in address:
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        with socket.create_connection((host.strip("[]") or "127.0.0.1", int(port)), timeout=CONNECT_TIMEOUT_S):
            pass
    except ValueError:
        raise EvostyleError(f"{flag('ray_address', address)}: {port!r} is not a port number") from None
    except OSError as exc:
        why = "timed out" if isinstance(exc, TimeoutError) else (exc.strerror or type(exc).__name__).lower()
        raise EvostyleError(f"nothing is listening at {address} ({why} after at most {CONNECT_TIMEOUT_S:g} s); "
                            f"start the cluster with 'ray start --head' or check {flag('ray_address')}") from None


@EXECUTORS.register("ray")
class RayExecutor(Executor):
    """Ray actors, one engine each; see the module docstring."""

    @classmethod
    def check(cls, cfg: SearchConfig) -> None:
        if importlib.util.find_spec("ray") is None:
            raise EvostyleError(f"{flag('executor', 'ray')} needs Ray, which is not installed: pip install "
                                "'evostyle[ray]' (or pip install ray)")
        address = cfg.run.ray_address
        if address is not None and not address.strip():
            raise EvostyleError(f"{flag('ray_address', python='')} is an empty string; give 'auto', HOST:PORT or "
                                "ray://HOST:PORT, or leave it out to start Ray here")
        if address is not None and address.startswith("ray://") and importlib.util.find_spec("grpc") is None:
            raise EvostyleError(f"{flag('ray_address', address)} is a Ray Client address, which needs Ray Client: "
                                "pip install 'ray[client]' (or give the cluster's HOST:PORT from inside it)")

    def __init__(self, cfg: SearchConfig, evaluator: Evaluator):
        super().__init__(cfg, evaluator)
        self.actors: list[dict[str, Any]] = []
        """The live actors: {"handle", "id", "info", "rate" (candidates/s on its last slice)}."""
        self.size = 0
        self.events: list[dict] = []
        self.started_ray = False
        self.on_dispatch = None
        """Called with the live actors' handles once a generation's slices are sent (tests use it to
        kill an actor mid-generation)."""
        self._next_id = 0

    # -- the pool ----------------------------------------------------------------------------------
    def start(self) -> RayExecutor:
        ray = _ray()
        if not ray.is_initialized():
            address = self.cfg.run.ray_address
            _check_listening(address)
            self.started_ray = True  # before init: a signal that cuts init short still shuts down what it began
            try:
                ray.init(address=address, include_dashboard=False, log_to_driver=False,
                         logging_level=logging.ERROR)  # Ray's own notices stay out of our one-line output
            except ConnectionError as exc:
                raise EvostyleError(f"could not reach the Ray cluster at {address}: {exc}; start it with "
                                    f"'ray start --head' or check {flag('ray_address')}") from None
        res = ray.cluster_resources()
        gpus, cpus = int(res.get("GPU", 0)), int(res.get("CPU", 0))
        self.gpu = gpus > 0
        have = gpus if self.gpu else cpus
        self.size = self.cfg.run.ray_actors or have
        if self.size > have or have == 0:
            raise EvostyleError(f"ray-actors {self.size} is more than the cluster has room for ({have} "
                                f"{'GPU' if self.gpu else 'CPU'}(s), one per actor); give at most {have}")
        self.payload = ray.put(self._inputs())
        new = [self._spawn() for _ in range(self.size)]
        self._await_ready(new, fatal=True)
        mine = identity(self.evaluator.engine.weights_info)  # what was used is not enough: auto may resolve
        for a in self.actors:                                   # to other ImageNet weights on another node
            if a["info"]["weights_identity"] != mine:
                raise EvostyleError(f"Ray actor {a['id']} on {a['info']['node']} used {a['info']['weights_identity']} "
                                    f"weights, this process {mine}; give {flag('weights')} a file (it is shipped to "
                                    "the actors) or make the same weights available on every node")
        log.info("ray: %d actor(s) on %s", len(self.actors),
                 ", ".join(sorted({f"{a['info']['node']} {a['info']['gpu'] or a['info']['device']}"
                                   for a in self.actors})))
        return self

    def _inputs(self) -> dict:
        """The config and the input files' bytes, shipped to every actor once."""
        from evostyle.io.samples import resolve_image
        run = self.cfg.run
        files = {"content": run.content, **{f"style_{i}": s for i, s in enumerate(run.style)}}
        out = {k: (Path(resolve_image(v)).name, Path(resolve_image(v)).read_bytes()) for k, v in files.items()}
        if os.path.isfile(run.weights):
            out["weights"] = (Path(run.weights).name, Path(run.weights).read_bytes())
        return {"config": self.cfg.to_dict(), "files": out}

    def _spawn(self) -> dict:
        ray = _ray()
        opts = {"num_cpus": 1, "num_gpus": 1} if self.gpu else {"num_cpus": 1}
        cls = ray.remote(**opts)(_Worker)
        actor = {"handle": cls.remote(self.payload, "cuda" if self.gpu else "cpu", 1), "id": self._next_id,
                 "info": None, "rate": None}
        self._next_id += 1
        return actor

    def _await_ready(self, new: list[dict], fatal: bool) -> None:
        """Wait for ``new`` actors to build their engines; keep the ones that did. ``fatal``: an actor
        that fails is an error (at start: bad input shows here); else it is dropped and logged."""
        ray = _ray()
        refs = {a["handle"].info.remote(): a for a in new}
        ready, pending = _in_ray(ray.wait, list(refs), num_returns=len(refs), timeout=START_TIMEOUT_S)
        for ref in ready:
            a = refs[ref]
            try:
                a["info"] = _in_ray(ray.get, ref)
                self.actors.append(a)
            except ray.exceptions.RayTaskError as exc:
                cause = exc.cause if isinstance(exc.cause, Exception) else exc
                if fatal:
                    self.close()
                    raise cause from None
                log.warning("ray: a new actor failed to start: %s", cause)
            except ray.exceptions.RayError as exc:
                if fatal:
                    self.close()
                    raise EvostyleError(f"a Ray actor failed to start: {exc}") from None
                log.warning("ray: a new actor failed to start: %s", str(exc).splitlines()[0])
        for ref in pending:
            ray.kill(refs[ref]["handle"])
            if fatal:
                self.close()
                raise EvostyleError(f"Ray actors did not start within {START_TIMEOUT_S:.0f} s; is the cluster busy?")
            log.warning("ray: a new actor did not start within %.0f s", START_TIMEOUT_S)

    def _top_up(self) -> None:
        """Replace lost actors where the cluster has room (before a generation)."""
        missing = self.size - len(self.actors)
        if missing > 0:
            self._await_ready([self._spawn() for _ in range(missing)], fatal=False)

    # -- a generation ------------------------------------------------------------------------------
    def evaluate(self, values: dict[str, torch.Tensor], compile: bool | None = None,
                 fidelity: Fidelity | None = None) -> Evaluation:
        from evostyle.search.evaluator import Evaluation
        ray = _ray()
        t0 = time.perf_counter()
        self._top_up()
        if not self.actors:
            raise WorkersLost("no Ray actor is left and none could be started")
        p = next(iter(values.values())).shape[0]
        part = lambda lo, hi: {n: v[lo:hi] for n, v in values.items()}
        k = self.cfg.space.outputs
        fid = lambda lo, hi: None if fidelity is None else fidelity.candidates(lo, hi, k)
        pending = {}
        for a, (lo, hi) in zip(list(self.actors), slice_population(p, [a["rate"] for a in self.actors])):
            if hi > lo:
                pending[a["handle"].evaluate.remote(part(lo, hi), compile, fid(lo, hi))] = (a, lo, hi)
        if self.on_dispatch is not None:
            self.on_dispatch([a["handle"] for a in self.actors])
        done: dict[int, Evaluation] = {}
        events = []
        while pending:
            [ref], _ = _in_ray(ray.wait, list(pending), num_returns=1)
            a, lo, hi = pending.pop(ref)
            try:
                e = _in_ray(ray.get, ref)
            except ray.exceptions.RayTaskError as exc:  # an error inside evaluate: the search's error
                raise (exc.cause if isinstance(exc.cause, Exception) else exc) from None
            except ray.exceptions.RayError as exc:  # the actor died (killed, out of memory, node lost)
                if a in self.actors:
                    self.actors.remove(a)
                target = self._rerun_target()
                event = {"event": "actor lost", "actor": a["id"], "node": (a["info"] or {}).get("node"),
                         "error": str(exc).splitlines()[0][:300], "candidates": [lo, hi], "rerun_on": target["id"]}
                events.append(event)
                log.warning("ray: actor %d died during a generation (%s); its candidates %d-%d run again on actor %d",
                            a["id"], event["error"], lo, hi - 1, target["id"])
                pending[target["handle"].evaluate.remote(part(lo, hi), compile, fid(lo, hi))] = (target, lo, hi)
                continue
            a["rate"] = (hi - lo) / max(e.seconds, 1e-9)
            done[lo] = e
        ev = Evaluation.concat([done[lo] for lo in sorted(done)], time.perf_counter() - t0)
        ev.events = events
        self.events += events
        return ev

    def _rerun_target(self) -> dict:
        """A live actor for a lost slice (the fastest), or a new one; else the run cannot go on."""
        if not self.actors:
            self._top_up()
        if not self.actors:
            raise WorkersLost("every Ray actor died and none could be started")
        return max(self.actors, key=lambda a: a["rate"] or 0.0)

    # -- the record --------------------------------------------------------------------------------
    def describe(self) -> dict:
        return {"name": "ray", "ray": _ray().__version__, "address": self.cfg.run.ray_address,
                "actors_wanted": self.size,
                "actors": [{"id": a["id"], **(a["info"] or {}), "candidates_per_s": a["rate"]} for a in self.actors],
                "events": self.events}

    def close(self) -> None:
        ray = _ray()
        for a in self.actors:
            try:
                ray.kill(a["handle"])
            except Exception:  # already gone
                pass
        self.actors = []
        if self.started_ray:
            ray.shutdown()
            self.started_ray = False
