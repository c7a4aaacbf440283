"""Prometheus metrics for hosts, streams, kad and gossipsub (optional: ``rapidp2p[metrics]``).

```python
from rapidp2p.metrics import Metrics, serve_metrics

metrics = Metrics()                        # its own CollectorRegistry: nothing global
host = await Host.create(listen=[...], metrics=metrics)
server = await serve_metrics(metrics, "127.0.0.1", 9100)   # GET /metrics
```

Pass ``Metrics(registry=...)`` to add rapidp2p's families to a registry of yours
(``prometheus_client.REGISTRY`` included, if you want them global). One :class:`Metrics` may
serve several hosts: their figures add up. Without ``prometheus_client`` installed, importing
:class:`Metrics` raises :class:`MetricsUnavailable` and hosts run without metrics (the
default).

The data path pays one ``is None`` check per socket read, flush, stream read event and
``write`` when metrics are off, and an integer addition when they are on: bytes are counted per
socket read or flush and per stream event, never per frame. Names: :mod:`.names`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rapidp2p.exceptions import Libp2pError
from rapidp2p.metrics._counters import ByteCounter

if TYPE_CHECKING:
    from rapidp2p.metrics._prom import Metrics
    from rapidp2p.metrics.http import serve_metrics

__all__ = ["ByteCounter", "Metrics", "MetricsUnavailable", "available", "serve_metrics"]


class MetricsUnavailable(Libp2pError, ImportError):
    """``prometheus_client`` is not installed (``pip install 'rapidp2p[metrics]'``)."""


def available() -> bool:
    """True when ``prometheus_client`` can be imported."""
    try:
        import prometheus_client  # noqa: F401
    except ImportError:
        return False
    return True


def __getattr__(name: str) -> Any:
    if name == "Metrics":
        try:
            from rapidp2p.metrics._prom import Metrics
        except ImportError as exc:
            raise MetricsUnavailable(
                "metrics need prometheus_client: pip install 'rapidp2p[metrics]'"
            ) from exc
        return Metrics
    if name == "serve_metrics":
        from rapidp2p.metrics.http import serve_metrics

        return serve_metrics
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
