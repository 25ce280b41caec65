#!/usr/bin/env bash
# The quality gate: format, lint, type check, doc lint of every entry point and
# a publish dry run. Exits non-zero on the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."
deno=node_modules/.bin/deno
export NO_COLOR=1
entries=$(node -e 'const e=require("./deno.json").exports;console.log(Object.values(e).join(" "))')
echo "=== deno fmt --check" && "$deno" fmt --check
echo "=== deno lint" && "$deno" lint
echo "=== deno check" && "$deno" check $(find . -name '*.ts' -not -path './node_modules/*' -not -path './.tmp/*' | sort)
echo "=== deno doc --lint $entries" && "$deno" doc --lint $entries
echo "=== deno publish --dry-run" && "$deno" publish --dry-run --allow-dirty
echo "=== checks passed"
