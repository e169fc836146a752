# Veil: start at logon and restart on failure (Task Scheduler), for the current user.
# Written by `veil install`; run with: powershell -ExecutionPolicy Bypass -File install-task.ps1
$ErrorActionPreference = "Stop"
$action = New-ScheduledTaskAction -Execute "@PROGRAM@" -Argument "@ARGUMENTS@"
$trigger = New-ScheduledTaskTrigger -AtLogOn -User $env:USERNAME
$settings = New-ScheduledTaskSettingsSet -RestartCount 999 -RestartInterval (New-TimeSpan -Minutes 1) `
    -ExecutionTimeLimit (New-TimeSpan -Seconds 0) -AllowStartIfOnBatteries -DontStopIfGoingOnBatteries
Register-ScheduledTask -TaskName "Veil" -Description "Veil on-device content filter" `
    -Action $action -Trigger $trigger -Settings $settings -Force | Out-Null
Start-ScheduledTask -TaskName "Veil"
Write-Output "Veil: scheduled task installed and started"
