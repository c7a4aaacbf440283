"""A Python peer that browsers can dial: WebSocket and WebTransport, plus a dashboard page.

    python examples/browser_dashboard.py --demo     # node + page, checked by a Python client
    python examples/browser_dashboard.py            # prints DASHBOARD http://127.0.0.1:N/
                                                    # and LISTENING <multiaddr> lines; Ctrl-C ends

A browser cannot open TCP sockets or raw QUIC connections; it reaches a libp2p node over
``/ws`` (WebSocket) or ``/webtransport`` (QUIC + HTTP/3 with a self-signed certificate the
browser trusts through the ``/certhash`` values of the address, no certificate authority).
This node listens on both and answers ``/ipfs/ping/1.0.0`` and ``/echo/1.0.0``.

The dashboard is a plain HTTP page on loopback (a browser allows WebTransport only in a
secure context, and ``http://127.0.0.1`` or ``http://localhost`` is one). It lists the
node's addresses and has two buttons that check, with the browser's own ``WebSocket`` and
``WebTransport`` APIs (no JavaScript bundle), that each address is reachable. To speak libp2p
from a page, dial one of those addresses with js-libp2p (``@libp2p/webtransport`` or
``@libp2p/websockets`` with ``@chainsafe/libp2p-noise`` and ``@chainsafe/libp2p-yamux``); the
page shows the few lines it takes. ``--demo`` runs the node, fetches the page, and dials the
node from a second Python peer over each transport (ping, then 1 MiB echoed intact).

Options: ``--host`` (default 127.0.0.1) is where the node and the page listen; ``--port`` is
the page's TCP port (default 0: any free one). The WebTransport certificate is valid for 14
days at most (browsers accept nothing longer); the address changes when it rotates.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import html
import json
import os
import time

from rapidp2p import Host
from rapidp2p.peer import Multiaddr
from rapidp2p.protocols.echo import handle_echo
from rapidp2p.transport.webtransport import is_webtransport_addr

#: A request's head larger than this is refused (a client must not make us buffer at will).
MAX_REQUEST_HEAD = 8 * 1024

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>rapidp2p node {short}</title>
<style>body{{font-family:sans-serif;max-width:60em;margin:2em auto}}code{{word-break:break-all}}
li{{margin:.4em 0}} pre{{background:#eee;padding:1em;overflow-x:auto}}</style></head>
<body>
<h1>rapidp2p node</h1>
<p>Peer ID: <code>{peer}</code></p>
<h2>Addresses a browser can dial</h2>
<ul>{items}</ul>
<p><button id="ws">Check WebSocket</button> <button id="wt">Check WebTransport</button></p>
<pre id="out"></pre>
<h2>Talking libp2p from this page</h2>
<pre>import {{ createLibp2p }} from 'libp2p'
import {{ webTransport }} from '@libp2p/webtransport'
import {{ webSockets }} from '@libp2p/websockets'
import {{ noise }} from '@chainsafe/libp2p-noise'
import {{ yamux }} from '@chainsafe/libp2p-yamux'
import {{ ping }} from '@libp2p/ping'
import {{ multiaddr }} from '@multiformats/multiaddr'

const node = await createLibp2p({{
  transports: [webTransport(), webSockets()],
  connectionEncrypters: [noise()], streamMuxers: [yamux()],
  services: {{ ping: ping() }},
}})
const rtt = await node.services.ping.ping(multiaddr('{first}'))</pre>
<script>
const addrs = {addrs_json};
const out = document.getElementById('out');
const say = (t) => {{ out.textContent += t + '\\n' }};
function b64url(s) {{
  s = s.replace(/-/g, '+').replace(/_/g, '/');
  return Uint8Array.from(atob(s + '='.repeat((4 - s.length % 4) % 4)), c => c.charCodeAt(0));
}}
document.getElementById('ws').onclick = () => {{
  for (const a of addrs.filter(a => a.includes('/ws'))) {{
    const p = a.split('/');
    const ws = new WebSocket('ws://' + p[2] + ':' + p[4] + '/');
    ws.onopen = () => {{ say('WebSocket open: ' + a); ws.close() }};
    ws.onerror = () => say('WebSocket failed: ' + a);
  }}
}};
document.getElementById('wt').onclick = async () => {{
  for (const a of addrs.filter(a => a.includes('/webtransport'))) {{
    const p = a.split('/');
    const hashes = a.split('/certhash/').slice(1).map(h => h.split('/')[0])
      .map(h => ({{ algorithm: 'sha-256', value: b64url(h.slice(1)).slice(2) }}));
    try {{
      const wt = new WebTransport('https://' + p[2] + ':' + p[4] +
        '/.well-known/libp2p-webtransport?type=noise', {{ serverCertificateHashes: hashes }});
      await wt.ready;
      say('WebTransport session open: ' + a);
      wt.close();
    }} catch (e) {{ say('WebTransport failed: ' + e) }}
  }}
}};
</script>
</body></html>
"""


def page(host: Host) -> str:
    addrs = [str(a) for a in host.full_addrs]
    items = "".join(f"<li><code>{html.escape(a)}</code></li>" for a in addrs)
    return PAGE.format(
        short=html.escape(str(host.peer_id)[-8:]),
        peer=html.escape(str(host.peer_id)),
        items=items,
        first=html.escape(addrs[0] if addrs else ""),
        # JSON inside <script>: no "</" can end the element early.
        addrs_json=json.dumps(addrs).replace("</", "<\\/"),
    )


async def serve_dashboard(host: Host, bind: str, port: int) -> asyncio.Server:
    """A minimal HTTP/1.1 server: ``GET /`` is the page, ``GET /addrs.json`` the addresses;
    anything else 404. One request per connection (``Connection: close``)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            method, path, _ = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ", 2)
            if method != "GET":
                status, kind, body = "405 Method Not Allowed", "text/plain", b"GET only\n"
            elif path == "/":
                status, kind, body = "200 OK", "text/html; charset=utf-8", page(host).encode()
            elif path == "/addrs.json":
                addrs = [str(a) for a in host.full_addrs]
                status, kind = "200 OK", "application/json"
                body = json.dumps({"peer_id": str(host.peer_id), "addrs": addrs}).encode()
            else:
                status, kind, body = "404 Not Found", "text/plain", b"not found\n"
            writer.write(
                f"HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {len(body)}\r\n"
                "Connection: close\r\n\r\n".encode()
                + body
            )
            await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            pass  # a malformed or oversized request: just close
        except (asyncio.TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    return await asyncio.start_server(handle, bind, port, limit=MAX_REQUEST_HEAD)


async def start_node(bind: str) -> Host:
    host = await Host.create(
        listen=[f"/ip4/{bind}/tcp/0/ws", f"/ip4/{bind}/udp/0/quic-v1/webtransport"]
    )
    host.set_stream_handler("/echo/1.0.0", handle_echo)
    return host


async def http_get(host: str, port: int, path: str) -> tuple[str, bytes]:
    """The status line and body of ``GET path`` (the demo's check of the page)."""
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
    await writer.drain()
    data = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return head.split(b"\r\n", 1)[0].decode(), body


async def demo(bind: str) -> None:
    node = await start_node(bind)
    server = await serve_dashboard(node, bind, 0)
    port = server.sockets[0].getsockname()[1]
    try:
        status, body = await http_get(bind, port, "/")
        text = body.decode()
        listed = [str(a) for a in node.full_addrs]
        assert status.endswith("200 OK") and all(html.escape(a) in text for a in listed)
        print(f"dashboard at http://{bind}:{port}/ lists {len(listed)} addresses", flush=True)
        status, body = await http_get(bind, port, "/addrs.json")
        assert json.loads(body)["addrs"] == listed
        for addr in listed:
            kind = "webtransport" if is_webtransport_addr(Multiaddr(addr)) else "ws"
            # A fresh client per transport: one connection each, nothing reused.
            async with Host() as client:
                t0 = time.perf_counter()
                await client.connect(Multiaddr(addr))
                connect_ms = (time.perf_counter() - t0) * 1000
                rtt = (await client.ping(node.peer_id, count=1))[0]
                data = os.urandom(1 << 20)
                st = await client.new_stream(node.peer_id, ["/echo/1.0.0"])
                st.write(data)
                await st.close()
                back = await asyncio.wait_for(st.read(), 30)
                ok = "intact" if back == data else "CORRUPTED"
                print(
                    f"{kind}: connected in {connect_ms:.1f} ms, ping {rtt * 1000:.2f} ms, "
                    f"1 MiB echo {ok}",
                    flush=True,
                )
        print("demo done", flush=True)
    finally:
        server.close()
        await server.wait_closed()
        await node.close()


async def serve(bind: str, port: int) -> None:
    node = await start_node(bind)
    server = await serve_dashboard(node, bind, port)
    real = server.sockets[0].getsockname()[1]
    print(f"DASHBOARD http://{bind}:{real}/", flush=True)
    for addr in node.full_addrs:
        print(f"LISTENING {addr}", flush=True)
    try:
        await asyncio.Event().wait()  # until Ctrl-C
    finally:
        server.close()
        await node.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--demo", action="store_true", help="run node, page and a client")
    parser.add_argument("--host", default="127.0.0.1", help="IPv4 address to listen on")
    parser.add_argument("--port", type=int, default=0, help="the dashboard's TCP port")
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(demo(args.host) if args.demo else serve(args.host, args.port))


if __name__ == "__main__":
    main()
