"""Load tester: benchmarks a served LLM endpoint (a deployed stack, its simulated twin, or any URL).

Data flows one way: ``targets`` finds the endpoint, ``workloads`` makes the prompts, ``schedule``
decides when each request is sent, ``runner`` sends it through a ``dialects`` module and records what
happened, ``results`` writes every record as it completes, ``aggregate`` turns records into stage
summaries. ``cli`` wires them together.
"""

__version__ = "0.1.0"
