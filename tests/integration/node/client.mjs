// One call of the official Node SDK (@snowplow/signals-node), for tests/integration/test_node_sdk.py.
//
// Input: one JSON object, as the first argument or on stdin:
//   {"baseUrl": "http://127.0.0.1:6066", "sandboxToken": "...",
//    "call": "getServiceAttributes" | "getGroupAttributes" | "getBatchServiceAttributes",
//    "args": {...the SDK method's single argument...}}
// Output: one JSON line on stdout, {"ok": true, "result": <what the SDK returned>} (exit 0),
// or {"ok": false, "error": "<the SDK's error message>"} (exit 2). Bad input exits 64.
import { Signals } from "@snowplow/signals-node";

const CALLS = new Set(["getServiceAttributes", "getGroupAttributes", "getBatchServiceAttributes"]);

async function readInput() {
  if (process.argv.length > 2) {
    return process.argv[2];
  }
  const chunks = [];
  for await (const chunk of process.stdin) {
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString("utf8");
}

function print(value) {
  // undefined (what the SDK yields for a missing column value) prints as null.
  process.stdout.write(`${JSON.stringify(value, (_, v) => (v === undefined ? null : v))}\n`);
}

async function main() {
  let request;
  try {
    request = JSON.parse(await readInput());
  } catch (error) {
    process.stderr.write(`client.mjs: the input is not JSON: ${error.message}\n`);
    return 64;
  }
  const { baseUrl, sandboxToken, call, args } = request;
  if (!CALLS.has(call)) {
    process.stderr.write(`client.mjs: unknown call ${JSON.stringify(call)}\n`);
    return 64;
  }
  const signals = new Signals({ baseUrl, sandboxToken });
  try {
    print({ ok: true, result: await signals[call](args) });
    return 0;
  } catch (error) {
    print({ ok: false, error: String(error?.message ?? error) });
    return 2;
  }
}

process.exitCode = await main();
