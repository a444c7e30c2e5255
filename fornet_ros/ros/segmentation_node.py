"""The ``segmentation_node`` process: stop signals first, the heavy imports after.

Python's own SIGINT handler raises KeyboardInterrupt wherever the main thread is. The node's
imports (rclpy, numpy, OpenCV, the message packages) take about a second, and a Ctrl-C in that
time, or the SIGINT that ``ros2 launch`` sends when another process fails at once (a bad ``bag:=``),
used to end the process with a traceback and exit code -2. So this module imports only the
standard library and installs the handler before it imports :mod:`fornet_ros.ros.node`; a signal
at any later moment becomes one log line and exit code 0. (Only the interpreter's own start-up,
before this module runs, stays Python's.)

The console script ``segmentation_node`` and ``python -m fornet_ros.ros.segmentation_node`` start here.
"""

from __future__ import annotations

import signal
import sys
import threading

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
    stop = StopSignals()
    from .node import run  # the heavy imports, now under our handler
    return run(stop, args)


if __name__ == "__main__":
    sys.exit(main())
