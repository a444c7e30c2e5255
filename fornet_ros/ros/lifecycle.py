"""The managed-node (lifecycle) machinery of segmentation_node, apart from what the node does.

A :class:`ManagedNode` is an ``rclpy.lifecycle.LifecycleNode`` (services ``<node>/change_state``,
``<node>/get_state``, ... and ``<node>/transition_event``, so ``ros2 lifecycle`` and Nav2's
``nav2_lifecycle_manager`` drive it) whose subclass supplies four hooks:

=============  ==============  ===========================================================
transition     hook            segmentation_node
=============  ==============  ===========================================================
configure      ``load()``      read parameters, load the model and warm it up
activate       ``start()``     create subscriptions, publishers, timers; start the worker
deactivate     ``halt()``      stop the worker (the model stays loaded)
cleanup        ``unload()``    drop the model; memory goes back to the OS
shutdown       all that apply  from any state; then the process may exit
=============  ==============  ===========================================================

Everything ``start()`` creates on the node (publishers, subscriptions, timers, clients) is
recorded and destroyed on deactivate, so an inactive node has no topic endpoint of its own and
publishes nothing. A hook that raises makes its transition return FAILURE: the state stays where
it was (what the hook had built is undone) and the reason is one log line, never a traceback;
it is kept in :attr:`ManagedNode.transition_error`. ``autostart()`` runs configure + activate at
start-up and raises RuntimeError with that reason (the node's ``main`` prints it and exits 1).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc

from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn

SUCCESS, FAILURE = TransitionCallbackReturn.SUCCESS, TransitionCallbackReturn.FAILURE


def release_memory() -> None:
    """Collect garbage and hand freed heap pages back to the OS (glibc ``malloc_trim``: without it a
    freed model's memory stays in the process's arenas and the RSS does not drop); empty torch's
    CUDA cache when CUDA is in use."""
    gc.collect()
    try:
        import torch
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            torch.cuda.empty_cache()
    except ImportError:
        pass
    libc = ctypes.util.find_library("c")
    if libc:
        try:
            ctypes.CDLL(libc).malloc_trim(0)
        except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to trim
            pass


def one_line(e: BaseException) -> str:
    return " ".join(str(e).split()) or type(e).__name__


class ManagedNode(LifecycleNode):
    """A lifecycle node driven through the hooks ``load``, ``start``, ``halt``, ``unload``."""

    def __init__(self, node_name: str, **kwargs):
        super().__init__(node_name, **kwargs)
        self.transition_error: str | None = None
        self.finalized = False
        self._started: list = []  # (destroy function, entity) made by start()
        self._raise_errors = False

    # -- hooks (the subclass) ---------------------------------------------------------------------
    def load(self) -> None: ...
    def start(self) -> None: ...
    def halt(self) -> None: ...
    def unload(self) -> None: ...

    # -- state ------------------------------------------------------------------------------------
    @property
    def state(self) -> str:
        """The current lifecycle state's label: unconfigured, inactive, active, finalized, ...

        rclpy's LifecycleNode has no public getter of its own state (its trigger_shutdown reads
        the same private ``_state_machine``; the public way, the ``get_state`` service, is for
        other nodes), so this reads it too rather than tracking a second copy."""
        return self._state_machine.current_state[1]

    def autostart(self) -> None:
        """configure + activate now; RuntimeError with the reason when either fails."""
        self._raise_errors = True
        try:
            for trigger in (self.trigger_configure, self.trigger_activate):
                if trigger() != SUCCESS:
                    raise RuntimeError(self.transition_error or "lifecycle transition failed")
        finally:
            self._raise_errors = False

    # -- transitions ------------------------------------------------------------------------------
    def _run(self, name: str, steps, undo=()) -> TransitionCallbackReturn:
        try:
            for step in steps:
                step()
        except Exception as e:  # noqa: BLE001 - any failure of a hook is this transition's FAILURE
            self.transition_error = f"{name} failed: {one_line(e)}"
            for u in undo:  # back to the state we came from
                try:
                    u()
                except Exception as e2:  # noqa: BLE001
                    self.get_logger().warning(f"{name}: undoing failed too: {one_line(e2)}")
            if not self._raise_errors:  # autostart: main() prints it once
                self.get_logger().error(self.transition_error)
            return FAILURE
        self.transition_error = None
        return SUCCESS

    def _entities(self) -> set:
        return {*self.publishers, *self.subscriptions, *self.timers, *self.clients}

    def _start_recorded(self) -> None:
        before = self._entities()
        try:
            self.start()
        finally:
            destroy = {}
            for kind, fn in (("publishers", self.destroy_publisher), ("subscriptions", self.destroy_subscription),
                             ("timers", self.destroy_timer), ("clients", self.destroy_client)):
                destroy.update({e: fn for e in getattr(self, kind)})
            self._started = [(destroy[e], e) for e in self._entities() - before]

    def _destroy_started(self) -> None:
        started, self._started = self._started, []
        for destroy, entity in started:
            destroy(entity)

    def _stop(self) -> None:
        self.halt()
        self._destroy_started()

    def _unload(self) -> None:
        self.unload()
        release_memory()

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        return self._run("configure", [self.load], undo=[self._unload])

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        result = self._run("activate", [self._start_recorded], undo=[self._stop])
        return super().on_activate(state) if result == SUCCESS else result  # rclpy's managed entities

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._run("deactivate", [self._stop])
        self.get_logger().info("deactivated: processing stopped, the node's topics are gone; the model stays "
                               "loaded (activate resumes)")
        return super().on_deactivate(state)  # stopping cannot fail: whatever raised is logged

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        result = self._run("cleanup", [self._unload])
        if result == SUCCESS:
            self.get_logger().info("cleaned up: the model is freed (configure loads it again)")
        return result

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        steps = ([self._stop] if state.label == "active" else []) + [self._unload]
        self._run("shutdown", steps)
        self.finalized = True
        self.get_logger().info(f"shut down from {state.label}: finalized, everything freed; the process ends")
        return SUCCESS

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        """A transition raised past its hook (rclpy's ERROR): free everything, back to unconfigured."""
        self._run("error processing", [self._stop, self._unload])
        return SUCCESS
