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
finish
