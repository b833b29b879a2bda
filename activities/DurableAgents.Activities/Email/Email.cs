using System.Collections.Concurrent;
using MailKit.Net.Smtp;
using MailKit.Security;
using Microsoft.Extensions.Options;
using MimeKit;

namespace DurableAgents.Activities.Email;

/// <summary>An email to send.</summary>
public sealed record EmailMessage(string To, string Subject, string TextBody, string HtmlBody);

/// <summary>Sends email.</summary>
public interface IEmailSender
{
    /// <summary>Sends one message.</summary>
    Task SendAsync(EmailMessage message, CancellationToken cancellationToken);
}

/// <summary>SMTP settings (DurableAgents:Smtp). The password comes from Key Vault in production and is never logged.</summary>
public sealed class SmtpOptions
{
    /// <summary>The configuration section.</summary>
    public const string SectionName = "DurableAgents:Smtp";

    /// <summary>SMTP host; empty selects the development outbox.</summary>
    public string? Host { get; set; }

    /// <summary>Port. The default value is 587 (submission with STARTTLS).</summary>
    public int Port { get; set; } = 587;

    /// <summary>User name, if the server needs one.</summary>
    public string? Username { get; set; }

    /// <summary>Password.</summary>
    public string? Password { get; set; }

    /// <summary>Sender address.</summary>
    public string From { get; set; } = "durableagents@localhost";
}

/// <summary>Sends through an SMTP server with MailKit, upgrading to TLS with STARTTLS when the server offers it.</summary>
public sealed class SmtpEmailSender(IOptions<SmtpOptions> options) : IEmailSender
{
    /// <inheritdoc />
    public async Task SendAsync(EmailMessage message, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(message);
        var o = options.Value;
        var mime = new MimeMessage();
        mime.From.Add(MailboxAddress.Parse(o.From));
        mime.To.Add(MailboxAddress.Parse(message.To));
        mime.Subject = message.Subject;
        mime.Body = new BodyBuilder { TextBody = message.TextBody, HtmlBody = message.HtmlBody }.ToMessageBody();
        using var client = new SmtpClient();
        var host = o.Host ?? throw new InvalidOperationException("DurableAgents:Smtp:Host is not set.");
        await client.ConnectAsync(host, o.Port, SecureSocketOptions.StartTlsWhenAvailable, cancellationToken).ConfigureAwait(false);
        if (!string.IsNullOrEmpty(o.Username))
        {
            await client.AuthenticateAsync(o.Username, o.Password ?? string.Empty, cancellationToken).ConfigureAwait(false);
        }

        await client.SendAsync(mime, cancellationToken).ConfigureAwait(false);
        await client.DisconnectAsync(true, cancellationToken).ConfigureAwait(false);
    }
}

/// <summary>
/// The development outbox: messages are kept in memory (the newest 200) and shown by the API
/// (<c>GET /api/outbox</c>) instead of being sent. Used when no SMTP host is configured.
/// </summary>
public sealed class DevelopmentOutbox(TimeProvider time) : IEmailSender
{
    private const int Capacity = 200;
    private readonly ConcurrentQueue<OutboxEntry> _messages = new();

    /// <summary>Messages, newest first.</summary>
    public IReadOnlyList<OutboxEntry> Messages => _messages.Reverse().ToList();

    /// <inheritdoc />
    public Task SendAsync(EmailMessage message, CancellationToken cancellationToken)
    {
        _messages.Enqueue(new OutboxEntry(time.GetUtcNow(), message));
        while (_messages.Count > Capacity && _messages.TryDequeue(out _))
        {
        }

        return Task.CompletedTask;
    }
}

/// <summary>A message in the development outbox.</summary>
public sealed record OutboxEntry(DateTimeOffset QueuedAt, EmailMessage Message);
