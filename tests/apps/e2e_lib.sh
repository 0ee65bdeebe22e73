# Shared by the end-to-end scripts (sourced): pass/fail counting and the error-case check.
failures=0
pass() { echo "ok   $1"; }
fail() { echo "FAIL $1"; failures=$((failures + 1)); }
check() { local name=$1; shift; if "$@"; then pass "$name"; else fail "$name"; fi; }

# Runs a command that must fail: non-zero exit, exactly one line on stderr that mentions $2.
expect_error() {
  local name=$1 needle=$2; shift 2
  "$@" > out.txt 2> err.txt
  local rc=$?
  if [ $rc -ne 0 ] && [ "$(wc -l < err.txt)" -eq 1 ] && grep -qF -- "$needle" err.txt; then
    pass "$name"
  else
    fail "$name (rc=$rc, stderr: $(head -c 400 err.txt))"
  fi
}
# A checksum of every file under $1, to show that a failed command left them untouched.
tree_sum() { find "$1" -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum; }
