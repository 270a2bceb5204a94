#!/bin/sh
# Writes an auditpack endpoint report (schema auditpack.endpoint-report v1)
# for this Mac. Meant to be pushed by the RMM and run as root.
#
# Collects: host name, hardware serial and platform UUID, macOS version and
# build, last software update install (InstallHistory.plist via
# system_profiler), pending updates (`softwareupdate -l`; macOS lists security
# responses and OS updates without a severity), known EDR/AV agents by
# process, FileVault, the application firewall and the screen-lock delay.
# Read-only. Needs /usr/bin/python3 only to escape JSON strings when present;
# otherwise a plain sed escape is used.
#
# Usage: auditpack-endpoint.sh [OUT_FILE]   (default /Library/Application Support/auditpack/<host>.json)
set -eu
export LC_ALL=C

host=$(scutil --get LocalHostName 2>/dev/null || hostname -s)
out=${1:-"/Library/Application Support/auditpack/$host.json"}
mkdir -p "$(dirname "$out")"

json_str() {
  # A JSON string literal, or null for empty input.
  if [ -z "$1" ]; then printf 'null'; return; fi
  printf '"%s"' "$(printf '%s' "$1" | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' | tr -d '\000-\037')"
}

now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
serial=$(ioreg -rd1 -c IOPlatformExpertDevice | awk -F'"' '/IOPlatformSerialNumber/ {print $4}')
uuid=$(ioreg -rd1 -c IOPlatformExpertDevice | awk -F'"' '/IOPlatformUUID/ {print $4}')
os_name="macOS $(sw_vers -productVersion)"
os_version=$(sw_vers -productVersion)
os_build=$(sw_vers -buildVersion)

# Last install: newest "Install Date" in the install history.
last_install=$(system_profiler SPInstallHistoryDataType -xml 2>/dev/null \
  | awk '/<key>install_date<\/key>/ {getline; gsub(/.*<date>|<\/date>.*/, ""); print}' \
  | sort | tail -n 1)
[ -n "$last_install" ] || last_install=""

# Pending updates: "* Label: ..." lines of softwareupdate -l.
checked=false
pending=""
if list=$(softwareupdate -l 2>/dev/null); then
  checked=true
  pending=$(printf '%s\n' "$list" | awk -F'Label: ' '/\* Label: / {print $2}' | while IFS= read -r label; do
    printf '{"id":%s,"title":%s,"severity":"unknown","released":null,"age_days":null},' \
      "$(json_str "$label")" "$(json_str "$label")"
  done)
  pending=${pending%,}
fi

# EDR / AV by running process.
products=""
add_product() { # name kind process
  if pgrep -x "$3" >/dev/null 2>&1; then
    products="$products{\"name\":\"$1\",\"kind\":\"$2\",\"running\":true,\"detected_by\":\"process\"},"
  elif [ -n "${4:-}" ] && [ -e "$4" ]; then
    products="$products{\"name\":\"$1\",\"kind\":\"$2\",\"running\":false,\"detected_by\":\"path\"},"
  fi
}
add_product "CrowdStrike Falcon" edr falcond "/Applications/Falcon.app"
add_product "SentinelOne" edr sentineld "/Library/Sentinel"
add_product "Microsoft Defender for Endpoint" edr wdavdaemon "/Applications/Microsoft Defender.app"
add_product "Wazuh" edr wazuh-agentd "/Library/Ossec"
add_product "Elastic Agent" edr elastic-agent "/Library/Elastic/Agent"
add_product "Sophos Endpoint" antivirus SophosScanD "/Applications/Sophos"
products=${products%,}

# FileVault.
fv=$(fdesetup status 2>/dev/null || true)
case "$fv" in
  *"FileVault is On"*) enc=encrypted ;;
  *"FileVault is Off"*) enc=not_encrypted ;;
  *) enc=unknown ;;
esac

# Application firewall: 1 or 2 = on.
fw_state=$(defaults read /Library/Preferences/com.apple.alf globalstate 2>/dev/null || echo "")
case "$fw_state" in
  1|2) fw=enabled ;;
  0) fw=disabled ;;
  *) fw=unknown ;;
esac

# Screen lock: password after sleep/screensaver for the console user.
user=$(stat -f %Su /dev/console 2>/dev/null || echo "")
lock=unknown
delay=null
if [ -n "$user" ] && [ "$user" != root ]; then
  ask=$(sudo -u "$user" defaults read com.apple.screensaver askForPassword 2>/dev/null || echo "")
  d=$(sudo -u "$user" defaults read com.apple.screensaver askForPasswordDelay 2>/dev/null || echo "")
  case "$ask" in 1) lock=enabled ;; 0) lock=disabled ;; esac
  case "$d" in ''|*[!0-9]*) ;; *) delay=$d ;; esac
fi

tmp="$out.tmp.$$"
cat > "$tmp" <<JSON
{
  "schema": "auditpack.endpoint-report",
  "schema_version": 1,
  "generated_at": "$now",
  "generator": {"name": "auditpack-endpoint.sh", "version": "1.0.0"},
  "host": {"hostname": $(json_str "$host"), "fqdn": null, "serial_number": $(json_str "$serial"), "machine_id": $(json_str "$uuid"), "aad_device_id": null},
  "os": {"family": "macos", "name": $(json_str "$os_name"), "version": $(json_str "$os_version"), "build": $(json_str "$os_build")},
  "patching": {"last_install": $(json_str "$last_install"), "checked": $checked, "check_method": "softwareupdate -l", "pending_security_updates": [$pending]},
  "security_products": [$products],
  "disk_encryption": {"status": "$enc", "method": "FileVault", "volumes": []},
  "firewall": {"status": "$fw", "products": ["Application Firewall"]},
  "screen_lock": {"status": "$lock", "timeout_seconds": $delay}
}
JSON
mv -f "$tmp" "$out"
echo "endpoint report: $out"
