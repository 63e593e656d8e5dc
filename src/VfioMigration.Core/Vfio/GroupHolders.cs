using System;
using System.Collections.Generic;
using System.Globalization;
using VfioMigration.Core.Kernel;

namespace VfioMigration.Core.Vfio;

/// <summary>
/// Who holds a VFIO group open, as /proc shows it (a group can be open in one process only, so an EBUSY
/// from open(/dev/vfio/N) means another process has it).
/// </summary>
public static class GroupHolders
{
    /// <summary>"qemu-system-x86_64 (pid 4242)" for each process with /dev/vfio/N open; empty if /proc shows none (or hides them).</summary>
    public static IReadOnlyList<string> Find(IHostFiles files, int group)
    {
        var holders = new List<string>();
        string node = $"/dev/vfio/{group}";
        foreach (string pid in files.List("/proc"))
        {
            if (!int.TryParse(pid, NumberStyles.None, CultureInfo.InvariantCulture, out _)) continue;
            foreach (string fd in files.List($"/proc/{pid}/fd"))
            {
                if (!string.Equals(files.ReadLink($"/proc/{pid}/fd/{fd}"), node, StringComparison.Ordinal)) continue;
                string command = files.ReadText($"/proc/{pid}/comm") ?? "?";
                holders.Add($"{command} (pid {pid})");
                break;
            }
        }
        return holders;
    }
}
