namespace Vigil.Core;

/// <summary>Bad user input (flag value, CIDR, name). The CLI prints the message on one line and exits with 2.</summary>
public sealed class UsageException(string message) : Exception(message);
