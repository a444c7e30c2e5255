"""Segmenter: checkpoint -> labels / importance / confidence at the input image's resolution.

The only entry point the ROS node, the CLI and users' scripts need::

    seg = Segmenter()                       # the packaged default model, auto device
    result = seg(rgb_uint8_hxwx3)           # or seg([img_cam0, img_cam1]) for a batch
    result.labels, result.importance, result.confidence
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from ..config import BACKENDS, PROCESSING, RESIZE_MODES
from ..errors import FornetError
from ..model.focus import AdaptiveK
from ..validation import check_choice, check_onnx_model, check_size, check_topk
from . import device_ops, host_ops
from .checkpoint import PACKAGED, ModelMeta, load_model
from .cuda_graphs import GraphCache, graph_key
from .path_choice import DEFAULT_KS, FocusPaths
from .runtime import OrtRunner, TorchRunner, resolve_device, resolve_precision  # noqa: F401 (re-exported)



class Segmentation:
    """Per-image outputs at the image's size; an output not asked for (``outputs=``) is None.

    ``labels`` (H, W) uint8 class IDs; ``importance`` (H, W) float32 in [0, 1], the selector's
    region importance; ``confidence`` (H, W) float32 in [0, 1], the max softmax probability;
    ``selected`` (H, W) bool, inside a region refined by the Top-K branches.

    The two float maps may be born as uint8 (round(255 m), what the node publishes): the device
    path computes them on the GPU and brings back a quarter of the bytes. The float view is then
    made on first access (within 0.5/255 of the float computation); :meth:`map_u8` gives the
    uint8 map either way, converting a float one once."""

    MAPS = ("importance", "confidence")

    def __init__(self, labels, importance=None, confidence=None, selected=None, *, importance_u8=None,
                 confidence_u8=None):
        self.labels, self.selected = labels, selected
        self._float = {"importance": importance, "confidence": confidence}
        self._u8 = {"importance": importance_u8, "confidence": confidence_u8}

    importance = property(lambda self: self._as_float("importance"))
    confidence = property(lambda self: self._as_float("confidence"))

    def _as_float(self, name: str):
        if self._float[name] is None and self._u8[name] is not None:
            self._float[name] = self._u8[name] * np.float32(1 / 255)
        return self._float[name]

    def map_u8(self, name: str):
        """``importance`` or ``confidence`` as uint8 round(255 m), or None when not computed."""
        if self._u8[name] is None and self._float[name] is not None:
            self._u8[name] = np.rint(self._float[name] * 255).astype(np.uint8)
        return self._u8[name]

    def __repr__(self):
        have = [n for n in self.MAPS if self._float[n] is not None or self._u8[n] is not None]
        have += ["selected"] if self.selected is not None else []
        return f"Segmentation(labels {self.labels.shape}, maps: {', '.join(have) or 'none'})"


OUTPUTS = frozenset({"importance", "confidence", "selected"})  # besides labels, always computed


def validate_image(img, name: str = "image") -> np.ndarray:
    """Check one RGB image; returns it as (H, W, 3). Raises FornetError (a ValueError) that says what is wrong."""
    if not isinstance(img, np.ndarray):
        raise FornetError(f"{name}: expected a numpy array, got {type(img).__name__}")
    if img.ndim == 2:
        raise FornetError(f"{name}: got a single-channel {img.shape} array; expected (H, W, 3) RGB")
    if img.ndim != 3 or img.shape[2] != 3:
        raise FornetError(f"{name}: expected shape (H, W, 3) RGB, got {img.shape}")
    if img.shape[0] == 0 or img.shape[1] == 0:
        raise FornetError(f"{name}: empty image {img.shape}")
    if img.dtype == np.uint8:
        return img
    if img.dtype in (np.float32, np.float64):
        if not np.isfinite(img).all():
            raise FornetError(f"{name}: contains NaN or infinite values")
        if img.min() < 0 or img.max() > 1:
            raise FornetError(f"{name}: float images must be in [0, 1], got [{img.min():.3g}, {img.max():.3g}]")
        return img
    raise FornetError(f"{name}: dtype {img.dtype} not supported; use uint8 (0-255) or float32 in [0, 1]")


class Segmenter:
    """FoR-Net inference on RGB images of any size; outputs come back at the image's size.

    ``Segmenter(model, meta)`` wraps a torch model and its :class:`~fornet_ros.inference.checkpoint.ModelMeta`;
    ``Segmenter.from_checkpoint(path)`` loads a ``.pt`` checkpoint (``None``: the packaged model), an
    exported ``.onnx`` file (ONNX Runtime backend; K and input size fixed at export), or another
    toolbox's ``.onnx`` with its description YAML beside it (:mod:`fornet_ros.inference.model_description`:
    its own classes; no importance or selected maps, and no confidence if it outputs labels).

    ``processing``: where resizing/normalising and upsampling/arg-maxing run - ``torch`` ops on the
    model's device (:mod:`fornet_ros.inference.device_ops`: the frame stays on the GPU, only uint8 maps come
    back), ``opencv`` on the CPU, or ``auto`` (torch on CUDA, OpenCV on the CPU, where it is the
    faster). ``cuda_graphs``: on CUDA with torch processing, replay the network from a captured
    graph per batch shape and K (:mod:`fornet_ros.inference.cuda_graphs`), at most ``max_graphs`` kept."""

    def __init__(self, model, meta: ModelMeta, device: str = "auto", precision: str = "auto",
                 input_size: tuple[int, int] | None = None, topk_ratio: float | None = None,
                 channels_last: bool = True, resize_mode: str = "stretch", runner=None,
                 processing: str = "auto", cuda_graphs: bool = True, max_graphs: int = 8):
        check_choice("resize_mode", resize_mode, RESIZE_MODES)
        check_choice("processing", processing, PROCESSING)
        self.resize_mode = resize_mode
        self.runner = runner if runner is not None else TorchRunner(model, device, precision, channels_last)
        self.meta = meta
        self.classes = list(meta.classes)
        self.palette = [tuple(c) for c in meta.palette]
        self.mean = np.asarray(meta.mean, np.float32) * 255.0
        self.std = np.asarray(meta.std, np.float32) * 255.0
        size = check_size("input_size", input_size) if input_size is not None else tuple(meta.input_size)
        if self.backend == "onnxruntime" and not self.runner.any_input_size and size != tuple(meta.input_size):
            if self.runner.io is not None:
                raise FornetError(f"this ONNX model's graph is fixed to input {tuple(meta.input_size)}, not {size}")
            raise FornetError(f"this ONNX model was exported for input {tuple(meta.input_size)}, not {size}; "
                             "re-export with `fornet export --size H W`")
        self.input_size = (int(size[0]), int(size[1]))
        self.topk_ratio = topk_ratio
        # the device path: torch ops for pre/post-processing, CUDA graphs for the network
        on_device = hasattr(self.runner, "run_tensor")  # a torch runner hands out device tensors
        if processing == "torch" and not on_device:
            raise FornetError(f"processing 'torch' needs the torch backend, not {self.backend}")
        cuda = on_device and self.device.type == "cuda"
        self.processing = processing if processing != "auto" else ("torch" if cuda else "opencv")
        if max_graphs < 1:
            raise FornetError(f"max_graphs must be >= 1, got {max_graphs}")
        self.graphs = GraphCache(max_graphs) if cuda_graphs and cuda and self.processing == "torch" else None
        self.paths = FocusPaths()  # mode "auto": the cheaper focus path, once warmup() measured them
        if self.processing == "torch":
            self._upload = device_ops.Uploader(self.device)
            self._mean_t = torch.tensor(self.mean, device=self.device)
            self._std_t = torch.tensor(self.std, device=self.device)

    @classmethod
    def from_checkpoint(cls, path=None, backend: str = "auto", device: str = "auto", precision: str = "auto",
                        **kw) -> "Segmenter":
        """Load a model file. ``backend``: torch (a ``.pt`` checkpoint), onnxruntime (a ``.onnx``
        from ``fornet export``), auto (by the file's suffix), or fastest (a ``.pt`` on the CPU: the
        fastest of torch and its cached ONNX export measured here, int8 too with ``precision``
        int8 and ``calibration`` frames; :mod:`fornet_ros.inference.backends`)."""
        check_choice("backend", backend, BACKENDS)
        if backend == "fastest":
            if not str(path).endswith(".onnx"):
                from .backends import fastest
                return fastest(path, device, precision, **kw)
            backend = "auto"  # an ONNX file has one backend; fastest's own options have nothing to choose
            kw = {n: v for n, v in kw.items() if n not in ("log", "torch_factor", "runs", "calibration")}
        is_onnx = path is not None and str(path).endswith(".onnx")
        if backend == "onnxruntime" or (backend == "auto" and is_onnx):
            check_onnx_model(path, PACKAGED)  # a .pt (the packaged model too): say how to export it
            runner = OrtRunner(path, device, precision, input_size=kw.get("input_size"))  # its first run: that size
            return cls(None, runner.meta, runner=runner, **kw)
        if is_onnx:
            raise FornetError(f"{path} is an ONNX model: use backend onnxruntime (or auto)")
        model, meta = load_model(path)
        return cls(model, meta, device=device, precision=precision, **kw)

    backend = property(lambda self: self.runner.backend)
    device = property(lambda self: self.runner.device)
    dtype = property(lambda self: self.runner.dtype)
    provider = property(lambda self: self.runner.provider, doc="torch device or ONNX Runtime execution provider")
    model = property(lambda self: getattr(self.runner, "model", None), doc="the torch model (torch backend)")
    cfg = property(lambda self: self.runner.cfg, doc="the model's ModelConfig")
    runtime = property(lambda self: getattr(self.runner, "last", None) or self.backend,
                       doc="the runtime that ran the last call: the backend's, or with backend fastest "
                           "onnxruntime at its K and torch at any other (HybridRunner.last)")

    @property
    def topk_ratio(self) -> float:
        """K in use. Setting ``None`` or a negative value selects the model's trained K (the one
        place this rule lives: the node and the CLI pass their "checkpoint's K" values through)."""
        return self._topk

    @topk_ratio.setter
    def topk_ratio(self, value):
        """A float K, None / negative (the model's K), or an :class:`AdaptiveK` rule (torch backend)."""
        self._topk = self.resolve_topk(value)

    def resolve_topk(self, value):
        """The K that setting ``value`` would put in use, or the error it would raise - without
        applying it (the node validates run-time changes with it before taking them over)."""
        if isinstance(value, AdaptiveK):
            if self.backend != "torch":
                raise FornetError("adaptive K needs the torch backend (the ONNX graph has K fixed at export)")
            return value
        if value is None or float(check_topk(value)) < 0:
            value = self.runner.default_topk
        value = float(value)
        if self.backend == "onnxruntime" and getattr(self.runner, "io", None) is not None and value != 1.0:
            raise FornetError(f"{self.cfg.variant} is not a FoR-Net model: it has no Top-K regions (K is 1; "
                              "leave topk_ratio at -1)")
        if self.backend == "onnxruntime" and abs(value - self.runner.default_topk) > 1e-9:
            raise FornetError(f"this ONNX model was exported with K = {self.runner.default_topk:g}; re-export "
                             f"with `fornet export --topk {value:g}` to run another K")
        return value

    def content_box(self, size: tuple[int, int]) -> tuple[int, int, int, int]:
        """(y0, x0, h, w): where an image of ``size`` lands in the network input. ``stretch`` fills
        the input; ``letterbox`` keeps the aspect ratio, centred, the rest padded with the mean colour."""
        h, w = self.input_size
        if self.resize_mode == "stretch":
            return 0, 0, h, w
        s = min(h / size[0], w / size[1])
        nh, nw = min(h, max(1, round(size[0] * s))), min(w, max(1, round(size[1] * s)))
        return (h - nh) // 2, (w - nw) // 2, nh, nw

    def preprocess(self, images: list[np.ndarray]) -> np.ndarray:
        """Resize to the input size and normalise: a float32 batch (N, 3, H, W) whose memory is NHWC
        (letterbox padding is 0 after normalisation, i.e. the mean colour)."""
        h, w = self.input_size
        # every pixel is written when the images fill the input (stretch): no zeroing pass over the batch
        batch = (np.empty if self.resize_mode == "stretch" else np.zeros)((len(images), h, w, 3), np.float32)
        for i, img in enumerate(images):
            y0, x0, nh, nw = self.content_box(img.shape[:2])
            img = host_ops.resize_frame(img, (nh, nw))  # before the float conversion: 4x fewer pixels
            host_ops.normalise(img, self.mean, self.std, batch[i, y0:y0 + nh, x0:x0 + nw])
        return batch.transpose(0, 3, 1, 2)

    def __call__(self, images, mode: str = "auto", outputs=OUTPUTS):
        """One image (H, W, 3) -> :class:`Segmentation`; a list -> a list (one batched forward).
        ``outputs``: which of importance, confidence, selected to compute (labels always): a node
        with nobody subscribed to a map skips its post-processing."""
        single, outputs = isinstance(images, np.ndarray), frozenset(outputs)
        imgs = [images] if single else list(images)
        if not imgs:
            raise FornetError("empty batch: no images given")
        imgs = [validate_image(im, f"image {i}") for i, im in enumerate(imgs)]
        results = self.finish(self.infer(self.prepare(imgs), mode), [im.shape[:2] for im in imgs], outputs)
        return results[0] if single else results

    # -- the three stages (``fornet bench --e2e`` times them one by one) ---------------------------
    def prepare(self, images: list[np.ndarray]):
        """Validated images -> the network's input batch: a numpy array (opencv processing) or a
        device tensor in the network's dtype and layout (torch processing)."""
        if self.processing == "opencv":
            return self.preprocess(images)
        frames = [self._upload(i, im) for i, im in enumerate(images)]
        boxes = [self.content_box(im.shape[:2]) for im in images]
        return device_ops.preprocess(frames, boxes, self.input_size, self._mean_t, self._std_t, self.dtype,
                                     getattr(self.runner, "channels_last", True))

    def warmup(self, batch: int = 1, ks=DEFAULT_KS, runs: int = 2):
        """Time the sparse and dense focus paths for this device, input size and ``batch`` at a few
        K; from then on ``mode="auto"`` runs the cheaper one for the K at hand. Returns the
        :class:`~fornet_ros.inference.path_choice.CostTable`, None for a model with one path."""
        return self.paths.warm(self.runner, self.input_size, batch, ks, runs)

    def infer(self, batch, mode: str = "auto", graph: bool = True):
        """The network on a prepared batch: through a cached CUDA graph when there is one to use
        (``graph``, CUDA, a float K), else eagerly. ``mode`` auto takes the measured cheaper path
        (:meth:`warmup`); the path taken is ``paths.last``."""
        k = self.topk_ratio
        if self.backend == "torch":
            path = self.paths.resolve(k, mode, len(batch))
            mode = mode if path == "none" else path
        else:  # an ONNX graph runs the path it was exported with
            self.paths.last = getattr(self.runner, "graph", None)
        if self.processing == "opencv":
            out = self.runner(batch, k, mode)
            if ran := getattr(self.runner, "ran_graph", None):  # backend fastest: the ONNX graph ran its own path
                self.paths.last = ran
            return out
        with torch.inference_mode():
            if graph and self.graphs is not None and GraphCache.capturable(k):
                return self.graphs(graph_key(batch, k, mode, self.model),
                                   lambda x: self.runner.run_tensor(x, k, mode), batch)
            return self.runner.run_tensor(batch, k, mode)

    def finish(self, out, sizes, outputs=OUTPUTS) -> list[Segmentation]:
        """Network outputs -> one :class:`Segmentation` per image of ``sizes``."""
        outputs = frozenset(outputs)
        if self.processing == "opencv":
            return [self._postprocess(out, i, size, outputs) for i, size in enumerate(sizes)]
        with torch.inference_mode():
            maps = [device_ops.postprocess(*(o[i] for o in out), size, self.input_size, self.content_box(size),
                                           self.cfg.region_px, outputs) for i, size in enumerate(sizes)]
        return [Segmentation(m["labels"], selected=m.get("selected"), importance_u8=m.get("importance"),
                             confidence_u8=m.get("confidence")) for m in device_ops.download(maps)]

    def _postprocess(self, out, i: int, size: tuple[int, int], outputs=OUTPUTS) -> Segmentation:
        """Arg-max the bilinearly upsampled logits (stride 4 in refined models, 8 otherwise) at
        ``work`` = the smaller of the image and the network input size (:func:`host_ops.upsampled_argmax`),
        then nearest-resize labels to the image. Hand-written with opencv because a 19-channel
        bilinear upsample + arg-max at 1024x2048 costs ~170 ms in torch on this CPU, 4x the network
        itself; arg-maxing above the network's input size adds no information (docs/benchmarks.md)."""
        logits, importance, selected = (None if o is None else o[i] for o in out)  # maps: None (foreign model)
        H, W = size
        (h, w), (y0, x0, nh, nw) = self.input_size, self.content_box(size)
        if getattr(self.runner, "output", "logits") == "labels":  # a foreign graph that ends in an arg-max
            return self._labels_only(logits, (H, W))
        if (nh, nw) != (h, w):  # letterbox: keep the logits over the image's part of the input only
            up = cv2.resize(logits.transpose(1, 2, 0), (w, h), interpolation=cv2.INTER_LINEAR)[y0:y0 + nh, x0:x0 + nw]
            logits = up.transpose(2, 0, 1) if up.ndim == 3 else up[None]  # a view: upsampled_argmax takes (h, w, C)
        wh, ww = (H, W) if H * W <= nh * nw else (nh, nw)
        labels = host_ops.upsampled_argmax(logits, (wh, ww))
        if (wh, ww) != (H, W):
            labels = cv2.resize(labels, (W, H), interpolation=cv2.INTER_NEAREST)
        conf = imp = sel = None
        if "confidence" in outputs:  # max softmax = 1 / sum(exp(l - max l)), upsampled bilinearly (a smooth map)
            conf = 1.0 / np.exp(logits - logits.max(0, keepdims=True)).sum(0)
            conf = np.clip(cv2.resize(conf.astype(np.float32), (W, H), interpolation=cv2.INTER_LINEAR), 0.0, 1.0)
        if outputs & {"importance", "selected"} and importance is not None:
            P = self.cfg.region_px
            maps = np.stack([importance[0], selected[0]], -1).astype(np.float32)
            maps = maps.repeat(P, 0).repeat(P, 1)[y0:y0 + nh, x0:x0 + nw]  # a region = P x P network-input pixels
            if (nh, nw) != (H, W):
                maps = cv2.resize(maps, (W, H), interpolation=cv2.INTER_NEAREST)
            imp = np.ascontiguousarray(maps[..., 0]) if "importance" in outputs else None
            sel = maps[..., 1] > 0.5 if "selected" in outputs else None
        return Segmentation(labels=labels, importance=imp, confidence=conf, selected=sel)

    def _labels_only(self, labels: np.ndarray, size: tuple[int, int]) -> Segmentation:
        """A labels-output model's (h, w) labels at the image's size (nearest); no confidence."""
        (h, w), (y0, x0, nh, nw) = self.input_size, self.content_box(size)
        if labels.shape != (h, w):
            labels = cv2.resize(labels, (w, h), interpolation=cv2.INTER_NEAREST)
        labels = np.ascontiguousarray(labels[y0:y0 + nh, x0:x0 + nw])
        if labels.shape != tuple(size):
            labels = cv2.resize(labels, (size[1], size[0]), interpolation=cv2.INTER_NEAREST)
        return Segmentation(labels=labels, importance=None, confidence=None, selected=None)

