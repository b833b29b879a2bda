using System.Globalization;

// Benchmarks. Usage:
//   dotnet run -c Release --project bench/DurableAgents.Bench -- sequential
//   dotnet run -c Release --project bench/DurableAgents.Bench -- postgres "<connection string>"
//   dotnet run -c Release --project bench/DurableAgents.Bench -- grpc [sqlite|"<connection string>"] [orchestrations] [short] [long]
//   dotnet run -c Release --project bench/DurableAgents.Bench -- storm "<connection string>" [workflows] [kills] [off|on|both]
//   dotnet run -c Release --project bench/DurableAgents.Bench -- ratelimit "<connection string>" [workflows] [rpm] [tpm] [on|off|both] [max output tokens]
// or bash bench/run.sh, which starts a private PostgreSQL and runs both.
var mode = args.FirstOrDefault() ?? "sequential";
return mode switch
{
    "sequential" => await DurableAgents.Bench.SequentialBench.RunAsync(),
    "postgres" when args.Length >= 2 => await DurableAgents.Bench.PostgresBench.RunAsync(args[1], args.Length >= 3 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 5000),
    "grpc" => await DurableAgents.Bench.GrpcBench.RunAsync(
        args.Length >= 2 && args[1] != "sqlite" ? args[1] : null,
        args.Length >= 3 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 1000,
        args.Length >= 4 ? int.Parse(args[3], CultureInfo.InvariantCulture) : 1000,
        args.Length >= 5 ? int.Parse(args[4], CultureInfo.InvariantCulture) : 5000),
    "storm" when args.Length >= 2 => await DurableAgents.Bench.StormBench.RunAsync(
        args[1],
        args.Length >= 3 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 200,
        args.Length >= 4 ? int.Parse(args[3], CultureInfo.InvariantCulture) : 15,
        args.Length >= 5 ? args[4] : "both"),
    "ratelimit" when args.Length >= 2 => await DurableAgents.Bench.RateLimitBench.RunAsync(
        args[1],
        args.Length >= 3 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 40,
        args.Length >= 4 ? int.Parse(args[3], CultureInfo.InvariantCulture) : 120,
        args.Length >= 5 ? int.Parse(args[4], CultureInfo.InvariantCulture) : 20000,
        args.Length >= 6 ? args[5] : "both",
        args.Length >= 7 ? int.Parse(args[6], CultureInfo.InvariantCulture) : 1024),
    _ => Usage(),
};

static int Usage()
{
    Console.Error.WriteLine("usage: DurableAgents.Bench sequential | postgres <connection-string> [orchestrations] | grpc [sqlite|<connection-string>] [orchestrations] [short-steps] [long-steps] | storm <connection-string> [workflows] [kills] [off|on|both] | ratelimit <connection-string> [workflows] [rpm] [tpm] [on|off|both] [max-output-tokens]");
    return 2;
}
