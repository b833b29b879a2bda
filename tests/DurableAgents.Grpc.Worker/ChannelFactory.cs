using Grpc.Core;
using Grpc.Net.Client;

namespace DurableAgents.Grpc.Worker;

/// <summary>A gRPC channel to the endpoint, with the API key in every call's metadata when given.</summary>
public static class ChannelFactory
{
    /// <summary>Creates the channel.</summary>
    public static GrpcChannel Create(string address, string? apiKey)
    {
        var options = new GrpcChannelOptions { MaxReceiveMessageSize = 16 * 1024 * 1024 };
        if (apiKey is not null)
        {
            var credentials = CallCredentials.FromInterceptor((_, metadata) =>
            {
                metadata.Add("authorization", $"Bearer {apiKey}");
                return Task.CompletedTask;
            });
            options.Credentials = ChannelCredentials.Create(ChannelCredentials.Insecure, credentials);
            options.UnsafeUseInsecureChannelCallCredentials = true; // loopback in tests; use TLS in production
        }

        return GrpcChannel.ForAddress(address, options);
    }
}
