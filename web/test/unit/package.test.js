// The package as users get it: its generated type declarations, and its
// size in a browser (the budget: under 8 KB gzipped, minified as any
// bundler ships it; the size as shipped, with its comments, is printed too).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';

const WEB = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const SRC = path.join(WEB, 'src');
const BUDGET = 8 * 1024;

test('tsc generates declarations for the whole public API', () => {
  const out = mkdtempSync(path.join(os.tmpdir(), 'signal-web-types-'));
  try {
    execFileSync(path.join(WEB, 'node_modules/.bin/tsc'), ['-p', 'tsconfig.types.json', '--outDir', out], { cwd: WEB });
    const index = readFileSync(path.join(out, 'index.d.ts'), 'utf8');
    for (const name of ['SignalingClient', 'Call', 'reconnectDelay']) assert.match(index, new RegExp(`\\b${name}\\b`));
    const client = readFileSync(path.join(out, 'signaling.d.ts'), 'utf8');
    for (const member of ['connect(): Promise<void>', 'disconnect(): void', 'sendMessage(', 'onMessage(', 'onPeer(', 'getConnectedPeers(', 'getUserInfo(', 'get state(): State'])
      assert.ok(client.includes(member), `signaling.d.ts lacks ${member}`);
    const call = readFileSync(path.join(out, 'call.d.ts'), 'utf8');
    for (const member of ['start(): void', 'hangup(): void', 'addTrack(', 'removeTrack(', 'setMuted('])
      assert.ok(call.includes(member), `call.d.ts lacks ${member}`);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test('the library is under 8 KB gzipped, minified', async () => {
  const bundle = await build({ entryPoints: [path.join(SRC, 'index.js')], bundle: true, minify: true, format: 'esm', write: false, logLevel: 'silent' });
  const minified = gzipSync(bundle.outputFiles[0].contents, { level: 9 }).length;
  const files = readdirSync(SRC).filter((f) => f.endsWith('.js'));
  const shipped = files.reduce((sum, f) => sum + gzipSync(readFileSync(path.join(SRC, f)), { level: 9 }).length, 0);
  console.log(`library size: ${minified} bytes minified and gzipped; ${shipped} bytes gzipped as shipped (${files.length} files, with comments)`);
  assert.ok(minified < BUDGET, `${minified} bytes minified and gzipped, over the ${BUDGET} budget`);
});
