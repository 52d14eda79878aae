#!/usr/bin/env bash
# Installs the Debian 12 packages hac needs to build and run (with --test: also to test).
# Idempotent: packages already present are not touched, and apt is not called at all when
# nothing is missing, so any user (a cluster login node: no root, no sudo) succeeds then. When
# something is missing and this user cannot install (not root, no password-less sudo), it prints
# the exact apt command for an administrator and exits 1. INSTALL_DEPS_EXTRA adds packages
# (space-separated) to the list.
set -euo pipefail

packages=(
  build-essential cmake ccache pkg-config git
  libtorch-dev libopenblas0-openmp
  openmpi-bin libopenmpi-dev
  libhdf5-dev hdf5-tools
  libyaml-cpp-dev
  googletest libgtest-dev
  libcli11-dev nlohmann-json3-dev libspdlog-dev libfmt-dev libboost-dev
  zlib1g-dev libutf8proc-dev libjpeg62-turbo-dev libpng-dev libarchive-dev
  dataset-fashion-mnist gnuplot-nox
)
# --test: what the test suite needs beyond the build (a real single-node Slurm).
if [ "${1:-}" = "--test" ]; then
  # python3-torch writes checkpoints in the released MERU/CLIP layout for the import tests;
  # python3-h5py writes dataset files with no hac code involved.
  packages+=(slurm-wlm munge procps python3-torch python3-h5py)
fi

# shellcheck disable=SC2206  # word splitting of the extra list is intended
packages+=(${INSTALL_DEPS_EXTRA:-})

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

# How this user can run apt: as root, or through sudo that asks no password.
sudo_cmd=()
can_install=1
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo_cmd=(sudo -n); else can_install=0; fi
fi

if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$can_install" -eq 0 ]; then
    echo "install-deps: missing Debian packages: ${missing[*]}" >&2
    echo "install-deps: this user cannot install them (not root, no password-less sudo); an administrator can run:" >&2
    echo "  apt-get update && apt-get install -y --no-install-recommends ${missing[*]}" >&2
    exit 1
  fi
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -q
  "${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  echo "install-deps: all packages present"
fi

# libtorch falls back to the reference BLAS (~20x slower) unless an optimized one is the
# selected alternative; the OpenMP OpenBLAS is the one that coexists with torch threads.
arch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo x86_64-linux-gnu)
for lib in libblas.so.3 liblapack.so.3; do
  want=/usr/lib/$arch/openblas-openmp/$lib
  name=$lib-$arch
  if [ -e "$want" ]; then
    cur=$(update-alternatives --query "$name" 2>/dev/null | awk '/^Value:/ {print $2}')
    if [ "$cur" != "$want" ]; then
      if [ "$can_install" -eq 1 ]; then
        "${sudo_cmd[@]}" update-alternatives --set "$name" "$want"
      else
        echo "install-deps: note: $lib is not the OpenMP OpenBLAS (torch runs much slower); an administrator can run:" >&2
        echo "  update-alternatives --set $name $want" >&2
      fi
    fi
  fi
done
echo "install-deps: ok"
