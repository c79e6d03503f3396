"""Simulated endpoint: any stack served locally, timed by a calibrated performance model.

``predict(spec, workload)`` runs the model without HTTP; ``SimulatedEndpoint`` serves the stack's
server dialect on 127.0.0.1; ``Engine`` / ``PerfModel`` are the scheduler and the roofline step
time both use. Formulas, factors and their sources: docs/performance-model.md.
"""

from .engine import Engine, EngineError, Sequence
from .perf_model import PerfModel, StepTime
from .predict import Percentiles, Prediction, Workload, predict

__all__ = [
    "Engine",
    "EngineError",
    "Percentiles",
    "PerfModel",
    "Prediction",
    "Sequence",
    "StepTime",
    "Workload",
    "predict",
]


def __getattr__(name: str):  # the server pulls in aiohttp: import it only when asked for
    if name == "SimulatedEndpoint":
        from .app import SimulatedEndpoint

        return SimulatedEndpoint
    raise AttributeError(name)
