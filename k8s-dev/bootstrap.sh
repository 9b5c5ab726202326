#!/usr/bin/env bash
# Install the operators qaflow's chart needs, at pinned versions, into the current
# kube-context (kind or minikube). Run once per cluster, then `skaffold dev`.
#
#   k8s-dev/bootstrap.sh [--create-kind] [--with-keda] [--with-cnpg] [--with-metrics-server]
#                        [--namespace qaflow] [--dry-run]
#
#   --create-kind          create the kind cluster from k8s-dev/kind-cluster.yaml first
#   --with-keda            KEDA (llm-workers scale on consumer lag: skaffold dev -p keda)
#   --with-cnpg            CloudNativePG (PostgreSQL from the operator: skaffold dev -p cnpg)
#   --with-metrics-server  metrics-server (the CPU HPA on kind; minikube has an addon)
#   --namespace NS         where qaflow runs (default qaflow); the operators watch it
#   --dry-run              print the commands instead of running them
#
# Always installed: Strimzi (Kafka) and the Flink Kubernetes Operator (webhook off, so no
# cert-manager). Idempotent: helm upgrade --install and kubectl apply.
set -euo pipefail

STRIMZI_VERSION="1.2.0"
FLINK_OPERATOR_VERSION="1.15.0"
KEDA_VERSION="2.20.2"
CNPG_VERSION="1.30.0"
METRICS_SERVER_CHART_VERSION="3.13.0"

NAMESPACE="qaflow"
CREATE_KIND=false
WITH_KEDA=false
WITH_CNPG=false
WITH_METRICS_SERVER=false
DRY_RUN=false

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

usage() {
  sed -n '2,17p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

while [[ $# -gt 0 ]]; do
  case "$1" in
    --create-kind) CREATE_KIND=true ;;
    --with-keda) WITH_KEDA=true ;;
    --with-cnpg) WITH_CNPG=true ;;
    --with-metrics-server) WITH_METRICS_SERVER=true ;;
    --namespace)
      [[ $# -ge 2 ]] || { echo "--namespace needs a value" >&2; exit 2; }
      NAMESPACE="$2"
      shift
      ;;
    --dry-run) DRY_RUN=true ;;
    -h | --help) usage; exit 0 ;;
    *) echo "unknown option: $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done

run() {
  echo "+ $*"
  if [[ "$DRY_RUN" != true ]]; then
    "$@"
  fi
}

need() {
  if ! command -v "$1" >/dev/null 2>&1; then
    echo "$1 is required: $2" >&2
    exit 1
  fi
}

if [[ "$DRY_RUN" != true ]]; then
  need kubectl "https://kubernetes.io/docs/tasks/tools/"
  need helm "https://helm.sh/docs/intro/install/ (or scripts/install-helm.sh, then put ~/.cache/qaflow/bin on PATH)"
fi

if [[ "$CREATE_KIND" == true ]]; then
  if [[ "$DRY_RUN" != true ]]; then need kind "https://kind.sigs.k8s.io/docs/user/quick-start/"; fi
  if [[ "$DRY_RUN" != true ]] && kind get clusters 2>/dev/null | grep -qx qaflow; then
    echo "kind cluster qaflow exists"
  else
    run kind create cluster --config "$HERE/kind-cluster.yaml"
  fi
fi

if [[ "$DRY_RUN" != true ]]; then
  echo "kube-context: $(kubectl config current-context)"
fi

# The namespace first: the operators create their roles and the "flink" service account in it.
echo "== namespace $NAMESPACE"
if [[ "$DRY_RUN" == true ]]; then
  echo "+ kubectl create namespace $NAMESPACE --dry-run=client -o yaml | kubectl apply -f -"
else
  kubectl create namespace "$NAMESPACE" --dry-run=client -o yaml | kubectl apply -f -
fi

echo "== Strimzi $STRIMZI_VERSION (Kafka 4.3.1, KRaft)"
run helm upgrade --install strimzi oci://quay.io/strimzi-helm/strimzi-kafka-operator \
  --version "$STRIMZI_VERSION" \
  --namespace strimzi --create-namespace \
  --set "watchNamespaces={$NAMESPACE}" \
  --wait --timeout 10m

echo "== Flink Kubernetes Operator $FLINK_OPERATOR_VERSION"
# The released chart pins its own image (a ghcr.io tag named by commit hash; ghcr.io has no
# semver tags), so the image is left as the chart has it. Overriding only image.tag would ask
# ghcr.io for a tag that does not exist.
# archive.apache.org keeps every release; downloads.apache.org only the newest.
run helm repo add "flink-operator-$FLINK_OPERATOR_VERSION" \
  "https://archive.apache.org/dist/flink/flink-kubernetes-operator-$FLINK_OPERATOR_VERSION/" --force-update
run helm upgrade --install flink-kubernetes-operator \
  "flink-operator-$FLINK_OPERATOR_VERSION/flink-kubernetes-operator" \
  --version "$FLINK_OPERATOR_VERSION" \
  --namespace flink-operator --create-namespace \
  --set webhook.create=false \
  --set "watchNamespaces={$NAMESPACE}" \
  --wait --timeout 10m

if [[ "$WITH_KEDA" == true ]]; then
  echo "== KEDA $KEDA_VERSION"
  run helm repo add kedacore https://kedacore.github.io/charts --force-update
  run helm upgrade --install keda kedacore/keda \
    --version "$KEDA_VERSION" \
    --namespace keda --create-namespace \
    --wait --timeout 10m
fi

if [[ "$WITH_CNPG" == true ]]; then
  echo "== CloudNativePG $CNPG_VERSION"
  cnpg_minor="${CNPG_VERSION%.*}"
  run kubectl apply --server-side \
    -f "https://raw.githubusercontent.com/cloudnative-pg/cloudnative-pg/release-$cnpg_minor/releases/cnpg-$CNPG_VERSION.yaml"
  run kubectl -n cnpg-system rollout status deployment/cnpg-controller-manager --timeout=5m
fi

if [[ "$WITH_METRICS_SERVER" == true ]]; then
  echo "== metrics-server (chart $METRICS_SERVER_CHART_VERSION)"
  run helm repo add metrics-server https://kubernetes-sigs.github.io/metrics-server/ --force-update
  # kind's kubelets serve self-signed certificates.
  run helm upgrade --install metrics-server metrics-server/metrics-server \
    --version "$METRICS_SERVER_CHART_VERSION" \
    --namespace kube-system \
    --set "args={--kubelet-insecure-tls}" \
    --wait --timeout 5m
fi

profiles=""
if [[ "$WITH_KEDA" == true ]]; then profiles="keda"; fi
if [[ "$WITH_CNPG" == true ]]; then profiles="${profiles:+$profiles,}cnpg"; fi
echo
echo "Operators ready. Next:"
echo "  skaffold dev${profiles:+ -p $profiles}     # builds the images, deploys charts/qaflow into $NAMESPACE, port-forwards"
