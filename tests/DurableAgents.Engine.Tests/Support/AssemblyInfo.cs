using NUnit.Framework;

// Each fixture owns its own host and store file, so fixtures can run side by side.
[assembly: Parallelizable(ParallelScope.Fixtures)]
[assembly: LevelOfParallelism(2)]
