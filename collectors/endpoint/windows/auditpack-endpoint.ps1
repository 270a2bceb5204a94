<#
.SYNOPSIS
  Writes an auditpack endpoint report (schema auditpack.endpoint-report v1)
  for this Windows machine.

.DESCRIPTION
  Meant to be pushed by the RMM (NinjaOne, Datto RMM, Tactical RMM script
  policies) and run as SYSTEM. Collects: host identity and BIOS serial, OS
  version and build, installed hotfixes and Windows Update history (last
  successful install), pending security updates with their age, antivirus /
  EDR products from Defender (Get-MpComputerStatus) and Security Center
  (root/SecurityCenter2, workstations only), known EDR services, BitLocker,
  Windows Firewall profiles and the screen-lock policy.

  Read-only: it changes nothing on the machine. Output is UTF-8 JSON without
  BOM, written atomically (temporary file, then rename).

.PARAMETER OutFile
  Where to write the report. Default: $env:ProgramData\auditpack\<host>.json

.EXAMPLE
  powershell.exe -NoProfile -ExecutionPolicy Bypass -File auditpack-endpoint.ps1 -OutFile \\fileserver\auditpack-drop\$env:COMPUTERNAME.json
#>
[CmdletBinding()]
param(
  [string]$OutFile = (Join-Path $env:ProgramData ("auditpack\" + $env:COMPUTERNAME + ".json"))
)
$ErrorActionPreference = 'Stop'
Set-StrictMode -Version 2

function Iso($value) {
  if ($null -eq $value) { return $null }
  $t = [datetime]$value
  if ($t.Year -lt 1990) { return $null }
  return $t.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss'Z'")
}
function Try-Get([scriptblock]$block) {
  try { & $block } catch { $null }
}
function Clip([string]$s, [int]$n) {
  if ($null -eq $s) { return $null }
  $s = $s.Trim()
  if ($s.Length -gt $n) { return $s.Substring(0, $n) }
  return $s
}

$now = Get-Date
$cs = Try-Get { Get-CimInstance Win32_ComputerSystem }
$bios = Try-Get { Get-CimInstance Win32_BIOS }
$osInfo = Try-Get { Get-CimInstance Win32_OperatingSystem }
$serial = if ($bios) { Clip $bios.SerialNumber 128 } else { $null }
if ($serial -in @('', 'To be filled by O.E.M.', 'System Serial Number', 'Default string', '0')) { $serial = $null }
$machineGuid = Try-Get { (Get-ItemProperty 'HKLM:\SOFTWARE\Microsoft\Cryptography').MachineGuid }

# Entra ID device id, when the machine is joined (dsregcmd /status).
$aadDeviceId = $null
$dsreg = Try-Get { & dsregcmd.exe /status 2>$null }
if ($dsreg) {
  $line = $dsreg | Where-Object { $_ -match '^\s*DeviceId\s*:\s*([0-9a-fA-F-]{36})' } | Select-Object -First 1
  if ($line -and $line -match '([0-9a-fA-F-]{36})') { $aadDeviceId = $Matches[1].ToLower() }
}

$fqdn = $null
if ($cs -and $cs.Domain -and $cs.PartOfDomain) { $fqdn = Clip ($env:COMPUTERNAME + '.' + $cs.Domain) 253 }

# --- Patching: last successful install from Windows Update history and hotfixes.
$lastInstall = $null
$session = Try-Get { New-Object -ComObject Microsoft.Update.Session }
if ($session) {
  $searcher = $session.CreateUpdateSearcher()
  $count = Try-Get { $searcher.GetTotalHistoryCount() }
  if ($count -gt 0) {
    $history = Try-Get { $searcher.QueryHistory(0, [Math]::Min($count, 500)) }
    foreach ($h in @($history)) {
      # Operation 1 = installation, ResultCode 2 = succeeded, 3 = succeeded with errors.
      if ($h.Operation -eq 1 -and ($h.ResultCode -eq 2 -or $h.ResultCode -eq 3)) {
        if ($null -eq $lastInstall -or $h.Date -gt $lastInstall) { $lastInstall = $h.Date }
      }
    }
  }
}
foreach ($hf in @(Try-Get { Get-HotFix })) {
  if ($hf -and $hf.InstalledOn -and ($null -eq $lastInstall -or $hf.InstalledOn -gt $lastInstall)) {
    $lastInstall = $hf.InstalledOn
  }
}

# --- Pending security updates (security updates and critical updates categories).
$pending = @()
$checked = $false
if ($session) {
  try {
    $result = $session.CreateUpdateSearcher().Search("IsInstalled=0 and IsHidden=0 and Type='Software'")
    $checked = $true
    foreach ($u in $result.Updates) {
      $cats = @($u.Categories | ForEach-Object { $_.Name })
      if (-not ($cats -contains 'Security Updates' -or $cats -contains 'Critical Updates')) { continue }
      $sev = switch ($u.MsrcSeverity) {
        'Critical' { 'critical' } 'Important' { 'important' } 'Moderate' { 'moderate' } 'Low' { 'low' } default { 'unknown' }
      }
      $kb = if ($u.KBArticleIDs.Count -gt 0) { 'KB' + $u.KBArticleIDs.Item(0) } else { $u.Identity.UpdateID }
      $released = $u.LastDeploymentChangeTime
      $age = $null
      if ($released -and $released.Year -gt 1990) { $age = [int][Math]::Max(0, ($now - $released).TotalDays) }
      $pending += [ordered]@{
        id = Clip $kb 200; title = Clip $u.Title 500; severity = $sev
        released = (Iso $released); age_days = $age
      }
    }
  } catch { $checked = $false }
}

# --- Antivirus and EDR.
$products = @()
$mp = Try-Get { Get-MpComputerStatus }
if ($mp) {
  $products += [ordered]@{
    name = 'Microsoft Defender Antivirus'; kind = 'antivirus'
    running = [bool]($mp.AMServiceEnabled -and $mp.AntivirusEnabled -and $mp.RealTimeProtectionEnabled)
    up_to_date = [bool]($mp.AntivirusSignatureAge -le 3); detected_by = 'wmi'
  }
}
if ($osInfo -and $osInfo.ProductType -eq 1) {
  foreach ($av in @(Try-Get { Get-CimInstance -Namespace root/SecurityCenter2 -ClassName AntiVirusProduct })) {
    if (-not $av -or $av.displayName -like '*Windows Defender*' -or $av.displayName -like '*Microsoft Defender*') { continue }
    # productState: byte 2 (0x10 bit) = enabled, byte 3 = 0x00 up to date.
    $state = [int]$av.productState
    $products += [ordered]@{
      name = Clip $av.displayName 200; kind = 'antivirus'
      running = [bool](($state -band 0x1000) -ne 0)
      up_to_date = [bool](($state -band 0x10) -eq 0); detected_by = 'wmi'
    }
  }
}
$edr = @(
  @{ name = 'Microsoft Defender for Endpoint'; service = 'Sense' },
  @{ name = 'CrowdStrike Falcon'; service = 'CSFalconService' },
  @{ name = 'SentinelOne'; service = 'SentinelAgent' },
  @{ name = 'Sophos Endpoint'; service = 'Sophos Endpoint Defense Service' },
  @{ name = 'Wazuh'; service = 'WazuhSvc' },
  @{ name = 'Elastic Agent'; service = 'Elastic Agent' }
)
foreach ($e in $edr) {
  $svc = Try-Get { Get-Service -Name $e.service -ErrorAction Stop }
  if ($svc) {
    $products += [ordered]@{ name = $e.name; kind = 'edr'; running = ($svc.Status -eq 'Running'); detected_by = 'service' }
  }
}

# --- BitLocker.
$volumes = @()
$encStatus = 'unknown'
$bl = Try-Get { Get-BitLockerVolume }
if ($bl) {
  foreach ($v in @($bl)) {
    $volumes += [ordered]@{ name = Clip ([string]$v.MountPoint) 200; mount = Clip ([string]$v.MountPoint) 500; encrypted = ($v.ProtectionStatus -eq 'On') }
  }
  $sys = @($bl | Where-Object { $_.VolumeType -eq 'OperatingSystem' }) | Select-Object -First 1
  $any = @($volumes | Where-Object { $_.encrypted }).Count -gt 0
  if ($sys -and $sys.ProtectionStatus -eq 'On') { $encStatus = 'encrypted' }
  elseif ($any) { $encStatus = 'partial' }
  else { $encStatus = 'not_encrypted' }
}

# --- Firewall: enabled when every profile is.
$fwStatus = 'unknown'
$profiles = Try-Get { Get-NetFirewallProfile }
if ($profiles) {
  $fwStatus = if (@($profiles | Where-Object { -not $_.Enabled }).Count -eq 0) { 'enabled' } else { 'disabled' }
}

# --- Screen lock: the machine policy's inactivity limit, else the screensaver lock.
$lockStatus = 'unknown'
$timeout = $null
$inactivity = Try-Get { (Get-ItemProperty 'HKLM:\SOFTWARE\Microsoft\Windows\CurrentVersion\Policies\System').InactivityTimeoutSecs }
if ($inactivity) { $lockStatus = 'enabled'; $timeout = [int]$inactivity }
else {
  $ss = Try-Get { Get-ItemProperty 'HKCU:\Control Panel\Desktop' }
  if ($ss -and $ss.PSObject.Properties['ScreenSaverIsSecure']) {
    $lockStatus = if ($ss.ScreenSaverIsSecure -eq '1') { 'enabled' } else { 'disabled' }
    if ($ss.PSObject.Properties['ScreenSaveTimeOut']) { $timeout = [int]$ss.ScreenSaveTimeOut }
  }
}

$report = [ordered]@{
  schema = 'auditpack.endpoint-report'
  schema_version = 1
  generated_at = (Iso $now)
  generator = [ordered]@{ name = 'auditpack-endpoint.ps1'; version = '1.0.0' }
  host = [ordered]@{
    hostname = Clip $env:COMPUTERNAME 253; fqdn = $fqdn; serial_number = $serial
    machine_id = Clip $machineGuid 128; aad_device_id = $aadDeviceId
  }
  os = [ordered]@{
    family = 'windows'
    name = if ($osInfo) { Clip $osInfo.Caption 200 } else { 'Windows' }
    version = if ($osInfo) { Clip $osInfo.Version 100 } else { '' }
    build = if ($osInfo) { Clip $osInfo.BuildNumber 100 } else { $null }
  }
  patching = [ordered]@{
    last_install = (Iso $lastInstall); checked = $checked
    check_method = 'Microsoft.Update.Session'; pending_security_updates = @($pending)
  }
  security_products = @($products)
  disk_encryption = [ordered]@{ status = $encStatus; method = 'BitLocker'; volumes = @($volumes) }
  firewall = [ordered]@{ status = $fwStatus; products = @('Windows Defender Firewall') }
  screen_lock = [ordered]@{ status = $lockStatus; timeout_seconds = $timeout }
}

$json = $report | ConvertTo-Json -Depth 6
$dir = Split-Path -Parent $OutFile
if ($dir -and -not (Test-Path $dir)) { New-Item -ItemType Directory -Path $dir -Force | Out-Null }
$tmp = "$OutFile.tmp-$PID"
[System.IO.File]::WriteAllText($tmp, $json, (New-Object System.Text.UTF8Encoding($false)))
Move-Item -Force -Path $tmp -Destination $OutFile
Write-Output "endpoint report: $OutFile"
