#!/usr/bin/env bash
# Install the Debian packages the book and the tests need, when they are missing:
# chromium (browser tests), bubblewrap (grading sandbox), fluidsynth with the General MIDI
# soundfont (audio rendered at build), abcm2ps and abcmidi (sheet music and MIDI from ABC),
# postgresql (the server gradebook's tests).
# Without root or apt-get we only report: the build and the tests then fail loudly.
set -u
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v bwrap >/dev/null 2>&1 || missing+=(bubblewrap)
command -v fluidsynth >/dev/null 2>&1 || missing+=(fluidsynth)
[ -e /usr/share/sounds/sf2/FluidR3_GM.sf2 ] || missing+=(fluid-soundfont-gm)
command -v abcm2ps >/dev/null 2>&1 || missing+=(abcm2ps)
command -v abc2midi >/dev/null 2>&1 || missing+=(abcmidi)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing ${missing[*]} with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "WARNING: ${missing[*]} missing and cannot be installed here (need root and apt-get)" >&2
fi
exit 0
