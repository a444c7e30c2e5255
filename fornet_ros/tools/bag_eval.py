"""``fornet bag eval``: a model scored on a bag's frames (labels against the bag's ground truth) and,
with the bag's CameraInfo, the semantic costmap those labels make. Reading the bag is :mod:`.bags`."""

from __future__ import annotations

from .bags import BagError, bag_cameras, iter_frames, open_reader, read_camera_info


def evaluate_bag(segmenter, path, camera=None, limit=None, boundary_px: int = 3, progress: bool = True,
                 costmap: bool = True, camera_pose=None, costmap_config: str | None = None,
                 label_space: str | None = None) -> dict:
    """:func:`fornet_ros.training.evaluation.evaluate` over every frame of the bag (no dropping, unlike the
    node); frames with ground truth are scored.

    ``costmap``: also score the semantic costmap the labels make (:mod:`fornet_ros.mapping.costmap_score`:
    the predicted and the ground-truth labels projected with the bag's CameraInfo and ``camera_pose``,
    a :class:`~fornet_ros.mapping.Pose`, default the node's camera_pose default; layers from
    ``costmap_config``, default the built-in ones) into ``result['costmap']``; None with a reason in
    ``result['costmap_skipped']`` when the bag has no CameraInfo.

    ``label_space``: a :data:`fornet_ros.classes.LABEL_SPACES` name when the bag's ground truth is a
    coarser dataset's classes (the packaged clip: ``camvid``); predictions are mapped into them first."""
    from ..training.evaluation import SampleError, evaluate
    open_reader(path).close()  # a missing or corrupt bag fails here, before the progress bar starts
    scorer, skipped = None, None
    if costmap:
        scorer, skipped = _costmap_scorer(path, camera, segmenter.classes, camera_pose, costmap_config)
    try:
        from ..classes import LABEL_SPACES
        lut = LABEL_SPACES[label_space].prediction_lut() if label_space else None
        res = evaluate(segmenter, ((rgb, gt) for _, _, rgb, gt in iter_frames(path, camera)), boundary_px,
                       progress, limit, on_scored=None if scorer is None else lambda gt, r: scorer.update(r.labels, gt),
                       prediction_lut=lut)
    except SampleError as e:
        raise BagError(f"{path}: {e}") from e
    if res["images"] == 0:
        raise BagError(f"{path}: no image frames")
    if costmap:
        res["costmap"] = scorer.compute() if scorer is not None and scorer.score.frames else None
        if res["costmap"] is None:
            res["costmap_skipped"] = skipped or "no frame with ground truth"
    return res


def _costmap_scorer(path, camera, class_names, camera_pose, costmap_config):
    """(CostmapScorer, None), or (None, why) when the bag has no CameraInfo for the camera."""
    from ..mapping import CameraModel, GeometryError, Pose, load_layer_config
    from ..mapping.costmap_score import CostmapScorer
    if camera is None:
        reader = open_reader(path)
        try:
            cams = bag_cameras(reader)
        finally:
            reader.close()
        camera = cams[0] if cams else "camera"
    try:
        info = read_camera_info(path, camera)
    except BagError as e:
        return None, str(e)
    model = CameraModel(info["width"], info["height"], tuple(info["k"]), tuple(info["d"]),
                        info["distortion_model"], info["binning_x"], info["binning_y"], tuple(info["roi"]))
    if camera_pose is None:
        from ..node.params import CAMERA_POSE
        camera_pose = Pose.from_list(CAMERA_POSE.default)
    try:
        cfg = load_layer_config(costmap_config, class_names)
    except GeometryError as e:
        if costmap_config:  # the user's own layers: their mistake, said in one line
            raise
        return None, (f"the built-in layers name classes the model does not have ({e}); give --costmap-config "
                      "with layers in the model's classes")
    return CostmapScorer(model, camera_pose, cfg), None
