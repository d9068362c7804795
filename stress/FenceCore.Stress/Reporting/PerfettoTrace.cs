using System.Globalization;
using FenceCore.VirtualGpu;

namespace FenceCore.Stress;

/// <summary>
/// Records the first <c>limit</c> client jobs of a run, each for its whole life, and writes them in
/// Perfetto's protobuf format or the JSON trace-event format that Perfetto (ui.perfetto.dev) and
/// chrome://tracing open.
/// </summary>
/// <remarks>
/// <para>What is traced: the first <c>limit</c> client jobs to be submitted, with every event of theirs
/// (start and completion too, after the limit was reached), and the kernel jobs (moves, clears,
/// evictions) submitted before the limit was reached, or waited on by a traced job. The recording stops
/// when the limit has been reached and every traced job has completed; the counters and instants cover
/// that window, and jobs submitted after the limit are not shown.</para>
/// <para>What the trace shows:</para>
/// <list type="bullet">
/// <item>one process per device, holding: one track per engine with a slice per job from its start on the
/// ring to its end (moves, clears and evictions are jobs of the copy engines, in category <c>kernel</c>),
/// and one track per scheduler entity (a client's queue, named "client → engines") with a slice per job
/// for the time it waited at the head of the queue (for dependencies and credits) before it started;</item>
/// <item>a flow arrow for every dependency edge between two traced jobs (see <see cref="AddFlows"/>),
/// across devices too, from the producer's slice to the consumer's;</item>
/// <item>counter tracks, per device: device memory used, the queue depth of each engine (armed and not
/// started) and the jobs in flight;</item>
/// <item>instant events for hangs, engine resets, client kills, evictions, dependency timeouts, leak
/// detections and device loss.</item>
/// </list>
/// <para>The file is in Perfetto's protobuf format (<see cref="ProtoTraceWriter"/>), or in the JSON
/// trace-event format when its name ends in <c>.json</c> (<see cref="JsonTraceWriter"/>; chrome://tracing
/// reads only that). For 10⁶ jobs of this runner (<c>--jobs 500000 --seed 2 --trace-limit 1000000</c>: the
/// 500,000 client jobs and their kernel jobs, AMD EPYC) the protobuf file measured 241 MB written in 10.1 s
/// against 1.09 GB in 22.8 s for JSON, and a JSON trace that large is past what chrome://tracing loads.</para>
/// <para>Events can arrive on several threads in threads mode: one lock guards the recording; it is
/// taken once per job event, outside every lock of the GPU.</para>
/// </remarks>
internal sealed class PerfettoTrace
{
    private readonly DeviceSet _gpu;
    private readonly int _limit;
    private readonly object _gate = new();
    private readonly Dictionary<GpuJob, JobRecord> _jobs = [];       // under _gate

    /// <summary>Kernel jobs a traced job waits on that were not announced yet when it was recorded (threads
    /// mode: a worker's announcement can come after its consumer's). Recorded when they are announced, even
    /// past the limit. Under <see cref="_gate"/>.</summary>
    private readonly HashSet<GpuJob> _wanted = [];
    private readonly List<JobRecord> _order = [];                      // under _gate
    private readonly Dictionary<SchedEntity, int> _entityTracks = [];  // under _gate
    private readonly List<(string Name, int Device)> _entityNames = []; // under _gate
    private readonly List<Instant> _instants = [];                     // under _gate
    private readonly List<CounterSample> _counters = [];               // under _gate
    private readonly int[] _queueDepth;                                // under _gate; every job's, traced or not
    private int _clientJobs;                                           // under _gate: client jobs traced
    private int _open;                                                 // under _gate: traced jobs not completed
    private bool _full;                                                // under _gate: _clientJobs reached _limit
    private bool _closed;                                              // under _gate: full, and _open is 0
    private int _eventsSinceSample;                                    // under _gate

    public PerfettoTrace(DeviceSet gpu, int limit)
    {
        _gpu = gpu;
        _limit = limit;
        _full = _closed = limit <= 0;
        _queueDepth = new int[gpu.Engines.Count];
        for (int d = 0; d < gpu.Devices.Count; d++)
        {
            int device = d;
            gpu.Devices[d].Subscribe(e => OnEvent(device, e));
        }
    }

    /// <summary>A job's id in the trace: job ids count per device, so the device goes in the high bits.</summary>
    private long TraceId(GpuJob job) => ((long)_gpu.IndexOf(job.Engine.Device) << 40) | job.Id;

    /// <summary>Jobs recorded, client and kernel.</summary>
    public int Count
    {
        get
        {
            lock (_gate)
            {
                return _order.Count;
            }
        }
    }

    /// <summary>Client jobs recorded: the first <c>limit</c> submitted (fewer when the run had fewer).</summary>
    public int ClientJobs
    {
        get
        {
            lock (_gate)
            {
                return _clientJobs;
            }
        }
    }

    /// <summary>What the recording holds on the heap, roughly, for the retained-heap invariant.</summary>
    public long RetainedBytesEstimate
    {
        get
        {
            lock (_gate)
            {
                return (_order.Count * 320L) + ((_instants.Count + _counters.Count) * 64L);
            }
        }
    }

    /// <summary>The workload reports a kill (the GPU has no event for it).</summary>
    public void ClientKilled(GpuClient client, TimeSpan time) => AddInstant("kill", $"client {client.Name} killed", -1, _gpu.IndexOf(client.Gpu), time.Ns());

    private void OnEvent(int device, GpuEvent e)
    {
        lock (_gate)
        {
            if (_closed)
            {
                return;
            }

            switch (e.Kind)
            {
                case GpuEventKind.JobSubmitted when e.Job is { } job:
                    _queueDepth[_gpu.Slot(job.Engine)]++;
                    if (_jobs.ContainsKey(job))
                    {
                        break; // adopted already: a traced job that waits on it was announced first
                    }

                    if (job.IsKernelJob ? _full && !_wanted.Remove(job) : !TakeClientSlot())
                    {
                        break; // past the limit: not traced (unless a traced job turns out to wait on it)
                    }

                    _wanted.Remove(job);
                    JobRecord record = Record(job, device, e.Time.Ns());
                    if (job.Description.Hang)
                    {
                        AddInstantLocked("hang", $"job {job.Id} will hang", record.Engine, device, e.Time.Ns());
                    }

                    if (job.IsKernelJob && record.Name.StartsWith("evict", StringComparison.Ordinal))
                    {
                        AddInstantLocked("eviction", record.Name, record.Engine, device, e.Time.Ns());
                    }

                    break;
                case GpuEventKind.JobStarted when e.Job is { } job:
                    _queueDepth[_gpu.Slot(job.Engine)]--;
                    if (_jobs.TryGetValue(job, out JobRecord? started) && started.StartNs < 0)
                    {
                        started.StartNs = e.Time.Ns();
                    }

                    break;
                case GpuEventKind.JobCompleted when e.Job is { } job:
                    if (job.Hardware is null)
                    {
                        _queueDepth[_gpu.Slot(job.Engine)]--; // failed before it started (killed, timed out, device lost)
                    }

                    if (_jobs.TryGetValue(job, out JobRecord? done) && done.EndNs < 0)
                    {
                        Complete(done, job, e.Time.Ns());
                    }

                    break;
                case GpuEventKind.EngineReset:
                    AddInstantLocked("reset", $"{e.Engine?.Name} reset", Slot(e.Engine), device, e.Time.Ns());
                    break;
                case GpuEventKind.LeakDetected:
                    AddInstantLocked("leak", $"leak on {e.Buffer?.Name}: {(e.Job is { } j ? $"job {j.Id}" : "CPU access")} touched storage before its move signalled", Slot(e.Engine), device, e.Time.Ns());
                    break;
                case GpuEventKind.DependencyTimeout:
                    AddInstantLocked("dependency-timeout", $"job {e.Job?.Id}: a dependency did not signal in time", Slot(e.Engine), device, e.Time.Ns());
                    break;
                case GpuEventKind.DeviceLost:
                    AddInstantLocked("device-lost", "device lost", -1, device, e.Time.Ns());
                    break;
                case GpuEventKind.MoveNotified:
                    AddInstantLocked("move-notify", $"{e.Buffer?.Name}: mapping invalidated by the exporter's move", -1, device, e.Time.Ns());
                    break;
                default:
                    return;
            }

            if (++_eventsSinceSample >= 8)
            {
                _eventsSinceSample = 0;
                _counters.Add(new CounterSample(e.Time.Ns(), [.. _gpu.Devices.Select(d => d.DeviceMemoryUsed)], [.. _gpu.Devices.Select(d => d.JobsSubmitted - d.JobsCompleted)], [.. _queueDepth]));
            }

            _closed = _full && _open == 0;
        }
    }

    /// <summary>Counts a client job in, or says the limit was reached.</summary>
    private bool TakeClientSlot()
    {
        if (_full)
        {
            return false;
        }

        _full = ++_clientJobs >= _limit;
        return true;
    }

    /// <summary>Starts the record of a job announced now, with its dependency edges (see <see cref="AddFlows"/>).</summary>
    private JobRecord Record(GpuJob job, int device, long submittedNs)
    {
        var record = new JobRecord(TraceId(job), job.Description.Label ?? (job.IsKernelJob ? "kernel" : "job"), job.IsKernelJob, _gpu.Slot(job.Engine), EntityTrack(job.Entity, device), submittedNs);
        _jobs[job] = record;
        _order.Add(record);
        _open++;
        foreach (Fence dependency in job.IsKernelJob ? job.EffectiveDependencies : job.SubmittedDependencies)
        {
            if (dependency is not GpuFence { Job: { } producer } || ReferenceEquals(producer, job) || record.From?.Contains(producer) == true)
            {
                continue;
            }

            (record.From ??= []).Add(producer);
            if (producer.IsKernelJob && !_jobs.ContainsKey(producer) && !job.IsKernelJob)
            {
                if (_full)
                {
                    Adopt(producer);
                }
                else
                {
                    _wanted.Add(producer); // announced later (threads mode), perhaps once the limit is reached
                }
            }
        }

        CatchUp(record, job);
        return record;
    }

    /// <summary>Records a kernel job a traced job waits on that was not traced when it was announced (it came
    /// after the limit was reached, or, in threads mode, its announcement comes after its consumer's).</summary>
    private void Adopt(GpuJob move) => Record(move, _gpu.IndexOf(move.Engine.Device), move.SubmitTime.Ns());

    /// <summary>Takes from the job what its events would have said had they come already: in threads mode
    /// a worker may start and even complete a job before its submission is announced, or a kernel job is
    /// adopted late. Its ring start stands for the start event's time. Without this a traced job could stay
    /// open for ever, and the recording would never close.</summary>
    private void CatchUp(JobRecord record, GpuJob job)
    {
        if (record.StartNs < 0 && job.StartTime is { } start)
        {
            record.StartNs = start.Ns();
        }

        if (record.EndNs < 0 && job.Finished.IsSignaled)
        {
            Complete(record, job, Math.Max(job.EndTime.NsOrNone(), job.Engine.Device.Now.Ns()));
        }
    }

    private void Complete(JobRecord done, GpuJob job, long nowNs)
    {
        // A job cancelled on the ring keeps a far-future start: it never ran, so it gets no ring slice.
        bool ran = job.StartTime.NsOrNone() >= 0 && job.EndTime.NsOrNone() >= job.StartTime.NsOrNone() && job.EndTime.NsOrNone() <= nowNs;
        done.RunStartNs = ran ? job.StartTime.NsOrNone() : -1;
        done.EndNs = ran ? job.EndTime.NsOrNone() : nowNs;
        done.Error = job.Finished.Error;
        _open--;
    }

    private void AddInstant(string kind, string name, int engine, int device, long timeNs)
    {
        lock (_gate)
        {
            if (!_closed)
            {
                AddInstantLocked(kind, name, engine, device, timeNs);
            }
        }
    }

    private void AddInstantLocked(string kind, string name, int engine, int device, long timeNs) => _instants.Add(new Instant(kind, name, engine, device, timeNs));

    private int Slot(Engine? engine) => engine is null ? -1 : _gpu.Slot(engine);

    private int EntityTrack(SchedEntity entity, int device)
    {
        if (!_entityTracks.TryGetValue(entity, out int track))
        {
            track = _entityTracks.Count + 1;
            _entityTracks[entity] = track;
            _entityNames.Add(($"{entity.Client?.Name ?? "kernel"} → {string.Join('/', entity.Engines.Select(e => e.Name))}", device));
        }

        return track;
    }

    /// <summary>Writes the trace: Perfetto's protobuf format, or the JSON trace-event format when the path
    /// ends in <c>.json</c>. Returns the counts of the written events by kind (slices per track kind, flows,
    /// counter samples, instants by kind, and the edges between traced jobs that got no arrow), for the
    /// summary and the tests.</summary>
    public IReadOnlyDictionary<string, long> Write(string path)
    {
        TraceModel model = Snapshot();
        using FileStream stream = File.Create(path);
        if (path.EndsWith(".json", StringComparison.OrdinalIgnoreCase))
        {
            JsonTraceWriter.Write(stream, model);
        }
        else
        {
            ProtoTraceWriter.Write(stream, model);
        }

        SortedDictionary<string, long> counts = model.CountByKind();
        if (model.EdgesWithoutArrow > 0)
        {
            counts["edges without arrow"] = model.EdgesWithoutArrow;
        }

        return counts;
    }

    /// <summary>The summary's line for a written trace: what it holds (the first N client jobs, whole, and
    /// which kernel jobs), its size, and its events by kind (from <see cref="Write"/>).</summary>
    public string Summary(string path, IReadOnlyDictionary<string, long> kinds, TimeSpan writing)
    {
        int clients, kernels;
        lock (_gate)
        {
            clients = _clientJobs;
            kernels = _order.Count - _clientJobs;
        }

        return string.Create(CultureInfo.InvariantCulture,
            $"trace: {path} (the first {clients:N0} client jobs, each from submission to completion, and {kernels:N0} kernel jobs: those submitted before the last of them and those they wait on; {new FileInfo(path).Length:N0} B written in {writing.TotalSeconds:F2} s; open in https://ui.perfetto.dev): {string.Join(", ", kinds.Select(k => $"{k.Key} {k.Value:N0}"))}");
    }

    /// <summary>What <see cref="Write"/> would write now, for the tests.</summary>
    internal TraceModel Snapshot()
    {
        lock (_gate)
        {
            return BuildModel();
        }
    }

    private TraceModel BuildModel()
    {
        var model = new TraceModel();

        // One process per device: its engines' tracks, then its scheduler entities' tracks and its counters.
        int count = _gpu.Devices.Count;
        int[] engines = new int[count];
        int[] memory = new int[count];
        int[] inFlight = new int[count];
        for (int d = 0; d < count; d++)
        {
            Gpu device = _gpu.Devices[d];
            engines[d] = model.AddProcess(count == 1 ? $"virtual GPU ({device.Config.Mode})" : $"{device.Name} ({device.Config.Mode})");
        }

        int[] engineTrack = [.. _gpu.Engines.Select(e => model.AddTrack(engines[_gpu.IndexOf(e.Device)], $"{e.Name} ({RunStatistics.Kind(e.Kind)})", "engine"))];
        int[] entityTrack = [0, .. _entityNames.Select(n => model.AddTrack(engines[n.Device], n.Name, "entity"))];
        for (int d = 0; d < count; d++)
        {
            memory[d] = model.AddCounter(engines[d], "device memory used", TraceCounterUnit.Bytes);
            inFlight[d] = model.AddCounter(engines[d], "jobs in flight", TraceCounterUnit.Count);
        }

        int[] queue = [.. _gpu.Engines.Select(e => model.AddCounter(engines[_gpu.IndexOf(e.Device)], $"queue depth {e.Name}", TraceCounterUnit.Count))];

        var ringSlice = new Dictionary<JobRecord, int>(); // job -> index of its ring slice
        var queueSlice = new Dictionary<JobRecord, int>(); // job -> index of its entity (queue) slice
        var entityFree = new long[_entityNames.Count + 1];
        foreach (JobRecord j in _order)
        {
            if (j.EndNs < 0)
            {
                continue; // still in flight when the run ended (threads mode, when the drain timed out)
            }

            // An entity serves its queue in order, so its track shows the head job's wait: from when it
            // became the head (submitted, and the previous job left) to when it started or failed. The
            // slices of one track therefore never overlap.
            long waitedFrom = Math.Max(j.SubmitNs, entityFree[j.EntityTrack]);
            long waitedUntil = Math.Max(waitedFrom, j.StartNs >= 0 ? j.StartNs : j.EndNs);
            entityFree[j.EntityTrack] = waitedUntil;
            string status = j.Error < 0 ? Errno.Name(j.Error) : "ok";
            queueSlice[j] = model.Slices.Count;
            model.Slices.Add(new TraceSlice(entityTrack[j.EntityTrack], waitedFrom, waitedUntil, j.Name, "queued", j.Id, status));
            if (j.RunStartNs >= 0)
            {
                ringSlice[j] = model.Slices.Count;
                model.Slices.Add(new TraceSlice(engineTrack[j.Engine], j.RunStartNs, j.EndNs, j.Name, j.Kernel ? "kernel" : j.Error < 0 ? "error" : "job", j.Id, status));
            }
        }

        model.EdgesWithoutArrow = AddFlows(model, ringSlice, queueSlice);
        foreach (CounterSample c in _counters)
        {
            for (int d = 0; d < count; d++)
            {
                model.Counters.Add(new TraceCounter(memory[d], c.TimeNs, c.DeviceMemoryBytes[d]));
                model.Counters.Add(new TraceCounter(inFlight[d], c.TimeNs, c.JobsInFlight[d]));
            }

            for (int e = 0; e < c.QueueDepth.Length; e++)
            {
                model.Counters.Add(new TraceCounter(queue[e], c.TimeNs, c.QueueDepth[e]));
            }
        }

        foreach (Instant i in _instants)
        {
            // On the engine's track when the event belongs to one, else on the process (device-wide).
            model.Instants.Add(new TraceInstant(i.Engine >= 0 ? engineTrack[i.Engine] : -1, engines[i.Device], i.TimeNs, i.Name, i.Kind));
        }

        return model;
    }

    /// <summary>
    /// Which dependency edges get a flow arrow. A job's edges are the jobs behind the fences of its
    /// dependency list, read when it is submitted: for a client job its
    /// <see cref="GpuJob.SubmittedDependencies"/> (implicit and explicit, unwrapped, as submitted, so
    /// fences of its own entity and fences already signalled count too), for a kernel job its
    /// <see cref="GpuJob.EffectiveDependencies"/>, the only list the GPU keeps for one. An edge is one
    /// (producer job, consumer job) pair: a producer named twice (say implicitly and explicitly, or by its
    /// scheduled and its finished fence) is one edge. The arrow goes from the producer's ring slice, or
    /// its queue slice when it never ran, to the consumer's ring slice, or its queue slice when it never
    /// ran.
    /// </summary>
    /// <remarks>
    /// <para>Edges that cannot have an arrow:</para>
    /// <list type="bullet">
    /// <item>a fence with no job behind it: a foreign (software) fence, a sync file or syncobj point that
    /// does not resolve to a job of this run's devices;</item>
    /// <item>a producer or consumer that is not traced: a client job after the limit, or a kernel job
    /// submitted after it that no traced job waits on;</item>
    /// <item>in threads mode, the edges of a job that completed before its submission was announced: the GPU
    /// empties a job's dependency lists once it completes;</item>
    /// <item>an end still in flight when the run ended (threads mode, when the drain timed out): it has no
    /// slice;</item>
    /// <item>an edge into a job that failed before it ran (killed, timed out, device lost) no later than its
    /// producer's slices began: a flow must start strictly before it ends (the protobuf form binds a flow's
    /// ends in the order of the events, which at one timestamp is not the flow's order), so none is drawn;
    /// <see cref="Write"/> counts these as "edges without arrow". An edge into a job that ran always has one
    /// (a test checks it).</item>
    /// <item>the edges a kernel job's own dependency list lost to the GPU's normalisation (fences of the
    /// kernel entity, fences already signalled when it was submitted, an earlier fence of a context whose
    /// later fence it waits on): the GPU keeps no submitted list for kernel jobs.</item>
    /// </list>
    /// </remarks>
    /// <returns>The edges between two traced jobs that got no arrow (the last case above).</returns>
    private int AddFlows(TraceModel model, Dictionary<JobRecord, int> ringSlice, Dictionary<JobRecord, int> queueSlice)
    {
        int unarrowed = 0;
        foreach (JobRecord j in _order)
        {
            if (j.From is null || !queueSlice.TryGetValue(j, out int consumerQueue))
            {
                continue;
            }

            int consumer = ringSlice.TryGetValue(j, out int ring) ? ring : consumerQueue;
            foreach (GpuJob producerJob in j.From)
            {
                if (!_jobs.TryGetValue(producerJob, out JobRecord? from) || !queueSlice.TryGetValue(from, out int producer))
                {
                    continue; // not traced, or still in flight
                }

                if (ringSlice.TryGetValue(from, out int producerRing) && model.Slices[producerRing].StartNs < model.Slices[consumer].StartNs)
                {
                    producer = producerRing;
                }
                else if (model.Slices[producer].StartNs >= model.Slices[consumer].StartNs)
                {
                    unarrowed++; // the consumer failed before its producer's slices began, or in the same ns
                    continue;
                }

                model.Flows.Add(new TraceFlow(producer, consumer, $"{(from.Kernel ? "move" : "job")} → {(j.Kernel ? "move" : "job")}"));
            }
        }

        return unarrowed;
    }

    private sealed class JobRecord(long id, string name, bool kernel, int engine, int entityTrack, long submitNs)
    {
        public long Id { get; } = id;
        public string Name { get; } = name;
        public bool Kernel { get; } = kernel;
        public int Engine { get; } = engine;
        public int EntityTrack { get; } = entityTrack;
        public long SubmitNs { get; } = submitNs;
        public long StartNs { get; set; } = -1;
        public long RunStartNs { get; set; } = -1;
        public long EndNs { get; set; } = -1;
        public int Error { get; set; }
        /// <summary>The jobs behind its dependency list, each once (traced or not: resolved when the trace is written).</summary>
        public List<GpuJob>? From { get; set; }
    }

    private readonly record struct Instant(string Kind, string Name, int Engine, int Device, long TimeNs);

    private readonly record struct CounterSample(long TimeNs, long[] DeviceMemoryBytes, long[] JobsInFlight, int[] QueueDepth);
}
