#!/usr/bin/env bash
# Start the local services the test suite uses when they are not already running.
# Redis backs the shared SessionStore tests; a missing server is installed from Debian's packages.
set -euo pipefail

redis_up() { (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null; }

if ! redis_up; then
  if ! command -v redis-server >/dev/null 2>&1; then
    echo "ensure-services: installing redis-server" >&2
    (apt-get update -qq && apt-get install -y -qq redis-server >/dev/null) || {
      echo "ensure-services: could not install redis-server; Redis tests will be skipped" >&2
      exit 0
    }
  fi
  mkdir -p /tmp/opentac-redis
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --dir /tmp/opentac-redis --logfile /tmp/opentac-redis/redis.log
  for _ in $(seq 1 50); do redis_up && break; sleep 0.1; done
fi
