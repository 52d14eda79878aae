# shellcheck shell=bash
# Shared by the e2e scripts, which source it first: `source "$(dirname "$0")/lib.sh"`. The
# preamble (strict variables, a scratch directory removed on exit), the assertions, the
# Fashion-MNIST fixture and the single-node Slurm. Not a test itself.
#
# Only `set -u`: the scripts run commands that are meant to fail and check their exit codes, and
# record every failure (fail) before exiting with the total (finish), so -e would stop them early.
set -u

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)  # tests/e2e
# shellcheck disable=SC2034  # for the scripts
root=$(cd "$here/../.." && pwd)                      # the repository
status=0

# fail MESSAGE: records a failure; the script goes on and finish exits non-zero.
fail() { echo "FAIL: $*"; status=1; }
# die MESSAGE: a failure after which nothing else can be checked.
die() { echo "FAIL: $*"; exit 1; }
# finish: exits with 0 when nothing failed, else 1.
finish() { exit "$status"; }

# check NAME EXPECTED_RC PATTERN -- CMD...: runs CMD; prints `ok   NAME` when it exits with
# EXPECTED_RC and its output (stdout and stderr) matches the extended regex PATTERN, else the
# reason and the output, and records a failure.
check() {
  local name=$1 want=$2 pattern=$3
  shift 4
  local out rc
  out=$("$@" 2>&1); rc=$?
  if [ "$rc" -ne "$want" ]; then
    echo "FAIL $name: exit $rc, expected $want"; echo "$out"; status=1; return
  fi
  if ! grep -Eq -- "$pattern" <<<"$out"; then
    echo "FAIL $name: output does not match /$pattern/"; echo "$out"; status=1; return
  fi
  echo "ok   $name"
}

# scratch_dir [TEMPLATE]: sets $dir to a new directory (mktemp -d TEMPLATE), removed when the
# script exits, after stopping the Slurm daemons when start_slurm ran.
_slurm_started=0
_cleanup() {
  if [ "$_slurm_started" -eq 1 ]; then "$here/../slurm/slurm_local.sh" stop "$dir"; fi
  rm -rf "$dir"
}
# shellcheck disable=SC2120  # the template is optional
scratch_dir() {
  dir=$(mktemp -d "$@") || die "mktemp -d $*"
  trap _cleanup EXIT
}

# fashion_mnist OUT TRAIN TEST: the Fashion-MNIST file OUT with TRAIN and TEST rows, made by $hac.
# shellcheck disable=SC2154  # hac is the script's
fashion_mnist() {
  "$hac" data fashion-mnist --out "$1" --train "$2" --test "$3" >/dev/null || die "dataset"
}

# start_slurm: a real single-node Slurm (tests/slurm/slurm_local.sh) living in $dir, stopped when
# the script exits; exports SLURM_CONF and lets Open MPI run as root without ptrace rights.
start_slurm() {
  local conf
  _slurm_started=1
  conf=$("$here/../slurm/slurm_local.sh" start "$dir") || die "Slurm did not start"
  eval "$conf"
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
  export OMPI_MCA_btl_vader_single_copy_mechanism=none
}
