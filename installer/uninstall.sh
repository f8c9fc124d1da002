#!/usr/bin/env bash
# Remove Sluice from this host: its services, units and /opt/sluice. The database, the data
# directory (/var/lib/sluice) and the configuration (/etc/sluice, which holds the database's
# password) stay, so that installing again carries on where this left off — unless --purge.
set -Eeuo pipefail

usage() {
    cat <<'EOF'
Usage: uninstall.sh [--purge]

Stops and removes Sluice's services, units and /opt/sluice; keeps the database,
/var/lib/sluice and /etc/sluice.

  --purge     also drop the local sluice database and role, remove /var/lib/sluice,
              /etc/sluice and the sluice user: everything Sluice stored is gone
  -h, --help  this help
EOF
}

purge=false
while [ $# -gt 0 ]; do
    case $1 in
        --purge) purge=true; shift ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; echo "uninstall.sh: unknown option: $1" >&2; exit 1 ;;
    esac
done
[ "$(id -u)" -eq 0 ] || { echo "uninstall.sh: run me as root" >&2; exit 1; }

say() { printf '==> %s\n' "$1"; }
UNITS=/etc/systemd/system
SERVICES=(sluice-gateway.service sluice-worker.service sluice-web.service)

say "Stopping and removing the services"
systemctl disable --now --quiet sluice.target "${SERVICES[@]}" 2>/dev/null || true
rm -f "$UNITS/sluice.target" "${SERVICES[@]/#/$UNITS/}"
rm -rf "$UNITS"/sluice-*.service.d
systemctl daemon-reload
systemctl reset-failed "${SERVICES[@]}" 2>/dev/null || true

say "Removing /opt/sluice"
rm -rf /opt/sluice /usr/share/doc/sluice
[ "$(readlink /usr/local/bin/sluice 2>/dev/null)" = /opt/sluice/current/bin/sluice ] \
    && rm -f /usr/local/bin/sluice

if $purge; then
    say "Purging the database, /var/lib/sluice, /etc/sluice and the sluice user"
    local_database=false
    grep -q '^database_url *= *"postgresql://sluice:[^@]*@127.0.0.1:5432/sluice"' \
        /etc/sluice/sluice.toml 2>/dev/null && local_database=true
    if $local_database && command -v psql >/dev/null && id -u postgres >/dev/null 2>&1; then
        runuser -u postgres -- psql -qAt -v ON_ERROR_STOP=1 \
            -c 'DROP DATABASE IF EXISTS sluice' -c 'DROP ROLE IF EXISTS sluice'
    elif [ -f /etc/sluice/sluice.toml ]; then
        echo "    the database is not on this host: drop it there if it should go too"
    fi
    # certbot's lineage install.sh --domain got (recorded there); no other is touched.
    owned=$(cat /etc/sluice/tls/certbot-lineage 2>/dev/null || true)
    if [ -n "$owned" ] && [ -f "/etc/letsencrypt/renewal/$owned.conf" ]; then
        certbot delete --non-interactive --cert-name "$owned" 2>&1 | sed 's/^/    /'
        echo "    certbot no longer renews $owned"
    fi
    rm -rf /var/lib/sluice /var/lib/sluice-acme /etc/sluice
    id -u sluice >/dev/null 2>&1 && userdel sluice
    echo "Sluice and everything it stored are removed."
else
    echo "Sluice is removed. Kept: the database, /var/lib/sluice and /etc/sluice"
    echo "(install.sh carries on with them; uninstall.sh --purge removes them)."
fi
