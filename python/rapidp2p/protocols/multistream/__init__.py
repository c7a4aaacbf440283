"""multistream-select 1.0: agreeing on the protocol a stream speaks."""

from rapidp2p.protocols.multistream._proto import (
    LS,
    MAX_MESSAGE_SIZE,
    NA,
    PROTOCOL_ID,
    MessageParser,
    encode_message,
)
from rapidp2p.protocols.multistream.negotiate import (
    DEFAULT_TIMEOUT,
    ByteStream,
    LazyNegotiatedStream,
    read_exactly,
    read_message,
    select_inbound,
    select_outbound,
    select_outbound_lazy,
)

__all__ = [
    "DEFAULT_TIMEOUT",
    "LS",
    "MAX_MESSAGE_SIZE",
    "NA",
    "PROTOCOL_ID",
    "ByteStream",
    "LazyNegotiatedStream",
    "MessageParser",
    "encode_message",
    "read_exactly",
    "read_message",
    "select_inbound",
    "select_outbound",
    "select_outbound_lazy",
]
