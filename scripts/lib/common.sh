# shellcheck shell=bash
# Shared helpers for the project's scripts. Source it; it sets no shell options
# and runs nothing on its own:
#
#   . "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
#
# Every function is prefixed cm_. Log lines go to stderr, so a script's stdout
# stays machine-readable (e.g. url=$(scripts/dev-db start)).

# Guard against double sourcing.
if [[ -n "${CM_COMMON_SH_LOADED:-}" ]]; then
  return 0
fi
CM_COMMON_SH_LOADED=1

# Name used as the log prefix; scripts may set CM_LOG_NAME before sourcing.
CM_LOG_NAME="${CM_LOG_NAME:-$(basename -- "${BASH_SOURCE[1]:-$0}")}"

# Repository root, resolved from this file's location (scripts/lib/common.sh),
# so scripts work from any working directory.
CM_REPO_ROOT="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/../.." && pwd -P)"

cm_log()  { printf '%s: %s\n' "$CM_LOG_NAME" "$*" >&2; }
cm_warn() { printf '%s: warning: %s\n' "$CM_LOG_NAME" "$*" >&2; }
cm_die()  { printf '%s: error: %s\n' "$CM_LOG_NAME" "$*" >&2; exit 1; }

# Prints the repository root (the checkout containing this scripts/ dir).
cm_repo_root() { printf '%s\n' "$CM_REPO_ROOT"; }

# Runs a command as root: directly when we are root, else via passwordless sudo.
cm_as_root() {
  if [[ $EUID -eq 0 ]]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo -n -- "$@"
  else
    cm_die "root is needed to run: $* (run as root, or configure passwordless sudo)"
  fi
}

# True if the Debian package is installed (dpkg-query; no network).
cm_pkg_installed() {
  [[ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true)" == installed ]]
}

# Installs the given Debian packages that are not installed yet; does nothing
# (and needs no network) when all are installed. Runs `apt-get update` at most
# once per process. Output goes to $CM_APT_LOG (default: stderr).
CM_APT_UPDATED=""
cm_apt_update() {
  [[ -n "$CM_APT_UPDATED" ]] && return 0
  cm_log "apt-get update"
  if ! cm_as_root env DEBIAN_FRONTEND=noninteractive \
      apt-get -q -o DPkg::Lock::Timeout=600 update >>"${CM_APT_LOG:-/dev/stderr}" 2>&1; then
    cm_die "apt-get update failed${CM_APT_LOG:+ (see $CM_APT_LOG)}"
  fi
  CM_APT_UPDATED=1
}
cm_apt_install() {
  local p missing=()
  for p in "$@"; do
    cm_pkg_installed "${p%%=*}" || missing+=("$p")
  done
  [[ ${#missing[@]} -eq 0 ]] && return 0
  cm_apt_update
  cm_log "installing Debian packages: ${missing[*]}"
  if ! cm_as_root env DEBIAN_FRONTEND=noninteractive \
      apt-get -q -y -o DPkg::Lock::Timeout=600 install --no-install-recommends "${missing[@]}" \
      >>"${CM_APT_LOG:-/dev/stderr}" 2>&1; then
    cm_die "apt-get install ${missing[*]} failed${CM_APT_LOG:+ (see $CM_APT_LOG)}"
  fi
}

# Replaces the password in a JDBC/libpq URL by *** (for log messages).
cm_redact_url() {
  local u=$1
  u=$(printf '%s' "$u" | sed -E 's/([?&]password=)[^&]*/\1***/g; s#(//[^/:@]*:)[^/@]*@#\1***@#')
  printf '%s\n' "$u"
}

# Converts a JDBC URL (jdbc:postgresql://host[:port][,host2[:port]]/db?params)
# to a libpq connection URI (postgresql://host:port/db?params). Query parameters
# libpq does not know (JDBC-only ones such as currentSchema, prepareThreshold)
# are dropped, because libpq rejects unknown URI parameters. User and password
# are better passed via PGUSER/PGPASSWORD (see cm_db_env).
cm_jdbc_to_libpq() {
  local url=$1 rest base query="" out_q="" kv key
  case "$url" in
    jdbc:postgresql://*) rest=${url#jdbc:} ;;
    postgresql://* | postgres://*) rest=$url ;;
    *) cm_die "not a JDBC PostgreSQL URL (expected jdbc:postgresql://host:port/db): $(cm_redact_url "$url")" ;;
  esac
  base=${rest%%\?*}
  [[ "$rest" == *\?* ]] && query=${rest#*\?}
  if [[ -n "$query" ]]; then
    local IFS='&'
    for kv in $query; do
      key=${kv%%=*}
      case "$key" in
        ApplicationName) kv="application_name=${kv#*=}" ;;
        user | password | sslmode | sslcert | sslkey | sslrootcert | sslpassword | \
          connect_timeout | application_name | options | target_session_attrs | \
          gssencmode | channel_binding | keepalives | keepalives_idle) ;;
        *) continue ;;
      esac
      out_q+="${out_q:+&}$kv"
    done
  fi
  printf '%s%s\n' "$base" "${out_q:+?$out_q}"
}

# Prints the major Java version of the JDK at $1 (needs bin/java and bin/javac).
cm__jdk_major() {
  local home=$1 v=""
  [[ -x "$home/bin/java" && -x "$home/bin/javac" ]] || return 1
  if [[ -r "$home/release" ]]; then
    v=$(sed -n 's/^JAVA_VERSION="\([^"]*\)".*/\1/p' "$home/release" | head -n 1)
  fi
  if [[ -z "$v" ]]; then
    v=$("$home/bin/java" -XshowSettings:properties -version 2>&1 |
      sed -n 's/^ *java\.specification\.version = //p' | head -n 1)
  fi
  v=${v#1.}
  v=${v%%[.+_-]*}
  [[ "$v" =~ ^[0-9]+$ ]] || return 1
  printf '%s\n' "$v"
}

# Prints the newest JDK >= $1 under /usr/lib/jvm, if any.
cm__newest_jvm_jdk() {
  local min=$1 d m best="" best_m=0
  for d in /usr/lib/jvm/*/; do
    d=${d%/}
    [[ -L "$d" ]] && continue
    m=$(cm__jdk_major "$d") || continue
    if ((m >= min && m > best_m)); then best=$d; best_m=$m; fi
  done
  [[ -n "$best" ]] && printf '%s\n' "$best"
}

# Prints a JAVA_HOME of a JDK >= 21 (the project's minimum): $JAVA_HOME if it
# qualifies, else the default `java`'s JDK, else the newest one under
# /usr/lib/jvm; else installs a Debian openjdk-2x-jdk-headless if the
# distribution has one; else fails with a clear message.
cm_java_home() {
  local min=21 home m java pkg cand
  if [[ -n "${JAVA_HOME:-}" ]] && m=$(cm__jdk_major "$JAVA_HOME") && ((m >= min)); then
    printf '%s\n' "$JAVA_HOME"; return 0
  fi
  if java=$(command -v java 2>/dev/null); then
    home=$(dirname -- "$(dirname -- "$(readlink -f -- "$java")")")
    [[ "$(basename -- "$home")" == jre ]] && home=$(dirname -- "$home")
    if m=$(cm__jdk_major "$home") && ((m >= min)); then
      printf '%s\n' "$home"; return 0
    fi
  fi
  if home=$(cm__newest_jvm_jdk "$min"); then
    printf '%s\n' "$home"; return 0
  fi
  if command -v apt-cache >/dev/null 2>&1; then
    for pkg in openjdk-25-jdk-headless openjdk-21-jdk-headless; do
      cand=$(apt-cache policy "$pkg" 2>/dev/null | awk '/Candidate:/ {print $2}')
      if [[ -n "$cand" && "$cand" != "(none)" ]]; then
        cm_log "no JDK >= $min found; installing $pkg"
        cm_apt_install "$pkg"
        if home=$(cm__newest_jvm_jdk "$min"); then
          printf '%s\n' "$home"; return 0
        fi
      fi
    done
  fi
  cm_die "no JDK >= $min found (JAVA_HOME=${JAVA_HOME:-unset}, default java: $(java -version 2>&1 | head -n 1 || echo none)," \
    "nothing suitable in /usr/lib/jvm, and this distribution's apt has no openjdk-21/25 package). Install a JDK >= $min and set JAVA_HOME."
}

# Exports JAVA_HOME (a JDK >= 21) and, for JDK 24+, the flags that keep Maven's and
# Netty's use of sun.misc.Unsafe from printing warnings on every run; makes sure Maven
# is installed. Call once near the top of a script that builds or runs Java.
cm_java_env() {
  JAVA_HOME=$(cm_java_home) || exit 1
  export JAVA_HOME
  local major
  major=$(cm__jdk_major "$JAVA_HOME")
  CM_JAVA_FLAGS=""
  if ((major >= 24)); then
    CM_JAVA_FLAGS="--sun-misc-unsafe-memory-access=allow --enable-native-access=ALL-UNNAMED"
    export MAVEN_OPTS="${MAVEN_OPTS:-} $CM_JAVA_FLAGS"
  fi
  if ! command -v mvn >/dev/null 2>&1; then
    cm_log "Maven not found; installing it from Debian's packages"
    cm_apt_install maven
  fi
}

# Prints the path of the server's runnable jar, building it first when it is
# missing or older than any source it is made of (build output under target/ is not a source: a
# `mvn verify` rewrites proto/target after the jar, and counting it rebuilt the jar on every
# scripts/test, under any server then running from it).
cm_server_jar() {
  local jar
  jar=$(ls "$CM_REPO_ROOT"/server/target/context-memory-server-*-all.jar 2>/dev/null | head -n 1 || true)
  if [[ -z "$jar" ]] || [[ -n "$(find "$CM_REPO_ROOT/pom.xml" "$CM_REPO_ROOT/proto" "$CM_REPO_ROOT/migrations" \
      "$CM_REPO_ROOT/server/src" "$CM_REPO_ROOT/server/pom.xml" -path '*/target' -prune -o -newer "$jar" -type f -print -quit)" ]]; then
    cm_log "building the server (mvn package, tests skipped; scripts/test runs them)"
    (cd "$CM_REPO_ROOT" && mvn -B -q -ntp -pl server -am package -DskipTests) >&2 ||
      cm_die "the build failed"
    jar=$(ls "$CM_REPO_ROOT"/server/target/context-memory-server-*-all.jar | head -n 1)
  fi
  printf '%s\n' "$jar"
}
