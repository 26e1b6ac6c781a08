using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace Vigil.Sensors.Probes;

/// <summary>The report as one JSON object on one line: the machine-readable contract of
/// <c>vigil doctor --output json</c> (fields documented in docs/programs/probes.md).</summary>
public static class ProbeReportJson
{
    public const int SchemaVersion = 1;

    public static void Write(ProbeReport report, TextWriter output)
    {
        using var buffer = new MemoryStream();
        // Relaxed escaping keeps "×" and "—" readable; the output is never embedded in HTML.
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            var s = report.System;
            w.WriteStartObject();
            w.WriteNumber("schema", SchemaVersion);
            w.WriteStartObject("kernel");
            w.WriteString("release", s.KernelRelease);
            w.WriteString("version", s.KernelVersion);
            w.WriteString("arch", s.Architecture);
            w.WriteEndObject();
            w.WriteBoolean("btf", s.BtfPresent);
            w.WriteString("cgroup_v2_mount", s.CgroupV2Mount);
            w.WriteBoolean("tracefs", s.TracefsMount is not null);
            w.WriteString("tracefs_mount", s.TracefsMount);
            w.WriteString("bpffs_mount", s.BpffsMount);
            w.WriteStartObject("lockdown");
            w.WriteString("mode", s.Lockdown);
            w.WriteString("note", s.LockdownNote);
            w.WriteEndObject();
            w.WriteStartObject("libbpf");
            w.WriteString("version", s.LibbpfVersion);
            w.WriteString("path", s.LibbpfPath);
            w.WriteString("problem", s.LibbpfProblem);
            w.WriteEndObject();
            w.WriteStartObject("capabilities");
            w.WriteString("effective", $"0x{s.EffectiveCapabilities:x16}");
            Strings(w, "held", s.CapabilitiesHeld);
            Strings(w, "missing", s.CapabilitiesMissing);
            w.WriteEndObject();

            w.WriteStartArray("hooks");
            foreach (var h in report.Hooks)
            {
                w.WriteStartObject();
                w.WriteString("hook", ProbeReport.NameOf(h.Hook));
                w.WriteString("status", ProbeReport.NameOf(h.Status));
                w.WriteBoolean("works", h.Works);
                w.WriteString("target", h.Target);
                w.WriteString("failed_stage", h.FailedStage);
                if (h.Errno is { } errno) w.WriteNumber("errno", errno); else w.WriteNull("errno");
                w.WriteString("errno_name", h.ErrnoName);
                w.WriteString("reason", h.Reason);
                if (h.Fired is { } fired) w.WriteBoolean("fired", fired); else w.WriteNull("fired");
                w.WriteString("evidence", h.Evidence);
                Strings(w, "libbpf_log", h.LibbpfLog);
                w.WriteNumber("ms", Math.Round(h.Milliseconds, 2));
                w.WriteEndObject();
            }
            w.WriteEndArray();

            w.WriteStartObject("tcp_auto_hook");
            w.WriteString("hook", report.TcpAutoHook);
            w.WriteString("reason", report.TcpAutoReason);
            w.WriteEndObject();
            Strings(w, "leftovers", report.Leftovers);
            w.WriteEndObject();
        }
        output.WriteLine(Encoding.UTF8.GetString(buffer.ToArray()));
    }

    private static void Strings(Utf8JsonWriter w, string name, IEnumerable<string> values)
    {
        w.WriteStartArray(name);
        foreach (var v in values) w.WriteStringValue(v);
        w.WriteEndArray();
    }
}
