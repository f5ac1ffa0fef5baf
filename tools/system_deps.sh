#!/usr/bin/env bash
# Install the Debian packages the tests need (chromium, bubblewrap) when they are missing.
# Without root or apt-get we only report: the tests themselves then fail loudly in CI.
set -u
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v bwrap >/dev/null 2>&1 || missing+=(bubblewrap)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing ${missing[*]} with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "WARNING: ${missing[*]} missing and cannot be installed here (need root and apt-get)" >&2
fi
exit 0
