using System.Text;
using Vigil.Core.Policy;
using Vigil.Wire;

namespace Vigil.Tests.Pure.Policy;

/// <summary>The text kept in the kernel with each policy slot: written by one process, read by another.</summary>
public class AppliedPolicyTests
{
    private static readonly DateTimeOffset At = new(2026, 12, 4, 21, 0, 0, TimeSpan.Zero);

    private static AppliedPolicy Sample(string? yaml = "version: 1\n") => new("/etc/vigil/policy.yaml", "vigil policy apply (pid 7)", At,
        [new CompiledRule(0, "metadata-guard", "cloud-metadata", GuardMode.Enforce), new CompiledRule(3, "audit-internal", "internal", GuardMode.Audit)], yaml);

    [Fact]
    public void RoundTripsEveryField()
    {
        var back = AppliedPolicy.Parse(Sample().ToUtf8());
        Assert.NotNull(back);
        Assert.Equal("/etc/vigil/policy.yaml", back.Source);
        Assert.Equal("vigil policy apply (pid 7)", back.AppliedBy);
        Assert.Equal(At, back.AppliedAt);
        Assert.Equal(Sample().Rules, back.Rules);
        Assert.Equal("version: 1\n", back.Yaml);
    }

    [Fact]
    public void ThePolicyYamlIsDroppedBeforeTheRuleNamesWhenTheSlotIsTooSmall()
    {
        var big = Sample(new string('#', GuardConstants.PolicyTextMax));
        var bytes = big.ToUtf8();
        Assert.True(bytes.Length <= GuardConstants.PolicyTextMax);
        var back = AppliedPolicy.Parse(bytes)!;
        Assert.Null(back.Yaml);
        Assert.Equal(2, back.Rules.Count);
        Assert.Throws<ArgumentException>(() => Sample(null).ToUtf8(maxBytes: 40));
    }

    [Theory]
    [InlineData("")]
    [InlineData("not json")]
    [InlineData("{\"version\":2,\"rules\":[]}")]
    [InlineData("{\"version\":1}")]
    [InlineData("{\"version\":1,\"source\":\"s\",\"applied_by\":\"b\",\"applied_at\":\"yesterday\",\"rules\":[]}")]
    [InlineData("[1,2,3]")]
    public void DamagedOrForeignTextIsNullNeverAnException(string text) =>
        Assert.Null(AppliedPolicy.Parse(Encoding.UTF8.GetBytes(text)));
}
