namespace FenceCore.Stress.Tests;

/// <summary>stress/completions/fencecore-stress.bash: sourced into bash, it asks the runner for completions
/// through the [suggest] directive and fills COMPREPLY. The runner here is the built one beside the tests,
/// behind a shell function named as the README suggests.</summary>
public class CompletionScriptTests
{
    [Theory]
    [InlineData("--mode", "fencecore-stress", "--mo")]
    [InlineData("threads virtual", "fencecore-stress", "--mode", "")]
    [InlineData("threads", "fencecore-stress", "--seed", "3", "--mode", "th")]
    [InlineData("importer", "fencecore-stress", "--inject-skip-kernel", "=", "im")]
    [InlineData("explicit importer", "fencecore-stress", "--inject-skip-kernel", "=")]
    [InlineData("--trace --trace-limit", "fencecore-stress", "--tra")]
    public void Completion_FillsCompReply_FromTheRunner(string expected, params string[] words)
    {
        string runner = Path.Combine(AppContext.BaseDirectory, OperatingSystem.IsWindows() ? "fencecore-stress.exe" : "fencecore-stress");
        string script = Path.Combine(AppContext.BaseDirectory, "fencecore-stress.bash");
        string output = StressRunner.Bash($"""
            fencecore-stress() {"{"} '{runner}' "$@"; {"}"}
            source '{script}'
            COMP_WORDS=({string.Join(' ', words.Select(w => $"'{w}'"))})
            COMP_CWORD={words.Length - 1}
            _fencecore_stress
            echo "${"{"}COMPREPLY[*]{"}"}"
            """);
        Assert.Equal(expected, output.Trim());
    }

    [Fact]
    public void Script_RegistersTheCompletion_ForTheRunnersName()
    {
        string script = Path.Combine(AppContext.BaseDirectory, "fencecore-stress.bash");
        Assert.Equal("complete -o default -F _fencecore_stress fencecore-stress", StressRunner.Bash($"source '{script}'; complete -p fencecore-stress").Trim());
    }
}
