// Writes tests/data/wordpiece_golden.json: bert-base-uncased WordPiece encodings of tricky strings
// (and a few pairs) made by npm @huggingface/tokenizers@0.2.0 (Hugging Face's pure-JS tokenizers),
// the reference for tests/tokenizers/wordpiece_test.cpp. Runs offline.
//
//   NODE_PATH=/path/to/node_modules node scripts/reference/wordpiece_golden.mjs [--out FILE]
//   (or HF_TOKENIZERS_JS=/path/to/node_modules/@huggingface/tokenizers)
//
// The tokenizer is built as bert-base-uncased's tokenizer.json describes it: BertNormalizer
// (clean_text, handle_chinese_chars, strip_accents = follow lowercase, lowercase), BertPreTokenizer,
// WordPiece (unk [UNK], prefix ##, max_input_chars_per_word 100), [CLS] $A [SEP] ($B:1 [SEP]:1),
// the five specials as non-normalized added tokens, WordPiece decoder with cleanup.
//
// Strings where the JS port is known to differ from the Rust `tokenizers` crate (what
// transformers' BertTokenizerFast runs) are left out on purpose; the C++ tests check the Rust
// behaviour for them by hand: a final capital sigma (JS toLowerCase gives "ς", Rust's per-char
// to_lowercase "σ"), CJK ideographs outside the BMP (the JS padding loop walks UTF-16 units and
// misses them), and a pair whose second text is empty (the JS port takes "" as no pair and drops
// the second [SEP]; Rust encodes an empty second sequence).
import { createRequire } from "node:module";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "..", "..");
const require = createRequire(import.meta.url);
const { Tokenizer } = require(process.env.HF_TOKENIZERS_JS ?? "@huggingface/tokenizers");

const args = process.argv.slice(2);
const out = args[0] === "--out" ? args[1] : path.join(root, "tests", "data", "wordpiece_golden.json");
const vocabPath = path.join(root, "data", "bert-base-uncased", "vocab.txt");
if (!fs.existsSync(vocabPath)) {
  console.error(`${vocabPath}: missing; run scripts/setup.sh data`);
  process.exit(1);
}
const lines = fs.readFileSync(vocabPath, "utf8").split("\n");
if (lines.at(-1) === "") lines.pop();
const vocab = Object.fromEntries(lines.map((t, i) => [t, i]));
if (lines.length !== 30522) throw new Error(`expected 30522 tokens, got ${lines.length}`);

const specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];
const tokenizerJson = {
  added_tokens: specials.map((t) => ({
    id: vocab[t], content: t, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true,
  })),
  normalizer: { type: "BertNormalizer", clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase: true },
  pre_tokenizer: { type: "BertPreTokenizer" },
  post_processor: {
    type: "TemplateProcessing",
    single: [{ SpecialToken: { id: "[CLS]", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } },
             { SpecialToken: { id: "[SEP]", type_id: 0 } }],
    pair: [{ SpecialToken: { id: "[CLS]", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } },
           { SpecialToken: { id: "[SEP]", type_id: 0 } }, { Sequence: { id: "B", type_id: 1 } },
           { SpecialToken: { id: "[SEP]", type_id: 1 } }],
  },
  decoder: { type: "WordPiece", prefix: "##", cleanup: true },
  model: { type: "WordPiece", unk_token: "[UNK]", continuing_subword_prefix: "##", max_input_chars_per_word: 100, vocab },
};
const tokenizer = new Tokenizer(tokenizerJson, { clean_up_tokenization_spaces: true, do_lower_case: true });

const word99 = "un" + "believable".repeat(9) + "ly" + "s".repeat(5);  // 99 characters
const word100 = word99 + "s";
const word101 = word100 + "s";
if (word99.length !== 99 || word101.length !== 101) throw new Error("long word lengths");

const strings = [
  // Basics, case and numbers.
  "Hello, world!", "HeLLo WoRLD", "The quick brown fox jumps over the lazy dog.", "unaffable",
  "3.14159 1,000,000 2023-10-05 100% #1", "$3.50", "x = y + 2 * (z - 1); // ok",
  // Punctuation runs and apostrophes.
  "Hello!!!...??", "don't", "I'm rock 'n' roll", "don\u2019t \u201cquoted\u201d", "U.S.A.", "a-b_c/d",
  "state-of-the-art \u2014 em dash", "https://example.com/path?q=1&r=2 user@example.com",
  // Accents (uncased strips them).
  "Caf\u00e9 na\u00efve \u00c5ngstr\u00f6m fa\u00e7ade", "R\u00c9SUM\u00c9", "e\u0301 decomposed \u0301 alone",
  "Ti\u1ebfng Vi\u1ec7t", "\u0130stanbul", "Stra\u00dfe STRASSE \u1e9e", "\u212b \u2126 \u212a signs",
  // CJK and other scripts.
  "\u4e2d\u6587\u5b57\u7b26", "\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8 \u30ac\u30ae", "I like \u5317\u4eac food",
  "\uf900\ufa0a compatibility ideographs", "\uc548\ub155\ud558\uc138\uc694", "\u039a\u03b1\u03bb\u03b7\u03bc\u03ad\u03c1\u03b1 \u03ba\u03cc\u03c3\u03bc\u03b5",
  "\u041f\u0440\u0438\u0432\u0435\u0442, \u043c\u0438\u0440! \u0401\u043b\u043a\u0430", "\u0645\u0631\u062d\u0628\u0627 \u0628\u0627\u0644\u0639\u0627\u0644\u0645",
  "\u05e9\u05b8\u05c1\u05dc\u05d5\u05b9\u05dd", "\u0928\u092e\u0938\u094d\u0924\u0947 \u0926\u0941\u0928\u093f\u092f\u093e",
  "\u0e2a\u0e27\u0e31\u0e2a\u0e14\u0e35\u0e04\u0e23\u0e31\u0e1a",
  // Fullwidth, symbols, case mappings of odd letters.
  "\uff21\uff22\uff23\uff11\uff12\uff13\uff01", "\u2211 x\u00b2 \u2264 \u221e", "\u216b \u24b6 \u01c5 \u1c90 \u13a0 \ufb01",
  // Emoji: ZWJ (Cf) and tag characters are dropped, VS16 (Mn) is stripped.
  "I \u2764\ufe0f \ud83c\udf55 and \ud83d\udc69\u200d\ud83d\udc69\u200d\ud83d\udc67", "\ud83c\udff4\udb40\udc67\udb40\udc62\udb40\udc73\udb40\udc63\udb40\udc74\udb40\udc7f flag",
  // Control and format characters, whitespace.
  "a\tb\r\nc", "\u0000null\u0007bell\u007fdel", "zero\u200bwidth", "soft\u00adhyphen", "\ufffdreplacement\ufffd",
  "nbsp\u00a0ideographic\u3000space\u2028line\u0085nel\u000bvt", "private\ue000use \ufeffbom", "unassigned\u0378x kept", "   \t\n  ", "",
  // Very long words: > 100 characters (after normalization) is [UNK].
  "a".repeat(150), word99, word100, word101, `${word101} short`, "\u00e9".repeat(101), "e\u0301".repeat(60),
  // Unknown characters and special tokens written in the text.
  "\u2603 snowman \u16a0\u16a1 runes", "The capital of France is [MASK].", "[CLS] already [SEP] there",
  "[mask] is lowercase", "hello[UNK]world [PAD]",
];
const pairs = [
  ["How old are you?", "I'm 6 years old."],
  ["Caf\u00e9", "\u4e2d\u6587"],
  ["", "only second"],
  ["The man went to the [MASK] store.", "He bought a gallon of milk."],
];

function encode(a, b = null) {
  const e = tokenizer.encode(a, { text_pair: b, add_special_tokens: true, return_token_type_ids: true });
  const decoded = tokenizer.decode(e.ids, { skip_special_tokens: true });
  return { tokens: e.tokens, ids: e.ids, type_ids: e.token_type_ids, decoded };
}

const cases = strings.map((text) => ({ text, ...encode(text) }));
const pairCases = pairs.map(([a, b]) => ({ a, b, ...encode(a, b) }));
// One case per line keeps the file readable and its diffs small.
const body = [
  "{",
  `"reference": "npm @huggingface/tokenizers@0.2.0, bert-base-uncased vocab.txt (sha256 07eced37...)",`,
  `"cases": [\n${cases.map((c) => JSON.stringify(c)).join(",\n")}\n],`,
  `"pairs": [\n${pairCases.map((c) => JSON.stringify(c)).join(",\n")}\n]`,
  "}",
].join("\n") + "\n";
fs.writeFileSync(out, body);
console.log(`${out}: ${cases.length} strings, ${pairCases.length} pairs, ${body.length} bytes`);
