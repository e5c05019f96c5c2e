#!/usr/bin/env bash
# Builds (or reuses) the CI virtual environment and the ComfyUI checkout in a cache folder outside the clone.
# Sourced by .ci/run; exports LONGCAT_VENV and COMFYUI_DIR. Safe to source repeatedly and from several shells at once
# (one builds while the others wait). The venv holds exactly the versions in requirements-lock.txt, and its name
# carries the lock's hash: a changed lock builds a new venv; an unchanged one never drifts.
set -euo pipefail

# shellcheck source=.ci/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

venv_key() {
  # The lock's contents and the interpreter name the venv; v2: venvs built from the lock.
  { cat "$lock_file"; echo "py$(python_tag) $horde_sha256 v2"; } | sha256sum | cut -c1-16
}

check_lock() {
  # The lock must be the one for these requirement files and this Python: never install a stale set.
  [ -f "$lock_file" ] || fail "$lock_file is missing: run 'bash .ci/lock'" || return 1
  local recorded wanted python
  recorded="$(sed -n 's/^# inputs-sha256: //p' "$lock_file")"
  wanted="$(lock_inputs_sha)" || return 1
  [ "$recorded" = "$wanted" ] ||
    fail "requirements*.txt changed since requirements-lock.txt was written: run 'bash .ci/lock' and commit it" ||
    return 1
  python="$(sed -n 's/^# python: //p' "$lock_file")"
  [ "$python" = "$(python_tag)" ] ||
    fail "requirements-lock.txt is for Python $python, but python3 here is $(python_tag): run 'bash .ci/lock'"
}

normalized_pins() {
  # name==version lines, names lower-cased with - for _ and . (PEP 503), sorted: comparable across tools.
  grep -E '^[A-Za-z0-9]' | sed -E 's/^([^=]+)==/\L\1==/; :a; s/^([^=]*)[_.]/\1-/; ta' | sort
}

verify_venv() {
  # The venv holds exactly the locked versions, and they agree with each other.
  "$venv/bin/python" -m pip check >&2 || fail "pip check found broken requirements in $venv" || return 1
  local expected actual
  expected="$(normalized_pins <"$lock_file")" || return 1
  actual="$("$venv/bin/python" -m pip freeze --all | normalized_pins)" || return 1
  [ "$expected" = "$actual" ] || {
    diff <(echo "$expected") <(echo "$actual") >&2
    fail "$venv does not hold exactly the versions of requirements-lock.txt (diff above: < lock, > venv)"
  }
}

ensure_venv() {
  [ -f "$venv/.complete" ] && return 0
  log "building virtual environment $venv from requirements-lock.txt (cold: several minutes)"
  rm -rf "$venv"
  python3 -m venv "$venv" || fail "python3 -m venv failed" || return 1
  # --no-deps: the lock already lists every package; pip must not resolve (and so drift) anything itself.
  "$venv/bin/python" -m pip install --quiet --no-deps -r "$lock_file" || fail "pip install -r $lock_file failed" ||
    return 1
  verify_venv || return 1
  touch "$venv/.complete"
}

prune_old_venvs() {
  # Each change of the lock makes a new venv (~6 GB); drop the ones unused for a week.
  touch "$venv/.last-used"
  find "$cache_root" -maxdepth 2 -name .last-used -path "$cache_root/venv-*" -mtime +7 -printf '%h\n' \
    | while read -r old; do if [ "$old" != "$venv" ]; then rm -rf "$old"; fi; done
  return 0
}

build_all() {
  ensure_comfyui && ensure_venv
}

ensure_python_tools || return 1 2>/dev/null || exit 1
check_lock || return 1 2>/dev/null || exit 1
venv="$cache_root/venv-$(venv_key)"
with_build_lock build_all || return 1 2>/dev/null || exit 1
prune_old_venvs
ensure_debian_packages || return 1 2>/dev/null || exit 1
ln -sfn "$venv" "$cache_root/current"  # a stable name for developers' shells
export LONGCAT_VENV="$venv"
export COMFYUI_DIR="$comfy"
