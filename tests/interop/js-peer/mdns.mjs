// mdns: js-libp2p's mDNS discovery (@libp2p/mdns), for tests/discovery/test_mdns_interop.py:
//
//   node peer.mjs mdns [--listen MA] [--no-connect]
//
// Listens on MA (default /ip4/0.0.0.0/tcp/0), prints "LISTENING <ma>/p2p/<id>" (its first
// non-loopback address), then one JSON line per peer discovered: {"found": id, "addrs": [...]},
// and unless --no-connect {"connected": id} or {"connect_error": id, "error": "..."} after
// dialing it. Queries every second (the default is 10 s) so tests stay short. Runs until stdin
// closes.
//
// Import this module only after peer.mjs has installed the Promise.withResolvers polyfill.

import { createLibp2p } from 'libp2p'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { tcp } from '@libp2p/tcp'
import { ping } from '@libp2p/ping'
import { identify } from '@libp2p/identify'
import { mdns } from '@libp2p/mdns'

function say (obj) {
  process.stdout.write(JSON.stringify(obj) + '\n')
}

export async function runMdns (argv) {
  let listen = '/ip4/0.0.0.0/tcp/0'
  let connect = true
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--listen' && i + 1 < argv.length) listen = argv[++i]
    else if (argv[i] === '--no-connect') connect = false
    else {
      process.stderr.write(`js-peer: unexpected argument ${JSON.stringify(argv[i])}\n`)
      process.exit(2)
    }
  }
  const node = await createLibp2p({
    addresses: { listen: [listen] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    peerDiscovery: [mdns({ interval: 1000 })],
    services: { ping: ping(), identify: identify() }
  })
  const seen = new Set()
  node.addEventListener('peer:discovery', (evt) => {
    const info = evt.detail
    const id = info.id.toString()
    if (seen.has(id)) return
    seen.add(id)
    say({ found: id, addrs: info.multiaddrs.map(a => a.toString()) })
    if (!connect) return
    node.dial(info.id, { signal: AbortSignal.timeout(15_000) }).then(
      () => say({ connected: id }),
      (err) => say({ connect_error: id, error: String(err?.message ?? err) })
    )
  })
  const addrs = node.getMultiaddrs().map(a => a.toString())
  const shown = addrs.find(a => !a.startsWith('/ip4/127.') && !a.startsWith('/ip6/::1/')) ?? addrs[0]
  process.stdout.write(`LISTENING ${shown}\n`)
  process.stdin.resume()
  await new Promise((resolve) => process.stdin.on('end', resolve))
  await node.stop()
  process.exit(0)
}
