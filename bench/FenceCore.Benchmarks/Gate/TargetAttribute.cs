namespace FenceCore.Benchmarks;

/// <summary>
/// A performance target: this benchmark's median is at most <see cref="MaxRatio"/> times its class
/// baseline's median, in the same run. Targets are reported (held or missed, with the CPU), never gated:
/// a ratio against a peer depends on the machine, while the gate compares a change against its base.
/// </summary>
[AttributeUsage(AttributeTargets.Method, AllowMultiple = false, Inherited = false)]
public sealed class TargetAttribute(double maxRatio) : Attribute
{
    /// <summary>The largest ratio to the class baseline that holds the target.</summary>
    public double MaxRatio { get; } = maxRatio;
}
