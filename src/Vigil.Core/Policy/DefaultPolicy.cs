namespace Vigil.Core.Policy;

/// <summary>The policy that applies when none is given: guard <c>cloud-metadata</c> in audit mode, allowing root.</summary>
public static class DefaultPolicy
{
    /// <summary>The name errors and <c>vigil policy show</c> use for the embedded policy.</summary>
    public const string Name = "(default policy)";

    public static string Text { get; } = ReadResource();

    public static PolicyLoadResult Load(IHostPrincipals host) => PolicyLoader.Load(Text, Name, host);

    private static string ReadResource()
    {
        using var stream = typeof(DefaultPolicy).Assembly.GetManifestResourceStream("policy/default-policy.yaml")
            ?? throw new InvalidOperationException("the default policy is not embedded in Vigil.Core");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }
}
