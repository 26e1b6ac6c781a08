namespace Vigil.Core.Policy;

public enum DiagnosticSeverity { Error, Warning }

/// <summary>One finding about a policy file, printed as <c>file:line:col: field: message</c>
/// (warnings say so after the field).</summary>
public sealed record PolicyDiagnostic(string File, SourcePosition Position, string Field, string Message, DiagnosticSeverity Severity = DiagnosticSeverity.Error)
{
    public bool IsError => Severity == DiagnosticSeverity.Error;

    public override string ToString() => Severity == DiagnosticSeverity.Error
        ? $"{File}:{Position.Line}:{Position.Column}: {Field}: {Message}"
        : $"{File}:{Position.Line}:{Position.Column}: {Field}: warning: {Message}";
}

/// <summary>The result of loading a policy: the policy when there is no error, and every finding.</summary>
public sealed record PolicyLoadResult(GuardPolicy? Policy, IReadOnlyList<PolicyDiagnostic> Diagnostics)
{
    public bool IsValid => Policy is not null;
    public IEnumerable<PolicyDiagnostic> Errors => Diagnostics.Where(d => d.IsError);
    public IEnumerable<PolicyDiagnostic> Warnings => Diagnostics.Where(d => !d.IsError);
}
