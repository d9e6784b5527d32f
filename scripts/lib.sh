# Shared by scripts/*.sh: checks the toolchain and points cargo at a build cache outside the
# repository, so that a fresh clone on the same machine does not rebuild every dependency.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/bascule/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

step() { printf '\n==> %s\n' "$*"; }

need() {
  local cmd=$1 why=$2
  if ! command -v "$cmd" >/dev/null 2>&1; then
    echo "error: '$cmd' is not installed; it is needed to $why." >&2
    exit 1
  fi
}

need cargo "build Bascule (install Rust with rustup: https://rustup.rs)"
for component in rustfmt clippy; do
  if ! cargo "${component/rustfmt/fmt}" --version >/dev/null 2>&1; then
    echo "error: the Rust component '$component' is missing; run: rustup component add $component" >&2
    exit 1
  fi
done

# Each change of a test's code leaves its old executable behind (~100 MB apiece): drop the ones
# not rebuilt for a day, and stale incremental state, so the cache does not grow without bound.
if [ -d "$CARGO_TARGET_DIR/debug/deps" ]; then
  find "$CARGO_TARGET_DIR/debug/deps" -maxdepth 1 -type f -perm -u+x ! -name '*.so' -mmin +1440 -delete 2>/dev/null || true
  find "$CARGO_TARGET_DIR/debug/incremental" -mindepth 1 -maxdepth 1 -mmin +1440 -exec rm -rf {} + 2>/dev/null || true
fi
