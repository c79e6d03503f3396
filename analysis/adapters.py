"""Per LoRA adapter: how each adapter's requests fared in a stage that mixed them (``--lora-mix``).

A multi-LoRA server batches the adapters' requests together, so a stage's latency is shared; what
differs per adapter is its share of the traffic and of the tokens, and, when the server caps the
adapters one batch may mix (vLLM ``--max-loras``), how long its requests wait. The table reads the
deciding records (``Run.deciding_requests``: the model's replay for a simulated endpoint, the
measurement for a real one) with the project's metric definitions (``stats.request_metrics``);
requests for the base model are listed as ``base``.
"""

from __future__ import annotations

import pandas as pd

from stacks.lora import BASE

from .loader import Run
from .stats import request_metrics

COLUMNS = ["stack", "run_id", "stage", "adapter", "requests", "share", "completed", "ttft_p50", "ttft_p99",
           "tpot_p50", "tpot_p99", "output_tok_s"]


def adapter_table(runs: list[Run]) -> pd.DataFrame:
    """One row per (run, stage, adapter) of the runs whose requests named an adapter; empty otherwise."""
    rows = []
    for run in runs:
        requests = run.deciding_requests()
        if requests.empty or requests["adapter"].isna().all():
            continue
        r = request_metrics(requests)
        r["adapter"] = r["adapter"].fillna(BASE)
        for stage, s in r.groupby("stage", sort=False, observed=True):
            ok = s.loc[s["ok"]]
            span = (ok["end"].max() - s["sent"].min()) if len(ok) else float("nan")
            for adapter, a in s.groupby("adapter", sort=True, observed=True):
                done = a.loc[a["ok"]]
                rows.append({
                    "stack": run.stack, "run_id": run.run_id, "stage": str(stage), "adapter": str(adapter),
                    "requests": len(a), "share": len(a) / len(s), "completed": len(done),
                    "ttft_p50": done["ttft"].quantile(0.5), "ttft_p99": done["ttft"].quantile(0.99),
                    "tpot_p50": done["tpot"].quantile(0.5), "tpot_p99": done["tpot"].quantile(0.99),
                    "output_tok_s": done["outputTokens"].sum() / span if span and span > 0 else float("nan"),
                })
    return pd.DataFrame(rows, columns=COLUMNS)
