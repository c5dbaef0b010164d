"""Which numeric precision and memory format to train in, chosen by measuring the machine.

``precision: auto`` exists because bf16 autocast is a large win on some CPUs and a large loss on
others: with avx512_bf16 or AMX units a decoder step runs about 1.7x faster in bf16, while on an
AVX2-only CPU bf16 convolutions leave oneDNN's jit kernels and run 12-20x *slower* than fp32. The
flags in ``/proc/cpuinfo`` do not settle it (oneDNN can be capped by ``ONEDNN_MAX_CPU_ISA``), so on
a CPU the choice is measured:

* **probe** — forward + backward of a small conv / pixel-shuffle stack shaped like the HNeRV
  decoder, in fp32 and bf16, each with contiguous and channels-last tensors (about a second in all);
* **cache** — the timings are stored in one place per machine, :func:`probe_dir` (``$HNERV_PROBE_DIR``,
  else ``~/.cache/hnerv-clip/precision``; not a profile's ``cache_dir``: a run id and the run's own
  setup must read the same probe wherever they run), as ``<key>.json``, keyed by the CPU model, core
  count, torch version and the two variables that cap the kernels (``ONEDNN_MAX_CPU_ISA``,
  ``ATEN_CPU_CAPABILITY``), and kept in memory for the process;
* **rule** — bf16 (or channels-last) is chosen only when it is at least ``MARGIN`` faster than the
  alternative; otherwise fp32 / contiguous, the numerically safer choice.

On CUDA, ``auto`` is bf16 + channels-last where the GPU supports bf16, fp32 otherwise; other devices
get fp32. :func:`resolve` returns a :class:`Resolved` with the concrete choice and a one-line reason
(``"probe: fp32 21 ms, fp32+CL 24 ms, bf16 255 ms, bf16+CL 262 ms -> fp32"``) that runs, benchmarks
and reports record.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Union

import torch
from torch import nn

from hnerv_lib.utils import io

PRECISIONS = ("auto", "fp32", "bf16")
CHANNELS_LAST = ("auto", True, False)
MARGIN = 0.05  # bf16 / channels-last must be this much faster (fraction of the time) to be chosen
KERNEL_ENV = ("ONEDNN_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY")  # variables that change which kernels run
PROBE_VERSION = 1  # bump when the probe's workload or rule changes: old cache files are then ignored
PROBE_DIR_ENV = "HNERV_PROBE_DIR"  # where the probe's cache files live (default: probe_dir())

ChannelsLast = Union[bool, str]


class PrecisionError(ValueError):
    """A precision or channels_last value that is not one of the allowed ones."""


def check_precision(value: object) -> str:
    """``value`` if it is one of :data:`PRECISIONS`, else one error naming the allowed values."""
    if value not in PRECISIONS:
        raise PrecisionError(f"precision must be one of {', '.join(PRECISIONS)}; got {value!r} "
                             "(fp16 is not offered: it needs loss scaling and gains nothing on CPU)")
    return value  # type: ignore[return-value]


def check_channels_last(value: object) -> ChannelsLast:
    """``value`` if it is ``"auto"``, ``True`` or ``False``, else one error naming the allowed values."""
    if not (value == "auto" or isinstance(value, bool)):
        raise PrecisionError(f"channels_last must be auto, true or false; got {value!r}")
    return value  # type: ignore[return-value]


@dataclass(frozen=True)
class Resolved:
    """A concrete choice: ``precision`` is "fp32" or "bf16", ``channels_last`` a bool, and why."""

    precision: str
    channels_last: bool
    reason: str

    def autocast(self, device: torch.device | str):
        """The autocast context of this precision on ``device`` (a no-op context for fp32)."""
        device_type = torch.device(device).type
        return torch.autocast(device_type, dtype=torch.bfloat16, enabled=self.precision == "bf16")

    def label(self) -> str:
        """``"bf16+CL"`` style short name."""
        return self.precision + ("+CL" if self.channels_last else "")


def cpu_model() -> str:
    """The CPU's model string (``/proc/cpuinfo``), or what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16")  # what decides a CPU's kernels here


def cpu_flags() -> str:
    """Which of :data:`FLAGS` this CPU has (``/proc/cpuinfo``), space-separated ("unknown" off Linux), plus
    any kernel override in the environment (``ONEDNN_MAX_CPU_ISA=AVX2``) that makes it run as a lesser CPU."""
    try:
        text = Path("/proc/cpuinfo").read_text()
        have = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
        found = " ".join(f for f in FLAGS if f in have) or "none of " + ", ".join(FLAGS)
    except OSError:
        found = "unknown"
    forced = [f"{name}={os.environ[name]}" for name in KERNEL_ENV if os.environ.get(name)]
    return found + (f" (kernels limited: {', '.join(forced)})" if forced else "")


def machine_key() -> dict[str, object]:
    """What the CPU probe's answer depends on; its hash names the cache file.

    Not the thread count: a run that sets ``threads`` must resolve as the run id computed before it did.
    """
    return {"probe_version": PROBE_VERSION, "cpu": cpu_model(), "cores": os.cpu_count(), "torch": torch.__version__,
            **{name: os.environ.get(name, "") for name in KERNEL_ENV}}


# --- the probe ---------------------------------------------------------------------------------

def _probe_net() -> nn.Module:
    """The last two stages of an HNeRV decoder in miniature: narrow 5x5 conv -> pixel shuffle -> GELU, then RGB.

    Narrow wide-kernel convolutions at high resolution are where the decoder spends its time; a wider
    3x3 stack ranked channels-last the other way round from the real model under AVX2 kernels.
    """
    gen = torch.Generator().manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(24, 20 * 4, 5, padding=2), nn.PixelShuffle(2), nn.GELU(),
        nn.Conv2d(20, 16 * 4, 5, padding=2), nn.PixelShuffle(2), nn.GELU(),
        nn.Conv2d(16, 3, 3, padding=1),
    )
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.05)
    return net


def _step_ms(net: nn.Module, x: torch.Tensor, bf16: bool) -> float:
    start = time.perf_counter()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        out = net(x)
    out.float().square().mean().backward()
    return (time.perf_counter() - start) * 1e3


def measure_cpu(repeats: int = 5) -> dict[str, float]:
    """Median ms of a forward + backward step for fp32 / bf16, contiguous / channels-last ("+CL").

    The four settings are timed round-robin, so a drift in the machine's speed hits them alike. A
    setting whose first timed step is over 3x the fastest is not repeated: under AVX2 kernels a bf16
    step is ~10x slower, and one step already says so.
    """
    x0 = torch.randn(2, 24, 20, 40, generator=torch.Generator().manual_seed(1))
    cases = {}
    for bf16 in (False, True):
        for cl in (False, True):
            fmt = torch.channels_last if cl else torch.contiguous_format
            net = _probe_net().to(memory_format=fmt)
            x = x0.to(memory_format=fmt).requires_grad_(True)
            _step_ms(net, x, bf16)  # warm-up: oneDNN builds its kernels here
            cases[("bf16" if bf16 else "fp32") + ("+CL" if cl else "")] = (net, x, bf16)
    runs = {name: [_step_ms(*case)] for name, case in cases.items()}
    fastest = min(r[0] for r in runs.values())
    alive = [name for name in cases if runs[name][0] < 3 * fastest]
    for _ in range(repeats - 1):
        for name in alive:
            runs[name].append(_step_ms(*cases[name]))
    return {name: statistics.median(r) for name, r in runs.items()}


_MEMO: dict[str, dict[str, float]] = {}


def adopt_probe(times: dict[str, float]) -> None:
    """Use ``times`` as this machine's probe in this process (a local job takes its driver's, so both
    resolve "auto" alike: two probes of a close call, e.g. channels_last by 1 ms, may disagree)."""
    _MEMO[io.stable_hash(machine_key(), length=12)] = {k: float(v) for k, v in times.items()}


def probe_dir() -> Path:
    """The one folder of this machine's probe files: ``$HNERV_PROBE_DIR``, else the user's cache
    (``$XDG_CACHE_HOME`` or ``~/.cache``) ``/hnerv-clip/precision``.

    One place, whatever the working directory or the profile's ``cache_dir``: two probes of a close
    call (channels_last by 1 ms under the AVX2 kernels) may disagree, and a run id computed from one
    file would then not match the run that another file set up.
    """
    if os.environ.get(PROBE_DIR_ENV):
        return Path(os.environ[PROBE_DIR_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "hnerv-clip" / "precision"


def probe_cpu() -> dict[str, float]:
    """The probe's timings for this machine: from memory, else from its file in :func:`probe_dir`, else measured."""
    key = machine_key()
    name = io.stable_hash(key, length=12)
    if name in _MEMO:
        return _MEMO[name]
    path = probe_dir() / f"{name}.json"
    times = None
    if path.is_file():
        try:
            stored = io.load_json(path)
            if stored.get("key") == key:
                times = {k: float(v) for k, v in stored["ms"].items()}
        except (ValueError, KeyError, TypeError, AttributeError):
            times = None  # a damaged cache file is measured again and overwritten
    if times is None:
        times = measure_cpu()
        io.save_json({"key": key, "ms": times}, path)
    _MEMO[name] = times
    return times


# --- the decision ------------------------------------------------------------------------------

def choose(times: dict[str, float], precision: str = "auto", channels_last: ChannelsLast = "auto") -> Resolved:
    """Pick among the probed settings that ``precision`` / ``channels_last`` allow, with :data:`MARGIN`."""
    precisions = ["fp32", "bf16"] if precision == "auto" else [precision]
    layouts = [False, True] if channels_last == "auto" else [bool(channels_last)]

    def ms(p: str, cl: bool) -> float:
        return times[p + ("+CL" if cl else "")]

    def best_layout(p: str) -> bool:
        if len(layouts) == 1:
            return layouts[0]
        return ms(p, True) < (1 - MARGIN) * ms(p, False)

    p = precisions[0]
    if len(precisions) == 2 and ms("bf16", best_layout("bf16")) < (1 - MARGIN) * ms("fp32", best_layout("fp32")):
        p = "bf16"
    cl = best_layout(p)
    order = ("fp32", "fp32+CL", "bf16", "bf16+CL")  # fixed, whatever order the cache file kept
    shown = ", ".join(f"{k} {times[k]:.0f} ms" for k in order if k in times)
    return Resolved(p, cl, f"probe: {shown} -> {p}{'+CL' if cl else ''}")


def resolve(precision: str = "auto", channels_last: ChannelsLast = "auto", device: torch.device | str = "cpu") -> Resolved:
    """The concrete precision and memory format for ``device``; "auto" parts are decided as above."""
    check_precision(precision)
    check_channels_last(channels_last)
    if precision != "auto" and channels_last != "auto":
        return Resolved(precision, bool(channels_last), "set explicitly")
    device = torch.device(device)
    if device.type == "cpu":
        return choose(probe_cpu(), precision, channels_last)
    if device.type == "cuda":
        bf16_ok = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
        p = precision if precision != "auto" else ("bf16" if bf16_ok else "fp32")
        cl = bool(channels_last) if channels_last != "auto" else p == "bf16"
        name = torch.cuda.get_device_name(device) if torch.cuda.is_available() else "no CUDA device"
        return Resolved(p, cl, f"cuda ({name}): bf16 {'supported' if bf16_ok else 'not supported'}")
    p = "fp32" if precision == "auto" else precision
    cl = False if channels_last == "auto" else bool(channels_last)
    return Resolved(p, cl, f"device {device.type}: no probe, fp32 default")


def describe(resolved: Resolved) -> dict[str, object]:
    """JSON-able record of a choice (for summaries, benchmarks and provenance)."""
    return asdict(resolved)


def forget_memo() -> int:
    """Drop the in-process memo (tests); returns how many entries it held."""
    n = len(_MEMO)
    _MEMO.clear()
    return n
