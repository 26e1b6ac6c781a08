using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;
using Vigil.Interop.Native;

namespace Vigil.Interop;

public enum LibbpfLogLevel { Warning = 0, Info = 1, Debug = 2 }

/// <summary>Process-wide libbpf set-up: version check and routing of libbpf's log into Vigil's logging.</summary>
public static unsafe class LibbpfRuntime
{
    public const int RequiredMajor = 1, RequiredMinor = 1;
    private static int _initialized;
    [ThreadStatic] private static StringBuilder? _capture;
    [ThreadStatic] private static byte* _buffer;

    /// <summary>Receives libbpf's messages (one call per message, trailing newline removed).</summary>
    public static Action<LibbpfLogLevel, string>? Log { get; set; }

    /// <summary>Loads libbpf, checks its version and installs the log callback. Idempotent.</summary>
    public static (uint Major, uint Minor) EnsureLoaded()
    {
        uint major, minor;
        try
        {
            major = LibBpf.libbpf_major_version();
            minor = LibBpf.libbpf_minor_version();
        }
        catch (DllNotFoundException)
        {
            throw new BpfException("loading libbpf.so.1", Errno.ENOENT,
                "libbpf 1.x is not installed: apt-get install libbpf1 (Debian/Ubuntu) or dnf install libbpf (Fedora/RHEL)");
        }
        if (major < RequiredMajor || (major == RequiredMajor && minor < RequiredMinor))
            throw new BpfException("checking libbpf version", Errno.EINVAL,
                $"libbpf {major}.{minor} is too old; Vigil needs {RequiredMajor}.{RequiredMinor} or newer (apt-get install libbpf1)");
        if (Interlocked.Exchange(ref _initialized, 1) == 0)
            LibBpf.libbpf_set_print((nint)(delegate* unmanaged<int, byte*, nint, int>)&Print);
        return (major, minor);
    }

    /// <summary>Collects libbpf's messages on this thread while <paramref name="action"/> runs (for verifier logs).</summary>
    internal static T Capture<T>(Func<T> action, out string log)
    {
        var previous = _capture;
        _capture = new StringBuilder();
        try { return action(); }
        finally
        {
            log = _capture.ToString();
            _capture = previous;
        }
    }

    [UnmanagedCallersOnly]
    private static int Print(int level, byte* format, nint args)
    {
        // A va_list is a pointer on x86-64 and may be consumed once: format it exactly once,
        // into a buffer large enough for a whole verifier log (libbpf prints it as one message).
        const int size = 8 << 20;
        if (_buffer == null) _buffer = (byte*)NativeMemory.Alloc(size);
        byte* buf = _buffer;
        int n = Libc.vsnprintf(buf, size, format, args);
        if (n <= 0) return 0;
        var text = Encoding.UTF8.GetString(buf, Math.Min(n, size - 1)).TrimEnd('\n');
        _capture?.AppendLine(text);
        if (level <= (int)LibbpfLogLevel.Info || _capture is null)
            Log?.Invoke((LibbpfLogLevel)level, text);
        return 0;
    }
}
