# shellcheck shell=bash
# Node.js helpers for the scripts that run npm packages (check-proto, examples). Source it after
# common.sh.

# Makes sure node and npm are on PATH (Debian's packages when missing).
cm_node_env() {
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    cm_log "node/npm not found; installing them from Debian's packages"
    cm_apt_install nodejs npm
  fi
}

# Installs the npm packages of directory $1 exactly as its package-lock.json pins them. Skipped
# (no network needed) when node_modules was installed from this very lock file.
cm_npm_ci() {
  local dir=$1 stamp=$1/node_modules/.installed-from-package-lock.json
  if [[ -f "$stamp" ]] && cmp -s "$dir/package-lock.json" "$stamp"; then
    return 0
  fi
  cm_log "npm ci in ${dir#"$CM_REPO_ROOT"/}"
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error) >&2 || cm_die "npm ci failed in $dir"
  cp "$dir/package-lock.json" "$stamp"
}
