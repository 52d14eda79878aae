#!/usr/bin/env bash
# The hac command line: versions, help, and exit codes for usage errors.
source "$(dirname "$0")/lib.sh"
hac=$1
scratch_dir
check version 0 'LibTorch +1\.13' -- "$hac" --version
check version-mpi 0 'MPI +Open MPI v4' -- "$hac" --version
check version-hdf5 0 'HDF5 +1\.10' -- "$hac" --version
check version-nccl 0 'NCCL +([0-9]+\.[0-9]+\.[0-9]+|none)' -- "$hac" --version
check version-git 0 'hac [0-9.]+ \(git ([0-9a-f]{12}(-dirty)?|unknown)\)' -- "$hac" version
check help 0 'selfcheck' -- "$hac" --help
check help-sub 0 'min-seconds' -- "$hac" bench comm --help
check unknown-subcommand 2 'error: .*(bogus|Extras)' -- "$hac" bogus
check bad-option 2 'error: .*--nope' -- "$hac" selfcheck --nope
check bad-choice 2 'error: .*fail-how' -- "$hac" selfcheck --fail-how sometimes
check no-subcommand 2 'Subcommands' -- "$hac"
check selfcheck-single 0 'selfcheck passed.* on 1 rank' -- "$hac" selfcheck
check bench-single 0 'busbw_GB/s' -- "$hac" bench comm --sizes 1024 --min-seconds 0.01
tiny=$here/../unit/models/data/released_layout_tiny.pt.bin
check inspect 0 'model: MERU' -- "$hac" checkpoint inspect "$tiny"
check inspect-tensors 0 'model/visual.blocks.0.attn.qkv.weight +\[12, 4\] +float32' -- "$hac" checkpoint inspect "$tiny"
bad=$dir/truncated.pt
head -c 700 "$tiny" > "$bad"
check inspect-truncated 1 "error: .*$bad" -- "$hac" checkpoint inspect "$bad"
check inspect-missing 1 'error: .*no/such/file.pth' -- "$hac" checkpoint inspect /no/such/file.pth

# A researcher's habits: bare overrides (as Hydra and MERU take them) equal --set; typos get a
# suggestion; a space-separated list is refused; config input errors exit 2; help shows defaults.
cfg=$root/configs/unlearn/hac_meru_tiny.yaml
[ "$("$hac" config "$cfg" unlearn.steps=5 'unlearn.forget=[bag, sandal]' 2>&1)" = \
  "$("$hac" config "$cfg" --set unlearn.steps=5 --set 'unlearn.forget=[bag, sandal]' 2>&1)" ] \
  || fail "bare overrides differ from --set"
"$hac" config "$cfg" unlearn.steps=5 | grep -q '^  steps: 5$' || fail "the bare override was not applied"
check typo-key 2 "unknown key 'unlearn.frget'; did you mean 'forget'" -- "$hac" config "$cfg" 'unlearn.frget=[bag]'
check typo-section 2 "unknown section 'unlaern'; did you mean 'unlearn'" -- "$hac" config "$cfg" --set unlaern.steps=3
check typo-subcommand 2 "unknown subcommand 'confg'; did you mean 'config'" -- "$hac" confg
check list-spaces 2 "would be one item 'dog cat'.*separate list items with commas" -- "$hac" config "$cfg" 'unlearn.forget=[dog cat]'
check list-quoted 0 "ankle boot" -- "$hac" config "$cfg" "unlearn.forget=['ankle boot']"
check missing-config 2 "cannot read config file '/no/such.yaml'" -- "$hac" config /no/such.yaml
check sweep-as-config 2 "looks like a sweep spec: run it with .hac sweep." -- "$hac" config "$root/configs/sweeps/study.yaml"
check help-defaults 0 '01:00:00' -- "$hac" sweep --help
check help-eval-section 0 'unlearn, eval, dist' -- "$hac" train --help

# dist.device cuda in a CPU build: the same message, exit 2, from hac config, a run and hac eval,
# before anything is written.
if "$hac" version 2>/dev/null | grep -q "LibTorch.*(CUDA: no)"; then
  for cmd in config train unlearn eval; do
    check "cuda-refused-$cmd" 2 "dist.device: 'cuda' needs a CUDA build of hac.*launch/gpu_bootstrap.sh" -- \
      "$hac" $cmd "$cfg" dist.device=cuda output.dir="$dir/cuda_$cmd"
    [ ! -e "$dir/cuda_$cmd" ] || fail "hac $cmd with cuda wrote $dir/cuda_$cmd"
  done
fi
finish
