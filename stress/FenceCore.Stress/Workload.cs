using FenceCore.VirtualGpu;

namespace FenceCore.Stress;

/// <summary>
/// The stress workload: closed-loop clients (each keeps a few jobs in flight and submits the next when
/// one finishes) over shared buffers, with explicit-sync clients, exports, CPU accesses, timeline
/// syncobjs and injected faults (hangs, kills, foreign fences that never signal). With several devices,
/// each device also has a compositor that reads what the other devices render (<see cref="ShareBuffers"/>).
/// </summary>
internal sealed class Workload
{
    private const long TicksPerUs = TimeSpan.TicksPerMicrosecond;
    private readonly StressSettings _o;
    private readonly DeviceSet _devices;

    /// <summary>The first device: its event loop is every device's.</summary>
    private readonly Gpu _gpu;
    private readonly InvariantChecker? _checker;
    private readonly PerfettoTrace? _trace;
    private readonly SeededRandom _rng;

    /// <summary>Threads mode: one generator per thread (client threads and GPU workers), so submissions do
    /// not serialize on a shared one; virtual mode uses <see cref="_rng"/> alone, on the loop's thread.</summary>
    [ThreadStatic]
    private static SeededRandom? t_rng;

    /// <summary>This thread's scratch arrays for a job's accesses, by length (<see cref="AccessScratch"/>).</summary>
    [ThreadStatic]
    private static BufferAccess[]?[]? t_accessScratch;
    private readonly GpuBuffer[] _buffers;
    private readonly DmaBuf[] _dmaBufs;

    /// <summary>Per device, the buffers its render clients pick from: its own (with one device,
    /// <see cref="_buffers"/>).</summary>
    private readonly GpuBuffer[][] _views;

    /// <summary>Per device, its imports of the other devices' shared buffers: what its compositor reads.
    /// Empty with one device.</summary>
    private readonly List<GpuBuffer>[] _imports;

    /// <summary>Per device, the buffers its compositor writes: its own unshared ones. Empty with one device.</summary>
    private readonly GpuBuffer[][] _targets;
    private readonly Dictionary<GpuBuffer, int> _index = [];
    private readonly ClientState[] _clients;
    private readonly Dictionary<GpuClient, ClientState> _byClient = [];
    private readonly ulong _foreignContext = FenceContext.Allocate();
    /// <summary>The engine kinds the GPU has, one bit per <see cref="EngineKind"/>. PERF: a HashSet's Contains made two
    /// interface calls to its comparer, once or twice per job.</summary>
    private readonly int _engineKinds;
    private readonly List<(GpuBuffer Buffer, Fence Fence, long[] MaxJob)> _exports = [];
    private long _latencyCount;
    private long _submitted;
    private volatile bool _stop;
    private ulong _foreignSeqno;

    public Workload(StressSettings o, DeviceSet devices, InvariantChecker? checker, PerfettoTrace? trace)
    {
        _o = o;
        _devices = devices;
        _gpu = devices.Primary;
        _checker = checker;
        _trace = trace;
        _rng = new SeededRandom(o.Seed);
        _engineKinds = _gpu.Engines.Aggregate(0, (bits, e) => bits | KindBit(e.Kind));
        // 64 KiB to 2 MiB each (about 1 MiB on average, capped at a sixteenth of device memory), so the
        // default 96 buffers want more than the default 80 MiB and the memory manager must evict. With
        // several devices, each has --buffers of its own (buffer i belongs to device i mod N) and --memory.
        int count = devices.Devices.Count;
        long maxBuffer = Math.Max(64 * 1024, Math.Min(2L << 20, (o.DeviceMemoryMiB << 20) / 16));
        _buffers = [.. Enumerable.Range(0, o.Buffers * count).Select(i => devices.Devices[i % count].CreateBuffer(_rng.NextInt64(Math.Min(64 * 1024, maxBuffer), maxBuffer + 1), $"bo{i}"))];
        _dmaBufs = [.. _buffers.Select(b => b.Device.Export(b))];
        for (int i = 0; i < _buffers.Length; i++)
        {
            _index[_buffers[i]] = i;
        }

        _views = new GpuBuffer[count][];
        _imports = [.. Enumerable.Range(0, count).Select(_ => new List<GpuBuffer>())];
        _targets = new GpuBuffer[count][];
        if (count == 1)
        {
            _views[0] = _buffers;
            _targets[0] = [];
        }
        else
        {
            ShareBuffers(devices, o);
        }
        int explicitClients = (int)Math.Round(o.Clients * o.ExplicitFraction);
        _clients = new ClientState[o.Clients];
        for (int i = 0; i < o.Clients; i++)
        {
            _clients[i] = NewClientState(i, explicitSync: i >= o.Clients - explicitClients);
        }

        devices.Subscribe(OnEvent);
    }

    /// <summary>
    /// The compositor case across devices: a <see cref="StressSettings.SharedFraction"/> of each device's
    /// buffers, spread evenly over them, is exported, and every other device imports it. Of the shared
    /// buffers, one in four is imported pinned and the rest dynamically; every second import allows
    /// peer-to-peer (when the devices do), the others bounce through system memory. The device's render
    /// clients use its own buffers (the exported ones included, which they render into); its compositor
    /// reads the imports and writes its own unshared buffers (see <see cref="NextCompositorJob"/>).
    /// </summary>
    private void ShareBuffers(DeviceSet devices, StressSettings o)
    {
        int count = devices.Devices.Count;
        int shared = 0;
        for (int d = 0; d < count; d++)
        {
            GpuBuffer[] own = [.. _buffers.Where(b => ReferenceEquals(b.Device, devices.Devices[d]))];
            _views[d] = own;
            var targets = new List<GpuBuffer>();
            for (int k = 0; k < own.Length; k++)
            {
                if (!IsShared(k, o.SharedFraction))
                {
                    targets.Add(own[k]);
                    continue;
                }

                GpuBuffer origin = own[k];
                int i = _index[origin];
                for (int other = 0; other < count; other++)
                {
                    if (other != d)
                    {
                        ImportMode mode = shared % 4 == 0 ? ImportMode.Pinned : ImportMode.Dynamic;
                        GpuBuffer import = devices.Devices[other].Import(_dmaBufs[i], mode, allowPeerToPeer: shared % 2 == 0);
                        _index[import] = i;
                        _imports[other].Add(import);
                        Imports++;
                    }
                }

                shared++;
            }

            // Every buffer shared: the compositor writes into its own buffers anyway (they are its scanout).
            _targets[d] = targets.Count > 0 ? [.. targets] : own;
        }
    }

    /// <summary>True when buffer <paramref name="k"/> of a device is one of the shared ones: the k-th buffer
    /// crosses a multiple of 1 / <paramref name="fraction"/>, so shared buffers spread evenly.</summary>
    private static bool IsShared(int k, double fraction) => (long)((k + 1) * fraction) > (long)(k * fraction);

    /// <summary>Imports made at the start (one per shared buffer and importing device).</summary>
    public int Imports { get; private set; }

    /// <summary>Move notifications the imports received.</summary>
    public long MoveNotifications => _imports.Sum(v => v.Sum(b => b.MoveNotifications));

    /// <summary>Jobs the compositors submitted (each reads imports of other devices' buffers).</summary>
    public long CompositorJobs;

    /// <summary>Threads mode: submissions refused with -EBUSY and submitted again later (see <see cref="SubmitNext"/>).</summary>
    public long BusySubmissions;

    /// <summary>The first exception a client thread stopped on (threads mode), rethrown by the run on its
    /// own thread so that it fails the run (exit 1) instead of ending the process. Written once by CAS.</summary>
    public Exception? ClientFailure => Volatile.Read(ref _clientFailure);

    private Exception? _clientFailure;

    /// <summary>Client jobs' accesses that read an import, and that write one.</summary>
    public long ImportReads;
    public long ImportWrites;

    public long Submitted => Interlocked.Read(ref _submitted);

    /// <summary>Client jobs whose finished fence has signalled (memory-manager moves not counted).</summary>
    public long CompletedClientJobs => Interlocked.Read(ref _latencyCount);
    public long Hangs;
    public long Kills;
    public long ForeignDependencies;
    public long Exports;
    public long CpuAccesses;
    public long SyncObjQueries;
    public bool Stopped => _stop;

    public void Stop() => _stop = true;

    /// <summary>The seeded generator in virtual mode (one thread: the same seed replays the run); in threads
    /// mode this thread's own, seeded from the seed and the thread (the interleaving varies anyway).</summary>
    private SeededRandom Rng => _o.Mode == GpuTimeMode.Virtual ? _rng : t_rng ??= new SeededRandom(HashCode.Combine(_o.Seed, Environment.CurrentManagedThreadId));

    /// <summary>Virtual mode: each client's first jobs, staggered over the first 100 µs.</summary>
    public void StartVirtual()
    {
        foreach (ClientState cs in _clients)
        {
            StartClientVirtual(cs);
        }
    }

    private void StartClientVirtual(ClientState cs)
    {
        for (int k = 0; k < _o.InFlightPerClient; k++)
        {
            TimeSpan at = _gpu.Now + TimeSpan.FromTicks(_rng.NextInt64(0, 100 * TicksPerUs));
            _gpu.Schedule(at, static s => ((ClientState)s!).Owner.SubmitNext((ClientState)s!), cs);
        }
    }

    /// <summary>Threads mode: one submitting thread per worker, each driving its share of the clients.</summary>
    public Thread[] StartThreads(int threads)
    {
        var result = new Thread[threads];
        for (int t = 0; t < threads; t++)
        {
            int me = t;
            result[t] = new Thread(() => ClientThread(me, threads)) { IsBackground = true, Name = $"client-{t}" };
            result[t].Start();
        }

        return result;
    }

    private void ClientThread(int me, int threads)
    {
        try
        {
            RunClients(me, threads);
        }
#pragma warning disable CA1031 // handed to the run's thread, which fails the run with it
        catch (Exception ex)
#pragma warning restore CA1031
        {
            Interlocked.CompareExchange(ref _clientFailure, ex, null);
            _stop = true;
        }
    }

    private void RunClients(int me, int threads)
    {
        var mine = new List<int>();
        for (int i = me; i < _clients.Length; i += threads)
        {
            mine.Add(i);
        }

        var inFlight = mine.ToDictionary(i => i, _ => new Queue<GpuJob>());
        while (!_stop)
        {
            foreach (int i in mine)
            {
                if (_stop)
                {
                    break;
                }

                Queue<GpuJob> q = inFlight[i];
                if (q.Count >= _o.InFlightPerClient)
                {
                    q.Dequeue().Finished.Wait(TimeSpan.FromSeconds(30));
                }

                ClientState cs = Volatile.Read(ref _clients[i]);
                if (SubmitNext(cs) is { } job)
                {
                    q.Enqueue(job);
                }
            }
        }
    }

    private GpuJob? SubmitNext(ClientState cs)
    {
        if (_stop || cs.Client.Killed)
        {
            return null;
        }

        if (Interlocked.Increment(ref _submitted) > _o.Jobs)
        {
            Interlocked.Decrement(ref _submitted);
            _stop = true;
            return null;
        }

        JobDescription desc;
        bool kill;
        (GpuBuffer Buffer, DmaBuf DmaBuf, bool Write)? export = null;
        SeededRandom rng = Rng;
        desc = cs.Compositor ? NextCompositorJob(cs, rng) : NextJob(cs, rng);
        kill = rng.NextDouble() < _o.KillRate;
        if (rng.NextDouble() < _o.ExportRate)
        {
            GpuBuffer chosen = cs.Compositor ? PickCompositorBuffer(cs.Device, rng) : _views[cs.Device][rng.Next(_views[cs.Device].Length)];
            export = (chosen, _dmaBufs[_index[chosen]], rng.Next(2) == 0);
        }

        if (export is { } e)
        {
            Export(e.Buffer, e.DmaBuf, e.Write);
        }

        _o.BeforeSubmitForTests?.Invoke(Submitted);
        Interlocked.Increment(ref cs.InFlight);
        GpuJob job;
        try
        {
            job = cs.Client.Submit(desc);
        }
        catch (FenceErrnoException busy) when (busy.Errno == -Errno.EBUSY && _o.Mode == GpuTimeMode.Threads)
        {
            // Threads mode: an import could not be mapped because the buffer stayed pinned by work in flight
            // for the whole back-off (Gpu.Submit). The kernel returns -EBUSY and userspace submits again, as
            // this client does on its next turn; nothing was submitted, so the job is not counted.
            Interlocked.Decrement(ref cs.InFlight);
            Interlocked.Decrement(ref _submitted);
            Interlocked.Increment(ref BusySubmissions);
            return null;
        }

        CountImportAccesses(desc.Buffers);
        ulong point;
        lock (cs)
        {
            point = ++cs.Point;
        }

        cs.Timeline.AddPoint(point, job.Finished);
        if (kill)
        {
            Interlocked.Increment(ref Kills);
            cs.Client.Gpu.Kill(cs.Client);
            _trace?.ClientKilled(cs.Client, _gpu.Now);
            ClientState replacement = NewClientState(cs.Index, cs.Explicit); // a compositor's replacement is the compositor
            Volatile.Write(ref _clients[cs.Index], replacement);
            if (_o.Mode == GpuTimeMode.Virtual)
            {
                StartClientVirtual(replacement);
            }
        }

        return job;
    }

    private void CountImportAccesses(IReadOnlyList<BufferAccess> accesses)
    {
        for (int i = 0; i < accesses.Count; i++) // an index loop: foreach would box the list's enumerator on every job
        {
            BufferAccess a = accesses[i];
            if (a.Buffer.IsImported)
            {
                Interlocked.Increment(ref a.Write ? ref ImportWrites : ref ImportReads);
            }
        }
    }

    /// <summary>
    /// An array of this thread's for a job's <paramref name="length"/> accesses, reused from job to job: the
    /// job's description copies it (<see cref="JobDescription.Buffers"/>). PERF: 88 B less per four-buffer job.
    /// Only filled and read between drawing a job's buffers and building its description, where nothing
    /// submits on this thread.
    /// </summary>
    private static BufferAccess[] AccessScratch(int length)
    {
        if (length == 0)
        {
            return [];
        }

        BufferAccess[]?[] byLength = t_accessScratch ??= new BufferAccess[]?[17];
        return length < byLength.Length ? byLength[length] ??= new BufferAccess[length] : new BufferAccess[length];
    }

    /// <summary>True when one of the first <paramref name="count"/> accesses is to <paramref name="buffer"/>
    /// (a loop, not a predicate: this runs for every buffer of every job).</summary>
    private static bool Chosen(BufferAccess[] accesses, int count, GpuBuffer buffer)
    {
        for (int i = 0; i < count; i++)
        {
            if (ReferenceEquals(accesses[i].Buffer, buffer))
            {
                return true;
            }
        }

        return false;
    }

    private static int KindBit(EngineKind kind) => 1 << (int)kind;

    private JobDescription NextJob(ClientState cs, SeededRandom rng)
    {
        double roll = rng.NextDouble();
        EngineKind kind = roll < 0.35 ? EngineKind.Graphics : roll < 0.7 ? EngineKind.Compute : roll < 0.8 ? EngineKind.Copy : EngineKind.Video;
        if ((_engineKinds & KindBit(kind)) == 0)
        {
            kind = _gpu.Engines[rng.Next(_gpu.Engines.Count)].Kind;
        }

        int n = _o.MaxBuffersPerJob == 0 ? 0 : _o.FixedBuffersPerJob ? _o.MaxBuffersPerJob : rng.Next(1, _o.MaxBuffersPerJob + 1);
        GpuBuffer[] view = _views[cs.Device];
        n = Math.Min(n, view.Length);
        BufferAccess[] accesses = AccessScratch(n);
        for (int i = 0; i < n; i++)
        {
            GpuBuffer b;
            do
            {
                b = view[rng.Next(view.Length)];
            }
            while (Chosen(accesses, i, b));

            accesses[i] = new BufferAccess(b, rng.NextDouble() < 0.4);
        }

        return Describe(cs, kind, accesses, rng);
    }

    /// <summary>
    /// A compositor's job: with n buffers drawn as for a render job, it reads n - 1 of its device's imports
    /// of the buffers other devices render into and writes one of its own device's unshared buffers, its
    /// scanout; a one-buffer job only reads an import. Only with several devices.
    /// </summary>
    private JobDescription NextCompositorJob(ClientState cs, SeededRandom rng)
    {
        Interlocked.Increment(ref CompositorJobs);
        List<GpuBuffer> imports = _imports[cs.Device];
        GpuBuffer[] targets = _targets[cs.Device];
        int n = _o.MaxBuffersPerJob == 0 ? 0 : _o.FixedBuffersPerJob ? _o.MaxBuffersPerJob : rng.Next(1, _o.MaxBuffersPerJob + 1);
        // At most n buffers, as --buffers-per-job says: n - 1 reads and the write; a one-buffer job reads only.
        int reads = Math.Min(n == 1 ? 1 : Math.Max(n - 1, 0), imports.Count);
        bool write = n > 1 || (n == 1 && reads == 0);
        BufferAccess[] accesses = AccessScratch(reads + (write ? 1 : 0));
        for (int i = 0; i < reads; i++)
        {
            GpuBuffer b;
            do
            {
                b = imports[rng.Next(imports.Count)];
            }
            while (Chosen(accesses, i, b));

            accesses[i] = new BufferAccess(b, Write: false);
        }

        if (write)
        {
            accesses[reads] = new BufferAccess(targets[rng.Next(targets.Length)], Write: true);
        }

        EngineKind kind = (_engineKinds & KindBit(EngineKind.Graphics)) != 0 ? EngineKind.Graphics : _gpu.Engines[rng.Next(_gpu.Engines.Count)].Kind;
        return Describe(cs, kind, accesses, rng);
    }

    /// <summary>A buffer a compositor uses: one of its imports or one of its targets, uniformly.</summary>
    private GpuBuffer PickCompositorBuffer(int device, SeededRandom rng)
    {
        List<GpuBuffer> imports = _imports[device];
        GpuBuffer[] targets = _targets[device];
        int k = rng.Next(imports.Count + targets.Length);
        return k < imports.Count ? imports[k] : targets[k - imports.Count];
    }

    /// <summary>The rest of a job, whoever submits it: a foreign fence now and then, an explicit-sync
    /// client's snapshot of its first buffer's implicit fences, a hang, the duration.</summary>
    private JobDescription Describe(ClientState cs, EngineKind kind, BufferAccess[] accesses, SeededRandom rng)
    {
        int n = accesses.Length;
        List<Fence>? deps = null;
        if (rng.NextDouble() < _o.ForeignRate)
        {
            Interlocked.Increment(ref ForeignDependencies);
            (deps ??= []).Add(new FenceSource(_foreignContext, Interlocked.Increment(ref _foreignSeqno), FenceOptions.Seqno64)); // never signals
        }

        if (cs.Explicit && n > 0 && rng.Next(2) == 0)
        {
            // Explicit sync: wait on a snapshot of the buffer's implicit fences, as Vulkan WSI does.
            GpuBuffer b = accesses[0].Buffer;
            (deps ??= []).Add(_dmaBufs[_index[b]].ExportSyncFile(DmaBufSync.Write).Fence);
        }

        bool hang = rng.NextDouble() < _o.HangRate;
        if (hang)
        {
            Interlocked.Increment(ref Hangs);
        }

        return new JobDescription
        {
            Engine = kind,
            Buffers = accesses,
            Dependencies = deps ?? (IReadOnlyList<Fence>)[],
            Duration = TimeSpan.FromMicroseconds(rng.Next(5, 50)),
            Hang = hang,
            Label = cs.Client.Name,
        };
    }

    private void Export(GpuBuffer buffer, DmaBuf dmaBuf, bool write)
    {
        Interlocked.Increment(ref Exports);
        Fence[] expected = buffer.Reservation.GetFences(FenceUsages.WaitLevelFor(write));
        SyncFile file = dmaBuf.ExportSyncFile(write ? DmaBufSync.Write : DmaBufSync.Read);

        // The last job ids once the export has returned: in threads mode another thread may submit a job (a
        // client's, or a move) on this buffer while the export runs, and the export may then hold it; read
        // before the export, such a job looked "submitted after the export" (a false violation, about 1 run in
        // 20 of threads mode with a trace). In virtual mode nothing runs in between, so both reads agree.
        long[] maxJob = [.. _devices.Devices.Select(d => d.JobsSubmitted)];
        _checker?.CheckExport(buffer, file.Fence, expected, maxJob);
        lock (_exports)
        {
            if (_exports.Count >= 64)
            {
                _exports.RemoveAt(0);
            }

            _exports.Add((buffer, file.Fence, maxJob));
        }
    }

    private void OnEvent(GpuEvent e)
    {
        if (e.Kind != GpuEventKind.JobCompleted || e.Job is not { } job)
        {
            return;
        }

        if (job.IsKernelJob)
        {
            return;
        }

        long slot = Interlocked.Increment(ref _latencyCount) - 1;

        ClientState? cs;
        lock (_byClient)
        {
            _byClient.TryGetValue(job.Client, out cs);
        }

        if (cs is null)
        {
            return;
        }

        Interlocked.Decrement(ref cs.InFlight);
        if (_checker is not null)
        {
            Interlocked.Increment(ref SyncObjQueries);
            _checker.CheckSyncObj(cs.Client.Name, cs.Timeline, ref cs.LastQuery);
            if ((slot & 1023) == 0)
            {
                RecheckExports();
            }
        }

        bool cpu;
        int buffer;
        TimeSpan think;
        SeededRandom rng = Rng;
        cpu = rng.NextDouble() < _o.CpuAccessRate;
        buffer = rng.Next(_buffers.Length);
        think = TimeSpan.FromTicks(rng.NextInt64(0, 20 * TicksPerUs));

        if (cpu)
        {
            Interlocked.Increment(ref CpuAccesses);
            GpuBuffer target = _buffers[buffer];
            target.Device.CpuAccess(target, write: (slot & 1) == 0);
        }

        if (_o.Mode == GpuTimeMode.Virtual && !_stop && !cs.Client.Killed)
        {
            _gpu.Schedule(e.Time + think, static s => ((ClientState)s!).Owner.SubmitNext((ClientState)s!), cs);
        }
    }

    private void RecheckExports()
    {
        (GpuBuffer, Fence, long[])[] exports;
        lock (_exports)
        {
            exports = [.. _exports];
        }

        foreach ((GpuBuffer buffer, Fence fence, long[] maxJob) in exports)
        {
            _checker!.RecheckExport(buffer, fence, maxJob);
        }
    }

    private ClientState NewClientState(int index, bool explicitSync)
    {
        // With several devices, client i renders on device i mod N (a replacement stays on its device), and
        // the first client of each device is its compositor.
        int count = _devices.Devices.Count;
        int device = index % count;
        bool compositor = count > 1 && index < count;
        Gpu gpu = _devices.Devices[device];
        string prefix = count == 1 ? "" : gpu.Name + ".";
        string kind = compositor ? "comp" : explicitSync ? "vk" : "gl";
        GpuClient client = gpu.CreateClient($"{prefix}{kind}{index}.{gpu.Clients.Count}", (GpuPriority)(index % 3), explicitSync);
        var cs = new ClientState(this, index, device, client, explicitSync, compositor);
        lock (_byClient)
        {
            _byClient[client] = cs;
        }

        return cs;
    }

    private sealed class ClientState(Workload owner, int index, int device, GpuClient client, bool explicitSync, bool compositor)
    {
        /// <summary>This device's compositor: it reads the other devices' shared buffers (<see cref="NextCompositorJob"/>).</summary>
        public readonly bool Compositor = compositor;
        public readonly Workload Owner = owner;
        public readonly int Index = index;
        public readonly int Device = device;
        public readonly GpuClient Client = client;
        public readonly bool Explicit = explicitSync;
        public readonly SyncObj Timeline = new();
        public int InFlight;
        public ulong Point;
        public ulong LastQuery;
    }
}
