"""The CLIP teacher: which open_clip model and weights, built once per process, and its text encoder."""

from __future__ import annotations

import contextlib
import functools
import os
import socket
import threading
import urllib.request
import warnings
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Callable, Optional, Union
from urllib.parse import urlsplit

import open_clip
import torch
import torch.nn.functional as F
from PIL import Image

if TYPE_CHECKING:
    pass


PROBE_TIMEOUT_S = 3.0  # reachability probe: long enough for a slow DNS, short enough to fail fast


AUTO_TAG = "openai"  # the weights "auto" asks for


Device = Union[str, torch.device]


class WeightsUnavailableError(RuntimeError):
    """Pretrained CLIP weights are neither cached locally nor downloadable."""


@dataclass(frozen=True)
class TeacherSpec:
    """Which CLIP teacher: open_clip model name, weights tag (None = seeded random init, "auto"), seed."""

    model: str = "ViT-B-32"
    pretrained: Optional[str] = "openai"  # None must be asked for: a random teacher is not a CLIP
    seed: int = 0  # only used for random init (then it is part of the cache key)

    def __post_init__(self) -> None:
        if self.model not in open_clip.list_models():
            raise ValueError(f"unknown open_clip model {self.model!r}; see open_clip.list_models()")
        tags = open_clip.list_pretrained_tags_by_model(self.model)
        wanted = AUTO_TAG if self.pretrained == "auto" else self.pretrained
        if wanted is not None and wanted not in tags:
            raise ValueError(f"open_clip has no weights {wanted!r} for {self.model}; known tags: {tags}")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            raise ValueError(f"seed must be an int, got {self.seed!r}")


@dataclass(frozen=True)
class Teacher:
    """A loaded open_clip model (eval, frozen), its val preprocess, tokenizer and identity."""

    model: torch.nn.Module
    preprocess: Callable[[Image.Image], torch.Tensor]
    tokenizer: Callable[[list[str]], torch.Tensor]
    embed_dim: int
    identity: dict  # the teacher actually used: model, pretrained, random_init, seed, open_clip
    device: torch.device

    def describe(self) -> str:
        """Caption, e.g. ``ViT-B-32 / openai``."""
        return describe_identity(self.identity)


_TEACHERS: dict[tuple, Teacher] = {}  # in-process cache: building ViT-B-32 takes seconds


def describe_identity(identity: dict) -> str:
    """``ViT-B-32 / openai`` or ``ViT-B-32 / random init (seed 0) — not a trained CLIP``."""
    if identity["random_init"]:
        return f"{identity['model']} / random init (seed {identity['seed']}) — not a trained CLIP"
    return f"{identity['model']} / {identity['pretrained']}"


def _weights_source(model: str, tag: str) -> tuple[Optional[str], str]:
    """(locally cached weights file or None, download host), following open_clip's choice of source."""
    cfg = open_clip.get_pretrained_cfg(model, tag)
    if cfg.get("file"):
        return (cfg["file"] if os.path.isfile(cfg["file"]) else None), ""
    if cfg.get("hf_hub") and open_clip.pretrained.has_hf_hub():
        from huggingface_hub import constants, try_to_load_from_cache

        repo, name = os.path.split(cfg["hf_hub"])
        name = name or open_clip.constants.HF_WEIGHTS_NAME
        # open_clip tries a .safetensors sibling first, then the named file.
        safe = open_clip.constants.HF_SAFE_WEIGHTS_NAME if name == open_clip.constants.HF_WEIGHTS_NAME else None
        for candidate in filter(None, (safe, name)):
            hit = try_to_load_from_cache(repo, candidate)
            if isinstance(hit, str):
                return hit, ""
        return None, "" if constants.is_offline_mode() else urlsplit(constants.ENDPOINT).hostname or ""
    path = os.path.join(os.path.expanduser("~/.cache/clip"), os.path.basename(cfg["url"]))
    return (path if os.path.isfile(path) else None), urlsplit(cfg["url"]).hostname or ""


@functools.lru_cache(maxsize=8)
def _reachable(host: str) -> bool:
    """Whether a TCP connection to host:443 (or the configured HTTPS proxy) opens within the probe timeout."""
    if not host:
        return False
    proxy = urllib.request.getproxies().get("https")
    address = (urlsplit(proxy).hostname, urlsplit(proxy).port or 443) if proxy else (host, 443)
    ok: list[bool] = []

    def probe() -> None:
        with contextlib.suppress(OSError):
            socket.create_connection(address, timeout=PROBE_TIMEOUT_S).close()
            ok.append(True)

    # A thread because DNS lookups ignore socket timeouts and can hang on a dead network.
    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(PROBE_TIMEOUT_S)
    return bool(ok)


def weights_obtainable(model: str, tag: str) -> bool:
    """True if the weights are cached locally or their download host answers; downloads nothing."""
    local, host = _weights_source(model, tag)
    return local is not None or _reachable(host)


def resolve_spec(spec: TeacherSpec) -> TeacherSpec:
    """The spec with "auto" replaced by "openai" (weights obtainable) or None (warned); downloads nothing."""
    if spec.pretrained != "auto":
        return spec
    if weights_obtainable(spec.model, AUTO_TAG):
        return replace(spec, pretrained=AUTO_TAG)
    warnings.warn(
        f'pretrained="auto": {spec.model} {AUTO_TAG} weights are not cached and cannot be downloaded '
        f"(offline?); using a RANDOM-INIT teacher (seed {spec.seed}), not a trained CLIP",
        stacklevel=2,
    )
    return replace(spec, pretrained=None)


@contextlib.contextmanager
def _hub_offline(active: bool):
    """Put huggingface_hub offline so open_clip takes its cached file without any HTTP request."""
    if not active or not open_clip.pretrained.has_hf_hub():
        yield
        return
    from huggingface_hub import constants

    saved, constants.HF_HUB_OFFLINE = constants.HF_HUB_OFFLINE, True
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = saved


def _create(spec: TeacherSpec) -> tuple[torch.nn.Module, Callable]:
    """open_clip model + val transform on CPU for a resolved spec (seeded random init or real weights)."""
    if spec.pretrained is None:
        # Seed only the CPU generator (models are built on CPU) and restore it afterwards.
        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(spec.seed)
            model, _, preprocess = open_clip.create_model_and_transforms(spec.model, pretrained=None)
        return model, preprocess
    local, host = _weights_source(spec.model, spec.pretrained)
    hint = 'use pretrained=None (seeded random init) or pretrained="auto" (real weights when obtainable)'
    if local is None and not _reachable(host):
        raise WeightsUnavailableError(
            f"{spec.model} {spec.pretrained!r} weights are not in the local cache and {host or 'the hub'} "
            f"is unreachable (no internet?); {hint}"
        )
    # Tags trained with QuickGELU (openai) need it forced, or open_clip builds plain GELU and warns.
    quick_gelu = bool(open_clip.get_pretrained_cfg(spec.model, spec.pretrained).get("quick_gelu", False))
    try:
        with _hub_offline(local is not None):
            model, _, preprocess = open_clip.create_model_and_transforms(
                spec.model, pretrained=spec.pretrained, force_quick_gelu=quick_gelu
            )
    except Exception as err:
        raise WeightsUnavailableError(f"could not load {spec.model} {spec.pretrained!r} weights ({err}); {hint}") from err
    return model, preprocess


def _build_teacher(spec: TeacherSpec, device: torch.device) -> Teacher:
    """Build (uncached) the teacher of a resolved spec on device."""
    model, preprocess = _create(spec)
    model = model.to(device).eval().requires_grad_(False)
    identity = {"model": spec.model, "pretrained": spec.pretrained, "random_init": spec.pretrained is None,
                "seed": spec.seed, "open_clip": open_clip.__version__}
    embed_dim = int(open_clip.get_model_config(spec.model)["embed_dim"])
    return Teacher(model, preprocess, open_clip.get_tokenizer(spec.model), embed_dim, identity, device)


def _cached_teacher(spec: TeacherSpec, device: torch.device) -> Teacher:
    """Build a resolved spec's teacher once per process and device."""
    slot = (spec.model, spec.pretrained, spec.seed if spec.pretrained is None else None, str(device))
    if slot not in _TEACHERS:
        _TEACHERS[slot] = _build_teacher(spec, device)
    return _TEACHERS[slot]


def load_teacher(spec: TeacherSpec = TeacherSpec(), device: Device = "cpu") -> Teacher:
    """The (in-process cached) teacher for spec on device; "auto" falls back to random init with a warning."""
    device = torch.device(device)
    resolved = resolve_spec(spec)
    try:
        return _cached_teacher(resolved, device)
    except WeightsUnavailableError as err:
        if spec.pretrained != "auto":
            raise
        # The probe said the host answers, but the download itself failed.
        warnings.warn(f'pretrained="auto": {err} -> using a RANDOM-INIT teacher (seed {spec.seed})', stacklevel=2)
        return _cached_teacher(replace(resolved, pretrained=None), device)


def encode_text(teacher: Teacher, texts: list[str]) -> torch.Tensor:
    """L2-normalized float32 text embeddings (N, D) on CPU."""
    if not texts or not all(isinstance(t, str) for t in texts):
        raise ValueError(f"encode_text needs a non-empty list of strings, got {texts!r}")
    with torch.no_grad():
        feats = teacher.model.encode_text(teacher.tokenizer(texts).to(teacher.device))
    return F.normalize(feats.float(), dim=-1).cpu()
