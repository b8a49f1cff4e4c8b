using System.Diagnostics;
using System.Runtime.InteropServices;

namespace MeshGateway.Peering.Tests;

/// <summary>A program that embeds the terminator without a host of its own, as a child process.</summary>
public sealed class EmbeddingTests
{
    private const int SigTerm = 15;
    private static readonly TimeSpan s_timeout = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task ProcessThatOnlyStartsATerminator_EndsOnSigterm()
    {
        // The terminator's private application used to get the console lifetime, which cancels SIGINT/SIGTERM for the
        // whole process: a program without a host of its own then ran on after `kill -TERM`. The runtime's default must
        // end it.
        string bench = Path.Combine(AppContext.BaseDirectory, "PeeringBench.dll");
        string certs = Directory.CreateTempSubdirectory("mg-embedded-").FullName;
        try
        {
            using (Process writer = Start(bench, "certs", "--out", certs))
            {
                await writer.WaitForExitAsync().WaitAsync(s_timeout);
                Assert.Equal(0, writer.ExitCode);
            }

            using Process child = Start(bench, "embedded", "--certs", certs);
            try
            {
                string? line;
                do
                {
                    line = await child.StandardOutput.ReadLineAsync().WaitAsync(s_timeout);
                }
                while (line is not null && line != "embedded: started");

                Assert.Equal("embedded: started", line);
                Assert.Equal(0, kill(child.Id, SigTerm));
                await child.WaitForExitAsync().WaitAsync(s_timeout);
                Assert.True(child.HasExited);
            }
            finally
            {
                if (!child.HasExited)
                {
                    child.Kill(entireProcessTree: true);
                    child.WaitForExit(30_000);
                }
            }
        }
        finally
        {
            Directory.Delete(certs, recursive: true);
        }
    }

    private static Process Start(string dll, params string[] args)
    {
        var info = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
        {
            RedirectStandardOutput = true,
            UseShellExecute = false,
        };
        info.ArgumentList.Add(dll);
        foreach (string arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        return Process.Start(info) ?? throw new InvalidOperationException("dotnet did not start.");
    }

    [DllImport("libc", SetLastError = true)]
    private static extern int kill(int pid, int signal);
}
