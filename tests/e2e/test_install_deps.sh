#!/usr/bin/env bash
# scripts/install-deps.sh as a user who is neither root nor a sudoer (a cluster login node): with
# every package present it succeeds; with one missing it exits 1 and prints the apt command an
# administrator can run. Run as root, the script is run as `nobody` (setpriv).
source "$(dirname "$0")/lib.sh"
scratch_dir
chmod 755 "$dir"
cp "$root/scripts/install-deps.sh" "$dir/install-deps.sh"
chmod 755 "$dir/install-deps.sh"
as_user=()
if [ "$(id -u)" -eq 0 ]; then
  command -v setpriv >/dev/null || die "setpriv (util-linux) is needed to run the script as nobody"
  as_user=(setpriv --reuid=65534 --regid=65534 --clear-groups)
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
  echo "this user has password-less sudo: the script could install; only the all-present case is checked"
fi
check "all present, no root" 0 "all packages present" -- "${as_user[@]}" env -i PATH="$PATH" bash "$dir/install-deps.sh"
if [ "${#as_user[@]}" -gt 0 ] || ! { command -v sudo >/dev/null && sudo -n true 2>/dev/null; }; then
  check "one missing, no root" 1 "apt-get install -y --no-install-recommends hac-no-such-package" -- \
    "${as_user[@]}" env -i PATH="$PATH" INSTALL_DEPS_EXTRA=hac-no-such-package bash "$dir/install-deps.sh"
fi
finish
