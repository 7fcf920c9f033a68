<#
.SYNOPSIS
    Registers (or removes) the Scheduled Task that keeps the servicenet village agent running.

.DESCRIPTION
    Creates the task "servicenet-village-agent" for the current Windows user. It starts
    `village-agent.exe run --home <HomeDir> --ui 127.0.0.1:8700` when that user logs on, runs only
    while the user is logged on, has no execution time limit, keeps running on battery, and is
    brought back if it stops. The agent dials out to its township and listens only on the
    loopback, for the intake app (http://127.0.0.1:8700/ in the laptop's browser).

    Run it as the agent's own Windows user, after `village-agent init`; elevation is normally not
    needed. Windows blocks unsigned scripts by default, so start it like this:
        powershell -ExecutionPolicy Bypass -File .\install-village-agent.ps1
        powershell -ExecutionPolicy Bypass -File .\install-village-agent.ps1 -Uninstall

    Stopping the task ends the process without a console signal; nothing is lost, because
    everything the agent has not yet synced is already committed in its SQLite database.

.PARAMETER ExePath
    Path to village-agent.exe (the console script installed into the agent's venv).

.PARAMETER HomeDir
    The node's home folder (node.toml, database, keys), as given to `village-agent init --home`.

.PARAMETER ShowConsole
    Run the agent in a visible console window instead of a hidden one (for troubleshooting).

.PARAMETER Uninstall
    Stop and remove the task instead of registering it. The home folder is left untouched.
#>
[CmdletBinding()]
param(
    [string]$ExePath = "$env:LOCALAPPDATA\servicenet\venv\Scripts\village-agent.exe",
    [string]$HomeDir = "$env:LOCALAPPDATA\servicenet\village",
    [switch]$ShowConsole,
    [switch]$Uninstall
)

$ErrorActionPreference = 'Stop'
$TaskName = 'servicenet-village-agent'
# DOMAIN\user (or MACHINE\user) of whoever runs this script: the task runs as this user only.
$User = [System.Security.Principal.WindowsIdentity]::GetCurrent().Name

if ($Uninstall) {
    if (Get-ScheduledTask -TaskName $TaskName -ErrorAction SilentlyContinue) {
        Stop-ScheduledTask -TaskName $TaskName
        Unregister-ScheduledTask -TaskName $TaskName -Confirm:$false
        Write-Host "Removed scheduled task '$TaskName'."
    } else {
        Write-Host "Scheduled task '$TaskName' is not registered; nothing to do."
    }
    return
}

if (-not (Test-Path -LiteralPath $ExePath -PathType Leaf)) {
    throw "village-agent.exe not found at '$ExePath'. Install servicenet into that venv or pass -ExePath."
}
if (-not (Test-Path -LiteralPath (Join-Path $HomeDir 'node.toml') -PathType Leaf)) {
    throw "No node.toml in '$HomeDir'. Run 'village-agent init --home `"$HomeDir`" --bundle ... --township HOST:50061' first, or pass -HomeDir."
}
$ExePath = (Resolve-Path -LiteralPath $ExePath).Path
# A trailing backslash before the closing quote would escape it on the command line.
$HomeDir = (Resolve-Path -LiteralPath $HomeDir).Path.TrimEnd('\')
$AgentArgs = "run --home `"$HomeDir`" --ui 127.0.0.1:8700"

# village-agent.exe is a console program. To keep its window hidden it is started through
# `conhost.exe --headless` (Windows 10 1809 or later; an undocumented but long-standing switch).
if ($ShowConsole) {
    $Action = New-ScheduledTaskAction -Execute $ExePath -Argument $AgentArgs -WorkingDirectory $HomeDir
} else {
    $Action = New-ScheduledTaskAction -Execute "$env:SystemRoot\System32\conhost.exe" `
        -Argument "--headless `"$ExePath`" $AgentArgs" -WorkingDirectory $HomeDir
}

# Start when this user logs on. Task Scheduler's restart-on-failure only retries a launch that
# failed (MS-TSCH 2.5.4.2), not a process that exited, so the trigger also repeats every 5
# minutes, indefinitely: with MultipleInstances IgnoreNew that does nothing while the agent runs
# and starts it again if it has exited for any reason.
$Trigger = New-ScheduledTaskTrigger -AtLogOn -User $User
$Trigger.Repetition = (New-ScheduledTaskTrigger -Once -At (Get-Date) `
    -RepetitionInterval (New-TimeSpan -Minutes 5)).Repetition

# Interactive logon type = "Run only when user is logged on"; Limited = no elevation.
$Principal = New-ScheduledTaskPrincipal -UserId $User -LogonType Interactive -RunLevel Limited

# Retry a failed launch every minute; 255 is the largest count the task schema accepts.
$Settings = New-ScheduledTaskSettingsSet `
    -RestartCount 255 -RestartInterval (New-TimeSpan -Minutes 1) `
    -ExecutionTimeLimit ([TimeSpan]::Zero) `
    -MultipleInstances IgnoreNew `
    -AllowStartIfOnBatteries -DontStopIfGoingOnBatteries

# -Force replaces an earlier registration, so re-running the script updates the task.
Register-ScheduledTask -TaskName $TaskName `
    -Description 'servicenet village agent: syncs queued requests with the township whenever online.' `
    -Action $Action -Trigger $Trigger -Principal $Principal -Settings $Settings -Force | Out-Null

# Start it now rather than at the next logon.
Start-ScheduledTask -TaskName $TaskName
Write-Host "Registered and started scheduled task '$TaskName' for $User."
Write-Host "Check it with: & `"$ExePath`" status --home `"$HomeDir`""
