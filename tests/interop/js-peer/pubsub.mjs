// pubsub: GossipSub with js-libp2p (@libp2p/gossipsub), for tests/pubsub/test_pubsub_interop.py:
//
//   node peer.mjs pubsub --topic T [--listen MA] [--connect MA]... [--publish MSG]...
//       [--router gossipsub|floodsub]
//
// The same contract as the go and rust peers: it subscribes to T, prints
// "LISTENING <ma>/p2p/<id>" once listening and subscribed, dials every --connect; once a peer
// subscribed to T is connected it publishes each --publish (printing "PUBLISHED <msg>"), and
// prints "RECEIVED <data>" for every message another peer published on T, until killed or stdin
// closes. Messages are signed and verified (StrictSign), peer scoring is on (the go peer's mild
// parameters), flood publishing is on, and message IDs are go-libp2p-pubsub's default
// (from || seqno) instead of js-libp2p's (protobuf public key || seqno).
//
// Import this module only after peer.mjs has installed the Promise.withResolvers polyfill.

import { createLibp2p } from 'libp2p'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { tcp } from '@libp2p/tcp'
import { ping } from '@libp2p/ping'
import { identify } from '@libp2p/identify'
import { gossipsub, StrictSign } from '@libp2p/gossipsub'
import { floodsub } from '@libp2p/floodsub'
import { multiaddr } from '@multiformats/multiaddr'

export const PUBSUB_USAGE = 'usage: peer.mjs pubsub --topic T [--listen MULTIADDR] [--connect MULTIADDR]... ' +
  '[--publish MSG]... [--router gossipsub|floodsub]\n'

const DEFAULT_LISTEN = '/ip4/127.0.0.1/tcp/0'
const CONNECT_TIMEOUT_MS = 30_000
// How often the publisher looks for a subscribed peer it can write to: js-libp2p opens its
// outbound pubsub stream without an event saying so, and may learn of the remote's subscription
// (on the remote's stream) before that stream exists; a message published then reaches nobody.
const READY_POLL_MS = 50

function usageExit (message) {
  process.stderr.write(`js-peer: ${message}\n${PUBSUB_USAGE}`)
  process.exit(2)
}

/** Parses the arguments after `pubsub`; prints the usage and exits 0 on --help, 2 on misuse. */
export function parsePubsubArgs (args) {
  const opts = { topic: '', listen: DEFAULT_LISTEN, connect: [], publish: [], router: 'gossipsub' }
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]
    if (arg === '-h' || arg === '--help') {
      process.stdout.write(PUBSUB_USAGE)
      process.exit(0)
    }
    if (!['--topic', '--listen', '--connect', '--publish', '--router'].includes(arg)) {
      usageExit(`unexpected argument ${JSON.stringify(arg)}`)
    }
    if (i + 1 >= args.length) usageExit(`${arg} needs a value`)
    const value = args[++i]
    if (arg === '--topic') opts.topic = value
    else if (arg === '--listen') opts.listen = value
    else if (arg === '--connect') opts.connect.push(value)
    else if (arg === '--publish') opts.publish.push(value)
    else opts.router = value
  }
  if (opts.topic === '') usageExit('pubsub needs --topic')
  if (opts.router !== 'gossipsub' && opts.router !== 'floodsub') {
    usageExit('--router must be gossipsub or floodsub')
  }
  return opts
}

/** go-libp2p-pubsub's DefaultMsgIdFn: the `from` bytes (a peer ID multihash), then the seqno. */
function goDefaultMsgId (msg) {
  if (msg.type !== 'signed') throw new Error('StrictSign: unsigned message has no message ID')
  const from = msg.from.toMultihash().bytes
  // StrictSign validation has checked that the seqno on the wire is exactly 8 bytes.
  const seqno = new Uint8Array(8)
  new DataView(seqno.buffer).setBigUint64(0, msg.sequenceNumber)
  const id = new Uint8Array(from.byteLength + seqno.byteLength)
  id.set(from, 0)
  id.set(seqno, from.byteLength)
  return id
}

/**
 * The go peer's scoring: on, with mild weights, so misbehaviour is penalised but nothing a
 * well-behaved peer on loopback does (several peers share 127.0.0.1) costs it anything.
 */
const SCORE_PARAMS = {
  topics: {},
  appSpecificScore: () => 0,
  appSpecificWeight: 1,
  IPColocationFactorWeight: 0,
  behaviourPenaltyWeight: -10,
  behaviourPenaltyThreshold: 6,
  behaviourPenaltyDecay: 0.9,
  decayInterval: 1000,
  decayToZero: 0.01,
  retainScore: 30_000
}
const SCORE_THRESHOLDS = {
  gossipThreshold: -100,
  publishThreshold: -200,
  graylistThreshold: -300,
  acceptPXThreshold: 10,
  opportunisticGraftThreshold: 5
}

function pubsubService (router) {
  if (router === 'floodsub') return floodsub({ globalSignaturePolicy: StrictSign })
  return gossipsub({
    globalSignaturePolicy: StrictSign,
    msgIdFn: goDefaultMsgId,
    scoreParams: SCORE_PARAMS,
    scoreThresholds: SCORE_THRESHOLDS,
    // A publisher's own messages go to every topic peer above the publish threshold, so
    // --publish works before the first heartbeat has built a mesh (as in the go peer).
    floodPublish: true
  })
}

/** True once some peer subscribed to `topic` has an outbound stream we can publish on. */
function canPublish (ps, router, topic) {
  return ps.getSubscribers(topic).some((peer) => router === 'floodsub'
    ? ps.peers.get(peer)?.outboundPb != null
    : ps.streamsOutbound.has(peer.toString()))
}

function say (line) {
  process.stdout.write(`${line}\n`)
}

async function stopQuietly (node) {
  const timeout = new Promise((resolve) => setTimeout(resolve, 2000).unref())
  await Promise.race([node.stop().catch(() => {}), timeout])
}

/** Runs `pubsub` until stdin closes or SIGINT/SIGTERM arrives; throws on a setup failure. */
export async function runPubsub (args) {
  const opts = parsePubsubArgs(args)
  const node = await createLibp2p({
    addresses: { listen: [opts.listen] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: { ping: ping(), identify: identify(), pubsub: pubsubService(opts.router) }
  })
  let stopping = false
  const shutdown = async () => {
    if (stopping) return
    stopping = true
    await stopQuietly(node)
    process.exit(0)
  }
  // A misbehaving remote must not take the peer down mid-test: log what js-libp2p leaves
  // unhandled and keep going.
  process.on('unhandledRejection', (err) => process.stderr.write(`unhandled rejection: ${err?.stack ?? err}\n`))
  process.on('uncaughtException', (err) => process.stderr.write(`uncaught exception: ${err?.stack ?? err}\n`))
  process.on('SIGTERM', shutdown)
  process.on('SIGINT', shutdown)
  process.stdin.on('end', shutdown)
  process.stdin.on('error', shutdown)
  process.stdin.resume()

  await node.start()
  const ps = node.services.pubsub
  ps.addEventListener('message', (event) => {
    const msg = event.detail
    if (msg.topic !== opts.topic) return
    if (msg.type === 'signed' && msg.from.equals(node.peerId)) return // our own publication
    say(`RECEIVED ${Buffer.from(msg.data).toString('utf8')}`)
  })
  ps.subscribe(opts.topic)

  const wanted = multiaddr(opts.listen).toString().split('/')[1]
  const addrs = node.getMultiaddrs()
  const addr = addrs.find((ma) => ma.toString().split('/')[1] === wanted) ?? addrs[0]
  if (addr === undefined) throw new Error('listening on no address')
  const text = addr.toString()
  say(`LISTENING ${text.includes('/p2p/') ? text : `${text}/p2p/${node.peerId}`}`)

  for (const target of opts.connect) {
    let ma
    try {
      ma = multiaddr(target)
    } catch (err) {
      throw new Error(`bad multiaddr ${JSON.stringify(target)}: ${err.message}`)
    }
    try {
      await node.dial(ma, { signal: AbortSignal.timeout(CONNECT_TIMEOUT_MS) })
    } catch (err) {
      throw new Error(`connect ${target}: ${err?.message ?? err}`)
    }
  }

  if (opts.publish.length > 0) {
    while (!stopping && !canPublish(ps, opts.router, opts.topic)) {
      await new Promise((resolve) => setTimeout(resolve, READY_POLL_MS))
    }
    for (const m of opts.publish) {
      if (stopping) return
      await ps.publish(opts.topic, new TextEncoder().encode(m))
      say(`PUBLISHED ${m}`)
    }
  }
}
