"""Issue 28, class 6: every external start has a timeout and a one-line failure, and a start cut short
by a signal leaves no Ray process behind."""

from __future__ import annotations

import importlib.util
import signal
import socket
import time

import pytest

pytest.importorskip("ray")

from evostyle.errors import EvostyleError, Stopped
from evostyle.search import make_config, run_search
from evostyle.search import ray_executor as rx

BASE = {"size": 32, "steps": 2, "popsize": 5, "outputs": 2, "maxiter": 0, "weights": "random", "device": "cpu",
        "search": ["angles"], "executor": "ray"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_address_where_nothing_listens_is_refused_quickly_and_nothing_is_written(tmp_path):
    address = f"127.0.0.1:{_free_port()}"
    t0 = time.monotonic()
    with pytest.raises(EvostyleError, match=f"nothing is listening at {address} .*ray_address="):
        run_search(make_config({**BASE, "ray_address": address}), tmp_path / "run", quiet=True)
    assert time.monotonic() - t0 < 60 and not (tmp_path / "run").exists()
    with pytest.raises(EvostyleError, match="'x' is not a port number"):
        rx._check_listening("127.0.0.1:x")


def test_an_empty_or_client_address_without_ray_client_is_refused_in_one_line():
    with pytest.raises(EvostyleError, match="ray_address='' is an empty string"):
        make_config({**BASE, "ray_address": ""})
    if importlib.util.find_spec("grpc") is not None:
        pytest.skip("Ray Client is installed here")
    with pytest.raises(EvostyleError, match=r"needs Ray Client: pip install 'ray\[client\]'"):
        make_config({**BASE, "ray_address": "ray://head:10001"})


def test_a_signal_while_ray_starts_shuts_down_what_the_start_began(monkeypatch):
    """SIGTERM while ``ray.init`` is starting the local cluster: the start's processes are shut down."""
    ray = rx._ray()
    calls = []

    def cut_short(**kwargs):
        calls.append("init")
        raise Stopped(signal.SIGTERM)
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", cut_short)
    monkeypatch.setattr(ray, "shutdown", lambda **kw: calls.append("shutdown"))
    executor = rx.RayExecutor(make_config({k: v for k, v in BASE.items()}), None)
    with pytest.raises(Stopped), executor:
        pass
    assert calls == ["init", "shutdown"] and not executor.started_ray
