using System.Text.Json;
using Google.Protobuf;

namespace FenceCore.Stress.Tests;

/// <summary>The --trace output in both formats: the JSON trace events and Perfetto's protobuf, read back
/// here (the protobuf with Google.Protobuf's reader) and checked for the kinds of events the issue asks
/// for, the same content in both, and well-formed tracks.</summary>
[Collection("stress runner")]
public class StressTraceTests
{
    private static readonly string[] FaultyRun = ["--jobs", "6000", "--seed", "21", "--hang-rate", "0.003", "--kill-rate", "0.002", "--foreign-rate", "0.002", "--quiet", "--trace-limit", "100000"];

    private static string TraceOf(string extension, params string[] args)
    {
        string path = Path.Combine(Path.GetTempPath(), $"fencecore-trace-{Guid.NewGuid():N}{extension}");
        (int code, _, string error) = StressRunner.Invoke([.. args, "--trace", path]);
        Assert.True(code == 0 || args.Any(a => a.StartsWith("--inject-skip-kernel", StringComparison.Ordinal)), $"exit {code}: {error}");
        return path;
    }

    /// <summary>Counts by kind, with the runner's own names: "slice: engine", "slice: entity", "flow: job → job",
    /// "flow: move → job", "counter", "instant: hang" and so on.</summary>
    private static SortedDictionary<string, long> JsonKinds(string path, out HashSet<string> counterNames)
    {
        using JsonDocument doc = JsonDocument.Parse(File.ReadAllBytes(path));
        var kinds = new SortedDictionary<string, long>(StringComparer.Ordinal);
        void Count(string k) => kinds[k] = kinds.GetValueOrDefault(k) + 1;
        var trackKind = new Dictionary<(int, int), string>();
        counterNames = [];
        var slices = new Dictionary<(int, int), List<(double Ts, double Dur)>>();
        foreach (JsonElement e in doc.RootElement.GetProperty("traceEvents").EnumerateArray())
        {
            string ph = e.GetProperty("ph").GetString()!;
            int pid = e.GetProperty("pid").GetInt32();
            switch (ph)
            {
                case "M" when e.GetProperty("name").GetString() == "thread_name":
                    // An entity's track is named "client → engines", an engine's "gfx (graphics)".
                    trackKind[(pid, e.GetProperty("tid").GetInt32())] = e.GetProperty("args").GetProperty("name").GetString()!.Contains('→', StringComparison.Ordinal) ? "entity" : "engine";
                    break;
                case "X":
                    Count($"slice: {trackKind[(pid, e.GetProperty("tid").GetInt32())]}");
                    var track = (pid, e.GetProperty("tid").GetInt32());
                    (slices.TryGetValue(track, out var list) ? list : slices[track] = []).Add((e.GetProperty("ts").GetDouble(), e.GetProperty("dur").GetDouble()));
                    break;
                case "s":
                    Count($"flow: {e.GetProperty("name").GetString()}");
                    break;
                case "C":
                    Count("counter");
                    counterNames.Add(e.GetProperty("name").GetString()!);
                    break;
                case "i":
                    Count($"instant: {e.GetProperty("cat").GetString()}");
                    break;
            }
        }

        // The slices of one track never overlap (a ring runs one job at a time; an entity's head waits alone).
        foreach (((int, int) track, List<(double Ts, double Dur)> list) in slices)
        {
            list.Sort();
            for (int i = 1; i < list.Count; i++)
            {
                Assert.True(list[i].Ts >= list[i - 1].Ts + list[i - 1].Dur - 1e-6, $"slices overlap on {track} at {list[i].Ts}");
            }
        }

        return kinds;
    }

    /// <summary>Reads a Perfetto protobuf trace with Google.Protobuf and counts the same kinds, checking on the
    /// way what trace processor relies on: known interned ids, balanced slices per track, flows that start
    /// before they end, and time order.</summary>
    private static SortedDictionary<string, long> ProtoKinds(string path, out HashSet<string> counterNames)
    {
        var kinds = new SortedDictionary<string, long>(StringComparer.Ordinal);
        void Count(string k) => kinds[k] = kinds.GetValueOrDefault(k) + 1;
        var names = new Dictionary<ulong, string>();
        var categories = new Dictionary<ulong, string>();
        var trackName = new Dictionary<ulong, string>();
        var trackParent = new Dictionary<ulong, ulong>();
        var processName = new Dictionary<ulong, string>();
        var counterTracks = new HashSet<ulong>();
        var open = new Dictionary<ulong, int>();
        var flowStart = new Dictionary<ulong, (ulong Time, string Name)>();
        counterNames = [];
        ulong lastTime = 0;
        bool sequenceStarted = false;

        var input = new CodedInputStream(File.ReadAllBytes(path));
        while (!input.IsAtEnd)
        {
            Assert.Equal(WireFormat.MakeTag(1, WireFormat.WireType.LengthDelimited), input.ReadTag());
            var packet = new CodedInputStream(input.ReadBytes().ToByteArray());
            ulong time = 0;
            ulong flags = 0;
            ByteString? trackEvent = null;
            uint tag;
            while ((tag = packet.ReadTag()) != 0)
            {
                switch (WireFormat.GetTagFieldNumber(tag))
                {
                    case 8: time = packet.ReadUInt64(); break;
                    case 10: Assert.Equal(1UL, packet.ReadUInt64()); break;
                    case 13: flags = packet.ReadUInt64(); break;
                    case 11: trackEvent = packet.ReadBytes(); break;
                    case 12: ReadInterned(packet.ReadBytes(), names, categories); break;
                    case 60: ReadDescriptor(packet.ReadBytes(), trackName, trackParent, processName, counterTracks); break;
                    default: packet.SkipLastField(); break;
                }
            }

            sequenceStarted |= (flags & 1) != 0;
            if (trackEvent is null)
            {
                continue;
            }

            Assert.True(sequenceStarted, "an event before the packet that clears the incremental state");
            Assert.Equal(2UL, flags & 2); // SEQ_NEEDS_INCREMENTAL_STATE: it uses interned names
            Assert.True(time >= lastTime, $"packets out of time order: {time} after {lastTime}");
            lastTime = time;
            ulong type = 0, track = 0, nameIid = 0, categoryIid = 0;
            var outFlows = new List<ulong>();
            var inFlows = new List<ulong>();
            var ev = new CodedInputStream(trackEvent.ToByteArray());
            while ((tag = ev.ReadTag()) != 0)
            {
                switch (WireFormat.GetTagFieldNumber(tag))
                {
                    case 9: type = ev.ReadUInt64(); break;
                    case 11: track = ev.ReadUInt64(); break;
                    case 10: nameIid = ev.ReadUInt64(); break;
                    case 3: categoryIid = ev.ReadUInt64(); break;
                    case 47: outFlows.Add(ev.ReadFixed64()); break;
                    case 48: inFlows.Add(ev.ReadFixed64()); break;
                    default: ev.SkipLastField(); break;
                }
            }

            Assert.True(trackName.ContainsKey(track) || processName.ContainsKey(track), $"event on undeclared track {track}");
            switch (type)
            {
                case 1: // slice begin
                    Assert.True(names.ContainsKey(nameIid) && categories.ContainsKey(categoryIid), "a begin names an id that was not interned");
                    open[track] = open.GetValueOrDefault(track) + 1;
                    Assert.True(open[track] == 1, $"slices nest or overlap on track {trackName[track]}");
                    Count($"slice: {(trackName[track].Contains('→', StringComparison.Ordinal) ? "entity" : "engine")}");
                    foreach (ulong id in outFlows)
                    {
                        flowStart.Add(id, (time, ""));
                    }

                    foreach (ulong id in inFlows)
                    {
                        Assert.True(flowStart.Remove(id, out var start), $"flow {id} ends before it starts");
                        Assert.True(start.Time <= time);
                        Count("flow"); // the protobuf form has no flow names: compared with the JSON form's total
                    }

                    break;
                case 2: // slice end
                    open[track] = open.GetValueOrDefault(track) - 1;
                    Assert.True(open[track] == 0, $"an end without a begin on track {trackName[track]}");
                    break;
                case 3:
                    Count($"instant: {categories[categoryIid]}");
                    break;
                case 4:
                    Assert.Contains(track, counterTracks);
                    Count("counter");
                    counterNames.Add(trackName[track]);
                    break;
                default:
                    Assert.Fail($"unexpected event type {type}");
                    break;
            }
        }

        Assert.Empty(flowStart);
        Assert.All(open.Values, depth => Assert.Equal(0, depth));
        return kinds;
    }

    private static void ReadInterned(ByteString bytes, Dictionary<ulong, string> names, Dictionary<ulong, string> categories)
    {
        var input = new CodedInputStream(bytes.ToByteArray());
        uint tag;
        while ((tag = input.ReadTag()) != 0)
        {
            int field = WireFormat.GetTagFieldNumber(tag);
            var entry = new CodedInputStream(input.ReadBytes().ToByteArray());
            ulong iid = 0;
            string name = "";
            uint t;
            while ((t = entry.ReadTag()) != 0)
            {
                if (WireFormat.GetTagFieldNumber(t) == 1)
                {
                    iid = entry.ReadUInt64();
                }
                else
                {
                    name = entry.ReadString();
                }
            }

            Dictionary<ulong, string>? table = field switch { 1 => categories, 2 => names, _ => null };
            table?.Add(iid, name); // an iid is interned once per sequence
        }
    }

    private static void ReadDescriptor(ByteString bytes, Dictionary<ulong, string> trackName, Dictionary<ulong, ulong> trackParent, Dictionary<ulong, string> processName, HashSet<ulong> counterTracks)
    {
        var input = new CodedInputStream(bytes.ToByteArray());
        ulong uuid = 0, parent = 0;
        string? name = null, process = null;
        bool counter = false;
        uint tag;
        while ((tag = input.ReadTag()) != 0)
        {
            switch (WireFormat.GetTagFieldNumber(tag))
            {
                case 1: uuid = input.ReadUInt64(); break;
                case 2: name = input.ReadString(); break;
                case 5: parent = input.ReadUInt64(); break;
                case 8: input.SkipLastField(); counter = true; break;
                case 3:
                    var p = new CodedInputStream(input.ReadBytes().ToByteArray());
                    uint t;
                    while ((t = p.ReadTag()) != 0)
                    {
                        if (WireFormat.GetTagFieldNumber(t) == 6)
                        {
                            process = p.ReadString();
                        }
                        else
                        {
                            p.SkipLastField();
                        }
                    }

                    break;
                default: input.SkipLastField(); break;
            }
        }

        if (process is not null)
        {
            processName[uuid] = process;
            return;
        }

        Assert.True(processName.ContainsKey(parent), $"track {name} declared before its process");
        trackName[uuid] = name!;
        trackParent[uuid] = parent;
        if (counter)
        {
            counterTracks.Add(uuid);
        }
    }

    private static readonly string[] CounterTracks =
        ["device memory used", "jobs in flight", "queue depth gfx", "queue depth compute0", "queue depth compute1", "queue depth copy0", "queue depth copy1", "queue depth video"];

    [Fact]
    public void JsonTrace_HoldsEveryKindOfEvent()
    {
        string path = TraceOf(".json", FaultyRun);
        try
        {
            SortedDictionary<string, long> kinds = JsonKinds(path, out HashSet<string> counters);
            foreach (string kind in (string[])["slice: engine", "slice: entity", "flow: job → job", "flow: move → job", "counter",
                         "instant: hang", "instant: reset", "instant: kill", "instant: eviction", "instant: dependency-timeout"])
            {
                Assert.True(kinds.GetValueOrDefault(kind) > 0, $"no '{kind}' in the trace: {string.Join(", ", kinds)}");
            }

            Assert.Equal(CounterTracks.Order(), counters.Order());

            // One track per engine of each device, in the engines' order, and one per scheduler entity.
            using JsonDocument doc = JsonDocument.Parse(File.ReadAllBytes(path));
            JsonElement[] threads = [.. doc.RootElement.GetProperty("traceEvents").EnumerateArray()
                .Where(e => e.GetProperty("ph").GetString() == "M" && e.GetProperty("name").GetString() == "thread_name")];
            int[] pids = [.. threads.Select(t => t.GetProperty("pid").GetInt32()).Distinct()];
            Assert.Equal(2, pids.Length);
            foreach (int pid in pids)
            {
                string[] names = [.. threads.Where(t => t.GetProperty("pid").GetInt32() == pid).Select(t => t.GetProperty("args").GetProperty("name").GetString()!)];
                Assert.Equal(EngineTracks, names.Where(n => !n.Contains('→', StringComparison.Ordinal)));
                string[] entities = [.. names.Where(n => n.Contains('→', StringComparison.Ordinal))];
                Assert.Equal(entities.Length, entities.Distinct().Count());
                Assert.Contains(entities, n => n.StartsWith("kernel → ", StringComparison.Ordinal));
                Assert.True(entities.Length > 24, $"{entities.Length} entity tracks on process {pid}"); // 24 clients, one entity per engine kind each used
            }
        }
        finally
        {
            File.Delete(path);
        }
    }

    private static readonly string[] EngineTracks =
        ["gfx (graphics)", "compute0 (compute)", "compute1 (compute)", "copy0 (copy)", "copy1 (copy)", "video (video)"];

    [Fact]
    public void ProtobufTrace_IsWellFormed_AndHoldsWhatTheJsonTraceHolds()
    {
        // Virtual time: the same seed gives the same run, so both formats must hold the same events.
        string json = TraceOf(".json", FaultyRun);
        string proto = TraceOf(".pftrace", FaultyRun);
        try
        {
            SortedDictionary<string, long> fromJson = JsonKinds(json, out HashSet<string> jsonCounters);
            SortedDictionary<string, long> fromProto = ProtoKinds(proto, out HashSet<string> protoCounters);
            long jsonFlows = fromJson.Where(k => k.Key.StartsWith("flow:", StringComparison.Ordinal)).Sum(k => k.Value);
            Assert.True(jsonFlows > 0);
            Assert.Equal(jsonFlows, fromProto.GetValueOrDefault("flow"));
            Assert.Equal(
                fromJson.Where(k => !k.Key.StartsWith("flow:", StringComparison.Ordinal)),
                fromProto.Where(k => k.Key != "flow"));
            Assert.Equal(jsonCounters.Order(), protoCounters.Order());
            Assert.True(new FileInfo(proto).Length * 3 < new FileInfo(json).Length, "the protobuf trace should be much smaller");
        }
        finally
        {
            File.Delete(json);
            File.Delete(proto);
        }
    }

    /// <summary>The job ids of the client jobs' queue slices (the kernel entity's excepted) in a JSON trace.</summary>
    private static long[] ClientQueueSliceJobs(string path)
    {
        using JsonDocument doc = JsonDocument.Parse(File.ReadAllBytes(path));
        JsonElement[] events = [.. doc.RootElement.GetProperty("traceEvents").EnumerateArray()];
        HashSet<(int, int)> clientTracks = [.. events
            .Where(e => e.GetProperty("ph").GetString() == "M" && e.GetProperty("name").GetString() == "thread_name")
            .Where(e => e.GetProperty("args").GetProperty("name").GetString()!.Contains('→', StringComparison.Ordinal)
                        && !e.GetProperty("args").GetProperty("name").GetString()!.StartsWith("kernel", StringComparison.Ordinal))
            .Select(e => (e.GetProperty("pid").GetInt32(), e.GetProperty("tid").GetInt32()))];
        return [.. events
            .Where(e => e.GetProperty("ph").GetString() == "X" && clientTracks.Contains((e.GetProperty("pid").GetInt32(), e.GetProperty("tid").GetInt32())))
            .Select(e => e.GetProperty("args").GetProperty("job").GetInt64())]; // the trace id: the device is in its high bits
    }

    [Theory]
    [InlineData("virtual")]
    [InlineData("threads")] // workers may start or finish a job before its submission is announced
    public void TraceLimitBelowTheRun_WritesExactlyThatManyClientJobs_AndTheSummarySaysSo(string mode)
    {
        string path = Path.Combine(Path.GetTempPath(), $"fencecore-trace-{Guid.NewGuid():N}.json");
        try
        {
            (int code, string output, string error) = StressRunner.Invoke("--jobs", "3000", "--seed", "4", "--mode", mode, "--threads", "2", "--no-checks", "--quiet", "--trace-limit", "1000", "--trace", path);
            Assert.True(code == 0, $"exit {code}: {error}");
            Assert.Contains("(the first 1,000 client jobs, each from submission to completion, and ", output, StringComparison.Ordinal);

            // One queue slice per traced client job, each job once: none was dropped for being in flight.
            long[] clientJobs = ClientQueueSliceJobs(path);
            Assert.Equal(1000, clientJobs.Length);
            Assert.Equal(1000, clientJobs.Distinct().Count());
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void InjectedExplicitSyncBug_ShowsLeakDetections_InTheTrace()
    {
        string path = TraceOf(".json", "--jobs", "20000", "--seed", "5", "--explicit-fraction", "0.5", "--inject-skip-kernel", "--quiet", "--trace-limit", "100000");
        try
        {
            Assert.True(JsonKinds(path, out _).GetValueOrDefault("instant: leak") > 0);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void InjectedImporterBug_ShowsLeaksOnImports_AndEachDeviceIsOneProcess()
    {
        string path = TraceOf(".json", "--jobs", "20000", "--seed", "5", "--inject-skip-kernel=importer", "--quiet", "--trace-limit", "100000");
        try
        {
            Assert.True(JsonKinds(path, out _).GetValueOrDefault("instant: leak") > 0);
            using JsonDocument doc = JsonDocument.Parse(File.ReadAllText(path));
            string[] processes = [.. doc.RootElement.GetProperty("traceEvents").EnumerateArray()
                .Where(e => e.GetProperty("ph").GetString() == "M" && e.GetProperty("name").GetString() == "process_name")
                .Select(e => e.GetProperty("args").GetProperty("name").GetString()!)];
            Assert.Equal(["gpu0 (Virtual)", "gpu1 (Virtual)"], processes); // one process per device
            string[] leaks = [.. doc.RootElement.GetProperty("traceEvents").EnumerateArray()
                .Where(e => e.GetProperty("ph").GetString() == "i" && e.GetProperty("name").GetString()!.StartsWith("leak on", StringComparison.Ordinal))
                .Select(e => e.GetProperty("name").GetString()!)];
            Assert.NotEmpty(leaks);
            Assert.All(leaks, l => Assert.Matches(@"^leak on bo\d+@gpu\d: ", l)); // every leak is on an import
        }
        finally
        {
            File.Delete(path);
        }
    }
}
