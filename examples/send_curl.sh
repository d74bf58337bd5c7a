#!/usr/bin/env bash
# Send one SMS through the native API (/api/v1/messages) with curl.
#
#   SMSGW_URL=https://acme.example.com SMSGW_TOKEN=sgw_... SMSGW_TO=+14155550100 ./send_curl.sh
set -euo pipefail

if [ -z "${SMSGW_URL:-}" ] || [ -z "${SMSGW_TOKEN:-}" ] || [ -z "${SMSGW_TO:-}" ]; then
  cat >&2 <<'HELP'
Set these environment variables first:
  SMSGW_URL    your workspace's address, e.g. https://acme.example.com
               (the main domain works too: an API token names its workspace)
  SMSGW_TOKEN  an API token with the messages:send scope (dashboard → API tokens)
  SMSGW_TO     the recipient, e.g. +14155550100
Optional:
  SMSGW_TEXT   the text (default: "Hello from smsgw")
HELP
  exit 2
fi
if ! command -v curl >/dev/null 2>&1; then
  echo "curl is not installed: install it (e.g. apt-get install curl) or use send_requests.py." >&2
  exit 2
fi

text="${SMSGW_TEXT:-Hello from smsgw}"
# JSON-escape the two values we interpolate (backslashes first, then quotes; newlines as \n).
json_escape() { local s="${1//\\/\\\\}"; s="${s//\"/\\\"}"; s="${s//$'\n'/\\n}"; printf '%s' "$s"; }

curl --silent --show-error --fail-with-body \
  -X POST "${SMSGW_URL%/}/api/v1/messages" \
  -H "Authorization: Bearer ${SMSGW_TOKEN}" \
  -H "Content-Type: application/json" \
  -H "Idempotency-Key: curl-$(date +%s)-$$" \
  --data "{\"to\": [\"$(json_escape "$SMSGW_TO")\"], \"text\": \"$(json_escape "$text")\"}"
echo
