using System.CommandLine;
using Vigil.Sensors.Probes;

namespace Vigil.Cli.Commands;

/// <summary><c>vigil doctor</c>: what this kernel can do, found by loading and attaching a minimal
/// program per hook type (see docs/programs/probes.md).</summary>
public static class DoctorCommand
{
    public static Command Create()
    {
        var output = new Option<string>("--output", "-o")
        {
            Description = "table (for people) or json (one object, for machines)",
            DefaultValueFactory = _ => "table",
        };
        output.AcceptOnlyFromAmong("table", "json");
        var timeout = new Option<double>("--probe-timeout")
        {
            Description = "seconds one probe may take before it is reported as timed out",
            HelpName = "seconds",
            DefaultValueFactory = _ => 10,
        };
        timeout.Validators.Add(result =>
        {
            if (result.GetValueOrDefault<double>() is not (> 0 and <= 600))
                result.AddError("--probe-timeout must be more than 0 and at most 600 seconds");
        });

        var command = new Command("doctor",
            "Show what this kernel and process can do: loads and attaches a minimal BPF program per hook type " +
            "(to harmless targets, a private network namespace and a temporary cgroup), then removes everything")
        {
            output,
            timeout,
        };
        command.SetAction(parse => Run(parse.GetValue(output) ?? "table", TimeSpan.FromSeconds(parse.GetValue(timeout)), Console.Out));
        return command;
    }

    /// <summary>Probes and writes the report. Exit code 0 when <c>vigil watch tcp</c> has a hook here and
    /// everything probed was removed; 1 otherwise.</summary>
    public static int Run(string output, TimeSpan probeTimeout, TextWriter writer)
    {
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(probeTimeout, TimeSpan.Zero);
        var report = FeatureProber.Run(new ProbeOptions { TimeoutPerProbe = probeTimeout });
        if (output == "json") ProbeReportJson.Write(report, writer);
        else WriteTable(report, writer);
        return report.TcpAutoHook is not null && report.Leftovers.Count == 0 ? ExitCodes.Ok : ExitCodes.Failure;
    }

    public static void WriteTable(ProbeReport report, TextWriter w)
    {
        var s = report.System;
        w.WriteLine("System");
        Row(w, "kernel", $"{s.KernelRelease} ({s.Architecture})");
        Row(w, "BTF", s.BtfPresent ? "yes (/sys/kernel/btf/vmlinux)" : "no: /sys/kernel/btf/vmlinux is missing (CO-RE, fentry, tp_btf and LSM need it)");
        Row(w, "cgroup v2", s.CgroupV2Mount ?? "not mounted");
        Row(w, "tracefs", s.TracefsMount is null ? "not mounted (classic tracepoints and legacy kprobes need it; tp_btf/raw_tp do not)" : $"mounted at {s.TracefsMount}");
        Row(w, "bpffs", s.BpffsMount is null
            ? "not mounted: the guard cannot pin, so its enforcement ends when vigil stops (mount -t bpf bpf /sys/fs/bpf; systemd does at boot)"
            : $"mounted at {s.BpffsMount} (the guard pins in {s.BpffsMount}/vigil/guard)");
        Row(w, "lockdown", s.Lockdown ?? $"unknown: {s.LockdownNote}");
        Row(w, "libbpf", s.LibbpfVersion is null ? $"not usable: {s.LibbpfProblem}" : $"{s.LibbpfVersion} ({s.LibbpfPath ?? "path unknown"})");
        Row(w, "capabilities", (s.CapabilitiesHeld.Count == 0 ? "none of the relevant ones" : string.Join(" ", s.CapabilitiesHeld))
            + (s.CapabilitiesMissing.Count == 0 ? "; nothing missing for vigil watch" : $"; missing for vigil watch: {string.Join(" ", s.CapabilitiesMissing)}"));
        w.WriteLine();

        w.WriteLine("Hooks (each loaded and attached for real, then detached)");
        const int hookWidth = 18, statusWidth = 15;
        w.WriteLine($"  {"HOOK",-hookWidth}{"STATUS",-statusWidth}WHERE / WHY");
        var indent = new string(' ', 2 + hookWidth + statusWidth);
        foreach (var h in report.Hooks)
        {
            string status = h.Status switch
            {
                ProbeStatus.Works => "works",
                ProbeStatus.Unavailable => "not available",
                ProbeStatus.LoadedOnly => "loaded only",
                _ => "not probed",
            };
            w.WriteLine($"  {ProbeReport.NameOf(h.Hook),-hookWidth}{status,-statusWidth}{h.Target}");
            if (h.Reason is not null) w.WriteLine($"{indent}{h.Reason}");
            if (h.Evidence.Length > 0) w.WriteLine($"{indent}{h.Evidence}");
        }
        w.WriteLine();

        w.WriteLine(report.TcpAutoHook is null
            ? $"vigil watch tcp --hook auto: no usable hook — {report.TcpAutoReason}"
            : $"vigil watch tcp --hook auto would use: {report.TcpAutoHook} — {report.TcpAutoReason}");
        foreach (var leftover in report.Leftovers) w.WriteLine($"warning: {leftover}");
    }

    private static void Row(TextWriter w, string name, string value) => w.WriteLine($"  {name,-14}{value}");
}
