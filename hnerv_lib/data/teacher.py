"""The CLIP teacher: which open_clip model and weights, checked before any work, built once per process.

A teacher is an open_clip model name and a weights source (:class:`TeacherSpec`):

- a built-in name (``ViT-B-32``) with ``pretrained`` = an open_clip tag (``openai``), ``auto`` (that
  tag when obtainable, else random init with a warning), a local weights file (``.pt``, ``.pth``,
  ``.bin``, ``.safetensors``), or ``None`` / ``"none"`` (a seeded random init, recorded as such);
- ``hf-hub:org/repo`` or ``local-dir:/path``: config and weights come with the name (open_clip's
  schemes), so ``pretrained`` stays ``None``. A hub repo is read from the local Hugging Face cache
  without any request when it is there; ``HF_HUB_OFFLINE=1`` and ``HF_HOME`` are honoured.

:func:`check_teacher` does everything that can fail before a frame is decoded (a missing or
mis-shaped weights file, an uncached repo while offline, unobtainable tag weights). A weights file is
identified by its basename and the first 12 hex digits of its sha256 (:func:`identity`): two different
files never share a target cache entry or a run.
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import hashlib
import json
import os
import socket
import threading
import urllib.request
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Optional, Union
from urllib.parse import urlsplit

import open_clip
import torch
import torch.nn.functional as F
from PIL import Image

PROBE_TIMEOUT_S = 3.0  # reachability probe: long enough for a slow DNS, short enough to fail fast


AUTO_TAG = "openai"  # the weights "auto" asks for

WEIGHT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors")  # what a local weights file may be
HF_HUB, LOCAL_DIR = "hf-hub:", "local-dir:"  # open_clip's name schemes: the name carries its weights
FINGERPRINT_HEX = 12  # sha256 hex digits that identify a weights file


Device = Union[str, torch.device]


class WeightsUnavailableError(RuntimeError):
    """Pretrained CLIP weights are neither cached locally nor downloadable."""


def _scheme(model: str) -> Optional[str]:
    return next((s for s in (HF_HUB, LOCAL_DIR) if model.startswith(s)), None)


def _looks_like_path(value: str) -> bool:
    return os.sep in value or "/" in value or value.endswith(WEIGHT_SUFFIXES) or os.path.isfile(value)


@dataclass(frozen=True)
class TeacherSpec:
    """Which CLIP teacher: open_clip model name, weights (tag, file, "auto" or None), seed of a random init.

    Construction checks names and paths (no file is read, no network): an unknown model, an unknown tag,
    or a missing weights file is a ValueError naming the value and what to give instead.
    """

    model: str = "ViT-B-32"
    pretrained: Optional[str] = "openai"  # None must be asked for: a random teacher is not a CLIP
    seed: int = 0  # only used for random init (then it is part of the cache key)

    def __post_init__(self) -> None:
        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            raise ValueError(f"seed must be an int, got {self.seed!r}")
        if not isinstance(self.model, str) or not self.model.strip():
            raise ValueError(f"teacher_model must be an open_clip model name, got {self.model!r}")
        if isinstance(self.pretrained, str) and self.pretrained.strip().lower() in ("", "none"):
            object.__setattr__(self, "pretrained", None)
        if self.pretrained is not None and not isinstance(self.pretrained, str):
            raise ValueError(f"teacher_pretrained must be a tag, a weights file or none, got {self.pretrained!r}")
        scheme = _scheme(self.model)
        if scheme is not None:
            self._check_scheme(scheme)
            return
        if self.model not in open_clip.list_models():
            close = difflib.get_close_matches(self.model, open_clip.list_models(), n=3)
            raise ValueError(f"unknown open_clip model {self.model!r}{f' (did you mean {close}?)' if close else ''}; "
                             f"give a name from open_clip.list_models(), or hf-hub:org/repo for a model on the "
                             f"Hugging Face hub")
        if self.pretrained in (None, "auto"):
            return
        tags = open_clip.list_pretrained_tags_by_model(self.model)
        if self.pretrained in tags:
            return
        choices = (f"an open_clip tag for {self.model} ({', '.join(tags) or 'none known'}), a weights file "
                   f"({', '.join(WEIGHT_SUFFIXES)}), or none for a seeded random init")
        if not _looks_like_path(self.pretrained):
            raise ValueError(f"teacher_pretrained {self.pretrained!r} is neither an open_clip tag for {self.model} "
                             f"nor a file; give {choices}")
        path = Path(self.pretrained).expanduser()
        if not path.is_file():
            raise ValueError(f"teacher_pretrained file {self.pretrained!r} does not exist (looked at "
                             f"{path.resolve()}); give {choices}")
        if path.suffix not in WEIGHT_SUFFIXES:
            raise ValueError(f"teacher_pretrained file {self.pretrained!r} is not a weights file "
                             f"({', '.join(WEIGHT_SUFFIXES)}); give {choices}")

    def _check_scheme(self, scheme: str) -> None:
        rest = self.model[len(scheme):]
        if scheme == HF_HUB and (rest.count("/") != 1 or not all(rest.split("/"))):
            raise ValueError(f"teacher_model {self.model!r}: an hf-hub name is hf-hub:<org>/<repo>")
        if scheme == LOCAL_DIR and not (Path(rest).expanduser() / open_clip.constants.HF_CONFIG_NAME).is_file():
            raise ValueError(f"teacher_model {self.model!r}: {rest!r} is not a folder holding "
                             f"{open_clip.constants.HF_CONFIG_NAME} (open_clip's local-dir layout)")
        if self.pretrained is not None:
            raise ValueError(f"teacher_model {self.model!r} brings its own weights; leave teacher_pretrained "
                             f"unset (none), got {self.pretrained!r}")

    @property
    def source(self) -> str:
        """Where the weights come from: random | auto | tag | file | hf-hub | local-dir."""
        scheme = _scheme(self.model)
        if scheme is not None:
            return scheme[:-1]
        if self.pretrained is None:
            return "random"
        if self.pretrained == "auto":
            return "auto"
        return "tag" if self.pretrained in open_clip.list_pretrained_tags_by_model(self.model) else "file"


@dataclass(frozen=True)
class Teacher:
    """A loaded open_clip model (eval, frozen), its val preprocess, tokenizer and identity."""

    model: torch.nn.Module
    preprocess: Callable[[Image.Image], torch.Tensor]
    tokenizer: Callable[[list[str]], torch.Tensor]
    embed_dim: int
    identity: dict  # the teacher actually used: model, pretrained, random_init, seed, weights, open_clip
    device: torch.device

    def describe(self) -> str:
        """Caption, e.g. ``ViT-B-32 / openai``."""
        return describe_identity(self.identity)


_TEACHERS: dict[tuple, Teacher] = {}  # in-process cache: building ViT-B-32 takes seconds


def describe_identity(identity: dict) -> str:
    """``ViT-B-32 / openai``, ``ViT-B-32 / my.pt (sha256 0123456789ab)`` or ``... / random init (seed 0) — ...``."""
    if identity["random_init"]:
        return f"{identity['model']} / random init (seed {identity['seed']}) — not a trained CLIP"
    weights = identity.get("weights")
    if weights:
        return f"{identity['model']} / {weights['file']} (sha256 {weights['sha256']})"
    return f"{identity['model']} / {identity['pretrained']}"


# --- weights files: where they are and what they are -------------------------------------------------

@functools.lru_cache(maxsize=32)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    """Hex sha256 of a file (memoised on path, size and mtime: a rewritten file is hashed again)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def fingerprint(path: Union[str, os.PathLike]) -> dict:
    """``{"file": basename, "sha256": first 12 hex digits}`` of a weights file."""
    st = os.stat(path)
    return {"file": os.path.basename(path), "sha256": _sha256(os.path.realpath(path), st.st_size, st.st_mtime_ns)[:FINGERPRINT_HEX]}


def _hub_cached(repo: str, name: str) -> Optional[str]:
    from huggingface_hub import try_to_load_from_cache

    hit = try_to_load_from_cache(repo, name)
    return hit if isinstance(hit, str) else None


def _scheme_files(spec: TeacherSpec) -> tuple[Optional[str], Optional[str]]:
    """(config file, weights file) of an hf-hub repo in the local HF cache or of a local-dir; None = absent."""
    rest = spec.model[len(_scheme(spec.model)):]
    consts = open_clip.constants
    if spec.source == "local-dir":
        folder = Path(rest).expanduser()
        found = sorted(p for p in folder.iterdir() if p.suffix in WEIGHT_SUFFIXES)
        preferred = [folder / n for n in (consts.HF_SAFE_WEIGHTS_NAME, consts.HF_WEIGHTS_NAME) if (folder / n).is_file()]
        weights = (preferred or found or [None])[0]
        return str(folder / consts.HF_CONFIG_NAME), (str(weights) if weights else None)
    if not open_clip.pretrained.has_hf_hub():
        raise WeightsUnavailableError(f"teacher_model {spec.model!r} needs huggingface_hub; pip install huggingface_hub")
    # open_clip takes the .safetensors file when the repo has one, else the .bin.
    weights = _hub_cached(rest, consts.HF_SAFE_WEIGHTS_NAME) or _hub_cached(rest, consts.HF_WEIGHTS_NAME)
    return _hub_cached(rest, consts.HF_CONFIG_NAME), weights


def weights_file(spec: TeacherSpec) -> Optional[str]:
    """The local weights file a spec loads (a file, or a cached hub / local-dir file); None otherwise."""
    if spec.source == "file":
        return str(Path(spec.pretrained).expanduser().resolve())
    if spec.source in ("hf-hub", "local-dir"):
        return _scheme_files(spec)[1]
    return None


def identity(spec: TeacherSpec) -> dict:
    """The teacher a resolved spec names, as recorded in caches, runs and captions (no model is built).

    ``pretrained`` is the tag, the file's basename, or None; ``weights`` the basename and sha256 prefix
    of the weights file when the spec loads one from disk.
    """
    found = weights_file(spec)
    label = os.path.basename(spec.pretrained) if spec.source == "file" else spec.pretrained
    return {"model": spec.model, "pretrained": label, "random_init": spec.source == "random", "seed": spec.seed,
            "weights": fingerprint(found) if found else None, "open_clip": open_clip.__version__}


def _weights_source(model: str, tag: str) -> tuple[Optional[str], str]:
    """(locally cached weights file or None, download host), following open_clip's choice of source."""
    cfg = open_clip.get_pretrained_cfg(model, tag)
    if cfg.get("file"):
        return (cfg["file"] if os.path.isfile(cfg["file"]) else None), ""
    if cfg.get("hf_hub") and open_clip.pretrained.has_hf_hub():
        repo, name = os.path.split(cfg["hf_hub"])
        name = name or open_clip.constants.HF_WEIGHTS_NAME
        # open_clip tries a .safetensors sibling first, then the named file.
        safe = open_clip.constants.HF_SAFE_WEIGHTS_NAME if name == open_clip.constants.HF_WEIGHTS_NAME else None
        for candidate in filter(None, (safe, name)):
            hit = _hub_cached(repo, candidate)
            if hit:
                return hit, ""
        return None, _hub_host()
    path = os.path.join(os.path.expanduser("~/.cache/clip"), os.path.basename(cfg["url"]))
    return (path if os.path.isfile(path) else None), urlsplit(cfg["url"]).hostname or ""


def _hub_host() -> str:
    """The hub's host, or "" when huggingface_hub is offline (HF_HUB_OFFLINE=1)."""
    from huggingface_hub import constants

    return "" if constants.is_offline_mode() else urlsplit(constants.ENDPOINT).hostname or ""


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


# --- the checks that read files or the cache, before any frame is decoded -----------------------------

_RANDOM_HINT = 'use pretrained=None (seeded random init) or pretrained="auto" (real weights when obtainable)'


def _check_fits(model: str, path: str) -> None:
    """A weights file loads strictly into ``model``'s architecture (checked on the meta device: no memory)."""
    try:
        with torch.device("meta"):
            shell = open_clip.create_model(model, pretrained=None, device="meta")
    except Exception:  # an architecture that cannot be built on meta: let the real load judge
        return
    # torch files load straight onto meta (nothing read into memory); safetensors are memory-mapped.
    device = "cpu" if path.endswith(".safetensors") else "meta"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "copying into a meta parameter is a no-op": the point here
            open_clip.load_checkpoint(shell, path, strict=True, device=device)
    except Exception as err:
        detail = " ".join(str(err).split())
        raise ValueError(f"teacher_pretrained file {path!r} does not hold {model} weights ({detail[:400]}); give "
                         f"the teacher_model the file was trained as (open_clip.list_models())") from err


def _check_scheme_available(spec: TeacherSpec) -> None:
    config, weights = _scheme_files(spec)
    if spec.source == "local-dir":
        if weights is None:
            raise ValueError(f"teacher_model {spec.model!r}: the folder holds no weights file "
                             f"({', '.join(WEIGHT_SUFFIXES)})")
        return
    if config and weights:
        return
    host = _hub_host()  # "" when offline: then no probe at all
    if not (host and _reachable(host)):
        from huggingface_hub import constants

        why = "HF_HUB_OFFLINE is set" if not host else f"{host} is unreachable (no internet?)"
        repo = spec.model[len(HF_HUB):]
        raise WeightsUnavailableError(
            f"teacher_model {spec.model!r} is not in the local Hugging Face cache ({constants.HF_HUB_CACHE}) and "
            f"{why}; on a machine with network run `huggingface-cli download {repo}` and copy that cache here "
            f"(or point HF_HOME at it), or {_RANDOM_HINT}")


@functools.lru_cache(maxsize=16)
def _fits(model: str, path: str, size: int, mtime_ns: int) -> None:
    _check_fits(model, path)  # memoised on the file's state: a rewritten file is checked again


def check_teacher(spec: TeacherSpec) -> None:
    """Raise now what loading ``spec`` would raise later: weights unobtainable or not for this model.

    Reads only local files and the local caches (and, for a tag or an uncached hub name, probes the
    host for ~3 s); "auto" and random init never fail. The file check is memoised per file state.
    """
    source = spec.source
    if source == "tag":
        local, host = _weights_source(spec.model, spec.pretrained)
        if local is None and not _reachable(host):
            raise WeightsUnavailableError(
                f"{spec.model} {spec.pretrained!r} weights are not in the local cache and {host or 'the hub'} "
                f"is unreachable (no internet?); {_RANDOM_HINT}")
    elif source == "file":
        path = weights_file(spec)
        st = os.stat(path)
        _fits(spec.model, path, st.st_size, st.st_mtime_ns)
    elif source in ("hf-hub", "local-dir"):
        _check_scheme_available(spec)


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


# --- building ---------------------------------------------------------------------------------------

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


def _create(spec: TeacherSpec) -> tuple[torch.nn.Module, Callable, Callable, int]:
    """(model, val transform, tokenizer, embed dim) on CPU for a resolved, checked spec."""
    source = spec.source
    if source == "random":
        # Seed only the CPU generator (models are built on CPU) and restore it afterwards.
        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(spec.seed)
            model, _, preprocess = open_clip.create_model_and_transforms(spec.model, pretrained=None)
    elif source == "file":
        path = weights_file(spec)
        try:
            model, _, preprocess = open_clip.create_model_and_transforms(spec.model, pretrained=path)
        except Exception as err:
            raise ValueError(f"could not load teacher_pretrained file {path!r} into {spec.model} ({err})") from err
    elif source in ("hf-hub", "local-dir"):
        cached = all(_scheme_files(spec))
        try:
            with _hub_offline(cached):
                model, _, preprocess = open_clip.create_model_and_transforms(spec.model)
        except Exception as err:
            raise WeightsUnavailableError(f"could not load {spec.model} ({err}); {_RANDOM_HINT}") from err
    else:
        local, _ = _weights_source(spec.model, spec.pretrained)
        # Tags trained with QuickGELU (openai) need it forced, or open_clip builds plain GELU and warns.
        quick_gelu = bool(open_clip.get_pretrained_cfg(spec.model, spec.pretrained).get("quick_gelu", False))
        try:
            with _hub_offline(local is not None):
                model, _, preprocess = open_clip.create_model_and_transforms(
                    spec.model, pretrained=spec.pretrained, force_quick_gelu=quick_gelu)
        except Exception as err:
            raise WeightsUnavailableError(f"could not load {spec.model} {spec.pretrained!r} weights ({err}); "
                                          f"{_RANDOM_HINT}") from err
    with _hub_offline(source == "hf-hub"):  # the tokenizer reads the (now cached) repo config
        tokenizer = open_clip.get_tokenizer(spec.model)
    return model, preprocess, tokenizer, _embed_dim(spec)


def _embed_dim(spec: TeacherSpec) -> int:
    if spec.source in ("hf-hub", "local-dir"):
        config = json.loads(Path(_scheme_files(spec)[0]).read_text())
        return int(config.get("model_cfg", config)["embed_dim"])
    return int(open_clip.get_model_config(spec.model)["embed_dim"])


def _build_teacher(spec: TeacherSpec, device: torch.device) -> Teacher:
    """Build (uncached) the teacher of a resolved spec on device."""
    model, preprocess, tokenizer, embed_dim = _create(spec)
    model = model.to(device).eval().requires_grad_(False)
    return Teacher(model, preprocess, tokenizer, embed_dim, identity(spec), device)


def _cached_teacher(spec: TeacherSpec, device: torch.device) -> Teacher:
    """Build a resolved spec's teacher once per process and device (a changed weights file is rebuilt)."""
    ident = identity(spec)
    slot = (spec.model, ident["pretrained"], json.dumps(ident["weights"]),
            spec.seed if ident["random_init"] else None, str(device))
    if slot not in _TEACHERS:
        _TEACHERS[slot] = _build_teacher(spec, device)
    return _TEACHERS[slot]


def load_teacher(spec: TeacherSpec = TeacherSpec(), device: Device = "cpu") -> Teacher:
    """The (in-process cached) teacher for spec on device; "auto" falls back to random init with a warning."""
    device = torch.device(device)
    resolved = resolve_spec(spec)
    check_teacher(resolved)
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
