using System.Net;
using System.Net.Sockets;

namespace DurableAgents.Functions.Tests;

/// <summary>
/// A TCP forwarder on loopback in front of host processes, standing in for a load balancer: the browser keeps one
/// address while the test moves the traffic to another host. Connects only to 127.0.0.1.
/// </summary>
internal sealed class LoopbackForwarder : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _accepting;
    private volatile int _targetPort;
    private int _connections;

    public LoopbackForwarder(Uri target)
    {
        ArgumentNullException.ThrowIfNull(target);
        _targetPort = target.Port;
        _listener.Start();
        _accepting = AcceptAsync();
    }

    public Uri BaseAddress => new($"http://127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}/");

    /// <summary>Connections accepted so far.</summary>
    public int Connections => Volatile.Read(ref _connections);

    /// <summary>New connections go to this host from now on.</summary>
    public void Retarget(Uri target)
    {
        ArgumentNullException.ThrowIfNull(target);
        _targetPort = target.Port;
    }

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try
            {
                client = await _listener.AcceptTcpClientAsync(_stop.Token);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            Interlocked.Increment(ref _connections);
            _ = PumpAsync(client, _targetPort);
        }
    }

    private async Task PumpAsync(TcpClient client, int port)
    {
        using (client)
        using (var upstream = new TcpClient())
        {
            try
            {
                await upstream.ConnectAsync(IPAddress.Loopback, port, _stop.Token);
                using var done = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
                var a = client.GetStream().CopyToAsync(upstream.GetStream(), done.Token);
                var b = upstream.GetStream().CopyToAsync(client.GetStream(), done.Token);
                await Task.WhenAny(a, b);
                await done.CancelAsync(); // one side closed: close both, as a balancer does when a backend dies
            }
            catch (Exception ex) when (ex is SocketException or IOException or OperationCanceledException)
            {
                // the host went away or the test stopped
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        await _accepting;
        _stop.Dispose();
    }
}
