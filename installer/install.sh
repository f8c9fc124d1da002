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
  --domain NAME          HTTPS with a certificate for NAME from Let's Encrypt (certbot; NAME's
                         DNS must point at this host and port 80 be reachable), renewed by
                         certbot.timer; the gateway on 443 (and 80 for the challenges), the web
                         UI on 8443. Agrees to the CA's terms of service on your behalf
    --email ADDR         for the CA's expiry notices (default: no address)
    --acme-directory URL another ACME CA (default: Let's Encrypt's)
  --tls-cert FILE --tls-key FILE
                         HTTPS with this certificate chain and key (PEM)
  --self-signed          HTTPS with a certificate made here for this host (a trial: clients
                         must trust /etc/sluice/tls/ca.pem)
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
TLS_DIR=$CONFIG_DIR/tls
ACME=/var/lib/sluice-acme  # certbot's webroot (--domain)
LINEAGE=$TLS_DIR/certbot-lineage  # the name of certbot's lineage the installer got (--domain)
LETS_ENCRYPT=https://acme-v02.api.letsencrypt.org/directory

database_url=""
wheel=""
wheelhouse=""
gateway_port=8080
web_address=127.0.0.1
web_port=8000
public_url=""
roles=""
extras=""
given=" "  # the options given, for those whose default depends on others
domain=""
email=""
acme_directory=$LETS_ENCRYPT
tls_cert=""
tls_key=""
self_signed=false

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
    given+="$1 "
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
        --domain) domain=${2:?--domain needs a host name}; shift 2 ;;
        --email) email=${2:?--email needs an address}; shift 2 ;;
        --acme-directory) acme_directory=${2:?--acme-directory needs a URL}; shift 2 ;;
        --tls-cert) tls_cert=${2:?--tls-cert needs a file}; shift 2 ;;
        --tls-key) tls_key=${2:?--tls-key needs a file}; shift 2 ;;
        --self-signed) self_signed=true; shift ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; fail "unknown option: $1" ;;
    esac
done

gave() { [[ $given == *" $1 "* ]]; }

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
tls=""  # how this run sets up HTTPS: domain, files or self-signed; "" keeps what there is
[ -n "$domain" ] && tls+=" domain"
[ -n "$tls_cert$tls_key" ] && tls+=" files"
$self_signed && tls+=" self-signed"
case $tls in
    *" "*" "*) fail "choose one of --domain, --tls-cert/--tls-key and --self-signed" ;;
esac
tls=${tls# }
if [ "$tls" = domain ]; then
    label='[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?'  # (RFC 1123: 1 to 63 characters, no hyphen at an end)
    if ! [[ $domain =~ ^($label\.)+$label$ ]] || [[ $domain =~ ^[0-9.]+$ ]]; then
        fail "--domain needs a host name in lowercase with at least one dot (like sluice.example.com), not '$domain'"
    fi
    [[ $acme_directory == https://* ]] || fail "--acme-directory needs an https:// URL, not '$acme_directory'"
else
    { gave --email || gave --acme-directory; } && fail "--email and --acme-directory go with --domain"
fi
if [ "$tls" = files ]; then
    [ -n "$tls_cert" ] && [ -n "$tls_key" ] || fail "--tls-cert and --tls-key go together"
    [ -r "$tls_cert" ] || fail "cannot read the certificate $tls_cert"
    [ -r "$tls_key" ] || fail "cannot read the key $tls_key"
    tls_cert=$(realpath "$tls_cert")
    tls_key=$(realpath "$tls_key")
fi
for value in "$public_url" "$web_address"; do  # (written into sluice.toml between quotes)
    case $value in
        *'"'*|*'\'*|*$'\n'*|*$'\r'*) fail "--public-url and --web-address cannot hold \", \\ or a line break: '$value'" ;;
    esac
done
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
if [ "$tls" = domain ] && ! runs gateway; then
    fail "--domain needs the gateway on this host: it answers the CA's challenge on port 80"
fi

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
[ "$tls" = domain ] && packages+=(certbot)  # (with certbot.timer, which renews)
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
# certbot (root) writes the ACME challenges here, the gateway only reads them (port 80): root's,
# outside the services' own directory, so that no link the sluice user made leads root's writes.
[ "$tls" = domain ] && install -d -m 0755 -o root -g root "$ACME"

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
        # With HTTPS the gateway has no plain port unless one is asked for.
        if [ -n "$tls" ] && ! gave --gateway-port; then gateway_port=0; fi
        echo "gateway_port = $gateway_port"
        echo "web_host = \"$web_address\""
        echo "web_port = $web_port"
        [ -n "$public_url" ] && echo "public_url = \"$public_url\""
    } > "$CONFIG.new"
    umask 022
    mv "$CONFIG.new" "$CONFIG"
fi
loopback() { case $1 in 127.*|::1|localhost) return 0 ;; *) return 1 ;; esac; }
url_host() {  # the host of URL $1 (an IPv6 address without its brackets)
    local rest=${1#*://}
    rest=${rest%%[/?#]*}
    rest=${rest##*@}
    case $rest in
        \[*) rest=${rest#[}; echo "${rest%%]*}" ;;
        *) echo "${rest%%:*}" ;;
    esac
}
covers() {  # whether the certificate this run puts in service is valid for host or address $1
    local check=-checkhost
    [[ $1 =~ ^[0-9.]+$ || $1 == *:* ]] && check=-checkip
    case $tls in
        domain) [ "$check" = -checkhost ] && [ "${1,,}" = "$domain" ] ;;
        self-signed)  # (its names: this host's and its addresses, as the certificate has them)
            [ "${1,,}" = "${tls_name,,}" ] && return 0
            [ "$check" = -checkip ] && [ -n "$1" ] && "$python" -c 'import ipaddress, sys
sys.exit(ipaddress.ip_address(sys.argv[1]) not in map(ipaddress.ip_address, sys.argv[2:]))' \
                "$1" $(hostname -I) 2>/dev/null ;;
        files) openssl x509 -in "$tls_cert" -noout "$check" "$1" 2>/dev/null | grep -q ' does match ' ;;
    esac
}
set_setting() {  # $1 = $2 (as TOML) in the configuration file: its line replaced, else added
    local escaped
    escaped=$(printf '%s' "$2" | sed 's/[&|\\]/\\&/g')
    if grep -q "^$1 *=" "$CONFIG"; then
        sed -i "s|^$1 *=.*|$1 = $escaped|" "$CONFIG"
    else
        printf '%s = %s\n' "$1" "$2" >> "$CONFIG"
    fi
}
if [ -n "$tls" ]; then
    case $tls in
        domain) tls_name=$domain ;;
        *) tls_name=$(hostname -f 2>/dev/null || hostname) ;;
    esac
    if [ "$tls" = files ]; then  # the certificate's name: this host's when it has it, else its first
        names=$(openssl x509 -in "$tls_cert" -noout -ext subjectAltName 2>/dev/null \
            | grep -o 'DNS:[^,]*' | sed 's/^DNS://' || true)
        if [ -n "$names" ] && ! grep -qxF "$tls_name" <<<"$names"; then
            tls_name=$(head -n 1 <<<"$names")
        fi
    fi
    # The web UI: where an earlier HTTPS run (or the administrator since) put it stays; the move
    # from HTTP serves it on 8443 from every address, which is said.
    if [ -n "$(setting tls_cert "")" ]; then
        gave --web-address || web_address=$(setting web_host 127.0.0.1)
        gave --web-port || web_port=$(setting web_port 8000)
    else
        gave --web-address || web_address=0.0.0.0
        gave --web-port || web_port=8443
    fi
    if runs web && loopback "$(setting web_host 127.0.0.1)" && ! loopback "$web_address"; then
        case $web_address in
            0.0.0.0|::) where="every address of this host" ;;
            *) where=$web_address ;;
        esac
        echo "    the web UI now answers on $where, over HTTPS (port $web_port):" \
            "--web-address 127.0.0.1 keeps it to this host"
    fi
    # The SDKs' URL stays when the new certificate is valid for it (else they would fail).
    kept_url=$(setting public_url "")
    if ! gave --public-url; then
        if [[ $kept_url == https://* ]] && covers "$(url_host "$kept_url")"; then
            public_url=$kept_url
        else
            public_url="https://$tls_name"
        fi
    fi
    if [ -n "$kept_url" ] && [ "$kept_url" != "$public_url" ]; then
        echo "    public_url (the gateway's URL for the SDKs) is now $public_url, was $kept_url" \
            "(--public-url sets another)"
    fi
    set_setting tls_cert "\"$TLS_DIR/cert.pem\""
    set_setting tls_key "\"$TLS_DIR/key.pem\""
    set_setting gateway_tls_port 443
    set_setting web_host "\"$web_address\""
    set_setting web_port "$web_port"
    set_setting public_url "\"$public_url\""
    if [ "$tls" = domain ]; then
        set_setting http_port 80
        set_setting acme_dir "\"$ACME\""
    fi
    kept_port=$(setting gateway_port 8080)
    if $upgrade && [ "$kept_port" != 0 ]; then
        echo "    the plain-HTTP gateway port $kept_port stays open for the SDKs that use it; to close it:" \
            "gateway_port = 0 in $CONFIG, then systemctl restart sluice-gateway"
    fi
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
# certbot's renewals call `sluice tls install` (its deploy hook): the lineage the installer got
# (--domain) is recorded in $LINEAGE, and only that one is ever deleted here, once another pair
# is in service, so that its next renewal does not put its certificate back.
forget_certbot() {  # $1: the lineage this run keeps (its own --domain), if any
    local owned
    owned=$(cat "$LINEAGE" 2>/dev/null || true)
    [ -n "$owned" ] && [ "$owned" != "${1:-}" ] || return 0
    if [ "$tls" = files ]; then
        case $tls_cert:$tls_key in
            /etc/letsencrypt/live/"$owned"/*|/etc/letsencrypt/archive/"$owned"/*|*:/etc/letsencrypt/live/"$owned"/*|*:/etc/letsencrypt/archive/"$owned"/*)
                echo "    certbot keeps renewing $owned: the given files are its certificate"
                return 0 ;;
        esac
    fi
    if [ -f "/etc/letsencrypt/renewal/$owned.conf" ]; then
        certbot delete --non-interactive --cert-name "$owned" 2>&1 | sed 's/^/    /'
        echo "    certbot no longer renews $owned (--domain $owned again takes it back)"
    fi
    rm -f "$LINEAGE"
}
case $tls in
    files)
        say "Installing the certificate and key for HTTPS into $TLS_DIR"
        "$PREFIX/current/bin/sluice" tls install --dir "$TLS_DIR" "$tls_cert" "$tls_key" | sed 's/^/    /'
        forget_certbot
        ;;
    self-signed)
        say "Making a self-signed certificate for HTTPS in $TLS_DIR (one valid for more than 30 days is kept)"
        # shellcheck disable=SC2046  # (one name per address)
        "$PREFIX/current/bin/sluice" tls self-signed --keep --dir "$TLS_DIR" "$tls_name" $(hostname -I) | sed 's/^/    /'
        forget_certbot
        ;;
    domain)
        if [ ! -f "$TLS_DIR/cert.pem" ]; then
            # The CA checks this host on port 80, which the gateway answers only once it runs,
            # and it runs only with a certificate: a placeholder until certbot's is installed.
            say "Making a placeholder certificate for $domain (until the CA's, a minute from now)"
            "$PREFIX/current/bin/sluice" tls self-signed --dir "$TLS_DIR" "$domain" | sed -n 's/^/    /;1p'
        fi
        ;;
esac

# ---------------------------------------------------------------------------------------------
say "Installing the systemd units"
install -m 0644 "$CHECKOUT"/systemd/sluice.target "$UNITS/"
for role in "${ROLES[@]}"; do
    install -m 0644 "$CHECKOUT/systemd/sluice-$role.service" "$UNITS/"
done
for dropins in "$CHECKOUT"/systemd/sluice-*.service.d; do  # (sluice-.service.d: every unit's)
    install -d -m 0755 "$UNITS/${dropins##*/}"
    for conf in "$dropins"/*.conf; do
        [ "${conf##*/}" = 20-bind-ports.conf ] || install -m 0644 "$conf" "$UNITS/${dropins##*/}/"
    done
done
# The gateway gets CAP_NET_BIND_SERVICE (and the host's user namespace) only when it listens on
# a port below 1024: a plain-HTTP install keeps the exposure it had without them.
bind_ports=$UNITS/sluice-gateway.service.d/20-bind-ports.conf
low_port=false
for port in "$(setting gateway_tls_port 1024)" "$(setting http_port 1024)" "$(setting gateway_port 8080)"; do
    if [ "$port" -gt 0 ] && [ "$port" -lt 1024 ]; then low_port=true; fi
done
if $low_port; then
    install -m 0644 "$CHECKOUT/systemd/sluice-gateway.service.d/20-bind-ports.conf" "$bind_ports"
else
    rm -f "$bind_ports"
fi
systemctl daemon-reload
systemctl enable --quiet sluice.target "${SERVICES[@]/%/.service}"
for role in "${ROLES[@]}"; do  # a role this host no longer runs
    runs "$role" || systemctl disable --now --quiet "sluice-$role.service"
done
echo "    this host runs: ${SERVICES[*]}"

# ---------------------------------------------------------------------------------------------
healthy() {  # $1: URL, $2: its service. Waits up to a minute; gives up on one that keeps failing.
    for _ in $(seq 60); do
        "$release/bin/python" - "$1" 127.0.0.1 "$web_local" <<'EOF' && return 0
import http.client, ssl, sys, urllib.parse, urllib.request
url, own = sys.argv[1], sys.argv[2:]
# This host's own services, by address: the certificate is for the host's name (or not
# trusted yet, for a self-signed one), what is checked is that they answer.
local = urllib.parse.urlsplit(url).hostname in own
context = ssl._create_unverified_context() if local else None
try:
    sys.exit(urllib.request.urlopen(url, timeout=2, context=context).status != 200)
except (OSError, http.client.HTTPException):  # (not answered, or not by Sluice)
    sys.exit(1)
EOF
        [ "$(systemctl show -p NRestarts --value "$2")" -ge 3 ] && return 1
        sleep 1
    done
    return 1
}
taken() {  # ": port P is taken by NAME (pid N, UNIT)" for each of the ports $2… that a program
    # other than the service $1 listens on
    local service=$1 port found pid unit
    shift
    for port in "$@"; do
        [ "$port" -gt 0 ] || continue
        if ! command -v ss >/dev/null; then printf ' (is port %s free?)' "$port"; continue; fi
        found=$(ss -Hltnp "sport = :$port" 2>/dev/null \
            | sed -n 's/.*users:(("\([^"]*\)",pid=\([0-9]*\),.*/\2 \1/p' | head -n 1 || true)
        [ -n "$found" ] || continue
        pid=${found%% *}
        unit=$(sed -n 's|^0::.*/\([^/]*\.service\)$|\1|p' "/proc/$pid/cgroup" 2>/dev/null || true)
        [ "$unit" != "$service.service" ] || continue
        printf ': port %s is taken by %s (pid %s%s)' "$port" "${found#* }" "$pid" "${unit:+, $unit}"
    done
}
local_address() { case $1 in 0.0.0.0|::) echo 127.0.0.1 ;; *) echo "$1" ;; esac; }
# (the file's values count: an upgrade keeps the file as it is)
gateway_port=$(setting gateway_port 8080)
gateway_tls_port=$(setting gateway_tls_port "")
web_address=$(setting web_host 127.0.0.1)
web_port=$(setting web_port 8000)
public_url=$(setting public_url "")
web_scheme=http
[ -n "$(setting tls_cert "")" ] && web_scheme=https
gateway_ports=("$gateway_port" "$(setting http_port 0)" "${gateway_tls_port:-0}")
if [ -n "$gateway_tls_port" ]; then
    gateway_health="https://127.0.0.1:$gateway_tls_port/health"
else
    gateway_health="http://127.0.0.1:$gateway_port/health"
fi
web_local=$(local_address "$web_address")
web_health="$web_scheme://$web_local:$web_port/health"

if $upgrade; then
    # One at a time, each back before the next: the gateway stops accepting, commits what it
    # holds and exits (SDKs retry the moment it is away); the worker finishes or hands back
    # its requests in flight.
    say "Restarting the services one at a time on the new version"
    for service in "${SERVICES[@]}"; do
        echo "    $service"
        systemctl restart "$service.service"
        case $service in
            sluice-gateway) healthy "$gateway_health" "$service" \
                || fail "the gateway did not come back$(taken sluice-gateway "${gateway_ports[@]}"); its log: journalctl -u $service" ;;
            sluice-web) healthy "$web_health" "$service" \
                || fail "the web UI did not come back$(taken sluice-web "$web_port"); its log: journalctl -u $service" ;;
            *) systemctl is-active --quiet "$service.service" || fail "$service did not come back: journalctl -u $service" ;;
        esac
    done
else
    say "Starting Sluice"
    systemctl start sluice.target
    if runs gateway; then
        healthy "$gateway_health" sluice-gateway \
            || fail "the gateway did not start$(taken sluice-gateway "${gateway_ports[@]}"); its log: journalctl -u sluice-gateway"
    fi
    if runs web; then
        healthy "$web_health" sluice-web \
            || fail "the web UI did not start$(taken sluice-web "$web_port"); its log: journalctl -u sluice-web"
    fi
fi

# Older releases than the one before are removed (that one stays, to go back to by hand).
ls -1d "$PREFIX"/releases/* | head -n -2 | xargs -r rm -rf

if [ "$tls" = domain ]; then
    say "Getting a certificate for $domain from ${acme_directory} (certbot)"
    contact=(--register-unsafely-without-email)
    [ -n "$email" ] && contact=(--email "$email")
    # The deploy hook puts each certificate issued or renewed in service (certbot.timer renews
    # with the same webroot and hook): the services take it within seconds, no restart.
    if ! certbot certonly --webroot -w "$ACME" -d "$domain" --cert-name "$domain" \
            --server "$acme_directory" --non-interactive --agree-tos "${contact[@]}" \
            --deploy-hook '/usr/local/bin/sluice tls install "$RENEWED_LINEAGE/fullchain.pem" "$RENEWED_LINEAGE/privkey.pem"' \
            2>&1 | sed 's/^/    /'; then
        fail "certbot got no certificate for $domain (its output is above). Check that $domain's DNS
points at this host and that port 80 of this host can be reached from the internet (a firewall,
a cloud security group), then run install.sh again. Meanwhile a self-signed placeholder serves."
    fi
    # (a certificate certbot already had, not due for renewal, gets no deploy hook: installed here)
    "$PREFIX/current/bin/sluice" tls install --dir "$TLS_DIR" "/etc/letsencrypt/live/$domain/fullchain.pem" \
        "/etc/letsencrypt/live/$domain/privkey.pem" | sed 's/^/    /'
    forget_certbot "$domain"  # (an earlier --domain's lineage, now that this one serves)
    printf '%s\n' "$domain" > "$LINEAGE"
fi

# ---------------------------------------------------------------------------------------------
step="done"
echo
echo "Sluice $("$PREFIX/current/bin/python" -c 'import importlib.metadata as m; print(m.version("sluice"))') is running."
host_name=$(hostname -f 2>/dev/null || hostname)
if runs web; then
    web_name=$web_address
    if [ "$web_scheme" = https ] && [ "$web_address" = 0.0.0.0 ]; then
        web_name=$(url_host "$(setting public_url "https://$host_name")")  # (the certificate's name)
        [[ $web_name == *:* ]] && web_name="[$web_name]"
    fi
    echo "  web UI:  $web_scheme://$web_name:$web_port"
    [ "$web_address" = 127.0.0.1 ] && echo "           (from elsewhere: ssh -L $web_port:127.0.0.1:$web_port root@$host_name)"
fi
runs gateway && echo "  gateway: ${public_url:-http://$host_name:$gateway_port}"
if [ "$web_scheme" = https ] && [ -f "$TLS_DIR/ca.pem" ] \
        && "$PREFIX/current/bin/sluice" tls show | grep -q 'issued by .*Sluice trial CA'; then
    echo "  The certificate is self-signed: browsers and SDKs trust it once they trust $TLS_DIR/ca.pem"
fi
echo "  Lifecycle: systemctl status|restart|stop sluice.target; logs: journalctl -u 'sluice-*'"
