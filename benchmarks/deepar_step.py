"""Where a DeepAR training step spends its time: the lookback's teacher-forced LSTM pass, the
forecast steps after it (each a cell step with the previous prediction fed back), and torch's
own `nn.LSTM` over the same rows as the floor of the first. Side by side, the whole step with
the forecast steps' sublayers called through `Layer.__call__`, as before deepcast called their
`call` directly (the same numbers out, bit for bit).

One batch of `--batch` random windows at lookback 168 / horizon 24 with vic_elec's width (3
observed columns, 4 calendar columns), forward and backward, median of `--repeats` after one
warm-up, one torch thread, subnormals flushed as deepcast trains. Prints seconds per batch and
each part's share, for every `--units`:

    .venv/bin/python benchmarks/deepar_step.py [--units 40,128] [--repeats 10]
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time

import numpy as np
import torch

import deepcast as dc
from deepcast import _backend
from deepcast.models import heads
from deepcast.models.deepar import DeepARNetwork

LOOKBACK, HORIZON, OBSERVED, CALENDAR = 168, 24, 3, 4


def seconds(step, repeats: int) -> float:
    step()  # warm-up: first-call allocations
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


@contextlib.contextmanager
def through_layer_call():
    """DeepARNetwork's step methods as they were: every sublayer through Layer.__call__."""

    def step(self, x, states, training=None):
        new_states = []
        for lstm, state in zip(self.lstms, states):
            x, state = lstm.cell(x, state, training=training)
            new_states.append(state)
        return self.raw(x), new_states

    def raw(self, hidden):
        out = self.projection(hidden)
        return torch.cat([out[..., :1], out[..., 1:] + out[..., :1]], dim=-1)

    def params(self, raw):
        return self.step_head(raw)[:, 0]

    saved = DeepARNetwork.step, DeepARNetwork.raw, DeepARNetwork.params
    DeepARNetwork.step, DeepARNetwork.raw, DeepARNetwork.params = step, raw, params
    try:
        yield
    finally:
        DeepARNetwork.step, DeepARNetwork.raw, DeepARNetwork.params = saved


def parts(units: int, batch: int, repeats: int) -> dict[str, float]:
    width = OBSERVED + CALENDAR
    future = list(range(OBSERVED, width))
    model = dc.models.build(
        dc.models.DeepAR(units=units), LOOKBACK, width, HORIZON,
        head=heads.Head("student_t"), future_columns=future,
    )  # fmt: skip
    network = next(layer for layer in model._flatten_layers() if isinstance(layer, DeepARNetwork))
    window = np.random.default_rng(0).normal(size=(batch, LOOKBACK + HORIZON, width))
    window[:, LOOKBACK:, :OBSERVED] = 0.0  # forecast rows: calendar only
    x = torch.tensor(window, dtype=torch.float32)

    def whole():
        network(x, training=True).square().mean().backward()

    def lookback():
        raw, states = network.encode(x, training=True)
        (raw.square().mean() + sum(h.sum() for h, _ in states)).backward()

    reference = torch.nn.LSTM(network.input_width, units, num_layers=2, batch_first=True)
    inputs = torch.randn(batch, LOOKBACK, network.input_width)

    def torch_lstm():
        reference(inputs)[0].square().mean().backward()

    def before():
        with through_layer_call():
            whole()

    with _backend.flushed_subnormals():
        timed = {"whole network": [], "whole, steps through Layer.__call__": []}
        for _ in range(repeats):  # alternated, so both see the same machine
            timed["whole network"].append(seconds(whole, 1))
            timed["whole, steps through Layer.__call__"].append(seconds(before, 1))
        return {name: statistics.median(times) for name, times in timed.items()} | {
            "lookback pass": seconds(lookback, repeats),
            "torch nn.LSTM, lookback rows": seconds(torch_lstm, repeats),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", default="40,128")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(
        f"DeepAR forward + backward, {args.batch} windows, lookback {LOOKBACK}, horizon {HORIZON}"
    )
    print(f"{'units':>5}  {'part':<40} {'s/batch':>8}  share of whole")
    for units in (int(u) for u in args.units.split(",")):
        timed = parts(units, args.batch, args.repeats)
        whole = timed["whole network"]
        timed["forecast steps 2..H (whole - lookback)"] = whole - timed["lookback pass"]
        for name, value in timed.items():
            print(f"{units:>5}  {name:<40} {value:8.3f}  {value / whole:5.2f}")


if __name__ == "__main__":
    main()
