#!/usr/bin/env bash
# Renders /admin/queues in a real headless Chromium (Debian's package: apt-get install chromium) and
# saves a screenshot, to look at the dashboard as an operator sees it.
# Usage: test/browser/dashboard-screenshot.sh [out.png]   (starts its own billhook on a throwaway
# embedded PostgreSQL and sends it a test webhook, which becomes a reconciliation exception, so the
# page has something to show; the picture goes to test/browser/screenshots/, which git ignores, unless
# a path is given). billhook and its PostgreSQL run in a process group of their own, stopped at exit
# however the script ends; it exits 0 once the picture is saved.
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p test/browser/screenshots
out="${1:-test/browser/screenshots/dashboard.png}"
command -v chromium >/dev/null || { echo "chromium is not installed: apt-get install chromium" >&2; exit 1; }
data="$(mktemp -d)"
port=$((30000 + RANDOM % 20000))
key=bh_screenshot_admin_key_0123456789
export EMBEDDED_PG_DIR="$data/pg" PORT="$port" BILLHOOK_ADMIN_KEY="$key" STRIPE_WEBHOOK_SECRET=whsec_screenshot \
  WEBHOOK_RETRY_LIMIT=0 LOG_LEVEL=warn DATABASE_URL=
setsid npm run -s cli -- start >"$data/billhook.log" 2>&1 &
server=$!
cleanup() {
  local status=$?
  # The whole group: npm, billhook and the embedded PostgreSQL it started (SIGTERM: a graceful stop).
  kill -TERM -- "-$server" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 -- "-$server" 2>/dev/null || break; sleep 0.1; done
  kill -KILL -- "-$server" 2>/dev/null || true
  rm -rf "$data"
  exit "$status"
}
trap cleanup EXIT
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.2; done
npm run -s cli -- send-test-webhook stripe payment_intent.succeeded --url "http://127.0.0.1:$port" >/dev/null
sleep 2
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking \
  --disable-component-update --disable-sync --user-data-dir="$data/chrome" --window-size=1100,800 \
  --screenshot="$out" "http://$key:x@127.0.0.1:$port/admin/queues" 2>/dev/null
echo "screenshot: $out"
