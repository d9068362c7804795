using FenceCore.VirtualGpu;

namespace FenceCore.Stress.Tests;

/// <summary>What the trace covers, checked in-process against the jobs themselves: a seeded two-device run
/// with faults and a trace limit below its size, recorded by the runner's <see cref="PerfettoTrace"/> while
/// this test reads every job's dependency list as it is announced.</summary>
public class TraceCoverageTests
{
    private const int Limit = 700;

    /// <summary>One job as the test saw it announced: its trace id, entity, and the jobs behind its dependency list.</summary>
    private sealed record Seen(long TraceId, bool Kernel, SchedEntity Entity, GpuJob[] Producers);

    private sealed class TracedRun
    {
        public required DeviceSet Devices { get; init; }
        public required TraceModel Model { get; init; }
        public required Dictionary<GpuJob, Seen> Jobs { get; init; }
        public required List<GpuJob> ClientOrder { get; init; }
        public required int TracedClients { get; init; }
    }

    private static TracedRun Run(long jobs, int limit)
    {
        var settings = new StressSettings
        {
            Seed = 29, Jobs = jobs, TraceLimit = limit, HangRate = 0.003, KillRate = 0.002, ForeignRate = 0.004,
            ExplicitFraction = 0.25, Checks = false, Quiet = true,
        };
        GpuConfig[] configs = [.. Enumerable.Range(0, settings.Devices).Select(d => new GpuConfig
        {
            Name = $"gpu{d}",
            Engines = settings.Engines,
            DeviceMemoryBytes = settings.DeviceMemoryMiB << 20,
            Mode = GpuTimeMode.Virtual,
            DependencyTimeout = TimeSpan.FromMilliseconds(100),
            EngineTimeout = TimeSpan.FromMilliseconds(20),
        })];
        var devices = new DeviceSet(configs);
        var trace = new PerfettoTrace(devices, settings.TraceLimit);
        var seen = new Dictionary<GpuJob, Seen>();
        var clientOrder = new List<GpuJob>();
        devices.Subscribe(e =>
        {
            if (e.Kind != GpuEventKind.JobSubmitted || e.Job is not { } job)
            {
                return;
            }

            // Every job behind a fence of its list: the submitted list for a client job, the effective one
            // for a kernel job (the GPU keeps no other for those).
            IEnumerable<Fence> list = job.IsKernelJob ? job.EffectiveDependencies : job.SubmittedDependencies;
            GpuJob[] producers = [.. list.OfType<GpuFence>().Select(f => f.Job).OfType<GpuJob>().Where(p => !ReferenceEquals(p, job)).Distinct()];
            long id = ((long)devices.IndexOf(job.Engine.Device) << 40) | job.Id;
            seen[job] = new Seen(id, job.IsKernelJob, job.Entity, producers);
            if (!job.IsKernelJob)
            {
                clientOrder.Add(job);
            }
        });
        var workload = new Workload(settings, devices, checker: null, trace);
        workload.StartVirtual();
        while (devices.RunOne())
        {
        }

        return new TracedRun { Devices = devices, Model = trace.Snapshot(), Jobs = seen, ClientOrder = clientOrder, TracedClients = trace.ClientJobs };
    }

    private static readonly Lazy<TracedRun> Faulty = new(() => Run(jobs: 2000, Limit));

    /// <summary>The trace ids of the jobs with a queue (entity) slice: every traced job that ended has one.</summary>
    private static HashSet<long> TracedIds(TraceModel model)
    {
        HashSet<int> entityTracks = [.. model.Tracks.Where(t => t.Kind == "entity").Select(t => t.Id)];
        return [.. model.Slices.Where(s => entityTracks.Contains(s.Track)).Select(s => s.Job)];
    }

    [Fact]
    public void TraceLimit_TracesExactlyTheFirstNClientJobs_Whole_WithTheMovesTheyWaitOn()
    {
        TracedRun run = Faulty.Value;
        HashSet<long> traced = TracedIds(run.Model);
        Assert.True(run.ClientOrder.Count > Limit * 2, "the run must be larger than the limit");
        Assert.Equal(Limit, run.TracedClients);

        // Exactly the first N client jobs announced, each with a queue slice (it ended, so it was not dropped).
        long[] expected = [.. run.ClientOrder.Take(Limit).Select(j => run.Jobs[j].TraceId)];
        Dictionary<long, Seen> byId = run.Jobs.Values.ToDictionary(s => s.TraceId);
        Assert.Equal(expected.Order(), traced.Where(id => !byId[id].Kernel).Order());

        // Every job that ran on a ring has its ring slice too, and every kernel job a traced client job waits on is traced.
        foreach (GpuJob client in run.ClientOrder.Take(Limit))
        {
            foreach (GpuJob move in run.Jobs[client].Producers.Where(p => p.IsKernelJob))
            {
                Assert.Contains(run.Jobs[move].TraceId, traced);
            }
        }

        // The jobs still running when the limit was reached end after it: the old trace dropped them.
        Assert.Contains(run.Model.Slices, s => s.Category != "queued" && s.StartNs > run.ClientOrder[Limit].SubmitTime.Ns());
    }

    [Fact]
    public void EveryDependencyEdgeBetweenTracedJobs_HasOneFlow_SameEntityOnesIncluded()
    {
        TracedRun run = Faulty.Value;
        TraceModel model = run.Model;
        HashSet<long> traced = TracedIds(model);
        Dictionary<long, Seen> byId = run.Jobs.Values.ToDictionary(s => s.TraceId);

        // The edges, counted from the jobs' own dependency lists: (producer, consumer), both traced.
        HashSet<(long From, long To)> edges = [.. run.Jobs.Values
            .Where(c => traced.Contains(c.TraceId))
            .SelectMany(c => c.Producers.Select(p => (From: run.Jobs[p].TraceId, To: c.TraceId)))
            .Where(e => traced.Contains(e.From))];
        (long From, long To)[] flows = [.. model.Flows.Select(f => (model.Slices[f.From].Job, model.Slices[f.To].Job))];

        Assert.Equal(flows.Length, flows.Distinct().Count()); // one arrow per edge
        Assert.Subset(edges, flows.ToHashSet());
        Assert.Equal(edges.Count, flows.Length + model.EdgesWithoutArrow);

        // An edge without an arrow goes into a job that failed before it ran: no ring slice, an error status.
        HashSet<long> ran = [.. model.Slices.Where(s => s.Category != "queued").Select(s => s.Job)];
        Dictionary<long, string> status = model.Slices.Where(s => s.Category == "queued").ToDictionary(s => s.Job, s => s.Status);
        Assert.All(edges.Except(flows), e => Assert.True(!ran.Contains(e.To) && status[e.To] != "ok", $"edge {e.From} → {e.To} has no arrow"));

        // Same-entity edges (a client's previous job on its queue) and move → job edges are drawn too.
        Assert.Contains(flows, f => ReferenceEquals(byId[f.From].Entity, byId[f.To].Entity) && !byId[f.To].Kernel);
        Assert.Contains(flows, f => byId[f.From].Kernel && !byId[f.To].Kernel);
        Assert.Contains(flows, f => !byId[f.From].Kernel && !byId[f.To].Kernel && !ReferenceEquals(byId[f.From].Entity, byId[f.To].Entity));
    }

    [Fact]
    public void Trace_HasOneTrackPerEngineOfEachDevice_AndOnePerSchedulerEntity()
    {
        TracedRun run = Faulty.Value;
        TraceModel model = run.Model;
        Assert.Equal(run.Devices.Devices.Count, model.Processes.Count);
        for (int d = 0; d < run.Devices.Devices.Count; d++)
        {
            int pid = model.Processes[d].Pid;
            string[] engines = [.. model.Tracks.Where(t => t.Pid == pid && t.Kind == "engine").Select(t => t.Name)];
            Assert.Equal(run.Devices.Devices[d].Engines.Select(e => $"{e.Name} ({RunStatistics.Kind(e.Kind)})"), engines);
        }

        // One entity track per scheduler entity that had a traced job, named after it, on its device's process.
        HashSet<long> traced = TracedIds(model);
        SchedEntity[] entities = [.. run.Jobs.Values.Where(s => traced.Contains(s.TraceId)).Select(s => s.Entity).Distinct()];
        TraceTrack[] entityTracks = [.. model.Tracks.Where(t => t.Kind == "entity")];
        Assert.Equal(entities.Length, entityTracks.Length);
        Assert.Equal(entityTracks.Length, entityTracks.Select(t => (t.Pid, t.Name)).Distinct().Count());
        Assert.All(entityTracks, t => Assert.Contains(model.Slices, s => s.Track == t.Id));
        Assert.Contains(entityTracks, t => t.Name.StartsWith("kernel → ", StringComparison.Ordinal));
    }
}
