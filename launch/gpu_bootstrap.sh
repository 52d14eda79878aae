#!/usr/bin/env bash
# CUDA build of hac on a GPU machine that has CUDA, NCCL and a PyTorch wheel (whose LibTorch ships
# its CMake files) but neither Open MPI, HDF5, yaml-cpp nor the header libraries, and no package
# manager access. Two steps, repeatable:
#
#   1. On a Debian 12 machine with apt access (the dev machine):
#        launch/gpu_bootstrap.sh fetch DEBDIR
#      downloads the .deb files of those libraries and of everything they depend on, except what
#      any Linux with a C++ toolchain already has (libc, libstdc++, libgcc, ...), into DEBDIR.
#   2. On the GPU machine, in the repository root, with DEBDIR copied along:
#        launch/gpu_bootstrap.sh build DEBDIR [BUILD_DIR] [extra cmake args...]
#      unpacks every .deb with `dpkg -x` (or `ar` + `tar` where dpkg is missing) into
#      DEBDIR/prefix, finds the wheel's LibTorch through `python -c 'import torch'`, configures
#      with RUNNER_WITH_NCCL=ON against /usr/local/cuda and builds (default BUILD_DIR build-cuda).
#      It writes BUILD_DIR/env.sh: source it before running hac or mpirun from that prefix.
#
#   launch/gpu_bootstrap.sh prefix DEBDIR     only the unpacking (used by the tests)
#
# Variables: PYTHON (the interpreter with torch; default /opt/torch/.venv/bin/python, then
# python3), CUDA_HOME (default /usr/local/cuda), NCCL_HOME (default: CUDA_HOME, then the wheel's
# nvidia-nccl), WITH_NCCL (ON; OFF configures without the NCCL communicator), CONFIGURE_ONLY=1
# (stop after cmake's configure step), JOBS (default: all cores).
set -euo pipefail

# What hac's build needs beyond a compiler, CUDA and LibTorch: headers, link libraries and Open
# MPI's launcher, as Debian 12 packages. Their runtime dependencies are added by `fetch` from
# `ldd` (of the libraries and of Open MPI's plugins), not from apt's dependency closure: that
# closure brings compilers (Open MPI's Fortran wrappers) and hundreds of MB.
packages=(
  openmpi-bin openmpi-common libopenmpi3 libopenmpi-dev libpmix2
  libhdf5-dev libhdf5-103-1 libaec-dev libsz2
  libyaml-cpp-dev libyaml-cpp0.7
  libcli11-dev nlohmann-json3-dev libspdlog-dev libspdlog1.10 libfmt-dev libfmt9
  zlib1g-dev libutf8proc-dev libutf8proc2 libjpeg62-turbo-dev libjpeg62-turbo libpng-dev libpng16-16
  libarchive-dev libarchive13
)
# Present on any Linux that can compile C++, or must not be replaced from a .deb.
system_re='^(libc6|libc6-dev|libgcc-s1|libstdc\+\+6|libcrypt1|libselinux1|libpcre2-8-0|zlib1g|libzstd1|liblzma5|libbz2-1.0|libssl3|libgomp1|libudev1|libuuid1|libatomic1)$'

# Debian packages owning the shared libraries that the given files load (usrmerge aware).
ldd_packages() {
  local f lib
  for lib in $(ldd "$@" 2>/dev/null | awk '/=>/ && $3 ~ /^\// {print $3}' | sort -u); do
    f=$(readlink -f "$lib")
    dpkg -S "$f" 2>/dev/null || dpkg -S "${f#/usr}" 2>/dev/null || true
  done | cut -d: -f1 | sort -u
}

fetch() {
  local dir=$1
  mkdir -p "$dir"
  command -v apt-get >/dev/null && command -v dpkg >/dev/null \
    || { echo "gpu_bootstrap: fetch runs on Debian 12 (apt-get, dpkg)" >&2; exit 1; }
  local multi; multi=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo x86_64-linux-gnu)
  local lib=/usr/lib/$multi missing=()
  for p in openmpi-bin libopenmpi-dev libhdf5-dev libyaml-cpp-dev libspdlog-dev libutf8proc-dev libpng-dev \
           libjpeg62-turbo-dev libarchive-dev; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] || { echo "gpu_bootstrap: fetch reads the runtime dependencies from the" \
    "installed libraries; install ${missing[*]} first (make deps)" >&2; exit 1; }
  local all
  all=$( { printf '%s\n' "${packages[@]}"
           ldd_packages "$lib/openmpi/lib/libmpi.so" "$lib"/openmpi/lib/openmpi3/*.so "$(readlink -f /usr/bin/orterun)" \
             "$lib/hdf5/serial/libhdf5.so" "$lib/libyaml-cpp.so" "$lib/libspdlog.so" "$lib/libfmt.so" \
             "$lib/libutf8proc.so" "$lib/libjpeg.so" "$lib/libpng16.so" "$lib/libarchive.so"; } | sort -u | grep -Ev "$system_re")
  # shellcheck disable=SC2086
  (cd "$dir" && rm -f ./*.deb && apt-get download -q $all)
  printf '%s\n' $all > "$dir/packages.txt"
  echo "gpu_bootstrap: $(ls "$dir"/*.deb | wc -l) .deb files, $(du -sh "$dir" | cut -f1) in $dir"
}

usage() { sed -n '2,26p' "$0" >&2; exit 2; }

unpack() {
  local dir prefix
  dir=$(cd "$1" && pwd) || exit 1   # absolute: env.sh and CMake keep these paths
  prefix=$dir/prefix
  ls "$dir"/*.deb >/dev/null 2>&1 || { echo "gpu_bootstrap: no .deb files in $dir (run fetch first)" >&2; exit 1; }
  mkdir -p "$prefix"
  for deb in "$dir"/*.deb; do
    if command -v dpkg >/dev/null; then
      dpkg -x "$deb" "$prefix"
    else
      local t; t=$(mktemp -d)
      (cd "$t" && ar x "$deb" && tar -xf data.tar.* -C "$prefix")
      rm -rf "$t"
    fi
  done
  local multi=x86_64-linux-gnu
  [ -d "$prefix/usr/lib/aarch64-linux-gnu" ] && multi=aarch64-linux-gnu
  local lib=$prefix/usr/lib/$multi
  # dpkg -x runs no maintainer scripts: create the alternatives and unversioned links that apt
  # would have made, so CMake and the loader find Open MPI and HDF5.
  ln -sfn "$lib/openmpi/include" "$prefix/usr/include/mpi-openmpi" 2>/dev/null || true
  for tool in mpirun mpiexec orterun; do
    [ -e "$prefix/usr/bin/$tool.openmpi" ] && ln -sfn "$tool.openmpi" "$prefix/usr/bin/$tool"
  done
  [ -e "$prefix/usr/bin/mpirun" ] || ln -sfn orterun "$prefix/usr/bin/mpirun"
  cat > "$prefix/env.sh" <<ENV
# Source before running hac or mpirun built against this prefix.
export OPAL_PREFIX=$prefix/usr
export PATH=$prefix/usr/bin\${PATH:+:\$PATH}
export LD_LIBRARY_PATH=$lib:$lib/openmpi/lib:$lib/hdf5/serial\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}
ENV
  echo "gpu_bootstrap: unpacked $(ls "$dir"/*.deb | wc -l) packages into $prefix"
  echo "$lib"
}

build() {
  local dir=$1 bdir=${2:-build-cuda}; shift; [ $# -gt 0 ] && shift
  dir=$(cd "$dir" && pwd)
  local lib; lib=$(unpack "$dir" | tail -n 1)
  local prefix=$dir/prefix
  # shellcheck disable=SC1091
  source "$prefix/env.sh"
  local py=${PYTHON:-/opt/torch/.venv/bin/python}
  [ -x "$py" ] || py=python3
  local torch_cmake abi
  torch_cmake=$("$py" -c 'import torch; print(torch.utils.cmake_prefix_path)')
  abi=$("$py" -c 'import torch; print(int(torch._C._GLIBCXX_USE_CXX11_ABI))')
  if [ "$abi" != 1 ]; then
    echo "gpu_bootstrap: this torch wheel uses the pre-C++11 std::string ABI; Debian's yaml-cpp," \
         "spdlog and fmt use the C++11 one, so hac cannot link both. Use a wheel built with" \
         "_GLIBCXX_USE_CXX11_ABI=1 (PyTorch >= 2.7 wheels, or the cxx11-abi LibTorch zip)." >&2
    exit 1
  fi
  local cuda=${CUDA_HOME:-/usr/local/cuda}
  # NCCL: the toolkit's, else the one the wheel brings (pip's nvidia-nccl ships libnccl.so.2
  # without the unversioned link that find_library needs).
  local with_nccl=${WITH_NCCL:-ON}
  if [ "$with_nccl" = ON ] && [ -z "${NCCL_HOME:-}" ]; then
    if [ -e "$cuda/include/nccl.h" ]; then export NCCL_HOME=$cuda; else
      local pn; pn=$("$py" -c 'import os, nvidia.nccl as n; print(os.path.dirname(n.__file__))' 2>/dev/null || true)
      [ -n "$pn" ] && [ -e "$pn/include/nccl.h" ] || { echo "gpu_bootstrap: no nccl.h in $cuda or the wheel; set NCCL_HOME" >&2; exit 1; }
      mkdir -p "$prefix/nccl/lib"; ln -sfn "$pn/include" "$prefix/nccl/include"
      ln -sfn "$pn/lib/libnccl.so.2" "$prefix/nccl/lib/libnccl.so"
      export NCCL_HOME=$prefix/nccl
    fi
  fi
  echo "gpu_bootstrap: LibTorch $torch_cmake, CUDA $cuda, NCCL ${NCCL_HOME:-off}, prefix $prefix"
  cmake -S . -B "$bdir" -DCMAKE_BUILD_TYPE=Release -DRUNNER_WITH_NCCL="$with_nccl" \
    -DCMAKE_PREFIX_PATH="$torch_cmake;$prefix/usr;$lib/cmake" \
    -DCMAKE_LIBRARY_PATH="$lib;$lib/hdf5/serial" \
    -DCMAKE_INCLUDE_PATH="$prefix/usr/include;$prefix/usr/include/hdf5/serial" \
    -DMPI_C_COMPILER="$prefix/usr/bin/mpicc.openmpi" \
    -DMPI_C_HEADER_DIR="$lib/openmpi/include" -DMPI_C_LIB_NAMES=mpi \
    -DMPI_mpi_LIBRARY="$lib/openmpi/lib/libmpi.so" \
    -DMPIEXEC_EXECUTABLE="$prefix/usr/bin/mpirun" \
    -DHDF5_ROOT="$prefix/usr" -DHDF5_C_INCLUDE_DIR="$prefix/usr/include/hdf5/serial" \
    -DHDF5_hdf5_LIBRARY_RELEASE="$lib/hdf5/serial/libhdf5.so" \
    -DCUDAToolkit_ROOT="$cuda" "$@"
  cp "$prefix/env.sh" "$bdir/env.sh"
  [ "${CONFIGURE_ONLY:-0}" = 1 ] && { echo "gpu_bootstrap: configured $bdir"; return 0; }
  cmake --build "$bdir" -j"${JOBS:-$(nproc)}"
  echo "gpu_bootstrap: built $bdir/hac; source $bdir/env.sh, then e.g. $bdir/hac --version"
}

[ $# -ge 2 ] || usage
cmd=$1; shift
case $cmd in
  fetch) fetch "$1" ;;
  prefix) unpack "$1" >/dev/null; echo "gpu_bootstrap: $1/prefix/env.sh" ;;
  build) build "$@" ;;
  *) usage ;;
esac
