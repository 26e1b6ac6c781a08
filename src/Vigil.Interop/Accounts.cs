using System.Runtime.InteropServices;

namespace Vigil.Interop;

/// <summary>User and group names through libc (getpwnam_r/getgrnam_r), so every NSS source the
/// system uses (files, systemd, LDAP, sssd) answers, as it does for <c>id</c>.</summary>
public static unsafe partial class Accounts
{
    /// <summary>The uid of a user name, or null when NSS knows no such user.</summary>
    public static uint? FindUser(string name)
    {
        if (!Plausible(name)) return null;
        for (nuint size = 1024; size <= MaxBuffer; size *= 4)
        {
            var buffer = new byte[size];
            Passwd pwd;
            Passwd* result;
            int rc;
            fixed (byte* b = buffer) rc = getpwnam_r(name, &pwd, b, size, &result);
            if (rc == ERANGE) continue;
            if (rc is Errno.ENOENT or Errno.ESRCH) return null; // "not found" on some NSS modules
            if (rc != 0) throw new IOException($"looking up user '{name}': {Errno.Describe(rc)}");
            return result == null ? null : pwd.Uid;
        }
        throw new IOException($"looking up user '{name}': the entry is larger than {MaxBuffer} bytes");
    }

    /// <summary>The gid of a group name, or null when NSS knows no such group.</summary>
    public static uint? FindGroup(string name)
    {
        if (!Plausible(name)) return null;
        for (nuint size = 1024; size <= MaxBuffer; size *= 4)
        {
            var buffer = new byte[size];
            Group grp;
            Group* result;
            int rc;
            fixed (byte* b = buffer) rc = getgrnam_r(name, &grp, b, size, &result);
            if (rc == ERANGE) continue;
            if (rc is Errno.ENOENT or Errno.ESRCH) return null; // "not found" on some NSS modules
            if (rc != 0) throw new IOException($"looking up group '{name}': {Errno.Describe(rc)}");
            return result == null ? null : grp.Gid;
        }
        throw new IOException($"looking up group '{name}': the entry is larger than {MaxBuffer} bytes");
    }

    private const int ERANGE = 34;
    private const uint MaxBuffer = 1 << 20;

    private static bool Plausible(string name) => name.Length > 0 && !name.Contains('\0');

    // struct passwd and struct group of LP64 glibc.
    [StructLayout(LayoutKind.Sequential)]
    private struct Passwd
    {
        public nint Name, Password;
        public uint Uid, Gid;
        public nint Gecos, Dir, Shell;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct Group
    {
        public nint Name, Password;
        public uint Gid;
        public nint Members;
    }

    [LibraryImport("libc", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int getpwnam_r(string name, Passwd* pwd, byte* buf, nuint buflen, Passwd** result);

    [LibraryImport("libc", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int getgrnam_r(string name, Group* grp, byte* buf, nuint buflen, Group** result);
}
