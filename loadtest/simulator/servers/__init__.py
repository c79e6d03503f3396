"""One module per server protocol: routes, wire formats and the server's own metric names.

Each module exposes ``build(sim) -> Dialect``: its API routes, its health path, its metrics
observer (which renders the server's /metrics text) and where the metrics are served (the main
port, or a separate one as Triton's 8002 and JetStream's 9100).
"""

from __future__ import annotations

from collections.abc import Callable

from .base import Dialect, SimContext

_BUILDERS: dict[str, str] = {"openai": "openai", "tgi": "tgi", "triton": "triton", "jetstream": "jetstream"}


def builder(dialect: str) -> Callable[[SimContext], Dialect]:
    """The ``build`` function of ``dialect`` (a ``spec.server.dialect`` value)."""
    import importlib

    if dialect not in _BUILDERS:
        raise ValueError(f'no simulated dialect "{dialect}"; known: {", ".join(_BUILDERS)}')
    module = importlib.import_module(f"{__name__}.{_BUILDERS[dialect]}")
    return module.build


__all__ = ["Dialect", "SimContext", "builder"]
