#!/usr/bin/env bash
# Runs the server as a cluster on this machine: a throwaway PostgreSQL and
# three nodes on ports 8081-8083, one service behind any load balancer.
#
#   bash examples/cluster.sh          # Ctrl-C stops everything
#
# Needs PostgreSQL's server binaries (Debian: `apt-get install postgresql`);
# everything it creates lives in a temporary directory, removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
    echo "PostgreSQL's server binaries are missing: apt-get install postgresql" >&2
    exit 1
fi
work=$(mktemp -d)
chmod 755 "$work"
as_owner=()
if [ "$(id -u)" -eq 0 ]; then
    # PostgreSQL refuses to run as root.
    chown postgres "$work"
    as_owner=(runuser -u postgres --)
fi
port=55432
password=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
echo "$password" >"$work/pw"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    "${as_owner[@]}" "$bin/pg_ctl" -D "$work/data" stop -m fast >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

echo "== PostgreSQL on 127.0.0.1:$port (data in $work)"
"${as_owner[@]}" "$bin/initdb" -D "$work/data" -U postgres --pwfile="$work/pw" \
    --auth-host=scram-sha-256 --auth-local=trust -E UTF8 >/dev/null
"${as_owner[@]}" "$bin/pg_ctl" -D "$work/data" -l "$work/postgres.log" -w \
    -o "-p $port -c listen_addresses=127.0.0.1 -k $work" start >/dev/null

echo "== building the server"
cargo build --quiet --features server --bin webhooks-emitter-server
export WEBHOOKS_DATABASE_URL="postgres://postgres:$password@127.0.0.1:$port/postgres"
export WEBHOOKS_ADMIN_TOKEN=${WEBHOOKS_ADMIN_TOKEN:-cluster-demo-token-0123456789}
for i in 1 2 3; do
    target/debug/webhooks-emitter-server --listen "127.0.0.1:808$i" --node-name "node-$i" \
        --allow-private-targets 2>"$work/node-$i.log" &
    pids+=($!)
done
for i in 1 2 3; do
    until curl -fsS "http://127.0.0.1:808$i/ready" >/dev/null 2>&1; do sleep 0.2; done
done

cat <<EOF
== three nodes, one service:
   http://127.0.0.1:8081  http://127.0.0.1:8082  http://127.0.0.1:8083
   (consoles at the same addresses; logs in $work/node-*.log)

Try, with TOKEN=$WEBHOOKS_ADMIN_TOKEN:
   curl -H "authorization: Bearer \$TOKEN" -H 'content-type: application/json' \\
        -d '{"id":"demo","url":"http://127.0.0.1:9000/hooks","events":["order.created"]}' \\
        http://127.0.0.1:8081/api/v1/endpoints
   curl -H "authorization: Bearer \$TOKEN" -H 'content-type: application/json' \\
        -d '{"event":"order.created","payload":{"n":1}}' http://127.0.0.1:8082/api/v1/events
   kill -9 <a node's pid>   # the others take its endpoints over within the lease (10 s)
   node pids: ${pids[*]}

Ctrl-C stops the nodes and PostgreSQL and removes $work.
EOF
wait
