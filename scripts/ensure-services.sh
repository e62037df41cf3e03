#!/usr/bin/env bash
# Install and start the real parts the test suite uses when they are missing: a fresh machine
# has none of them. Each comes from Debian's packages; one that cannot be had is reported, and
# only the tests that need it are skipped (each says why).
#
# Redis (shared SessionStore tests) is started on 127.0.0.1:6379. Other programs are only
# installed: the tests that need them start their own copies on free ports.
set -euo pipefail

apt_updated=0
apt_install() {  # apt_install PROGRAM PACKAGE...: install PACKAGEs unless PROGRAM is on PATH
  local program=$1
  shift
  if command -v "$program" >/dev/null 2>&1 || [ -x "/usr/sbin/$program" ]; then
    return 0
  fi
  echo "ensure-services: installing $*" >&2
  if [ "$apt_updated" = 0 ]; then
    apt-get update -qq -o DPkg::Lock::Timeout=300 >/dev/null 2>&1 || true
    apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=300 \
    --no-install-recommends "$@" >/dev/null 2>&1 ||
    echo "ensure-services: could not install $*; the tests that need it are skipped" >&2
}

apt_install redis-server redis-server
apt_install nginx nginx
apt_install prometheus prometheus
apt_install chromium chromium fonts-liberation  # the console tests (Playwright drives it headless)
apt_install espeak-ng espeak-ng  # speech for the Media Streams phone's WAV files

redis_up() { (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null; }
if ! redis_up && command -v redis-server >/dev/null 2>&1; then
  mkdir -p /tmp/opentac-redis
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --dir /tmp/opentac-redis --logfile /tmp/opentac-redis/redis.log
  for _ in $(seq 1 50); do redis_up && break; sleep 0.1; done
fi
