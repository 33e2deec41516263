#!/usr/bin/env bash
# The whole test suite on a fresh Debian 12 machine, as root: installs what the tests need
# (Debian packages, a virtualenv), then runs lint and pytest. .ci/run calls this.
set -euo pipefail
cd "$(dirname "$0")/.."

export DEBIAN_FRONTEND=noninteractive
packages=(python3 python3-venv postfix postfix-lmdb dovecot-core dovecot-imapd dovecot-pop3d nsd
          dovecot-lmtpd dovecot-sieve rspamd opendkim opendkim-tools chromium fonts-noto-cjk poppler-utils debootstrap
          openssh-client netcat-openbsd libsasl2-modules ca-certificates systemd-container knot knot-dnsutils
          nginx certbot pebble)
missing=()
for p in "${packages[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  # Installing must not start daemons (nsd on port 53, knot, postfix, dovecot): the tests start
  # their own, on loopback, and stop them. A temporary policy-rc.d says so to invoke-rc.d.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  apt-get update -qq
  # Postfix asks what kind of mail system this is; the tests bring their own configuration.
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then python3 -m venv .venv; fi
.venv/bin/pip install -q --disable-pip-version-check -e '.[test]'

.venv/bin/ruff check --quiet provisioner tests bench roles/mailhost/library roles/mailhost/module_utils roles/mailhost/action_plugins
.venv/bin/mypy --no-error-summary provisioner roles/mailhost/library/mailhost_stage.py roles/mailhost/library/mailhost_services.py roles/mailhost/module_utils/mailhost_units.py roles/mailhost/action_plugins/mailhost_probe.py
PATH="$PWD/.venv/bin:$PATH" .venv/bin/ansible-lint --offline --profile production -q roles/ provisioner/apply/playbook.yml provisioner/apply/rollout.yml molecule/
.venv/bin/python -m pytest -q -p no:cacheprovider "$@"
