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
  command -v npm >/dev/null 2>&1 || missing+=(nodejs npm) # PGlite + pgvector for the long-term memory tests
  command -v chromium >/dev/null 2>&1 || missing+=(chromium) # the dashboard's browser tests (Playwright)
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

# One private PostgreSQL cluster named $1 under $SVC_DIR; prints its port. Writes $SVC_DIR/$1-ctl.sh.
start_postgres() {
  local name="$1" pg_bin port run_as=()
  pg_bin="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
  mkdir -p "$SVC_DIR/$name" "$SVC_DIR/$name-run"
  if [ "$(id -u)" -eq 0 ]; then
    run_as=(runuser -u postgres --) # PostgreSQL refuses to run as root
    chown postgres "$SVC_DIR/$name" "$SVC_DIR/$name-run"
  fi
  port="$(free_port)" || return 1
  "${run_as[@]}" "$pg_bin/initdb" -D "$SVC_DIR/$name" -U postgres -A trust -E UTF8 --no-sync >"$SVC_DIR/$name-initdb.log" 2>&1 \
    || { cat "$SVC_DIR/$name-initdb.log" >&2; return 1; }
  # synchronous_commit stays on, as in production.
  cat >"$SVC_DIR/$name-ctl.sh" <<PGCTL
#!/usr/bin/env bash
exec ${run_as[*]} "$pg_bin/pg_ctl" -D "$SVC_DIR/$name" -l "$SVC_DIR/$name-run/pg.log" -w -t 60 \\
  -o "-p $port -k $SVC_DIR/$name-run -c listen_addresses=127.0.0.1 -c max_connections=300 -c synchronous_commit=on" "\$@"
PGCTL
  chmod +x "$SVC_DIR/$name-ctl.sh"
  "$SVC_DIR/$name-ctl.sh" start >/dev/null || { cat "$SVC_DIR/$name-run/pg.log" >&2; return 1; }
  echo "$port"
}

# One private Redis server named $1 under $SVC_DIR; prints its port. Writes $SVC_DIR/$1-start.sh and -stop.sh.
start_redis() {
  local name="$1" port
  port="$(free_port)" || return 1
  cat >"$SVC_DIR/$name-start.sh" <<REDIS
#!/usr/bin/env bash
exec redis-server --port $port --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \\
  --pidfile "$SVC_DIR/$name.pid" --dir "$SVC_DIR" --logfile "$SVC_DIR/$name.log"
REDIS
  cat >"$SVC_DIR/$name-stop.sh" <<REDIS
#!/usr/bin/env bash
[ -f "$SVC_DIR/$name.pid" ] && kill -9 "\$(cat "$SVC_DIR/$name.pid")" 2>/dev/null; rm -f "$SVC_DIR/$name.pid"; exit 0
REDIS
  chmod +x "$SVC_DIR/$name-start.sh" "$SVC_DIR/$name-stop.sh"
  "$SVC_DIR/$name-start.sh" >/dev/null || return 1
  for _ in $(seq 1 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
  echo "$port"
}

# A real pgvector build behind the PostgreSQL wire protocol: PGlite (WASM PostgreSQL) with its pgvector
# extension, served on a loopback port by pglite-socket (one connection at a time). Debian 12 does not
# package pgvector; npm does. Prints the port.
PGLITE_VERSION=0.5.14
start_pgvector() {
  local dir="${DURABLEAGENTS_NPM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/durableagents/pglite-$PGLITE_VERSION}" port
  if [ ! -f "$dir/node_modules/@electric-sql/pglite-socket/dist/scripts/server.js" ]; then
    command -v npm >/dev/null 2>&1 || { echo "npm is needed for the pgvector tests" >&2; return 1; }
    mkdir -p "$dir"
    (cd "$dir" && echo '{"private":true}' >package.json \
      && npm install --silent --no-audit --no-fund "@electric-sql/pglite@$PGLITE_VERSION" @electric-sql/pglite-socket@0.2.17 @electric-sql/pglite-pgvector@0.0.15 >"$dir/npm.log" 2>&1) \
      || { cat "$dir/npm.log" >&2; return 1; }
  fi
  port="$(free_port)" || return 1
  node "$dir/node_modules/@electric-sql/pglite-socket/dist/scripts/server.js" --host=127.0.0.1 --port="$port" \
    --extensions=@electric-sql/pglite-pgvector:vector >"$SVC_DIR/pglite.log" 2>&1 &
  echo $! >"$SVC_DIR/pglite.pid"
  for _ in $(seq 1 100); do
    grep -q "listening" "$SVC_DIR/pglite.log" 2>/dev/null && { echo "$port"; return 0; }
    sleep 0.1
  done
  cat "$SVC_DIR/pglite.log" >&2
  return 1
}

# An npm package for a cross-language test, installed once into a cache folder of its own (like PGlite).
# usage: install_npm_package <package> <version> <folder>; prints its node_modules directory.
NPM_CACHE_ROOT="${XDG_CACHE_HOME:-$HOME/.cache}/durableagents"
install_npm_package() {
  local package="$1" version="$2" dir="$3"
  if [ ! -f "$dir/node_modules/$package/package.json" ]; then
    command -v npm >/dev/null 2>&1 || { echo "npm is needed for the $package test" >&2; return 1; }
    mkdir -p "$dir"
    (cd "$dir" && echo '{"private":true}' >package.json \
      && npm install --silent --no-audit --no-fund "$package@$version" >"$dir/npm.log" 2>&1) \
      || { cat "$dir/npm.log" >&2; return 1; }
  fi
  echo "$dir/node_modules"
}

# The JavaScript Durable Task SDK for the gRPC endpoint's cross-language test.
DURABLETASK_JS_VERSION=0.4.0
install_durabletask_js() {
  install_npm_package @microsoft/durabletask-js "$DURABLETASK_JS_VERSION" "${DURABLEAGENTS_NPM_CACHE:-$NPM_CACHE_ROOT/durabletask-js-$DURABLETASK_JS_VERSION}"
}

# The AG-UI protocol's own TypeScript client, for the AG-UI endpoint's test.
AGUI_CLIENT_VERSION=1.0.0
install_agui_client() { install_npm_package @ag-ui/client "$AGUI_CLIENT_VERSION" "$NPM_CACHE_ROOT/ag-ui-client-$AGUI_CLIENT_VERSION"; }

# Private, throw-away servers on free loopback ports under a temp dir: no system service is touched.
# Two of each: the shared pair every test uses, and a "fault" pair that only the fault tests restart
# and kill, so a restart never cuts a connection of a test running in another test assembly.
start_services() {
  install_packages
  SVC_DIR="$(mktemp -d -t durableagents-services.XXXXXX)"
  chmod 755 "$SVC_DIR"
  local pg_port redis_port fault_pg_port fault_redis_port pgvector_port
  pg_port="$(start_postgres pg)" || return 1
  fault_pg_port="$(start_postgres pgfault)" || return 1
  redis_port="$(start_redis redis)" || return 1
  fault_redis_port="$(start_redis redisfault)" || return 1
  # Without npm's registry the pgvector tests are skipped (and counted as skipped), the rest still run.
  pgvector_port="$(start_pgvector)" || { echo "== warning: PGlite with pgvector did not start; the pgvector tests will be skipped" >&2; pgvector_port=""; }
  echo "== started PostgreSQL on 127.0.0.1:$pg_port (+ fault-test server :$fault_pg_port), Redis on 127.0.0.1:$redis_port (+ :$fault_redis_port), pgvector (PGlite) on 127.0.0.1:$pgvector_port"

  export DURABLEAGENTS_TEST_POSTGRES="Host=127.0.0.1;Port=$pg_port;Username=postgres;Database=postgres;Maximum Pool Size=60"
  export DURABLEAGENTS_TEST_REDIS="127.0.0.1:$redis_port"
  export DURABLEAGENTS_TEST_FAULT_POSTGRES="Host=127.0.0.1;Port=$fault_pg_port;Username=postgres;Database=postgres;Maximum Pool Size=60"
  export DURABLEAGENTS_TEST_FAULT_PG_CTL="$SVC_DIR/pgfault-ctl.sh"
  export DURABLEAGENTS_TEST_FAULT_REDIS="127.0.0.1:$fault_redis_port"
  export DURABLEAGENTS_TEST_FAULT_REDIS_START="$SVC_DIR/redisfault-start.sh"
  export DURABLEAGENTS_TEST_FAULT_REDIS_STOP="$SVC_DIR/redisfault-stop.sh"
  export DURABLEAGENTS_TEST_CHROMIUM="$(command -v chromium)"
  local js_modules
  if js_modules="$(install_durabletask_js)"; then
    export DURABLEAGENTS_TEST_DURABLETASK_JS="$js_modules"
  else
    echo "== warning: @microsoft/durabletask-js could not be installed; the JavaScript SDK test will be skipped" >&2
  fi
  if js_modules="$(install_agui_client)"; then
    export DURABLEAGENTS_TEST_AGUI_CLIENT="$js_modules"
  else
    echo "== warning: @ag-ui/client could not be installed; the AG-UI client test will be skipped" >&2
  fi
  if [ -n "$pgvector_port" ]; then
    export DURABLEAGENTS_TEST_PGVECTOR="Host=127.0.0.1;Port=$pgvector_port;Username=postgres;Database=postgres;Maximum Pool Size=1;SSL Mode=Disable"
  fi
}

stop_services() {
  [ -n "$SVC_DIR" ] || return 0
  local f
  for f in "$SVC_DIR"/pg-ctl.sh "$SVC_DIR"/pgfault-ctl.sh; do
    [ -x "$f" ] && "$f" stop -m immediate >/dev/null 2>&1
  done
  for f in "$SVC_DIR"/redis-stop.sh "$SVC_DIR"/redisfault-stop.sh; do
    [ -x "$f" ] && "$f"
  done
  [ -f "$SVC_DIR/pglite.pid" ] && kill "$(cat "$SVC_DIR/pglite.pid")" 2>/dev/null
  rm -rf "$SVC_DIR"
  SVC_DIR=""
}
