#!/usr/bin/env bash
# The Debian packages the tests need, in one place: `npm test`, `npm run test:electron` and
# .ci/run all call this script, so a fresh Debian 12 machine gets the same installation whichever
# command it starts with.
#
# Usage: bash scripts/vscode-host/system-packages.sh [ensure|check|list] [GROUP...]
#   ensure (default)  install what is missing when it can (root, or passwordless `sudo -n`, with
#                     apt-get); otherwise print ONE line naming the command to run, and exit 1.
#   check             print what is missing; exit 1 when something is.
#   list              print the packages of the groups.
# Groups (default: test, plus vulkan when CI=true):
#   test      what `npm test` needs: chromium (opens the VS Code workbench), libkrb5-dev, python3,
#             make, g++ (code-server's native modules build from source on Node 24), git,
#             ca-certificates (npm), python3-torch/-onnx/-numpy (the tests export real PyTorch
#             models; they skip without them, except under CI=true), redis-server (the job queue of
#             the distributed-analysis test); nodejs/npm only if absent.
#   electron  what `npm run test:electron` needs: a desktop VS Code's shared libraries.
#   xvfb      xvfb + xauth, for xvfb-run: a virtual display where there is none.
#   vulkan    Mesa >= 25 lavapipe from <codename>-backports (the WebGPU tests; under CI=true they
#             fail without it). Adds the backports apt source, derived from the image's own.
# Exit: 0 when everything is present (or now installed); 1 otherwise. On a system without dpkg
# (not Debian/Ubuntu) it says so, lists what to install by hand, and exits 0.
set -uo pipefail

PKGS_TEST=(ca-certificates git python3 make g++ libkrb5-dev chromium python3-torch python3-onnx python3-numpy redis-server)
PKGS_ELECTRON=(libnss3 libgtk-3-0 libgbm1 libasound2 libxkbfile1 libsecret-1-0 libxss1 libatk-bridge2.0-0 libcups2 libdrm2 libxcomposite1 libxdamage1 libxrandr2 libxkbcommon0)
PKGS_XVFB=(xvfb xauth)
LVP_ICD=/usr/share/vulkan/icd.d/lvp_icd.json
SELF="bash scripts/vscode-host/system-packages.sh"

say() { echo "[system-packages] $*"; }
err() { echo "[system-packages] $*" >&2; }

mode=ensure
case "${1:-}" in
  ensure|check|list) mode=$1; shift ;;
  -h|--help) sed -n '2,/^[^#]/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
esac
groups=("$@")
if [[ ${#groups[@]} -eq 0 ]]; then
  groups=(test)
  [[ "${CI:-}" == "true" ]] && groups+=(vulkan)
fi

packages=()
want_vulkan=0
for g in "${groups[@]}"; do
  case "$g" in
    test) packages+=("${PKGS_TEST[@]}") ;;
    electron) packages+=("${PKGS_ELECTRON[@]}") ;;
    xvfb) packages+=("${PKGS_XVFB[@]}") ;;
    vulkan) want_vulkan=1 ;;
    *) err "unknown group '$g' (test, electron, xvfb, vulkan)"; exit 2 ;;
  esac
done

if [[ $mode == list ]]; then
  printf '%s\n' "${packages[@]}"
  [[ $want_vulkan -eq 1 ]] && echo "mesa-vulkan-drivers (>= 25, from backports)" && echo "libvulkan1"
  exit 0
fi

# Debian 13 / Ubuntu 24.04 renamed some libraries with a t64 suffix (libasound2 -> libasound2t64).
installed_exact() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
installed() { installed_exact "$1" || installed_exact "${1}t64"; }

if ! command -v dpkg-query >/dev/null 2>&1; then
  say "not a Debian-like system (no dpkg-query): cannot check; make sure the equivalents of these are installed: ${packages[*]}"
  exit 0
fi

missing=()
for p in "${packages[@]}"; do
  [[ " ${missing[*]} " == *" $p "* ]] && continue
  installed "$p" || missing+=("$p")
done
if [[ " ${groups[*]} " == *" test "* ]] && { ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; }; then
  # .ci/run's image carries Node >= 20 + npm; Debian's (Node 18) only bootstraps it.
  missing+=(nodejs npm)
fi

vulkan_ok() {
  local v
  v=$(dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null) || return 1
  [[ -n $v ]] && dpkg --compare-versions "$v" ge 25 && installed libvulkan1 && [[ -f $LVP_ICD ]]
}
need_vulkan=0
if [[ $want_vulkan -eq 1 ]] && ! vulkan_ok; then need_vulkan=1; fi

what_missing() {
  local parts=()
  [[ ${#missing[@]} -gt 0 ]] && parts+=("${missing[*]}")
  [[ $need_vulkan -eq 1 ]] && parts+=("mesa-vulkan-drivers>=25 libvulkan1 (backports)")
  local IFS=' '
  echo "${parts[*]}"
}

if [[ ${#missing[@]} -eq 0 && $need_vulkan -eq 0 ]]; then
  parts=()
  [[ ${#packages[@]} -gt 0 ]] && parts+=("${#packages[@]} packages")
  [[ $want_vulkan -eq 1 ]] && parts+=("Mesa lavapipe $(dpkg-query -W -f='${Version}' mesa-vulkan-drivers)")
  say "present: ${groups[*]} ($(IFS=,; echo "${parts[*]}" | sed 's/,/, /g'))"
  exit 0
fi

if [[ $mode == check ]]; then
  say "missing: $(what_missing)"
  exit 1
fi

# The one command a person runs by hand when this script cannot install.
manual_command() {
  if [[ $need_vulkan -eq 1 ]]; then
    echo "sudo $SELF ensure ${groups[*]}"
  else
    echo "sudo apt-get install -y --no-install-recommends ${missing[*]}"
  fi
}

SUDO=()
if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true >/dev/null 2>&1; then
    SUDO=(sudo -n)
  else
    echo "missing system package(s): $(what_missing); not root and no passwordless sudo, so run this, then try again: $(manual_command)" >&2
    exit 1
  fi
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "missing system package(s): $(what_missing); no apt-get here: install them with this system's package manager" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt_failed() {
  echo "missing system package(s): $(what_missing); '$*' failed (see above): fix apt, then run: $(manual_command)" >&2
  exit 1
}
run_apt() { "${SUDO[@]}" apt-get "$@" </dev/null || apt_failed "apt-get $*"; }

if [[ ${#missing[@]} -gt 0 ]]; then
  say "installing: ${missing[*]}"
  run_apt update -qq
  run_apt install -y -qq --no-install-recommends "${missing[@]}"
fi

add_backports() {
  # The deb822 stanza whose Suites lists the codename itself (not -updates, not -security), with
  # the suite renamed <codename>-backports: same mirror, same key.
  local src=/etc/apt/sources.list.d/debian.sources codename target entry
  codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
  target="/etc/apt/sources.list.d/${codename}-backports.sources"
  if grep -rqs -- "${codename}-backports" /etc/apt/sources.list /etc/apt/sources.list.d/; then
    say "${codename}-backports already in the apt sources"
    return 0
  fi
  if [[ ! -f $src ]]; then
    err "$src not found: cannot derive the ${codename}-backports entry"
    return 1
  fi
  entry=$(awk -v want="$codename" -v suite="${codename}-backports" '
    function flush() {
      if (hit && uris != "" && !done) {
        print "Types: deb"; print "URIs: " uris; print "Suites: " suite
        print "Components: " (comps != "" ? comps : "main")
        if (key != "") print "Signed-By: " key
        done = 1
      }
      hit = 0; uris = ""; comps = ""; key = ""
    }
    /^[[:space:]]*$/ { flush(); next }
    /^#/ { next }
    /^URIs:/ { uris = $2 }
    /^Components:/ { $1 = ""; comps = substr($0, 2) }
    /^Signed-By:/ { key = $2 }
    /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == want) hit = 1 }
    END { flush() }
  ' "$src")
  if [[ -z $entry ]]; then
    err "no '$codename' suite in $src: cannot derive ${codename}-backports"
    return 1
  fi
  printf '%s\n' "$entry" | "${SUDO[@]}" tee "$target" >/dev/null || return 1
  say "added $target:"
  sed 's/^/[system-packages]   /' "$target"
}

if [[ $need_vulkan -eq 1 ]]; then
  codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
  say "installing Mesa >= 25 lavapipe (mesa-vulkan-drivers, libvulkan1) from ${codename}-backports"
  add_backports || apt_failed "adding ${codename}-backports"
  run_apt update -qq
  run_apt install -y -qq -t "${codename}-backports" mesa-vulkan-drivers libvulkan1
  if ! vulkan_ok; then
    echo "Mesa lavapipe still missing after the install ($LVP_ICD, mesa-vulkan-drivers >= 25): run: $(manual_command)" >&2
    exit 1
  fi
  say "mesa-vulkan-drivers $(dpkg-query -W -f='${Version}' mesa-vulkan-drivers)"
fi

# What apt said it did is not proof: check again.
still=()
for p in "${missing[@]}"; do
  case "$p" in nodejs|npm) command -v "$p" >/dev/null 2>&1 || still+=("$p") ;; *) installed "$p" || still+=("$p") ;; esac
done
if [[ ${#still[@]} -gt 0 ]]; then
  echo "missing system package(s) after the install: ${still[*]}; run: sudo apt-get install -y --no-install-recommends ${still[*]}" >&2
  exit 1
fi
say "installed: $(what_missing)"
exit 0
