#!/usr/bin/env bash
# Shared by scripts/test.sh and bench/run.sh (source it): installs and starts private,
# throw-away PostgreSQL and Redis servers on free loopback ports under a temp dir, and stops them.
# No system service is touched. start_services exports DURABLEAGENTS_TEST_* for the tests.

SVC_DIR=""

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo -n "$@"; fi
}

# Installs Debian packages that are missing (PostgreSQL and Redis servers).
install_packages() {
  local missing=()
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
  command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "== installing ${missing[*]} from Debian packages"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

free_port() {
  local port
  for _ in $(seq 1 100); do
    port=$((20000 + RANDOM % 20000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return 0
    fi
  done
  return 1
}

# Private, throw-away servers on free loopback ports under a temp dir: no system service is touched.
start_services() {
  install_packages
  SVC_DIR="$(mktemp -d -t durableagents-services.XXXXXX)"
  chmod 755 "$SVC_DIR"
  local pg_bin run_as=()
  pg_bin="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
  if [ "$(id -u)" -eq 0 ]; then
    run_as=(runuser -u postgres --) # PostgreSQL refuses to run as root
    mkdir -p "$SVC_DIR/pg" "$SVC_DIR/pgrun"
    chown postgres "$SVC_DIR/pg" "$SVC_DIR/pgrun"
  else
    mkdir -p "$SVC_DIR/pgrun"
  fi

  local pg_port redis_port
  pg_port="$(free_port)"
  redis_port="$(free_port)"
  echo "== starting PostgreSQL on 127.0.0.1:$pg_port and Redis on 127.0.0.1:$redis_port"
  "${run_as[@]}" "$pg_bin/initdb" -D "$SVC_DIR/pg" -U postgres -A trust -E UTF8 --no-sync >"$SVC_DIR/initdb.log" 2>&1 \
    || { cat "$SVC_DIR/initdb.log"; return 1; }
  # synchronous_commit stays on, as in production.
  cat >"$SVC_DIR/pg-ctl.sh" <<PGCTL
#!/usr/bin/env bash
exec ${run_as[*]} "$pg_bin/pg_ctl" -D "$SVC_DIR/pg" -l "$SVC_DIR/pgrun/pg.log" -w -t 60 \\
  -o "-p $pg_port -k $SVC_DIR/pgrun -c listen_addresses=127.0.0.1 -c max_connections=300 -c synchronous_commit=on" "\$@"
PGCTL
  chmod +x "$SVC_DIR/pg-ctl.sh"
  "$SVC_DIR/pg-ctl.sh" start >/dev/null || { cat "$SVC_DIR/pgrun/pg.log"; return 1; }

  cat >"$SVC_DIR/redis-start.sh" <<REDIS
#!/usr/bin/env bash
exec redis-server --port $redis_port --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \\
  --pidfile "$SVC_DIR/redis.pid" --dir "$SVC_DIR" --logfile "$SVC_DIR/redis.log"
REDIS
  cat >"$SVC_DIR/redis-stop.sh" <<REDIS
#!/usr/bin/env bash
[ -f "$SVC_DIR/redis.pid" ] && kill -9 "\$(cat "$SVC_DIR/redis.pid")" 2>/dev/null; rm -f "$SVC_DIR/redis.pid"; exit 0
REDIS
  chmod +x "$SVC_DIR/redis-start.sh" "$SVC_DIR/redis-stop.sh"
  "$SVC_DIR/redis-start.sh"
  for _ in $(seq 1 50); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.1; done

  export DURABLEAGENTS_TEST_POSTGRES="Host=127.0.0.1;Port=$pg_port;Username=postgres;Database=postgres;Maximum Pool Size=60"
  export DURABLEAGENTS_TEST_PG_CTL="$SVC_DIR/pg-ctl.sh"
  export DURABLEAGENTS_TEST_REDIS="127.0.0.1:$redis_port"
  export DURABLEAGENTS_TEST_REDIS_START="$SVC_DIR/redis-start.sh"
  export DURABLEAGENTS_TEST_REDIS_STOP="$SVC_DIR/redis-stop.sh"
}

stop_services() {
  [ -n "$SVC_DIR" ] || return 0
  [ -x "$SVC_DIR/pg-ctl.sh" ] && "$SVC_DIR/pg-ctl.sh" stop -m immediate >/dev/null 2>&1
  [ -x "$SVC_DIR/redis-stop.sh" ] && "$SVC_DIR/redis-stop.sh"
  rm -rf "$SVC_DIR"
  SVC_DIR=""
}
