"""Issue 13 point 5, "no ``Any`` in public signatures": the methods and functions a newcomer
calls first (``rapidp2p``'s re-exports, the host, streams, GossipSub, the DHT) say what they
take and return, so an editor's completion and ``help()`` show real types.

Annotations are read as the strings ``from __future__ import annotations`` leaves (nothing is
evaluated): a bare ``Any`` in one of them fails the test with the qualified name.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Iterator

import pytest

import rapidp2p
from rapidp2p import kad, pubsub

ANY = re.compile(r"(?<![\w.])(?:typing\.)?Any(?![\w])")
#: ``Coroutine[Any, Any, T]`` is how typing spells "a coroutine returning T" (asyncio.run's own
#: signature): the send and yield types of a coroutine are nobody's business.
COROUTINE = re.compile(r"Coroutine\[Any, Any, ")


def _public_names(module: object) -> list[str]:
    return [n for n in getattr(module, "__all__", ()) if not n.startswith("_")]


def _callables() -> Iterator[tuple[str, Callable[..., object]]]:
    """(qualified name, function) for every public function and method of the surface."""
    seen: set[int] = set()
    for module in (rapidp2p, pubsub, kad):
        for name in _public_names(module):
            obj = getattr(module, name)
            if inspect.isfunction(obj) and id(obj) not in seen:
                seen.add(id(obj))
                yield f"{module.__name__}.{name}", obj
            if not inspect.isclass(obj) or obj.__module__.startswith("rapidp2p._core"):
                continue
            for klass in obj.__mro__:  # inherited methods too (GossipSub's live in PubSub)
                if not klass.__module__.startswith("rapidp2p"):
                    continue
                for attr, member in vars(klass).items():
                    if attr.startswith("_") and attr not in ("__init__", "__aenter__"):
                        continue
                    if isinstance(member, (staticmethod, classmethod)):
                        member = member.__func__
                    if isinstance(member, property):
                        member = member.fget
                    if inspect.isfunction(member) and id(member) not in seen:
                        seen.add(id(member))
                        yield f"{klass.__module__}.{klass.__qualname__}.{attr}", member


CALLABLES = dict(_callables())


def test_the_surface_is_not_empty() -> None:
    names = {n.rsplit(".", 1)[-1] for n in CALLABLES}
    for method in ("connect", "new_stream", "readline", "wait_for_subscribers", "find_providers"):
        assert method in names, method
    assert len(CALLABLES) > 100


@pytest.mark.parametrize("name", sorted(CALLABLES))
def test_no_any_in_public_signature(name: str) -> None:
    fn = CALLABLES[name]
    annotations = {k: v for k, v in fn.__annotations__.items() if isinstance(v, str)}
    bad = {k: v for k, v in annotations.items() if ANY.search(COROUTINE.sub("Coroutine[", v))}
    assert not bad, f"{name} has Any in its signature: {bad}"
