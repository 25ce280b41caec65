#!/usr/bin/env bash
# Runs every *_test.ts on Deno, Bun and Node (through tsx), and the
# *.vitest.ts files under vitest, then prints the total over all runners as
# its last line: "N passed, N failed".
# Usage: scripts/test.sh [deno|bun|node|vitest ...]   (default: all four)
set -uo pipefail
cd "$(dirname "$0")/.."
bin=node_modules/.bin
if [ ! -x "$bin/deno" ] || [ ! -x "$bin/bun" ] || [ ! -x "$bin/tsx" ] || [ ! -x "$bin/vitest" ]; then
  echo "The runtimes are not installed: run 'npm ci' first." >&2
  exit 2
fi
runtimes=("$@")
[ ${#runtimes[@]} -gt 0 ] || runtimes=(deno bun node vitest)
reports=.tmp/junit
rm -rf "$reports" && mkdir -p "$reports"
dirs=()
for dir in src testing adapters integrations examples scripts; do [ -d "$dir" ] && dirs+=("$dir"); done
mapfile -t files < <(find "${dirs[@]}" -name '*_test.ts' -not -path '*/node_modules/*' | sort)
export NO_COLOR=1 FORCE_COLOR=0
results=()
for runtime in "${runtimes[@]}"; do
  echo "=== $runtime"
  case "$runtime" in
    # Deno also runs the examples in README.md and in every doc comment.
    # --expose-gc: the memory measurements collect garbage before sampling.
    deno) "$bin/deno" test -A --v8-flags=--expose-gc --doc --junit-path="$reports/deno.xml" README.md mod.ts "${dirs[@]}" ;;
    bun) "$bin/bun" test --timeout 60000 --reporter=junit \
      --reporter-outfile="$reports/bun.xml" "${files[@]/#/./}" ;;
    # vitest runs the *.vitest.ts files: the harness under a fourth runner.
    vitest) "$bin/vitest" run --reporter=default --reporter=junit \
      --outputFile.junit="$reports/vitest.xml" ;;
    node) NODE_OPTIONS="${NODE_OPTIONS:-} --expose-gc" "$bin/tsx" --test --test-reporter=spec --test-reporter-destination=stdout \
      --test-reporter=junit --test-reporter-destination="$reports/node.xml" "${files[@]}" ;;
    *) echo "Unknown runtime '$runtime': use deno, bun, node or vitest" >&2; exit 2 ;;
  esac
  code=$?
  echo "=== $runtime exited with $code"
  results+=("$reports/$runtime.xml:$code")
done
node scripts/junit_total.mjs "${results[@]}"
