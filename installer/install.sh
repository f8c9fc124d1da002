#!/usr/bin/env bash
# Install Sluice on this host, or upgrade it in place: PostgreSQL (unless --database-url), the
# `sluice` user, /opt/sluice, /etc/sluice/sluice.toml, /var/lib/sluice, the systemd units.
# Run it again after fixing whatever stopped it: every step checks what is already done.
# Debian 12+ or Ubuntu 22.04+, as root. `install.sh --help` lists the options.
set -Eeuo pipefail

usage() {
    cat <<'EOF'
Usage: install.sh [options]

Installs Sluice from this checkout (or a given wheel) and starts it under systemd; run again to
upgrade in place (new package, migrations, one service restarted at a time).

  --database-url URL     use this PostgreSQL server instead of installing one here
  --wheel FILE           install this Sluice wheel instead of the checkout around this script
  --wheelhouse DIR       install Python packages from DIR only (no PyPI: air-gapped hosts)
  --gateway-port PORT    where SDKs send events (default 8080, on every address)
  --web-address ADDR     where the web UI listens (default 127.0.0.1; 0.0.0.0 for every address)
  --web-port PORT        (default 8000)
  --public-url URL       the gateway's URL as SDKs reach it (behind a load balancer)
  --roles LIST           which of gateway,worker,web run on this host (default: all of them
                         the first time, then those enabled)
  --with LIST            optional parts to install, comma-separated: snowflake
                         (Snowflake's client, for Snowflake warehouses), bigquery
                         (Google's client, for BigQuery); an upgrade keeps those the
                         host has
  -h, --help             this help
EOF
}

PREFIX=/opt/sluice
CONFIG_DIR=/etc/sluice
CONFIG=$CONFIG_DIR/sluice.toml
STATE=/var/lib/sluice
UNITS=/etc/systemd/system
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CHECKOUT=$(dirname "$HERE")
ROLES=(gateway worker web)

database_url=""
wheel=""
wheelhouse=""
gateway_port=8080
web_address=127.0.0.1
web_port=8000
public_url=""
roles=""
extras=""

step=""
say() { step=$1; printf '==> %s\n' "$1"; }
fail() { printf 'install.sh: %s\n' "$1" >&2; exit 1; }
release=""
on_error() {
    local status=$?
    printf '\ninstall.sh: failed while: %s (exit status %d, at line %d: %s)\n' \
        "$step" "$status" "$1" "$2" >&2
    # A release that never became the current one is of no use: the next run makes another.
    if [ -n "$release" ] && [ "$(readlink -f "$PREFIX/current" || true)" != "$release" ]; then
        rm -rf "$release"
    fi
    printf 'Fix what the output above says and run install.sh again: it continues from there.\n' >&2
    exit "$status"
}
trap 'on_error $LINENO "$BASH_COMMAND"' ERR

while [ $# -gt 0 ]; do
    case $1 in
        --database-url) database_url=${2:?--database-url needs a URL}; shift 2 ;;
        --wheel) wheel=${2:?--wheel needs a file}; shift 2 ;;
        --wheelhouse) wheelhouse=${2:?--wheelhouse needs a directory}; shift 2 ;;
        --gateway-port) gateway_port=${2:?--gateway-port needs a port}; shift 2 ;;
        --web-address) web_address=${2:?--web-address needs an address}; shift 2 ;;
        --web-port) web_port=${2:?--web-port needs a port}; shift 2 ;;
        --public-url) public_url=${2:?--public-url needs a URL}; shift 2 ;;
        --roles) roles=${2:?--roles needs a list, e.g. gateway,worker}; shift 2 ;;
        --with) extras=${2:?--with needs a list, e.g. snowflake}; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; fail "unknown option: $1" ;;
    esac
done

# ---------------------------------------------------------------------------------------------
say "Checking this host"
[ "$(id -u)" -eq 0 ] || fail "run me as root (sudo $0 $*)"
[ -r /etc/os-release ] || fail "cannot tell which system this is (no /etc/os-release)"
. /etc/os-release
case "${ID:-}:${VERSION_ID:-}" in
    debian:1[2-9]*|debian:[2-9][0-9]*) ;;
    ubuntu:2[2-9].*|ubuntu:[3-9][0-9].*) ;;
    *) fail "Sluice installs on Debian 12 or newer and Ubuntu 22.04 or newer; this is ${PRETTY_NAME:-unknown}" ;;
esac
[ -d /run/systemd/system ] || fail "systemd is not running here: Sluice's services need it"
if [ -n "$wheel" ]; then
    [ -f "$wheel" ] || fail "no such wheel: $wheel"
    wheel=$(realpath "$wheel")
else
    [ -f "$CHECKOUT/pyproject.toml" ] || fail "no Sluice checkout around $HERE: give --wheel FILE"
fi
if [ -n "$wheelhouse" ]; then
    [ -d "$wheelhouse" ] || fail "no such directory: $wheelhouse"
    wheelhouse=$(realpath "$wheelhouse")
fi
upgrade=false
[ -e "$PREFIX/current" ] && upgrade=true
if [ -z "$extras" ] && $upgrade; then  # the optional parts the running release has
    had=()
    "$PREFIX/current/bin/python" -c "import snowflake.connector" 2>/dev/null && had+=(snowflake)
    "$PREFIX/current/bin/python" -c "import google.cloud.bigquery" 2>/dev/null && had+=(bigquery)
    extras=$(IFS=,; echo "${had[*]}")
fi
for extra in ${extras//,/ }; do
    case $extra in
        snowflake|bigquery) ;;
        *) fail "unknown part '$extra' in --with: the optional parts are: snowflake, bigquery" ;;
    esac
done
if [ -z "$roles" ] && $upgrade; then  # the roles this host runs now
    for role in "${ROLES[@]}"; do
        systemctl is-enabled --quiet "sluice-$role.service" 2>/dev/null && roles+="${roles:+,}$role"
    done
fi
SERVICES=()
for role in ${roles//,/ }; do
    case $role in
        gateway|worker|web) SERVICES+=("sluice-$role") ;;
        *) fail "unknown role '$role' in --roles: the roles are gateway, worker and web" ;;
    esac
done
[ ${#SERVICES[@]} -gt 0 ] || SERVICES=(sluice-gateway sluice-worker sluice-web)
runs() { [[ " ${SERVICES[*]} " == *" sluice-$1 "* ]]; }

# The database: given, kept from an earlier run (the configuration file has it), or a local
# one whose role gets a generated password.
setting() {  # the value of $1 in the configuration file (quotes taken off), else $2
    local value=""
    [ -f "$CONFIG" ] && value=$(sed -n "s/^$1 *= *\"\{0,1\}\([^\"]*\)\"\{0,1\} *\$/\1/p" "$CONFIG" | tail -n 1)
    echo "${value:-$2}"
}
existing_url=$(setting database_url "")
LOCAL_URL='^postgresql://sluice:[^@]*@127\.0\.0\.1:5432/sluice$'
if [ -z "$database_url" ] && [ -n "$existing_url" ] && ! [[ $existing_url =~ $LOCAL_URL ]]; then
    database_url=$existing_url  # installed with --database-url before: that server it stays
fi

# ---------------------------------------------------------------------------------------------
say "Installing the system packages Sluice needs (apt)"
packages=(ca-certificates python3 python3-venv)
python=python3
if [ "$ID" = ubuntu ] && [ "${VERSION_ID%%.*}" = 22 ]; then
    # Ubuntu 22.04's python3 is 3.10: its python3.11 package is the one Sluice needs.
    packages=(ca-certificates python3.11 python3.11-venv)
    python=python3.11
fi
[ -z "$database_url" ] && packages+=(postgresql)
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" \
        || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "    installing: ${missing[*]}"
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# ---------------------------------------------------------------------------------------------
say "Creating the sluice system user and its directories"
if ! id -u sluice >/dev/null 2>&1; then
    useradd --system --user-group --home-dir "$STATE" --no-create-home \
        --shell /usr/sbin/nologin --comment "Sluice" sluice
fi
install -d -m 0755 -o root -g root "$PREFIX" "$PREFIX/releases"
install -d -m 0750 -o sluice -g sluice "$STATE"
install -d -m 0750 -o root -g sluice "$CONFIG_DIR"

# ---------------------------------------------------------------------------------------------
if [ -z "$database_url" ]; then
    say "Preparing the local PostgreSQL: a sluice role and database"
    systemctl enable --now postgresql >/dev/null
    for _ in $(seq 60); do
        runuser -u postgres -- psql -qAtc 'SELECT 1' >/dev/null 2>&1 && break
        sleep 1
    done
    runuser -u postgres -- psql -qAtc 'SELECT 1' >/dev/null \
        || fail "PostgreSQL does not answer: see 'systemctl status postgresql' and its log"
    password=""
    case $existing_url in
        postgresql://sluice:*@127.0.0.1:5432/sluice)
            password=${existing_url#postgresql://sluice:}
            password=${password%@127.0.0.1:5432/sluice}
            ;;
    esac
    if [ -z "$password" ]; then
        password=$(head -c 24 /dev/urandom | base64 | tr -d '/+=' | head -c 32)
    fi
    role_exists=$(runuser -u postgres -- psql -qAtc "SELECT 1 FROM pg_roles WHERE rolname = 'sluice'")
    verb=CREATE
    [ "$role_exists" = 1 ] && verb=ALTER
    # The password goes through standard input: never on a command line others can read.
    printf "%s ROLE sluice LOGIN PASSWORD '%s';\n" "$verb" "$password" \
        | runuser -u postgres -- psql -qAt -v ON_ERROR_STOP=1 >/dev/null
    if [ "$(runuser -u postgres -- psql -qAtc "SELECT 1 FROM pg_database WHERE datname = 'sluice'")" != 1 ]; then
        runuser -u postgres -- createdb --owner sluice --encoding UTF8 --template template0 sluice
    fi
    database_url="postgresql://sluice:$password@127.0.0.1:5432/sluice"
elif [ -n "$existing_url" ] && [ "$existing_url" != "$database_url" ]; then
    echo "    the configuration file's database URL is replaced by --database-url"
fi

# ---------------------------------------------------------------------------------------------
say "Writing $CONFIG"
if [ -f "$CONFIG" ]; then
    # Kept as the user may have changed it; only the database URL follows --database-url.
    escaped=$(printf '%s' "$database_url" | sed 's/[&|\\]/\\&/g')
    sed -i "s|^database_url *=.*|database_url = \"$escaped\"|" "$CONFIG"
    echo "    kept as it is (settings: /usr/share/doc/sluice/install.md)"
else
    umask 027
    {
        echo "# Sluice's settings; every one can also be set as SLUICE_<NAME> in the environment."
        echo "# Restart after a change: systemctl restart sluice.target"
        echo "database_url = \"$database_url\""
        echo "data_dir = \"$STATE\""
        echo "gateway_port = $gateway_port"
        echo "web_host = \"$web_address\""
        echo "web_port = $web_port"
        [ -n "$public_url" ] && echo "public_url = \"$public_url\""
    } > "$CONFIG.new"
    umask 022
    mv "$CONFIG.new" "$CONFIG"
fi
chown root:sluice "$CONFIG"
chmod 0640 "$CONFIG"

# ---------------------------------------------------------------------------------------------
# Each version goes into a release directory of its own; /opt/sluice/current points at the one
# the services run. The running services keep their files until they are restarted.
say "Installing Sluice into $PREFIX (a virtualenv)"
release=$PREFIX/releases/$(date -u +%Y%m%dT%H%M%S)
pip_options=(--quiet --disable-pip-version-check)
[ -n "$wheelhouse" ] && pip_options+=(--no-index --find-links "$wheelhouse")
rm -rf "$release"
"$python" -m venv "$release"
"$release/bin/pip" install "${pip_options[@]}" --upgrade pip wheel
with=${extras:+[$extras]}  # pip's extras: sluice[snowflake]
if [ -n "$wheel" ]; then
    "$release/bin/pip" install "${pip_options[@]}" "$wheel$with"
else
    build=$(mktemp -d)
    cp -a "$CHECKOUT/pyproject.toml" "$CHECKOUT/README.md" "$CHECKOUT/appliance" \
        "$CHECKOUT/engine" "$CHECKOUT/ui" "$build/"
    "$release/bin/pip" install "${pip_options[@]}" "$build$with"
    rm -rf "$build"
fi
"$release/bin/sluice" --help >/dev/null
install -d -m 0755 /usr/share/doc/sluice
[ -d "$CHECKOUT/docs" ] && cp "$CHECKOUT"/docs/*.md /usr/share/doc/sluice/

say "Bringing the database schema up to date (and, the first time, a first admin)"
setup=$(runuser -u sluice -- env SLUICE_CONFIG="$CONFIG" SLUICE_DATA_DIR="$STATE" \
    "$release/bin/sluice" setup)
# Said now, not at the end: a one-time password shown only after a later step failed would be
# lost (the next run does not make the admin again).
echo "$setup" | sed 's/^/    /'

if runs gateway; then
    say "Fetching the browser SDKs the gateway serves to sites (from the npm registry)"
    # Not fatal: a host without access to the registry still ingests; sites then load the
    # SDKs from their vendors' CDNs until `sluice sdk install` is run.
    if ! runuser -u sluice -- env SLUICE_CONFIG="$CONFIG" SLUICE_DATA_DIR="$STATE" \
            "$release/bin/sluice" sdk install 2>&1 | sed 's/^/    /'; then
        echo "    (not fetched; run 'sluice sdk install' when the registry can be reached)"
    fi
fi

ln -sfn "$release" "$PREFIX/current.new"
mv -T "$PREFIX/current.new" "$PREFIX/current"
ln -sf "$PREFIX/current/bin/sluice" /usr/local/bin/sluice

# ---------------------------------------------------------------------------------------------
say "Installing the systemd units"
install -m 0644 "$CHECKOUT"/systemd/sluice.target "$UNITS/"
for role in "${ROLES[@]}"; do
    install -m 0644 "$CHECKOUT/systemd/sluice-$role.service" "$UNITS/"
done
for dropins in "$CHECKOUT"/systemd/sluice-*.service.d; do  # (sluice-.service.d: every unit's)
    install -d -m 0755 "$UNITS/${dropins##*/}"
    install -m 0644 "$dropins"/*.conf "$UNITS/${dropins##*/}/"
done
systemctl daemon-reload
systemctl enable --quiet sluice.target "${SERVICES[@]/%/.service}"
for role in "${ROLES[@]}"; do  # a role this host no longer runs
    runs "$role" || systemctl disable --now --quiet "sluice-$role.service"
done
echo "    this host runs: ${SERVICES[*]}"

# ---------------------------------------------------------------------------------------------
healthy() {  # $1: URL, $2: its service. Waits up to a minute; gives up on one that keeps failing.
    for _ in $(seq 60); do
        "$release/bin/python" - "$1" <<'EOF' && return 0
import http.client, sys, urllib.request
try:
    sys.exit(urllib.request.urlopen(sys.argv[1], timeout=2).status != 200)
except (OSError, http.client.HTTPException):  # (not answered, or not by Sluice)
    sys.exit(1)
EOF
        [ "$(systemctl show -p NRestarts --value "$2")" -ge 3 ] && return 1
        sleep 1
    done
    return 1
}
local_address() { case $1 in 0.0.0.0|::) echo 127.0.0.1 ;; *) echo "$1" ;; esac; }
# (the file's values count: an upgrade keeps the file as it is)
gateway_port=$(setting gateway_port 8080)
web_address=$(setting web_host 127.0.0.1)
web_port=$(setting web_port 8000)
public_url=$(setting public_url "")
gateway_health="http://127.0.0.1:$gateway_port/health"
web_health="http://$(local_address "$web_address"):$web_port/health"

if $upgrade; then
    # One at a time, each back before the next: the gateway stops accepting, commits what it
    # holds and exits (SDKs retry the moment it is away); the worker finishes or hands back
    # its requests in flight.
    say "Restarting the services one at a time on the new version"
    for service in "${SERVICES[@]}"; do
        echo "    $service"
        systemctl restart "$service.service"
        case $service in
            sluice-gateway) healthy "$gateway_health" "$service" || fail "the gateway did not come back: journalctl -u $service" ;;
            sluice-web) healthy "$web_health" "$service" || fail "the web UI did not come back: journalctl -u $service" ;;
            *) systemctl is-active --quiet "$service.service" || fail "$service did not come back: journalctl -u $service" ;;
        esac
    done
else
    say "Starting Sluice"
    systemctl start sluice.target
    if runs gateway; then
        healthy "$gateway_health" sluice-gateway \
            || fail "the gateway did not start (is port $gateway_port free?): journalctl -u sluice-gateway"
    fi
    if runs web; then
        healthy "$web_health" sluice-web \
            || fail "the web UI did not start (is port $web_port free?): journalctl -u sluice-web"
    fi
fi

# Older releases than the one before are removed (that one stays, to go back to by hand).
ls -1d "$PREFIX"/releases/* | head -n -2 | xargs -r rm -rf

# ---------------------------------------------------------------------------------------------
step="done"
echo
echo "Sluice $("$PREFIX/current/bin/python" -c 'import importlib.metadata as m; print(m.version("sluice"))') is running."
if runs web; then
    echo "  web UI:  http://$web_address:$web_port"
    [ "$web_address" = 127.0.0.1 ] && echo "           (from elsewhere: ssh -L $web_port:127.0.0.1:$web_port root@$(hostname -f 2>/dev/null || hostname))"
fi
runs gateway && echo "  gateway: ${public_url:-http://$(hostname -f 2>/dev/null || hostname):$gateway_port}"
echo "  Lifecycle: systemctl status|restart|stop sluice.target; logs: journalctl -u 'sluice-*'"
