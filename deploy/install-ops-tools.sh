#!/bin/sh
# Installs the operations tools the tests use, from Debian's packages, when they are missing:
#   prometheus (prometheus, promtool), prometheus-alertmanager (amtool), kubernetes-client (kubectl).
# Idempotent and instant when all are there (`make ops-tools`; tests/e2e/test_observability.py).
# The packages' own daemons are kept from starting (they would take ports 9090 and 9093): the
# tests run their own Prometheus on a free loopback port.
set -eu

missing=""
{ command -v prometheus && command -v promtool; } >/dev/null 2>&1 || missing="$missing prometheus"
command -v amtool >/dev/null 2>&1 || missing="$missing prometheus-alertmanager"
command -v kubectl >/dev/null 2>&1 || missing="$missing kubernetes-client"
[ -z "$missing" ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-ops-tools: apt-get not found; install$missing yourself" >&2
    exit 1
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo -n"

# policy-rc.d exit 101: "do not start services" for invoke-rc.d and deb-systemd-invoke.
POLICY=/usr/sbin/policy-rc.d
if [ ! -e "$POLICY" ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$POLICY" >/dev/null
    $SUDO chmod 755 "$POLICY"
    trap '$SUDO rm -f "$POLICY"' EXIT
fi

export DEBIAN_FRONTEND=noninteractive
echo "install-ops-tools: apt-get install$missing" >&2
# shellcheck disable=SC2086 # word splitting of the package list is intended
$SUDO apt-get install -y -q --no-install-recommends $missing >&2 \
    || { $SUDO apt-get update -q >&2 && $SUDO apt-get install -y -q --no-install-recommends $missing >&2; }
