// Times npm tiktoken's WASM encoder (OpenAI's Rust tiktoken compiled to WebAssembly) on a text file:
// get_encoding(ENCODING).encode_ordinary(text) on the whole text, REPEATS times, and once more per
// line; prints one JSON line with the median MB/s (bytes of the file / seconds), the baseline
// bench/tokenizers.sh compares tokenizer-bench with. --dump-ids writes the whole-text ids as
// little-endian uint32 (tokenizer-bench --compare-ids checks them token for token).
//
//   cd bench/node && npm install --no-save tiktoken@1.0.22      (or: NODE_PATH=/path/to/node_modules)
//   node bench/node/tiktoken_encode.mjs [--text data/kjv.txt] [--repeats 5] [--encoding gpt2]
//        [--node-modules DIR] [--dump-ids FILE] [--out FILE]
//
// tiktoken is looked up in --node-modules (only there when given), else in each NODE_PATH entry,
// bench/node/node_modules, then data/npm/tiktoken-1.0.22 (the checked tarball scripts/setup.sh
// unpacks for its rank files).
import { createRequire } from "node:module";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, "..", "..");

function parseArgs(argv) {
  const args = { text: "data/kjv.txt", repeats: 5, encoding: "gpt2", nodeModules: "", dumpIds: "", out: "" };
  const flags = { "--text": "text", "--repeats": "repeats", "--encoding": "encoding",
                  "--node-modules": "nodeModules", "--dump-ids": "dumpIds", "--out": "out" };
  for (let i = 0; i < argv.length; i++) {
    const key = flags[argv[i]];
    if (!key || i + 1 >= argv.length) {
      throw new Error(`unknown flag or missing value: ${argv[i]} (flags: ${Object.keys(flags).join(" ")})`);
    }
    args[key] = argv[++i];
  }
  args.repeats = Number(args.repeats);
  if (!Number.isInteger(args.repeats) || args.repeats < 1) throw new Error(`--repeats: expected a positive integer`);
  return args;
}

// The text as given, else relative to the repository (so the default works from any directory).
function resolveText(file) {
  if (existsSync(file)) return file;
  const inRepo = path.resolve(repo, file);
  if (!path.isAbsolute(file) && existsSync(inRepo)) return inRepo;
  throw new Error(`--text: ${file} not found; HINT: scripts/setup.sh fetches data/kjv.txt`);
}

function loadTiktoken(nodeModules) {
  if (nodeModules) {
    const dir = path.resolve(nodeModules);
    if (!existsSync(path.join(dir, "tiktoken", "package.json"))) {
      throw new Error(`--node-modules: no tiktoken in ${dir}; HINT: npm install --no-save tiktoken@1.0.22 there`);
    }
    return { module: createRequire(path.join(dir, "x.js"))("tiktoken"), from: path.join(dir, "tiktoken") };
  }
  const dirs = [];
  for (const d of (process.env.NODE_PATH || "").split(path.delimiter)) if (d) dirs.push(path.resolve(d));
  dirs.push(path.join(here, "node_modules"));
  for (const dir of dirs) {
    if (existsSync(path.join(dir, "tiktoken", "package.json"))) {
      return { module: createRequire(path.join(dir, "x.js"))("tiktoken"), from: path.join(dir, "tiktoken") };
    }
  }
  const unpacked = path.join(repo, "data", "npm", "tiktoken-1.0.22");
  if (existsSync(path.join(unpacked, "package.json"))) {
    return { module: createRequire(path.join(unpacked, "x.js"))(unpacked), from: unpacked };
  }
  throw new Error(`tiktoken not found in ${dirs.join(", ")} nor ${unpacked}; ` +
                  "HINT: (cd bench/node && npm install --no-save tiktoken@1.0.22), or set NODE_PATH");
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

// Wall seconds, the result, and CPU seconds of the process (user + system: shows how much of the
// wall time was ours on a shared machine).
function seconds(f) {
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  const r = f();
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  const c = process.cpuUsage(c0);
  return [wall, r, (c.user + c.system) / 1e6];
}

function main() {
  const args = parseArgs(process.argv.slice(2));
  const textFile = resolveText(args.text);
  const bytes = readFileSync(textFile);
  const text = bytes.toString("utf8");
  const { module: tiktoken, from } = loadTiktoken(args.nodeModules);
  const version = JSON.parse(readFileSync(path.join(from, "package.json"), "utf8")).version;
  const enc = tiktoken.get_encoding(args.encoding);

  const times = [];
  const cpuTimes = [];
  let ids;
  for (let r = 0; r < args.repeats; r++) {
    const [s, out, cpu] = seconds(() => enc.encode_ordinary(text));
    times.push(s);
    cpuTimes.push(cpu);
    ids = out;
  }
  // One call per line, as tokenizer-bench's "per line" row (each line keeps its "\n").
  const lines = text.split(/(?<=\n)/);
  const lineTimes = [];
  let lineTokens = 0;
  for (let r = 0; r < args.repeats; r++) {
    const [s, n] = seconds(() => {
      let count = 0;
      for (const line of lines) count += enc.encode_ordinary(line).length;
      return count;
    });
    lineTimes.push(s);
    lineTokens = n;
  }
  enc.free();

  if (args.dumpIds) {
    const u32 = Uint32Array.from(ids);  // little-endian on every platform node runs on
    writeFileSync(args.dumpIds, Buffer.from(u32.buffer, u32.byteOffset, u32.byteLength));
  }
  const mb = bytes.length / 1e6;
  const result = {
    encoder: `tiktoken-wasm ${version}`,
    encoding: args.encoding,
    text: textFile,
    bytes: bytes.length,
    repeats: args.repeats,
    tokens: ids.length,
    encode_s_median: median(times),
    encode_s_best: Math.min(...times),
    encode_cpu_s_median: median(cpuTimes),
    mb_per_s: mb / median(times),
    mb_per_s_best: mb / Math.min(...times),
    tokens_per_s: ids.length / median(times),
    per_line: { tokens: lineTokens, mb_per_s: mb / median(lineTimes), mb_per_s_best: mb / Math.min(...lineTimes) },
    node: process.version,
  };
  const line = JSON.stringify(result);
  if (args.out) writeFileSync(args.out, line + "\n");
  console.log(line);
}

try {
  main();
} catch (e) {
  console.error(`tiktoken_encode: error: ${e.message}`);
  process.exit(1);
}
