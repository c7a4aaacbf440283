"""Plain-language messages for peer IDs and CIDs that do not parse.

The codec's own errors name the layer that failed ("multibase: unknown prefix 'h'"), which
means nothing to someone who pasted a truncated ID; these say what was expected instead.
"""

from __future__ import annotations

__all__ = ["bad_cid", "bad_peer_id"]

#: Exact lengths of the common text forms (base58btc of fixed-size multihashes).
_KNOWN_LENGTHS = {
    "Qm": (46, "a Qm... id or CIDv0"),
    "12D3KooW": (52, "an Ed25519 peer id (12D3KooW...)"),
    "16Uiu2": (53, "a secp256k1 peer id (16Uiu2...)"),
}


def _shorten(text: str) -> str:
    return repr(text if len(text) <= 80 else text[:77] + "...")


def _length_hint(text: str) -> str | None:
    for prefix, (length, what) in _KNOWN_LENGTHS.items():
        if text.startswith(prefix) and len(text) != length:
            return f"{what} is {length} characters, this one has {len(text)}: truncated?"
    return None


def bad_peer_id(text: str, cause: BaseException | None = None) -> str:
    """``not a valid peer id: '...' (why)``."""
    from rapidp2p.exceptions import CidError

    hint = _length_hint(text)
    if isinstance(cause, CidError):  # a real CID, of another kind: say which
        hint = str(cause)
    elif hint is None:
        if not text:
            hint = "empty text"
        elif text[:1] not in "1Qb":
            hint = "expected base58 text such as 12D3KooW... or Qm..., or a CID such as bafz..."
        elif len(text) < 46:
            hint = f"too short ({len(text)} characters): truncated?"
        elif cause is not None:
            hint = str(cause)
    return f"not a valid peer id: {_shorten(text)}" + (f" ({hint})" if hint else "")


def bad_cid(text: str, cause: BaseException | None = None) -> str:
    """``not a valid CID: '...' (why)``."""
    hint = _length_hint(text)
    if hint is None:
        if not text:
            hint = "empty text"
        elif text[:1] not in "Qbfzkmu":
            hint = "expected a CID such as bafy... or Qm..."
        elif len(text) < 46:
            hint = f"too short ({len(text)} characters): truncated?"
        elif cause is not None:
            hint = str(cause)
    return f"not a valid CID: {_shorten(text)}" + (f" ({hint})" if hint else "")
