namespace Vigil.Tests.Kernel.Support;

/// <summary>Per-hook results of a kernel-matrix test that proves several hooks with one setup (one vigil
/// start: user space runs ~15× slower in the VMs). Each check runs whatever the others did and writes
/// "matrix hook SENSOR/HOOK: passed" or "matrix hook SENSOR/HOOK: FAILED: reason" to the test output,
/// which eng/kernels-table.py turns into the rows of docs/kernels.md; <see cref="AssertAll"/> then fails
/// the test if any check failed.
///
/// The hooks a test proves are declared on it as traits, so the table has their rows even when the
/// test fails before its first check (e.g. the verifier refused the object):
/// <c>[Trait(MatrixHooks.Trait, "guard/connect4 cgroup_sock_addr")]</c> = sensor/hook, then the
/// `vigil doctor` probes that offer it (the table's "available" column; none = not probed).</summary>
public sealed class MatrixHooks(string sensor)
{
    public const string Trait = "MatrixHook";
    public const string OutputPrefix = "matrix hook ";
    private readonly List<string> _failures = new();

    public void Check(string hook, Action check)
    {
        string line;
        try
        {
            check();
            line = $"{OutputPrefix}{sensor}/{hook}: passed";
        }
        catch (Exception e)
        {
            _failures.Add($"{hook}: {e.Message}");
            line = $"{OutputPrefix}{sensor}/{hook}: FAILED: {e.Message.Split('\n')[0].Trim()}";
        }
        TestContext.Current.TestOutputHelper?.WriteLine(line);
    }

    public void AssertAll() =>
        Assert.True(_failures.Count == 0, $"{sensor} hooks failed:\n" + string.Join("\n", _failures));
}
