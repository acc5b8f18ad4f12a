"""Numeric precision and memory format for the hardware: one choice for training and inference.

``trainer.precision: auto`` becomes ``bf16-mixed`` where the device runs bf16 natively (a CPU with
AVX-512 BF16 or AMX, an Arm CPU with BF16, a CUDA GPU with bf16) and ``32-true`` elsewhere.
Mixed precision only changes the arithmetic inside the model (``torch.autocast``): weights,
checkpoints, logits handed on and probabilities stay float32, so a model trained in bf16 runs on
any machine. Models and batches are channels_last (NHWC), the layout oneDNN and cuDNN are fastest
in; 3-d models (the segmenter) use channels_last_3d.

Nothing here imports torch at module level: :func:`check_precision` runs while the config loads.
"""

from __future__ import annotations

import contextlib
import functools
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from mrparotid.errors import ConfigError

if TYPE_CHECKING:
    import torch

#: The values ``trainer.precision`` takes (Lightning's names). ``16-mixed`` needs a CUDA GPU.
PRECISIONS = ("auto", "32-true", "bf16-mixed", "16-mixed", "64-true")
#: Lightning's short spellings, accepted and normalised to :data:`PRECISIONS`.
ALIASES = {"32": "32-true", "bf16": "bf16-mixed", "16": "16-mixed", "64": "64-true"}
#: CPU feature flags (``/proc/cpuinfo``) that mean native bf16 arithmetic: x86 AVX-512 BF16 and
#: AMX, Arm BF16.
BF16_CPU_FLAGS = frozenset({"avx512_bf16", "amx_bf16", "bf16"})

_warned: set[str] = set()


def canonical_precision(value) -> str:
    """``value`` as one of :data:`PRECISIONS` (``16``, ``"bf16"``... normalised); ConfigError
    listing the valid values otherwise."""
    text = str(value).strip() if isinstance(value, (str, int)) and not isinstance(value, bool) else None
    text = ALIASES.get(text, text)
    if text not in PRECISIONS:
        raise ConfigError(f"trainer.precision is {value!r}, which mrparotid does not take",
                          fix=f"use one of {', '.join(PRECISIONS)} (auto: bf16-mixed where the "
                              "hardware runs bf16 natively, else 32-true)")
    return text


def device_type(accelerator: str | None = "auto", cuda: bool | None = None) -> str:
    """``"cpu"``, ``"cuda"`` or ``"mps"`` for a Lightning ``accelerator`` value (``cuda``: whether
    a CUDA GPU counts as present for ``auto``; None asks torch)."""
    acc = str(accelerator or "auto").lower()
    if acc in ("gpu", "cuda"):
        return "cuda"
    if acc != "auto":
        return acc
    import torch

    if torch.cuda.is_available() if cuda is None else cuda:
        return "cuda"
    if cuda is None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def cpu_flags(path: str | Path = "/proc/cpuinfo") -> frozenset[str]:
    """The CPU's feature flags from ``/proc/cpuinfo`` (x86 ``flags``, Arm ``Features``); empty
    where that file does not exist (macOS, Windows)."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() in ("flags", "features"):
            return frozenset(value.split())
    return frozenset()


@functools.lru_cache(maxsize=None)
def cpu_bf16_native() -> tuple[bool, str]:
    """Whether this CPU computes bf16 natively, and why: its ``/proc/cpuinfo`` flags, else
    torch's own cpuinfo check (any OS)."""
    found = sorted(cpu_flags() & BF16_CPU_FLAGS)
    if not found:
        import torch

        checks = {"avx512_bf16": "_is_avx512_bf16_supported", "amx_bf16": "_is_amx_tile_supported"}
        found = [flag for flag, name in checks.items() if getattr(torch.cpu, name, lambda: False)()]
    if found:
        return True, f"the CPU has native bf16 ({', '.join(found)})"
    return False, "the CPU has no native bf16 (no AVX-512 BF16, AMX or Arm BF16)"


def cuda_bf16_native() -> tuple[bool, str]:
    """Whether the current CUDA GPU computes bf16 natively (compute capability >= 8.0), and why."""
    import torch

    if not torch.cuda.is_available():
        return False, "no CUDA GPU is available"
    try:
        ok = torch.cuda.is_bf16_supported(including_emulation=False)
    except TypeError:   # older torch: no emulation argument
        ok = torch.cuda.is_bf16_supported()
    major, minor = torch.cuda.get_device_capability()
    return ok, (f"CUDA GPU {torch.cuda.get_device_name()} (compute capability {major}.{minor}) "
                f"{'has' if ok else 'has no'} native bf16")


def bf16_native(device: str) -> tuple[bool, str]:
    """Native bf16 on a :func:`device_type` (``cpu``, ``cuda``; others: no), and why."""
    if device == "cpu":
        return cpu_bf16_native()
    if device == "cuda":
        return cuda_bf16_native()
    return False, f"bf16 is not checked on {device}"


def resolve_precision(requested="auto", accelerator: str | None = "auto", *,
                      cuda: bool | None = None) -> tuple[str, str]:
    """The precision to run at and a short reason, e.g. ``("bf16-mixed", "auto on cpu: the CPU
    has native bf16 (amx_bf16, avx512_bf16)")``. Explicit values are kept; ``16-mixed`` off CUDA
    is a ConfigError."""
    precision = canonical_precision(requested)
    device = device_type(accelerator, cuda)
    if precision == "16-mixed" and device != "cuda":
        raise ConfigError(f"trainer.precision is 16-mixed but training runs on {device}: float16 "
                          "mixed precision needs a CUDA GPU",
                          fix="use --trainer.precision auto (bf16-mixed where the CPU has it), "
                              "bf16-mixed or 32-true")
    if precision != "auto":
        why = "set in trainer.precision"
        if precision == "bf16-mixed":
            native, detail = bf16_native(device)
            why += "" if native else f"; {detail}, so bf16 is emulated and slow"
        return precision, why
    native, detail = bf16_native(device)
    return ("bf16-mixed" if native else "32-true"), f"auto on {device}: {detail}"


def check_precision(trainer_cfg: dict) -> str:
    """Config validation of ``trainer.precision`` (returns its canonical value): unknown values
    and ``16-mixed`` off CUDA are ConfigErrors; ``bf16-mixed`` without native bf16 prints a
    one-line warning (once per process) that it will be emulated and slow."""
    precision = canonical_precision(trainer_cfg.get("precision", "auto"))
    accelerator = trainer_cfg.get("accelerator", "auto")
    if precision == "16-mixed":
        resolve_precision(precision, accelerator)          # a ConfigError off CUDA
    elif precision == "bf16-mixed":
        native, detail = bf16_native(device_type(accelerator))
        if not native and detail not in _warned:
            _warned.add(detail)
            print(f"mrparotid: warning: trainer.precision bf16-mixed: {detail}, so bf16 will be "
                  "emulated and slow (about 3x slower than 32-true) -> use --trainer.precision "
                  "auto or 32-true", file=sys.stderr)
    return precision


def autocast_dtype(precision: str, device: str) -> torch.dtype | None:
    """The autocast dtype of a resolved precision on ``device`` (None: run in float32). bf16 is
    used only where the device has it natively, float16 only on CUDA."""
    import torch

    if precision == "bf16-mixed" and bf16_native(device)[0]:
        return torch.bfloat16
    if precision == "16-mixed" and device == "cuda":
        return torch.float16
    return None


def inference_autocast(precision: str, device: str | torch.device):
    """Context manager for inference at ``precision`` (resolved, or ``auto``) on ``device``:
    ``torch.autocast`` for bf16/float16, else nothing. Outputs should be cast back with
    ``.float()`` before softmax."""
    import torch

    device = torch.device(device).type
    if precision == "auto":
        precision = resolve_precision("auto", device)[0]
    dtype = autocast_dtype(precision, device)
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device, dtype=dtype)


def memory_format(ndim: int) -> torch.memory_format:
    """channels_last for 4-d (N, C, H, W) tensors, channels_last_3d for 5-d, else contiguous."""
    import torch

    return {4: torch.channels_last, 5: torch.channels_last_3d}.get(ndim, torch.contiguous_format)


def channels_last(x: torch.Tensor) -> torch.Tensor:
    """A batch in the channels_last layout (same shape, dtype, values; no copy if already)."""
    return x.contiguous(memory_format=memory_format(x.ndim))


def model_channels_last(model: torch.nn.Module, spatial_dims: int = 2) -> torch.nn.Module:
    """``model`` (in place) with its conv weights channels_last (``spatial_dims`` 2) or
    channels_last_3d (3). State dicts keep their values, so checkpoints load either way."""
    return model.to(memory_format=memory_format(spatial_dims + 2))
