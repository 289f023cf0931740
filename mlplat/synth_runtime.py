"""How synthesis drives Pulumi's Python SDK (3.272) under mocks without the costs that only a real engine needs.

Measured on the 100-endpoint copy of prod (bench/plan.py), four SDK paths cost time per resource, and two of them
more than linearly:

- `pulumi.runtime.settings._get_callbacks` keeps the transforms' callback server in a context variable, which it
  sets from inside the registering task; the value stays in that task's copy of the context, so every registration
  with a transform starts its own gRPC server (207 in the 100-endpoint copy). `pulumi.runtime.mocks._resolve_callbacks`
  then walks every server and every transform registered so far, for each resource: a cost that grows with the
  square of the resources. Under synthesis `_get_callbacks` makes one server, on the first transform, and every task
  shares it; `CallbackIndex` finds a transform by its token. A program without transforms starts no gRPC server,
  and `shutdown_callbacks` stops the one that started: a forked process (mutmut runs each mutant in one) cannot start
  gRPC again while a parent's server threads are live.
- `pulumi.runtime.rpc.contains_unknowns` (called for every resolved Output) defines a recursive closure on each call,
  a reference cycle left for the cyclic collector: five objects per call, 520,000 of the 700,000 objects the
  collector has to free after a 100-endpoint plan. `contains_unknowns` answers the same without a cycle.
- `pulumi.runtime.resource._get_stack_trace` walks the Python stack and reads source lines for each resource, so
  the engine can show where it was declared; the mock monitor never reads it. Under synthesis it is empty.
- Each monitor call is handed to a thread pool (`loop.run_in_executor` in `register_resource` and `invoke`); the
  mock monitor answers at once, so `InlineExecutor` runs the call on the loop's thread instead of paying two thread
  hand-offs per resource.

The replacements are active only inside a synthesis (`mark_synthesis`); anything else in the process that uses the
SDK gets its own functions. None of them changes a recorded input, option or output (the plan tests compare).
"""

import asyncio
import contextvars
from collections.abc import Callable, Coroutine
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from pulumi.runtime import _callbacks, known_types, rpc, settings
from pulumi.runtime import resource as runtime_resource
from pulumi.runtime import stack as runtime_stack
from pulumi.runtime.proto import source_pb2

_SYNTHESIZING: contextvars.ContextVar[bool] = contextvars.ContextVar("mlplat_synthesizing", default=False)
_SERVERS: contextvars.ContextVar[list["asyncio.Future[_callbacks._CallbackServicer]"] | None] = contextvars.ContextVar(
    "mlplat_callback_servers", default=None
)
_sdk_get_callbacks = settings._get_callbacks
_sdk_contains_unknowns = rpc.contains_unknowns
_sdk_get_stack_trace = runtime_resource._get_stack_trace


class InlineExecutor(ThreadPoolExecutor):
    """The loop's default executor under synthesis: runs each (mock monitor) call at once, on the calling thread."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # handed to the awaiting coroutine, as the thread pool would
            future.set_exception(exc)
        return future


def completed(coroutine: Coroutine[Any, Any, Any]) -> Any:
    """The result of a coroutine that never waits (serializing plain data), without pumping the running loop.

    `pulumi.runtime.sync_await._sync_await`, which the mock monitor uses, re-enters the event loop when it is
    already running; with the monitor called on the loop's thread that nests once per resource.
    """
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value
    coroutine.close()
    raise RuntimeError("the mock monitor awaited a value that is not ready (only plain data is expected)")


async def _get_callbacks_hook() -> _callbacks._CallbackServicer | None:
    """`settings._get_callbacks`, but one server per synthesis, made when the first transform needs it.

    The SDK keeps the server it makes in a context variable set from inside the registering task, so the value stays
    in that task's copy of the context and the next registration makes another server. The synthesis' list is one
    object that every task's copy of the context shares.
    """
    shared = _SERVERS.get()
    if shared is None:
        return await _sdk_get_callbacks()
    if not shared:
        # Registrations run concurrently: the first one's start is what every other one awaits.
        shared.append(asyncio.ensure_future(_serve()))
    return await shared[0]


async def _serve() -> _callbacks._CallbackServicer:
    server = _callbacks._CallbackServicer(settings.SETTINGS.monitor)
    await server.serve()
    return server


async def shutdown_callbacks() -> None:
    """Stop the synthesis' callback server, if a transform started one (the SDK leaves it serving)."""
    if _SERVERS.get():
        await _callbacks._CallbackServicer.shutdown()


class CallbackIndex:
    """Transform functions by callback token, read from the SDK's callback servers only when a token is new."""

    def __init__(self) -> None:
        self._by_token: dict[str, Any] = {}

    def resolve(self, callbacks: Any) -> list[Any]:
        """The functions behind `callbacks` (a request's transforms), in order; unknown tokens are skipped."""
        if any(callback.token not in self._by_token for callback in callbacks):
            for servicer in _callbacks._CallbackServicer._servicers:
                self._by_token.update({token: fn for fn, token in servicer._transforms.items()})
        return [self._by_token[callback.token] for callback in callbacks if callback.token in self._by_token]


def mark_synthesis() -> None:
    """Use the replacements from now on in this context: a synthesis thread's own, which the SDK's tasks copy."""
    _SYNTHESIZING.set(True)
    _SERVERS.set([])


def contains_unknowns(value: Any, seen: set[int] | None = None) -> bool:
    """`rpc.contains_unknowns`: the same walk (dict values by key, list items, each container once), no closure."""
    if not isinstance(value, dict | list):
        return known_types.is_unknown(value)
    if seen is None:
        seen = set()
    if id(value) in seen:
        return False
    seen.add(id(value))
    items = (value[key] for key in value) if isinstance(value, dict) else iter(value)
    for item in items:
        if isinstance(item, dict | list):
            if contains_unknowns(item, seen):
                return True
        elif known_types.is_unknown(item):
            return True
    return False


def _contains_unknowns_hook(val: Any) -> bool:
    return contains_unknowns(val) if _SYNTHESIZING.get() else _sdk_contains_unknowns(val)


def _get_stack_trace_hook() -> source_pb2.StackTrace:
    return source_pb2.StackTrace() if _SYNTHESIZING.get() else _sdk_get_stack_trace()


# Each is looked up as a module global at each call (output.py calls `rpc.contains_unknowns`; resource.py and
# stack.py imported `_get_callbacks` by name).
rpc.contains_unknowns = _contains_unknowns_hook
runtime_resource._get_stack_trace = _get_stack_trace_hook
runtime_resource._get_callbacks = _get_callbacks_hook
runtime_stack._get_callbacks = _get_callbacks_hook
