// js-libp2p @libp2p/http interop peer for rapidp2p's HTTP-over-libp2p tests.
//
//   node peer.mjs http-serve [--listen MULTIADDR]
//       prints LISTENING <ma>/p2p/<id>; serves over /http/1.1 streams:
//         /rapidp2p-test/echo/1   at /echo/   GET, POST -> JSON {method, path, query, body_len, x_test}
//         /rapidp2p-test/digest/1 at /digest/ POST -> "<bytes> <sha256 hex>" of the body
//       and @libp2p/http's /.well-known/libp2p/protocols document. (@libp2p/http routes exact
//       paths, not prefixes: the handlers answer exactly /echo/ and /digest/.)
//   node peer.mjs http-get|http-post|http-wellknown --connect MULTIADDR [--path P]
//       [--protocol ID] [--bytes N]
//       one JSON line {status, headers, body, ...}; with --protocol the path comes from the
//       peer's well-known document (fetchProtocol).
//
// Noise + yamux over TCP, Ed25519 identity. Diagnostics go to stderr.

// js-libp2p 3.x calls Promise.withResolvers (Node.js >= 22); this machine has Node.js 20.
// It must be installed before any libp2p module is evaluated, hence the dynamic imports below.
Promise.withResolvers ??= function () {
  let resolve, reject
  const promise = new Promise((res, rej) => { resolve = res; reject = rej })
  return { promise, resolve, reject }
}

const { createLibp2p } = await import('libp2p')
const { noise } = await import('@chainsafe/libp2p-noise')
const { yamux } = await import('@chainsafe/libp2p-yamux')
const { tcp } = await import('@libp2p/tcp')
const { identify } = await import('@libp2p/identify')
const { http } = await import('@libp2p/http')
const { multiaddr } = await import('@multiformats/multiaddr')
const { createHash } = await import('node:crypto')

const WELL_KNOWN = '.well-known/libp2p/protocols'

function usage (message) {
  process.stderr.write(`error: ${message}\n` +
    'usage: peer.mjs http-serve [--listen MULTIADDR]\n' +
    '       peer.mjs http-get|http-post|http-wellknown --connect MA [--path P] [--protocol ID] [--bytes N]\n')
  process.exit(2)
}

function parseArgs (argv) {
  const [command, ...rest] = argv
  const opts = { command, listen: '/ip4/127.0.0.1/tcp/0', connect: null, path: '/', protocol: null, bytes: 0 }
  if (!['http-serve', 'http-get', 'http-post', 'http-wellknown'].includes(command)) {
    usage(`unknown command ${JSON.stringify(command)}`)
  }
  for (let i = 0; i < rest.length; i += 2) {
    const [flag, value] = [rest[i], rest[i + 1]]
    if (value === undefined) usage(`${flag} needs a value`)
    if (flag === '--listen' && command === 'http-serve') opts.listen = value
    else if (flag === '--connect') opts.connect = value
    else if (flag === '--path') opts.path = value
    else if (flag === '--protocol') opts.protocol = value
    else if (flag === '--bytes') {
      opts.bytes = Number(value)
      if (!Number.isSafeInteger(opts.bytes) || opts.bytes < 0) usage('--bytes needs a non-negative integer')
    } else usage(`unexpected argument ${JSON.stringify(flag)}`)
  }
  if (command !== 'http-serve' && opts.connect === null) usage('--connect MULTIADDR is required')
  return opts
}

async function newNode (listen) {
  return createLibp2p({
    addresses: { listen: listen ? [listen] : [] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: { identify: identify(), http: http() }
  })
}

async function serve (opts) {
  const node = await newNode(opts.listen)
  node.services.http.handle('/rapidp2p-test/echo/1', {
    path: '/echo/',
    method: ['GET', 'POST', 'PUT'],
    handler: async (req) => {
      const body = new Uint8Array(await req.arrayBuffer())
      const url = new URL(req.url)
      return new Response(JSON.stringify({
        method: req.method,
        path: url.pathname,
        query: url.search.replace(/^\?/, ''),
        body_len: body.length,
        x_test: req.headers.get('x-test')
      }), { headers: { 'content-type': 'application/json', 'x-served-by': 'js-libp2p' } })
    }
  })
  node.services.http.handle('/rapidp2p-test/digest/1', {
    path: '/digest/',
    method: ['POST'],
    handler: async (req) => {
      const hash = createHash('sha256')
      let n = 0
      for await (const chunk of req.body ?? []) {
        hash.update(chunk)
        n += chunk.length
      }
      return new Response(`${n} ${hash.digest('hex')}`, { headers: { 'content-type': 'text/plain' } })
    }
  })
  process.on('unhandledRejection', (err) => { process.stderr.write(`unhandled: ${err?.stack ?? err}\n`) })
  const addr = node.getMultiaddrs().find(ma => ma.toString().includes('/tcp/'))
  process.stdout.write(`LISTENING ${addr.toString()}\n`)
  const stop = async () => { await node.stop(); process.exit(0) }
  process.stdin.on('end', stop)
  process.stdin.resume()
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)
}

function deterministicBytes (n) {
  const out = new Uint8Array(n)
  let x = 0x12345678
  for (let i = 0; i < n; i++) {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5
    out[i] = x & 0xff
  }
  return out
}

async function call (opts) {
  const node = await newNode(null)
  const target = multiaddr(opts.connect)
  const result = {}
  const init = { method: 'GET', headers: { 'x-test': 'from-js' }, signal: AbortSignal.timeout(60_000) }
  if (opts.command === 'http-post') {
    const data = deterministicBytes(opts.bytes)
    init.method = 'POST'
    init.body = data
    result.sent_bytes = data.length
    result.sent_sha256 = createHash('sha256').update(data).digest('hex')
  }
  let response
  if (opts.protocol !== null) {
    response = await node.services.http.fetchProtocol(target, opts.protocol, init)
  } else {
    const path = opts.command === 'http-wellknown' ? WELL_KNOWN : opts.path.replace(/^\//, '')
    if (opts.command === 'http-wellknown') init.headers.accept = 'application/json'
    response = await node.services.http.fetch(target.encapsulate('/http-path/' + encodeURIComponent(path)), init)
  }
  const body = await response.text()
  result.status = response.status
  result.headers = Object.fromEntries([...response.headers].map(([k, v]) => [k.toLowerCase(), v]))
  result.body = body
  if (opts.command === 'http-wellknown') result.well_known = JSON.parse(body)
  process.stdout.write(JSON.stringify(result) + '\n')
  await node.stop()
}

const opts = parseArgs(process.argv.slice(2))
try {
  if (opts.command === 'http-serve') await serve(opts)
  else await call(opts)
} catch (err) {
  process.stderr.write(`js-http-peer: ${err?.stack ?? err}\n`)
  process.exit(1)
}
