using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using Microsoft.Extensions.Options;

namespace DurableAgents.Activities.Agents;

/// <summary>Opens a TCP stream to an endpoint the fetcher has already approved (replaceable in tests).</summary>
public delegate ValueTask<Stream> SocketConnector(IPEndPoint endpoint, CancellationToken cancellationToken);

/// <summary>A page as fetched.</summary>
/// <param name="Url">The final URL (after redirects).</param>
/// <param name="Status">The HTTP status.</param>
/// <param name="ContentType">The media type.</param>
/// <param name="Body">The body (cut at the size limit).</param>
/// <param name="Truncated">True when the body was cut.</param>
public sealed record FetchedPage(Uri Url, int Status, string? ContentType, byte[] Body, bool Truncated);

/// <summary>
/// HTTP GET for tools that read the web on a model's behalf, refusing server-side request forgery before any
/// connection: only http/https, no credentials in URLs, only allow-listed hosts (when a list is configured),
/// and never a private, link-local, metadata, multicast or (unless allowed) loopback address — checked on the
/// resolved addresses at connect time (so DNS tricks do not help) and again for every redirect, which is
/// followed by hand. Size and time are capped.
/// </summary>
public sealed class SafeFetcher : IDisposable
{
    private readonly FetchOptions _options;
    private readonly HttpClient _http;

    /// <summary>Creates the fetcher.</summary>
    public SafeFetcher(IOptions<ToolOptions> options, SocketConnector? connector = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options.Value.Fetch;
        var connect = connector ?? ConnectAsync;
        var handler = new SocketsHttpHandler
        {
            AllowAutoRedirect = false,
            UseCookies = false,
            UseProxy = false,
            AutomaticDecompression = DecompressionMethods.All,
            PooledConnectionLifetime = TimeSpan.FromMinutes(2),
            ConnectCallback = async (context, cancellationToken) =>
            {
                var host = context.DnsEndPoint.Host;
                var addresses = IPAddress.TryParse(host.Trim('[', ']'), out var literal)
                    ? [literal]
                    : await Dns.GetHostAddressesAsync(host, cancellationToken).ConfigureAwait(false);
                if (addresses.Length == 0)
                {
                    throw new ToolException($"'{host}' does not resolve.");
                }

                foreach (var address in addresses)
                {
                    if (Forbidden(address, _options.AllowLoopback) is { } why)
                    {
                        throw new ToolException($"Refused: '{host}' resolves to {address}, {why}.");
                    }
                }

                return await connect(new IPEndPoint(addresses[0], context.DnsEndPoint.Port), cancellationToken).ConfigureAwait(false);
            },
        };
        _http = new HttpClient(handler) { Timeout = Timeout.InfiniteTimeSpan };
        _http.DefaultRequestHeaders.UserAgent.Add(new ProductInfoHeaderValue("DurableAgents", "1.0"));
    }

    /// <summary>Why <paramref name="address"/> may not be fetched, or null when it may.</summary>
    public static string? Forbidden(IPAddress address, bool allowLoopback)
    {
        ArgumentNullException.ThrowIfNull(address);
        if (address.IsIPv4MappedToIPv6)
        {
            address = address.MapToIPv4();
        }

        if (IPAddress.IsLoopback(address))
        {
            return allowLoopback ? null : "a loopback address";
        }

        if (address.AddressFamily == AddressFamily.InterNetwork)
        {
            var b = address.GetAddressBytes();
            return b switch
            {
                [0, ..] => "an unspecified address",
                [10, ..] => "a private address",
                [100, >= 64 and <= 127, ..] => "a shared (carrier-grade NAT) address",
                [169, 254, ..] => "a link-local (cloud metadata) address",
                [172, >= 16 and <= 31, ..] => "a private address",
                [192, 0, 0, _] => "an IETF protocol address",
                [192, 168, ..] => "a private address",
                [198, 18 or 19, ..] => "a benchmarking address",
                [>= 224, ..] => "a multicast or reserved address",
                _ => null,
            };
        }

        if (address.AddressFamily == AddressFamily.InterNetworkV6)
        {
            var b = address.GetAddressBytes();
            if (address.Equals(IPAddress.IPv6None) || address.Equals(IPAddress.IPv6Any))
            {
                return "an unspecified address";
            }

            if (address.IsIPv6LinkLocal || address.IsIPv6SiteLocal)
            {
                return "a link-local address";
            }

            if (address.IsIPv6Multicast)
            {
                return "a multicast address";
            }

            if ((b[0] & 0xfe) == 0xfc)
            {
                return "a unique-local (private) address";
            }

            if ((b[0] == 0x20 && b[1] == 0x02) || (b[0] == 0 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b))
            {
                return "an address embedding an IPv4 address (6to4/NAT64)";
            }

            return null;
        }

        return "not an IP address";
    }

    /// <summary>Fetches <paramref name="url"/> (GET), following redirects that pass the same checks.</summary>
    /// <exception cref="ToolException">Refused, unreachable, too slow, or an HTTP error.</exception>
    public async Task<FetchedPage> GetAsync(string url, CancellationToken cancellationToken = default)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(_options.Timeout);
        var current = Check(url);
        try
        {
            for (var redirects = 0; ; redirects++)
            {
                using var request = new HttpRequestMessage(HttpMethod.Get, current);
                using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token).ConfigureAwait(false);
                var status = (int)response.StatusCode;
                if (status is >= 300 and < 400 && response.Headers.Location is { } location)
                {
                    if (redirects >= _options.MaxRedirects)
                    {
                        throw new ToolException($"Too many redirects (more than {_options.MaxRedirects}).");
                    }

                    current = Check(new Uri(current, location).ToString());
                    continue;
                }

                var (body, truncated) = await ReadCappedAsync(response.Content, timeout.Token).ConfigureAwait(false);
                return new FetchedPage(current, status, response.Content.Headers.ContentType?.MediaType, body, truncated);
            }
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            throw new ToolException($"Fetching {current} took longer than {_options.Timeout.TotalSeconds:0.#} seconds.");
        }
        catch (HttpRequestException ex) when (ex.InnerException is ToolException refused)
        {
            throw refused;
        }
        catch (HttpRequestException ex)
        {
            throw new ToolException($"Fetching {current} failed: {ex.HttpRequestError}.", ex);
        }
    }

    /// <inheritdoc />
    public void Dispose() => _http.Dispose();

    /// <summary>Checks a URL before any connection: scheme, credentials, allow-list.</summary>
    private Uri Check(string url)
    {
        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri))
        {
            throw new ToolException($"'{Shorten(url)}' is not an absolute URL.");
        }

        if (uri.Scheme is not ("http" or "https"))
        {
            throw new ToolException($"Refused: only http and https URLs may be fetched, not {uri.Scheme}.");
        }

        if (!string.IsNullOrEmpty(uri.UserInfo))
        {
            throw new ToolException("Refused: URLs with credentials may not be fetched.");
        }

        var host = uri.IdnHost.TrimEnd('.');
        if (_options.AllowedHosts.Count > 0 && !_options.AllowedHosts.Any(h => HostMatches(h, host)))
        {
            throw new ToolException($"Refused: host '{host}' is not in the allowed hosts (DurableAgents:Tools:Fetch:AllowedHosts).");
        }

        if (IPAddress.TryParse(uri.Host.Trim('[', ']'), out var literal) && Forbidden(literal, _options.AllowLoopback) is { } why)
        {
            throw new ToolException($"Refused: {literal} is {why}.");
        }

        return uri;
    }

    private static bool HostMatches(string pattern, string host) =>
        pattern.StartsWith("*.", StringComparison.Ordinal)
            ? host.EndsWith(pattern[1..], StringComparison.OrdinalIgnoreCase)
            : string.Equals(pattern, host, StringComparison.OrdinalIgnoreCase);

    private async Task<(byte[] Body, bool Truncated)> ReadCappedAsync(HttpContent content, CancellationToken cancellationToken)
    {
        var stream = await content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
        await using var _ = stream.ConfigureAwait(false);
        var max = _options.MaxResponseBytes;
        var buffer = new MemoryStream();
        var chunk = new byte[16 * 1024];
        int read;
        while ((read = await stream.ReadAsync(chunk, cancellationToken).ConfigureAwait(false)) > 0)
        {
            var take = Math.Min(read, max - (int)buffer.Length);
            buffer.Write(chunk, 0, take);
            if (take < read || buffer.Length >= max)
            {
                return (buffer.ToArray(), true);
            }
        }

        return (buffer.ToArray(), false);
    }

    private static async ValueTask<Stream> ConnectAsync(IPEndPoint endpoint, CancellationToken cancellationToken)
    {
        var socket = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(endpoint, cancellationToken).ConfigureAwait(false);
            return new NetworkStream(socket, ownsSocket: true);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    private static string Shorten(string s) => s.Length <= 200 ? s : s[..200] + "…";
}
