"""rosbag2 helpers on the pure-Python ``rosbags`` library (no ROS distro needed): write bags from
Cityscapes-style folders or plain image folders and read them back (scoring a model on a bag: :mod:`.bag_eval`).

Bags are rosbag2 metadata version 8 (readable by Jazzy and newer ``ros2 bag``), CDR, with type
hashes (RIHS01) from rosbags' Kilted typestore. Topics written per camera ``<cam>``:
``<cam>/image_raw`` (Image rgb8, or CompressedImage png/jpeg on ``<cam>/image_raw/compressed``),
``<cam>/camera_info`` and ``<cam>/ground_truth/labels`` (mono8 train IDs, 255 = ignore). MCAP bags
may zstd-compress their chunks (``chunk_compression``), which ``ros2 bag`` reads natively.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..classes import CAMVID_TO_TRAINID, CITYSCAPES_LABELID_TO_TRAINID, lookup_table
from ..errors import FornetError
from ..node.frames import stamp_ns
from ..node.images import BadImageError, to_mono8, to_rgb

RATE_HZ = 17.0  # Cityscapes sequences are recorded at 17 Hz
T0_NS = 1_700_000_000 * 10**9  # first stamp of written bags (arbitrary, fixed for reproducibility)


class BagError(FornetError):
    """A bag or input folder is missing, corrupt or lacks what was asked for."""


def typestore():
    from rosbags.typesys import Stores, get_typestore
    return get_typestore(Stores.ROS2_KILTED)


@dataclass
class Frame:
    image: Path
    label: Path | None
    camera: dict | None  # Cityscapes camera JSON


def cityscapes_frames(root, split: str = "val", city: str | None = None, sequence: bool = False) -> list[Frame]:
    root = Path(root)
    img_root = root / ("leftImg8bit_sequence" if sequence else "leftImg8bit") / split
    if not img_root.is_dir():
        raise BagError(f"folder not found: {img_root}")
    frames = []
    for img in sorted(img_root.glob(f"{city or '*'}/*_leftImg8bit.png")):
        stem = img.name[: -len("_leftImg8bit.png")]
        lab = root / "gtFine" / split / img.parent.name / f"{stem}_gtFine_labelIds.png"
        cam = root / "camera" / split / img.parent.name / f"{stem}_camera.json"
        frames.append(Frame(img, lab if lab.is_file() else None, json.loads(cam.read_text()) if cam.is_file() else None))
    if not frames:
        raise BagError(f"no *_leftImg8bit.png under {img_root}" + (f" for city {city}" if city else ""))
    return frames


def camera_info_fields(camera: dict | None, width: int, height: int) -> dict:
    """CameraInfo fields from a Cityscapes camera JSON (intrinsic fx, fy, u0, v0; rectified: D = 0)."""
    if camera is None:  # no calibration: a nominal 60 degree horizontal field of view
        f = width / (2 * np.tan(np.radians(30)))
        fx = fy = f
        u0, v0 = width / 2, height / 2
    else:
        i = camera["intrinsic"]
        fx, fy, u0, v0 = i["fx"], i["fy"], i["u0"], i["v0"]
    return dict(width=width, height=height, k=[fx, 0, u0, 0, fy, v0, 0, 0, 1], d=[0.0] * 5,
                p=[fx, 0, u0, 0, 0, fy, v0, 0, 0, 0, 1, 0], r=[1, 0, 0, 0, 1, 0, 0, 0, 1])


def pinhole_info(width: int, height: int, fx: float, fy: float, cx: float, cy: float) -> dict:
    """CameraInfo fields of an undistorted pinhole camera (plumb_bob, D = 0)."""
    return dict(width=width, height=height, k=[fx, 0.0, cx, 0.0, fy, cy, 0.0, 0.0, 1.0], d=[0.0] * 5,
                p=[fx, 0.0, cx, 0.0, 0.0, fy, cy, 0.0, 0.0, 0.0, 1.0, 0.0], r=[1, 0, 0, 0, 1, 0, 0, 0, 1])


def camera_pose_param(camera: dict | None) -> list[float] | None:
    """The node's camera_pose.<cam> value [x, y, z, roll, pitch, yaw] from Cityscapes extrinsics
    (vehicle frame x forward, y left, z up; the same convention as base_link)."""
    if camera is None:
        return None
    e = camera["extrinsic"]
    return [e["x"], e["y"], e["z"], e["roll"], e["pitch"], e["yaw"]]


class BagWriter:
    """Writes camera frames (+ ground truth) into a rosbag2 with rosbags."""

    def __init__(self, path, camera: str = "camera", storage: str = "mcap", compressed: bool = False,
                 frame_id: str = "camera_optical_frame", image_format: str = "png", jpeg_quality: int = 90,
                 chunk_compression: str | None = None):
        """``compressed``: CompressedImage in ``image_format`` ('png', lossless, or 'jpeg' at
        ``jpeg_quality``) instead of raw rgb8. ``chunk_compression='zstd'``: zstd MCAP chunks."""
        from rosbags.rosbag2 import CompressionFormat, CompressionMode, StoragePlugin, Writer
        path = Path(path)
        if path.exists():
            raise BagError(f"output bag {path} exists; remove it or choose another path")
        if storage not in ("mcap", "sqlite3"):
            raise BagError(f"storage must be mcap or sqlite3, got {storage!r}")
        if image_format not in ("png", "jpeg"):
            raise BagError(f"image_format must be png or jpeg, got {image_format!r}")
        if chunk_compression not in (None, "zstd") or (chunk_compression and storage != "mcap"):
            raise BagError(f"chunk_compression must be None or 'zstd' (mcap only), got {chunk_compression!r}")
        self.ts = typestore()
        plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
        self.writer = Writer(path, version=8, storage_plugin=plugin)
        if chunk_compression:
            self.writer.set_compression(CompressionMode.STORAGE, CompressionFormat.ZSTD)
        self.writer.open()
        self.cam, self.compressed, self.frame_id = camera.strip("/"), compressed, frame_id
        self.image_format, self.jpeg_quality = image_format, int(jpeg_quality)
        t = self.ts.types
        self.conn_img = (self.writer.add_connection(f"/{self.cam}/image_raw/compressed", "sensor_msgs/msg/CompressedImage", typestore=self.ts)
                         if compressed else self.writer.add_connection(f"/{self.cam}/image_raw", "sensor_msgs/msg/Image", typestore=self.ts))
        self.conn_info = self.writer.add_connection(f"/{self.cam}/camera_info", "sensor_msgs/msg/CameraInfo", typestore=self.ts)
        self.conn_gt = self.writer.add_connection(f"/{self.cam}/ground_truth/labels", "sensor_msgs/msg/Image", typestore=self.ts)
        self.T = t
        self.count = 0

    def _header(self, t_ns: int):
        T = self.T
        return T["std_msgs/msg/Header"](stamp=T["builtin_interfaces/msg/Time"](sec=t_ns // 10**9, nanosec=t_ns % 10**9),
                                        frame_id=self.frame_id)

    def _image(self, arr: np.ndarray, t_ns: int, encoding: str):
        h, w = arr.shape[:2]
        step = arr.strides[0] if arr.ndim == 2 else w * arr.shape[2]
        return self.T["sensor_msgs/msg/Image"](header=self._header(t_ns), height=h, width=w, encoding=encoding,
                                               is_bigendian=0, step=step, data=np.ascontiguousarray(arr).reshape(-1))

    def add(self, rgb: np.ndarray, t_ns: int, info: dict, labels: np.ndarray | None = None):
        T = self.T
        hdr = self._header(t_ns)
        if self.compressed:
            bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
            if self.image_format == "jpeg":
                ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality])
            else:
                ok, buf = cv2.imencode(".png", bgr)
            if not ok:
                raise BagError(f"cannot encode a {rgb.shape} image as {self.image_format}")
            msg = T["sensor_msgs/msg/CompressedImage"](header=hdr, format=f"rgb8; {self.image_format} compressed bgr8",
                                                       data=buf.reshape(-1))
        else:
            msg = self._image(rgb, t_ns, "rgb8")
        self.writer.write(self.conn_img, t_ns, self.ts.serialize_cdr(msg, msg.__msgtype__))
        roi = T["sensor_msgs/msg/RegionOfInterest"](x_offset=0, y_offset=0, height=0, width=0, do_rectify=False)
        cinfo = T["sensor_msgs/msg/CameraInfo"](
            header=hdr, height=info["height"], width=info["width"], distortion_model="plumb_bob",
            d=np.asarray(info["d"], np.float64), k=np.asarray(info["k"], np.float64), r=np.asarray(info["r"], np.float64),
            p=np.asarray(info["p"], np.float64), binning_x=0, binning_y=0, roi=roi)
        self.writer.write(self.conn_info, t_ns, self.ts.serialize_cdr(cinfo, cinfo.__msgtype__))
        if labels is not None:
            gt = self._image(labels.astype(np.uint8), t_ns, "mono8")
            self.writer.write(self.conn_gt, t_ns, self.ts.serialize_cdr(gt, gt.__msgtype__))
        self.count += 1

    def close(self):
        self.writer.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _read_rgb(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise BagError(f"cannot read image {path}")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def _progress(it, desc, total):
    from tqdm import tqdm
    return tqdm(it, desc=desc, total=total, disable=total < 5)


def from_cityscapes(root, out, split="val", city=None, limit=None, storage="mcap", compressed=False,
                    camera="camera", sequence=False, rate_hz=RATE_HZ) -> dict:
    frames = cityscapes_frames(root, split, city, sequence)[: limit or None]
    lut = lookup_table(CITYSCAPES_LABELID_TO_TRAINID)
    pose = None
    with BagWriter(out, camera, storage, compressed) as w:
        for i, fr in enumerate(_progress(frames, "bag", len(frames))):
            rgb = _read_rgb(fr.image)
            labels = None
            if fr.label is not None:
                raw = cv2.imread(str(fr.label), cv2.IMREAD_UNCHANGED)
                if raw is None or raw.shape != rgb.shape[:2]:
                    raise BagError(f"label {fr.label} unreadable or not {rgb.shape[:2]}")
                labels = lut[raw]
            pose = pose or camera_pose_param(fr.camera)
            w.add(rgb, T0_NS + int(i * 1e9 / rate_hz), camera_info_fields(fr.camera, rgb.shape[1], rgb.shape[0]), labels)
    return {"bag": str(out), "frames": len(frames), "camera": camera, "camera_pose": pose,
            "with_labels": sum(f.label is not None for f in frames)}


def from_folder(images, out, labels=None, mapping: str | None = None, limit=None, storage="mcap",
                compressed=False, camera="camera", rate_hz: float = 10.0) -> dict:
    """Any image folder (+ optional label folder with the same file stems). ``mapping``: 'camvid',
    'cityscapes' (labelIds) or 'trainid' (labels already train IDs, the default)."""
    images = Path(images)
    if not images.is_dir():
        raise BagError(f"folder not found: {images}")
    files = sorted(p for p in images.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))[: limit or None]
    if not files:
        raise BagError(f"no .png/.jpg images in {images}")
    luts = {None: None, "trainid": None, "camvid": lookup_table(CAMVID_TO_TRAINID),
            "cityscapes": lookup_table(CITYSCAPES_LABELID_TO_TRAINID)}
    if mapping not in luts:
        raise BagError(f"mapping must be camvid, cityscapes or trainid, got {mapping!r}")
    lut = luts[mapping]
    n_lab = 0
    with BagWriter(out, camera, storage, compressed) as w:
        for i, f in enumerate(_progress(files, "bag", len(files))):
            rgb = _read_rgb(f)
            lab = None
            if labels is not None:
                lp = Path(labels) / (f.stem + ".png")
                if lp.is_file():
                    lab = cv2.imread(str(lp), cv2.IMREAD_UNCHANGED)
                    lab = lut[lab] if lut is not None else lab
                    n_lab += 1
            w.add(rgb, T0_NS + int(i * 1e9 / rate_hz), camera_info_fields(None, rgb.shape[1], rgb.shape[0]), lab)
    return {"bag": str(out), "frames": len(files), "camera": camera, "with_labels": n_lab}


def open_reader(path):
    from rosbags.rosbag2 import Reader, ReaderError
    path = Path(path)
    if not path.exists():
        raise BagError(f"bag not found: {path}")
    if path.is_dir() and not (path / "metadata.yaml").is_file():
        raise BagError(_not_a_bag_folder(path))
    try:
        reader = Reader(path)
        reader.open()
    except (ReaderError, Exception) as e:  # noqa: BLE001 - rosbags raises several types for corrupt bags
        raise BagError(f"cannot open bag {path}: {type(e).__name__}: {e}") from e
    return reader


def _not_a_bag_folder(path: Path) -> str:
    """Why a folder is not a bag (rosbag2 folders hold metadata.yaml), and what it holds instead."""
    why = f"{path} is not a rosbag2 folder (no metadata.yaml)"
    bags = sorted(p.parent for p in path.glob("*/metadata.yaml"))
    if bags:
        return f"{why}; the bag in it is {bags[0]}" if len(bags) == 1 else \
            f"{why}; it holds bags {', '.join(map(str, bags[:3]))}{', ...' if len(bags) > 3 else ''}"
    files = [p for p in path.iterdir() if p.is_file()]
    storage = [p for p in files if p.suffix in (".mcap", ".db3")]
    if storage:
        return f"{why}; give its storage file {storage[0]} instead"
    if any(p.suffix.lower() in (".png", ".jpg", ".jpeg") for p in files):
        return (f"{why}; it holds images: `fornet predict {path} --out DIR` segments them, `fornet bag from-folder "
                f"{path} --out BAG` makes a bag of them")
    return why


def bag_cameras(reader) -> list[str]:
    cams = []
    for c in reader.connections:
        m = re.fullmatch(r"/?(.*)/image_raw(/compressed)?", c.topic)
        if m and c.msgtype in ("sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage"):
            cams.append(m.group(1))
    return cams


def _decode(decoder, msg, path, topic, stamp):
    try:
        return decoder(msg)
    except BadImageError as e:
        raise BagError(f"{path}: cannot decode {topic} at {stamp}: {e}") from e


def iter_frames(path, camera: str | None = None):
    """Yields (camera, stamp_ns, rgb, gt labels or None) for every image of the bag, in bag order.
    Ground truth is matched by (camera, header stamp); an image is yielded once its ground truth
    arrived or a newer image of the same camera did (only a few frames are held in memory)."""
    reader = open_reader(path)
    ts = typestore()
    try:
        cams = bag_cameras(reader)
        if not cams:
            raise BagError(f"{path}: no <cam>/image_raw topic (topics: {sorted(c.topic for c in reader.connections)})")
        if camera is not None and camera.strip("/") not in cams:
            raise BagError(f"{path}: camera {camera!r} not in {cams}")
        pending = {}  # (cam, stamp) -> [rgb, gt]
        for conn, t, raw in reader.messages():
            is_img = re.search(r"/image_raw(/compressed)?$", conn.topic) is not None
            is_gt = conn.topic.endswith("/ground_truth/labels")
            if not (is_img or is_gt):
                continue
            cam = conn.topic.strip("/").rsplit("/image_raw", 1)[0] if is_img else conn.topic.strip("/").rsplit("/ground_truth", 1)[0]
            if camera is not None and cam != camera.strip("/"):
                continue
            try:
                msg = ts.deserialize_cdr(raw, conn.msgtype)
            except Exception as e:  # noqa: BLE001 - corrupt payloads raise various errors
                raise BagError(f"{path}: cannot deserialize {conn.topic} ({conn.msgtype}): {e}") from e
            stamp = stamp_ns(msg.header.stamp)
            key = (cam, stamp)
            if is_gt:
                gt = _decode(to_mono8, msg, path, conn.topic, stamp)
                if key in pending:
                    rgb, _ = pending.pop(key)
                    yield cam, stamp, rgb, gt
                continue
            for k in [k for k in pending if k[0] == cam and k[1] < stamp]:
                yield (*k, *pending.pop(k))
            pending[key] = [_decode(to_rgb, msg, path, conn.topic, stamp), None]
        for k in sorted(pending, key=lambda k: k[1]):
            yield (*k, *pending.pop(k))
    finally:
        reader.close()


def read_camera_info(path, camera: str = "camera") -> dict:
    """The first ``<camera>/camera_info`` message of the bag as a dict (width, height, k, d, p, r,
    distortion_model, binning_x, binning_y, roi as (x_offset, y_offset, height, width), frame_id)."""
    reader = open_reader(path)
    try:
        topic = f"/{camera.strip('/')}/camera_info"
        conns = [c for c in reader.connections if c.topic == topic]
        if not conns:
            raise BagError(f"{path}: no {topic} topic")
        for conn, _, raw in reader.messages(connections=conns):
            m = typestore().deserialize_cdr(raw, conn.msgtype)
            return dict(width=int(m.width), height=int(m.height), k=[float(v) for v in m.k], d=[float(v) for v in m.d],
                        p=[float(v) for v in m.p], r=[float(v) for v in m.r], distortion_model=m.distortion_model,
                        binning_x=int(m.binning_x), binning_y=int(m.binning_y),
                        roi=(int(m.roi.x_offset), int(m.roi.y_offset), int(m.roi.height), int(m.roi.width)),
                        frame_id=m.header.frame_id)
        raise BagError(f"{path}: {topic} has no messages")
    finally:
        reader.close()
