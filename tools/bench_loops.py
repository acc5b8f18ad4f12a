"""Bare PyTorch loops for ``tools/bench.py``: the model alone on random tensors already on the
device, in the four variants NCHW / channels_last x float32 / bf16 autocast. The fastest of them
is what the full pipeline (``fit``, ``diagnose``) is compared with.

Each variant is timed twice, in the order A B C D D C B A, and the two runs are averaged, so a
slow drift of the machine (other jobs, clocks) does not favour one variant.
"""

from __future__ import annotations

import contextlib
import time

import torch

VARIANTS = [(fmt, prec) for fmt in ("NCHW", "channels_last") for prec in ("float32", "bf16")]


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def _autocast(prec: str, device: str):
    if prec == "bf16":
        return torch.autocast(device_type=device, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _prepare(build, fmt: str, shape: tuple[int, ...], device: str, train: bool):
    """A fresh model (``build()``) and a random input batch in the variant's memory format."""
    torch.manual_seed(0)
    model = build().to(device).train(train)
    x = torch.rand(*shape, device=device)
    if fmt == "channels_last":
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    return model, x


def _timed(run, steps: int, warmup: int, device: str, batch: int) -> float:
    for _ in range(warmup):
        run()
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        run()
    _sync(device)
    return steps * batch / (time.perf_counter() - t0)


def _alternating(measure) -> dict[tuple[str, str], float]:
    """``measure(variant)`` images/s for every variant, averaged over the A..D D..A order."""
    rates: dict[tuple[str, str], list[float]] = {v: [] for v in VARIANTS}
    for variant in VARIANTS + VARIANTS[::-1]:
        rates[variant].append(measure(variant))
    return {v: sum(r) / len(r) for v, r in rates.items()}


def training_rates(build, shape: tuple[int, ...], device: str, steps: int,
                   warmup: int = 2) -> dict[tuple[str, str], float]:
    """Training images/s (forward, cross-entropy, backward, AdamW step) per variant."""
    def measure(variant):
        fmt, prec = variant
        model, x = _prepare(build, fmt, shape, device, train=True)
        y = torch.randint(0, 4, (shape[0],), device=device)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3)

        def step():
            with _autocast(prec, device):
                loss = torch.nn.functional.cross_entropy(model(x).float(), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        return _timed(step, steps, warmup, device, shape[0])
    return _alternating(measure)


def inference_rates(build, shape: tuple[int, ...], device: str, steps: int,
                    warmup: int = 2) -> dict[tuple[str, str], float]:
    """Inference images/s (forward under inference_mode, softmax) per variant."""
    def measure(variant):
        fmt, prec = variant
        model, x = _prepare(build, fmt, shape, device, train=False)

        @torch.inference_mode()
        def step():
            with _autocast(prec, device):
                model(x).float().softmax(1)
        return _timed(step, steps, warmup, device, shape[0])
    return _alternating(measure)


def report(title: str, rates: dict[tuple[str, str], float]) -> tuple[tuple[str, str], float]:
    """Print the four rates; return the fastest variant and its rate."""
    best = max(rates, key=rates.get)
    print(f"{title} (bare loop, random tensors on the device):")
    for (fmt, prec), rate in rates.items():
        mark = "  <- fastest" if (fmt, prec) == best else ""
        print(f"  {fmt:>13} {prec:>7}: {rate:8.1f} img/s{mark}")
    return best, rates[best]
