using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace FenceCore.Benchmarks.Gate;

/// <summary>The committed baseline, <c>bench/baseline.json</c>.</summary>
internal sealed class GateBaseline
{
    /// <summary>What the file is and how it was made, for people reading it.</summary>
    public string? Note { get; set; }

    /// <summary>A gated benchmark fails when its ratio exceeds the committed ratio times this.</summary>
    public double RatioTolerance { get; set; } = 3.0;

    /// <summary>...and the excess, converted back to time at the current baseline's speed, is above this
    /// many ns (ratios of nanosecond-scale operations are all noise below it).</summary>
    public double NoiseNs { get; set; } = 2.0;

    /// <summary>The gated benchmarks, keyed <c>Type.Method</c>.</summary>
    public List<Entry> Benchmarks { get; set; } = [];

    public static readonly JsonSerializerOptions JsonOptions = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping, // a file for people: keep ' and + readable
    };

    /// <summary>One committed figure.</summary>
    internal sealed class Entry
    {
        /// <summary><c>Type.Method</c>.</summary>
        public string Name { get; set; } = "";

        /// <summary><c>Type.Method</c> of its class baseline (informative; the attributes decide).</summary>
        public string Baseline { get; set; } = "";

        /// <summary>Fastest iteration over the baseline's fastest iteration, in the run that made the file.</summary>
        public double Ratio { get; set; }

        /// <summary>Exact allocated bytes per operation; any increase fails the gate.</summary>
        public long AllocatedBytes { get; set; }

        /// <summary>True for a peer or floor row: printed, never failed on.</summary>
        public bool? Reference { get; set; }

        /// <summary>Overrides <see cref="GateBaseline.RatioTolerance"/> for this benchmark.</summary>
        public double? RatioTolerance { get; set; }
    }
}
