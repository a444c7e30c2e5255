"""Checkpoints: one self-describing dict (architecture, classes, palette, normalisation, weights).

Loaded with ``torch.load(weights_only=True)``: only tensors and plain containers, never pickled code.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import torch

from ..classes import CITYSCAPES_CLASSES, CITYSCAPES_PALETTE
from ..config import ModelConfig
from ..errors import FornetError
from ..validation import file_problem
from ..model import build_model
from ..model.encoders import IMAGENET_MEAN, IMAGENET_STD

# /2 stores the typed model config (backbone and head each their own mapping); /1 the first release's
# flat one, still read (config.migrate_flat_config). A release that reads only /1 refuses a /2 file
# in one line instead of misreading it.
FORMAT = "fornet_ros/2"
READABLE_FORMATS = ("fornet_ros/1", FORMAT)
DEFAULT_INPUT_SIZE = (512, 1024)  # (H, W) the network sees; outputs come back at the image's size
# Models shipped inside the package (fornet_ros/weights/, docs/model_card.md), by name: ``--checkpoint
# fast`` (CLI) or ``checkpoint: fast`` (node) picks one; no checkpoint means "default".
PACKAGED = {"default": "fornet_mnv2_streets.pt", "camvid": "fornet_mnv2_camvid.pt", "fast": "fornet_s_camvid.pt"}
DEFAULT_CHECKPOINT_NAME = PACKAGED["default"]


class CheckpointError(FornetError):
    """A checkpoint is missing, unreadable or inconsistent."""


@dataclass(frozen=True)
class ModelMeta:
    """What a model needs besides its weights to be used: class names and colours, input
    normalisation, and the input size it was trained for (H, W)."""

    classes: tuple[str, ...]
    palette: tuple[tuple[int, int, int], ...]
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    input_size: tuple[int, int] = DEFAULT_INPUT_SIZE

    def __post_init__(self):
        if len(self.classes) != len(self.palette):
            raise CheckpointError(f"{len(self.classes)} class names but {len(self.palette)} colours")
        if len(self.input_size) != 2 or min(self.input_size) < 8:
            raise CheckpointError(f"input_size must be (H, W) with both >= 8, got {tuple(self.input_size)}")

    @classmethod
    def default(cls, num_classes: int = 19, input_size=DEFAULT_INPUT_SIZE) -> "ModelMeta":
        """Cityscapes names and colours for 19 classes, generated ones otherwise (untrained models)."""
        if num_classes == len(CITYSCAPES_CLASSES):
            classes, palette = CITYSCAPES_CLASSES, CITYSCAPES_PALETTE
        else:
            classes = tuple(f"class_{i}" for i in range(num_classes))
            palette = tuple(((i * 67) % 256, (i * 131) % 256, (i * 199) % 256) for i in range(num_classes))
        return cls(tuple(classes), tuple(tuple(c) for c in palette), input_size=tuple(input_size))

    @classmethod
    def from_checkpoint(cls, ckpt: dict) -> "ModelMeta":
        norm = ckpt["normalization"]
        return cls(classes=tuple(ckpt["classes"]), palette=tuple(tuple(int(v) for v in c) for c in ckpt["palette"]),
                   mean=tuple(norm["mean"]), std=tuple(norm["std"]), input_size=tuple(int(v) for v in ckpt["input_size"]))


def default_checkpoint_path(name: str = "default") -> Path:
    """A model shipped inside the package (docs/model_card.md): ``name`` is one of :data:`PACKAGED`
    ("default": the streets model, all 19 classes from several datasets; "camvid": the previous
    default, CamVid only; "fast": the quickest on a CPU)."""
    return Path(str(resources.files("fornet_ros") / "weights" / PACKAGED[name]))


def resolve_checkpoint(path) -> Path:
    """A checkpoint argument as a path: None -> the default packaged model; a :data:`PACKAGED` name
    (that is not also an existing file) -> that packaged model; anything else -> itself."""
    if path is None or str(path) == "":
        return default_checkpoint_path()
    if str(path) in PACKAGED and not Path(path).exists():
        return default_checkpoint_path(str(path))
    return Path(path)


def make_checkpoint(model, meta: ModelMeta | None = None, **extra) -> dict:
    """The checkpoint dict of ``model`` + ``meta`` (default: :meth:`ModelMeta.default`); ``extra``
    keys (e.g. ``train``) are stored beside them."""
    meta = meta or ModelMeta.default(model.cfg.num_classes)
    if len(meta.classes) != model.cfg.num_classes:
        raise CheckpointError(f"{len(meta.classes)} class names for a {model.cfg.num_classes}-class model")
    ckpt = {
        "format": FORMAT,
        "model_config": model.cfg.to_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "classes": list(meta.classes),
        "palette": [list(map(int, c)) for c in meta.palette],
        "normalization": {"mean": list(meta.mean), "std": list(meta.std)},
        "input_size": list(meta.input_size),
    }
    ckpt.update(extra)
    return ckpt


def save_checkpoint(path, model, meta: ModelMeta | None = None, **extra) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(make_checkpoint(model, meta, **extra), path)
    return path


def read_checkpoint(path) -> dict:
    """Load and validate a checkpoint dict; raises :class:`CheckpointError` saying what is wrong."""
    path = resolve_checkpoint(path)
    if (problem := file_problem(path, "checkpoint")) is not None:  # missing, or a folder
        raise CheckpointError(problem)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for corrupt files
        # Not torch's text: for a file holding anything but tensors and plain containers it advises
        # retrying with weights_only=False, which would run code from the file.
        raise CheckpointError(f"cannot read checkpoint {path}: {_load_problem(path, e)}") from e
    if not isinstance(ckpt, dict) or ckpt.get("format") not in READABLE_FORMATS:
        raise CheckpointError(f"{path} is not a fornet_ros checkpoint ({' or '.join(READABLE_FORMATS)}; format="
                              f"{ckpt.get('format') if isinstance(ckpt, dict) else type(ckpt).__name__})")
    for key in ("model_config", "state_dict", "classes", "palette", "normalization", "input_size"):
        if key not in ckpt:
            raise CheckpointError(f"checkpoint {path} lacks '{key}'")
    n = ckpt["model_config"].get("num_classes")
    if len(ckpt["classes"]) != n or len(ckpt["palette"]) != n:
        raise CheckpointError(f"checkpoint {path}: model has {n} classes but {len(ckpt['classes'])} names "
                              f"and {len(ckpt['palette'])} colours")
    return ckpt


def _load_problem(path: Path, error: Exception) -> str:
    """What is wrong with a file torch.load(weights_only=True) refused, in this package's words."""
    import zipfile
    if path.stat().st_size == 0:
        return "the file is empty"
    if not zipfile.is_zipfile(path):
        return "not a PyTorch checkpoint (no zip archive inside: truncated, corrupt or another format)"
    if "weights_only" in str(error):
        return ("it holds Python objects other than tensors and plain containers; fornet_ros loads only "
                "weights-only checkpoints (written by fornet init or train), never code")
    return f"the archive is damaged or incomplete ({type(error).__name__})"


def model_from_checkpoint(ckpt: dict):
    try:
        cfg = ModelConfig.from_dict(ckpt["model_config"])
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"bad model_config in checkpoint: {e}") from e
    model = build_model(cfg)
    try:
        model.load_state_dict(ckpt["state_dict"], strict=True)
    except RuntimeError as e:
        raise CheckpointError(f"checkpoint weights do not match architecture {cfg.variant}: {e}") from e
    return model.eval()


def load_model(path=None) -> tuple:
    """The model (eval mode) and its metadata from a checkpoint (default: the packaged model)."""
    return model_and_meta(read_checkpoint(path), path)


def model_and_meta(ckpt: dict, path=None) -> tuple:
    """The model (eval mode) and its metadata from a checkpoint dict already read
    (:func:`read_checkpoint`); ``path`` names it in errors."""
    try:
        meta = ModelMeta.from_checkpoint(ckpt)
    except (TypeError, ValueError, KeyError) as e:
        raise CheckpointError(f"bad metadata in checkpoint {path}: {e}") from e
    return model_from_checkpoint(ckpt), meta
