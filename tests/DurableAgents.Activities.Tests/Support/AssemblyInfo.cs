using NUnit.Framework;

// Each fixture owns its own fake provider server and host, so fixtures can run side by side.
[assembly: Parallelizable(ParallelScope.Fixtures)]
[assembly: LevelOfParallelism(2)]
