"""Ray, as both engines that use it connect to it: ``madness run --engine ray`` (a run's
fold groups as tasks, :mod:`lstm_madness.experiment.runner`) and ``madness sweep --engine
ray`` (a sweep's shape groups as tasks, :mod:`lstm_madness.sweep`).

- :func:`ray_session`: the cluster at ``address``, or a local instance on 127.0.0.1 (its
  processes listen there only) without its dashboard; one this process started is shut
  down on the way out, one already connected (a notebook, a test's fixture) is left
  alone. A cluster that asks for a token the driver does not send (Ray 2.60 turns token
  authentication on by default for ``ray start``) is one line naming ``RAY_AUTH_MODE``.
- :func:`worker_url`: the database URL the workers open themselves (the store is never
  shipped): PostgreSQL as given, SQLite as an absolute path; an in-memory SQLite database,
  which no other process can open, is refused.
- :func:`run_tasks`: one Ray task of one CPU per call, never retried (a retry would find
  its runs claimed, or its folds stored, by the worker that died), results in call
  order; a task's exception is raised as itself (a worker that died, killed or out of
  memory, as a ``RunError`` saying so), and any exception here (a failed task, Ctrl-C,
  SIGTERM turned into ``RunInterrupted``) cancels the tasks still outstanding before it
  propagates.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from lstm_madness.errors import ConfigError, RunError

#: Seconds between two looks at the outstanding tasks (and calls of ``poll``).
POLL_S = 0.1
#: Seconds :func:`check_address` waits for a Ray address to answer.
PROBE_S = 5.0


def ray_module() -> Any:
    """The ``ray`` package, or a ConfigError saying how to install it."""
    try:
        import ray
    except ImportError as exc:  # pragma: no cover - ray is in the dev extras
        raise ConfigError("--engine ray needs Ray: pip install 'lstm-madness[ray]'") from exc
    return ray


@contextlib.contextmanager
def ray_session(address: str | None = None, num_cpus: int = 0) -> Iterator[Any]:
    """Ray, connected: to ``address`` (``ray://head:10001``, ``auto``), else to a local
    instance started here with ``num_cpus`` CPUs (0: all), its node on 127.0.0.1 and no
    dashboard. Yields the ``ray`` module; shuts Ray down afterwards only if it started it.
    A cluster that cannot be connected to is a ConfigError of one line.
    """
    ray = ray_module()
    started = not ray.is_initialized()
    if started:
        init: dict[str, Any] = {
            "address": address,
            "include_dashboard": False,
            "log_to_driver": False,
            "configure_logging": False,
        }
        if address is None:
            init["_node_ip_address"] = "127.0.0.1"
            if num_cpus > 0:
                init["num_cpus"] = num_cpus
        check_address(address)
        try:
            with _on_loopback(ray, address):
                ray.init(**init)
        except (ConnectionError, TimeoutError, ray.exceptions.RayError) as exc:
            raise ConfigError(f"--address {address}: {_connect_error(exc)}") from exc
    try:
        yield ray
    finally:
        if started:
            ray.shutdown()


@contextlib.contextmanager
def _on_loopback(ray: Any, address: str | None) -> Iterator[None]:
    """While Ray starts a local instance, or connects to one at a loopback ``address``:
    127.0.0.1 as asked. Ray replaces a loopback address (``_node_ip_address``, the host
    of ``address``) by the machine's (a local instance would listen on every interface, a
    driver look for a loopback cluster where it is not) unless it runs without cluster
    support, as on macOS."""
    constants = getattr(getattr(ray, "_private", None), "ray_constants", None)
    host = (address or "127.0.0.1").removeprefix("ray://").rsplit(":", 1)[0].strip("[]")
    loopback = host in ("127.0.0.1", "localhost", "::1")
    if not loopback or not hasattr(constants, "ENABLE_RAY_CLUSTER"):
        yield
        return
    previous, constants.ENABLE_RAY_CLUSTER = constants.ENABLE_RAY_CLUSTER, False
    try:
        yield
    finally:
        constants.ENABLE_RAY_CLUSTER = previous


def _connect_error(exc: BaseException) -> str:
    """Why Ray could not be connected to, in one line: a cluster that wants a token
    (``InvalidAuthToken``, found anywhere in the chain of causes) says what to set."""
    chain: list[BaseException] = []
    seen: BaseException | None = exc
    while seen is not None and len(chain) < 8:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    text = " ".join(f"{type(e).__name__}: {e}" for e in chain)
    if "InvalidAuthToken" in text or "AuthenticationError" in text:
        return (
            "the Ray cluster wants an authentication token (Ray 2.60 turns token "
            "authentication on by default for ray start): set RAY_AUTH_MODE=token and "
            "give its token (~/.ray/auth_token, RAY_AUTH_TOKEN or RAY_AUTH_TOKEN_PATH)"
        )
    lines = str(exc).strip().splitlines()
    return f"cannot connect to Ray: {lines[0] if lines else type(exc).__name__}"


def check_address(address: str | None, timeout_s: float = PROBE_S) -> None:
    """ConfigError, within ``timeout_s`` seconds, when nothing answers at a Ray
    ``address`` (``ray://host:port``, default port 10001, or a cluster's ``host:port``,
    default 6379): one TCP connection is tried, where Ray's own client would retry for
    about 25 s before its traceback. None, ``auto`` and ``local`` are Ray's to resolve.
    Called before a run or sweep is registered, and by :func:`ray_session`."""
    if address is None or address in ("auto", "local"):
        return
    client = address.startswith("ray://")
    netloc = address.removeprefix("ray://").split("/", 1)[0]
    host, colon, port = netloc.rpartition(":")
    if not colon or not port.isdigit():
        host, port = netloc, "10001" if client else "6379"
    host = host.strip("[]")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s):
            pass
    except OSError as exc:
        reason = exc.strerror or str(exc) or type(exc).__name__
        raise ConfigError(
            f"--address {address}: no Ray cluster answers at {host}:{port} ({reason}); "
            "start it (ray start --head) or check the address"
        ) from exc


def worker_url(db: str | sa.Engine) -> str:
    """The URL Ray workers open the store with (password included: they need it).

    SQLite becomes an absolute path (a worker's working directory is not the caller's); it
    works where the workers see that file (a local instance, a cluster sharing the path);
    PostgreSQL works anywhere the workers reach the server. Raises ConfigError for an
    in-memory SQLite database.
    """
    url = db.url if isinstance(db, sa.Engine) else sa.make_url(db)
    if url.get_backend_name() == "sqlite":
        database = url.database or ""
        if database in ("", ":memory:") or url.query.get("mode") == "memory":
            raise ConfigError(
                "--engine ray: Ray workers open the database themselves, and no other "
                "process can open an in-memory SQLite database; use sqlite:///PATH or "
                "PostgreSQL"
            )
        if not database.startswith("file:"):  # a URI filename is the user's to get right
            url = url.set(database=str(Path(database).resolve()))
    return url.render_as_string(hide_password=False)


def put(value: Any) -> Any:
    """``value`` in Ray's object store, once, for every task to read: a reference that a
    task given it as an argument receives as the value."""
    return ray_module().put(value)


def run_tasks(
    fn: Callable[..., Any],
    calls: Sequence[tuple[Any, ...]],
    *,
    poll: Callable[[], None] | None = None,
    on_result: Callable[[int, Any], None] | None = None,
) -> list[Any]:
    """Run ``fn(*calls[k])`` for every ``k`` as a Ray task of one CPU (Ray connected, see
    :func:`ray_session`); return the results in the order of ``calls``.

    ``on_result(k, result)`` runs here as each task returns, ``poll()`` every
    :data:`POLL_S` seconds while tasks are outstanding. The first task to raise raises its
    own exception here (not Ray's wrapper); that, or anything ``poll`` or ``on_result``
    raise (or a signal's exception), cancels the tasks not yet returned before it
    propagates.

    The wait is a look and a sleep, never Ray's blocking wait: an exception raised by a
    signal handler inside that (ours turn SIGTERM and SIGINT into ``RunInterrupted``)
    comes out of it as a ``SystemError``.
    """
    ray = ray_module()
    task = ray.remote(num_cpus=1, max_retries=0)(fn)
    pending = {task.remote(*args): k for k, args in enumerate(calls)}
    results: list[Any] = [None] * len(calls)
    try:
        while pending:
            ready = _finished(ray, list(pending))
            for ref in ready:
                k = pending.pop(ref)
                results[k] = _get(ray, ref)
                if on_result is not None:
                    on_result(k, results[k])
            if poll is not None:
                poll()
            if pending and not ready:
                time.sleep(POLL_S)
    except BaseException:
        for ref in pending:
            with contextlib.suppress(Exception):
                ray.cancel(ref, force=True)
        raise
    return results


def _finished(ray: Any, refs: list[Any]) -> list[Any]:
    """Those of ``refs`` whose tasks have returned, without waiting; a signal handler's
    exception raised inside Ray is raised as itself."""
    try:
        ready, _ = ray.wait(refs, num_returns=len(refs), timeout=0)
    except SystemError as exc:  # "returned a result with an exception set"
        if exc.__cause__ is not None:
            raise exc.__cause__ from None
        raise
    return ready


def _get(ray: Any, ref: Any) -> Any:
    """A finished task's result; its exception as raised in the task (Ray's traceback of
    the worker chained to it); a worker or node that died under it, a RunError."""
    errors = ray.exceptions
    try:
        return ray.get(ref)
    except errors.RayTaskError as exc:
        cause = getattr(exc, "cause", None)
        if isinstance(cause, BaseException):
            raise cause from exc
        raise
    except (errors.WorkerCrashedError, errors.OutOfMemoryError, errors.NodeDiedError) as exc:
        how = {"WorkerCrashedError": "killed, or crashed", "OutOfMemoryError": "out of memory"}
        why = how.get(type(exc).__name__, "its node died")
        raise RunError(
            f"a Ray worker died while running its task ({why}); nothing it had not "
            "committed was stored"
        ) from exc
