#!/usr/bin/env bash
# Stand-in for the official flink image's /docker-entrypoint.sh (github.com/apache/flink-docker,
# 2.x): the same commands and environment variables, without jemalloc and plugin copying.
#   jobmanager | taskmanager | standalone-job ARGS | history-server   start Flink in the foreground
#   help                                                              usage
#   anything else                                                     exec'd as given (e.g. the
#                                                                     operator's kubernetes-*.sh)
# JOB_MANAGER_RPC_ADDRESS (default: hostname -f), TASK_MANAGER_NUMBER_OF_TASK_SLOTS and
# FLINK_PROPERTIES ("key: value" lines) go into conf/config.yaml. Root drops to flink (9999).
set -e
COMMAND_STANDALONE="standalone-job"
COMMAND_HISTORY_SERVER="history-server"
JOB_MANAGER_RPC_ADDRESS=${JOB_MANAGER_RPC_ADDRESS:-$(hostname -f)}

drop_privs_cmd() {
  if [ "$(id -u)" -eq 0 ]; then
    echo setpriv --reuid=flink --regid=flink --init-groups
  fi
}

prepare_configuration() {
  local config_params=(
    -D "jobmanager.rpc.address=${JOB_MANAGER_RPC_ADDRESS}"
    -D "blob.server.port=6124"
    -D "query.server.port=6125"
  )
  if [ -n "${TASK_MANAGER_NUMBER_OF_TASK_SLOTS}" ]; then
    config_params+=(-D "taskmanager.numberOfTaskSlots=${TASK_MANAGER_NUMBER_OF_TASK_SLOTS}")
  fi
  if [ -n "${FLINK_PROPERTIES}" ]; then
    local prop key value
    while IFS= read -r prop; do
      prop="$(echo "$prop" | tr -d '[:space:]')"
      [ -n "$prop" ] || continue
      IFS=':' read -r key value <<<"$prop"
      config_params+=(-D "$key=$value")
    done <<<"${FLINK_PROPERTIES}"
  fi
  "$FLINK_HOME/bin/config-parser-utils.sh" "$FLINK_HOME/conf" "$FLINK_HOME/bin" "$FLINK_HOME/lib" "${config_params[@]}"
}

# The Flink script each command starts in the foreground (with the rest of the arguments).
script=
case "$1" in
  help)
    printf "Usage: %s (jobmanager|%s|taskmanager|%s)|help\n" "$(basename "$0")" "$COMMAND_STANDALONE" "$COMMAND_HISTORY_SERVER"
    exit 0
    ;;
  jobmanager) script=jobmanager.sh ;;
  "$COMMAND_STANDALONE") script=standalone-job.sh ;;
  "$COMMAND_HISTORY_SERVER") script=historyserver.sh ;;
  taskmanager) script=taskmanager.sh ;;
esac
if [ -n "$script" ]; then
  shift
  prepare_configuration
  exec $(drop_privs_cmd) "$FLINK_HOME/bin/$script" start-foreground "$@"
fi
exec $(drop_privs_cmd) "$@"
