"""``python -m stacks recommend``: the cheapest setups for a model, a workload, a traffic and an SLO.

query (what is asked) → space (every deployable setup, through the stack rules) → search (each
predicted at the traffic by the simulator's performance model, judged by the results contract,
pruned by a capacity bound) → explain (the guide's rules behind a pick) → write (stack files).
It sits downstream of ``stacks`` and ``loadtest.simulator`` and feeds the pipeline's start: the
files it writes are ordinary stack files.
"""
