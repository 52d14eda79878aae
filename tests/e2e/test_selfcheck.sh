#!/usr/bin/env bash
# `hac selfcheck` on NP ranks: it must exit 0 and report the world it checked.
source "$(dirname "$0")/lib.sh"
mpirun=$1 hac=$2 np=$3
check "selfcheck-np$np" 0 "selfcheck passed.* on $np rank" -- "$mpirun" -np "$np" "$hac" selfcheck
finish
