// Writes tests/data/tiktoken_golden.json: token ids from npm tiktoken@1.0.22 (OpenAI's Rust tiktoken
// compiled to WASM) for the gpt2 and cl100k_base encodings on a set of tricky strings, the
// reference for tests/tokenizers/bpe_parity_test.cpp.
//
//   cd /tmp/npm && npm install tiktoken@1.0.22
//   NODE_PATH=/tmp/npm/node_modules node scripts/reference/tiktoken_golden.mjs
//
// A case is a list of parts: a string, or a number for one raw byte. JavaScript strings cannot hold
// invalid UTF-8, so a raw byte's expected id is tiktoken's token for that single byte, and the
// strings around it are encoded on their own: attnzoo pre-splits every invalid byte into a piece of
// its own (byte fallback), and this is what that rule gives.
import { createRequire } from "node:module";
import { writeFileSync } from "node:fs";
import path from "node:path";

const require = createRequire(path.join(process.env.NODE_PATH || process.cwd(), "x.js"));
const { get_encoding } = require("tiktoken");

const cases = [
  ["hello world"],
  ["Hello, World! How's it going?"],
  ["I'm sure you'll see they've done it; she'd say it's John's."],
  ["SHOUTING CONTRACTIONS: I'M, YOU'LL, THEY'VE, IT'S, HE'D"],
  ["'s 't 're 've 'm 'll 'd ''"],
  ["a  b   c    d"],
  ["trailing spaces   "],
  ["   leading spaces"],
  ["line one\nline two\n\n\nline five\n"],
  ["  \n  indented\n\t\ttabs\r\nwindows\r\n"],
  ["\n\n\n\n"],
  ["          "],
  ["1234567890 12 3.14159 2024-11-26 1,000,000 0x1F"],
  ["In 1611, 40000 copies; 123456789012345678901234567890"],
  ["Hello!!! What?!... (yes) [no] {maybe} <tag/> #hash @at $5 %d ^_^ ~~ `code`"],
  ["--- *** === ___ ... ,,, ;;; ::: !!! ???"],
  ["café naïve résumé Ångström façade coöperate"],
  ["CAFÉ NAÏVE RÉSUMÉ"],
  ["e\u0301 combining acute; a\u0308 combining diaeresis"],
  ["中文字符测试：你好，世界！"],
  ["日本語のテキスト、カタカナとひらがな。"],
  ["한국어 텍스트입니다"],
  ["Ελληνικά και Русский текст и עברית وعربي"],
  ["हिन्दी पाठ और ภาษาไทย"],
  ["👍 👍🏽 👨‍👩‍👧‍👦 🇫🇷 ❤️ 🍕🍕🍕"],
  ["Emoji inside words: hello👋world, 100%💯"],
  ["non\u00a0breaking\u3000ideographic\u2003em\u2009thin spaces"],
  ["zero\u200bwidth\u200dstuff\ufeffbom"],
  ["def f(x):\n    return x ** 2  # square\n"],
  ["for (int i = 0; i < n; ++i) { sum += a[i]; }"],
  ["https://example.com/path?query=1&b=2#frag user@example.org"],
  ["In the beginning God created the heaven and the earth."],
  ["Antidisestablishmentarianism pneumonoultramicroscopicsilicovolcanoconiosis"],
  ["x".repeat(300)],
  ["ab".repeat(100) + " " + "1".repeat(50)],
  [" ".repeat(70) + "x"],
  ["Text with <|endoftext|> inside it."],
  ["<|endoftext|><|endoftext|>"],
  ["<|fim_prefix|>a<|fim_suffix|>b<|fim_middle|>"],
  ["<|endoftext"],
  [""],
  ["a"],
  ["\u0000\u0001\u0007\u001b[31mred\u001b[0m"],
  ["\ufffd replacement char"],
  ["ok ", 0xff, " bad byte"],
  ["truncated ", 0xe4, 0xb8, " CJK"],
  [0x80, 0x80, "lone continuation"],
  ["surrogate half ", 0xed, 0xa0, 0x80, "!"],
  ["overlong ", 0xc0, 0xaf, " slash"],
  [0xfe, 0xff],
];

const utf8 = new TextEncoder();
const toHex = (bytes) => Buffer.from(bytes).toString("hex");

function expected(enc, parts, specials) {
  const ids = [];
  for (const p of parts) {
    if (typeof p === "number") ids.push(enc.encode_single_token(new Uint8Array([p])));
    else ids.push(...(specials ? enc.encode(p, "all") : enc.encode_ordinary(p)));
  }
  return ids;
}

const out = { generator: "npm tiktoken@1.0.22 via scripts/reference/tiktoken_golden.mjs", cases: [] };
const encodings = ["gpt2", "cl100k_base"];
const encs = Object.fromEntries(encodings.map((n) => [n, get_encoding(n)]));
for (const parts of cases) {
  const bytes = [];
  for (const p of parts) {
    if (typeof p === "number") bytes.push(p);
    else bytes.push(...utf8.encode(p));
  }
  const entry = { hex: toHex(bytes) };
  for (const n of encodings) {
    entry[n] = expected(encs[n], parts, false);
    entry[n + "+special"] = expected(encs[n], parts, true);
    const back = Buffer.from(encs[n].decode(new Uint32Array(entry[n])));
    if (toHex(back) !== entry.hex) throw new Error(`decode mismatch for ${entry.hex} (${n})`);
  }
  out.cases.push(entry);
}
for (const e of Object.values(encs)) e.free();

const dest = path.join(path.dirname(new URL(import.meta.url).pathname), "../../tests/data/tiktoken_golden.json");
writeFileSync(dest, JSON.stringify(out) + "\n");
console.log(`wrote ${out.cases.length} cases to ${dest}`);
