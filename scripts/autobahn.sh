#!/usr/bin/env bash
# Autobahn|Testsuite conformance of the reference server's WebSocket layer.
#
# Installs wstest (Python 2.7, pinned) into .venv-autobahn/ when missing, starts the
# reference server on a free port with its bare echo endpoint (/echo, setting
# echo_endpoint) and a token in the URL, then runs `wstest -m fuzzingclient` once per
# section, each bounded by a timeout, and prints OK / NON-STRICT / FAILED per section
# from the JSON reports. Sections 9 (performance) and 12/13 (compression) are skipped.
#
# Usage: scripts/autobahn.sh [SECTION ...]      (default: 1 2 3 4 5 6 7 10)
#        scripts/autobahn.sh --find-python2     (print the Python 2.7 it would use, or exit 2 saying what is missing)
# Env:   PYTHON (the server's interpreter, with requirements.txt installed; default .venv/bin/python),
#        PY2 (Python 2.7; default: python2.7 or python2 on PATH, else the newest 2.7 under `pyenv root`),
#        AUTOBAHN_REPORTS (default reports/autobahn), AUTOBAHN_CASE_TIMEOUT (s per section, default 300),
#        AUTOBAHN_PROXY=1 (run the cases through `python -m socketproof.proxy`, no faults)
# Exit:  0 when no case FAILED or was NON-STRICT, 1 otherwise, 2 on a setup problem.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"

VENV="$ROOT/.venv-autobahn"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"

find_python2() {
  local candidate root
  if [[ -n "${PY2:-}" ]]; then
    candidate="$PY2"
  else
    for name in python2.7 python2; do
      candidate="$(command -v "$name" 2>/dev/null || true)"
      [[ -n "$candidate" ]] && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (2, 7))' 2>/dev/null && break
      candidate=""
    done
    if [[ -z "$candidate" ]] && root="$(pyenv root 2>/dev/null)"; then
      candidate="$(ls -d "$root"/versions/2.7*/bin/python 2>/dev/null | sort -V | tail -n 1)"
    fi
  fi
  if [[ -n "$candidate" ]] && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (2, 7))' 2>/dev/null; then
    echo "$candidate"
    return 0
  fi
  echo "autobahn: needs Python 2.7 for wstest: none in \$PY2${PY2:+ ($PY2)}, on PATH (python2.7, python2) or under pyenv" >&2
  return 2
}
if [[ "${1:-}" == "--find-python2" ]]; then
  [[ -x "$VENV/bin/wstest" ]] && { echo "$VENV/bin/python"; exit 0; }
  find_python2 || exit 2
  exit 0
fi
if [[ ! -x "$PYTHON" ]] && ! command -v "$PYTHON" >/dev/null 2>&1; then
  echo "autobahn: no server interpreter at $PYTHON: create .venv (README: Run it) or set PYTHON" >&2
  exit 2
fi
REPORTS="${AUTOBAHN_REPORTS:-$ROOT/reports/autobahn}"
SECTION_TIMEOUT="${AUTOBAHN_CASE_TIMEOUT:-300}"
SECTIONS=("$@")
[[ ${#SECTIONS[@]} -eq 0 ]] && SECTIONS=(1 2 3 4 5 6 7 10)

install_wstest() {
  [[ -x "$VENV/bin/wstest" ]] && return 0
  local PY2
  PY2="$(find_python2)" || return 2
  echo "autobahn: installing wstest into $VENV" >&2
  "$PY2" -m virtualenv --version >/dev/null 2>&1 || "$PY2" -m pip install --quiet --user "virtualenv<20.22"
  "$PY2" -m virtualenv --quiet "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check \
    setuptools==44.0.0 txaio==2.1.0 incremental==16.10.1 pyOpenSSL==19.1.0 cryptography==3.3.2 \
    Twisted==19.10.0 zope.interface==4.6.0 jinja2==2.11.3 markupsafe==1.1.1 Werkzeug==1.0.1 \
    klein==17.10.0 service_identity==18.1.0 unittest2==1.1.0 six==1.16.0 \
    "autobahn[accelerate,twisted]==0.10.9" autobahntestsuite==25.10.1
}
install_wstest || exit 2

WORK="$(mktemp -d)"
SERVER_PID=""
cleanup() {
  if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

SECRET="autobahn-conformance-$RANDOM-$RANDOM-$RANDOM-$RANDOM"
SOCKETPROOF_JWT_SECRET="$SECRET" "$PYTHON" -m server --port 0 \
  --set echo_endpoint=true --set max_message_bytes=16777216 --set rate_limit=0 \
  --set max_connections_per_user=1000 >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
URL=""
for _ in $(seq 150); do
  URL="$(sed -n 's/.*listening on \(ws:\/\/[^ ]*\)\/ws.*/\1/p' "$WORK/server.log")"
  [[ -n "$URL" ]] && break
  kill -0 "$SERVER_PID" 2>/dev/null || break
  sleep 0.1
done
if [[ -z "$URL" ]]; then
  echo "autobahn: the reference server did not start:" >&2; cat "$WORK/server.log" >&2; exit 2
fi
TOKEN="$("$PYTHON" -c 'import sys; from client.tokens import mint_token; print(mint_token(sys.argv[1], "autobahn", ttl=24 * 3600))' "$SECRET")"
echo "autobahn: server $URL/echo (pid $SERVER_PID), reports in $REPORTS"

# AUTOBAHN_PROXY=1: the same cases through the fault proxy with no fault (socketproof/proxy/);
# the result must not change, which shows the relay is exact.
if [[ "${AUTOBAHN_PROXY:-}" == "1" ]]; then
  "$PYTHON" -m socketproof.proxy --upstream "$URL" >"$WORK/proxy.log" 2>&1 &
  PROXY_PID=$!
  trap 'kill -TERM "$PROXY_PID" 2>/dev/null && wait "$PROXY_PID"; cleanup' EXIT
  PROXIED=""
  for _ in $(seq 150); do
    PROXIED="$(sed -n 's/.*proxy listening on \(ws:\/\/[^ ]*\) .*/\1/p' "$WORK/proxy.log")"
    [[ -n "$PROXIED" ]] && break
    kill -0 "$PROXY_PID" 2>/dev/null || break
    sleep 0.1
  done
  [[ -n "$PROXIED" ]] || { echo "autobahn: the proxy did not start:" >&2; cat "$WORK/proxy.log" >&2; exit 2; }
  echo "autobahn: through the fault proxy $PROXIED (pid $PROXY_PID), no faults"
  URL="$PROXIED"
fi

rm -rf "$REPORTS"
mkdir -p "$REPORTS"
for section in "${SECTIONS[@]}"; do
  out="$REPORTS/$section"
  mkdir -p "$out"
  sed -e "s|@OUTDIR@|$out|" -e "s|@URL@|$URL/echo?token=$TOKEN|" -e "s|@CASES@|$section.*|" \
    "$ROOT/scripts/autobahn-fuzzingclient.json" >"$WORK/fuzzingclient-$section.json"
  started=$SECONDS
  set +e
  (cd "$WORK" && timeout --kill-after=10 "$SECTION_TIMEOUT" "$VENV/bin/wstest" -m fuzzingclient \
    -s "$WORK/fuzzingclient-$section.json" >"$out/wstest.log" 2>&1)
  status=$?
  set -e
  if [[ $status -eq 124 || $status -eq 137 ]]; then
    echo "section $section: wstest timed out after ${SECTION_TIMEOUT}s" | tee -a "$out/wstest.log"
  fi
  echo "section $section: wstest exit $status in $((SECONDS - started))s" >>"$out/wstest.log"
done

kill -0 "$SERVER_PID" 2>/dev/null || { echo "autobahn: the server died during the run:" >&2; cat "$WORK/server.log" >&2; exit 1; }

"$PYTHON" - "$REPORTS" "${SECTIONS[@]}" <<'PY'
"""Per-section counts from wstest's index.json; exit 1 on FAILED, NON-STRICT or missing reports."""
import collections, json, pathlib, sys

root, sections = pathlib.Path(sys.argv[1]), sys.argv[2:]
bad = False
summary = {}
print(f"{'section':<8} {'cases':>5} {'OK':>5} {'NON-STRICT':>10} {'FAILED':>6} {'other':>6}  close FAILED/UNCLEAN")
for section in sections:
    index = root / section / "index.json"
    if not index.exists():
        print(f"{section:<8} no report (see {root / section / 'wstest.log'})")
        bad = True
        summary[section] = None
        continue
    cases = next(iter(json.loads(index.read_text()).values()), {})
    counts = collections.Counter(result["behavior"] for result in cases.values())
    close_bad = sorted(case for case, result in cases.items() if result["behaviorClose"] not in ("OK", "INFORMATIONAL"))
    failed = sorted(case for case, result in cases.items() if result["behavior"] in ("FAILED", "NON-STRICT"))
    other = sum(n for kind, n in counts.items() if kind not in ("OK", "NON-STRICT", "FAILED"))
    print(f"{section:<8} {len(cases):>5} {counts['OK']:>5} {counts['NON-STRICT']:>10} {counts['FAILED']:>6} {other:>6}  {len(close_bad)}")
    for case in failed[:20]:
        print(f"         {case}: {cases[case]['behavior']} (close {cases[case]['behaviorClose']})")
    summary[section] = {"cases": len(cases), **counts, "failed_cases": failed, "close_not_ok": close_bad}
    bad = bad or bool(failed) or not cases
(root / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
sys.exit(1 if bad else 0)
PY
