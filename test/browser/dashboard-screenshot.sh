#!/usr/bin/env bash
# Renders /admin/queues in a real headless Chromium (Debian's package: apt-get install chromium) and
# saves a screenshot, to look at the dashboard as an operator sees it.
# Usage: test/browser/dashboard-screenshot.sh [out.png]   (starts its own billhook on a throwaway
# embedded PostgreSQL and sends it a test webhook, which becomes a reconciliation exception, so the
# page has something to show)
set -euo pipefail
cd "$(dirname "$0")/../.."
out="${1:-dashboard.png}"
command -v chromium >/dev/null || { echo "chromium is not installed: apt-get install chromium" >&2; exit 1; }
data="$(mktemp -d)"
port=$((30000 + RANDOM % 20000))
key=bh_screenshot_admin_key_0123456789
export EMBEDDED_PG_DIR="$data/pg" PORT="$port" BILLHOOK_ADMIN_KEY="$key" STRIPE_WEBHOOK_SECRET=whsec_screenshot \
  WEBHOOK_RETRY_LIMIT=0 LOG_LEVEL=warn DATABASE_URL=
npm run -s cli -- start >"$data/billhook.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$data"' EXIT
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.2; done
npm run -s cli -- send-test-webhook stripe payment_intent.succeeded --url "http://127.0.0.1:$port" >/dev/null
sleep 2
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking \
  --disable-component-update --disable-sync --user-data-dir="$data/chrome" --window-size=1100,800 \
  --screenshot="$out" "http://$key:x@127.0.0.1:$port/admin/queues" 2>/dev/null
echo "screenshot: $out"
