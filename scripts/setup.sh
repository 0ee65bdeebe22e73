#!/usr/bin/env bash
# Installs what attnzoo needs on Debian 12 and fetches the default corpus into data/.
# Idempotent: packages already present are not touched, data already fetched is kept.
#   scripts/setup.sh            packages + data
#   scripts/setup.sh packages   packages only
#   scripts/setup.sh data       data only
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
  dict-devil              # The Devil's Dictionary: the default corpus
)

install_packages() {
  local missing=()
  for p in "${PACKAGES[@]}"; do
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

fetch_data() {
  mkdir -p data
  if [ ! -s data/devil.txt ]; then
    # Drop dictfmt's own header entries (00-database-*), keep the text.
    zcat /usr/share/dictd/devil.dict.dz | grep -v '^00-database' > data/devil.txt.tmp
    mv data/devil.txt.tmp data/devil.txt
    echo "setup: data/devil.txt ($(wc -c < data/devil.txt) bytes)"
  fi
}

case "${1:-all}" in
  packages) install_packages ;;
  data) fetch_data ;;
  all) install_packages; fetch_data ;;
  *) echo "usage: $0 [packages|data|all]" >&2; exit 2 ;;
esac
