"""Compare load-test runs of many stacks: which setup serves a model at a latency target for the
least money, with the evidence (tables, curves, cost, the guide's five recommendations, plots, report).

Data flows one way: result directories (docs/results-format.md) → ``loader`` → ``stats`` (one row
per stage) → ``cost`` / ``slo`` / ``recommendations`` / ``findings`` → ``plots`` / ``report``.
The analysis never reads Pulumi or the cloud: every run directory describes itself.
"""

__all__ = ["__version__"]

__version__ = "0.1.0"
