#!/usr/bin/env bash
# Screenshots of every page of the operators' console (/admin), as an operator sees it in a real
# headless Chromium (Debian's package: apt-get install chromium): runs the console's browser tests
# (test/browser/console.test.ts: billhook and its PostgreSQL started and stopped by the test, the
# browser closed at its end), which write one PNG per page to test/browser/screenshots/ (git ignores
# it). Exits with the tests' status (0 once every page was shown and saved).
# Usage: test/browser/dashboard-screenshot.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v chromium >/dev/null || { echo "chromium is not installed: apt-get install chromium" >&2; exit 1; }
npx vitest run test/browser/console.test.ts
echo "screenshots: test/browser/screenshots/"
ls test/browser/screenshots/
