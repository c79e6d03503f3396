"""The search: each deployable candidate at the load the query asks for, cheapest first, with pruning.

For each candidate the question is how much of it the traffic needs:
- ``--rate R``: the fewest nodes whose replicas, sharing R evenly, meet the SLO (open-loop Poisson
  arrivals). Ranked by all-in $ per hour.
- ``--concurrency N``: the fewest nodes whose replicas, sharing N closed-loop clients, meet the SLO.
  Ranked by all-in $ per hour.
- neither: the largest number of clients per replica that meets the SLO (the guide's "batch up to
  the latency limit"), on one node. Ranked by $ per million output tokens at that load.

Before anything is simulated, a candidate at no load (one request in flight) must meet the SLO:
more replicas cannot fix a latency one request already misses. The candidates are then taken in
order of a lower bound on their cost (from ``optimistic_capacity``, which the simulation never
beats), and the search stops once the bound of the next one is above the top N found: what it
skips could not have ranked. The result is deterministic: candidates, loads and seeds are fixed.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from loadtest.simulator.efficiency import profile_for
from loadtest.simulator.error_bands import ErrorBand, error_band
from loadtest.slo import SloTerm
from stacks.config import PROJECT
from stacks.loader import spec_from_config

from .evaluate import Stage, StagePredictor, fmt_s, optimistic_capacity
from .query import Query
from .space import Candidate, Rejection, enumerate_candidates

MAX_CLIENTS_PER_REPLICA = 512  # the knee search (no traffic given) looks no further


@dataclass(frozen=True)
class Pick:
    """A candidate sized for the query's traffic, with its prediction and price."""

    candidate: Candidate
    nodes: int
    stage: Stage  # one replica at its share of the load
    usd_per_hour: float  # all-in: the nodes plus the cluster's own cost
    band: ErrorBand

    @property
    def replicas(self) -> int:
        return self.nodes * self.candidate.replicas_per_node

    @property
    def output_tok_s(self) -> float:
        """All replicas together."""
        return self.stage.output_tok_s * self.replicas

    @property
    def usd_per_m_output(self) -> float:
        tok_h = self.output_tok_s * 3600
        return self.usd_per_hour / tok_h * 1e6 if tok_h else math.inf

    def headroom(self, term: SloTerm) -> float:
        """1 - value / limit: the share of the limit left unused."""
        value = self.stage.values.get(term.key)
        return 1.0 - value / term.limit if value is not None else -math.inf

    def within_band(self, slo: tuple[SloTerm, ...]) -> bool:
        """True when a term would miss its limit if the model were off by its typical error."""
        if self.band.median is None:
            return False
        return any((self.stage.values.get(t.key) or 0.0) * (1 + self.band.median) > t.limit for t in slo)


@dataclass
class Result:
    query: Query
    picks: list[Pick]  # ranked, cheapest first, one per (GPU type, server, precision)
    rejections: list[Rejection]
    candidates: int  # deployable setups in the space
    evaluated: int  # candidates the search simulated
    simulations: int
    closest: tuple[Candidate, Stage, float] | None = None  # when nothing meets the SLO: nearest miss
    evaluated_picks: list[Pick] = field(default_factory=list)  # the best of every group the search sized
    baseline: Pick | str | None = None  # the stack the query started from, sized the same way (or why it cannot)

    def value(self, pick: Pick) -> float:
        return ranking_value(self.query, pick)


def ranking_value(q: Query, pick: Pick) -> float:
    return pick.usd_per_m_output if q.rate is None and q.concurrency is None else pick.usd_per_hour


def rank_key(q: Query, pick: Pick) -> tuple[object, ...]:
    """Cheapest first; at equal cost, a server whose model error is measured, then the most headroom."""
    headroom = min(pick.headroom(t) for t in q.slo)
    return (round(ranking_value(q, pick), 9), not pick.band.validated, -headroom, pick.candidate.sort_key)


def all_in_usd_per_hour(candidate: Candidate, nodes: int) -> float:
    s = candidate.spec  # resolved with one node: its pool price is one node's
    return s.usd_per_node_hour * nodes + s.usd_per_hour_cluster


def _band(candidate: Candidate) -> ErrorBand:
    s = candidate.spec
    return error_band(profile_for(s.server.name, s.image), s.accelerator)


class Search:
    def __init__(self, q: Query):
        self.q = q
        self.predict = StagePredictor(q.shapes, q.slo)
        self._capacity: dict[tuple[Any, ...], float] = {}

    def capacity(self, c: Candidate) -> float:
        """``optimistic_capacity`` of one node of ``c`` (req/s), once per replica shape."""
        key = c.replica_key
        if key not in self._capacity:
            self._capacity[key] = optimistic_capacity(c.spec, self.q.mean_input, self.q.mean_output)
        return self._capacity[key] * c.replicas_per_node

    # -- per candidate ---------------------------------------------------------------------------
    def floor(self, c: Candidate) -> Stage | str:
        """One request in flight: the best latency the candidate can give."""
        return self.predict.stage(c.replica_key, c.spec, "batch", 1, requests=min(16, max(4, len(self.q.shapes))))

    def lower_bound(self, c: Candidate) -> float:
        """A value the candidate's ranking value cannot go below."""
        q = self.q
        cap = self.capacity(c)  # req/s per node
        if q.rate is not None:
            return all_in_usd_per_hour(c, max(1, math.ceil(q.rate / cap)))
        if q.concurrency is not None:
            return all_in_usd_per_hour(c, 1)
        return all_in_usd_per_hour(c, 1) / (cap * q.mean_output * 3600) * 1e6

    def size(self, c: Candidate, ceiling: float) -> Pick | str | None:
        """The candidate at the query's traffic: a Pick, a reason it cannot meet the SLO, or None when
        meeting it would cost more than ``ceiling`` (it could not rank)."""
        q = self.q
        if q.rate is None and q.concurrency is None:
            return self._knee(c, ceiling)
        per_node = c.replicas_per_node
        cap = self.capacity(c)
        lo = max(1, math.ceil(q.rate / cap)) if q.rate is not None else 1
        max_nodes = max(1, q.max_replicas // per_node)
        if q.concurrency is not None:
            max_nodes = min(max_nodes, max(1, math.ceil(q.concurrency / per_node)))

        def at(nodes: int) -> Stage | str:
            replicas = nodes * per_node
            if q.rate is not None:
                return self.predict.stage(c.replica_key, c.spec, "rate", q.rate / replicas)
            assert q.concurrency is not None
            return self.predict.stage(c.replica_key, c.spec, "batch", math.ceil(q.concurrency / replicas))

        # doubling from the bound, then bisection: latency falls as nodes are added
        fail, n, ok = lo - 1, lo, None
        while n <= max_nodes:
            if all_in_usd_per_hour(c, n) > ceiling:
                return None
            st = at(n)
            if isinstance(st, str):
                return st
            if st.meets(q.slo):
                ok = (n, st)
                break
            fail, n = n, min(max_nodes, n * 2) if n < max_nodes else max_nodes + 1
        if ok is None:
            return (f"misses the SLO even with {max_nodes * per_node} replicas (--max-replicas {q.max_replicas})")
        good_n, good = self._bisect(at, *ok, fail, 1)
        return Pick(c, good_n, good, all_in_usd_per_hour(c, good_n), _band(c))

    def _knee(self, c: Candidate, ceiling: float) -> Pick | str | None:
        """The most clients per replica that meet the SLO (doubling, then bisection), on one node."""
        q = self.q
        limit = min(MAX_CLIENTS_PER_REPLICA, c.spec.max_batch)
        price = all_in_usd_per_hour(c, 1)

        def at(clients: int) -> Stage | str:
            return self.predict.stage(c.replica_key, c.spec, "batch", clients)

        def value(st: Stage) -> float:
            tok_h = st.output_tok_s * c.replicas_per_node * 3600
            return price / tok_h * 1e6 if tok_h else math.inf

        good: Stage | None = None
        clients, fail = 1, None
        while clients <= limit:
            st = at(clients)
            if isinstance(st, str):
                return st
            if not st.meets(q.slo):
                fail = clients
                break
            good = st
            if clients == limit:
                break
            clients = min(limit, clients * 2)
        if good is None:
            return "misses the SLO with one request in flight"
        lo = int(good.level)
        hi = fail if fail is not None else lo
        if value(good) * lo / hi > ceiling:  # even twice the clients (at best twice the tokens) could not rank
            return None
        _, good = self._bisect(at, lo, good, hi, max(1, lo // 8))  # to within 1/8 of the knee
        if value(good) > ceiling:
            return None
        return Pick(c, 1, good, price, _band(c))

    def _bisect(self, at: Callable[[int], Stage | str], good_n: int, good: Stage, bad_n: int,
                tolerance: int) -> tuple[int, Stage]:
        """Between a level that meets the SLO and one that misses it, the level nearest the boundary on
        the meeting side, to within ``tolerance``: latency is taken to grow with load per replica."""
        while abs(good_n - bad_n) > tolerance:
            mid = (good_n + bad_n) // 2
            st = at(mid)
            if not isinstance(st, str) and st.meets(self.q.slo):
                good_n, good = mid, st
            else:
                bad_n = mid
        return good_n, good

    # -- the whole search ------------------------------------------------------------------------
    def run(self) -> Result:
        q = self.q
        candidates, rejections = enumerate_candidates(q)
        if q.validated_only:
            bands = [(c, _band(c)) for c in candidates]
            rejections = [*rejections, *(Rejection(c.label, f"predictions unvalidated: {band.basis} (fix: drop "
                                                   "--validated-only)", c.spec.usd_per_node_hour, "unvalidated")
                                         for c, band in bands if not band.validated)]
            candidates = [c for c, band in bands if band.validated]
        result = Result(q, [], list(rejections), len(candidates), 0, 0)
        viable: list[tuple[float, Candidate]] = []
        closest: tuple[Candidate, Stage, float] | None = None
        for c in candidates:
            st = self.floor(c)
            if isinstance(st, str):
                result.rejections.append(Rejection(c.label, st, c.spec.usd_per_node_hour, "memory"))
                continue
            if not st.meets(q.slo):
                ratio, price = st.worst_ratio(q.slo), all_in_usd_per_hour(c, 1)
                result.rejections.append(Rejection(c.label, "misses the SLO with one request in flight: "
                                                   + _misses(st, q.slo), price, "slo"))
                if closest is None or (ratio, price) < (closest[2], all_in_usd_per_hour(closest[0], 1)):
                    closest = (c, st, ratio)
                continue
            viable.append((self.lower_bound(c), c))
        viable.sort(key=lambda x: (x[0], x[1].sort_key))
        best: dict[tuple[str, str, str], Pick] = {}

        def ceiling() -> float:
            values = sorted(ranking_value(q, p) for p in best.values())
            return values[q.top - 1] if len(values) >= q.top else math.inf

        for bound, c in viable:
            if bound > ceiling():
                break
            result.evaluated += 1
            pick = self.size(c, ceiling())
            if pick is None:
                continue
            if isinstance(pick, str):
                result.rejections.append(Rejection(c.label, pick, all_in_usd_per_hour(c, 1), "slo"))
                continue
            group = (c.spec.accelerator, c.spec.server.name, c.spec.precision.name)
            if group not in best or rank_key(q, pick) < rank_key(q, best[group]):
                best[group] = pick
        result.evaluated_picks = sorted(best.values(), key=lambda p: rank_key(q, p))
        result.picks = result.evaluated_picks[: q.top]
        result.simulations = self.predict.simulations
        result.closest = closest if not result.picks else None
        if q.baseline is not None:
            result.baseline = self._baseline(*q.baseline)
        return result

    def _baseline(self, name: str, flat: dict[str, Any]) -> Pick | str:
        """The starting stack as written (its machine, precision, server, TP, max batch), sized for the
        query's traffic like any candidate: what the user would pay without the recommendation."""
        first = spec_from_config(flat, name)
        sized = copy.deepcopy(flat)
        accelerator = sized[f"{PROJECT}:accelerator"]
        accelerator.pop("autoscaling", None)
        accelerator["nodeCount"] = 1
        sized[f"{PROJECT}:server"]["replicas"] = first.chips_per_node // first.tensor_parallel
        spec = spec_from_config(sized, name)
        provisioning = "spot" if spec.spot else "flex-start" if spec.queued_provisioning else "on-demand"
        c = Candidate(sized, spec, provisioning)
        floor = self.floor(c)
        if isinstance(floor, str):
            return floor
        if not floor.meets(self.q.slo):
            return "misses the SLO with one request in flight: " + _misses(floor, self.q.slo)
        pick = self.size(c, math.inf)
        assert pick is not None  # no ceiling: sized or refused
        return pick


def _misses(st: Stage, slo: tuple[SloTerm, ...]) -> str:
    out = []
    for t in slo:
        v = st.values.get(t.key)
        if v is None or v > t.limit:
            out.append(f"{t.key} {fmt_s(v)} > {fmt_s(t.limit)}")
    return ", ".join(out)


def search(q: Query) -> Result:
    """Rank the setups that serve ``q`` (see the module docstring)."""
    return Search(q).run()
