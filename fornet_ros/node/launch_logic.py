"""What ``launch/segment.launch.py`` does with its arguments, as plain functions.

No ``launch``/``launch_ros``/``rclpy`` import: CI has no ``launch`` package, so the suite tests
these functions directly, and the launch file only turns their results into launch actions
(an ``OpaqueFunction`` reads the launch configurations at launch time and calls :func:`make_plan`).

Every launch argument defaults to ``''``, which means "not given": only arguments the user
actually gave become parameter overrides, so a ``params_file`` keeps its ``checkpoint``,
``device``, ``cameras`` and ``use_sim_time``. Errors are :class:`LaunchArgumentError` with one
line naming the argument.
"""

from __future__ import annotations

import posixpath
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Optional

from ..errors import FornetError
from .params import ROS_NAME_RE, NodeParams

NODE_NAME = "fornet_segmentation"
FASTDDS_ENV = "FASTDDS_DEFAULT_PROFILES_FILE"
DEFAULT_CAMERA = NodeParams().cameras[0]

# launch argument -> description: the launch file declares one DeclareLaunchArgument per entry,
# each with default ''
ARGUMENTS = {
    "params_file": "node parameters (YAML); default: the packaged config/fornet.yaml",
    "checkpoint": "FoR-Net checkpoint (.pt); unset = params_file's value (empty there = packaged model)",
    "camera": "camera namespace: the node reads <camera>/image_raw; unset = params_file's cameras",
    "image_topic": "remap <camera>/image_raw to this topic (and <camera>/camera_info to its sibling camera_info)",
    "camera_info_topic": "remap <camera>/camera_info to this topic; unset = next to image_topic",
    "use_sim_time": "true/false (also 1/0, yes/no); true with bag:= to follow the bag's /clock; "
                    "unset = params_file's value",
    "device": "auto, cpu, cuda, cuda:N; unset = params_file's value",
    "log_level": "node log level: debug, info, warn, error, fatal (or <logger>:=<level>); unset = info",
    "bag": "rosbag2 to play beside the node (ros2 bag play <bag> --clock); the launch ends with an "
           "error if the player fails",
    "bag_rate": "playback rate for bag:= (ros2 bag play --rate); unset = 1.0",
    "fastdds_profile": f"Fast DDS XML profile; unset = keep ${FASTDDS_ENV} when set, else the packaged "
                       "large-image profile",
    "autostart": "true/false: the node configures and activates itself at start; false = it waits for a "
                 "lifecycle manager (e.g. nav2_lifecycle_manager); with managed:=true, false = the launch "
                 "configures the node and leaves it inactive; unset = params_file's value",
    "managed": "true: the launch itself brings the node up as a lifecycle manager does, once, at start "
               "(configure, then activate unless autostart:=false; a failed first configure ends the launch); "
               "unset = false",
}

# The managed bring-up's reaction to the end of the node's first configure (after_first_configure)
ACTIVATE, FAIL = "activate", "fail"
CONFIGURE_FAILED = "segmentation node: configure failed (its log says why); ending the launch"

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}
_NAME_RE = ROS_NAME_RE  # the node's own rule (node_config), so launch and node agree
_LOG_LEVELS = {"debug", "info", "warn", "warning", "error", "fatal", "unset"}


class LaunchArgumentError(FornetError):
    """A launch argument has a value the launch cannot use (message: one line)."""


def given_arguments(values: Mapping[str, str]) -> dict[str, str]:
    """The arguments the user gave: non-empty after stripping (every default is '')."""
    return {k: v.strip() for k, v in values.items() if k in ARGUMENTS and v is not None and v.strip()}


def parse_bool(name: str, text: str) -> bool:
    """true/false/1/0/yes/no/on/off, any case; anything else is an error (never a silent false)."""
    t = text.strip().lower()
    if t in _TRUE:
        return True
    if t in _FALSE:
        return False
    raise LaunchArgumentError(f"{name}:={text!r} is not a boolean: use true or false (or 1/0, yes/no)")


def validate_camera(name: str) -> str:
    """A camera namespace the node can subscribe under: a valid ROS name, e.g. ``front`` or
    ``/robot/front`` (tokens of letters, digits, '_', not starting with a digit; no '//', no
    trailing '/'). Returns it unchanged."""
    if not _NAME_RE.fullmatch(name):
        raise LaunchArgumentError(
            f"camera:={name!r} is not a valid ROS namespace: use letters, digits and '_' separated by "
            f"single '/', each part not starting with a digit (e.g. camera:=front)")
    return name


def validate_topic(arg: str, topic: str) -> str:
    """A valid ROS topic name for ``image_topic``/``camera_info_topic`` (same rules as camera)."""
    if not _NAME_RE.fullmatch(topic):
        raise LaunchArgumentError(
            f"{arg}:={topic!r} is not a valid ROS topic name: use letters, digits and '_' separated by "
            f"single '/', each part not starting with a digit (e.g. {arg}:=/my_cam/image_raw)")
    return topic


def camera_info_for(image_topic: str) -> str:
    """The camera_info topic next to an image topic (image_transport's convention: same parent
    namespace): ``/my_cam/image_raw`` -> ``/my_cam/camera_info``, ``image`` -> ``camera_info``."""
    parent = posixpath.dirname(image_topic)
    if parent in ("", "~"):
        return f"{parent}/camera_info" if parent else "camera_info"
    return posixpath.join(parent, "camera_info")


def remappings(camera: str, image_topic: str = "", camera_info_topic: str = "") -> list[tuple[str, str]]:
    """Topic remappings for one camera: ``<camera>/image_raw`` (and ``/compressed``, used with
    ``compressed: true``) to ``image_topic``, ``<camera>/camera_info`` to ``camera_info_topic`` or,
    when that is unset, to the camera_info beside ``image_topic``. Nothing given: no remapping."""
    validate_camera(camera)
    out = []
    if image_topic:
        validate_topic("image_topic", image_topic)
        out += [(f"{camera}/image_raw", image_topic),
                (f"{camera}/image_raw/compressed", f"{image_topic}/compressed")]
    info = camera_info_topic or (camera_info_for(image_topic) if image_topic else "")
    if info:
        validate_topic("camera_info_topic", info)
        out.append((f"{camera}/camera_info", info))
    return out


def node_overrides(given: Mapping[str, str]) -> dict:
    """Parameter overrides from the arguments the user gave (keys absent = params_file decides).

    ``checkpoint``/``device``: str; ``camera``: ``cameras`` = [camera]; ``use_sim_time``, ``autostart``:
    bool; ``managed``: ``autostart`` = False (the launch drives the lifecycle; ``autostart:=`` then says
    how far, see :func:`managed_activates`)."""
    given = given_arguments(given)
    out: dict = {}
    for name in ("checkpoint", "device"):
        if name in given:
            out[name] = given[name]
    if "camera" in given:
        out["cameras"] = [validate_camera(given["camera"])]
    if "use_sim_time" in given:
        out["use_sim_time"] = parse_bool("use_sim_time", given["use_sim_time"])
    if "autostart" in given:
        out["autostart"] = parse_bool("autostart", given["autostart"])
    if "managed" in given and parse_bool("managed", given["managed"]):
        out["autostart"] = False  # the launch's lifecycle events configure (and activate) it
    return out


def managed_activates(given: Mapping[str, str]) -> bool:
    """Under ``managed:=true``, whether the launch activates the node after configuring it:
    yes unless ``autostart:=false`` (then the node stays inactive for an operator's ``activate``)."""
    given = given_arguments(given)
    return parse_bool("autostart", given["autostart"]) if "autostart" in given else True


def after_first_configure(goal_state: str, shutting_down: bool, activate: bool) -> Optional[str]:
    """What the managed launch does when the node's first configure ends (the launch reacts to that
    one transition only: a later configure is an operator's): :data:`ACTIVATE`, :data:`FAIL` (the
    configure failed: end the launch with :data:`CONFIGURE_FAILED`) or None: nothing, when the launch
    is already shutting down (Ctrl-C during the bring-up: asking the node for more would race its
    exit) or ``autostart:=false`` asked for an inactive node."""
    if shutting_down:
        return None
    if goal_state != "inactive":
        return FAIL
    return ACTIVATE if activate else None


def cameras_in_params_file(path: str, node_name: str = NODE_NAME) -> Optional[list[str]]:
    """The ``cameras`` a params file sets for the node (``/**`` or ``[/][ns/]<node_name>`` entries,
    the node's own entry winning), or None when it sets none."""
    import yaml
    try:
        data = yaml.safe_load(Path(path).read_text())
    except OSError as e:
        raise LaunchArgumentError(f"params_file:={path!r} cannot be read: {e.strerror or e}") from None
    except yaml.YAMLError as e:
        raise LaunchArgumentError(f"params_file:={path!r} is not valid YAML: {str(e).splitlines()[0]}") from None
    found: Optional[list[str]] = None
    if not isinstance(data, dict):
        return None
    for key in sorted(data, key=lambda k: str(k).strip("/") != "**"):  # '/**' first, node entries override
        entry = data[key]
        if not isinstance(entry, dict):
            continue
        k = str(key).strip("/")
        if k != "**" and k.split("/")[-1] != node_name:
            continue
        cams = (entry.get("ros__parameters") or {}).get("cameras")
        if cams is not None:
            found = [str(c) for c in (cams if isinstance(cams, list) else [cams])]
    return found


def remap_camera(given: Mapping[str, str], params_file: str) -> str:
    """The camera whose topics ``image_topic``/``camera_info_topic`` remap: ``camera:=`` when given,
    else the params file's only camera (the node default ``camera`` when it sets none)."""
    given = given_arguments(given)
    if "camera" in given:
        return validate_camera(given["camera"])
    cams = cameras_in_params_file(params_file) or [DEFAULT_CAMERA]
    if len(cams) != 1:
        raise LaunchArgumentError(
            f"image_topic:= remaps one camera but params_file:={params_file!r} lists {cams}: add camera:=<name>")
    return validate_camera(cams[0])


def bag_play_cmd(bag: str, rate: Optional[str] = None) -> list[str]:
    """``ros2 bag play`` with the bag path first: ``--clock`` takes an optional frequency
    (``nargs='?'``), so ``--clock <bag>`` would read the path as the frequency."""
    if not bag:
        raise LaunchArgumentError("bag:= is empty")
    cmd = ["ros2", "bag", "play", bag]
    if rate:
        try:
            ok = float(rate) > 0
        except ValueError:
            ok = False
        if not ok:
            raise LaunchArgumentError(f"bag_rate:={rate!r} must be a number > 0")
        cmd += ["--rate", str(rate)]
    return cmd + ["--clock"]


def log_level_args(level: str) -> list[str]:
    """``--log-level`` ros-args for ``log_level:=`` (``[<logger>:=]<level>``); unset: none."""
    if not level:
        return []
    lvl = level.rsplit(":=", 1)[-1].strip().lower()
    if lvl not in _LOG_LEVELS:
        raise LaunchArgumentError(f"log_level:={level!r}: use debug, info, warn, error or fatal")
    return ["--log-level", level]


def fastdds_profile(env: Mapping[str, str], default: str, given: str = "") -> Optional[str]:
    """The Fast DDS profile to set in ``FASTDDS_DEFAULT_PROFILES_FILE``, or None to leave the
    environment alone: ``fastdds_profile:=`` wins, else a user's non-empty variable is kept,
    else the packaged profile."""
    if given:
        return given
    if env.get(FASTDDS_ENV, "").strip():
        return None
    return default


def exit_error(what: str, returncode: Optional[int], shutting_down: bool) -> Optional[str]:
    """One-line error when a process the launch depends on failed, None when it did not
    (exit 0, or any exit while the launch is already shutting down, e.g. after Ctrl-C)."""
    if shutting_down or returncode == 0:
        return None
    how = f"signal {-returncode}" if returncode is not None and returncode < 0 else f"exit code {returncode}"
    return f"{what} failed ({how}); ending the launch"


@dataclass
class LaunchPlan:
    params_file: str
    overrides: dict = field(default_factory=dict)
    remappings: list = field(default_factory=list)
    ros_args: list = field(default_factory=list)
    bag_cmd: Optional[list] = None
    fastdds_profile: Optional[str] = None
    managed: bool = False  # the launch configures (and activates) the node through lifecycle events
    activate: bool = True  # managed: activate after the first configure (autostart:=false: stay inactive)


def make_plan(values: Mapping[str, str], env: Mapping[str, str], default_params_file: str,
              default_profile: str) -> LaunchPlan:
    """Everything the launch file starts, from the raw launch configurations (``''`` = not given)."""
    given = given_arguments(values)
    params_file = given.get("params_file", default_params_file)
    if not Path(params_file).is_file():
        raise LaunchArgumentError(f"params_file:={params_file!r} does not exist")
    remaps = []
    if "image_topic" in given or "camera_info_topic" in given:
        remaps = remappings(remap_camera(given, params_file), given.get("image_topic", ""),
                            given.get("camera_info_topic", ""))
    if "bag_rate" in given and "bag" not in given:
        raise LaunchArgumentError("bag_rate:= needs bag:=<path>")
    if "fastdds_profile" in given and not Path(given["fastdds_profile"]).is_file():
        raise LaunchArgumentError(f"fastdds_profile:={given['fastdds_profile']!r} does not exist")
    if "bag" in given:
        if not Path(given["bag"]).exists():
            raise LaunchArgumentError(f"bag:={given['bag']!r} does not exist")
        # launch emits no exit event for a process it cannot start, so the node would keep running
        if shutil.which("ros2", path=env.get("PATH", "")) is None:
            raise LaunchArgumentError("bag:= needs the ros2 command (ros2 bag, rosbag2) on PATH")
    managed = "managed" in given and parse_bool("managed", given["managed"])
    return LaunchPlan(
        params_file=params_file,
        overrides=node_overrides(given),
        remappings=remaps,
        ros_args=log_level_args(given.get("log_level", "")),
        bag_cmd=bag_play_cmd(given["bag"], given.get("bag_rate")) if "bag" in given else None,
        fastdds_profile=fastdds_profile(env, default_profile, given.get("fastdds_profile", "")),
        managed=managed,
        activate=managed_activates(given) if managed else True,
    )
