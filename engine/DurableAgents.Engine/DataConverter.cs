using System.Text;
using System.Text.Json;
using DurableAgents.Engine.History;

namespace DurableAgents.Engine;

/// <summary>
/// Serializes payloads and history events as JSON.
/// WARNING: changing these serializer options could break in-flight orchestrations, whose
/// inputs, outputs and histories were written with them.
/// </summary>
public static class DataConverter
{
    /// <summary>The options used for every payload and event.</summary>
    public static JsonSerializerOptions Options { get; } = new(JsonSerializerDefaults.Web)
    {
        WriteIndented = false,
    };

    /// <summary>Serializes a payload; null stays null.</summary>
    public static string? Serialize(object? value) =>
        value is null ? null : JsonSerializer.Serialize(value, value.GetType(), Options);

    /// <summary>Deserializes a payload to <paramref name="type"/>; a null payload gives the type's default.</summary>
    /// <exception cref="DurableAgentsException">The JSON cannot be read as the type (error type SerializationFailed).</exception>
    public static object? Deserialize(string? json, Type type, string what)
    {
        ArgumentNullException.ThrowIfNull(type);
        if (json is null)
        {
            return type.IsValueType && Nullable.GetUnderlyingType(type) is null && type != typeof(void) ? Activator.CreateInstance(type) : null;
        }

        try
        {
            return JsonSerializer.Deserialize(json, type, Options);
        }
        catch (JsonException ex)
        {
            throw new DurableAgentsException($"The {what} could not be read as {type.Name}: {ex.Message}", ErrorTypes.SerializationFailed, nonRetryable: true, innerException: ex);
        }
    }

    /// <summary>Deserializes a payload.</summary>
    public static T? Deserialize<T>(string? json, string what) => (T?)Deserialize(json, typeof(T), what);

    /// <summary>Serializes a history event.</summary>
    public static string SerializeEvent(HistoryEvent e) => JsonSerializer.Serialize(e, Options);

    /// <summary>Deserializes a history event.</summary>
    public static HistoryEvent DeserializeEvent(string json) =>
        JsonSerializer.Deserialize<HistoryEvent>(json, Options) ?? throw new InvalidOperationException("A stored history event was null.");

    /// <summary>The UTF-8 size of a serialized payload.</summary>
    public static int ByteCount(string? json) => json is null ? 0 : Encoding.UTF8.GetByteCount(json);
}
