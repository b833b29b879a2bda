using System.Net;
using System.Security.Cryptography;
using System.Text;
using DurableAgents.Engine.Hosting;
using Grpc.AspNetCore.Server;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace DurableAgents.Engine.Grpc;

/// <summary>
/// Adds the Durable Task gRPC endpoint to a host that runs the DurableAgents backend. With
/// <c>DurableAgents:Grpc:Enabled</c> false (the default) nothing changes.
/// </summary>
public static class GrpcEndpointExtensions
{
    /// <summary>
    /// Reads <c>DurableAgents:Grpc</c>; when enabled, adds a cleartext HTTP/2 listener at its
    /// address and port (the host's other addresses are kept), the gRPC service, and the API-key
    /// check, and makes this host's own worker take only the tasks it registers.
    /// </summary>
    /// <exception cref="InvalidOperationException">The address is not an IP address, or it is beyond loopback without an API key.</exception>
    public static WebApplicationBuilder AddDurableAgentsGrpc(this WebApplicationBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var options = builder.Configuration.GetSection(GrpcEndpointOptions.SectionName).Get<GrpcEndpointOptions>() ?? new GrpcEndpointOptions();
        builder.Services.AddOptions<GrpcEndpointOptions>().BindConfiguration(GrpcEndpointOptions.SectionName).ValidateDataAnnotations().ValidateOnStart();
        if (!options.Enabled)
        {
            return builder;
        }

        if (!IPAddress.TryParse(options.Address, out var address))
        {
            throw new InvalidOperationException($"DurableAgents:Grpc:Address must be an IP address (127.0.0.1, ::1, 0.0.0.0 or ::), not '{options.Address}'.");
        }

        if (!IPAddress.IsLoopback(address) && string.IsNullOrEmpty(options.ApiKey))
        {
            throw new InvalidOperationException($"DurableAgents:Grpc:Address {address} is beyond loopback: set DurableAgents:Grpc:ApiKey (callers send it as 'authorization: Bearer <key>'), and put TLS in front of the endpoint in production.");
        }

        var endpoint = new GrpcListener();
        builder.Services.AddSingleton(endpoint);
        builder.Services.Configure<DurableAgentsOptions>(o => o.TakeRegisteredTasksOnly = true);
        builder.Services.AddSingleton<WorkItemStreams>();
        builder.Services.AddSingleton<ApiKeyInterceptor>();
        builder.Services.AddGrpc(o =>
        {
            o.Interceptors.Add<ApiKeyInterceptor>();
            o.MaxReceiveMessageSize = 16 * 1024 * 1024;
            o.MaxSendMessageSize = 16 * 1024 * 1024;
            o.EnableDetailedErrors = false;
        });

        // Explicit listeners replace the URLs Kestrel was given, so those are listened on explicitly too.
        var urls = builder.WebHost.GetSetting(WebHostDefaults.ServerUrlsKey);
        builder.WebHost.ConfigureKestrel(k =>
        {
            foreach (var url in (urls ?? "http://localhost:5000").Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                ListenOn(k, url);
            }

            k.Listen(address, options.Port, l =>
            {
                l.Protocols = HttpProtocols.Http2;
                endpoint.Options = l;
            });
        });
        return builder;
    }

    /// <summary>Maps the gRPC service (only on its own listener) and logs where it listens once the host has started.</summary>
    public static WebApplication MapDurableAgentsGrpc(this WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        var endpoint = app.Services.GetService<GrpcListener>();
        if (endpoint is null)
        {
            return app;
        }

        // The gRPC listener serves gRPC only, and gRPC is served on it only.
        app.Use((context, next) =>
        {
            var onGrpcPort = endpoint.Options?.IPEndPoint is { } ep && context.Connection.LocalPort == ep.Port;
            var isGrpc = context.Request.ContentType?.StartsWith("application/grpc", StringComparison.OrdinalIgnoreCase) == true;
            if (onGrpcPort != isGrpc)
            {
                context.Response.StatusCode = StatusCodes.Status404NotFound;
                return Task.CompletedTask;
            }

            return next(context);
        });
        app.MapGrpcService<TaskHubSidecar>();
        app.Lifetime.ApplicationStarted.Register(() =>
        {
            var options = app.Services.GetRequiredService<IOptions<GrpcEndpointOptions>>().Value;
            var where = endpoint.Options?.IPEndPoint is { } ep ? $"http://{(ep.Address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? $"[{ep.Address}]" : ep.Address.ToString())}:{ep.Port}" : "(unknown)";
            app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("DurableAgents.Engine.Grpc")
                .GrpcListening(where, string.IsNullOrEmpty(options.ApiKey) ? "loopback only, no API key" : "API key required");
        });
        return app;
    }

    private static void ListenOn(KestrelServerOptions k, string url)
    {
        var normalized = url.Replace("://*", "://0.0.0.0", StringComparison.Ordinal).Replace("://+", "://0.0.0.0", StringComparison.Ordinal);
        if (!Uri.TryCreate(normalized, UriKind.Absolute, out var uri) || uri.Scheme != Uri.UriSchemeHttp)
        {
            throw new InvalidOperationException($"With the gRPC endpoint on, the host's URLs must be plain http:// addresses (TLS terminates in front of it); '{url}' is not.");
        }

        if (uri.IsLoopback && !IPAddress.TryParse(uri.Host, out _))
        {
            k.ListenLocalhost(uri.Port);
        }
        else if (IPAddress.TryParse(uri.Host.Trim('[', ']'), out var ip))
        {
            k.Listen(ip, uri.Port);
        }
        else
        {
            k.ListenAnyIP(uri.Port);
        }
    }

    /// <summary>Where the gRPC listener is (its end point is known once Kestrel has bound it).</summary>
    internal sealed class GrpcListener
    {
        public ListenOptions? Options { get; set; }
    }

    /// <summary>Refuses calls without the configured key (when one is configured), in constant time.</summary>
    private sealed class ApiKeyInterceptor : Interceptor
    {
        private readonly byte[]? _key;
        private readonly ILogger _logger;

        public ApiKeyInterceptor(IOptions<GrpcEndpointOptions> options, ILoggerFactory loggerFactory)
        {
            _key = string.IsNullOrEmpty(options.Value.ApiKey) ? null : SHA256.HashData(Encoding.UTF8.GetBytes(options.Value.ApiKey));
            _logger = loggerFactory.CreateLogger("DurableAgents.Engine.Grpc");
        }

        public override Task<TResponse> UnaryServerHandler<TRequest, TResponse>(TRequest request, ServerCallContext context, UnaryServerMethod<TRequest, TResponse> continuation)
        {
            Check(context);
            return continuation(request, context);
        }

        public override Task ServerStreamingServerHandler<TRequest, TResponse>(TRequest request, IServerStreamWriter<TResponse> responseStream, ServerCallContext context, ServerStreamingServerMethod<TRequest, TResponse> continuation)
        {
            Check(context);
            return continuation(request, responseStream, context);
        }

        private void Check(ServerCallContext context)
        {
            if (_key is null)
            {
                return;
            }

            var given = context.RequestHeaders.GetValue("authorization") is { } auth && auth.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase)
                ? auth["Bearer ".Length..].Trim()
                : context.RequestHeaders.GetValue("x-api-key");
            if (given is null || !CryptographicOperations.FixedTimeEquals(SHA256.HashData(Encoding.UTF8.GetBytes(given)), _key))
            {
                _logger.Unauthenticated(context.Method);
                throw new RpcException(new Status(StatusCode.Unauthenticated, "This endpoint requires an API key: send it as 'authorization: Bearer <key>' (or 'x-api-key') call metadata."));
            }
        }
    }
}
