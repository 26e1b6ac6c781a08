using Vigil.Bench;

// Verbs are driven by eng/bench.sh; each prints "RESULT key=value ..." lines that the script summarises.
return Args.Run(args, verb => verb switch
{
    "ring" => RingBench.Run,
    "tc-cost" => TcCostBench.Run,
    "sensor" => SensorHarness.Run,
    "guard-cost" => GuardCostBench.Run,
    _ => null,
});
