using System.CommandLine;
using Vigil.Cli;
using Vigil.Cli.Commands;

var root = new RootCommand("Vigil — eBPF network security and observability agent");
var watch = new Command("watch", "Watch what a sensor sees, live");
watch.Subcommands.Add(WatchTcpCommand.Create());
watch.Subcommands.Add(WatchGuardCommand.Create());
root.Subcommands.Add(watch);
root.Subcommands.Add(DoctorCommand.Create());
root.Subcommands.Add(PolicyCommand.Create());
root.Subcommands.Add(GuardCommand.Create());

var parse = root.Parse(args);
if (parse.Errors.Count > 0)
{
    // Some parser messages list choices on further lines: keep each error on one line.
    foreach (var error in parse.Errors)
        Console.Error.WriteLine($"vigil: {string.Join(' ', error.Message.Split('\n', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))}");
    Console.Error.WriteLine("Try 'vigil --help'.");
    return ExitCodes.Usage;
}
return await parse.InvokeAsync();
