using System.Buffers.Binary;
using System.Text;
using System.Text.Json;

namespace FenceCore.Stress;

internal enum TraceCounterUnit
{
    Count,
    Bytes,
}

internal sealed record TraceProcess(int Pid, string Name);

/// <summary>A track of slices and instants (a thread-like track in both formats); <c>Kind</c> names its
/// slices in <see cref="TraceModel.CountByKind"/>.</summary>
internal sealed record TraceTrack(int Id, int Pid, string Name, string Kind);

internal sealed record TraceCounterTrack(int Id, int Pid, string Name, TraceCounterUnit Unit);

internal readonly record struct TraceSlice(int Track, long StartNs, long EndNs, string Name, string Category, long Job, string Status);

/// <summary>A dependency arrow from slice <c>From</c> to slice <c>To</c> (indexes into the model's slices).</summary>
internal readonly record struct TraceFlow(int From, int To, string Name);

internal readonly record struct TraceCounter(int Track, long TimeNs, long Value);

/// <summary>An instant event on a track, or on its process when <c>Track</c> is -1.</summary>
internal readonly record struct TraceInstant(int Track, int Pid, long TimeNs, string Name, string Kind);

/// <summary>A trace as the two writers see it: tracks, and the events on them. The slices of one track
/// never overlap (the recorder builds them so).</summary>
internal sealed class TraceModel
{
    public List<TraceProcess> Processes { get; } = [];
    public List<TraceTrack> Tracks { get; } = [];
    public List<TraceCounterTrack> CounterTracks { get; } = [];
    public List<TraceSlice> Slices { get; } = [];
    public List<TraceFlow> Flows { get; } = [];
    public List<TraceCounter> Counters { get; } = [];
    public List<TraceInstant> Instants { get; } = [];

    /// <summary>Dependency edges between two traced jobs that got no flow (see <c>PerfettoTrace.AddFlows</c>).</summary>
    public int EdgesWithoutArrow { get; set; }

    private int _nextTrack = 1;

    public int AddProcess(string name)
    {
        int pid = Processes.Count + 1;
        Processes.Add(new TraceProcess(pid, name));
        return pid;
    }

    /// <summary>Adds a track to a process; <paramref name="kind"/> names its slices in <see cref="CountByKind"/>.</summary>
    public int AddTrack(int pid, string name, string kind)
    {
        int id = _nextTrack++;
        Tracks.Add(new TraceTrack(id, pid, name, kind));
        return id;
    }

    public int AddCounter(int pid, string name, TraceCounterUnit unit)
    {
        int id = _nextTrack++;
        CounterTracks.Add(new TraceCounterTrack(id, pid, name, unit));
        return id;
    }

    /// <summary>Events by kind: slices per track kind, flows per name, counter samples, instants per kind.</summary>
    public SortedDictionary<string, long> CountByKind()
    {
        var counts = new SortedDictionary<string, long>(StringComparer.Ordinal);
        void Count(string kind) => counts[kind] = counts.GetValueOrDefault(kind) + 1;
        Dictionary<int, string> kindOfTrack = Tracks.ToDictionary(t => t.Id, t => t.Kind);
        foreach (TraceSlice s in Slices)
        {
            Count($"slice: {kindOfTrack[s.Track]}");
        }

        foreach (TraceFlow f in Flows)
        {
            Count($"flow: {f.Name}");
        }

        foreach (TraceCounter c in Counters)
        {
            Count("counter");
        }

        foreach (TraceInstant i in Instants)
        {
            Count($"instant: {i.Kind}");
        }

        return counts;
    }
}

/// <summary>
/// Chrome's JSON trace-event format (what chrome://tracing and Perfetto's JSON importer read): complete
/// slices (<c>X</c>), flow starts and ends (<c>s</c>, <c>f</c>), counters (<c>C</c>), instants (<c>i</c>) and
/// the process and thread names (<c>M</c>); times in microseconds.
/// </summary>
internal static class JsonTraceWriter
{
    public static void Write(Stream stream, TraceModel model)
    {
        using var w = new Utf8JsonWriter(stream);
        Dictionary<int, int> pidOf = model.Tracks.ToDictionary(t => t.Id, t => t.Pid);
        w.WriteStartObject();
        w.WriteString("displayTimeUnit", "ns");
        w.WriteStartArray("traceEvents");
        foreach (TraceProcess p in model.Processes)
        {
            Metadata(w, "process_name", p.Pid, null, p.Name);
        }

        foreach (TraceTrack t in model.Tracks)
        {
            Metadata(w, "thread_name", t.Pid, t.Id, t.Name);
        }

        foreach (TraceSlice s in model.Slices)
        {
            w.WriteStartObject();
            w.WriteString("name", s.Name);
            w.WriteString("cat", s.Category);
            w.WriteString("ph", "X");
            w.WriteNumber("pid", pidOf[s.Track]);
            w.WriteNumber("tid", s.Track);
            w.WriteNumber("ts", s.StartNs / 1000.0);
            w.WriteNumber("dur", Math.Max(0, s.EndNs - s.StartNs) / 1000.0);
            w.WriteStartObject("args");
            w.WriteNumber("job", s.Job);
            w.WriteString("status", s.Status);
            w.WriteEndObject();
            w.WriteEndObject();
        }

        for (int i = 0; i < model.Flows.Count; i++)
        {
            TraceFlow f = model.Flows[i];
            TraceSlice from = model.Slices[f.From];
            TraceSlice to = model.Slices[f.To];
            // The start binds to the slice enclosing its point, so it sits inside the producer's slice; the
            // end binds to the slice enclosing it too ("bp": "e"): the consumer's, at its start.
            long inside = from.EndNs - from.StartNs >= 2 ? from.StartNs + ((from.EndNs - from.StartNs) / 2) : from.StartNs;
            Flow(w, "s", i + 1, pidOf[from.Track], from.Track, inside, f.Name);
            Flow(w, "f", i + 1, pidOf[to.Track], to.Track, to.StartNs, f.Name);
        }

        Dictionary<int, TraceCounterTrack> counterTracks = model.CounterTracks.ToDictionary(c => c.Id);
        foreach (TraceCounter c in model.Counters)
        {
            TraceCounterTrack track = counterTracks[c.Track];
            w.WriteStartObject();
            w.WriteString("name", track.Name);
            w.WriteString("ph", "C");
            w.WriteNumber("pid", track.Pid);
            w.WriteNumber("ts", c.TimeNs / 1000.0);
            w.WriteStartObject("args");
            w.WriteNumber(track.Unit == TraceCounterUnit.Bytes ? "bytes" : "count", c.Value);
            w.WriteEndObject();
            w.WriteEndObject();
        }

        foreach (TraceInstant i in model.Instants)
        {
            w.WriteStartObject();
            w.WriteString("name", i.Name);
            w.WriteString("cat", i.Kind);
            w.WriteString("ph", "i");
            w.WriteNumber("pid", i.Pid);
            if (i.Track >= 0)
            {
                w.WriteNumber("tid", i.Track);
                w.WriteString("s", "t");
            }
            else
            {
                w.WriteString("s", "p");
            }

            w.WriteNumber("ts", i.TimeNs / 1000.0);
            w.WriteEndObject();
        }

        w.WriteEndArray();
        w.WriteEndObject();
    }

    private static void Metadata(Utf8JsonWriter w, string name, int pid, int? tid, string value)
    {
        w.WriteStartObject();
        w.WriteString("name", name);
        w.WriteString("ph", "M");
        w.WriteNumber("pid", pid);
        if (tid is int t)
        {
            w.WriteNumber("tid", t);
        }

        w.WriteStartObject("args");
        w.WriteString("name", value);
        w.WriteEndObject();
        w.WriteEndObject();
    }

    private static void Flow(Utf8JsonWriter w, string phase, int id, int pid, int tid, long timeNs, string name)
    {
        w.WriteStartObject();
        w.WriteString("name", name);
        w.WriteString("cat", "dependency");
        w.WriteString("ph", phase);
        w.WriteNumber("id", id);
        w.WriteNumber("pid", pid);
        w.WriteNumber("tid", tid);
        w.WriteNumber("ts", timeNs / 1000.0);
        if (phase == "f")
        {
            w.WriteString("bp", "e");
        }

        w.WriteEndObject();
    }
}

/// <summary>
/// Perfetto's protobuf trace format: a <c>Trace</c> is a sequence of <c>TracePacket</c>s (field 1). Tracks
/// are <c>TrackDescriptor</c>s (processes, their slice tracks, counter tracks); events are
/// <c>TrackEvent</c>s (slice begin and end, instant, counter) ordered by time, on one packet sequence whose
/// event names, categories and annotation names are interned. Flows are the begin events' <c>flow_ids</c>
/// and <c>terminating_flow_ids</c>.
/// </summary>
/// <remarks>Field numbers are those of perfetto's protos/perfetto/trace: trace_packet.proto,
/// track_event/track_event.proto, track_descriptor.proto, process_descriptor.proto,
/// counter_descriptor.proto, debug_annotation.proto and interned_data/interned_data.proto. The encoder is
/// a few lines of varints over reused buffers, so a packet costs no allocation.</remarks>
internal static class ProtoTraceWriter
{
    // TracePacket
    private const int PacketTimestamp = 8;
    private const int PacketSequenceId = 10;
    private const int PacketTrackEvent = 11;
    private const int PacketInternedData = 12;
    private const int PacketSequenceFlags = 13;
    private const int PacketTrackDescriptor = 60;
    private const ulong SeqIncrementalStateCleared = 1;
    private const ulong SeqNeedsIncrementalState = 2;
    private const ulong SequenceId = 1;

    // TrackEvent
    private const int EventCategoryIids = 3;
    private const int EventDebugAnnotations = 4;
    private const int EventType = 9;
    private const int EventNameIid = 10;
    private const int EventTrackUuid = 11;
    private const int EventCounterValue = 30;
    private const int EventFlowIds = 47;
    private const int EventTerminatingFlowIds = 48;
    private const ulong TypeSliceBegin = 1;
    private const ulong TypeSliceEnd = 2;
    private const ulong TypeInstant = 3;
    private const ulong TypeCounter = 4;

    // TrackDescriptor, ProcessDescriptor, CounterDescriptor
    private const int TrackUuid = 1;
    private const int TrackName = 2;
    private const int TrackProcess = 3;
    private const int TrackParentUuid = 5;
    private const int TrackCounter = 8;
    private const int ProcessPid = 1;
    private const int ProcessName = 6;
    private const int CounterUnit = 3;
    private const ulong UnitCount = 2;
    private const ulong UnitSizeBytes = 3;

    // DebugAnnotation, InternedData and its entries (EventName, EventCategory, DebugAnnotationName)
    private const int AnnotationNameIid = 1;
    private const int AnnotationIntValue = 4;
    private const int AnnotationStringValue = 6;
    private const int InternedCategories = 1;
    private const int InternedEventNames = 2;
    private const int InternedAnnotationNames = 3;
    private const int InternedIid = 1;
    private const int InternedName = 2;

    private const int TraceField = 1;

    public static void Write(Stream stream, TraceModel model)
    {
        using var state = new Writer(stream);
        static ulong ProcessUuid(int pid) => (ulong)pid << 32;
        static ulong TrackUuidOf(int track) => (ulong)track;

        // Tracks first; the first packet also starts the sequence's interning state.
        bool first = true;
        foreach (TraceProcess p in model.Processes)
        {
            state.Descriptor.Reset();
            state.Descriptor.UInt64(TrackUuid, ProcessUuid(p.Pid));
            state.Sub.Reset();
            state.Sub.UInt64(ProcessPid, (ulong)p.Pid);
            state.Sub.String(ProcessName, p.Name);
            state.Descriptor.Message(TrackProcess, state.Sub);
            state.EmitDescriptor(first);
            first = false;
        }

        foreach (TraceTrack t in model.Tracks)
        {
            state.Descriptor.Reset();
            state.Descriptor.UInt64(TrackUuid, TrackUuidOf(t.Id));
            state.Descriptor.String(TrackName, t.Name);
            state.Descriptor.UInt64(TrackParentUuid, ProcessUuid(t.Pid));
            state.EmitDescriptor(false);
        }

        foreach (TraceCounterTrack c in model.CounterTracks)
        {
            state.Descriptor.Reset();
            state.Descriptor.UInt64(TrackUuid, TrackUuidOf(c.Id));
            state.Descriptor.String(TrackName, c.Name);
            state.Descriptor.UInt64(TrackParentUuid, ProcessUuid(c.Pid));
            state.Sub.Reset();
            state.Sub.UInt64(CounterUnit, c.Unit == TraceCounterUnit.Bytes ? UnitSizeBytes : UnitCount);
            state.Descriptor.Message(TrackCounter, state.Sub);
            state.EmitDescriptor(false);
        }

        // Flow ids by slice: out of the producer's begin, terminating at the consumer's begin.
        var flowsOut = new Dictionary<int, List<ulong>>();
        var flowsIn = new Dictionary<int, List<ulong>>();
        for (int i = 0; i < model.Flows.Count; i++)
        {
            TraceFlow f = model.Flows[i];
            (flowsOut.TryGetValue(f.From, out var o) ? o : flowsOut[f.From] = []).Add((ulong)i + 1);
            (flowsIn.TryGetValue(f.To, out var n) ? n : flowsIn[f.To] = []).Add((ulong)i + 1);
        }

        // Events in time order. Within a track the slices are laid out by (start, end), so at equal times an
        // end comes before the next begin and a zero-length slice closes before the next one opens; the
        // sequence number keeps that order under the sort.
        var events = new List<(long TimeNs, long Seq, int Kind, int Index)>(model.Slices.Count * 2 + model.Counters.Count + model.Instants.Count);
        long seq = 0;
        foreach (IGrouping<int, int> track in Enumerable.Range(0, model.Slices.Count).GroupBy(i => model.Slices[i].Track))
        {
            foreach (int i in track.OrderBy(i => model.Slices[i].StartNs).ThenBy(i => model.Slices[i].EndNs))
            {
                events.Add((model.Slices[i].StartNs, seq++, 0, i));
                events.Add((Math.Max(model.Slices[i].StartNs, model.Slices[i].EndNs), seq++, 1, i));
            }
        }

        for (int i = 0; i < model.Counters.Count; i++)
        {
            events.Add((model.Counters[i].TimeNs, seq++, 2, i));
        }

        for (int i = 0; i < model.Instants.Count; i++)
        {
            events.Add((model.Instants[i].TimeNs, seq++, 3, i));
        }

        events.Sort((a, b) => a.TimeNs != b.TimeNs ? a.TimeNs.CompareTo(b.TimeNs) : a.Seq.CompareTo(b.Seq));

        foreach ((long time, _, int kind, int index) in events)
        {
            ProtoBuffer ev = state.Event;
            ev.Reset();
            state.Interned.Reset();
            switch (kind)
            {
                case 0:
                    TraceSlice s = model.Slices[index];
                    ev.UInt64(EventType, TypeSliceBegin);
                    ev.UInt64(EventTrackUuid, TrackUuidOf(s.Track));
                    ev.UInt64(EventNameIid, state.NameIid(s.Name));
                    ev.UInt64(EventCategoryIids, state.CategoryIid(s.Category));
                    state.Sub.Reset();
                    state.Sub.UInt64(AnnotationNameIid, state.AnnotationIid("job"));
                    state.Sub.Int64(AnnotationIntValue, s.Job);
                    ev.Message(EventDebugAnnotations, state.Sub);
                    state.Sub.Reset();
                    state.Sub.UInt64(AnnotationNameIid, state.AnnotationIid("status"));
                    state.Sub.String(AnnotationStringValue, s.Status);
                    ev.Message(EventDebugAnnotations, state.Sub);
                    if (flowsOut.TryGetValue(index, out List<ulong>? outIds))
                    {
                        foreach (ulong id in outIds)
                        {
                            ev.Fixed64(EventFlowIds, id);
                        }
                    }

                    if (flowsIn.TryGetValue(index, out List<ulong>? inIds))
                    {
                        foreach (ulong id in inIds)
                        {
                            ev.Fixed64(EventTerminatingFlowIds, id);
                        }
                    }

                    break;
                case 1:
                    ev.UInt64(EventType, TypeSliceEnd);
                    ev.UInt64(EventTrackUuid, TrackUuidOf(model.Slices[index].Track));
                    break;
                case 2:
                    TraceCounter c = model.Counters[index];
                    ev.UInt64(EventType, TypeCounter);
                    ev.UInt64(EventTrackUuid, TrackUuidOf(c.Track));
                    ev.Int64(EventCounterValue, c.Value);
                    break;
                default:
                    TraceInstant i = model.Instants[index];
                    ev.UInt64(EventType, TypeInstant);
                    ev.UInt64(EventTrackUuid, i.Track >= 0 ? TrackUuidOf(i.Track) : ProcessUuid(i.Pid));
                    ev.UInt64(EventNameIid, state.NameIid(i.Name));
                    ev.UInt64(EventCategoryIids, state.CategoryIid(i.Kind));
                    break;
            }

            state.EmitEvent(time);
        }
    }

    /// <summary>The reused buffers, the interning tables and the output of one trace.</summary>
    private sealed class Writer(Stream stream) : IDisposable
    {
        private readonly BufferedStream _out = new(stream, 1 << 16);
        private readonly Dictionary<string, ulong> _names = new(StringComparer.Ordinal);
        private readonly Dictionary<string, ulong> _categories = new(StringComparer.Ordinal);
        private readonly Dictionary<string, ulong> _annotations = new(StringComparer.Ordinal);
        private readonly ProtoBuffer _packet = new();
        private readonly ProtoBuffer _entry = new();

        public ProtoBuffer Descriptor { get; } = new();
        public ProtoBuffer Event { get; } = new();
        public ProtoBuffer Interned { get; } = new();
        public ProtoBuffer Sub { get; } = new();

        public ulong NameIid(string name) => Intern(_names, InternedEventNames, name);
        public ulong CategoryIid(string name) => Intern(_categories, InternedCategories, name);
        public ulong AnnotationIid(string name) => Intern(_annotations, InternedAnnotationNames, name);

        /// <summary>The iid of <paramref name="name"/>; a new one is added to this packet's interned data.</summary>
        private ulong Intern(Dictionary<string, ulong> table, int field, string name)
        {
            if (table.TryGetValue(name, out ulong iid))
            {
                return iid;
            }

            iid = (ulong)table.Count + 1;
            table[name] = iid;
            _entry.Reset();
            _entry.UInt64(InternedIid, iid);
            _entry.String(InternedName, name);
            Interned.Message(field, _entry);
            return iid;
        }

        public void EmitDescriptor(bool startsSequence)
        {
            _packet.Reset();
            _packet.UInt64(PacketSequenceId, SequenceId);
            if (startsSequence)
            {
                _packet.UInt64(PacketSequenceFlags, SeqIncrementalStateCleared);
            }

            _packet.Message(PacketTrackDescriptor, Descriptor);
            WritePacket();
        }

        public void EmitEvent(long timeNs)
        {
            _packet.Reset();
            _packet.UInt64(PacketTimestamp, (ulong)Math.Max(0, timeNs));
            _packet.UInt64(PacketSequenceId, SequenceId);
            _packet.UInt64(PacketSequenceFlags, SeqNeedsIncrementalState);
            if (Interned.Length > 0)
            {
                _packet.Message(PacketInternedData, Interned);
            }

            _packet.Message(PacketTrackEvent, Event);
            WritePacket();
        }

        private void WritePacket()
        {
            Span<byte> header = stackalloc byte[11];
            int n = ProtoBuffer.EncodeVarint(header, ((ulong)TraceField << 3) | 2);
            n += ProtoBuffer.EncodeVarint(header[n..], (ulong)_packet.Length);
            _out.Write(header[..n]);
            _out.Write(_packet.Span);
        }

        public void Dispose() => _out.Dispose(); // flushes
    }
}

/// <summary>A growable buffer that encodes protobuf fields (varint, fixed64, length-delimited).</summary>
internal sealed class ProtoBuffer
{
    private byte[] _bytes = new byte[256];

    public int Length { get; private set; }

    public ReadOnlySpan<byte> Span => _bytes.AsSpan(0, Length);

    public void Reset() => Length = 0;

    public void UInt64(int field, ulong value)
    {
        Tag(field, 0);
        Varint(value);
    }

    public void Int64(int field, long value)
    {
        Tag(field, 0);
        Varint(unchecked((ulong)value)); // int64: two's complement as a varint
    }

    public void Fixed64(int field, ulong value)
    {
        Tag(field, 1);
        Ensure(8);
        BinaryPrimitives.WriteUInt64LittleEndian(_bytes.AsSpan(Length), value);
        Length += 8;
    }

    public void String(int field, string value)
    {
        int byteCount = Encoding.UTF8.GetByteCount(value);
        Tag(field, 2);
        Varint((ulong)byteCount);
        Ensure(byteCount);
        Length += Encoding.UTF8.GetBytes(value, _bytes.AsSpan(Length));
    }

    public void Message(int field, ProtoBuffer message)
    {
        Tag(field, 2);
        Varint((ulong)message.Length);
        Ensure(message.Length);
        message.Span.CopyTo(_bytes.AsSpan(Length));
        Length += message.Length;
    }

    private void Tag(int field, int wireType) => Varint(((ulong)field << 3) | (uint)wireType);

    private void Varint(ulong value)
    {
        Ensure(10);
        Length += EncodeVarint(_bytes.AsSpan(Length), value);
    }

    public static int EncodeVarint(Span<byte> destination, ulong value)
    {
        int n = 0;
        while (value >= 0x80)
        {
            destination[n++] = (byte)(value | 0x80);
            value >>= 7;
        }

        destination[n++] = (byte)value;
        return n;
    }

    private void Ensure(int more)
    {
        if (Length + more > _bytes.Length)
        {
            Array.Resize(ref _bytes, Math.Max(_bytes.Length * 2, Length + more));
        }
    }
}
