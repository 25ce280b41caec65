#!/usr/bin/env bash
# The quality gate: format, lint, type check, doc lint of every entry point,
# the GitHub workflows and a publish dry run. Exits non-zero on the first
# failure.
set -euo pipefail
cd "$(dirname "$0")/.."
deno=node_modules/.bin/deno
export NO_COLOR=1
echo "=== deno fmt --check" && "$deno" fmt --check
echo "=== deno lint" && "$deno" lint
echo "=== deno check" && "$deno" check $(find . -name '*.ts' -not -path './node_modules/*' -not -path './.tmp/*' | sort)
echo "=== deno doc --lint (core entries, strict)" && "$deno" doc --lint ./mod.ts ./store/mod.ts ./testing/mod.ts ./integrations/grammy.ts ./integrations/otel.ts ./adapters/node_redis.ts ./adapters/bun_redis.ts ./adapters/upstash.ts
echo "=== deno doc --lint (every entry)" && node scripts/doc_lint.mjs
echo "=== action-validator (.github/workflows)"
validator=node_modules/.bin/action-validator
[ -x "$validator" ] || { echo "action-validator is not installed: run 'npm ci' first." >&2; exit 2; }
shopt -s nullglob
workflows=(.github/workflows/*.yml .github/workflows/*.yaml)
shopt -u nullglob
[ ${#workflows[@]} -gt 0 ] || { echo "No workflow in .github/workflows" >&2; exit 1; }
for workflow in "${workflows[@]}"; do
  "$validator" "$workflow" || { echo "Invalid workflow: $workflow" >&2; exit 1; }
  echo "$workflow: valid"
done
echo "=== deno publish --dry-run" && "$deno" publish --dry-run --allow-dirty
echo "=== checks passed"
