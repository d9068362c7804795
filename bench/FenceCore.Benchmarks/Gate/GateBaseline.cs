using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace FenceCore.Benchmarks.Gate;

/// <summary>
/// The committed allocation baseline, <c>bench/baseline.json</c>. Bytes allocated per operation do not
/// depend on the machine, so they are committed and gated exactly; time is never committed (it is
/// compared base against candidate in one run, see <see cref="GateComparer"/>).
/// </summary>
internal sealed class GateBaseline
{
    /// <summary>What the file is and how it was made, for people reading it.</summary>
    public string? Note { get; set; }

    /// <summary>The benchmarks, keyed <c>Type.Method</c>.</summary>
    public List<Entry> Benchmarks { get; set; } = [];

    public static readonly JsonSerializerOptions JsonOptions = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        Converters = { new JsonStringEnumConverter() },
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping, // a file for people: keep ' and + readable
    };

    public static GateBaseline Load(string path) =>
        File.Exists(path)
            ? JsonSerializer.Deserialize<GateBaseline>(File.ReadAllText(path), JsonOptions) ?? new GateBaseline()
            : new GateBaseline();

    public void Save(string path)
    {
        Note = "Exact bytes allocated per operation of every benchmark the gate runs; a gated row fails on any increase. " +
            "Written by 'bash bench/gate.sh --update-alloc'; review the diff before committing. Time is not committed: " +
            "the gate compares base and candidate in one run.";
        File.WriteAllText(path, JsonSerializer.Serialize(this, JsonOptions) + "\n");
    }

    /// <summary>One committed figure.</summary>
    internal sealed class Entry
    {
        /// <summary><c>Type.Method</c>.</summary>
        public string Name { get; set; } = "";

        /// <summary>Exact allocated bytes per operation; any increase fails the gate.</summary>
        public long AllocatedBytes { get; set; }

        /// <summary>True for a peer or floor row: printed, never failed on.</summary>
        public bool? Reference { get; set; }
    }
}
