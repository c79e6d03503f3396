"""Real-time driver: runs the simulated engine against the wall clock and emits tokens on schedule.

Simulated time is wall time since start (``loop.time() - t0``). A step is computed when it starts
(from what has arrived by then), with every token's bytes prepared then; each token is written
at its scheduled time (the step's end, then ``token_emit_s`` apart, stream after stream): the
timer fires a little early (the event loop's timers have ~1 ms granularity), the rest is slept and
spun precisely, and each write goes straight to the connection's transport.
The schedule never absorbs lateness: step k+1 starts at step k's simulated end whatever the wall
clock did, so the timing stays the model's and deterministic given the arrival times, and any
lateness shows up as emission lag, which is measured for every token and reported.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass

from stacks.spec import StackSpec

from .engine import Engine, Sequence, StepResult
from .faults import FaultPlan, Faults

EARLY_S = 0.0015  # wake this much before an emission and sleep the rest (timer granularity is 1 ms)
_LAG_BIN_S = 0.00005  # lag histogram resolution: 50 us
_LAG_BINS = 20000  # up to 1 s; later lands in the last bin


class Stream:
    """A request's output channel. Dialects subclass it; the runtime calls these synchronously."""

    seq: Sequence | None = None
    disconnect_after: int | None = None
    finish_reason: str = "length"  # "stop" when the simulated model ends on its own (EOS)

    def prepare(self, seq: Sequence) -> bytes | None:
        """Bytes to send for ``seq``'s newest token (with the stream's tail if it is the last), or None.

        Called when the step is computed, so the send at the scheduled time is a bare socket write.
        """
        raise NotImplementedError

    def send(self, data: bytes) -> bool:
        """Write prepared bytes. False: the client is gone."""
        raise NotImplementedError

    def alive(self) -> bool:
        raise NotImplementedError

    def finish(self, seq: Sequence, reason: str) -> None:
        """The request ended (``reason``: length, stop, abort, disconnect)."""
        raise NotImplementedError


class Observer:
    """Receives engine events for the dialect's server metrics (no-op base)."""

    def admitted(self, seq: Sequence) -> None: ...

    def rejected(self, status: int, reason: str) -> None: ...

    def step(self, res: StepResult, engine: Engine) -> None: ...

    def finished(self, seq: Sequence, reason: str) -> None: ...


@dataclass
class LagStats:
    emitted: int
    p50_ms: float
    p99_ms: float
    max_ms: float

    def as_dict(self) -> dict[str, float]:
        return {"emitted": self.emitted, "p50Ms": self.p50_ms, "p99Ms": self.p99_ms, "maxMs": self.max_ms}


class LagHistogram:
    """Emission lag (actual write - scheduled time) of every token, in 50 us bins."""

    def __init__(self) -> None:
        self.bins = [0] * _LAG_BINS
        self.n = 0
        self.max_s = 0.0

    def add(self, lag_s: float) -> None:
        i = int(lag_s / _LAG_BIN_S) if lag_s > 0 else 0
        self.bins[i if i < _LAG_BINS else _LAG_BINS - 1] += 1
        self.n += 1
        if lag_s > self.max_s:
            self.max_s = lag_s

    def quantile(self, q: float) -> float:
        if not self.n:
            return 0.0
        target = q * self.n
        acc = 0
        for i, c in enumerate(self.bins):
            acc += c
            if acc >= target:
                return (i + 1) * _LAG_BIN_S
        return self.max_s

    def stats(self) -> LagStats:
        return LagStats(self.n, self.quantile(0.5) * 1e3, self.quantile(0.99) * 1e3, self.max_s * 1e3)


class Runtime:
    def __init__(self, spec: StackSpec, *, seed: int = 0, static_batch: bool = False,
                 faults: Faults | None = None, observer: Observer | None = None, static_wait_s: float = 0.05):
        self.spec = spec
        self.seed = seed
        self.engine = Engine(spec, static_batch=static_batch, static_wait_s=static_wait_s)
        self.faults = FaultPlan(faults or Faults(), seed)
        if self.faults.faults.stall_rate:
            self.engine.stall_s = self.faults.stall
        self.observer = observer or Observer()
        self.lag = LagHistogram()
        self._ids = itertools.count()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.t0 = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = float("inf")
        self._in_step = False

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.t0 = self._loop.time()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        assert self._loop is not None, "Runtime.start() has not run"
        return self._loop

    def now(self) -> float:
        return self.loop.time() - self.t0

    def ready(self) -> bool:
        """False during the injected slow start."""
        return self.now() >= self.faults.faults.slow_start_s

    # -- requests ------------------------------------------------------------------------------
    def submit(self, prompt_len: int, max_new: int, stream: Stream, adapter: str | None = None) -> Sequence:
        """Queue a request (``adapter``: the LoRA adapter it asked for); raises ``EngineError`` when it
        can never run."""
        seq = Sequence(rid=next(self._ids), prompt_len=prompt_len, max_new=max_new, arrival=self.now(), handle=stream,
                       adapter=adapter)
        self.engine.add(seq)
        stream.seq = seq
        stream.disconnect_after = self.faults.disconnect_after(max_new)
        self.observer.admitted(seq)
        self._kick()
        return seq

    def cancel(self, seq: Sequence) -> None:
        if seq.done or seq.cancelled:
            return
        self.engine.cancel(seq)
        self.observer.finished(seq, "abort")
        self._kick()

    # -- the clock -----------------------------------------------------------------------------
    def _kick(self) -> None:
        if self._in_step:
            return
        t = self.engine.next_start()
        if t is None:
            return
        if self._timer is not None:
            if self._timer_at <= t:
                return
            self._timer.cancel()
        self._timer_at = t
        self._timer = self.loop.call_at(self.t0 + t - EARLY_S, self._start_step)

    def _start_step(self) -> None:
        self._timer = None
        self._timer_at = float("inf")
        start = self.engine.next_start()
        if start is None:
            return
        res = self.engine.step(start)
        if res is None:
            self._kick()
            return
        self._in_step = True
        payload = [(seq, seq.handle.prepare(seq)) for seq in res.emitted if seq.handle is not None]
        first = res.emitted[0].last_token_at if res.emitted and res.emitted[0].last_token_at else res.end
        self.loop.call_at(self.t0 + first - EARLY_S, self._emit, res, payload)

    def _emit(self, res: StepResult, payload: list[tuple[Sequence, bytes | None]]) -> None:
        """Send the step's tokens, each at its scheduled time, and record how late each one left."""
        clock = time.monotonic  # the event loop's clock
        t0 = self.t0
        lag = self.lag
        for seq, data in payload:
            if seq.cancelled:
                continue
            target = t0 + (seq.last_token_at if seq.last_token_at is not None else res.end)
            wait = target - clock()
            if wait > 0:
                if wait > 0.0004:
                    time.sleep(wait - 0.0002)
                while clock() < target:
                    pass
            stream = seq.handle
            alive = stream.send(data) if data is not None else stream.alive()
            lag.add(clock() - target)
            if not alive:
                self.cancel(seq)
                continue
            if stream.disconnect_after is not None and seq.generated >= stream.disconnect_after and not seq.done:
                stream.finish(seq, "disconnect")
                self.cancel(seq)
        self.observer.step(res, self.engine)
        for seq in res.finished:
            if seq.cancelled:
                continue
            reason = getattr(seq.handle, "finish_reason", "length")
            self.observer.finished(seq, reason)
            if seq.handle is not None:
                seq.handle.finish(seq, reason)
        self._in_step = False
        self._kick()

    def stats(self) -> dict[str, object]:
        e = self.engine
        return {
            "stack": self.spec.name,
            "simulatedSeconds": self.now() if self._loop else 0.0,
            "emissionLag": self.lag.stats().as_dict(),
            "engine": {"steps": e.stats.steps, "running": e.num_running, "waiting": e.num_waiting,
                       "kvUsage": e.kv_usage, "kvBlocks": e.kv_blocks, "preemptions": e.stats.preemptions,
                       "promptTokens": e.stats.prompt_tokens, "generationTokens": e.stats.generation_tokens,
                       "finished": e.stats.finished, "staticBatch": e.static},
        }
