#!/usr/bin/env bash
# arttag's developer entry point: the README's quick start calls it.
#
#   ./run.sh demo    the main job on the local default: Kafka, the real model, a model bundle,
#                    the stream worker, sample artworks in, suggestions with explanations out
#   ./run.sh test    install, start the local Kafka, run the test suite, stop Kafka
#   ./run.sh setup   create .venv and install arttag with its test extras
#
# Extra arguments after `test` go to pytest, e.g. `./run.sh test -m "not kafka"`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
PYTHON="${PYTHON:-python3}"

setup() {
  if [ ! -x .venv/bin/python ]; then
    echo "run.sh: creating .venv" >&2
    "$PYTHON" -m venv .venv
  fi
  .venv/bin/python -m pip install -q --upgrade pip
  # A first install takes minutes (PyTorch for the model export is most of it): say so and
  # show each package as it arrives; a repeat install prints only the summary line. The rest
  # of pip's output is dropped here, where it arises: setuptools' "Editable installation"
  # notice, for one, is printed while pip builds the editable wheel, never when arttag runs.
  echo "run.sh: installing arttag and its test extras into .venv (first time: several minutes, about 6 GB)" >&2
  .venv/bin/python -m pip install --progress-bar off -e ".[test]" 2>&1 \
    | while IFS= read -r line; do
        case "$line" in
          Collecting*|Downloading*|ERROR*) printf '  pip: %s\n' "$line" >&2 ;;
          "Successfully installed"*) printf '  pip: %.160s...\n' "$line" >&2 ;;
        esac
      done
  .venv/bin/python -c "import arttag" || { echo "run.sh: the install failed" >&2; return 1; }
  # axe-core for the browser tests, pinned by package-lock.json (node_modules is git-ignored)
  if command -v npm >/dev/null 2>&1; then
    if [ ! -f node_modules/axe-core/axe.min.js ] || [ package-lock.json -nt node_modules/axe-core/axe.min.js ]; then
      echo "run.sh: npm ci (axe-core for the browser tests)" >&2
      npm ci --no-audit --no-fund --loglevel=error >/dev/null || { echo "run.sh: npm ci failed" >&2; return 1; }
    fi
  else
    echo "run.sh: npm not found: the browser tests (tests/review) will fail without axe-core" >&2
  fi
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/${KAFKA_PORT:-9092}") 2>/dev/null; }

with_kafka() {
  local started=0
  export ARTTAG_TEST_KAFKA="127.0.0.1:${KAFKA_PORT:-9092}"
  export ARTTAG_KAFKA__BOOTSTRAP_SERVERS="${ARTTAG_KAFKA__BOOTSTRAP_SERVERS:-$ARTTAG_TEST_KAFKA}"
  if port_open; then
    echo "run.sh: using the Kafka broker already on $ARTTAG_TEST_KAFKA" >&2
  else
    deploy/kafka/kafka.sh start
    started=1
  fi
  local rc=0
  "$@" || rc=$?
  if [ "$started" = 1 ] && [ "${KEEP_KAFKA:-0}" != 1 ]; then
    deploy/kafka/kafka.sh stop
  fi
  return "$rc"
}

cmd="${1:-}"
shift || true
case "$cmd" in
  setup) setup ;;
  test)
    setup
    with_kafka .venv/bin/python -m pytest "$@"
    ;;
  demo)
    setup
    KEEP_KAFKA=1 with_kafka .venv/bin/arttag demo "$@"
    ;;
  *) sed -n '2,11p' "$0" >&2; exit 2 ;;
esac
