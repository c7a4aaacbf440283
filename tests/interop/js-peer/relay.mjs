// relay: js-libp2p as a Circuit Relay v2 client (@libp2p/circuit-relay-v2), for
// tests/relay/test_relay_js_interop.py:
//
//   node peer.mjs relay-listen --relay MA
//       reserves on the relay MA (.../p2p/<relay>), prints "LISTENING <circuit addr>/p2p/<id>"
//       and serves /echo/1.0.0 (and ping, identify) over relayed connections until stdin closes
//   node peer.mjs relay-dial MA [--ping] [--echo-bytes N]
//       dials a /p2p-circuit address; JSON lines: {"limited": bool}, then the checks
//
// Import this module only after peer.mjs has installed the Promise.withResolvers polyfill.

import { createLibp2p } from 'libp2p'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { tcp } from '@libp2p/tcp'
import { ping } from '@libp2p/ping'
import { identify } from '@libp2p/identify'
import { circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { multiaddr } from '@multiformats/multiaddr'
import { randomBytes } from 'node:crypto'

const ECHO_PROTOCOL = '/echo/1.0.0'

function say (obj) {
  process.stdout.write(JSON.stringify(obj) + '\n')
}

function usage (message) {
  process.stderr.write(`js-peer: ${message}\n` +
    'usage: peer.mjs relay-listen --relay MA\n' +
    '       peer.mjs relay-dial MA [--ping] [--echo-bytes N]\n')
  process.exit(2)
}

async function makeNode (listen) {
  return await createLibp2p({
    addresses: { listen },
    transports: [tcp(), circuitRelayTransport()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: { ping: ping(), identify: identify() }
  })
}

async function echoHandler (stream) {
  try {
    for await (const chunk of stream) {
      if (!stream.send(chunk)) await stream.onDrain()
    }
    await stream.close()
  } catch (err) {
    stream.abort(err)
  }
}

async function relayListen (argv) {
  let relay = null
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--relay' && i + 1 < argv.length) relay = argv[++i]
    else usage(`unexpected argument ${JSON.stringify(argv[i])}`)
  }
  if (relay === null) usage('relay-listen needs --relay MA')
  const node = await makeNode([`${relay}/p2p-circuit`])
  // Relayed connections are limited: js-libp2p serves a protocol on them only when told to.
  await node.handle(ECHO_PROTOCOL, echoHandler, { runOnLimitedConnection: true })
  let circuit
  for (let i = 0; i < 300 && circuit === undefined; i++) {
    circuit = node.getMultiaddrs().find((ma) => ma.toString().includes('/p2p-circuit'))
    if (circuit === undefined) await new Promise((resolve) => setTimeout(resolve, 100))
  }
  if (circuit === undefined) throw new Error('no reservation within 30 s')
  process.stdout.write(`LISTENING ${circuit.toString()}\n`)
  process.stdin.resume()
  await new Promise((resolve) => process.stdin.on('end', resolve))
  await node.stop()
  process.exit(0)
}

async function relayDial (argv) {
  let target = null
  let doPing = false
  let echoBytes = null
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--ping') doPing = true
    else if (argv[i] === '--echo-bytes' && i + 1 < argv.length) echoBytes = Number(argv[++i])
    else if (target === null && !argv[i].startsWith('--')) target = argv[i]
    else usage(`unexpected argument ${JSON.stringify(argv[i])}`)
  }
  if (target === null) usage('relay-dial needs a MULTIADDR')
  const node = await makeNode([])
  const connection = await node.dial(multiaddr(target), { signal: AbortSignal.timeout(30_000) })
  say({ limited: connection.limits != null })
  if (doPing) say({ ping_rtt_ms: await node.services.ping.ping(connection.remotePeer) })
  if (echoBytes !== null) {
    const stream = await connection.newStream(ECHO_PROTOCOL, { runOnLimitedConnection: true })
    const data = randomBytes(echoBytes)
    const chunks = []
    const reader = (async () => { for await (const c of stream) chunks.push(Buffer.from(c.subarray())) })()
    if (!stream.send(data)) await stream.onDrain()
    await stream.close()
    await reader
    const ok = Buffer.concat(chunks).equals(data)
    say({ echo_bytes: echoBytes, ok })
    if (!ok) process.exitCode = 1
  }
  await node.stop()
}

export async function runRelay (command, argv) {
  if (command === 'relay-listen') await relayListen(argv)
  else await relayDial(argv)
}
