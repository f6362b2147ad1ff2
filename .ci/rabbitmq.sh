#!/usr/bin/env bash
# CI (issue 28): Debian's rabbitmq-server (with its web-stomp and web-mqtt plugins) for the
# STOMP and MQTT tests. Installs it when it is missing, as root with apt, bounded in time;
# the Debian service is never left running on its fixed ports (4369, 5672, 15674, 15675,
# 25672): tests start their own private broker on free loopback ports
# (tests/support/rabbitmq.py). Exit 0 when rabbitmq-server is there afterwards; otherwise
# 1 in CI (CI=true), and elsewhere 0 with a note (the broker tests then skip and say why).
set -euo pipefail

if command -v rabbitmq-server >/dev/null 2>&1 || [[ -x /usr/lib/rabbitmq/bin/rabbitmq-server ]]; then
  exit 0
fi

source "$(dirname "$0")/apt_install.sh"

had_erlang=false
had_epmd=false
if command -v epmd >/dev/null 2>&1 && timeout 10 epmd -names >/dev/null 2>&1; then had_epmd=true; fi
if command -v epmd >/dev/null 2>&1 || [[ -d /usr/lib/erlang ]]; then had_erlang=true; fi
apt_install_quietly rabbitmq-server "the RabbitMQ tests will skip"

# Had something started it all the same (systemd running, or no policy honoured): stop it
# and keep it from starting at boot; the tests' brokers are their own nodes. Never ask the
# init script for its `status`: that runs rabbitmqctl, whose Erlang VM starts an epmd on
# 0.0.0.0:4369 as a side effect. A running service shows as a beam process of the rabbitmq user.
if [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null 2>&1; then
  timeout 60 systemctl disable --now rabbitmq-server >/dev/null 2>&1 || true
  if [[ "$had_erlang" == false ]]; then
    # erlang-base came with this install: its socket-activated epmd would listen on 4369.
    timeout 60 systemctl disable --now epmd.socket epmd.service >/dev/null 2>&1 || true
  fi
elif pgrep -u rabbitmq -f beam >/dev/null 2>&1; then
  timeout 120 service rabbitmq-server stop >/dev/null 2>&1 || true
  # The service's node started the shared epmd; stop it only if it was not there before and
  # no node is registered with it any more (`epmd -names` and `-kill` start no daemon).
  if [[ "$had_epmd" == false ]] && ! timeout 10 epmd -names 2>/dev/null | grep -q '^name '; then
    timeout 10 epmd -kill >/dev/null 2>&1 || true
  fi
fi
if command -v update-rc.d >/dev/null 2>&1; then
  update-rc.d rabbitmq-server disable >/dev/null 2>&1 || true
fi
exit 0
