using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using VfioMigration.Core.Kernel;

namespace VfioMigration.Core.Simulation;

/// <summary>
/// The simulated host's sysfs, /dev/vfio and /proc, laid out as Linux lays them out, so discovery code
/// reads it with the same paths it reads on a real host.
/// </summary>
internal sealed class SimHostFiles : IHostFiles
{
    private readonly SimulatedKernel _kernel;
    private readonly Dictionary<string, SortedSet<string>> _dirs = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _text = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _links = new(StringComparer.Ordinal);
    private readonly HashSet<string> _nodes = new(StringComparer.Ordinal);

    public SimHostFiles(SimulatedKernel kernel)
    {
        _kernel = kernel;
        var c = kernel.Configuration;
        Node("/dev/vfio/vfio");
        Dir("/sys/kernel/iommu_groups");
        if (c.Iommufd) Node(Native.IommufdConstants.IommuPath);
        // The IOMMU's registers as its driver shows them in sysfs (intel-iommu/{cap,ecap}, amd-iommu/features).
        if (c.IommuModel == SimIommuModel.IntelVtd)
        {
            Link("/sys/class/iommu/dmar0", "../../devices/virtual/iommu/dmar0");
            Text("/sys/devices/virtual/iommu/dmar0/intel-iommu/cap", c.EffectiveVtdCap.ToString("x", CultureInfo.InvariantCulture));
            Text("/sys/devices/virtual/iommu/dmar0/intel-iommu/ecap", c.EffectiveVtdEcap.ToString("x", CultureInfo.InvariantCulture));
        }
        else
        {
            Link("/sys/class/iommu/ivhd0", "../../devices/pci0000:00/0000:00:00.2/iommu/ivhd0");
            Text("/sys/devices/pci0000:00/0000:00:00.2/iommu/ivhd0/amd-iommu/features", c.EffectiveAmdEfr.ToString("x", CultureInfo.InvariantCulture) + ":0");
        }
        foreach (var g in c.Groups)
        {
            string gdir = $"/sys/kernel/iommu_groups/{g.Number}";
            Dir(gdir);
            Dir(gdir + "/devices");
            if (g.Devices.Any(d => d.BoundToVfio)) Node($"/dev/vfio/{g.Number}");
            foreach (var d in g.Devices)
            {
                string bus = d.Bus == SimBus.Pci ? "pci" : "mdev";
                string dev = $"/sys/bus/{bus}/devices/{d.Name}";
                Dir(dev);
                Link($"{gdir}/devices/{d.Name}", $"../../../../bus/{bus}/devices/{d.Name}");
                Link(dev + "/subsystem", $"../../../bus/{bus}");
                Link(dev + "/iommu_group", $"../../../kernel/iommu_groups/{g.Number}");
                Link(dev + "/driver", $"../../../bus/{bus}/drivers/{d.Driver}");
                if (c.Iommufd && d.BoundToVfio)
                {
                    // The device's cdev (CONFIG_VFIO_DEVICE_CDEV): <device>/vfio-dev/vfioN and /dev/vfio/devices/vfioN.
                    string cdev = "vfio" + c.CdevNumber(d).ToString(CultureInfo.InvariantCulture);
                    Text($"{dev}/vfio-dev/{cdev}/dev", "511:" + c.CdevNumber(d).ToString(CultureInfo.InvariantCulture));
                    Node($"{Native.IommufdConstants.DeviceCdevFolder}/{cdev}");
                }
                if (d.Bus == SimBus.Pci)
                {
                    Text(dev + "/vendor", $"0x{d.VendorId:x4}");
                    Text(dev + "/device", $"0x{d.DeviceId:x4}");
                }
                else if (d.MdevType is not null)
                {
                    Link(dev + "/mdev_type", $"../mdev_supported_types/{d.MdevType}");
                }
            }
            if (g.HeldBy is { } h)
            {
                string p = $"/proc/{h.Pid.ToString(CultureInfo.InvariantCulture)}";
                Dir(p);
                Dir(p + "/fd");
                Text(p + "/comm", h.Command);
                Link(p + "/fd/17", $"/dev/vfio/{g.Number}");
            }
        }
    }

    private void Dir(string path)
    {
        if (_dirs.ContainsKey(path)) return;
        _dirs[path] = new SortedSet<string>(StringComparer.Ordinal);
        int slash = path.LastIndexOf('/');
        if (slash > 0)
        {
            string parent = path.Substring(0, slash);
            Dir(parent);
            _dirs[parent].Add(path.Substring(slash + 1));
        }
    }

    private void Entry(string path)
    {
        int slash = path.LastIndexOf('/');
        string parent = path.Substring(0, slash);
        Dir(parent);
        _dirs[parent].Add(path.Substring(slash + 1));
    }

    private void Text(string path, string text) { _text[path] = text; Entry(path); }

    private void Link(string path, string target) { _links[path] = target; Entry(path); }

    private void Node(string path) { _nodes.Add(path); Entry(path); }

    private static string Normalize(string path) => path.Length > 1 ? path.TrimEnd('/') : path;

    /// <summary>Resolves the last component when it is a link to a directory (sysfs device links).</summary>
    private string Resolve(string path)
    {
        path = Normalize(path);
        // Follow a directory link one level: /sys/kernel/iommu_groups/N/devices/X/vendor -> /sys/bus/pci/devices/X/vendor.
        var parts = path.Split('/');
        for (int i = parts.Length - 1; i > 1; i--)
        {
            string prefix = string.Join('/', parts, 0, i);
            if (_links.TryGetValue(prefix, out var target) && !_dirs.ContainsKey(prefix))
            {
                string resolved = Combine(prefix, target);
                if (_dirs.ContainsKey(resolved)) return resolved + "/" + string.Join('/', parts, i, parts.Length - i);
            }
        }
        return path;
    }

    private static string Combine(string linkPath, string target)
    {
        if (target.StartsWith('/')) return target;
        var stack = new List<string>(linkPath.Split('/')[..^1]);
        foreach (string part in target.Split('/'))
        {
            if (part == "..") stack.RemoveAt(stack.Count - 1);
            else if (part != ".") stack.Add(part);
        }
        return string.Join('/', stack);
    }

    public bool Exists(string path)
    {
        string p = Resolve(path);
        return _nodes.Contains(p) || _text.ContainsKey(p) || _dirs.ContainsKey(p) || _links.ContainsKey(Normalize(path));
    }

    public bool DirectoryExists(string path)
    {
        string n = Normalize(path);
        if (_dirs.ContainsKey(n)) return true;
        return _links.TryGetValue(n, out var t) && _dirs.ContainsKey(Combine(n, t));
    }

    public string? ReadText(string path)
    {
        string p = Resolve(path);
        if (_text.TryGetValue(p, out var t)) return t;
        return null;
    }

    public string[] List(string path)
    {
        string n = Normalize(path);
        if (_links.TryGetValue(n, out var t)) n = Combine(n, t);
        n = Resolve(n);
        return _dirs.TryGetValue(n, out var names) ? names.ToArray() : Array.Empty<string>();
    }

    public string? ReadLink(string path)
    {
        string n = Normalize(path);
        if (_links.TryGetValue(n, out var t)) return t;
        // A link inside a linked directory (iommu_groups/N/devices/X/driver).
        string r = Resolve(n);
        return _links.TryGetValue(r, out var t2) ? t2 : null;
    }
}
