// js-libp2p interop peer for rapidp2p's tests (CLI contract: tests/interop/README in the brief).
//
//   node peer.mjs listen [--listen MULTIADDR]
//   node peer.mjs dial MULTIADDR [--ping] [--identify] [--echo-bytes N]
//   node peer.mjs mdns [--listen MA] [--no-connect] (mdns.mjs)
//   node peer.mjs pubsub --topic T [--listen MA] [--connect MA]... [--publish MSG]... (pubsub.mjs)
//   node peer.mjs relay-listen --relay MA | relay-dial MA [--ping] [--echo-bytes N] (relay.mjs)
//
// `--muxer mplex` (anywhere) offers only /mplex/6.7.0 (@libp2p/mplex), as older js nodes do.
// Noise (or TLS with --security tls, before or after the command) + yamux over TCP, /ws or /wss (wssOptions), or QUIC v1
// (@chainsafe/libp2p-quic, built in TLS and streams), Ed25519 identity, serves /ipfs/ping/1.0.0, /ipfs/id/1.0.0 and
// /echo/1.0.0. Results are JSON lines on stdout; diagnostics go to stderr.

// js-libp2p 3.x calls Promise.withResolvers (Node.js >= 22); this machine has Node.js 20.
// It must be installed before any libp2p module is evaluated, hence the dynamic imports below.
Promise.withResolvers ??= function () {
  let resolve, reject
  const promise = new Promise((res, rej) => { resolve = res; reject = rej })
  return { promise, resolve, reject }
}

// @libp2p/websockets dials with the global WebSocket, which Node.js 20 lacks (Node 22 has it):
// the `ws` package it already depends on provides the same class.
globalThis.WebSocket ??= (await import('ws')).WebSocket

const { createLibp2p } = await import('libp2p')
const { noise } = await import('@chainsafe/libp2p-noise')
const { yamux } = await import('@chainsafe/libp2p-yamux')
const { tcp } = await import('@libp2p/tcp')
const { webSockets } = await import('@libp2p/websockets')
const { quic } = await import('@chainsafe/libp2p-quic')
const { ping } = await import('@libp2p/ping')
const { identify } = await import('@libp2p/identify')
const { multiaddr } = await import('@multiformats/multiaddr')
const { randomBytes } = await import('node:crypto')
const { readFileSync } = await import('node:fs')
const { performance } = await import('node:perf_hooks')

// `--security noise|tls` anywhere on the command line: the one connection encrypter offered.
const securityAt = process.argv.indexOf('--security')
const SECURITY = securityAt < 0 ? 'noise' : process.argv.splice(securityAt, 2)[1]
if (SECURITY !== 'noise' && SECURITY !== 'tls') usage('--security needs noise or tls')
const encrypter = SECURITY === 'tls' ? (await import('@libp2p/tls')).tls : noise

// `--muxer yamux|mplex` anywhere on the command line: the one stream muxer offered.
const muxerAt = process.argv.indexOf('--muxer')
const MUXER = muxerAt < 0 ? 'yamux' : process.argv.splice(muxerAt, 2)[1]
if (MUXER !== 'yamux' && MUXER !== 'mplex') usage('--muxer needs yamux or mplex')
const muxer = MUXER === 'mplex' ? (await import('@libp2p/mplex')).mplex : yamux

const ECHO_PROTOCOL = '/echo/1.0.0'
const PING_PROTOCOL = '/ipfs/ping/1.0.0'
const PING_LENGTH = 32
const CHUNK = 64 * 1024
// rapidp2p's tests may open many echo streams on one connection; js-libp2p's default is 32.
const STREAM_LIMIT = 1024

function usage (message) {
  process.stderr.write(`error: ${message}\n` +
    'usage: peer.mjs listen [--listen MULTIADDR]\n' +
    '       peer.mjs dial MULTIADDR [--ping] [--identify] [--echo-bytes N]\n' +
    '       peer.mjs pubsub --help\n')
  process.exit(2)
}

function parseArgs (argv) {
  const [command, ...rest] = argv
  const opts = { command, listen: '/ip4/127.0.0.1/tcp/0', target: null, ping: false, identify: false, echoBytes: null }
  if (command !== 'listen' && command !== 'dial') usage(`unknown command ${JSON.stringify(command)}`)
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i]
    if (command === 'listen' && arg === '--listen') {
      if (i + 1 >= rest.length) usage('--listen needs a multiaddr')
      opts.listen = rest[++i]
    } else if (command === 'dial' && arg === '--ping') {
      opts.ping = true
    } else if (command === 'dial' && arg === '--identify') {
      opts.identify = true
    } else if (command === 'dial' && arg === '--echo-bytes') {
      const n = Number(rest[++i])
      if (!Number.isSafeInteger(n) || n < 0) usage('--echo-bytes needs a non-negative integer')
      opts.echoBytes = n
    } else if (command === 'dial' && opts.target === null && !arg.startsWith('--')) {
      opts.target = arg
    } else {
      usage(`unexpected argument ${JSON.stringify(arg)}`)
    }
  }
  if (command === 'dial' && opts.target === null) usage('dial needs a MULTIADDR')
  return opts
}

/**
 * A `/wss` listener needs a certificate: PEM files named by RAPIDP2P_WSS_CERT and
 * RAPIDP2P_WSS_KEY (the tests' throwaway CA signed it). Dialing `/wss` verifies the server with
 * Node's trust store, which NODE_EXTRA_CA_CERTS extends with that CA.
 */
function wssOptions () {
  const cert = process.env.RAPIDP2P_WSS_CERT
  const key = process.env.RAPIDP2P_WSS_KEY
  if (!cert || !key) return {}
  return { https: { cert: readFileSync(cert), key: readFileSync(key) } }
}

/**
 * js-libp2p's defaults are kept (identify: one inbound and one outbound stream per connection;
 * ping: two inbound, one outbound), as a real js node has them. A dialer asked for --identify
 * runs identify itself instead of on connection open: two identify streams at once would break
 * that limit on either end.
 */
async function makeNode (listenAddrs, { identifyOnOpen = true } = {}) {
  const node = await createLibp2p({
    addresses: { listen: listenAddrs },
    transports: [tcp(), webSockets(wssOptions()), quic()],
    connectionEncrypters: [encrypter()],
    streamMuxers: [muxer()],
    services: { ping: ping(), identify: identify({ runOnConnectionOpen: identifyOnOpen }) }
  })
  await node.handle(ECHO_PROTOCOL, echoHandler, {
    maxInboundStreams: STREAM_LIMIT,
    maxOutboundStreams: STREAM_LIMIT
  })
  return node
}

/** Copies every byte back until the remote half-closes, then closes our write side. */
async function echoHandler (stream) {
  try {
    for await (const chunk of stream) {
      if (!stream.send(chunk)) await stream.onDrain()
    }
    await stream.close()
  } catch (err) {
    process.stderr.write(`echo handler: ${err?.stack ?? err}\n`)
    stream.abort(err)
  }
}

function emit (obj) {
  process.stdout.write(JSON.stringify(obj) + '\n')
}

/** Reads exactly n bytes from a stream iterator (chunks may be split or coalesced). */
async function readExactly (iterator, n) {
  const parts = []
  let got = 0
  while (got < n) {
    const { value, done } = await iterator.next()
    if (done) throw new Error(`stream ended after ${got} of ${n} bytes`)
    const bytes = value.subarray()
    parts.push(bytes)
    got += bytes.byteLength
  }
  return Buffer.concat(parts)
}

/**
 * Two 32-byte round trips on one ping stream; the second one is timed with a sub-millisecond
 * clock, so the figure leaves out protocol negotiation (js-libp2p negotiates lazily, with the
 * first write) and js-libp2p's own Date.now()-based whole-millisecond rounding.
 */
async function doPing (connection) {
  const stream = await connection.newStream(PING_PROTOCOL)
  const iterator = stream[Symbol.asyncIterator]()
  let rtt = 0
  for (let round = 0; round < 2; round++) {
    const payload = randomBytes(PING_LENGTH)
    const start = performance.now()
    stream.send(payload)
    const echoed = await readExactly(iterator, PING_LENGTH)
    rtt = performance.now() - start
    if (!echoed.equals(payload)) throw new Error('ping payload came back different')
  }
  await stream.close()
  return rtt
}

function observedText (ma) {
  const text = ma?.toString() ?? ''
  return text === '' || text === '/' ? null : text
}

async function doIdentify (node, connection) {
  const result = await node.services.identify.identify(connection)
  return {
    agent_version: result.agentVersion ?? '',
    protocol_version: result.protocolVersion ?? '',
    protocols: [...result.protocols],
    listen_addrs: result.listenAddrs.map((ma) => ma.toString()),
    // An empty observed_addr (py-libp2p 0.8.1 sends one on IPv6) decodes to "/": report null.
    observed_addr: observedText(result.observedAddr)
  }
}

/** Sends n random bytes, half-closes, reads until EOF and compares as the bytes arrive. */
async function doEcho (connection, n) {
  const stream = await connection.newStream(ECHO_PROTOCOL)
  const data = randomBytes(n)
  let offset = 0
  let same = true
  const reader = (async () => {
    for await (const chunk of stream) {
      const bytes = chunk.subarray()
      if (offset + bytes.byteLength > n || !data.subarray(offset, offset + bytes.byteLength).equals(bytes)) {
        same = false
      }
      offset += bytes.byteLength
    }
  })()
  for (let pos = 0; pos < n; pos += CHUNK) {
    if (!stream.send(data.subarray(pos, Math.min(pos + CHUNK, n)))) await stream.onDrain()
  }
  await stream.close()
  await reader
  if (offset !== n) process.stderr.write(`echo: sent ${n} bytes, got ${offset} back\n`)
  return same && offset === n
}

async function stopQuietly (node) {
  const timeout = new Promise((resolve) => setTimeout(resolve, 2000).unref())
  await Promise.race([node.stop().catch(() => {}), timeout])
}

async function listen (opts) {
  const node = await makeNode([opts.listen])
  await node.start()
  const wanted = multiaddr(opts.listen).toString().split('/')[1]
  const addrs = node.getMultiaddrs()
  const addr = addrs.find((ma) => ma.toString().split('/')[1] === wanted) ?? addrs[0]
  if (addr === undefined) throw new Error('listening on no address')
  process.stdout.write(`LISTENING ${addr.toString()}\n`)
  const shutdown = async () => {
    await stopQuietly(node)
    process.exit(0)
  }
  // A peer misbehaving on one connection must not take the listener down for the next test:
  // log what js-libp2p leaves unhandled and keep serving.
  process.on('unhandledRejection', (err) => process.stderr.write(`unhandled rejection: ${err?.stack ?? err}\n`))
  process.on('uncaughtException', (err) => process.stderr.write(`uncaught exception: ${err?.stack ?? err}\n`))
  process.on('SIGTERM', shutdown)
  process.on('SIGINT', shutdown)
  process.stdin.on('end', shutdown)
  process.stdin.on('error', shutdown)
  process.stdin.resume()
}

async function dial (opts) {
  const node = await makeNode([], { identifyOnOpen: !opts.identify })
  await node.start()
  let failed = false
  try {
    const connection = await node.dial(multiaddr(opts.target))
    if (opts.ping) emit({ ping_rtt_ms: await doPing(connection) })
    if (opts.identify) emit({ identify: await doIdentify(node, connection) })
    if (opts.echoBytes !== null) {
      const ok = await doEcho(connection, opts.echoBytes)
      emit({ echo_bytes: opts.echoBytes, ok })
      if (!ok) {
        process.stderr.write('echo: bytes differ\n')
        failed = true
      }
    }
  } catch (err) {
    process.stderr.write(`dial failed: ${err?.stack ?? err}\n`)
    failed = true
  }
  await stopQuietly(node)
  process.exit(failed ? 1 : 0)
}

if (process.argv[2] === 'mdns') {
  const { runMdns } = await import('./mdns.mjs')
  try {
    await runMdns(process.argv.slice(3))
  } catch (err) {
    process.stderr.write(`mdns failed: ${err?.stack ?? err}\n`)
    process.exit(1)
  }
} else if (process.argv[2] === 'relay-listen' || process.argv[2] === 'relay-dial') {
  const { runRelay } = await import('./relay.mjs')
  try {
    await runRelay(process.argv[2], process.argv.slice(3))
  } catch (err) {
    process.stderr.write(`${process.argv[2]} failed: ${err?.stack ?? err}\n`)
    process.exit(1)
  }
} else if (process.argv[2] === 'pubsub') {
  const { runPubsub } = await import('./pubsub.mjs')
  try {
    await runPubsub(process.argv.slice(3))
  } catch (err) {
    process.stderr.write(`pubsub failed: ${err?.stack ?? err}\n`)
    process.exit(1)
  }
} else {
  const opts = parseArgs(process.argv.slice(2))
  try {
    if (opts.command === 'listen') await listen(opts)
    else await dial(opts)
  } catch (err) {
    process.stderr.write(`${opts.command} failed: ${err?.stack ?? err}\n`)
    process.exit(1)
  }
}
