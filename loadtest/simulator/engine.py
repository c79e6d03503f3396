"""The simulated serving engine: a vLLM-style scheduler over simulated time.

Continuous batching (the default) follows vLLM's V1 scheduler:
- each step has a token budget (``max_batched_tokens``) and a sequence cap (``max_batch``);
- running sequences are served first (a decode needs one token, an unfinished prefill the rest of
  its prompt, chunked to the remaining budget when chunked prefill is on);
- the KV cache is ``spec.sizing.kv_blocks`` blocks of ``KV_BLOCK_TOKENS`` tokens (the sizing's own
  numbers); when a running sequence needs a block and none is free, the most recently admitted
  running sequence is preempted (its blocks freed, recomputed later from the front of the queue);
- waiting sequences are admitted first come first served while budget, sequence slots and blocks
  last, and never in a step that had to preempt.

Static batching (``static_batch=True``) reproduces the guide's batch-size comparison: a batch is
formed when the engine is idle (when ``batch_size`` requests are ready or arrivals pause for
``static_wait_s``), prefilled in one step, and decoded until its longest member ends; finished
members keep their slot (padding) until then, and nothing joins a running batch.

Time is simulated: ``step()`` computes the step's duration with the ``PerfModel`` and advances the
engine clock. The step's tokens leave the server one stream after another from the step's end,
``token_emit_s`` apart (the API server serialises each stream's event), in running order. The
same engine drives ``predict()`` (no HTTP) and the served endpoint (which writes each token at
its scheduled time, in wall time).
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from stacks.sizing import KV_BLOCK_TOKENS
from stacks.spec import StackSpec

from .perf_model import PerfModel


@dataclass(slots=True, eq=False)
class Sequence:
    """One request inside the engine."""

    rid: int
    prompt_len: int
    max_new: int
    arrival: float
    ready: float = 0.0  # arrival + request overhead: when the scheduler first sees it
    computed: int = 0  # tokens whose KV is in the cache
    generated: int = 0
    blocks: int = 0
    scheduled_at: float | None = None  # first time it entered a step (queue time ends)
    first_token_at: float | None = None
    last_token_at: float | None = None
    prev_token_at: float | None = None
    finished_at: float | None = None
    preemptions: int = 0
    done: bool = False
    cancelled: bool = False
    handle: Any = None  # the server's stream for this request
    adapter: str | None = None  # the LoRA adapter it asked for (None: the base model)

    @property
    def total_len(self) -> int:
        return self.prompt_len + self.generated


@dataclass(slots=True)
class StepResult:
    start: float
    end: float
    emitted: list[Sequence]  # sequences that sampled one token; each leaves at its ``last_token_at``
    finished: list[Sequence]
    new_tokens: int
    prefill_tokens: int
    seqs: int
    preempted: int


@dataclass
class EngineStats:
    steps: int = 0
    prompt_tokens: int = 0
    generation_tokens: int = 0
    preemptions: int = 0
    busy_s: float = 0.0
    finished: int = 0


class EngineError(ValueError):
    """A request the engine can never serve (longer than the context or the whole KV cache)."""


class Engine:
    def __init__(
        self,
        spec: StackSpec,
        perf: PerfModel | None = None,
        *,
        static_batch: bool = False,
        batch_size: int | None = None,
        static_wait_s: float = 0.05,
    ):
        self.spec = spec
        self.perf = perf or PerfModel(spec)
        self.max_batch = spec.max_batch
        self.max_loras = spec.lora.max_loras if spec.lora else 0  # adapters one step may mix (vLLM --max-loras)
        self.batch_size = min(batch_size or spec.max_batch, spec.max_batch)
        self.max_batched_tokens = spec.max_batched_tokens
        self.chunked = spec.chunked_prefill
        self.max_model_len = spec.max_model_len
        self.block_tokens = KV_BLOCK_TOKENS
        self.kv_blocks = spec.sizing.kv_blocks
        self.free_blocks = self.kv_blocks
        self.static = static_batch
        self.static_wait_s = static_wait_s
        self.request_overhead_s = self.perf.request_overhead_s
        self.emit_s = self.perf.eff.token_emit_s
        self.now = 0.0
        self.pending: list[tuple[float, int, Sequence]] = []  # heap by ready time
        self.waiting: deque[Sequence] = deque()
        self.running: list[Sequence] = []
        self.last_ready = -math.inf
        self.stats = EngineStats()
        self.stall_s: Callable[[], float] | None = None  # fault injection: extra seconds before a step

    # -- requests ------------------------------------------------------------------------------
    def check(self, prompt_len: int, max_new: int) -> None:
        """Raise ``EngineError`` for a request that can never run (the server turns it into a 400)."""
        if prompt_len < 1:
            raise EngineError("the prompt is empty")
        if max_new < 1:
            raise EngineError("max_tokens must be at least 1")
        if prompt_len + max_new > self.max_model_len:
            raise EngineError(
                f"This model's maximum context length is {self.max_model_len} tokens. However, you requested "
                f"{prompt_len + max_new} tokens ({prompt_len} in the messages, {max_new} in the completion). "
                "Please reduce the length of the messages or completion.")
        if not self.chunked and prompt_len > self.max_batched_tokens:
            raise EngineError(f"the prompt ({prompt_len} tokens) exceeds max_num_batched_tokens "
                              f"({self.max_batched_tokens}) and chunked prefill is off")
        if math.ceil((prompt_len + max_new) / self.block_tokens) > self.kv_blocks:
            raise EngineError(f"the request needs {prompt_len + max_new} tokens of KV cache; the whole cache holds "
                              f"{self.kv_blocks * self.block_tokens}")

    def add(self, seq: Sequence) -> None:
        self.check(seq.prompt_len, seq.max_new)
        seq.ready = seq.arrival + self.request_overhead_s
        heapq.heappush(self.pending, (seq.ready, seq.rid, seq))

    def cancel(self, seq: Sequence) -> None:
        """The client went away: free its blocks and forget it."""
        if seq.done or seq.cancelled:
            return
        seq.cancelled = True
        if seq in self.running:
            if not self.static:
                self.running.remove(seq)
                self.free_blocks += seq.blocks
                seq.blocks = 0
            # a static batch keeps the slot (padding) until the batch ends
        elif seq in self.waiting:
            self.waiting.remove(seq)
        # pending entries are skipped when they become ready

    @property
    def has_work(self) -> bool:
        return bool(self.running or self.waiting or self.pending)

    @property
    def num_running(self) -> int:
        return sum(1 for s in self.running if not s.done and not s.cancelled)

    @property
    def num_waiting(self) -> int:
        return len(self.waiting) + len(self.pending)

    @property
    def kv_usage(self) -> float:
        return 1.0 - self.free_blocks / self.kv_blocks if self.kv_blocks else 0.0

    def _promote(self, t: float) -> None:
        while self.pending and self.pending[0][0] <= t + 1e-12:
            ready, _, seq = heapq.heappop(self.pending)
            if not seq.cancelled:
                self.waiting.append(seq)
                self.last_ready = max(self.last_ready, ready)

    def next_start(self) -> float | None:
        """When the next step may start given what has been added so far (None: idle).

        In static mode this is a time to look again: ``step`` returns None there when the batch is
        neither full nor past its wait, and the caller asks again.
        """
        if self.running:
            return self.now
        self._promote(self.now)
        if not self.static:
            if self.waiting:
                return self.now
            return max(self.now, self.pending[0][0]) if self.pending else None
        if len(self.waiting) >= self.batch_size:
            return self.now
        candidates = []
        if self.waiting:
            candidates.append(max(self.now, self.last_ready + self.static_wait_s))
        if self.pending:
            candidates.append(max(self.now, self.pending[0][0]))
        return min(candidates) if candidates else None

    # -- one step ------------------------------------------------------------------------------
    def step(self, start: float | None = None) -> StepResult | None:
        """Run one step starting at ``start`` (default: ``next_start()``); None when idle."""
        t0 = self.next_start() if start is None else max(start, self.now)
        if t0 is None:
            return None
        if self.stall_s is not None and self.has_work:
            t0 += self.stall_s()
        self.now = t0
        self._promote(t0)
        if self.static:
            return self._static_step(t0)
        return self._continuous_step(t0)

    def _blocks_for(self, tokens: int) -> int:
        return -(-tokens // self.block_tokens)

    def _continuous_step(self, t0: float) -> StepResult | None:
        budget = self.max_batched_tokens
        scheduled: list[tuple[Sequence, int]] = []
        preempted = 0
        running = self.running
        i = 0
        while i < len(running) and budget > 0:
            seq = running[i]
            need = seq.total_len - seq.computed
            if self.chunked or need <= budget or budget == self.max_batched_tokens:
                n = min(need, budget) if self.chunked else need
            else:
                n = 0
            if n <= 0:
                i += 1
                continue
            want = self._blocks_for(seq.computed + n) - seq.blocks
            self_preempted = False
            while want > self.free_blocks:
                victim = running.pop()
                self._preempt(victim)
                preempted += 1
                if victim is seq:
                    self_preempted = True
                    break
            if self_preempted:
                break
            self.free_blocks -= want
            seq.blocks += want
            scheduled.append((seq, n))
            budget -= n
            i += 1
        if not preempted:
            # vLLM's max_loras: a waiting request whose adapter would be one too many in the batch is
            # skipped (it keeps its place) and the next is tried, as vLLM's scheduler does
            loras = {s.adapter for s in running if s.adapter is not None} if self.max_loras else set()
            skipped: list[Sequence] = []
            while self.waiting and budget > 0 and len(running) < self.max_batch:
                seq = self.waiting[0]
                if seq.adapter is not None and self.max_loras and seq.adapter not in loras \
                        and len(loras) >= self.max_loras:
                    skipped.append(self.waiting.popleft())
                    continue
                need = seq.total_len - seq.computed
                if need > budget and not self.chunked and budget < self.max_batched_tokens:
                    break
                n = min(need, budget) if self.chunked else need
                want = self._blocks_for(seq.computed + n) - seq.blocks
                if want > self.free_blocks:
                    break
                if seq.adapter is not None:
                    loras.add(seq.adapter)
                self.waiting.popleft()
                self.free_blocks -= want
                seq.blocks += want
                if seq.scheduled_at is None:
                    seq.scheduled_at = t0
                running.append(seq)
                scheduled.append((seq, n))
                budget -= n
            self.waiting.extendleft(reversed(skipped))
        if not scheduled:
            if preempted:
                self.stats.preemptions += preempted
            return None
        new_tokens = 0
        prefill_tokens = 0
        pairs = 0.0
        kv_read = 0
        lora_tokens = 0
        adapters: set[str] = set()
        for seq, n in scheduled:
            new_tokens += n
            if n > 1 or seq.computed < seq.prompt_len:
                prefill_tokens += n
            pairs += n * (seq.computed + (n + 1) / 2)
            kv_read += seq.computed
            if seq.adapter is not None:
                lora_tokens += n
                adapters.add(seq.adapter)
        dt = self.perf.step_seconds(new_tokens, len(scheduled), pairs, kv_read, lora_tokens, len(adapters))
        end = t0 + dt
        emitted: list[Sequence] = []
        finished: list[Sequence] = []
        emit = self._emit_spacing(dt, len(scheduled))
        for seq, n in scheduled:
            seq.computed += n
            if seq.computed >= seq.total_len:
                # the server sends the step's tokens one stream after another
                _emit_token(seq, end + len(emitted) * emit, emitted, finished)
        if finished:
            for seq in finished:
                self.free_blocks += seq.blocks
                seq.blocks = 0
            self.running = [s for s in running if not s.done]
        return self._account(t0, end, emitted, finished, new_tokens, prefill_tokens, len(scheduled), preempted)

    def _emit_spacing(self, dt: float, n: int) -> float:
        """Spacing of this step's deliveries: ``token_emit_s``, squeezed so they end within a step."""
        return min(self.emit_s, dt / n) if n else self.emit_s

    def _preempt(self, seq: Sequence) -> None:
        """Recompute-mode preemption, as vLLM V1: drop its KV, requeue it at the front."""
        self.free_blocks += seq.blocks
        seq.blocks = 0
        seq.computed = 0
        seq.preemptions += 1
        self.waiting.appendleft(seq)

    def _static_step(self, t0: float) -> StepResult | None:
        batch = self.running
        if not batch:
            full = len(self.waiting) >= self.batch_size
            if not full and not (self.waiting and t0 >= self.last_ready + self.static_wait_s - 1e-12):
                return None
            while self.waiting and len(batch) < self.batch_size:
                seq = self.waiting[0]
                want = self._blocks_for(seq.prompt_len + seq.max_new)  # reserved for the whole batch life
                if want > self.free_blocks:
                    break
                self.waiting.popleft()
                self.free_blocks -= want
                seq.blocks = want
                seq.scheduled_at = t0
                batch.append(seq)
            if not batch:
                return None
            new_tokens = sum(s.prompt_len for s in batch)
            pairs = sum(s.prompt_len * (s.prompt_len + 1) / 2 for s in batch)
            dt = self.perf.step_seconds(new_tokens, len(batch), pairs, 0)
            for seq in batch:
                seq.computed = seq.prompt_len
            prefill = new_tokens
        else:
            new_tokens = len(batch)  # padding: finished members are still computed
            kv_read = sum(s.computed for s in batch)
            pairs = kv_read + new_tokens
            dt = self.perf.step_seconds(new_tokens, len(batch), pairs, kv_read)
            for seq in batch:
                seq.computed += 1
            prefill = 0
        end = t0 + dt
        emitted: list[Sequence] = []
        finished: list[Sequence] = []
        emit = self._emit_spacing(dt, len(batch))
        for seq in batch:
            if seq.done or seq.cancelled:
                continue
            _emit_token(seq, end + len(emitted) * emit, emitted, finished)
        if all(s.done or s.cancelled for s in batch):
            for seq in batch:
                self.free_blocks += seq.blocks
                seq.blocks = 0
            self.running = []
        return self._account(t0, end, emitted, finished, new_tokens, prefill, len(batch), 0)

    def _account(self, t0: float, end: float, emitted: list[Sequence], finished: list[Sequence], new_tokens: int,
                 prefill: int, seqs: int, preempted: int) -> StepResult:
        st = self.stats
        st.steps += 1
        st.prompt_tokens += prefill
        st.generation_tokens += len(emitted)
        st.preemptions += preempted
        st.busy_s += end - t0
        st.finished += len(finished)
        self.now = end
        return StepResult(t0, end, emitted, finished, new_tokens, prefill, seqs, preempted)


def _emit_token(seq: Sequence, t: float, emitted: list[Sequence], finished: list[Sequence]) -> None:
    """Record one generated token of ``seq`` leaving at simulated time ``t``; finish it at ``max_new``."""
    seq.generated += 1
    emitted.append(seq)
    seq.prev_token_at = seq.last_token_at
    seq.last_token_at = t
    if seq.first_token_at is None:
        seq.first_token_at = t
    if seq.generated >= seq.max_new:
        seq.done = True
        seq.finished_at = t
        finished.append(seq)
