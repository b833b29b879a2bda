using DurableAgents.Engine.Hosting;
using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Mvc;

namespace DurableAgents.Functions.Hosting;

/// <summary>
/// Every error leaves the API as RFC 9457 problem details. Engine errors map to 4xx with their
/// stable error type; anything else is a 500 whose body names no internals.
/// </summary>
internal static partial class ApiErrorHandling
{
    /// <summary>Problem details for every error, enums as strings in JSON, the OpenAPI document.</summary>
    public static void AddApiConventions(this WebApplicationBuilder builder)
    {
        builder.Services.AddProblemDetails();
        builder.Services.AddExceptionHandler<DurableAgentsExceptionHandler>();
        builder.Services.ConfigureHttpJsonOptions(o => o.SerializerOptions.Converters.Add(new System.Text.Json.Serialization.JsonStringEnumConverter()));
        builder.Services.AddOpenApi();
    }

    public static void UseApiConventions(this WebApplication app)
    {
        app.UseExceptionHandler();
        app.UseStatusCodePages();
        app.MapOpenApi("/openapi/{documentName}.json");
    }

    /// <summary>The HTTP status for an engine error.</summary>
    public static int StatusFor(Exception ex) => ex switch
    {
        TaskNotRegisteredException => StatusCodes.Status404NotFound,
        OrchestrationNotFoundException => StatusCodes.Status404NotFound,
        OrchestrationAlreadyExistsException => StatusCodes.Status409Conflict,
        OrchestrationStateException { Operation: "purge" } => StatusCodes.Status409Conflict,
        OrchestrationStateException => StatusCodes.Status410Gone,
        PayloadTooLargeException => StatusCodes.Status413PayloadTooLarge,
        InvalidInstanceIdException or InvalidPayloadException => StatusCodes.Status400BadRequest,
        Microsoft.AspNetCore.Http.BadHttpRequestException b => b.StatusCode,
        ArgumentException => StatusCodes.Status400BadRequest,
        _ => StatusCodes.Status500InternalServerError,
    };

    private sealed partial class DurableAgentsExceptionHandler(IProblemDetailsService problems, ILogger<DurableAgentsExceptionHandler> logger) : IExceptionHandler
    {
        public async ValueTask<bool> TryHandleAsync(HttpContext httpContext, Exception exception, CancellationToken cancellationToken)
        {
            var status = StatusFor(exception);
            var problem = new ProblemDetails
            {
                Status = status,
                Title = status == 500 ? "An unexpected error occurred." : ReasonPhrase(status),
                Detail = status == 500 ? null : exception.Message,
            };
            if (exception is DurableAgentsException dae)
            {
                problem.Extensions["errorType"] = dae.ErrorType;
            }

            if (status == 500)
            {
                LogUnhandled(logger, httpContext.Request.Path, exception);
            }

            httpContext.Response.StatusCode = status;
            return await problems.TryWriteAsync(new ProblemDetailsContext { HttpContext = httpContext, ProblemDetails = problem, Exception = exception }).ConfigureAwait(false);
        }

        private static string ReasonPhrase(int status) => Microsoft.AspNetCore.WebUtilities.ReasonPhrases.GetReasonPhrase(status);

        [LoggerMessage(EventId = 2000, Level = LogLevel.Error, Message = "Unhandled error serving {Path}.")]
        private static partial void LogUnhandled(ILogger logger, string path, Exception exception);
    }
}
