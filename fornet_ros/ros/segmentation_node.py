"""The ``segmentation_node`` process: stop signals first, the heavy imports after.

Python's own SIGINT handler raises KeyboardInterrupt wherever the main thread is. The node's
imports (rclpy, numpy, OpenCV, the message packages) take about a second, and a Ctrl-C in that
time, or the SIGINT that ``ros2 launch`` sends when another process fails at once (a bad ``bag:=``),
used to end the process with a traceback and exit code -2. So this module imports only the
standard library and installs the handler before it imports :mod:`fornet_ros.ros.node`; a signal
at any later moment becomes one log line and exit code 0. Only what runs before this module stays
Python's: the interpreter's start-up and, for the console script that setuptools writes in a develop
(``colcon build --symlink-install``) install, its import of ``importlib.metadata`` (tens of ms on a
quiet machine, seconds on an overloaded one).

The console script ``segmentation_node`` and ``python -m fornet_ros.ros.segmentation_node`` start here.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopSignals:
    """SIGINT/SIGTERM ask the process to stop: :attr:`event` is set and :attr:`name` says which
    signal. Later signals are ignored (``ros2 launch`` and the terminal both send one on Ctrl-C):
    with SIG_IGN, not a Python handler, which interpreter finalisation would reset to the default,
    so a late second signal cannot kill the process (exit -2) while it cleans up."""

    def __init__(self):
        self.event = threading.Event()
        self.name: str | None = None
        for sig in STOP_SIGNALS:
            signal.signal(sig, self._on_signal)

    def _on_signal(self, signum, frame) -> None:
        # only a flag here: the node logs it from the main loop (no I/O inside a signal handler)
        self.name = signal.Signals(signum).name
        self.event.set()
        for sig in STOP_SIGNALS:
            signal.signal(sig, signal.SIG_IGN)


def main(args=None) -> int:
    """Run the node until SIGINT or SIGTERM or a shutdown transition; exit code 0 within ~2 s even
    under load, or 1 with one line when start-up fails (bad parameter, missing checkpoint).

    rclpy's own signal handler would shut the context down while the worker still publishes (and
    re-raise KeyboardInterrupt on a second Ctrl-C): the handler is ours, and the worker stops
    before the node and the context go."""
    stop = StopSignals()
    import rclpy  # the heavy imports, from here on under our handler
    from rclpy.exceptions import ParameterException
    from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
    from rclpy.signals import SignalHandlerOptions
    from .node import NODE_NAME, SegmentationNode

    log = rclpy.logging.get_logger(NODE_NAME)
    if stop.event.is_set():
        log.info(f"{stop.name} received during start-up: exiting")
        return 0
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    node, code = None, 0
    executor = SingleThreadedExecutor()  # lives until the node and the context are gone
    try:
        node = SegmentationNode()
        _spin(executor, node, stop.event)
        if stop.event.is_set():
            log.info(f"{stop.name} received: shutting down")
    except ExternalShutdownException:
        pass
    except (RuntimeError, ValueError, ParameterException) as e:
        print(f"[{NODE_NAME}] error: {e}", file=sys.stderr, flush=True)  # one line, no traceback
        code = 1
    if node is not None and not node.stop(timeout=1.5):
        # the worker is inside one long call (inference on a slow CPU), which Python cannot
        # interrupt: neither wait for it nor pull the node and context from under it (its next
        # publish would crash), so leave without the interpreter's clean-up
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    if node is not None:
        node.destroy_node()
    rclpy.try_shutdown()
    return code


def _spin(executor, node, stop: threading.Event) -> None:
    import rclpy
    executor.add_node(node)
    while not stop.is_set() and rclpy.ok() and not node.finalized:
        executor.spin_once(timeout_sec=0.1)
    if node.finalized:  # the shutdown transition ran: answer its change_state call, then exit 0
        end = time.monotonic() + 0.5
        while time.monotonic() < end and rclpy.ok():
            executor.spin_once(timeout_sec=0.05)


if __name__ == "__main__":
    sys.exit(main())
