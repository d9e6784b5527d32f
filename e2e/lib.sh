# Shared helpers for the e2e scripts (sourced, not executed).
# shellcheck shell=bash

e2e_here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=versions.env
source "$e2e_here/versions.env"

E2E_CACHE_ROOT="${BASCULE_E2E_CACHE:-$HOME/.cache/bascule-e2e}"
E2E_KEY="k8s-${KUBE_VERSION}_etcd-${ETCD_VERSION}_kwok-${KWOK_VERSION}_helm-${HELM_VERSION}"
E2E_BIN="$E2E_CACHE_ROOT/$E2E_KEY/bin"

# Every binary the harness runs, and the variable that overrides where it comes from. The
# KWOK_* names are kwokctl's own, so a user who already points kwokctl at binaries gets the same
# binaries here.
E2E_BINARIES=(kube-apiserver kube-controller-manager kube-scheduler kubectl etcd kwok kwokctl)
e2e_binary_var() {
  case "$1" in
    kube-apiserver) echo KWOK_KUBE_APISERVER_BINARY ;;
    kube-controller-manager) echo KWOK_KUBE_CONTROLLER_MANAGER_BINARY ;;
    kube-scheduler) echo KWOK_KUBE_SCHEDULER_BINARY ;;
    kubectl) echo KWOK_KUBECTL_BINARY ;;
    etcd) echo KWOK_ETCD_BINARY ;;
    kwok) echo KWOK_CONTROLLER_BINARY ;;
    kwokctl) echo BASCULE_E2E_KWOKCTL_BINARY ;;
    helm) echo BASCULE_E2E_HELM_BINARY ;;
    *) return 1 ;;
  esac
}

e2e_die() { printf '%s: error: %s\n' "${E2E_PROG:-e2e}" "$*" >&2; exit 1; }
e2e_log() { printf '[%s %s] %s\n' "${E2E_PROG:-e2e}" "$(date +%H:%M:%S)" "$*" >&2; }

# e2e_find NAME [path]: prints where NAME comes from: its override variable (must be an executable
# file), else the pinned cache built by e2e/build, else (only with "path") the PATH.
e2e_find() {
  local name=$1 var val
  var=$(e2e_binary_var "$name")
  val=${!var:-}
  if [ -n "$val" ]; then
    [ -x "$val" ] && [ -f "$val" ] || e2e_die "$var=$val is not an executable file"
    echo "$val"; return 0
  fi
  if [ -x "$E2E_BIN/$name" ]; then echo "$E2E_BIN/$name"; return 0; fi
  if [ "${2:-}" = path ]; then type -P "$name" 2>/dev/null || true; fi  # files only, not functions
}

# e2e_resolve_binaries: fills the associative array BIN[name]=path for E2E_BINARIES. Binaries on
# the PATH are used only when that lets the harness build nothing at all; otherwise e2e/build
# builds whatever is neither overridden nor cached, so versions are never mixed by accident.
declare -gA BIN=()
e2e_resolve_binaries() {
  local n p missing=() still=()
  for n in "${E2E_BINARIES[@]}"; do
    p=$(e2e_find "$n")
    if [ -n "$p" ]; then BIN[$n]=$p; else missing+=("$n"); fi
  done
  [ ${#missing[@]} -gt 0 ] || return 0
  for n in "${missing[@]}"; do
    p=$(e2e_find "$n" path)
    if [ -n "$p" ]; then BIN[$n]=$p; else still+=("$n"); fi
  done
  [ ${#still[@]} -gt 0 ] || return 0
  e2e_log "not built yet: ${still[*]}; building ${missing[*]} with e2e/build (cold: see docs/e2e.md)"
  "$e2e_here/build" "${missing[@]}" >/dev/null
  for n in "${missing[@]}"; do
    [ -x "$E2E_BIN/$n" ] || e2e_die "e2e/build did not produce $n"
    BIN[$n]="$E2E_BIN/$n"
  done
}
