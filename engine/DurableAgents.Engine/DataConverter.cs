using System.Text;
using System.Text.Json;

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

    /// <summary>
    /// The same serialization as the Durable Task SDK's <see cref="Microsoft.DurableTask.DataConverter"/>:
    /// the engine sets it on the worker and the client, so orchestrations, activities and the HTTP
    /// API all read and write payloads the same way (camelCase, as the 1.x engine did).
    /// </summary>
    public static Microsoft.DurableTask.DataConverter Sdk { get; } = new Microsoft.DurableTask.Converters.JsonDataConverter(Options);

    /// <summary>The UTF-8 size of a serialized payload.</summary>
    public static int ByteCount(string? json) => json is null ? 0 : Encoding.UTF8.GetByteCount(json);
}
