// The browser side of rapidp2p's browser interop tests: js-libp2p (WebSocket and WebRTC-direct
// transports, Noise, yamux, ping, identify) bundled by esbuild into bundle.js and loaded by index.html.
//
// The page reads one dial request from its URL query:
//   ?ma=MULTIADDR[&ping=1][&identify=1][&echo=N][&streams=N&stream_bytes=M]
//     [&topic=T&publish=MSG&expect=N]
// dials MULTIADDR, runs the requested checks and publishes the outcome as
//   window.rapidp2pResult = { results: [ {ping_rtt_ms}, {identify}, {echo_bytes, ok},
//                                        {streams, stream_bytes, ok, failures},
//                                        {pubsub: {topic, published, received}} ], error }
// (results are the JSON lines tests/interop/js-peer prints; error is null or the failure text),
// and also as JSON in <pre id="result">. driver.mjs waits for window.rapidp2pResult.
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { gossipsub } from '@libp2p/gossipsub'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { webRTC, webRTCDirect } from '@libp2p/webrtc'
import { webTransport } from '@libp2p/webtransport'
import { webSockets } from '@libp2p/websockets'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'

const ECHO_PROTOCOL = '/echo/1.0.0'
const PING_PROTOCOL = '/ipfs/ping/1.0.0'
const PING_LENGTH = 32
const CHUNK = 64 * 1024
const RANDOM_MAX = 65536 // crypto.getRandomValues fills at most 64 KiB per call

function randomBytes (n) {
  const out = new Uint8Array(n)
  for (let pos = 0; pos < n; pos += RANDOM_MAX) {
    crypto.getRandomValues(out.subarray(pos, Math.min(pos + RANDOM_MAX, n)))
  }
  return out
}

function sameBytes (a, b) {
  if (a.byteLength !== b.byteLength) return false
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false
  return true
}

/** Reads exactly n bytes from a stream iterator (chunks may be split or coalesced). */
async function readExactly (iterator, n) {
  const out = new Uint8Array(n)
  let got = 0
  while (got < n) {
    const { value, done } = await iterator.next()
    if (done) throw new Error(`stream ended after ${got} of ${n} bytes`)
    const bytes = value.subarray()
    if (got + bytes.byteLength > n) throw new Error(`got ${got + bytes.byteLength} bytes, wanted ${n}`)
    out.set(bytes, got)
    got += bytes.byteLength
  }
  return out
}

/** Two 32-byte round trips on one ping stream; the second is timed (negotiation left out). */
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
    if (!sameBytes(echoed, payload)) throw new Error('ping payload came back different')
  }
  await stream.close()
  return rtt
}

async function doIdentify (node, connection) {
  const result = await node.services.identify.identify(connection)
  const observed = result.observedAddr?.toString() ?? ''
  return {
    agent_version: result.agentVersion ?? '',
    protocol_version: result.protocolVersion ?? '',
    protocols: [...result.protocols],
    listen_addrs: result.listenAddrs.map((ma) => ma.toString()),
    observed_addr: observed === '' || observed === '/' ? null : observed
  }
}

/** Sends n pseudo-random bytes, half-closes, reads to EOF, compares as the bytes arrive. */
async function doEcho (connection, n) {
  const stream = await connection.newStream(ECHO_PROTOCOL)
  const data = randomBytes(n)
  let offset = 0
  let same = true
  const reader = (async () => {
    for await (const chunk of stream) {
      const bytes = chunk.subarray()
      const end = offset + bytes.byteLength
      if (end > n || !sameBytes(data.subarray(offset, end), bytes)) same = false
      offset = end
    }
  })()
  for (let pos = 0; pos < n; pos += CHUNK) {
    if (!stream.send(data.subarray(pos, Math.min(pos + CHUNK, n)))) await stream.onDrain()
  }
  await stream.close()
  await reader
  return { echo_bytes: n, received: offset, ok: same && offset === n }
}

/** Opens an echo stream, sends `data` and starts reading; resolves to {stream, reply}. */
async function openEcho (connection, data, maxOutboundStreams) {
  const stream = await connection.newStream(ECHO_PROTOCOL, { maxOutboundStreams })
  const reply = (async () => {
    const chunks = []
    let length = 0
    for await (const chunk of stream) {
      const bytes = chunk.subarray()
      chunks.push(bytes)
      length += bytes.byteLength
      if (length > data.byteLength) return false
    }
    const got = new Uint8Array(length)
    let pos = 0
    for (const bytes of chunks) { got.set(bytes, pos); pos += bytes.byteLength }
    return sameBytes(got, data)
  })()
  if (!stream.send(data)) await stream.onDrain()
  return { stream, reply }
}

/**
 * n echo streams open at the same time on one connection, each with its own m pseudo-random
 * bytes (a payload delivered on the wrong stream is caught). Every stream is opened and
 * written before any is half-closed, so the server holds all n at once. js-libp2p allows 64
 * outbound streams per protocol by default: the limit is raised for these calls only.
 */
async function doStreams (connection, n, m) {
  const payloads = Array.from({ length: n }, () => randomBytes(m))
  const opened = await Promise.allSettled(payloads.map((data) => openEcho(connection, data, n + 1)))
  const failures = []
  const replies = opened.map(async (outcome, i) => {
    if (outcome.status === 'rejected') throw outcome.reason
    await outcome.value.stream.close()
    if (!(await outcome.value.reply)) throw new Error('echo differs')
  })
  const settled = await Promise.allSettled(replies)
  settled.forEach((outcome, i) => {
    if (outcome.status === 'rejected') failures.push(`stream ${i}: ${outcome.reason?.message ?? outcome.reason}`)
  })
  return { streams: n, stream_bytes: m, ok: failures.length === 0, failures: failures.slice(0, 5) }
}

/** go-libp2p-pubsub's default message id (from || seqno), the one rapidp2p uses too. */
function fromSeqnoMsgId (msg) {
  if (msg.type !== 'signed') throw new Error('StrictSign: an unsigned message has no id')
  const from = msg.from.toMultihash().bytes
  const seqno = new Uint8Array(8)
  new DataView(seqno.buffer).setBigUint64(0, msg.sequenceNumber)
  const id = new Uint8Array(from.byteLength + seqno.byteLength)
  id.set(from, 0)
  id.set(seqno, from.byteLength)
  return id
}

/**
 * GossipSub on `topic` with the dialed peer: subscribes, waits until the remote is subscribed
 * and an outbound pubsub stream to it exists (a message published earlier reaches nobody),
 * publishes `publish`, then waits until `received` (filled by run's listener, attached before
 * the dial so nothing published early is missed) holds `expect` messages.
 */
async function doPubsub (node, remotePeer, topic, publish, expect, received, timeoutMs) {
  const ps = node.services.pubsub
  const deadline = performance.now() + timeoutMs
  const until = async (cond, what) => {
    while (!cond()) {
      if (performance.now() > deadline) throw new Error(`pubsub: timed out waiting for ${what}`)
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  }
  await until(() => ps.getSubscribers(topic).some((p) => p.equals(remotePeer)) &&
    ps.streamsOutbound.has(remotePeer.toString()), 'the remote to subscribe')
  let published = false
  if (publish !== null) {
    const result = await ps.publish(topic, new TextEncoder().encode(publish))
    published = result.recipients.some((p) => p.equals(remotePeer))
  }
  await until(() => received.length >= expect, `${expect} message(s)`)
  return { pubsub: { topic, published, received } }
}

/**
 * The transports of one node. /webrtc-direct: the browser's RTCPeerConnection, Noise on data
 * channel 0 (its own muxing). /webtransport: the browser's WebTransport (serverCertificateHashes
 * from /certhash), Noise on the first stream, one WebTransport stream per libp2p stream.
 * With `relayed` also /p2p-circuit (Circuit Relay v2 over /ws) and /webrtc (private-to-private:
 * SDP and ICE candidates over /webrtc-signaling/0.0.1 on a relayed connection), with no STUN
 * server: the tests stay on loopback, whose host candidates are all ICE needs.
 */
function transportsFor (relayed) {
  const transports = [webSockets(), webRTCDirect(), webTransport()]
  if (relayed) transports.push(circuitRelayTransport(), webRTC({ rtcConfiguration: { iceServers: [] } }))
  return transports
}

async function run (params) {
  const listenVia = params.get('listen')
  if (listenVia !== null) return await listen(listenVia)
  const target = params.get('ma')
  if (target === null) throw new Error('no ?ma=MULTIADDR in the page URL')
  const topic = params.get('topic')
  const services = { ping: ping(), identify: identify({ runOnConnectionOpen: topic !== null }) }
  // GossipSub learns that the remote speaks it from identify, so identify runs on open then.
  if (topic !== null) services.pubsub = gossipsub({ msgIdFn: fromSeqnoMsgId, floodPublish: true })
  const node = await createLibp2p({
    transports: transportsFor(target.includes('/p2p-circuit')),
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    // The browser default refuses insecure /ws and private (loopback) addresses: the tests
    // dial a rapidp2p host on 127.0.0.1 over plain /ws.
    connectionGater: { denyDialMultiaddr: () => false },
    services
  })
  const received = []
  if (topic !== null) {
    node.services.pubsub.addEventListener('message', (evt) => {
      if (evt.detail.topic === topic) received.push(new TextDecoder().decode(evt.detail.data))
    })
    node.services.pubsub.subscribe(topic)
  }
  const results = []
  try {
    const connection = await node.dial(multiaddr(target), { signal: AbortSignal.timeout(30000) })
    results.push({
      connected: {
        local_peer: node.peerId.toString(),
        remote_peer: connection.remotePeer.toString(),
        remote_addr: connection.remoteAddr.toString(),
        encryption: connection.encryption ?? null,
        multiplexer: connection.multiplexer ?? null
      }
    })
    if (params.get('ping') === '1') results.push({ ping_rtt_ms: await doPing(connection) })
    if (params.get('identify') === '1') results.push({ identify: await doIdentify(node, connection) })
    const echo = params.get('echo')
    if (echo !== null) results.push(await doEcho(connection, Number.parseInt(echo, 10)))
    const streams = params.get('streams')
    if (streams !== null) {
      const bytes = Number.parseInt(params.get('stream_bytes') ?? '1024', 10)
      results.push(await doStreams(connection, Number.parseInt(streams, 10), bytes))
    }
    if (topic !== null) {
      const expect = Number.parseInt(params.get('expect') ?? '0', 10)
      results.push(await doPubsub(node, connection.remotePeer, topic, params.get('publish'), expect, received, 30000))
    }
    return { results, error: null }
  } catch (err) {
    return { results, error: `${err?.name ?? 'Error'}: ${err?.message ?? err}` }
  } finally {
    await node.stop().catch(() => {})
  }
}

/**
 * Listen mode (`?listen=RELAY_MULTIADDR`): reserves a slot on the relay and listens on /webrtc
 * through it; once the node has its `<relay>/p2p-circuit/webrtc/p2p/<us>` address it publishes
 * `window.rapidp2pListening = {peer, addrs}` and serves ping and echo until the tab closes.
 * Every connection that opens is appended to `window.rapidp2pInbound` ({remote_peer,
 * remote_addr, direction, limited}), and the result of a ping back over each /webrtc one
 * (`ping_rtt_ms` or `ping_error`), so a test can see which transport a peer reached it by
 * and that the connection carries streams both ways.
 */
async function listen (relay) {
  const node = await createLibp2p({
    addresses: { listen: [`${relay}/p2p-circuit`, '/webrtc'] },
    transports: transportsFor(true),
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionGater: { denyDialMultiaddr: () => false },
    services: { ping: ping(), identify: identify() }
  })
  window.rapidp2pNode = node // kept alive (and reachable from the console) until the tab closes
  await node.handle(ECHO_PROTOCOL, async (stream) => {
    // echo: every chunk back, then close once the remote half-closed
    for await (const chunk of stream) {
      if (!stream.send(chunk)) await stream.onDrain()
    }
    await stream.close()
  })
  window.rapidp2pInbound = []
  node.addEventListener('connection:open', (evt) => {
    const connection = evt.detail
    const entry = {
      remote_peer: connection.remotePeer.toString(),
      remote_addr: connection.remoteAddr.toString(),
      direction: connection.direction,
      limited: connection.limits != null
    }
    window.rapidp2pInbound.push(entry)
    if (entry.remote_addr.includes('/webrtc') && !entry.remote_addr.includes('/webrtc-direct')) {
      // a ping back over the /webrtc connection: streams work in the other direction too
      node.services.ping.ping(connection.remotePeer, { signal: AbortSignal.timeout(20000) })
        .then((rtt) => { entry.ping_rtt_ms = rtt }, (err) => { entry.ping_error = `${err?.name}: ${err?.message}` })
    }
  })
  const deadline = performance.now() + 30000
  for (;;) {
    const addrs = node.getMultiaddrs().map((ma) => ma.toString())
    if (addrs.some((ma) => ma.includes('/p2p-circuit/webrtc'))) {
      return { listening: { peer: node.peerId.toString(), addrs }, results: [], error: null }
    }
    if (performance.now() > deadline) throw new Error(`no /p2p-circuit/webrtc address within 30 s (have ${addrs})`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

function publish (outcome) {
  document.getElementById('result').textContent = JSON.stringify(outcome)
  window.rapidp2pResult = outcome
}

run(new URLSearchParams(window.location.search)).then(publish, (err) => {
  publish({ results: [], error: `${err?.name ?? 'Error'}: ${err?.message ?? err}` })
})
