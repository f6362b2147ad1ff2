#!/usr/bin/env bash
# CI (issue 27): Debian's nginx for the rolling-restart test (a real load balancer in front of
# two gateway instances). Installs it when it is missing, as root with apt, bounded in time;
# the Debian service is never left running on port 80: the test starts its own private nginx
# on a free loopback port (tests/support/nginx.py). In bookworm `nginx` is the smallest real
# package (nginx-light is a metapackage that adds a module to it). Exit 0 when nginx is there
# afterwards; otherwise 1 in CI (CI=true), and elsewhere 0 with a note (the test then skips).
set -euo pipefail

if command -v nginx >/dev/null 2>&1 || [[ -x /usr/sbin/nginx ]]; then
  exit 0
fi

source "$(dirname "$0")/apt_install.sh"

apt_install_quietly nginx "the rolling-restart test will skip"

# Had something started it all the same (systemd running, or no policy honoured): stop it and
# keep it from starting at boot. Debian's service runs from /run/nginx.pid; ours never do.
if [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null 2>&1; then
  timeout 60 systemctl disable --now nginx >/dev/null 2>&1 || true
elif [[ -s /run/nginx.pid ]] && kill -0 "$(cat /run/nginx.pid)" 2>/dev/null; then
  timeout 60 service nginx stop >/dev/null 2>&1 || true
fi
if command -v update-rc.d >/dev/null 2>&1; then
  update-rc.d nginx disable >/dev/null 2>&1 || true
fi
exit 0
