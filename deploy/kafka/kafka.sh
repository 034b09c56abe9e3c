#!/usr/bin/env bash
# A single-node Apache Kafka (KRaft, broker + controller) on 127.0.0.1, from Maven Central jars.
#
#   deploy/kafka/kafka.sh fetch    resolve the jars with Maven (once per version)
#   deploy/kafka/kafka.sh start    fetch if needed, format storage, start, wait until it accepts connections
#   deploy/kafka/kafka.sh stop     stop it cleanly (SIGTERM, then wait for the controlled shutdown)
#   deploy/kafka/kafka.sh status   exit 0 when running
#
# Settings (environment): KAFKA_VERSION (default 3.9.2), KAFKA_PORT (9092),
# KAFKA_CONTROLLER_PORT (9093), KAFKA_RUN_DIR (default deploy/kafka/run/<version>):
# the folder this script owns, holding jars, config, data and logs.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
version="${KAFKA_VERSION:-3.9.2}"
port="${KAFKA_PORT:-9092}"
controller_port="${KAFKA_CONTROLLER_PORT:-9093}"
run_dir="${KAFKA_RUN_DIR:-$here/run/$version}"
libs="$run_dir/libs"
pid_file="$run_dir/kafka.pid"
major="${version%%.*}"

log() { printf 'kafka.sh: %s\n' "$*" >&2; }

fetch() {
  if [ -f "$libs/.complete" ]; then return 0; fi
  mkdir -p "$libs"
  local profile="kafka3"
  [ "$major" -ge 4 ] && profile="kafka4"
  log "resolving kafka_2.13:$version and its logging binding ($profile) with Maven"
  mvn -q -B -f "$here/pom.xml" -P "$profile" -Dkafka.version="$version" \
    dependency:copy-dependencies -DoutputDirectory="$libs" -DincludeScope=runtime
  touch "$libs/.complete"
}

is_running() {
  [ -f "$pid_file" ] && kill -0 "$(cat "$pid_file")" 2>/dev/null
}

port_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null
}

write_config() {
  mkdir -p "$run_dir/data" "$run_dir/logs"
  cat > "$run_dir/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$controller_port
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$controller_port
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$run_dir/data
num.partitions=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
log.retention.hours=168
log.cleaner.backoff.ms=1000
PROPS
}

java_opts() {
  local opts="-Xms256m -Xmx1g -Dkafka.logs.dir=$run_dir/logs"
  if [ "$major" -ge 4 ]; then
    opts="$opts -Dlog4j2.configurationFile=file:$here/log4j2.xml"
  else
    opts="$opts -Dlog4j.configuration=file:$here/log4j.properties"
  fi
  echo "$opts"
}

start() {
  if is_running; then log "already running (pid $(cat "$pid_file")) on 127.0.0.1:$port"; return 0; fi
  if port_open; then
    log "something already listens on 127.0.0.1:$port (a broker started elsewhere?); not starting another"
    exit 3
  fi
  fetch
  write_config
  local cp="$libs/*"
  # shellcheck disable=SC2046
  if [ ! -f "$run_dir/data/meta.properties" ]; then
    local cluster_id
    cluster_id="$(java -cp "$cp" $(java_opts) kafka.tools.StorageTool random-uuid | tail -n 1)"
    log "formatting KRaft storage (cluster $cluster_id)"
    java -cp "$cp" $(java_opts) kafka.tools.StorageTool format \
      -t "$cluster_id" -c "$run_dir/server.properties" >"$run_dir/logs/format.log" 2>&1 \
      || { cat "$run_dir/logs/format.log" >&2; exit 1; }
  fi
  log "starting Kafka $version on 127.0.0.1:$port (run folder $run_dir)"
  # shellcheck disable=SC2046
  nohup java -cp "$cp" $(java_opts) kafka.Kafka "$run_dir/server.properties" \
    >"$run_dir/logs/stdout.log" 2>&1 &
  echo $! >"$pid_file"
  for _ in $(seq 1 120); do
    if ! is_running; then
      log "broker exited during start-up; last lines of its log:"
      tail -n 30 "$run_dir/logs/stdout.log" >&2 || true
      exit 1
    fi
    if port_open && grep -q "Kafka Server started\|\[KafkaRaftServer nodeId=1\] Kafka Server started" "$run_dir/logs/server.log" 2>/dev/null; then
      log "ready on 127.0.0.1:$port"
      return 0
    fi
    sleep 1
  done
  log "broker did not become ready in 120 s"
  exit 1
}

stop() {
  if ! is_running; then log "not running"; rm -f "$pid_file"; return 0; fi
  local pid
  pid="$(cat "$pid_file")"
  kill -TERM "$pid"
  for _ in $(seq 1 60); do
    if ! kill -0 "$pid" 2>/dev/null; then rm -f "$pid_file"; log "stopped"; return 0; fi
    sleep 1
  done
  log "no clean shutdown after 60 s; killing"
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$pid_file"
}

case "${1:-}" in
  fetch) fetch ;;
  start) start ;;
  stop) stop ;;
  status) if is_running; then log "running (pid $(cat "$pid_file"))"; else log "not running"; exit 1; fi ;;
  reset) stop; rm -rf "$run_dir/data" "$run_dir/logs" ;;
  *) echo "usage: $0 fetch|start|stop|status|reset" >&2; exit 2 ;;
esac
