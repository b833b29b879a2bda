using System.Globalization;

// Benchmarks. Usage:
//   dotnet run -c Release --project bench/DurableAgents.Bench -- sequential
//   dotnet run -c Release --project bench/DurableAgents.Bench -- postgres "<connection string>"
// or bash bench/run.sh, which starts a private PostgreSQL and runs both.
var mode = args.FirstOrDefault() ?? "sequential";
return mode switch
{
    "sequential" => await DurableAgents.Bench.SequentialBench.RunAsync(),
    "postgres" when args.Length >= 2 => await DurableAgents.Bench.PostgresBench.RunAsync(args[1], args.Length >= 3 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 5000),
    _ => Usage(),
};

static int Usage()
{
    Console.Error.WriteLine("usage: DurableAgents.Bench sequential | postgres <connection-string> [orchestrations]");
    return 2;
}
