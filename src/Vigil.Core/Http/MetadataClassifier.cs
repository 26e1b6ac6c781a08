namespace Vigil.Core.Http;

/// <summary>What a request to a metadata endpoint is (facts: /work/shared/reference/metadata-endpoints.md,
/// summarised in docs/events.md). Several can hold at once (an IMDSv2 GET of the credentials path).</summary>
[Flags]
public enum MetadataClass : ushort
{
    None = 0,
    /// <summary>AWS: PUT /latest/api/token with X-aws-ec2-metadata-token-ttl-seconds.</summary>
    AwsTokenRequest = 1,
    /// <summary>AWS: the request carries X-aws-ec2-metadata-token.</summary>
    ImdsV2 = 2,
    /// <summary>AWS-style GET /latest/... without a token header (IMDSv1).</summary>
    ImdsV1 = 4,
    /// <summary>Azure IMDS: Metadata: true.</summary>
    Azure = 8,
    /// <summary>Google Cloud: Metadata-Flavor: Google.</summary>
    Gcp = 16,
    /// <summary>Oracle OCI v2: path /opc/v2/ with Authorization: Bearer Oracle.</summary>
    OracleV2 = 32,
    /// <summary>Alibaba Cloud: PUT /latest/api/token with X-aliyun-ecs-metadata-token-ttl-seconds.</summary>
    AlibabaTokenRequest = 64,
    /// <summary>Alibaba Cloud: the request carries X-aliyun-ecs-metadata-token.</summary>
    AlibabaToken = 128,
    /// <summary>A path that yields credentials, user data or identity documents/tokens (<see cref="MetadataClassifier.SensitivePath"/>).</summary>
    SensitivePath = 256,
    /// <summary>X-Forwarded-For present: the request came through a proxy (an SSRF path).</summary>
    ForwardedFor = 512,
}

public static class MetadataClassifier
{
    /// <summary>Names of the classes as outputs print them, in flag order.</summary>
    public static readonly (MetadataClass Class, string Name)[] Names =
    [
        (MetadataClass.AwsTokenRequest, "aws_token_request"),
        (MetadataClass.ImdsV2, "imdsv2"),
        (MetadataClass.ImdsV1, "imdsv1"),
        (MetadataClass.Azure, "azure"),
        (MetadataClass.Gcp, "gcp"),
        (MetadataClass.OracleV2, "oracle_v2"),
        (MetadataClass.AlibabaTokenRequest, "alibaba_token_request"),
        (MetadataClass.AlibabaToken, "alibaba_token"),
        (MetadataClass.SensitivePath, "sensitive_path"),
        (MetadataClass.ForwardedFor, "x_forwarded_for"),
    ];

    /// <summary>Sensitive path prefixes (matched on the normalised path) and what they yield.</summary>
    private static readonly (byte[] Prefix, string Kind)[] Sensitive =
    [
        ("/latest/meta-data/iam/security-credentials"u8.ToArray(), "aws_credentials"),
        ("/latest/user-data"u8.ToArray(), "aws_user_data"),
        ("/latest/dynamic/instance-identity/"u8.ToArray(), "aws_identity_document"),
        ("/latest/meta-data/ram/security-credentials"u8.ToArray(), "alibaba_credentials"),
        ("/metadata/identity/oauth2/token"u8.ToArray(), "azure_identity_token"),
        ("/openstack/latest/user_data"u8.ToArray(), "openstack_user_data"),
        ("/opc/v1/instance/metadata/user_data"u8.ToArray(), "oracle_user_data"),
        ("/opc/v2/instance/metadata/user_data"u8.ToArray(), "oracle_user_data"),
        ("/opc/v2/identity/"u8.ToArray(), "oracle_identity"),
    ];

    private const int MaxPath = 2048;

    /// <summary>Classifies a parsed request. <paramref name="sensitive"/> names the sensitive path kind, or null.</summary>
    public static MetadataClass Classify(ReadOnlySpan<byte> buf, in HttpRequest req, out string? sensitive)
    {
        sensitive = null;
        if (req.Status == HttpParseStatus.NotHttp) return MetadataClass.None;
        var c = MetadataClass.None;
        Span<byte> pathBuf = stackalloc byte[Math.Min(req.Target.Length, MaxPath)];
        var path = NormalisedPath(req.Target.Of(buf), pathBuf);
        var method = req.Method.Of(buf);

        bool awsToken = req.Has(buf, "X-aws-ec2-metadata-token"u8);
        bool aliToken = req.Has(buf, "X-aliyun-ecs-metadata-token"u8);
        if (awsToken) c |= MetadataClass.ImdsV2;
        if (aliToken) c |= MetadataClass.AlibabaToken;
        if (method.SequenceEqual("PUT"u8) && path.SequenceEqual("/latest/api/token"u8))
        {
            if (req.Has(buf, "X-aws-ec2-metadata-token-ttl-seconds"u8)) c |= MetadataClass.AwsTokenRequest;
            if (req.Has(buf, "X-aliyun-ecs-metadata-token-ttl-seconds"u8)) c |= MetadataClass.AlibabaTokenRequest;
        }
        if (method.SequenceEqual("GET"u8) && path.StartsWith("/latest/"u8) && !awsToken && !aliToken)
            c |= MetadataClass.ImdsV1;
        if (Ascii.EqualsIgnoreCase(req.Value(buf, "Metadata"u8), "true"u8)) c |= MetadataClass.Azure;
        if (Ascii.EqualsIgnoreCase(req.Value(buf, "Metadata-Flavor"u8), "Google"u8)) c |= MetadataClass.Gcp;
        if (path.StartsWith("/opc/v2/"u8) && Ascii.EqualsIgnoreCase(req.Value(buf, "Authorization"u8), "Bearer Oracle"u8))
            c |= MetadataClass.OracleV2;
        if (req.Has(buf, "X-Forwarded-For"u8)) c |= MetadataClass.ForwardedFor;

        foreach (var (prefix, kind) in Sensitive)
            if (path.StartsWith(prefix)) { sensitive = kind; break; }
        // GCP: /computeMetadata/v1/instance/service-accounts/<account>/token (and .../identity).
        if (sensitive is null && path.StartsWith("/computeMetadata/v1/instance/service-accounts/"u8))
        {
            var rest = path["/computeMetadata/v1/instance/service-accounts/"u8.Length..];
            int slash = rest.IndexOf((byte)'/');
            if (slash > 0 && (rest[(slash + 1)..].StartsWith("token"u8) || rest[(slash + 1)..].StartsWith("identity"u8)))
                sensitive = "gcp_service_account_token";
        }
        if (sensitive is null && path.StartsWith("/computeMetadata/v1/instance/attributes/user-data"u8)) sensitive = "gcp_user_data";
        if (sensitive is not null) c |= MetadataClass.SensitivePath;
        return c;
    }

    /// <summary>The path of a request target as a server resolves it, so spellings like
    /// <c>//latest/./meta-data/%69am/</c> cannot hide a sensitive path: absolute-form scheme and authority
    /// dropped, query dropped, %XX decoded, repeated slashes and "." segments removed, ".." resolved.</summary>
    public static ReadOnlySpan<byte> NormalisedPath(ReadOnlySpan<byte> target, Span<byte> output)
    {
        int q = target.IndexOfAny((byte)'?', (byte)'#');
        if (q >= 0) target = target[..q];
        if (Ascii.StartsWithIgnoreCase(target, "http://"u8) || Ascii.StartsWithIgnoreCase(target, "https://"u8))
        {
            var rest = target[(target.IndexOf("//"u8) + 2)..];
            int slash = rest.IndexOf((byte)'/');
            target = slash < 0 ? "/"u8 : rest[slash..];
        }
        int n = 0;
        for (int i = 0; i < target.Length && n < output.Length; i++)
        {
            byte b = target[i];
            if (b == (byte)'%' && i + 2 < target.Length && Hex(target[i + 1]) is int hi && Hex(target[i + 2]) is int lo)
            {
                b = (byte)(hi << 4 | lo);
                i += 2;
            }
            if (b == (byte)'/' && n > 0 && output[n - 1] == (byte)'/') continue;
            output[n++] = b;
            // "/./" and "/../" once the segment is complete.
            if (b == (byte)'/' || i == target.Length - 1)
            {
                int end = b == (byte)'/' ? n - 1 : n; // segment end (exclusive)
                int start = output[..end].LastIndexOf((byte)'/') + 1;
                var seg = output[start..end];
                if (seg.SequenceEqual("."u8)) n = start;
                else if (seg.SequenceEqual(".."u8))
                {
                    int prev = start >= 2 ? output[..(start - 1)].LastIndexOf((byte)'/') + 1 : start;
                    n = Math.Max(prev, 1);
                }
            }
        }
        return output[..n];
    }

    private static int? Hex(byte b) => b switch
    {
        >= (byte)'0' and <= (byte)'9' => b - '0',
        >= (byte)'a' and <= (byte)'f' => b - 'a' + 10,
        >= (byte)'A' and <= (byte)'F' => b - 'A' + 10,
        _ => null,
    };
}
