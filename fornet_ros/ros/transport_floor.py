"""The transport floor of ``fornet bench-node``: a stand-in for segmentation_node with no model.

It subscribes to ``cam/image_raw`` as the node does and, for each frame, publishes the node's image
outputs that have subscribers (``cam/semantic/<output>``: mono8 labels, importance and confidence,
rgb8 colour and overlay, each the input's size, with the input's header), through the node's
conversion (:func:`fornet_ros.ros.conversions.fill_image`) and QoS defaults. Publish -> outputs
received through it is what DDS and rclpy cost the node's frames before any model or decoding runs;
``bench-node`` reports the node's time beyond it. It publishes from its subscription callback (no
worker thread): a floor, not an estimate of the node. Runs until SIGINT/SIGTERM.

usage: python -m fornet_ros.ros.transport_floor [--ros-args ...]   (parameters given are ignored)
"""

from __future__ import annotations

import functools
import sys

import numpy as np

from ..node.params import NodeParams
from ..node.pipeline import ENCODING, IMAGE_OUTPUTS


def main(args=None) -> int:
    import rclpy
    from rclpy.executors import ExternalShutdownException
    from sensor_msgs.msg import Image

    from .conversions import fill_image, qos

    rclpy.init(args=args)  # rclpy's signal handling: SIGINT/SIGTERM shut the context down and end the spin
    node = rclpy.create_node("fornet_transport_floor", allow_undeclared_parameters=True)
    p = NodeParams()  # the node's defaults
    pubs = {out: node.create_publisher(Image, f"cam/semantic/{out}", qos(p.output_reliability, p.output_depth))
            for out in IMAGE_OUTPUTS}

    @functools.lru_cache(maxsize=1)  # made once per input size
    def outputs(shape):
        return {o: np.zeros(shape if ENCODING[o] == "mono8" else (*shape, 3), np.uint8) for o in IMAGE_OUTPUTS}

    def on_image(msg):
        for out, arr in outputs((msg.height, msg.width)).items():
            if pubs[out].get_subscription_count() > 0:
                pubs[out].publish(fill_image(Image(), arr, msg.header, ENCODING[out]))
    node.create_subscription(Image, "cam/image_raw", on_image, qos(p.input_reliability, p.input_depth))
    try:
        rclpy.spin(node)
    except (ExternalShutdownException, KeyboardInterrupt):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
