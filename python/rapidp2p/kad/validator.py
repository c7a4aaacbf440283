"""Record validators: a namespace (``/<ns>/...``) maps to ``validate`` and ``select``.

``validate`` raises :class:`InvalidRecordError`; ``select`` returns the index of the best of
several valid values and must be stable (the same answer for the same inputs). ``/pk/`` is
built in: the value must be the public-key protobuf whose peer ID is the rest of the key.

The default, in the library (``KadDHT(host)``) and in the CLI alike, is
:func:`default_validator`: ``/pk/`` only, so a node stores nothing it cannot check. To use
another namespace, say so: ``default_validator({"myapp": PermissiveValidator()})`` (the CLI's
``--permissive-namespace myapp``) or a validator of your own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from rapidp2p.exceptions import InvalidRecordError

__all__ = [
    "NamespacedValidator",
    "PermissiveValidator",
    "PublicKeyValidator",
    "Validator",
    "default_validator",
    "split_namespace",
]


class Validator(Protocol):
    def validate(self, key: bytes, value: bytes) -> None:
        """Raises InvalidRecordError unless ``value`` is acceptable under ``key``."""

    def select(self, key: bytes, values: Sequence[bytes]) -> int:
        """Index of the best value (values are already valid)."""


def split_namespace(key: bytes) -> tuple[str, bytes]:
    """``/ns/rest`` -> ``("ns", b"rest")``; InvalidRecordError for keys without one."""
    if not key.startswith(b"/"):
        raise InvalidRecordError("record key has no namespace")
    ns, sep, rest = key[1:].partition(b"/")
    if not sep or not ns:
        raise InvalidRecordError("record key has no namespace")
    try:
        return ns.decode("ascii"), rest
    except UnicodeDecodeError:
        raise InvalidRecordError("record namespace is not ASCII") from None


class PublicKeyValidator:
    """``/pk/<peer id bytes>``: the value is that peer's public-key protobuf."""

    def validate(self, key: bytes, value: bytes) -> None:
        from rapidp2p.crypto import public_key_from_protobuf
        from rapidp2p.peer import PeerId

        ns, rest = split_namespace(key)
        if ns != "pk":
            raise InvalidRecordError("not a /pk/ key")
        try:
            want = PeerId.from_bytes(rest)
            got = PeerId.from_public_key(public_key_from_protobuf(value))
        except Exception as exc:
            raise InvalidRecordError(f"bad /pk/ record: {exc}") from None
        if got != want:
            raise InvalidRecordError("public key does not match the peer ID in the key")

    def select(self, key: bytes, values: Sequence[bytes]) -> int:
        return 0  # every valid value is the same key


class PermissiveValidator:
    """Accepts any value; the best is the greatest byte string (stable, easy to mirror in
    other implementations, e.g. for interop tests on a shared namespace)."""

    def validate(self, key: bytes, value: bytes) -> None:
        return None

    def select(self, key: bytes, values: Sequence[bytes]) -> int:
        if not values:
            raise InvalidRecordError("nothing to select from")
        return max(range(len(values)), key=lambda i: (values[i], -i))


class NamespacedValidator:
    """Dispatches on the key's namespace; keys in unknown namespaces are invalid."""

    def __init__(self, validators: Mapping[str, Validator]) -> None:
        self.validators: dict[str, Validator] = dict(validators)

    def _for(self, key: bytes) -> Validator:
        ns, _ = split_namespace(key)
        v = self.validators.get(ns)
        if v is None:
            raise InvalidRecordError(
                f"no validator for namespace {ns!r} (records are accepted only in "
                f"{', '.join('/' + n + '/' for n in sorted(self.validators))}; add one with "
                f"default_validator({{{ns!r}: PermissiveValidator()}}) or your own)"
            )
        return v

    def validate(self, key: bytes, value: bytes) -> None:
        self._for(key).validate(key, value)

    def select(self, key: bytes, values: Sequence[bytes]) -> int:
        if not values:
            raise InvalidRecordError("nothing to select from")
        i = self._for(key).select(key, values)
        if not 0 <= i < len(values):
            raise InvalidRecordError("validator selected no value")
        return i


def default_validator(extra: Mapping[str, Validator] | None = None) -> NamespacedValidator:
    """``/pk/`` plus ``extra`` namespaces."""
    validators: dict[str, Validator] = {"pk": PublicKeyValidator()}
    validators.update(extra or {})
    return NamespacedValidator(validators)
