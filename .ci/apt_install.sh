# Sourced by .ci/rabbitmq.sh and .ci/nginx.sh: install one Debian package for the tests, as root
# with apt, bounded in time, with no service started by its maintainer scripts.

# ci_fail TEXT: one line on stderr; exit 1 in CI (CI=true), elsewhere 0 (the tests that need the
# package then skip and say why).
ci_fail() {
  echo "ci: $1" >&2
  if [[ "${CI:-}" == true ]]; then exit 1; fi
  exit 0
}

# apt_install_quietly PACKAGE WITHOUT_IT: apt-get install PACKAGE with a policy-rc.d that says
# 101 ("action forbidden"), ours only if there is none already and removed at exit, so the
# package's service never starts on its fixed ports. WITHOUT_IT says what skips when we cannot.
apt_install_quietly() {
  local package=$1 without_it=$2 started=$SECONDS
  if [[ "$(id -u)" != 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
    ci_fail "no $package and no apt-get as root to install it: $without_it"
  fi
  _ci_policy=/usr/sbin/policy-rc.d
  if [[ ! -e "$_ci_policy" ]]; then
    printf '#!/bin/sh\n# socketproof .ci: no service starts during this install\nexit 101\n' >"$_ci_policy"
    chmod 755 "$_ci_policy"
    trap 'rm -f "$_ci_policy"' EXIT
  fi
  if ! timeout 900 apt-get update -qq; then
    ci_fail "could not install $package (apt-get update failed)"
  fi
  if ! DEBIAN_FRONTEND=noninteractive timeout 900 \
    apt-get install -y -qq --no-install-recommends "$package" >/dev/null; then
    ci_fail "could not install $package (apt-get install $package failed)"
  fi
  echo "ci: installed $package in $((SECONDS - started)) s"
}
