// Drives one headless Chromium (Debian's `chromium`, through puppeteer-core) for rapidp2p's
// browser interop tests. The page (index.html + bundle.js, built by ./build) is served from
// http://127.0.0.1:PORT/ — an http origin on loopback, a secure context as WebTransport will need.
//
//   node driver.mjs serve BUNDLE_DIR
//     launches Chromium once, prints `READY {"url":...,"browser":...}`, then answers one JSON
//     request per stdin line, {"ma": MULTIADDR, "ping": bool, "identify": bool,
//     "echo_bytes": N|null, "streams": N|null, "stream_bytes": N|null, "topic": T|null,
//     "publish": MSG|null, "expect": N|null, "timeout_ms": N}, with one JSON line {"results": [...],
//     "error": null|"...", "console": [...]}; each request runs in a fresh tab (a fresh
//     js-libp2p node). Exits when stdin closes.
//     {"listen": RELAY_MULTIADDR, "timeout_ms": N} opens a tab that stays: its node reserves on
//     the relay and listens on /webrtc through it; the answer adds {"listening": {peer, addrs},
//     "tab": ID}. {"close_tab": ID} closes it, answering {"inbound": [connections it saw],
//     "console": [...]}.
//   node driver.mjs dial BUNDLE_DIR MULTIADDR [--ping] [--identify] [--echo-bytes N]
//       [--streams N [--stream-bytes M]]
//     one request; prints the result lines as tests/interop/js-peer does, exit 0 only when
//     every check passed.
// Diagnostics go to stderr.
import { readFile } from 'node:fs/promises'
import { createServer } from 'node:http'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import puppeteer from 'puppeteer-core'

const FILES = { '/': ['index.html', 'text/html'], '/bundle.js': ['bundle.js', 'text/javascript'] }
const DEFAULT_TIMEOUT_MS = 60000
const CONSOLE_LIMIT = 200

function usage (msg) {
  process.stderr.write(`driver.mjs: ${msg}\n` +
    'usage: driver.mjs serve BUNDLE_DIR\n' +
    '       driver.mjs dial BUNDLE_DIR MULTIADDR [--ping] [--identify] [--echo-bytes N]\n' +
    '                  [--streams N [--stream-bytes M]]\n')
  process.exit(2)
}

function chromiumPath () {
  return process.env.RAPIDP2P_CHROMIUM || '/usr/bin/chromium'
}

/** Serves the two page files on 127.0.0.1 (an ephemeral port); resolves to the page URL. */
async function servePage (bundleDir) {
  const bodies = {}
  for (const [path, [file, type]] of Object.entries(FILES)) {
    bodies[path] = { body: await readFile(join(bundleDir, file)), type }
  }
  const server = createServer((req, res) => {
    const entry = bodies[new URL(req.url, 'http://x').pathname]
    if (entry === undefined) {
      res.writeHead(req.url === '/favicon.ico' ? 204 : 404).end() // no console noise for the icon
      return
    }
    res.writeHead(200, { 'content-type': entry.type, 'cache-control': 'no-store' }).end(entry.body)
  })
  await new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', resolve)
  })
  return { server, url: `http://127.0.0.1:${server.address().port}/` }
}

async function launch () {
  return puppeteer.launch({
    executablePath: chromiumPath(),
    headless: true,
    pipe: true, // DevTools over a pipe: no debugging port
    // --no-sandbox: the tests run as root in CI containers, where Chromium's sandbox cannot start.
    // --allow-loopback-in-peer-connection: WebRTC ignores 127.0.0.1 candidates otherwise, and
    // the /webrtc-direct tests dial a host on loopback.
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run',
      '--allow-loopback-in-peer-connection',
      // /webrtc: real host candidates in the SDP, not mDNS names (rapidp2p resolves none)
      '--disable-features=WebRtcHideLocalIpsWithMdns'],
    protocolTimeout: 180000
  })
}

/** Tabs left open by `listen` requests, by id: {page, console}. */
const listeners = new Map()
let nextTab = 1

/** Runs one dial request in a fresh tab; never throws (failures come back as `error`). */
async function runRequest (browser, pageUrl, req) {
  if (req.close_tab !== undefined) return await closeTab(req.close_tab)
  const listen = req.listen !== undefined && req.listen !== null
  const query = new URLSearchParams(listen ? { listen: String(req.listen) } : { ma: String(req.ma) })
  if (req.ping) query.set('ping', '1')
  if (req.identify) query.set('identify', '1')
  if (req.echo_bytes !== undefined && req.echo_bytes !== null) query.set('echo', String(req.echo_bytes))
  if (req.streams !== undefined && req.streams !== null) {
    query.set('streams', String(req.streams))
    if (req.stream_bytes !== undefined && req.stream_bytes !== null) query.set('stream_bytes', String(req.stream_bytes))
  }
  if (req.topic !== undefined && req.topic !== null) {
    query.set('topic', String(req.topic))
    if (req.publish !== undefined && req.publish !== null) query.set('publish', String(req.publish))
    if (req.expect !== undefined && req.expect !== null) query.set('expect', String(req.expect))
  }
  const timeout = Number(req.timeout_ms ?? DEFAULT_TIMEOUT_MS)
  const consoleLines = []
  const note = (line) => { if (consoleLines.length < CONSOLE_LIMIT) consoleLines.push(line) }
  let page = null
  try {
    page = await browser.newPage()
    page.on('console', (msg) => note(`${msg.type()}: ${msg.text()}`))
    page.on('pageerror', (err) => note(`pageerror: ${err?.message ?? err}`))
    await page.goto(`${pageUrl}?${query}`, { waitUntil: 'load', timeout })
    await page.waitForFunction(() => window.rapidp2pResult !== undefined, { timeout, polling: 50 })
    const outcome = await page.evaluate(() => window.rapidp2pResult)
    if (listen && outcome.error === null) {
      const tab = nextTab++
      listeners.set(tab, { page, console: consoleLines })
      page = null // stays open until {"close_tab": tab}
      return { results: outcome.results, error: null, listening: outcome.listening, tab, console: consoleLines }
    }
    return { results: outcome.results, error: outcome.error, console: consoleLines }
  } catch (err) {
    return { results: [], error: `driver: ${err?.name ?? 'Error'}: ${err?.message ?? err}`, console: consoleLines }
  } finally {
    if (page !== null) await page.close().catch(() => {})
  }
}

/** Closes a listening tab; answers what its node saw (connections opened, pings back). */
async function closeTab (tab) {
  const entry = listeners.get(tab)
  if (entry === undefined) return { results: [], error: `driver: no listening tab ${tab}`, console: [] }
  listeners.delete(tab)
  let inbound = []
  let error = null
  try {
    // the page pings back over every /webrtc connection it saw: wait for those outcomes
    await entry.page.waitForFunction(() => (window.rapidp2pInbound ?? []).every((c) =>
      !c.remote_addr.includes('/webrtc') || c.remote_addr.includes('/webrtc-direct') ||
      c.ping_rtt_ms !== undefined || c.ping_error !== undefined), { timeout: 25000, polling: 50 })
    inbound = await entry.page.evaluate(() => window.rapidp2pInbound ?? [])
  } catch (err) {
    error = `driver: ${err?.name ?? 'Error'}: ${err?.message ?? err}`
  }
  await entry.page.close().catch(() => {})
  return { results: [], error, inbound, console: entry.console }
}

async function serve (bundleDir) {
  const { server, url } = await servePage(bundleDir)
  const browser = await launch()
  const version = await browser.version()
  process.stdout.write(`READY ${JSON.stringify({ url, browser: version })}\n`)
  const shutdown = async () => {
    await browser.close().catch(() => {})
    server.close()
    process.exit(0)
  }
  const lines = createInterface({ input: process.stdin })
  for await (const line of lines) {
    if (!line.trim()) continue
    let req
    try {
      req = JSON.parse(line)
    } catch (err) {
      process.stdout.write(JSON.stringify({ results: [], error: `driver: bad request ${line}`, console: [] }) + '\n')
      continue
    }
    process.stdout.write(JSON.stringify(await runRequest(browser, url, req)) + '\n')
  }
  await shutdown()
}

async function dialOnce (bundleDir, argv) {
  const req = { ma: null, ping: false, identify: false, echo_bytes: null, streams: null, stream_bytes: null }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    if (arg === '--ping') req.ping = true
    else if (arg === '--identify') req.identify = true
    else if (arg === '--echo-bytes') req.echo_bytes = Number.parseInt(argv[++i], 10)
    else if (arg === '--streams') req.streams = Number.parseInt(argv[++i], 10)
    else if (arg === '--stream-bytes') req.stream_bytes = Number.parseInt(argv[++i], 10)
    else if (req.ma === null && !arg.startsWith('--')) req.ma = arg
    else usage(`unexpected argument ${JSON.stringify(arg)}`)
  }
  if (req.ma === null) usage('dial needs a MULTIADDR')
  const { server, url } = await servePage(bundleDir)
  const browser = await launch()
  const outcome = await runRequest(browser, url, req)
  await browser.close().catch(() => {})
  server.close()
  for (const line of outcome.results) process.stdout.write(JSON.stringify(line) + '\n')
  for (const line of outcome.console) process.stderr.write(`console ${line}\n`)
  const failed = outcome.error !== null || outcome.results.some((r) => r.ok === false)
  if (outcome.error !== null) process.stderr.write(`dial failed: ${outcome.error}\n`)
  process.exit(failed ? 1 : 0)
}

const [command, bundleDir, ...rest] = process.argv.slice(2)
if (bundleDir === undefined) usage('missing BUNDLE_DIR')
try {
  if (command === 'serve') await serve(bundleDir)
  else if (command === 'dial') await dialOnce(bundleDir, rest)
  else usage(`unknown command ${JSON.stringify(command)}`)
} catch (err) {
  process.stderr.write(`driver.mjs failed: ${err?.stack ?? err}\n`)
  process.exit(1)
}
