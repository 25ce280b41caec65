#!/usr/bin/env bash
# Starts a 3-master Redis Cluster on loopback ports (default 7000-7002) for
# the Cluster tests, unless one already answers there, and prints the
# REDIS_CLUSTER value to export. Usage: scripts/redis_cluster.sh [first port]
set -euo pipefail
first=${1:-7000}
ports=("$first" "$((first + 1))" "$((first + 2))")
nodes=$(printf '127.0.0.1:%s,' "${ports[@]}")
nodes=${nodes%,}
state() { redis-cli -p "${ports[0]}" cluster info 2>/dev/null | tr -d '\r' | grep -o 'cluster_state:[a-z]*' || true; }
if [ "$(state)" != "cluster_state:ok" ]; then
  # a folder per first port: starting another Cluster leaves this one be
  dir=${TMPDIR:-/tmp}/botnodes-cluster-$first
  rm -rf "$dir"
  for port in "${ports[@]}"; do
    mkdir -p "$dir/$port"
    redis-server --port "$port" --bind 127.0.0.1 --cluster-enabled yes \
      --cluster-config-file "$dir/$port/nodes.conf" --save "" --appendonly no \
      --dir "$dir/$port" --logfile "$dir/$port/redis.log" --daemonize yes
  done
  for port in "${ports[@]}"; do
    for _ in $(seq 1 100); do
      redis-cli -p "$port" ping 2>/dev/null | grep -q PONG && break
      sleep 0.1
    done
  done
  redis-cli --cluster create ${nodes//,/ } --cluster-replicas 0 --cluster-yes >/dev/null
  for _ in $(seq 1 100); do
    [ "$(state)" = "cluster_state:ok" ] && break
    sleep 0.1
  done
fi
if [ "$(state)" != "cluster_state:ok" ]; then
  echo "The Redis Cluster on ports ${ports[*]} is not ready" >&2
  exit 1
fi
echo "$nodes"
