// The real processes the client's tests run against: redis-server and
// signal-node on free loopback ports, and tokens minted by signal-token.
// Binaries come from SIGNAL_NODE_BIN / SIGNAL_TOKEN_BIN (tools/test.sh sets
// them), else from the repository's build/bin.
import { spawn, execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const NODE_BIN = process.env.SIGNAL_NODE_BIN || path.join(ROOT, 'build/bin/signal-node');
export const TOKEN_BIN = process.env.SIGNAL_TOKEN_BIN || path.join(ROOT, 'build/bin/signal-token');
export const HOST = '127.0.0.1';
export const SECRET = 'web-test-secret-0123456789abcdef';

/** A room id: a lower-case GUID. */
export function newRoom() {
  return randomUUID();
}

/** A TCP port that was free on HOST a moment ago. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, HOST, () => {
      const { port } = /** @type {net.AddressInfo} */ (srv.address());
      srv.close(() => resolve(port));
    });
  });
}

/** Resolves once HOST:port accepts a TCP connection; rejects after timeoutMs or if proc exits. */
export async function waitPort(port, proc, timeoutMs = 20000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (proc && proc.exitCode !== null) throw new Error(`process exited with ${proc.exitCode} before listening on ${port}`);
    const ok = await new Promise((resolve) => {
      const s = net.connect(port, HOST);
      s.once('connect', () => { s.destroy(); resolve(true); });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`nothing listened on ${HOST}:${port} within ${timeoutMs} ms`);
}

/** Resolves with the exit code once proc has exited (at once if it has). */
function exited(proc) {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve(proc.exitCode ?? -1);
  return new Promise((resolve) => proc.once('exit', (code) => resolve(code ?? -1)));
}

/** A temporary folder for one process's logs, removed at stop. */
function logDir(prefix) {
  return mkdtempSync(path.join(os.tmpdir(), prefix));
}

/**
 * Starts redis-server on a free port. Returns { port, url, stop() }.
 */
export async function startRedis() {
  const port = await freePort();
  const dir = logDir('signal-web-redis-');
  const proc = spawn('redis-server', ['--port', String(port), '--bind', HOST, '--save', '', '--appendonly', 'no',
    '--dir', dir], { stdio: ['ignore', 'ignore', 'inherit'] });
  await waitPort(port, proc);
  return {
    port,
    url: `redis://${HOST}:${port}`,
    async stop() {
      proc.kill('SIGKILL');
      await exited(proc);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Starts signal-node on a free port with the test secret, no drain delay and
 * the given extra environment (SIGNAL_* names) and arguments, on port (default: a free one).
 * Returns { port, base, proc, logs(), terminate(), kill(), stop() }:
 * base is ws://HOST:port; terminate() sends SIGTERM and resolves with the exit
 * code; stop() terminates and throws if the node did not exit 0 or its stderr
 * holds a sanitizer report.
 */
export async function startNode({ env = {}, args = [], port = 0 } = {}) {
  port ||= await freePort();
  const dir = logDir('signal-web-node-');
  const out = path.join(dir, 'out'), err = path.join(dir, 'err');
  const fullEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SIGNAL_')));
  Object.assign(fullEnv, {
    ASAN_OPTIONS: process.env.ASAN_OPTIONS || 'detect_leaks=1:abort_on_error=0',
    UBSAN_OPTIONS: process.env.UBSAN_OPTIONS || 'print_stacktrace=1:halt_on_error=1',
    SIGNAL_LISTEN: `${HOST}:${port}`,
    // Nodes sharing a Redis must have ids of their own (the default is the host name).
    SIGNAL_NODE_ID: `web-${port}`,
    SIGNAL_JWT_SECRET: SECRET,
    SIGNAL_DRAIN_S: '0',
    SIGNAL_DRAIN_CLOSE_S: '0',
    ...env,
  });
  const proc = spawn(NODE_BIN, args, { env: fullEnv, stdio: ['ignore', openSync(out, 'w'), openSync(err, 'w')] });
  const logs = () => `--- stdout ---\n${readFileSync(out, 'utf8')}\n--- stderr ---\n${readFileSync(err, 'utf8')}`;
  try {
    await waitPort(port, proc);
  } catch (e) {
    proc.kill('SIGKILL');
    throw new Error(`${/** @type {Error} */ (e).message}\n${logs()}`);
  }
  let expected = 0;
  const node = {
    port,
    base: `ws://${HOST}:${port}`,
    http: `http://${HOST}:${port}`,
    proc,
    logs,
    /** SIGTERM; resolves with the exit code. */
    async terminate() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      return exited(proc);
    },
    /** SIGKILL: a dying node; stop() then expects no exit code. */
    async kill() {
      expected = -1;
      proc.kill('SIGKILL');
      await exited(proc);
    },
    async stop() {
      const code = await node.terminate();
      const text = logs();
      rmSync(dir, { recursive: true, force: true });
      if (expected === 0 && code !== 0) throw new Error(`node exited with ${code}\n${text}`);
      for (const marker of ['ERROR: AddressSanitizer', 'ERROR: LeakSanitizer', 'runtime error:'])
        if (text.includes(marker)) throw new Error(`sanitizer report in the node's output\n${text}`);
    },
  };
  return node;
}

/**
 * A token signed with the test secret: { sub, name, rooms, ttl } as
 * signal-token's options (ttl in seconds, default 3600).
 */
export function mintToken({ sub, name, rooms = [], ttl = 3600 }) {
  const args = ['--secret', SECRET, '--sub', sub, '--rooms', rooms.join(','), '--ttl', String(ttl)];
  if (name) args.push('--name', name);
  return execFileSync(TOKEN_BIN, args, { encoding: 'utf8' }).trim();
}
